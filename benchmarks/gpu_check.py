"""GPU readiness in one command: ``make gpu-check OUT=DIR`` (or ``python -m benchmarks.gpu_check --out DIR``).

Meant for a lent GPU machine where torch with CUDA, torchdiffeq, pandas, seaborn, psutil and pytest are
installed and nothing can be fetched: it runs from the source tree (no install), with the pure-Python
extras nodebench needs beyond those (tqdm, pytest-benchmark) taken from ``--deps`` (default
``.gpu-deps``, filled here by ``make gpu-deps`` and carried along). Steps, each with its own time limit,
all inside ``--budget`` seconds (default 480):

1. ``env``: Python, torch, CUDA and GPU (``nvidia-smi``); stops at once, exit status 2, if the device
   is CUDA and CUDA is not available.
2. ``check``: ``nodebench check --device DEVICE --quick`` (correctness against torchdiffeq and
   analytic references).
3. ``peer``: the peer benchmarks (``benchmarks/peer``) with torch's default device set to DEVICE.
4. ``smoke``: ``nodebench reproduce --preset smoke --device DEVICE``: every available workload's smoke
   preset and the report (CUDA peak memory of direct backprop against the adjoint is in the memory
   workload's records; MNIST runs if its data is in ``$NODEBENCH_DATA``).
5. ``probe``: on CUDA, ``python -m benchmarks.cuda_memory_probe``: the memory workload's CUDA peak
   with and without cuBLAS's workspace, and the blocks alive at the peak (its table goes into
   ``GPU_CHECK.md``).
6. ``ray``: if ray is importable, a two-unit spiral run under ``--executor ray`` with half a GPU per
   unit (both units share one GPU).

Writes to OUT: ``GPU_CHECK.md`` (the summary: each step's status and time, GPU peak memory direct vs
adjoint), ``logs/<step>.txt``, ``runs/`` (the run store) and ``report/``. ``--device cpu`` runs the
same steps on the CPU (a dry run of the script on a machine without a GPU). Exit status: 0 all steps
passed or were skipped with a reason, 1 a step failed, 2 the device is not available.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("env", "check", "peer", "smoke", "probe", "ray")
#: Share of the budget each step may use at most (the rest of the budget is passed on to later steps).
SHARES = {"env": 0.05, "check": 0.2, "peer": 0.25, "smoke": 0.45, "probe": 0.3, "ray": 0.2}
NODEBENCH = "import sys; from nodebench.cli import main; sys.exit(main(sys.argv[1:]))"


def _environment(deps: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT), *([str(deps)] if deps is not None else []), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.setdefault("MPLBACKEND", "Agg")
    return env


def _run(name: str, argv: list[str], env: dict[str, str], timeout: float, logs: Path) -> tuple[str, float]:
    """Run one step as a subprocess with a time limit; log its output. Returns (status, seconds)."""
    start = time.monotonic()
    log = logs / f"{name}.txt"
    with open(log, "w", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(argv)}\n\n")
        handle.flush()
        try:
            code = subprocess.run(
                argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            return f"TIMEOUT after {timeout:.0f} s", time.monotonic() - start
    return ("passed" if code == 0 else f"FAILED (exit {code})"), time.monotonic() - start


def _tail(path: Path, lines: int = 12) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
    return "\n".join(text[-lines:])


def _peak_table(runs: Path) -> str:
    """GPU (or RSS) peak memory of the memory workload: direct backprop against the adjoint."""
    try:
        import pandas as pd

        from nodebench import store
    except ImportError as exc:  # pragma: no cover - the smoke step would have failed first
        return f"(cannot read the records: {exc})"
    try:
        frame = store.load_runs(runs / "memory")
    except (FileNotFoundError, ValueError) as exc:
        return f"(no memory run: {exc})"
    keep = frame["metric"].isin(["cuda_peak", "saved_bytes", "rss_growth"])
    if not keep.any():
        return "(the memory run recorded no peak)"
    table = pd.pivot_table(frame[keep], index="variant", columns="metric", values="value", aggfunc="max")
    lines = ["| variant | " + " | ".join(table.columns) + " |", "| --- |" + " ---: |" * len(table.columns)]
    for variant, row in table.iterrows():
        lines.append(f"| {variant} | " + " | ".join(f"{value / 2**20:.2f}" for value in row) + " |")
    return "\n".join(lines) + "\n\n(MiB, the largest over seeds; variants are `<mode>/L=<steps>`)"


def main(argv: list[str] | None = None) -> int:
    """Run the GPU readiness steps; see the module docstring."""
    description = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=description)
    parser.add_argument("--out", required=True, help="folder for the records, logs, report and summary")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="default: cuda")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for all steps (default 480)")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS), help="default: all")
    parser.add_argument("--deps", default=str(ROOT / ".gpu-deps"), help="extra pure-Python packages")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    deps = Path(args.deps) if Path(args.deps).is_dir() else None
    env = _environment(deps)
    deadline = time.monotonic() + args.budget
    py = sys.executable
    rows: list[tuple[str, str, float, str]] = []
    lines = [f"# GPU check ({args.device})", ""]

    # 1. environment: fail fast without the device
    try:
        import torch
    except ImportError as exc:
        print(f"gpu-check: torch is not importable ({exc})", file=sys.stderr)
        return 2
    cuda = torch.cuda.is_available()
    facts = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch CUDA build": str(torch.version.cuda),
        "CUDA available": str(cuda),
        "GPU": torch.cuda.get_device_name(0) if cuda else "none",
        "extra packages from": str(deps) if deps else "(none)",
    }
    for module in ("torchdiffeq", "pandas", "seaborn", "psutil", "tqdm", "pytest_benchmark", "ray"):
        spec = importlib.util.find_spec(module) if deps is None else None
        if deps is not None:  # look where the subprocesses will look
            sys.path.insert(0, str(deps))
            spec = importlib.util.find_spec(module)
            sys.path.remove(str(deps))
        facts[module] = "absent" if spec is None else "present"
    lines += [f"- {key}: {value}" for key, value in facts.items()]
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True, check=False).stdout
        (logs / "nvidia-smi.txt").write_text(smi, encoding="utf-8")
    if args.device == "cuda" and not cuda:
        message = (
            f"gpu-check: --device cuda but CUDA is not available (torch {torch.__version__}, CUDA build "
            f"{torch.version.cuda}); nothing was run. Use --device cpu for a dry run."
        )
        print(message, file=sys.stderr)
        (out / "GPU_CHECK.md").write_text("\n".join([*lines, "", message, ""]), encoding="utf-8")
        return 2
    rows.append(("env", "passed", 0.0, ""))

    def limit(step: str) -> float:
        return max(5.0, min(SHARES[step] * args.budget, deadline - time.monotonic()))

    def nodebench(*cli: str) -> list[str]:
        return [py, "-c", NODEBENCH, *cli]

    plan: dict[str, tuple[list[str] | None, str]] = {
        "check": (nodebench("check", "--device", args.device, "--quick"), ""),
        "smoke": (
            nodebench("reproduce", "--preset", "smoke", "--device", args.device, "--out", str(out)),
            "",
        ),
    }
    if facts["pytest_benchmark"] == "absent":
        plan["peer"] = (None, "pytest-benchmark is not importable (run `make gpu-deps` and carry .gpu-deps)")
    else:
        plan["peer"] = (
            [py, "-m", "pytest", "benchmarks/peer", "-q", "-s", "-p", "no:cacheprovider"]
            + ["--benchmark-enable", "--benchmark-max-time=0.2", "-o", "addopts="],
            "",
        )
    if args.device == "cuda":
        # six fresh processes (~15 s each on an H200); direct backprop's peaks are in the smoke records
        probe = [py, "-m", "benchmarks.cuda_memory_probe", "--steps", "2"]
        plan["probe"] = (probe + ["--modes", "nodebench-adjoint,torchdiffeq-adjoint"], "")
    else:
        plan["probe"] = (None, "it measures CUDA memory (--device cuda only)")
    if facts["ray"] == "absent":
        plan["ray"] = (None, "ray is not importable here (`pip install 'nodebench[ray]'`)")
    else:
        ray_cli = ["run", "spiral", "--preset", "smoke", "--device", args.device, "--executor", "ray"]
        ray_cli += ["--set", "problems=('example1',)", "--set", "solvers=('dopri5',)"]
        ray_cli += ["--gpus-per-unit", "0.5"] if args.device == "cuda" else ["--cpus-per-unit", "1"]
        plan["ray"] = (nodebench(*ray_cli, "--out", str(out / "runs")), "")
    env_peer = dict(env, NODEBENCH_PEER_DEVICE=args.device)
    for step in STEPS[1:]:
        if step not in args.steps:
            continue
        argv_step, reason = plan[step]
        if argv_step is None:
            rows.append((step, "skipped", 0.0, reason))
            continue
        if deadline - time.monotonic() < 5:
            rows.append((step, "skipped", 0.0, "the budget is spent"))
            continue
        status, seconds = _run(step, argv_step, env_peer if step == "peer" else env, limit(step), logs)
        rows.append((step, status, seconds, _tail(logs / f"{step}.txt", 3).replace("\n", " / ")[:300]))
        print(f"gpu-check: {step}: {status} ({seconds:.0f} s)", file=sys.stderr)

    lines += ["", "| step | status | seconds | last lines of the log |", "| --- | --- | ---: | --- |"]
    lines += [f"| {s} | {st} | {sec:.0f} | {note.replace('|', '/')} |" for s, st, sec, note in rows]
    if (out / "runs" / "memory").is_dir():
        lines += ["", "## Peak memory: direct backprop against the adjoint", "", _peak_table(out / "runs")]
    probe_log = logs / "probe.txt"
    if any(s == "probe" and st == "passed" for s, st, _, _ in rows) and probe_log.exists():
        table = probe_log.read_text(encoding="utf-8").split("\n", 2)[-1].strip()  # without "$ command"
        title = "## Where the adjoint's CUDA peak comes from (benchmarks/cuda_memory_probe.py)"
        lines += ["", title, "", table]
    lines += ["", f"Logs in `logs/`, records in `runs/`, report in `report/`; budget {args.budget:.0f} s."]
    (out / "GPU_CHECK.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"gpu-check: summary in {out / 'GPU_CHECK.md'}", file=sys.stderr)
    return 0 if all(st in ("passed", "skipped") for _, st, _, _ in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
