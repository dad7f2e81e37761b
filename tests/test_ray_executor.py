"""``--executor ray`` on an embedded local Ray with 2 CPUs (skipped where ray is not installed).

The same preset gives the serial run's records (timings aside); a worker SIGKILLed mid-unit is retried
and every unit journalled once; a unit that keeps dying fails the run after the others finished, and
``--resume`` runs only what is missing; a SIGKILLed driver leaves a run that resumes to completion.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from nodebench import cli, runner, store, workloads

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'nodebench[ray]')")

from nodebench.ray_executor import RayExecutor  # noqa: E402

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


@pytest.fixture(scope="module")
def ray_cluster():
    """One embedded Ray for the module: 2 CPUs, no dashboard, a small object store."""
    if ray.is_initialized():
        ray.shutdown()
    # Workers of every job (this process's, a subprocess driver's) import the test workloads.
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), str(TESTS), previous) if p)
    try:
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 2**20, log_to_driver=False)
    finally:
        if previous is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = previous
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def walk(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(TESTS))
    workloads.register("walk", "walk_workload")
    yield workloads.load("walk")
    workloads.unregister("walk")


def only_run(out: Path) -> Path:
    (run_dir,) = store.find_runs(out)
    return run_dir


def without_timings(run_dir: Path) -> pd.DataFrame:
    frame = store.read_records(run_dir).drop(columns="run_id")
    return frame[frame["unit"] != "s"].reset_index(drop=True)


def journal(run_dir: Path) -> list[str]:
    return [json.loads(line)["unit"] for line in (run_dir / store.UNITS_FILE).read_text().splitlines()]


@pytest.fixture
def float32_default():
    """As in a fresh process (``nodebench run``, a Ray worker): the test suite's float64 default is off."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("workload", ["spiral", "latent"])
def test_smoke_records_equal_the_serial_runs(tmp_path, ray_cluster, float32_default, workload):
    assert cli.main(["run", workload, "--out", str(tmp_path / "serial")]) == 0
    assert cli.main(["run", workload, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    serial, distributed = only_run(tmp_path / "serial"), only_run(tmp_path / "ray")
    pd.testing.assert_frame_equal(without_timings(distributed), without_timings(serial))
    assert journal(distributed) == journal(serial)
    meta = store.read_meta(distributed)
    executor = meta["attempts"][-1]["executor"]
    assert executor["executor"] == "ray" and executor["cluster_cpus"] == 2
    assert set(meta["units"]) == set(journal(distributed))
    hosts = {unit["host"] for unit in meta["units"].values()}
    assert hosts and all(unit["device"] == "cpu" for unit in meta["units"].values())
    assert len({unit["pid"] for unit in meta["units"].values()}) >= 1
    assert store.read_meta(serial)["attempts"][-1]["executor"]["executor"] == "local"


def test_a_worker_killed_mid_unit_is_retried_and_journalled_once(tmp_path, ray_cluster, walk):
    serial, _ = runner.new_run(walk, tmp_path / "serial", "smoke", "cpu", "test")
    with serial:
        runner.run_units(walk, walk.PRESETS["smoke"], serial)
    kills = tmp_path / "kills"
    kills.mkdir()
    victim = "seed=0/step=1"
    overrides = [f"kill_dir={str(kills)!r}", f"kill_keys=({victim!r},)", "kill_times=1"]
    recorder, config = runner.new_run(walk, tmp_path / "ray", "smoke", "cpu", "test", overrides=overrides)
    with recorder:
        runner.run_units(walk, config, recorder, RayExecutor(max_retries=2))
    assert len(list(kills.iterdir())) == 1  # the first attempt died
    assert store.read_meta(recorder.run_dir)["status"] == "complete"
    assert sorted(journal(recorder.run_dir)) == sorted(journal(serial.run_dir))  # each once
    pd.testing.assert_frame_equal(without_timings(recorder.run_dir), without_timings(serial.run_dir))
    threads = store.read_records(recorder.run_dir).query("metric == 'threads'")["value"]
    assert set(threads) == {config.threads}  # workers pin torch threads from the config


def test_a_unit_that_keeps_dying_fails_the_run_after_the_others(tmp_path, ray_cluster, walk):
    kills = tmp_path / "kills"
    kills.mkdir()
    victim = "seed=1/step=0"
    # Dies on its first try and on its one retry; a third attempt (the resume below) lives.
    overrides = [f"kill_dir={str(kills)!r}", f"kill_keys=({victim!r},)", "kill_times=2"]
    recorder, config = runner.new_run(walk, tmp_path / "ray", "smoke", "cpu", "test", overrides=overrides)
    with pytest.raises(Exception, match="seed=1/step=0"), recorder:
        runner.run_units(walk, config, recorder, RayExecutor(max_retries=1))
    assert len(list(kills.iterdir())) == 2
    meta = store.read_meta(recorder.run_dir)
    assert meta["status"] == "failed"
    assert sorted(journal(recorder.run_dir)) == ["seed=0/step=0", "seed=0/step=1", "seed=0/step=2"]
    # --resume (here with the local executor) runs only what is missing
    assert cli.main(["run", "walk", "--resume", str(recorder.run_dir)]) == 0
    assert sorted(journal(recorder.run_dir)) == sorted(s.key for s in walk.plan(config))
    assert store.read_meta(recorder.run_dir)["status"] == "complete"


def stop_a_driver(tmp_path: Path, address: str, sig: int, after_units: int) -> tuple[Path, str]:
    """Start ``nodebench run walk --executor ray`` as a subprocess driver on ``address``, send it ``sig``
    once ``after_units`` units are journalled; returns the runs folder and the driver's stderr."""
    out = tmp_path / "runs"
    code = (
        "import sys; from nodebench import workloads; workloads.register('walk', 'walk_workload'); "
        "from nodebench.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    argv = [sys.executable, "-c", code, "run", "walk", "--out", str(out), "--executor", "ray"]
    argv += ["--address", address, "--set", "sleep=1.0", "--set", "steps=4"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS)]))
    log = tmp_path / "driver.log"
    with open(log, "wb") as errors:
        driver = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            runs = store.find_runs(out)
            if runs and len(journal(runs[0]) if (runs[0] / store.UNITS_FILE).exists() else []) >= after_units:
                break
            assert driver.poll() is None, f"the driver ended before it could be stopped:\n{log.read_text()}"
            time.sleep(0.2)
        else:
            pytest.fail("no unit was journalled within 180 s")
        driver.send_signal(sig)
    finally:
        driver.wait(timeout=60)
    return out, log.read_text()


def test_a_killed_driver_leaves_a_run_that_resumes(tmp_path, ray_cluster, walk):
    out, _ = stop_a_driver(tmp_path, ray_cluster, signal.SIGKILL, after_units=2)
    run_dir = only_run(out)
    assert store.read_meta(run_dir)["status"] == "running"  # killed: never finished
    done = journal(run_dir)
    assert 2 <= len(done) < 8
    assert cli.main(["run", "walk", "--resume", str(run_dir), "--executor", "ray"]) == 0
    final = journal(run_dir)
    assert final[: len(done)] == done and sorted(final) == sorted(set(final))
    assert len(final) == 8 and store.read_meta(run_dir)["status"] == "complete"


def test_sigterm_interrupts_a_ray_driver_and_the_run_resumes(tmp_path, ray_cluster, walk):
    """SIGTERM (a scheduler's stop, ``kill``) records the run as interrupted, as without Ray: Ray's own
    SIGTERM handler, installed by ``ray.init``, would exit with SystemExit and record it as failed."""
    out, log = stop_a_driver(tmp_path, ray_cluster, signal.SIGTERM, after_units=1)
    run_dir = only_run(out)
    meta = store.read_meta(run_dir)
    assert meta["status"] == "interrupted", (meta["status"], meta.get("error"), log[-2000:])
    assert cli.main(["run", "walk", "--resume", str(run_dir), "--executor", "ray"]) == 0
    assert len(journal(run_dir)) == 8 and store.read_meta(run_dir)["status"] == "complete"


def test_timing_workloads_run_one_unit_at_a_time_on_one_node(tmp_path, ray_cluster, walk, monkeypatch):
    monkeypatch.setattr(walk, "RAY_PLACEMENT", "serial", raising=False)
    recorder, config = runner.new_run(
        walk, tmp_path, "smoke", "cpu", "test", seeds=(0, 1, 2), overrides=["steps=1", "sleep=0.3"]
    )
    executor = RayExecutor()
    with recorder:
        runner.run_units(walk, config, recorder, executor)
    meta = store.read_meta(recorder.run_dir)
    assert meta["attempts"][-1]["executor"]["placement"] == "serial"
    spans = sorted((u["started_at"], u["started_at"] + u["seconds"]) for u in meta["units"].values())
    assert len(spans) == 3 and len({u["node_id"] for u in meta["units"].values()}) == 1
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))  # never two at once
