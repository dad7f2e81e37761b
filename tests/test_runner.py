"""The unit API and the driver: plans, chained artifacts, resume, and executors other than the local one."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pandas as pd
import pytest

from nodebench import runner, store, workloads
from nodebench.units import UnitResult, UnitSpec, UnitTask, execute_task, with_inputs
from tests import chain_workload, toy_workload


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(workloads, "_modules", {"toy": "tests.toy_workload", "chain": "tests.chain_workload"})
    monkeypatch.setattr(chain_workload, "FAIL_AT", None)
    monkeypatch.setattr(toy_workload, "CRASH", None)


def _run(module, out: Path, executor: runner.Executor | None = None) -> Path:
    recorder, config = runner.new_run(module, out, "smoke", "cpu", "test")
    with recorder:
        runner.run_units(module, config, recorder, executor)
    return recorder.run_dir


def _values(run_dir: Path) -> pd.DataFrame:
    records = store.read_records(run_dir)
    return records[records["unit"] != "s"].drop(columns="run_id").reset_index(drop=True)


def test_chained_units_pass_artifacts_and_release_spent_ones(tmp_path):
    run_dir = _run(chain_workload, tmp_path)
    totals = store.read_records(run_dir)["value"].tolist()
    assert totals == [0.5, 2.0, 4.5, 8.0]  # each unit continued from the previous one's artifact
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["sum-3.bin"]  # the rest spent
    journal = (run_dir / "units.jsonl").read_text().splitlines()
    assert '"artifacts": ["sum-3.bin"]' in journal[-1]


def test_failed_chain_resumes_from_the_stored_artifact(tmp_path, monkeypatch):
    reference = _values(_run(chain_workload, tmp_path / "reference"))
    monkeypatch.setattr(chain_workload, "FAIL_AT", 2)
    with pytest.raises(RuntimeError, match="link 2 broke"):
        _run(chain_workload, tmp_path / "runs")
    (run_dir,) = (tmp_path / "runs" / "chain").iterdir()
    kept = store.read_records(run_dir)
    assert kept["step"].tolist() == [0, 1, 2]  # the failing unit's partial row is kept, unjournalled
    assert (run_dir / "checkpoints" / "sum-1.bin").is_file()
    monkeypatch.setattr(chain_workload, "FAIL_AT", None)
    recorder, config = runner.resume(chain_workload, run_dir, "test --resume")
    with recorder:
        runner.run_units(chain_workload, config, recorder)
    pd.testing.assert_frame_equal(_values(run_dir), reference)


class _ShippingExecutor:
    """Ships every task through pickle (as to another process), runs independent tasks in reverse order
    and yields results out of plan order: the records must still come out as the local executor's."""

    def __init__(self) -> None:
        self.shipped: list[str] = []

    def run(self, tasks: Sequence[UnitTask], progress: Callable[[int], None]) -> Iterator[UnitResult]:
        done: dict[str, UnitResult] = {}
        order = list(tasks) if any(t.spec.depends_on for t in tasks) else list(reversed(tasks))
        for task in order:
            wire = pickle.loads(pickle.dumps(with_inputs(task, done)))
            result = pickle.loads(pickle.dumps(execute_task(wire)))
            progress(task.spec.ticks)
            self.shipped.append(task.spec.key)
            done[result.key] = result
            yield result


@pytest.mark.parametrize("module", [toy_workload, chain_workload])
def test_any_executor_gives_the_local_records(tmp_path, module):
    local = _values(_run(module, tmp_path / "local"))
    executor = _ShippingExecutor()
    shipped = _values(_run(module, tmp_path / "shipped", executor))
    pd.testing.assert_frame_equal(shipped, local)
    assert len(executor.shipped) == len(module.plan(module.PRESETS["smoke"]))


def test_plans_are_checked():
    with pytest.raises(ValueError, match="appears twice"):
        runner.check_plan([UnitSpec("a"), UnitSpec("a")])
    with pytest.raises(ValueError, match="not planned before it"):
        runner.check_plan([UnitSpec("b", depends_on=("a",)), UnitSpec("a")])


def test_unit_rows_are_checked_when_recorded():
    spec = UnitSpec("x", {"variant": "a\nb", "seed": 0})
    with pytest.raises(ValueError, match="variant must not contain line breaks"):
        execute_task(UnitTask("toy", {"seeds": [0], "variants": ["a\nb"], "steps": 1}, "cpu", spec))


def test_set_overrides_label_the_run(tmp_path):
    recorder, config = runner.new_run(toy_workload, tmp_path, "smoke", "cpu", "test", overrides=["steps=2"])
    recorder.finish("complete")
    meta = store.read_meta(recorder.run_dir)
    assert config.steps == 2 and meta["preset"] == "smoke+steps=2" and "`steps = 2`" in meta["protocol"]
    with pytest.raises(runner.RunSetupError, match="KEY one of"):
        runner.new_run(toy_workload, tmp_path, "smoke", "cpu", "test", overrides=["nope=1"])


def test_finished_seeds_of_an_interrupted_run(tmp_path, monkeypatch):
    complete = _run(toy_workload, tmp_path / "complete")
    assert runner.finished_seeds(complete) == [0, 1]
    monkeypatch.setattr(toy_workload, "CRASH", ("beta/seed=1", 2, RuntimeError("cut")))
    with pytest.raises(RuntimeError, match="cut"):
        _run(toy_workload, tmp_path / "cut")
    (run_dir,) = (tmp_path / "cut" / "toy").iterdir()
    assert store.read_meta(run_dir)["status"] != "complete"
    assert runner.finished_seeds(run_dir) == [0]  # seed 1's alpha finished, its beta did not
    assert runner.finished_seeds(_run(chain_workload, tmp_path / "chain")) == []  # no seeds planned


def test_finished_parts_name_the_chains_an_interrupted_run_finished(tmp_path, monkeypatch):
    monkeypatch.setattr(toy_workload, "CRASH", ("beta/seed=1", 2, RuntimeError("cut")))
    with pytest.raises(RuntimeError, match="cut"):
        _run(toy_workload, tmp_path / "cut")
    (run_dir,) = (tmp_path / "cut" / "toy").iterdir()
    # a workload that names no variant parameter: seeds only
    assert runner.finished_parts(run_dir) == {"seeds": [0], "variants": []}
    monkeypatch.setattr(toy_workload, "VARIANT_PARAM", "variant", raising=False)
    parts = runner.finished_parts(run_dir)
    assert parts["seeds"] == [0]
    assert parts["variants"] == [["alpha", 0], ["alpha", 1], ["beta", 0]]  # beta/seed=1 was cut
