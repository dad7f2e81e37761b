"""Run one module of a torchdiffeq checkout's unittest suite against one backend and count outcomes.

The ``compat`` workload (:mod:`nodebench.workloads.compat`) runs this in a fresh process per backend
and module, because both backends answer to ``import torchdiffeq``:

- ``torchdiffeq``: the checkout's own package (the checkout's root goes first on ``sys.path``; the run
  refuses to count if ``torchdiffeq`` is then imported from anywhere else);
- ``nodebench``: an import alias, a ``torchdiffeq`` module in ``sys.modules`` whose ``odeint``,
  ``odeint_adjoint`` and ``odeint_event`` are nodebench's (:func:`install_alias`).

The tests directory goes first on ``sys.path`` too (the tests import ``problems``). Outcomes are counted
by :class:`CountingResult`: every test method and every ``subTest`` block, each ``pass``, ``fail``
(an assertion), ``error`` (any other exception) or ``skip``. A test method whose subtests failed
counts as failed (``error`` if one raised), as unittest itself reports it.

Command line (prints a JSON document to ``--out`` or stdout)::

    python -m nodebench.workloads._compat_suite --checkout PATH --backend nodebench --module odeint_tests
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
import types
import unittest
from pathlib import Path
from typing import Any

BACKENDS = ("torchdiffeq", "nodebench")
#: Longest traceback kept per outcome (characters, its end).
MAX_DETAIL = 3000


def install_alias() -> types.ModuleType:
    """Make ``import torchdiffeq`` give nodebench's API (an alias module in ``sys.modules``)."""
    import nodebench

    alias = types.ModuleType("torchdiffeq", "nodebench under torchdiffeq's name (an import alias)")
    alias.odeint = nodebench.odeint
    alias.odeint_adjoint = nodebench.odeint_adjoint
    alias.odeint_event = nodebench.odeint_event
    alias.__version__ = f"nodebench {getattr(nodebench, '__version__', '')}".strip()
    alias.__file__ = nodebench.__file__
    sys.modules["torchdiffeq"] = alias
    return alias


def _subtest_label(subtest: unittest.TestCase) -> str:
    describe = getattr(subtest, "_subDescription", None)  # unittest's own rendering of the parameters
    return describe() if callable(describe) else str(subtest)


class CountingResult(unittest.TestResult):
    """A test result that keeps one entry per test method and per subtest.

    Attributes:
        outcomes: dicts ``{"id", "kind", "outcome", "detail"}``, in the order they finished; ``kind`` is
            ``"test"`` or ``"subtest"``, ``id`` the test's id (plus the subtest's parameters).
    """

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: list[dict[str, Any]] = []
        self._open: dict[str, str | None] = {}  # test id -> its own outcome once known
        self._subs: dict[str, list[str]] = {}

    def _detail(self, test: unittest.TestCase, err: Any) -> str:
        text = self._exc_info_to_string(err, test)
        return text[-MAX_DETAIL:]

    def _add(self, test_id: str, kind: str, outcome: str, detail: str = "") -> None:
        self.outcomes.append({"id": test_id, "kind": kind, "outcome": outcome, "detail": detail})

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        self._open[test.id()] = None
        self._subs[test.id()] = []

    def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        sub_id = f"{test.id()} {_subtest_label(subtest)}"
        if err is None:
            outcome, detail = "pass", ""
        else:
            outcome = "fail" if issubclass(err[0], test.failureException) else "error"
            detail = self._detail(test, err)
        self._subs.setdefault(test.id(), []).append(outcome)
        self._add(sub_id, "subtest", outcome, detail)

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self._open[test.id()] = "pass"

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self._open[test.id()] = "fail"
        self._add(test.id(), "test", "fail", self._detail(test, err))

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        self._open[test.id()] = "error"
        self._add(test.id(), "test", "error", self._detail(test, err))

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        if isinstance(test, unittest.case._SubTest):  # a skip inside a subTest block
            self._add(f"{test.test_case.id()} {_subtest_label(test)}", "subtest", "skip", reason)
            return
        self._open[test.id()] = "skip"
        self._add(test.id(), "test", "skip", reason)

    def stopTest(self, test: unittest.TestCase) -> None:
        super().stopTest(test)
        own = self._open.pop(test.id(), None)
        subs = self._subs.pop(test.id(), [])
        if own in ("fail", "error", "skip"):
            return  # already added
        if "error" in subs:
            self._add(test.id(), "test", "error", "a subtest raised")
        elif "fail" in subs:
            self._add(test.id(), "test", "fail", "a subtest failed")
        else:
            self._add(test.id(), "test", "pass")


def run_module(checkout: Path, backend: str, module: str) -> dict[str, Any]:
    """Run ``tests/<module>.py`` of ``checkout`` against ``backend`` in this process (once per process)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    checkout = Path(checkout).resolve()
    tests = checkout / "tests"
    if not (tests / f"{module}.py").is_file():
        raise FileNotFoundError(f"{tests / f'{module}.py'} does not exist")
    if "torchdiffeq" in sys.modules:
        raise RuntimeError("torchdiffeq is already imported in this process; run each backend in a fresh one")
    sys.path.insert(0, str(tests))
    if backend == "torchdiffeq":
        sys.path.insert(0, str(checkout))
        import torchdiffeq

        where = Path(torchdiffeq.__file__).resolve()
        if checkout not in where.parents:
            raise RuntimeError(f"torchdiffeq was imported from {where}, not from the checkout {checkout}")
        version = getattr(torchdiffeq, "__version__", "")
    else:
        version = install_alias().__version__
    start = time.perf_counter()
    result = CountingResult()
    try:
        suite = unittest.defaultTestLoader.loadTestsFromName(module)
    except Exception:  # the module itself fails to import: one error, named
        return {
            "backend": backend,
            "module": module,
            "version": version,
            "seconds": 0.0,
            "outcomes": [
                {"id": module, "kind": "test", "outcome": "error", "detail": traceback.format_exc()}
            ],
        }
    suite.run(result)
    return {
        "backend": backend,
        "module": module,
        "version": version,
        "seconds": time.perf_counter() - start,
        "outcomes": result.outcomes,
    }


def counts(outcomes: list[dict[str, Any]]) -> dict[str, int]:
    """``{"<kind>s_<outcome>": n}`` over ``outcomes`` (kinds test/subtest; outcomes pass/fail/error/skip)."""
    out = {f"{k}s_{o}": 0 for k in ("test", "subtest") for o in ("pass", "fail", "error", "skip")}
    for entry in outcomes:
        out[f"{entry['kind']}s_{entry['outcome']}"] += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", required=True, help="a torchdiffeq checkout (holding tests/)")
    parser.add_argument("--backend", required=True, choices=BACKENDS)
    parser.add_argument("--module", required=True, help="a test module of tests/, e.g. odeint_tests")
    parser.add_argument("--out", help="write the JSON document here (default: stdout)")
    args = parser.parse_args(argv)
    doc = run_module(Path(args.checkout), args.backend, args.module)
    text = json.dumps(doc)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
