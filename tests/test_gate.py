"""The CI gate trips on a planted regression, with a message naming metric, baseline, value, threshold."""

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
    baseline = json.loads((work / "results" / "baselines" / "gate.json").read_text())
    base = baseline["solve.linear.dopri5.nfe"]
    line = next(x for x in proc.stderr.splitlines() if "solve.linear.dopri5.nfe" in x)
    assert f"baseline {base:.6g}, new {2 * base:.6g}, threshold {base:.6g}" in line
    assert "python -m benchmarks.gate --update" in line


@pytest.mark.parametrize(
    "name,base,new,fails",
    [
        ("a.nfe", 10, 10, False),
        ("a.nfe", 10, 11, True),
        ("a.nfe", 10, 9, False),
        ("a.error", 1e-6, 1.0000005e-6, False),
        ("a.error", 1e-6, 1.1e-6, True),
        ("speed.x.ratio", 0.4, 0.79, False),
        ("speed.x.ratio", 0.4, 0.81, True),
    ],
)
def test_compare_rules(name, base, new, fails):
    failures, _ = gate.compare({name: base}, {name: new})
    assert bool(failures) == fails
