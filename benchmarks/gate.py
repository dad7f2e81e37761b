"""CI performance gate: deterministic figures against a committed baseline, speed as a same-run ratio.

    python -m benchmarks.gate                 # check against results/baselines/gate.json (exit 1 on a trip)
    python -m benchmarks.gate --update        # refresh the baseline on purpose (commit the file)
    python -m benchmarks.gate --only solve.   # a subset, by metric-name prefix

Rules. Counts (NFE, steps, saved bytes) must not exceed the baseline: equal passes, lower passes with a
note to refresh the baseline. Numerical errors must not exceed the baseline by more than a relative
1e-6. Speed is never compared with a stored time: nodebench / torchdiffeq wall time is measured in this
same run and must stay within a generous factor (``SPEED_FACTOR``) of the baseline ratio.

Why not pytest-benchmark's ``--benchmark-compare-fail``? It compares absolute timings against a stored
run, which on shared 2-core machines trips on noise and says nothing about counts; asv tracks history
(``asv run``), and this gate answers the CI question: did this commit make the solvers do more work,
save more memory, lose accuracy, or fall behind torchdiffeq in the same process?
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks import metrics

BASELINE = Path(__file__).resolve().parents[1] / "results" / "baselines" / "gate.json"
SPEED_FACTOR = 2.0
ERROR_RTOL = 1e-6
REFRESH = "python -m benchmarks.gate --update"


def _collectors() -> dict[str, Callable[[], dict[str, float]]]:
    out: dict[str, Callable[[], dict[str, float]]] = {}
    for problem in ("linear", "spiral"):
        for method in metrics.ADAPTIVE:
            out[f"solve.{problem}.{method}"] = lambda p=problem, m=method: metrics.solve_stats(m, p)
    for norm in ("seminorm", "full"):
        out[f"adjoint.spiral.{norm}"] = lambda n=norm: metrics.adjoint_stats(n)
    for mode in ("direct", "adjoint"):
        out[f"memory.{mode}"] = lambda m=mode: {
            f"saved_bytes_L{L}": metrics.saved_bytes(m, L) for L in (5, 10, 20)
        }
    out["speed.spiral"] = lambda: {"ratio": metrics.speed_ratio_vs_torchdiffeq()["ratio"]}
    return out


def collect(only: str = "") -> dict[str, float]:
    """Every gate metric (or those whose name starts with ``only``), as ``{"group.key": value}``."""
    torch.set_num_threads(1)
    values: dict[str, float] = {}
    for group, fn in _collectors().items():
        if not group.startswith(only) and not only.startswith(group):
            continue
        for key, value in fn().items():
            name = f"{group}.{key}"
            if name.startswith(only):
                values[name] = float(value)
    return values


def _kind(name: str) -> str:
    if name.startswith("speed."):
        return "speed"
    if "error" in name:
        return "error"
    return "count"


def compare(baseline: dict[str, float], new: dict[str, float]) -> tuple[list[str], list[str]]:
    """Return (failures, notes), each a human-readable line naming metric, baseline, new value, threshold."""
    failures, notes = [], []
    for name, value in sorted(new.items()):
        if name not in baseline:
            notes.append(f"{name}: new metric {value:g} has no baseline (refresh with `{REFRESH}`)")
            continue
        base = baseline[name]
        kind = _kind(name)
        if kind == "count":
            limit, ok = base, value <= base
            rule = "<= baseline (exact count)"
        elif kind == "error":
            limit = base * (1 + ERROR_RTOL) + 1e-300
            ok = value <= limit
            rule = f"<= baseline x (1 + {ERROR_RTOL:g})"
        else:
            limit = base * SPEED_FACTOR
            ok = value <= limit
            rule = f"<= {SPEED_FACTOR:g} x baseline ratio (nodebench/torchdiffeq, same run)"
        if not ok:
            failures.append(
                f"GATE FAIL {name}: baseline {base:.6g}, new {value:.6g}, threshold {limit:.6g} ({rule}). "
                f"If this change is intended, refresh the baseline with `{REFRESH}` and commit it."
            )
        elif kind == "count" and value < base:
            notes.append(f"{name}: improved {base:g} -> {value:g}; refresh the baseline with `{REFRESH}`")
    return failures, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gate", description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="write the measured values as the new baseline")
    parser.add_argument("--only", default="", help="only metrics whose name starts with this prefix")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    args = parser.parse_args(argv)
    new = collect(args.only)
    if args.update:
        old = json.loads(args.baseline.read_text()) if args.baseline.exists() else {}
        old.update(new)
        args.baseline.parent.mkdir(parents=True, exist_ok=True)
        args.baseline.write_text(json.dumps(old, indent=1, sort_keys=True) + "\n")
        print(f"baseline written: {args.baseline} ({len(new)} metrics)")
        return 0
    if not args.baseline.exists():
        print(f"no baseline at {args.baseline}; create it with `{REFRESH}`", file=sys.stderr)
        return 2
    baseline = json.loads(args.baseline.read_text())
    failures, notes = compare(baseline, new)
    width = max(len(n) for n in new)
    for name, value in sorted(new.items()):
        print(f"  {name:<{width}}  baseline {baseline.get(name, float('nan')):>12.6g}  new {value:>12.6g}")
    for line in notes:
        print("note:", line)
    for line in failures:
        print(line, file=sys.stderr)
    print(f"gate: {len(new) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
