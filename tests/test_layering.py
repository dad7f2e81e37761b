"""The layering the README describes is the layering in the code: import direction, checked statically
(lazy imports included) and, for the reports, by importing them all in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nodebench"
#: What ``nodebench/__init__.py`` re-exports, by the package it comes from.
TOP_LEVEL = dict.fromkeys(("odeint", "odeint_adjoint", "solver_stats", "SolverError"), "solvers")

#: package -> the nodebench packages it may import (itself always allowed).
ALLOWED = {
    "solvers": set(),
    "schema": set(),
    "measure": set(),
    "units": {"workloads"},  # execute_task loads the workload by name, lazily, where the unit runs
    "models": {"solvers", "schema"},
    "data": {"solvers", "models", "schema"},
    "reference": {"solvers", "models", "schema"},
    "workloads": {"solvers", "schema", "models", "data", "measure", "reference", "units"},  # never store
    "store": {"measure", "units"},
    "runner": {"store", "units", "workloads", "ray_executor"},  # the executors it offers
    "ray_executor": {"units", "workloads"},  # ships units; never writes the store
    "claims": {"store", "schema", "units"},  # reads records and meta, like the reports
    "report": {"store", "measure", "schema", "units", "claims"},
}


def _nodebench_imports(path: Path) -> set[str]:
    """The ``nodebench`` packages (second name component) a source file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("nodebench.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "nodebench":
                found |= {TOP_LEVEL.get(alias.name, alias.name) for alias in node.names}
            elif node.module.startswith("nodebench."):
                found.add(node.module.split(".")[1])
    return found


def _files(package: str) -> list[Path]:
    root = PACKAGE / package
    return sorted(root.rglob("*.py")) if root.is_dir() else [root.with_suffix(".py")]


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_import_direction(package: str) -> None:
    allowed = ALLOWED[package] | {package}
    wrong = {}
    for path in _files(package):
        bad = _nodebench_imports(path) - allowed
        if bad:
            wrong[str(path.relative_to(PACKAGE.parent))] = sorted(bad)
    assert not wrong, f"nodebench.{package} may import only {sorted(allowed)} of nodebench; found {wrong}"


def test_import_scan_sees_lazy_and_top_level_imports(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("from nodebench import odeint\ndef f():\n    from nodebench.workloads import latent\n")
    assert _nodebench_imports(source) == {"solvers", "workloads"}


def test_importing_every_report_module_loads_no_model_workload_or_data_code() -> None:
    script = (
        "import importlib, pkgutil, sys\n"
        "import nodebench.report as report\n"
        "for m in pkgutil.iter_modules(report.__path__):\n"
        "    importlib.import_module(f'nodebench.report.{m.name}')\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('nodebench.models', "
        "'nodebench.workloads', 'nodebench.data')))))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
