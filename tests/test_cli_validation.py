"""Every argument is checked before a run directory exists; expected failures end in one line and exit 2."""

from __future__ import annotations

import pytest

from nodebench import cli, store
from tests.test_cli import only_run, toy, without_timings  # noqa: F401 (toy is a fixture)


@pytest.mark.parametrize("seed", ["-1", str(2**32), str(2**64), "x"])
def test_bad_seed_is_refused_before_any_run_directory(tmp_path, toy, capsys, seed):  # noqa: F811
    out = tmp_path / "runs"
    assert cli.main(["run", "toy", "--out", str(out), "--seed", seed]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "--seed" in err and "Traceback" not in err
    assert not out.exists()


def test_out_naming_a_file_is_refused(tmp_path, toy, capsys):  # noqa: F811
    f = tmp_path / "a_file"
    f.write_text("x")
    for argv in (
        ["run", "toy", "--out", str(f)],
        ["report", "--out", str(f / "sub")],
        ["reproduce", "--out", str(f)],
    ):
        assert cli.main(argv) == cli.EXIT_USAGE
        err = capsys.readouterr().err
        assert "is a file, not a directory" in err or "in its path, which is a file" in err
        assert "Traceback" not in err


def test_report_on_invalid_meta_is_one_line_and_exit_2(tmp_path, toy, capsys):  # noqa: F811
    out = tmp_path / "runs"
    assert cli.main(["run", "toy", "--out", str(out)]) == 0
    run_dir = only_run(out)
    (run_dir / "meta.json").write_text("{not json")
    capsys.readouterr()
    assert cli.main(["report", str(run_dir), "--out", str(tmp_path / "report")]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert "invalid JSON" in err and "Traceback" not in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("cut", ["line", "mid-line"])
def test_records_shorter_than_the_journal_are_refused_and_resume_repairs_them(tmp_path, toy, capsys, cut):  # noqa: F811
    out = tmp_path / "runs"
    assert cli.main(["run", "toy", "--out", str(out)]) == 0
    run_dir = only_run(out)
    full = without_timings(run_dir)
    path = run_dir / "records.csv"
    data = path.read_bytes()
    half = data[: len(data) // 2]
    half = half[: half.rindex(b"\n") + 1] if cut == "line" else half.rstrip(b"\n")
    path.write_bytes(half)
    capsys.readouterr()
    assert cli.main(["report", str(run_dir), "--out", str(tmp_path / "report")]) != 0
    err = capsys.readouterr().err
    assert "--resume" in err and "Traceback" not in err
    if cut == "line":  # a clean cut: only the journal shows rows are missing
        assert "completed unit(s) are missing" in err and f"--resume {run_dir}" in err
    else:
        assert "incomplete last line" in err
    # The advised repair works although the run says "complete": the lost units run again.
    assert store.read_meta(run_dir)["status"] == "complete"
    assert cli.main(["run", "toy", "--resume", str(run_dir)]) == 0
    assert without_timings(run_dir).equals(full)
    assert cli.main(["report", str(run_dir), "--out", str(tmp_path / "report")]) == 0


def test_complete_run_with_all_records_still_refuses_resume(tmp_path, toy, capsys):  # noqa: F811
    out = tmp_path / "runs"
    assert cli.main(["run", "toy", "--out", str(out)]) == 0
    assert cli.main(["run", "toy", "--resume", str(only_run(out))]) == cli.EXIT_USAGE
    assert "already complete" in capsys.readouterr().err


def test_data_root_that_is_a_file(tmp_path, monkeypatch, capsys):
    f = tmp_path / "not_a_dir"
    f.write_text("x")
    monkeypatch.setenv("NODEBENCH_DATA", str(f))
    assert cli.main(["data", "mnist"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"NODEBENCH_DATA={f} is a file" in err and "Traceback" not in err and "Errno" not in err
    out = tmp_path / "runs"
    assert cli.main(["run", "mnist", "--out", str(out)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "mnist cannot run" in err and "is a file" in err and "Traceback" not in err
    assert not out.exists()


def test_unreadable_run_directory_is_one_line(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert cli.main(["report", str(missing), "--out", str(tmp_path / "r")]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().startswith("nodebench: error:")
