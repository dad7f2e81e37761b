"""CI performance gate: deterministic figures against a committed baseline, speed as a same-run ratio.

    python -m benchmarks.gate                 # check against results/baselines/gate.json (exit 1 on a trip)
    python -m benchmarks.gate --update        # refresh the baseline on purpose (commit the file)
    python -m benchmarks.gate --only solve.   # a subset, by metric-name prefix

Rules, chosen so that the committed baseline holds on any x86 CPU (Intel or AMD) and still trips on a
real change:

- **Counts** (NFE, accepted/rejected steps, saved bytes) must not exceed the baseline: equal passes,
  lower passes with a note to refresh. A count can only differ between CPUs if round-off moves one of
  the solver's discrete decisions across its threshold: an error ratio across 1 (accept/reject) or an
  accepted step's end across an output time (one more step or not). The gate records, for every
  adaptive solve it runs, how far each decision is from its threshold (relative margins, see
  ``metrics.decision_margins``) and trips when one is closer than ``MIN_MARGIN`` = 1e-6: round-off
  moves these quantities by ~1e-16..1e-10 (the error ratio: about eps/rtol), so a count with that margin
  cannot flip on another CPU, and a problem that loses it must be replaced, not baselined.
- **Errors** (relative errors ``max|a - b| / max|b|``) may grow by a relative ``ERROR_RTOL`` (1e-3, for
  accuracy changes) plus an absolute floor at the quantity's round-off scale::

      floor = ROUNDOFF_EPS * eps(dtype) * evaluations * magnitude / reference

  ``magnitude`` is the largest value compared (in the quantity's own units), ``reference`` the
  normaliser ``max|b|``, ``evaluations`` the right-hand-side evaluations whose rounding accumulates
  into ``a`` and ``b``; all three are recorded in the baseline's ``scales``. Each evaluation plus its
  Runge-Kutta stage update rounds the state by a few tens of eps (sums over 50-wide layers, tanh);
  worst case this accumulates linearly, hence ``ROUNDOFF_EPS`` = 256 eps per evaluation. Errors at
  round-off level (the adjoint gradient against torchdiffeq, ~1e-13 in float64 with a floor of
  ~2e-11) then differ freely between CPUs (Intel 9.9e-14, AMD 2.8e-13 measured), while an error at
  solver-tolerance level (1e-7 .. 1e-5, floor ~1e-11) that doubles trips.
- **Speed** is never compared with a stored time: nodebench / torchdiffeq wall time is measured in this
  same run and must stay within ``SPEED_FACTOR`` of the baseline ratio.

The baseline records the machine it came from (CPU model, torch's CPU capability, versions); a trip
prints both machines.

Why not pytest-benchmark's ``--benchmark-compare-fail``? It compares absolute timings against a stored
run, which on shared 2-core machines trips on noise and says nothing about counts; asv tracks history
(``asv run``), and this gate answers the CI question: did this commit make the solvers do more work,
save more memory, lose accuracy, or fall behind torchdiffeq in the same process?
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks import metrics
from nodebench.measure.provenance import cpu_model

BASELINE = Path(__file__).resolve().parents[1] / "results" / "baselines" / "gate.json"
SPEED_FACTOR = 2.0
ERROR_RTOL = 1e-3
ROUNDOFF_EPS = 256
MIN_MARGIN = 1e-6
REFRESH = "python -m benchmarks.gate --update"

Scales = dict[str, dict[str, Any]]


def _collectors() -> dict[str, Callable[[], dict[str, Any]]]:
    out: dict[str, Callable[[], dict[str, Any]]] = {}
    for problem in ("linear", "spiral"):
        for method in (*metrics.ADAPTIVE, "adams"):
            out[f"solve.{problem}.{method}"] = lambda p=problem, m=method: metrics.solve_stats(m, p)
    for norm in ("seminorm", "full"):
        out[f"adjoint.spiral.{norm}"] = lambda n=norm: metrics.adjoint_stats(n)
    out["adjoint.spiral_100_times.seminorm"] = lambda: metrics.adjoint_stats("seminorm", times=100)
    for mode in ("direct", "adjoint"):
        out[f"memory.{mode}"] = lambda m=mode: {
            f"saved_bytes_L{L}": metrics.saved_bytes(m, L) for L in (5, 10, 20)
        }
    out["speed.spiral"] = lambda: {"ratio": metrics.speed_ratio_vs_torchdiffeq()["ratio"]}
    return out


def machine() -> dict[str, str]:
    """The machine a measurement came from: what decides its round-off (CPU, kernels, versions)."""
    return {
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def collect(only: str = "") -> tuple[dict[str, float], Scales, dict[str, dict[str, float]]]:
    """Every gate metric (or those whose name starts with ``only``).

    Returns ``(values, scales, margins)``: ``{"group.key": value}``, the round-off scale of each error
    metric, and each group's decision margins (groups without adaptive solves have none).
    """
    torch.set_num_threads(1)
    values: dict[str, float] = {}
    scales: Scales = {}
    margins: dict[str, dict[str, float]] = {}
    for group, fn in _collectors().items():
        if not group.startswith(only) and not only.startswith(group):
            continue
        with metrics.decision_margins() as margin:
            stats = fn()
        if margin["decisions"] and not group.startswith("speed."):
            margins[group] = dict(margin)
        for key, scale in stats.pop("scales", {}).items():
            scales[f"{group}.{key}"] = scale
        for key, value in stats.items():
            name = f"{group}.{key}"
            if name.startswith(only):
                values[name] = float(value)
    return values, scales, margins


def _kind(name: str) -> str:
    if name.startswith("speed."):
        return "speed"
    if "error" in name:
        return "error"
    return "count"


def roundoff_floor(scale: dict[str, Any] | None) -> float:
    """The absolute slack of an error metric: its round-off scale (0 when none is recorded)."""
    if not scale:
        return 0.0
    eps = torch.finfo(getattr(torch, scale["dtype"])).eps
    return ROUNDOFF_EPS * eps * scale["evaluations"] * scale["magnitude"] / scale["reference"]


def compare(
    baseline: dict[str, float], new: dict[str, float], scales: Scales | None = None
) -> tuple[list[str], list[str]]:
    """Return (failures, notes), each a human-readable line naming metric, baseline, new value, threshold.

    ``scales`` are the baseline's round-off scales of the error metrics (see the module docstring).
    """
    scales = scales or {}
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
            floor = roundoff_floor(scales.get(name))
            limit = base * (1 + ERROR_RTOL) + floor
            ok = value <= limit
            rule = f"<= baseline x (1 + {ERROR_RTOL:g}) + round-off floor {floor:.3g}"
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


def check_margins(margins: dict[str, dict[str, float]]) -> list[str]:
    """Failures for groups whose counts could flip with round-off (a decision closer than MIN_MARGIN)."""
    out = []
    for group, m in sorted(margins.items()):
        for what in ("ratio", "time"):
            if m[what] < MIN_MARGIN:
                out.append(
                    f"GATE FAIL {group}: a solver decision is {m[what]:.3g} from its threshold "
                    f"({what} margin < {MIN_MARGIN:g}), so its counts could differ between CPUs; "
                    "choose a problem or tolerance with a margin before baselining it."
                )
    return out


def _machine_line(m: dict[str, str] | None) -> str:
    if not m:
        return "(not recorded)"
    return ", ".join(f"{k} {v}" for k, v in m.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gate", description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="write the measured values as the new baseline")
    parser.add_argument("--only", default="", help="only metrics whose name starts with this prefix")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    args = parser.parse_args(argv)
    new, new_scales, margins = collect(args.only)
    here = machine()
    margin_failures = check_margins(margins)
    for group, m in sorted(margins.items()):
        print(f"  margins {group}: ratio {m['ratio']:.3g}, time {m['time']:.3g} ({m['decisions']} decisions)")
    if args.update:
        if margin_failures:
            print("\n".join(margin_failures), file=sys.stderr)
            return 1
        old = json.loads(args.baseline.read_text()) if args.baseline.exists() else {}
        metrics_ = {**old.get("metrics", {}), **new}
        scales = {**old.get("scales", {}), **new_scales}
        doc = {"machine": here, "metrics": metrics_, "scales": scales}
        args.baseline.parent.mkdir(parents=True, exist_ok=True)
        args.baseline.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        print(f"baseline written: {args.baseline} ({len(new)} metrics)")
        return 0
    if not args.baseline.exists():
        print(f"no baseline at {args.baseline}; create it with `{REFRESH}`", file=sys.stderr)
        return 2
    doc = json.loads(args.baseline.read_text())
    baseline = doc["metrics"]
    failures, notes = compare(baseline, new, doc.get("scales"))
    failures += margin_failures
    width = max(len(n) for n in new)
    for name, value in sorted(new.items()):
        print(f"  {name:<{width}}  baseline {baseline.get(name, math.nan):>12.6g}  new {value:>12.6g}")
    for line in notes:
        print("note:", line)
    for line in failures:
        print(line, file=sys.stderr)
    if failures:
        print(f"baseline machine: {_machine_line(doc.get('machine'))}", file=sys.stderr)
        print(f"this machine:     {_machine_line(here)}", file=sys.stderr)
    print(f"gate: {len(new) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
