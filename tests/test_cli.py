"""The command line, driven through ``main([...])`` with the toy workload."""

from __future__ import annotations

import signal
from pathlib import Path

import pandas as pd
import pytest
import torch

from nodebench import cli, store, workloads
from tests import toy_workload


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch):
    """Register the toy workload (alone, so ``reproduce`` runs only it); reset its crash switch."""
    monkeypatch.setattr(workloads, "_modules", {"toy": "tests.toy_workload"})
    monkeypatch.setattr(toy_workload, "CRASH", None)
    return toy_workload


def only_run(out: Path) -> Path:
    (run_dir,) = (out / "toy").iterdir()
    return run_dir


def without_timings(run_dir: Path) -> pd.DataFrame:
    records = store.read_records(run_dir)
    return records[records["unit"] != "s"].drop(columns="run_id").reset_index(drop=True)


def test_run_then_report(tmp_path, toy, capsys):
    out = tmp_path / "runs"
    assert cli.main(["run", "toy", "--out", str(out), "--seed", "3", "--preset", "standard"]) == 0
    run_dir = only_run(out)
    meta = store.read_meta(run_dir)
    assert (meta["status"], meta["preset"], meta["seeds"], meta["device"]) == (
        "complete",
        "standard",
        [3],
        "cpu",
    )
    assert meta["command"] == f"nodebench run toy --out {out} --seed 3 --preset standard"
    printed = capsys.readouterr().out
    assert f"run directory: {run_dir}" in printed and "| alpha | loss |" in printed

    report_dir = tmp_path / "report"
    assert cli.main(["report", "--runs", str(out), "--out", str(report_dir)]) == 0
    assert str(run_dir.name) in (report_dir / "REPORT.md").read_text()


def test_failed_run_resumes_to_the_same_records(tmp_path, toy, capsys):
    assert cli.main(["run", "toy", "--out", str(tmp_path / "reference")]) == 0
    reference = without_timings(only_run(tmp_path / "reference"))

    out = tmp_path / "runs"
    toy.CRASH = ("beta/seed=0", 3, RuntimeError("boom"))
    assert cli.main(["run", "toy", "--out", str(out)]) == cli.EXIT_FAILED
    run_dir = only_run(out)
    assert store.read_meta(run_dir)["status"] == "failed"
    assert f"nodebench run toy --resume {run_dir}" in capsys.readouterr().err

    toy.CRASH = None
    assert cli.main(["run", "toy", "--resume", str(run_dir), "--preset", "paper"]) == cli.EXIT_USAGE
    assert "--preset paper: the run being resumed used smoke" in capsys.readouterr().err
    assert cli.main(["run", "toy", "--resume", str(run_dir)]) == 0
    assert store.read_meta(run_dir)["status"] == "complete"
    pd.testing.assert_frame_equal(without_timings(run_dir), reference)
    assert cli.main(["run", "toy", "--resume", str(run_dir)]) == cli.EXIT_USAGE
    assert "already complete" in capsys.readouterr().err


def test_keyboard_interrupt_marks_the_run_interrupted(tmp_path, toy):
    toy.CRASH = ("alpha/seed=1", 0, KeyboardInterrupt())
    assert cli.main(["run", "toy", "--out", str(tmp_path)]) == cli.EXIT_INTERRUPTED
    assert store.read_meta(only_run(tmp_path))["status"] == "interrupted"


def test_sigterm_marks_the_run_interrupted_and_it_resumes(tmp_path, toy, capsys):
    previous = signal.getsignal(signal.SIGTERM)
    toy.CRASH = ("alpha/seed=1", 2, int(signal.SIGTERM))
    assert cli.main(["run", "toy", "--out", str(tmp_path)]) == cli.EXIT_INTERRUPTED
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is the run's only
    run_dir = only_run(tmp_path)
    meta = store.read_meta(run_dir)
    assert (meta["status"], meta["error"]) == ("interrupted", "KeyboardInterrupt SIGTERM")
    assert "resume with: nodebench run toy --resume" in capsys.readouterr().err
    toy.CRASH = None
    assert cli.main(["run", "toy", "--resume", str(run_dir)]) == 0
    assert store.read_meta(run_dir)["status"] == "complete"
    assert len(store.read_records(run_dir)) == 2 * 2 * (4 * 2 + 1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu_is_a_clear_error(tmp_path, toy, capsys):
    assert cli.main(["run", "toy", "--device", "cuda", "--out", str(tmp_path)]) == cli.EXIT_USAGE
    assert "--device cuda: CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "toy").exists()
    assert cli.main(["reproduce", "--device", "cuda", "--out", str(tmp_path)]) == cli.EXIT_USAGE


def test_unavailable_workloads_are_clear_errors(tmp_path, toy, capsys):
    assert cli.main(["run", "nosuch", "--out", str(tmp_path)]) == cli.EXIT_USAGE
    assert "unknown workload 'nosuch'; registered: toy" in capsys.readouterr().err
    workloads.register("ghost", "nodebench.workloads.ghost_that_does_not_exist")
    assert cli.main(["run", "ghost", "--out", str(tmp_path)]) == cli.EXIT_USAGE
    assert "workload 'ghost' is not available" in capsys.readouterr().err
    assert cli.main(["run", "toy", "--preset", "huge"]) == cli.EXIT_USAGE
    assert "--preset huge: workload 'toy' has presets smoke, standard, paper" in capsys.readouterr().err
    assert cli.main(["run", "toy", "--resume", str(tmp_path / "missing")]) == cli.EXIT_USAGE
    assert "not a run directory" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path / "missing")]) == cli.EXIT_USAGE
    assert "no runs found" in capsys.readouterr().err
    assert cli.main(["report", "--runs", str(tmp_path / "missing")]) == cli.EXIT_FAILED
    assert "no complete runs" in capsys.readouterr().err


def test_builtin_names_are_registered_lazily():
    assert set(workloads.BUILTIN) <= set(workloads.names())
    assert set(workloads.BUILTIN) == {
        "spiral",
        "memory",
        "tolerance",
        "nfe",
        "solvers",
        "mnist",
        "latent",
        "figure3c",
        "compat",
    }


def test_reproduce_runs_resumes_and_reports(tmp_path, toy, capsys):
    toy.CRASH = ("beta/seed=1", 1, RuntimeError("boom"))
    assert cli.main(["reproduce", "--out", str(tmp_path)]) == cli.EXIT_FAILED
    run_dir = only_run(tmp_path / "runs")
    page = tmp_path / "report" / "runs" / f"{run_dir.name}.md"
    assert "FAILED" in page.read_text() and " | failed | " in (tmp_path / "report" / "REPORT.md").read_text()

    toy.CRASH = None
    assert cli.main(["reproduce", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert f"toy: resuming {run_dir}" in err
    # one line per workload and where the report is, not the final-values tables
    assert "toy        smoke: complete, " in out and f"records in {run_dir}" in out
    assert "| variant |" not in out and "report written to" in out
    assert "smoke numbers are plumbing checks" in out
    assert only_run(tmp_path / "runs") == run_dir and store.read_meta(run_dir)["status"] == "complete"
    assert (
        "FAILED" not in page.read_text()
        and " | complete | " in (tmp_path / "report" / "REPORT.md").read_text()
    )


def test_data_and_check_are_dispatched(monkeypatch):
    import nodebench.data.mnist
    import nodebench.reference.check

    seen: list[tuple] = []

    class Info:
        def summary(self) -> str:
            return "verified"

    monkeypatch.setattr(nodebench.data.mnist, "get_dataset", lambda *args, **kw: seen.append(args) or Info())
    monkeypatch.setattr(nodebench.reference.check, "main", lambda *args: seen.append(args) or 1)
    assert cli.main(["data", "mnist", "--from", "/x", "--dataset", "fashion-mnist"]) == 0
    assert cli.main(["check", "--quick"]) == 1
    assert seen == [("fashion-mnist", nodebench.data.mnist.data_root(), "/x"), ("cpu", True)]
