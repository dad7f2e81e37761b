"""The driver's bookkeeping under an executor that reorders, duplicates, drops and fails results.

No Ray here: :class:`ChaosExecutor` runs units in this process in a random order that respects their
dependencies and delivers the results shuffled, some twice, some never. Whatever it does, each unit
is journalled once, a completed run has the records of a serial one, and a run it left unfinished
resumes (with any executor) by running only the units that are missing.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pandas as pd
import pytest

from nodebench import cli, runner, store, workloads
from nodebench.units import UnitResult, UnitTask, execute_task, with_inputs


class ChaosExecutor:
    """Runs tasks in a random dependency order; yields results shuffled, duplicated, dropped or failed.

    Arguments:
        seed: seeds the order and the duplicates.
        drop: keys whose result is never delivered (lost on the way back).
        fail: keys whose unit raises instead of running.
    """

    def __init__(self, seed: int, drop: Sequence[str] = (), fail: Sequence[str] = ()) -> None:
        self.rng = random.Random(seed)
        self.drop, self.fail = set(drop), set(fail)
        self.delivered: list[str] = []

    def run(self, tasks: Sequence[UnitTask], progress: Callable[[int], None]) -> Iterator[UnitResult]:
        planned = {task.spec.key for task in tasks}
        pending, done, failed = list(tasks), {}, []
        outbox: list[UnitResult] = []
        while pending:
            ready = [t for t in pending if all(d in done or d not in planned for d in t.spec.depends_on)]
            ready = [t for t in ready if not any(d in failed for d in t.spec.depends_on)]
            if not ready:
                break
            task = self.rng.choice(ready)
            pending.remove(task)
            if task.spec.key in self.fail:
                failed.append(task.spec.key)
                continue
            result = execute_task(with_inputs(task, done))
            done[result.key] = result
            progress(task.spec.ticks)
            if task.spec.key not in self.drop:
                outbox += [result] * self.rng.choice((1, 1, 2))
            if self.rng.random() < 0.5:
                yield from self._flush(outbox)
        yield from self._flush(outbox)
        if failed:
            raise RuntimeError(f"units {failed} failed")

    def _flush(self, outbox: list[UnitResult]) -> Iterator[UnitResult]:
        self.rng.shuffle(outbox)
        while outbox:
            result = outbox.pop()
            self.delivered.append(result.key)
            yield result


class CountingExecutor(runner.LocalExecutor):
    """The in-process executor, remembering which units it was asked to run."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def run(self, tasks: Sequence[UnitTask], progress: Callable[[int], None]) -> Iterator[UnitResult]:
        self.asked += [task.spec.key for task in tasks]
        yield from super().run(tasks, progress)


@pytest.fixture
def walk(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    workloads.register("walk", "walk_workload")
    yield workloads.load("walk")
    workloads.unregister("walk")


def run(module, out: Path, executor, seeds=(0, 1, 2)) -> Path:
    """A new smoke run of ``module`` under ``executor``; returns its directory (whatever happened)."""
    recorder, config = runner.new_run(module, out, "smoke", "cpu", "test", seeds=seeds)
    try:
        with recorder:
            runner.run_units(module, config, recorder, executor)
    except RuntimeError:
        pass
    return recorder.run_dir


def resume(module, run_dir: Path, executor) -> None:
    recorder, config = runner.resume(module, run_dir, "test resume")
    with recorder:
        runner.run_units(module, config, recorder, executor)


def journal(run_dir: Path) -> list[str]:
    lines = (run_dir / store.UNITS_FILE).read_text().splitlines()
    return [json.loads(line)["unit"] for line in lines]


def plan_sorted(run_dir: Path, module) -> pd.DataFrame:
    """The records without run ids, in plan order of their units (what reports compare)."""
    frame = store.read_records(run_dir).drop(columns="run_id")
    specs = module.plan(module.Config(seeds=(0, 1, 2)))
    order = {(s.params["seed"], s.params["step"]): i for i, s in enumerate(specs)}
    frame["_order"] = [order.get((seed, step), -1) for seed, step in zip(frame["seed"], frame["step"])]
    return frame.sort_values(["_order"], kind="stable").drop(columns="_order").reset_index(drop=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reordered_and_duplicated_results_journal_each_unit_once(tmp_path, walk, seed):
    serial = run(walk, tmp_path / "serial", runner.LocalExecutor())
    chaos = ChaosExecutor(seed)
    shuffled = run(walk, tmp_path / "chaos", chaos)
    keys = [spec.key for spec in walk.plan(walk.Config(seeds=(0, 1, 2)))]
    assert chaos.delivered != keys  # it did reorder or duplicate
    assert store.read_meta(shuffled)["status"] == "complete"
    assert sorted(journal(shuffled)) == sorted(keys)  # each unit once, however often delivered
    pd.testing.assert_frame_equal(plan_sorted(shuffled, walk), plan_sorted(serial, walk))
    assert not list((shuffled / "checkpoints").glob("*step0.pt"))  # spent inputs were released


def test_a_dropped_result_fails_the_run_and_resume_runs_only_that_unit(tmp_path, walk):
    serial = run(walk, tmp_path / "serial", runner.LocalExecutor())
    lost = "seed=1/step=1"
    broken = run(walk, tmp_path / "chaos", ChaosExecutor(3, drop=[lost]))
    meta = store.read_meta(broken)
    assert meta["status"] == "failed" and lost in meta["error"]
    assert lost not in journal(broken)
    assert len(journal(broken)) == len(set(journal(broken))) == 8  # every delivered unit was kept
    again = CountingExecutor()
    resume(walk, broken, again)
    assert again.asked == [lost]
    assert store.read_meta(broken)["status"] == "complete"
    assert sorted(journal(broken)) == sorted(journal(serial))
    pd.testing.assert_frame_equal(plan_sorted(broken, walk), plan_sorted(serial, walk))


def test_a_failed_unit_lets_the_others_finish_and_resume_runs_what_is_missing(tmp_path, walk):
    serial = run(walk, tmp_path / "serial", runner.LocalExecutor())
    broken = run(walk, tmp_path / "chaos", ChaosExecutor(4, fail=["seed=0/step=1"]))
    assert store.read_meta(broken)["status"] == "failed"
    done = set(journal(broken))
    assert done == {f"seed={s}/step={k}" for s in (1, 2) for k in range(3)} | {"seed=0/step=0"}
    again = CountingExecutor()
    resume(walk, broken, again)
    assert again.asked == ["seed=0/step=1", "seed=0/step=2"]  # the failed unit and its dependant
    pd.testing.assert_frame_equal(plan_sorted(broken, walk), plan_sorted(serial, walk))


def test_ray_options_need_the_ray_executor(tmp_path, walk, capsys):
    code = cli.main(["run", "walk", "--out", str(tmp_path), "--address", "auto", "--max-retries", "1"])
    assert code == cli.EXIT_USAGE
    assert "--address, --max-retries: only with --executor ray" in capsys.readouterr().err
    assert not store.find_runs(tmp_path)


def test_the_ray_executor_without_ray_says_how_to_install_it(tmp_path, walk, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    assert cli.main(["run", "walk", "--out", str(tmp_path), "--executor", "ray"]) == cli.EXIT_USAGE
    assert "pip install 'nodebench[ray]'" in capsys.readouterr().err
    assert not store.find_runs(tmp_path)


def test_meta_records_the_executor_and_where_each_unit_ran(tmp_path, walk):
    run_dir = run(walk, tmp_path, runner.LocalExecutor())
    meta = store.read_meta(run_dir)
    assert meta["attempts"][-1]["executor"] == {"executor": "local"}
    assert set(meta["units"]) == set(journal(run_dir))
    assert {(u["host"], u["device"], u["attempt"]) for u in meta["units"].values()} == {
        (meta["hostname"], "cpu", 0)
    }


_KILLED_ATTEMPT = """
import os, sys
from pathlib import Path
sys.path[:0] = [{root!r}, {tests!r}]
from nodebench import runner, workloads
from test_executors import ChaosExecutor
workloads.register("walk", "walk_workload")
module = workloads.load("walk")


class Killed(ChaosExecutor):
    def run(self, tasks, progress):
        for n, result in enumerate(super().run(tasks, progress)):
            if n == {after}:
                os._exit(9)  # killed outright: no exception handler, no finally
            yield result


recorder, config = runner.new_run(module, Path({out!r}), "smoke", "cpu", "test", seeds=(0, 1, 2))
with recorder:
    runner.run_units(module, config, recorder, Killed({seed}))
"""


@pytest.mark.parametrize("seed", [0, 1])
def test_a_run_killed_outright_keeps_results_that_arrived_ahead_of_their_turn(tmp_path, walk, seed):
    """Results a parallel executor delivers out of plan order wait on disk (``held/``), so killing the
    driver outright loses none of them: the resume journals them without running their units again."""
    import subprocess
    import sys

    tests = Path(__file__).parent
    script = _KILLED_ATTEMPT.format(
        root=str(tests.parent), tests=str(tests), after=8, out=str(tmp_path / "killed"), seed=seed
    )
    assert subprocess.run([sys.executable, "-c", script], timeout=120).returncode == 9
    (killed,) = (tmp_path / "killed" / "walk").iterdir()
    journalled = set(journal(killed))
    recorder = store.resume_run(killed, "test")
    held = set(recorder.held())
    recorder.finish("interrupted")
    assert held and not held & journalled  # something arrived ahead of its turn, and was kept
    counting = CountingExecutor()
    resume(walk, killed, counting)
    keys = [spec.key for spec in walk.plan(walk.Config(seeds=(0, 1, 2)))]
    assert not set(counting.asked) & (held | journalled)  # only the lost units ran again
    assert sorted(journal(killed)) == sorted(keys) and not list((killed / store.HELD_DIR).glob("*"))
    serial = run(walk, tmp_path / "serial", runner.LocalExecutor())
    pd.testing.assert_frame_equal(plan_sorted(killed, walk), plan_sorted(serial, walk))
