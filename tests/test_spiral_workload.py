"""The spiral workload: data, models, the smoke preset through the CLI, determinism, resume, report."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import torch

from nodebench import cli, runner, store
from nodebench.data.demo_spirals import (
    BATCH_STREAM,
    EXAMPLE_NOISE_STD,
    Trajectory,
    demo_starts,
    example_segment,
    generator,
    make_trajectory,
)
from nodebench.models.demo_spirals import W_TRUE, make_model, true_dynamics
from nodebench.workloads import spiral
from nodebench.workloads.base import config_to_dict

VARIANTS = [
    spiral.variant_name(p, m, s) for p in spiral.PROBLEMS for m in spiral.MODES for s in spiral.SOLVERS
]
REDUCED = dataclasses.replace(spiral.PRESETS["smoke"], problems=("example1",), example1_steps=2)


def without_timings(run_dir: Path) -> pd.DataFrame:
    records = store.read_records(run_dir)
    return records[records["unit"] != "s"].drop(columns="run_id").reset_index(drop=True)


def run_config(config: spiral.Config, out: Path) -> Path:
    """Run ``config`` through the store directly (no CLI), returning the run directory."""
    recorder = store.create_run(out, spiral.NAME, "custom", config_to_dict(config), protocol=spiral.PROTOCOL)
    with recorder:
        runner.run_units(spiral, config, recorder)
    return recorder.run_dir


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted smoke run through the CLI, shared by the tests below."""
    out = tmp_path_factory.mktemp("smoke")
    assert cli.main(["run", "spiral", "--preset", "smoke", "--out", str(out)]) == 0
    (run_dir,) = (out / "spiral").iterdir()
    return run_dir


@pytest.fixture(scope="module")
def reduced_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run of the smoke preset reduced to Example 1 (4 variants, 2 iterations)."""
    return run_config(REDUCED, tmp_path_factory.mktemp("reduced"))


@pytest.fixture(scope="module")
def example1() -> Trajectory:
    return make_trajectory("example1", 0)


# ---- data and models


def test_trajectory_is_deterministic_by_seed(example1: Trajectory):
    a, b, c = example1, make_trajectory("example1", 0), make_trajectory("example1", 1)
    assert a.obs.dtype == torch.float64 and a.obs.shape == (200, 2)
    assert torch.equal(a.obs, b.obs) and torch.equal(a.truth, c.truth)
    assert not torch.equal(a.obs, c.obs)
    noise = (a.obs - a.truth).flatten()
    assert abs(float(noise.std()) / EXAMPLE_NOISE_STD - 1) < 0.15
    demo = make_trajectory("demo", 0)
    assert demo.t.shape == (1000,) and torch.equal(demo.obs, demo.truth)
    assert torch.equal(demo.z0, torch.tensor([2.0, 0.0], dtype=torch.float64))


def test_example1_truth_is_the_matrix_exponential(example1: Trajectory):
    data = example1
    W = torch.tensor(W_TRUE, dtype=torch.float64)
    exact = torch.stack([torch.linalg.matrix_exp(W * t) @ data.z0 for t in data.t])
    assert torch.equal(data.z0, torch.tensor([0.6, 0.3], dtype=torch.float64))
    assert float(data.t[-1]) == pytest.approx(31.45)
    torch.testing.assert_close(data.truth, exact, rtol=0, atol=1e-9)


def test_example2_truth_blends_two_linear_spirals_per_state():
    f = true_dynamics("example2", torch.float64)
    x = torch.tensor([[0.3, -0.2], [-1.5, 0.7]], dtype=torch.float64)
    A, B, x0 = f.A, f.B, f.x0
    for row, out in zip(x, f(torch.tensor(0.0), x)):
        s = torch.sigmoid(row @ x0)
        torch.testing.assert_close(out, s * A @ (row - x0) + (1 - s) * B @ (row + x0))


def test_models_follow_the_protocol():
    torch.manual_seed(0)
    ex1 = make_model("example1")
    torch.manual_seed(0)
    torch.nn.Linear(2, 2, bias=False, dtype=torch.float32)  # the layer's own initialisation draws first
    assert ex1.lin.bias is None and ex1.weight.dtype == torch.float32
    assert torch.equal(ex1.weight, torch.randn(2, 2, dtype=torch.float32) / 2)
    demo = make_model("demo", torch.float64)
    assert [tuple(p.shape) for p in demo.parameters()] == [(50, 2), (50,), (2, 50), (2,)]
    assert demo.net[0].bias.abs().max() == 0 and demo.net[2].bias.abs().max() == 0
    ex2 = make_model("example2")
    assert sum(p.numel() for p in ex2.parameters()) == 2 * 16 + 16 + 16 * 16 + 16 + 16 * 2 + 2
    y = torch.randn(5, 2, dtype=torch.float32)
    assert ex2(torch.tensor(0.0), y).shape == (5, 2)


def test_batches_follow_the_protocol(example1: Trajectory):
    t = example1.t
    gen = generator(0, BATCH_STREAM)
    for _ in range(200):
        index = example_segment(t, gen)
        assert 2 <= len(index) <= 32
        assert torch.equal(index, index.sort().values) and len(index.unique()) == len(index)
        span = float(t[index[-1]] - t[index[0]])
        assert span < 5.0 and float(t[index[-1]]) < float(t[-1])
    starts = demo_starts(1000, generator(0, BATCH_STREAM))
    assert len(starts) == 20 and len(starts.unique()) == 20 and int(starts.max()) < 990


# ---- the workload


def test_smoke_run_records_the_expected_metrics(smoke_run: Path):
    meta = store.read_meta(smoke_run)
    assert (meta["status"], meta["preset"], meta["seeds"]) == ("complete", "smoke", [0])
    records = store.read_records(smoke_run)
    steps = spiral.PRESETS["smoke"].example1_steps
    for variant in VARIANTS:
        rows = records[records["variant"] == variant]
        metrics = set(rows["metric"])
        expected = {"loss", "nfe_forward", "time_step", "traj_mse", "traj_mse_solver"}
        expected |= {f"traj_{axis}@{k}" for axis in "xy" for k in (0, steps)}
        if "/adjoint/" in variant:
            expected.add("nfe_backward")
        if variant.startswith("example1/"):
            expected |= {"W_11", "W_12", "W_21", "W_22", "W_err_max"}
        assert metrics == expected, variant
        loss = rows[rows["metric"] == "loss"]
        assert list(loss["step"]) == list(range(steps)) and loss["value"].gt(0).all()
        assert list(rows.loc[rows["metric"] == "traj_mse", "step"]) == [0, steps]
        assert rows.loc[rows["metric"] == "nfe_forward", "value"].gt(0).all()
        assert rows.loc[rows["metric"] == "traj_x@0", "value"].notna().all()
    for problem in spiral.PROBLEMS:
        data = set(records.loc[records["variant"] == problem, "metric"])
        obs = set() if problem == "demo" else {"obs_x", "obs_y"}
        assert data == {"t", "truth_x", "truth_y"} | obs


def test_same_seed_gives_identical_records(reduced_run: Path, tmp_path: Path):
    again = without_timings(run_config(REDUCED, tmp_path))
    assert set(again["variant"]) == {"example1", *VARIANTS[:4]}
    pd.testing.assert_frame_equal(again, without_timings(reduced_run))


def test_killed_run_resumes_to_the_uninterrupted_records(
    reduced_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    evaluate = spiral._evaluate

    def crash_midway(recorder, variant, seed, step, *args, **kwargs):
        if variant == "example1/adjoint/euler" and step > 0:
            raise RuntimeError("killed")
        return evaluate(recorder, variant, seed, step, *args, **kwargs)

    monkeypatch.setattr(spiral, "_evaluate", crash_midway)
    with pytest.raises(RuntimeError, match="killed"):
        run_config(REDUCED, tmp_path)
    (run_dir,) = (tmp_path / "spiral").iterdir()
    assert store.read_meta(run_dir)["status"] == "failed"
    cut = store.read_records(run_dir)
    assert (cut["variant"] == "example1/adjoint/euler").any()  # the cut unit had written rows

    monkeypatch.setattr(spiral, "_evaluate", evaluate)
    assert cli.main(["run", "spiral", "--resume", str(run_dir)]) == 0
    assert store.read_meta(run_dir)["status"] == "complete"
    pd.testing.assert_frame_equal(without_timings(run_dir), without_timings(reduced_run))


def test_report_builds_the_section_and_figures(smoke_run: Path, tmp_path: Path):
    assert cli.main(["report", str(smoke_run), "--out", str(tmp_path)]) == 0
    text = (tmp_path / "REPORT.md").read_text()
    assert (
        "\n## spiral\n" in text
        and text.index("| problem | mode | solver |") < text.index("\n## Runs\n")
        and "section failed" not in text
    )
    assert "| problem | mode | solver |" in text and "final traj MSE" in text
    for variant in VARIANTS:
        assert "| " + variant.replace("/", " | ") + " | 3 | 1 |" in text, variant
    assert "| truth |" in text
    run_id = smoke_run.name
    names = [f"spiral-{run_id}-curves.png"]
    names += [f"spiral-{run_id}-{p}-{kind}.png" for p in spiral.PROBLEMS for kind in ("phase", "xt")]
    for name in names:
        path = tmp_path / "figures" / name
        assert path.stat().st_size > 10_000, name
        assert f"(figures/{name})" in text


@pytest.mark.slow
def test_example1_standard_recovers_w(tmp_path: Path):
    """Example 1 at the standard preset (500 Adam steps): every variant recovers W within 0.05."""
    config = dataclasses.replace(spiral.PRESETS["standard"], problems=("example1",))
    records = store.read_records(run_config(config, tmp_path))
    final = records[(records["metric"] == "W_err_max") & (records["step"] == config.example1_steps)]
    assert len(final) == 4
    assert final["value"].lt(0.05).all(), final[["variant", "value"]]
