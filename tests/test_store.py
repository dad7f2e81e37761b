"""The run store: records, units, resume, concurrency, corruption, meta."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
import torch

from nodebench import runner, store, units, workloads
from nodebench.workloads.base import config_from_dict, config_to_dict, torch_threads
from tests import toy_workload

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _toy_registered(monkeypatch: pytest.MonkeyPatch):
    """Units are looked up by workload name: register the toy workload for every test here."""
    monkeypatch.setattr(workloads, "_modules", {"toy": "tests.toy_workload"})


@pytest.fixture
def crash(monkeypatch: pytest.MonkeyPatch):
    """Set ``toy_workload.CRASH`` for one test: ``crash(unit_key, step, exception)``."""

    def set_crash(key: str, step: int, exc: BaseException) -> None:
        monkeypatch.setattr(toy_workload, "CRASH", (key, step, exc))

    yield set_crash
    monkeypatch.setattr(toy_workload, "CRASH", None)


def start(out: Path, config: toy_workload.Config | None = None) -> store.Recorder:
    config = config or toy_workload.PRESETS["smoke"]
    return store.create_run(out, "toy", "smoke", config_to_dict(config), "cpu", toy_workload.PROTOCOL, "test")


def run_toy(recorder: store.Recorder, config: toy_workload.Config | None = None) -> None:
    with recorder:
        runner.run_units(toy_workload, config or toy_workload.PRESETS["smoke"], recorder)


def comparable(run_dir: Path) -> pd.DataFrame:
    """Records without timings and run ids, for comparing runs."""
    records = store.read_records(run_dir)
    return records[records["unit"] != "s"].drop(columns="run_id").reset_index(drop=True)


@pytest.fixture
def reference(tmp_path: Path) -> pd.DataFrame:
    recorder = start(tmp_path / "reference")
    run_toy(recorder)
    return comparable(recorder.run_dir)


@pytest.mark.parametrize(
    ("exc", "status"), [(RuntimeError("boom"), "failed"), (KeyboardInterrupt(), "interrupted")]
)
def test_cut_off_run_resumes_to_the_uninterrupted_records(tmp_path, reference, crash, exc, status):
    crash("alpha/seed=1", 2, exc)
    recorder = start(tmp_path / "runs")
    with pytest.raises(type(exc)):
        run_toy(recorder)
    meta = store.read_meta(recorder.run_dir)
    assert meta["status"] == status
    assert meta["error"] == ("KeyboardInterrupt" if status == "interrupted" else "RuntimeError: boom")
    kept = store.read_records(recorder.run_dir)
    assert len(kept) == 2 * 9 + 2 * 2  # two complete units plus two steps of the cut-off one
    assert kept.iloc[-1]["variant"] == "alpha" and kept.iloc[-1]["seed"] == 1

    crash("nowhere", 0, RuntimeError())
    resumed = store.resume_run(recorder.run_dir, "test --resume")
    assert resumed.completed("alpha/seed=0") and resumed.completed("beta/seed=0")
    assert not resumed.completed("alpha/seed=1")
    run_toy(resumed)
    meta = store.read_meta(recorder.run_dir)
    assert meta["status"] == "complete" and meta["error"] is None
    assert [attempt["status"] for attempt in meta["attempts"]] == [status, "complete"]
    pd.testing.assert_frame_equal(comparable(recorder.run_dir), reference)


def test_killed_run_with_torn_row_is_reported_then_resumed(tmp_path, reference):
    """A real SIGKILL mid-unit, then half a row appended as a crash during a write would leave it."""
    script = (
        "import os, signal, sys, torch\n"
        "from tests import toy_workload\n"
        "from nodebench import runner, store, workloads\n"
        "from nodebench.workloads.base import config_to_dict\n"
        "config = config_to_dict(toy_workload.Config())\n"
        "recorder = store.create_run(sys.argv[1], 'toy', 'smoke', config, 'cpu')\n"
        "print(recorder.run_dir, flush=True)\n"
        "workloads.register('toy', 'tests.toy_workload')\n"
        "toy_workload.CRASH = ('beta/seed=1', 1, signal.SIGKILL)\n"
        "runner.run_units(toy_workload, toy_workload.Config(), recorder)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent))
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == -9, proc.stderr
    run_dir = Path(proc.stdout.strip())
    assert store.read_meta(run_dir)["status"] == "running"
    records_path = run_dir / "records.csv"
    n_lines = len(records_path.read_text().splitlines())
    with open(records_path, "a") as handle:
        handle.write(f"{run_dir.name},toy,beta,1,1,lo")
    with pytest.raises(store.CorruptRecordsError, match=rf"records\.csv:{n_lines + 1}: incomplete last line"):
        store.load_runs(run_dir)

    resumed = store.resume_run(run_dir)
    run_toy(resumed)
    pd.testing.assert_frame_equal(comparable(run_dir), reference)


def test_corrupt_line_is_reported_with_its_line_number(tmp_path):
    recorder = start(tmp_path)
    run_toy(recorder)
    path = recorder.run_dir / "records.csv"
    lines = path.read_text().splitlines(keepends=True)
    assert ",loss," in lines[3]
    lines[3] = lines[3].replace(",loss,", ",loss,not-a-number;")
    path.write_text("".join(lines))
    with pytest.raises(store.CorruptRecordsError, match=r"records\.csv:4: corrupt record"):
        store.load_runs(recorder.run_dir)
    lines[3] = "just,three,fields\n"
    path.write_text("".join(lines))
    with pytest.raises(store.CorruptRecordsError, match=r"records\.csv:4: .*expected 8 fields, got 3"):
        store.read_records(recorder.run_dir)


def test_concurrent_runs_never_collide(tmp_path):
    recorders: list[store.Recorder] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            recorder = start(tmp_path)
            run_toy(recorder)
            with lock:
                recorders.append(recorder)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({r.run_dir for r in recorders}) == 12
    frame = store.load_runs(tmp_path)
    assert frame.groupby("run_id").size().tolist() == [36] * 12
    assert set(frame["status"]) == {"complete"}


def test_run_id_collision_retries_instead_of_overwriting(tmp_path, monkeypatch):
    ids = iter(["20240101T000000Z-aaaaaa", "20240101T000000Z-aaaaaa", "20240101T000000Z-bbbbbb"])
    monkeypatch.setattr(store, "new_run_id", lambda: next(ids))
    first, second = start(tmp_path), start(tmp_path)
    assert (first.run_id, second.run_id) == ("20240101T000000Z-aaaaaa", "20240101T000000Z-bbbbbb")


def test_a_run_in_use_cannot_be_resumed_and_a_complete_one_not_at_all(tmp_path):
    recorder = start(tmp_path)
    with pytest.raises(store.RunStateError, match="in use by another process"):
        store.resume_run(recorder.run_dir)
    run_toy(recorder)
    with pytest.raises(store.RunStateError, match="already complete"):
        store.resume_run(recorder.run_dir)


def test_unit_rules(tmp_path):
    recorder = start(tmp_path)
    with pytest.raises(RuntimeError, match="outside"):
        recorder.record("a", 0, 0, "loss", 1.0)
    with recorder.unit("u1"):
        recorder.record("a", 0, 0, "loss", torch.tensor(0.5), "")
        with pytest.raises(RuntimeError, match="do not nest"), recorder.unit("u2"):
            pass
        with pytest.raises(ValueError, match="seed must be an integer"):
            recorder.record("a", 0.5, 0, "loss", 1.0)
        with pytest.raises(ValueError, match="variant must not contain line breaks"):
            recorder.record("a\nb", 0, 0, "loss", 1.0)
        with pytest.raises(ValueError, match="value must be a number"):
            recorder.record("a", 0, 0, "loss", "high")
    with pytest.raises(RuntimeError, match="already completed"), recorder.unit("u1"):
        pass
    with pytest.raises(ZeroDivisionError), recorder.unit("abandoned"):
        recorder.record("b", 0, 0, "loss", 2.0)
        raise ZeroDivisionError
    with recorder.unit("u3"):  # the abandoned unit's row is dropped when the next unit starts
        recorder.record("c, quoted", store.NO_SEED, store.NO_STEP, "loss", float("nan"), "m/s")
    recorder.finish("complete")
    records = store.read_records(recorder.run_dir)
    assert records["variant"].tolist() == ["a", "c, quoted"]
    assert records["value"].iloc[0] == 0.5 and pd.isna(records["value"].iloc[1])
    assert records.dtypes[["seed", "step", "value"]].tolist() == ["int64", "int64", "float64"]
    assert (records["seed"].iloc[1], records["step"].iloc[1]) == (-1, -1)


def test_checkpoints_are_written_atomically(tmp_path):
    recorder = start(tmp_path)
    path = recorder.checkpoint_path("state.pt")
    with store.atomic_write_path(path) as tmp:
        torch.save({"step": 3}, tmp)
    assert torch.load(path)["step"] == 3
    with pytest.raises(RuntimeError), store.atomic_write_path(path) as tmp:
        torch.save({"step": 4}, tmp)
        raise RuntimeError("crash while saving")
    assert torch.load(path)["step"] == 3
    assert [p.name for p in path.parent.iterdir()] == ["state.pt"]
    with pytest.raises(ValueError, match="plain file name"):
        recorder.checkpoint_path("../escape.pt")
    recorder.finish("complete")


def test_meta_holds_provenance(tmp_path):
    recorder = start(tmp_path)
    run_toy(recorder)
    meta = json.loads((recorder.run_dir / "meta.json").read_text())
    for key in (
        "workload",
        "preset",
        "config",
        "seeds",
        "protocol",
        "status",
        "git_commit",
        "git_dirty",
        "device",
    ):
        assert key in meta
    for key in ("cpu", "torch_threads", "hostname", "platform", "started_at", "ended_at", "command"):
        assert meta[key] is not None
    assert set(meta["versions"]) == {"python", "torch", "torchdiffeq", "nodebench", "numpy", "pandas"}
    assert meta["versions"]["torch"] == torch.__version__
    assert meta["status"] == "complete" and meta["command"] == "test"
    assert meta["config"] == {"seeds": [0, 1], "variants": ["alpha", "beta"], "steps": 4}
    assert config_from_dict(toy_workload.Config, meta["config"]) == toy_workload.PRESETS["smoke"]
    assert recorder.run_dir.parent == tmp_path / "toy"


def test_load_runs_accepts_dirs_folders_and_globs(tmp_path):
    runs = [start(tmp_path) for _ in range(2)]
    for recorder in runs:
        run_toy(recorder)
    by_dir = store.load_runs([r.run_dir for r in runs])
    assert list(by_dir.columns) == [*store.COLUMNS, "preset", "device", "status"]
    assert len(by_dir) == 72 and set(by_dir["preset"]) == {"smoke"} and set(by_dir["device"]) == {"cpu"}
    assert len(store.load_runs(tmp_path)) == 72
    assert len(store.load_runs(str(tmp_path / "toy" / "*"))) == 72
    with pytest.raises(FileNotFoundError, match="no runs found"):
        store.load_runs(tmp_path / "nothing-here")
    assert store.find_runs(tmp_path, "toy", "smoke", "cpu", "complete") == sorted(
        (r.run_dir for r in runs), key=lambda p: (store.read_meta(p)["started_at"], p.name)
    )
    assert store.latest_runs(tmp_path) == [store.find_runs(tmp_path)[-1]]


def test_torch_threads_pins_and_restores() -> None:
    before = torch.get_num_threads()
    pinned = 1 if before != 1 else 2
    with torch_threads(pinned):
        assert torch.get_num_threads() == pinned
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"), torch_threads(pinned):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_units_record_load_average_and_cost(tmp_path, monkeypatch):
    loads = iter([(3.5, 0, 0), (1.25, 0, 0)])
    monkeypatch.setattr(store.os, "getloadavg", lambda: next(loads))
    wall, cpu = iter([10.0, 12.5]), iter([2.0, 3.25])  # the clocks at the unit's start and end
    fake = type("Clocks", (), {"perf_counter": lambda: next(wall), "process_time": lambda: next(cpu)})
    monkeypatch.setattr(units, "time", fake)
    recorder = store.create_run(tmp_path, "w", "smoke", {"seeds": [0]}, "cpu", "", "cmd")
    with recorder.unit("a"):
        recorder.record("v", 0, 0, "m", 1.0)
    # a unit run elsewhere brings its own clocks
    recorder.commit(units.UnitResult("b", load=(1.0, 1.0), cpus=2, seconds=(7.0, 6.5)))
    recorder.finish("complete")
    frame = store.unit_journal(recorder.run_dir)
    assert frame.iloc[-1][["wall_s", "cpu_s"]].tolist() == [7.0, 6.5]
    assert frame.iloc[:1].to_dict("records") == [
        {
            "unit": "a",
            "load_start": 3.5,
            "load_end": 1.25,
            "cpus": float(os.cpu_count()),
            "wall_s": 2.5,
            "cpu_s": 1.25,
        }
    ]
    # journals written before loads and clocks were recorded read as NaN, and resume still reads them
    (recorder.run_dir / "units.jsonl").write_text('{"unit": "old", "end": 40}\n')
    old = store.unit_journal(recorder.run_dir)
    assert old[["load_start", "wall_s", "cpu_s"]].isna().all().all()


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_a_run_from_a_dirty_tree_keeps_its_diff_and_untracked_list(tmp_path, monkeypatch):
    from nodebench.measure import provenance
    from nodebench.report import _build

    repo = tmp_path / "repo"
    (repo / "nodebench").mkdir(parents=True)
    (repo / "nodebench" / "solver.py").write_text("STEP = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    monkeypatch.setattr(provenance, "_PACKAGE_DIR", repo / "nodebench")

    clean = store.create_run(tmp_path / "out", "w", "smoke", {"seeds": [0]}, "cpu", "", "cmd")
    clean.finish("complete")
    assert clean.meta["attempts"][0]["git_dirty"] is False
    assert not list(clean.run_dir.glob("uncommitted-*")) and "uncommitted" not in clean.meta["attempts"][0]

    (repo / "nodebench" / "solver.py").write_text("STEP = 2\n")
    (repo / "nodebench" / "new_method.py").write_text("X = 0\n")
    rec = store.create_run(tmp_path / "out", "w", "smoke", {"seeds": [0]}, "cpu", "", "cmd")
    rec.finish("interrupted")
    saved = rec.meta["attempts"][0]["uncommitted"]
    diff = (rec.run_dir / saved["diff"]).read_text()
    assert "-STEP = 1" in diff and "+STEP = 2" in diff and saved["diff_bytes"] == len(diff.encode())
    assert (rec.run_dir / saved["untracked"]).read_text().split() == ["nodebench/new_method.py"]
    meta = json.loads((rec.run_dir / "meta.json").read_text())
    assert meta["attempts"][0]["uncommitted"] == saved

    (repo / "nodebench" / "solver.py").write_text("STEP = 3\n")
    resumed = store.resume_run(rec.run_dir, "resume")
    resumed.finish("complete")
    second = resumed.meta["attempts"][1]["uncommitted"]
    assert (
        second["diff"] == "uncommitted-2.diff" and "+STEP = 3" in (rec.run_dir / second["diff"]).read_text()
    )
    text = _build._uncommitted(resumed.meta["attempts"])
    assert "attempt 1 ran from a dirty tree: diff in `uncommitted-1.diff`" in text and "attempt 2" in text
