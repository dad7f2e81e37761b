"""The CI gate: portable across CPUs (round-off passes), sharp on real changes (planted regressions trip)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import gate

ROOT = Path(__file__).resolve().parents[1]


def _copy_tree(tmp_path: Path) -> Path:
    work = tmp_path / "repo"
    for name in ("nodebench", "benchmarks"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__", "peer"))
    shutil.copytree(ROOT / "results" / "baselines", work / "results" / "baselines")
    return work


def _run_gate(work: Path, only: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(work)}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.gate", "--only", only],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_gate_passes_on_the_committed_code(tmp_path):
    proc = _run_gate(_copy_tree(tmp_path), "solve.linear.dopri5")
    assert proc.returncode == 0, proc.stderr
    assert "4 passed, 0 failed" in proc.stdout


def test_planted_nfe_regression_trips_the_gate(tmp_path):
    """A copy of nodebench whose right-hand side wrapper evaluates func twice: NFE doubles."""
    work = _copy_tree(tmp_path)
    integrate = work / "nodebench" / "solvers" / "integrate.py"
    src = integrate.read_text()
    planted = src.replace(
        "        counts.nfe += 1\n        yv = y.view(shape)\n",
        "        counts.nfe += 2\n        yv = y.view(shape)\n",
    )
    assert planted != src
    integrate.write_text(planted)
    proc = _run_gate(work, "solve.linear.dopri5")
    assert proc.returncode == 1
    baseline = json.loads((work / "results" / "baselines" / "gate.json").read_text())["metrics"]
    base = baseline["solve.linear.dopri5.nfe"]
    line = next(x for x in proc.stderr.splitlines() if "solve.linear.dopri5.nfe" in x)
    assert f"baseline {base:.6g}, new {2 * base:.6g}, threshold {base:.6g}" in line
    assert "python -m benchmarks.gate --update" in line
    assert "baseline machine: cpu " in proc.stderr and "this machine:     cpu " in proc.stderr


@pytest.mark.parametrize(
    "name,base,new,fails",
    [
        ("a.nfe", 10, 10, False),
        ("a.nfe", 10, 11, True),
        ("a.nfe", 10, 9, False),
        ("a.error", 1e-6, 1.0000005e-6, False),
        ("a.error", 1e-6, 1.0009e-6, False),
        ("a.error", 1e-6, 1.1e-6, True),
        ("a.error", 1e-6, 2e-6, True),
        ("speed.x.ratio", 0.4, 0.79, False),
        ("speed.x.ratio", 0.4, 0.81, True),
    ],
)
def test_compare_rules(name, base, new, fails):
    failures, _ = gate.compare({name: base}, {name: new})
    assert bool(failures) == fails


def _baseline() -> dict:
    return json.loads(gate.BASELINE.read_text())


def _round_off_level(doc: dict) -> list[str]:
    """Error metrics whose baseline lies below their own round-off floor (differences of round-off)."""
    scales = doc["scales"]
    return [n for n, v in doc["metrics"].items() if n in scales and v <= gate.roundoff_floor(scales[n])]


def test_every_error_metric_has_a_recorded_scale_and_the_baseline_its_machine():
    doc = _baseline()
    errors = [n for n in doc["metrics"] if gate._kind(n) == "error"]
    assert errors and all(n in doc["scales"] for n in errors)
    assert doc["machine"]["cpu"] and doc["machine"]["cpu_capability"]


def test_round_off_level_errors_pass_when_their_baseline_is_ten_times_smaller():
    """Measured here against a baseline whose round-off-level errors are all divided by 10."""
    doc = _baseline()
    tiny = _round_off_level(doc)
    assert len(tiny) >= 2, tiny
    baseline = {**doc["metrics"], **{n: doc["metrics"][n] / 10 for n in tiny}}
    new, _, margins = gate.collect("adjoint.")
    assert set(tiny) <= set(new)
    failures, _ = gate.compare(baseline, new, doc["scales"])
    assert failures == []
    assert gate.check_margins(margins) == []


def test_tolerance_level_errors_trip_when_doubled():
    doc = _baseline()
    tiny = set(_round_off_level(doc))
    tolerance_level = [n for n in doc["metrics"] if gate._kind(n) == "error" and n not in tiny]
    assert len(tolerance_level) >= 6
    new, _, _ = gate.collect("solve.linear.tsit5")
    for name in tolerance_level:
        value = new.get(name, doc["metrics"][name])
        failures, _ = gate.compare(doc["metrics"], {name: 2 * value}, doc["scales"])
        assert len(failures) == 1 and name in failures[0], name
    # the measured value itself passes (it is the same code)
    assert gate.compare(doc["metrics"], new, doc["scales"])[0] == []


def test_a_baseline_from_another_cpu_passes_both_ways():
    """The Intel Xeon measurement this baseline replaced, against the committed (AMD EPYC) one and back.

    That measurement predates the backward pass without restarts (issue 13), which changed the
    adjoint's backward NFE and its adaptive gradients against torchdiffeq (now apart at tolerance
    level); those metrics are left out. The round-off-level pair that made the old rule (relative 1e-6,
    no floor) fail between the two CPUs was that adaptive gradient error; the rule for round-off-level
    errors is now exercised by the rk4 adjoint metrics (test above).
    """
    doc = _baseline()
    other = json.loads((ROOT / "tests" / "data" / "gate_other_cpu.json").read_text())["metrics"]
    changed = (".nfe_backward", ".grad_error_vs_torchdiffeq")
    other = {n: v for n, v in other.items() if not (n.startswith("adjoint.") and n.endswith(changed))}
    assert set(other) <= set(doc["metrics"]) and len(other) >= 20
    assert gate.compare(doc["metrics"], other, doc["scales"])[0] == []
    assert gate.compare(other, {n: doc["metrics"][n] for n in other}, doc["scales"])[0] == []


def test_counts_cannot_flip_with_round_off():
    """Every accept/reject ratio and step end of the gate's adaptive solves is far from its threshold."""
    _, _, margins = gate.collect("solve.")
    assert len(margins) == 8  # bosh3, dopri5, tsit5, adams on two problems
    for m in margins.values():
        assert m["decisions"] > 0
        assert min(m["ratio"], m["time"]) > gate.MIN_MARGIN


def test_a_thin_margin_trips():
    failures = gate.check_margins({"solve.x": {"ratio": 3e-9, "time": 0.1, "decisions": 5}})
    assert len(failures) == 1 and "solve.x" in failures[0] and "between CPUs" in failures[0]
