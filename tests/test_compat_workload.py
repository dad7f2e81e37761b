"""The compat workload (torchdiffeq's test suite against each backend): counting on hand-made unittest
cases, the aside rule, preflight and plan, one end-to-end run on a tiny hand-made checkout (no
torchdiffeq repository needed), and its report section."""

from __future__ import annotations

import textwrap
import unittest
from pathlib import Path

import pytest
import torch

from nodebench import cli, store
from nodebench.report import compat as report
from nodebench.workloads import _compat_suite as suite
from nodebench.workloads import compat


class _Cases(unittest.TestCase):
    __test__ = False  # run by the tests below, not collected by pytest

    def test_plain(self):
        pass

    def test_subtests(self):
        for method in ("euler", "implicit_euler", "rk4"):
            with self.subTest(method=method):
                if method == "implicit_euler":
                    raise ValueError("unknown method")
                self.assertEqual(method, method)

    def test_failing_subtest(self):
        for k in (1, 2):
            with self.subTest(k=k):
                self.assertLess(k, 2)

    def test_failure(self):
        self.assertTrue(False)

    def test_error(self):
        raise RuntimeError("boom")

    @unittest.skip("not here")
    def test_skipped(self):
        pass


def _run_cases() -> list[dict]:
    result = suite.CountingResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(_Cases).run(result)
    return result.outcomes


def test_counting_result_counts_tests_and_subtests():
    outcomes = _run_cases()
    by_id = {o["id"].split(".")[-1]: o["outcome"] for o in outcomes}
    assert suite.counts(outcomes) == {
        "tests_pass": 1, "tests_fail": 2, "tests_error": 2, "tests_skip": 1,
        "subtests_pass": 3, "subtests_fail": 1, "subtests_error": 1, "subtests_skip": 0,
    }  # fmt: skip
    assert by_id["test_subtests"] == "error" and by_id["test_failure"] == "fail"
    assert by_id["test_subtests (method='implicit_euler')"] == "error"
    assert by_id["test_failing_subtest (k=2)"] == "fail" and by_id["test_failing_subtest (k=1)"] == "pass"
    assert "boom" in next(o["detail"] for o in outcomes if o["id"].endswith("test_error"))


def test_summarise_sets_aside_the_named_methods():
    counted = compat.summarise(_run_cases(), ("implicit_euler",))
    assert counted["subtests_error_aside"] == 1 and counted["subtests_pass_aside"] == 0
    # test_subtests fails only in its implicit_euler subtest: it passes with it set aside
    assert counted["tests_pass_without_aside"] == 2 and counted["tests_pass"] == 1


def test_preflight_and_plan(tmp_path):
    cpu = torch.device("cpu")
    assert "--set checkout=PATH" in compat.preflight(compat.PRESETS["standard"], cpu)
    config = compat.Config(checkout=str(tmp_path))
    reason = compat.preflight(config, cpu)
    assert "lacks tests/api_tests.py" in reason and "torchdiffeq/__init__.py" in reason
    assert [s.key for s in compat.plan(compat.PRESETS["smoke"])] == [
        "torchdiffeq/api_tests",
        "nodebench/api_tests",
    ]
    with pytest.raises(ValueError, match="backends must be among"):
        compat.plan(compat.Config(backends=("jax",)))


CHECKOUT_TEST = """
import unittest
import torch
import torchdiffeq
from problems import METHODS


class TestSolve(unittest.TestCase):
    def test_decay(self):
        for method in METHODS:
            with self.subTest(method=method):
                y0, t = torch.ones(1), torch.tensor([0.0, 1.0])
                y = torchdiffeq.odeint(lambda t, y: -y, y0, t, method=method, options=dict(step_size=0.01))
                self.assertLess(abs(y[-1].item() - 0.36788), 1e-2)

    def test_backend(self):
        self.assertTrue(torchdiffeq.__version__)
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A tiny torchdiffeq-shaped checkout: tests/ and a fake torchdiffeq package with only Euler."""
    root = tmp_path / "checkout"
    (root / "tests").mkdir(parents=True)
    (root / "torchdiffeq").mkdir()
    (root / "tests" / "problems.py").write_text('METHODS = ("euler", "no_such_method")\n')
    (root / "tests" / "mini_tests.py").write_text(textwrap.dedent(CHECKOUT_TEST))
    (root / "torchdiffeq" / "__init__.py").write_text(
        textwrap.dedent(
            """
            import torch
            __version__ = "0.0-fake"

            def odeint(func, y0, t, method=None, options=None):
                if method != "euler":
                    raise ValueError(method)
                h, y, out = options["step_size"], y0, [y0]
                for _ in range(round(float(t[1] - t[0]) / h)):
                    y = y + h * func(None, y)
                return torch.stack([y0, y])
            """
        )
    )
    return root


def test_compat_run_end_to_end(checkout, tmp_path, monkeypatch, capsys):
    """Both backends on the hand-made checkout through ``nodebench run``: counts, per-outcome rows,
    the artifacts, the checkout's provenance, and the report section listing what fails."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "runs"
    argv = ["run", "compat", "--preset", "smoke", "--out", str(out), "--set", f"checkout={checkout}",
            "--set", "modules=['mini_tests']", "--set", "aside=['no_such_method']"]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "outcome_pass" not in printed and "figure-data rows left out" in printed  # counts only
    (run_dir,) = (out / "compat").iterdir()
    meta = store.read_meta(run_dir)
    assert meta["status"] == "complete" and meta["data"]["torchdiffeq_version"] == "0.0-fake"
    assert len(meta["data"]["sha256"]) == 64
    records = store.read_records(run_dir)
    value = records.set_index(["variant", "metric"])["value"]
    for backend in ("torchdiffeq", "nodebench"):
        assert value[(f"{backend}/mini_tests", "subtests_pass")] == 1
        assert value[(f"{backend}/mini_tests", "subtests_error_aside")] == 1
        assert value[(f"{backend}/mini_tests", "tests_pass_without_aside")] == 2
    ids = records[records["metric"] == "outcome_pass"]["variant"]
    assert "nodebench/mini_tests.TestSolve.test_decay (method='euler')" in set(ids)
    assert (run_dir / "checkpoints" / "outcomes-nodebench-mini_tests.json").is_file() or any(
        run_dir.rglob("outcomes-nodebench-mini_tests.json")
    )
    text = report.section(records, [meta], tmp_path)
    assert "| nodebench | 1 | 1 | 1 | 1 | 2 | 0 | 1 | 2 | 1 |" in text
    assert "every test and subtest that is not set aside passes" in text.lower()
