"""torchdiffeq's own test suite against torchdiffeq and against nodebench. See :data:`PROTOCOL`.

Needs a torchdiffeq checkout (``--set checkout=PATH``: its root, holding ``tests/`` and ``torchdiffeq/``);
without one :func:`preflight` says so and ``nodebench reproduce`` skips the workload. Each unit runs one
test module against one backend in a fresh process (:mod:`nodebench.workloads._compat_suite`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nodebench.schema import compat as schema
from nodebench.units import UnitContext, UnitSpec
from nodebench.workloads._compat_suite import counts as count_outcomes

NAME = "compat"
#: One test module at a time on one node: the modules time themselves, and gradcheck is CPU-bound.
RAY_PLACEMENT = "serial"

MODULES = ("api_tests", "event_tests", "gradient_tests", "norm_tests", "odeint_tests")

PROTOCOL = """\
## torchdiffeq's test suite, run against nodebench through an import alias

- The suite: the `tests/` directory of a torchdiffeq checkout (`checkout`, e.g. the repository's HEAD),
  its modules `modules` run one by one with unittest, each in a fresh Python process.
- Backends: `torchdiffeq` (the checkout's own package, first on `sys.path`; the run refuses to count
  if `torchdiffeq` comes from elsewhere) and `nodebench` (a module named `torchdiffeq` in
  `sys.modules` whose `odeint`, `odeint_adjoint` and `odeint_event` are nodebench's). The tests
  themselves are not changed.
- Counted: every test method and every `subTest` block, each pass / fail (an assertion) / error
  (another exception) / skip; a test method whose subtests failed counts as failed. Subtests whose
  parameters name a method in `aside` (none by default; e.g. `--set aside=['gl6']` to see the
  suite without a method's subtests) are also counted apart, and `tests_pass_without_aside` counts
  the test methods that pass or fail only in such subtests.
- Records: variant `<backend>/<module>` with metrics `<tests|subtests>_<outcome>[_aside]`,
  `tests_pass_without_aside` and `seconds`; one row per test or subtest, variant `<backend>/<id>`,
  metric `outcome_<outcome>` (value 1); failure messages in the artifacts `outcomes-<backend>-<module>.json`.
  `meta.json` records the checkout's path, git commit where it has one (else the `revision` the run
  names), and a digest of its files.
- `OMP_NUM_THREADS=threads` in the test processes; the suite runs on the CPU (and on CUDA where the
  tests find it: they choose their devices themselves).
"""


@dataclass(frozen=True)
class Config:
    """Settings of a suite run.

    Attributes:
        seeds: unused by the tests (they seed themselves); one value, recorded.
        checkout: a torchdiffeq checkout's root ("" until set: ``--set checkout=PATH``).
        revision: the checkout's commit as the caller knows it, for an extracted checkout that is no
            git work tree (a git work tree's own commit is recorded in any case).
        backends: subset of ``("torchdiffeq", "nodebench")``.
        modules: test modules of ``<checkout>/tests`` to run.
        aside: methods whose subtests are also counted apart.
        threads: ``OMP_NUM_THREADS`` of the test processes.
        timeout_s: the longest one module may run, per backend.
    """

    seeds: tuple[int, ...] = (0,)
    checkout: str = ""
    revision: str = ""
    backends: tuple[str, ...] = schema.BACKENDS
    modules: tuple[str, ...] = MODULES
    aside: tuple[str, ...] = ()
    threads: int = 1
    timeout_s: float = 3600.0


PRESETS = {
    "smoke": Config(modules=("api_tests",)),
    "standard": Config(),
    "paper": Config(),
}


def _checkout(config: Config) -> Path:
    return Path(config.checkout).expanduser().resolve()


def preflight(config: Config, device: torch.device) -> str | None:
    """Why the suite cannot run (no checkout given, or it lacks what the run needs), else None."""
    if not config.checkout:
        return "needs a torchdiffeq checkout: --set checkout=PATH (its root, holding tests/ and torchdiffeq/)"
    root = _checkout(config)
    missing = [f"tests/{m}.py" for m in config.modules if not (root / "tests" / f"{m}.py").is_file()]
    if not (root / "tests" / "problems.py").is_file():
        missing.append("tests/problems.py")
    if "torchdiffeq" in config.backends and not (root / "torchdiffeq" / "__init__.py").is_file():
        missing.append("torchdiffeq/__init__.py")
    if missing:
        return f"the checkout {root} lacks {', '.join(missing)}"
    try:
        import scipy  # noqa: F401 - the tests' problems.py imports it
    except ImportError:
        return "the tests need scipy (pip install scipy)"
    return None


def data_provenance(config: Config) -> dict[str, Any]:
    """The checkout in ``meta.json``: path, git commit (where it is a git work tree) and the sha256 of
    its ``tests/`` and ``torchdiffeq/`` Python files (path and bytes, sorted)."""
    root = _checkout(config)
    digest = hashlib.sha256()
    files = sorted(p for sub in ("tests", "torchdiffeq") for p in (root / sub).rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    out: dict[str, Any] = {"checkout": str(root), "files": len(files), "sha256": digest.hexdigest()}
    version = root / "torchdiffeq" / "__init__.py"
    if version.is_file():
        match = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", version.read_text(encoding="utf-8"))
        out["torchdiffeq_version"] = match.group(1) if match else None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30
        )
        out["git_commit"] = commit.stdout.strip() if commit.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = None
    out["revision"] = config.revision or None  # as the caller named it
    return out


def plan(config: Config) -> list[UnitSpec]:
    """One unit per backend and test module."""
    unknown = sorted(set(config.backends) - set(schema.BACKENDS))
    if unknown or not config.backends:
        raise ValueError(f"backends must be among {schema.BACKENDS}, got {config.backends}")
    if not config.modules or not all(re.fullmatch(r"[A-Za-z_]\w*", m) for m in config.modules):
        raise ValueError(f"modules must be names of test modules, got {config.modules}")
    if config.threads < 1 or config.timeout_s <= 0:
        raise ValueError("threads must be >= 1 and timeout_s positive")
    return [
        UnitSpec(f"{backend}/{module}", {"backend": backend, "module": module})
        for backend in config.backends
        for module in config.modules
    ]


def run_suite_module(config: Config, backend: str, module: str) -> dict[str, Any]:
    """Run one test module against one backend in a fresh process; its JSON document."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])  # this nodebench, whatever is installed
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    env["OMP_NUM_THREADS"] = str(config.threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "outcomes.json"
        cmd = [
            sys.executable,
            "-m",
            "nodebench.workloads._compat_suite",
            "--checkout",
            str(_checkout(config)),
        ]
        cmd += ["--backend", backend, "--module", module, "--out", str(out)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=config.timeout_s, cwd=tmp)
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(
                f"the {module} suite process for {backend} failed (exit {proc.returncode}): "
                f"{proc.stderr[-2000:]}"
            )
        return json.loads(out.read_text())


def summarise(outcomes: list[dict[str, Any]], aside: tuple[str, ...]) -> dict[str, int]:
    """Counts of :func:`~nodebench.workloads._compat_suite.counts`, the same over the subtests naming
    a method in ``aside`` (suffix ``_aside``), and ``tests_pass_without_aside``."""
    out = count_outcomes(outcomes)
    set_aside = [o for o in outcomes if o["kind"] == "subtest" and schema.names_method(o["id"], aside)]
    out.update({f"{k}_aside": v for k, v in count_outcomes(set_aside).items() if k.startswith("subtests")})
    failing_subs: dict[str, list[dict[str, Any]]] = {}
    for o in outcomes:
        if o["kind"] == "subtest" and o["outcome"] in ("fail", "error"):
            failing_subs.setdefault(o["id"].split(" ", 1)[0], []).append(o)
    passing = 0
    for o in outcomes:
        if o["kind"] != "test":
            continue
        subs = failing_subs.get(o["id"], [])
        only_aside = o["detail"] in ("a subtest failed", "a subtest raised") and all(
            schema.names_method(s["id"], aside) for s in subs
        )
        passing += o["outcome"] == "pass" or (o["outcome"] in ("fail", "error") and bool(subs) and only_aside)
    out["tests_pass_without_aside"] = passing
    return out


def execute(spec: UnitSpec, unit: UnitContext) -> None:
    """Run one unit of :func:`plan`: the module's outcomes and counts for the backend."""
    config: Config = unit.config
    backend, module = spec.params["backend"], spec.params["module"]
    seed = config.seeds[0]
    doc = run_suite_module(config, backend, module)
    outcomes = doc["outcomes"]
    variant = schema.count_variant(backend, module)
    for metric, value in summarise(outcomes, tuple(config.aside)).items():
        unit.record(variant, seed, 0, metric, value, "tests" if metric.startswith("tests") else "subtests")
    unit.record(variant, seed, 0, "seconds", doc["seconds"], "s")
    seen: dict[str, int] = {}
    for o in outcomes:
        key = f"{backend}/{o['id']}"
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key = f"{key} #{seen[key]}"
        unit.record(key, seed, 0, f"{schema.OUTCOME_PREFIX}{o['outcome']}", 1)
    unit.save(f"outcomes-{backend}-{module}.json", json.dumps(doc, indent=1).encode())
    unit.tick()
