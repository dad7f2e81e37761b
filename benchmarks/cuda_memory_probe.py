"""Where the CUDA peak of the memory workload's pass comes from: ``python -m benchmarks.cuda_memory_probe``.

The GPU check found the adjoint's CUDA peak flat in L (as the paper says) but some 70 MB above direct
backprop's at small L. This probe runs the memory workload's metered pass (:func:`nodebench.workloads.
memory.measure`, one fresh process per case, as the workload does) under a few settings that each turn
one suspect off, and lists the tensors alive at the peak with the Python line that allocated them
(torch's CUDA memory history):

- ``default``: as the workload runs;
- ``cublas0``: ``CUBLAS_WORKSPACE_CONFIG=:0:0`` (cuBLAS gets no workspace from torch's allocator);
- ``nocudnn``: ``torch.backends.cudnn.enabled = False``.

Prints one table row per case (mode, L, setting, CUDA peak in MiB) and, for each mode at its smallest
L under ``default``, the largest blocks alive at the peak. Needs CUDA; exits 2 without it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "default": {},
    "cublas0": {"CUBLAS_WORKSPACE_CONFIG": ":0:0"},
    "nocudnn": {"NODEBENCH_PROBE_NOCUDNN": "1"},
}
MIB = 2**20


def _child(mode: str, steps: int, batch: int, channels: int, size: int, blocks: int) -> None:
    """One case in this (fresh) process; prints a JSON line."""
    import torch

    from nodebench.workloads.memory import measure

    if os.environ.get("NODEBENCH_PROBE_NOCUDNN"):
        torch.backends.cudnn.enabled = False
    torch.cuda.memory._record_memory_history(max_entries=1_000_000)
    result = measure(mode, steps, batch, channels, size, seed=0, device="cuda", repeats=1)
    snapshot = torch.cuda.memory._snapshot()
    torch.cuda.memory._record_memory_history(enabled=None)
    print(json.dumps({"cuda_peak": result.get("cuda_peak"), "at_peak": _alive_at_peak(snapshot, blocks)}))


def _alive_at_peak(snapshot: dict, blocks: int) -> list[dict]:
    """Replay the allocation trace; the ``blocks`` largest allocations alive when the total peaked."""
    live: dict[int, tuple[int, list]] = {}
    total, best, best_live = 0, -1, {}
    for trace in snapshot.get("device_traces", []):
        for event in trace:
            action, addr = event.get("action"), event.get("addr")
            if action == "alloc":
                live[addr] = (event["size"], event.get("frames", []))
                total += event["size"]
                if total > best:
                    best, best_live = total, dict(live)
            elif action == "free_requested" and addr in live:
                total -= live.pop(addr)[0]
    largest = sorted(best_live.values(), key=lambda item: -item[0])[:blocks]
    return [{"MiB": round(size / MIB, 3), "where": _where(frames)} for size, frames in largest]


def _where(frames: list, torch_dir: str | None = None) -> str:
    """The innermost few Python frames outside torch's own package (``torch_dir``, found if None: a
    path test on "/torch/" would also drop a virtual environment that lives under a folder of that name)."""
    if torch_dir is None:
        import torch

        torch_dir = str(Path(torch.__file__).resolve().parent)
    inside = torch_dir.rstrip("/") + "/"
    ours = [
        f
        for f in frames
        if f.get("filename", "").endswith(".py") and not str(f.get("filename", "")).startswith(inside)
    ]
    return (
        " <- ".join(f"{Path(f['filename']).name}:{f['line']} {f['name']}" for f in ours[:3])
        or "(no Python frame)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modes", default="nodebench-direct,nodebench-adjoint,torchdiffeq-direct,torchdiffeq-adjoint"
    )
    parser.add_argument("--steps", default="2,8")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--size", type=int, default=7)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "L"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], int(args.child[1]), args.batch, args.channels, args.size, args.blocks)
        return 0
    import torch

    if not torch.cuda.is_available():
        print("cuda_memory_probe: CUDA is not available", file=sys.stderr)
        return 2
    modes, steps = args.modes.split(","), [int(s) for s in args.steps.split(",")]
    cases = [(m, L, "default") for m in modes for L in steps]
    cases += [(m, steps[0], s) for m in modes if m.endswith("adjoint") for s in SETTINGS if s != "default"]
    print(f"batch {args.batch}, channels {args.channels}, size {args.size}; CUDA peak in MiB\n")
    print("| mode | L | setting | cuda_peak |\n| --- | ---: | --- | ---: |")
    details = []
    for mode, L, setting in cases:
        env = {
            **os.environ,
            **SETTINGS[setting],
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        argv_child = [sys.executable, "-m", "benchmarks.cuda_memory_probe", "--child", mode, str(L)]
        argv_child += ["--batch", str(args.batch), "--channels", str(args.channels), "--size", str(args.size)]
        proc = subprocess.run(argv_child, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            print(f"| {mode} | {L} | {setting} | FAILED: {proc.stderr.strip().splitlines()[-1:]} |")
            continue
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"| {mode} | {L} | {setting} | {out['cuda_peak'] / MIB:.2f} |")
        if setting == "default" and L == steps[0]:
            details.append((mode, out["at_peak"]))
    for mode, blocks in details:
        print(f"\n{mode}, L={steps[0]}: largest blocks alive at the peak")
        for block in blocks:
            print(f"  {block['MiB']:9.3f} MiB  {block['where']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
