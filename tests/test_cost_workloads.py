"""The cost workloads (memory, tolerance, nfe, solvers) on their smoke presets, and their report sections."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from nodebench import cli, store
from nodebench.report import build_report
from nodebench.report.memory import slopes
from nodebench.report.nfe import split_variants
from nodebench.workloads import memory

WORKLOADS = ("memory", "tolerance", "nfe", "solvers")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each cost workload run once at its smoke preset through the CLI.

    One thread, here and in the fresh processes (``OMP_NUM_THREADS``): on a shared, oversubscribed
    machine two OpenMP threads per process can make small convolutions tens of times slower.
    """
    out = tmp_path_factory.mktemp("runs")
    runs = {}
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)
        try:
            for name in WORKLOADS:
                assert cli.main(["run", name, "--preset", "smoke", "--out", str(out)]) == 0
                (run_dir,) = (out / name).iterdir()
                assert store.read_meta(run_dir)["status"] == "complete"
                runs[name] = run_dir
        finally:
            torch.set_num_threads(threads)
    return runs


def _metric(records: pd.DataFrame, metric: str) -> pd.DataFrame:
    return records[records["metric"] == metric].sort_values(["variant", "step"], kind="stable")


def test_memory_adjoint_constant_direct_linear(smoke_runs):
    records = store.read_records(smoke_runs["memory"])
    saved = _metric(records, "saved_bytes")
    adjoint = saved[saved["variant"].str.endswith("-adjoint")]
    direct = saved[saved["variant"].str.endswith("-direct")]
    assert not adjoint.empty and not direct.empty
    for _, group in adjoint.groupby("variant"):
        assert group["value"].nunique() == 1, group
    for _, group in direct.groupby("variant"):
        assert group["value"].is_monotonic_increasing and group["value"].is_unique, group
    fits = slopes(records).set_index(["mode", "metric"])["bytes/step"]
    assert (
        abs(fits["nodebench-adjoint", "saved for backward"])
        < 0.01 * fits["nodebench-direct", "saved for backward"]
    )


def test_memory_nfe_backward_only_for_adjoint(smoke_runs):
    records = store.read_records(smoke_runs["memory"])
    backward = _metric(records, "nfe_backward").set_index(["variant", "step"])["value"]
    forward = _metric(records, "nfe_forward").set_index(["variant", "step"])["value"]
    for (mode, steps), value in backward.items():
        assert forward[mode, steps] == 4 * steps  # rk4: four evaluations per step
        assert (value > 0) == mode.endswith("-adjoint"), (mode, steps, value)


@pytest.mark.parametrize("mode", ["torchdiffeq-direct", "torchdiffeq-adjoint", "resnet"])
def test_memory_measure_other_modes(mode):
    """The modes the smoke preset leaves out, measured in-process on a tiny state."""
    small = {"mode": mode, "batch": 1, "channels": 4, "size": 3, "seed": 0, "device": "cpu", "repeats": 1}
    one, two = (memory.measure(steps=steps, **small) for steps in (1, 2))
    if mode.endswith("-adjoint"):
        assert one["saved_bytes"] == two["saved_bytes"] and two["nfe_backward"] == 8
    else:
        assert one["saved_bytes"] < two["saved_bytes"]
        assert two.get("nfe_backward", 0) == 0
    assert two["time_fwd_bwd"] > 0


def test_memory_preflight_refuses_what_cannot_fit():
    huge = memory.Config(steps=(10**7,), batch=128)
    assert "GiB" in memory.preflight(huge, torch.device("cpu"))
    assert memory.preflight(memory.PRESETS["smoke"], torch.device("cpu")) is None


def test_tolerance_error_decreases_as_tolerance_tightens(smoke_runs):
    records = store.read_records(smoke_runs["tolerance"])
    errors = _metric(records, "error_rms")
    # adams is nodebench's alone: torchdiffeq has no adaptive Adams, so its sweep leaves it out
    assert set(errors["variant"]) == {"nodebench/dopri5", "torchdiffeq/dopri5", "nodebench/adams"}
    for _, group in errors.groupby("variant"):
        assert group["value"].is_monotonic_decreasing and group["value"].is_unique, group
    nfe = _metric(records, "nfe_forward")
    for _, group in nfe[nfe["variant"] != "reference"].groupby("variant"):
        assert group["value"].is_monotonic_increasing, group


def test_nfe_backward_counted_for_every_setting(smoke_runs):
    records = store.read_records(smoke_runs["nfe"])
    forward = _metric(records, "nfe_forward").set_index(["variant", "step"])["value"]
    backward = _metric(records, "nfe_backward").set_index(["variant", "step"])["value"]
    ratio = _metric(records, "nfe_ratio").set_index(["variant", "step"])["value"]
    assert (forward > 0).all() and (backward > 0).all()
    pd.testing.assert_series_equal(ratio, backward / forward, check_names=False)
    variants = set(forward.index.get_level_values("variant"))
    for library in ("nodebench", "torchdiffeq"):
        for norm in ("seminorm", "full"):
            assert f"mnist_block/{library}/{norm}/tol=1e-03" in variants
            assert f"{library}/{norm}/tol=1e-05" in variants
    for norm in ("seminorm", "full"):  # adams beside dopri5, in nodebench only
        assert f"mnist_block/nodebench/adams/{norm}/tol=1e-03" in variants
        assert f"nodebench/adams/{norm}/tol=1e-05" in variants
    assert not any("torchdiffeq/adams" in v for v in variants)
    table = split_variants(records)
    adams = table[table["method"] == "adams"]
    assert set(adams["library"]) == {"nodebench"} and set(adams["problem"]) == {"spiral", "MNIST ODE block"}
    assert set(table[table["variant"] == "mnist_block/torchdiffeq/full/tol=1e-03"]["method"]) == {"dopri5"}
    assert set(forward.index.get_level_values("step")) == {0, 5, 10}


def test_solvers_points_cover_both_libraries(smoke_runs):
    records = store.read_records(smoke_runs["solvers"])
    nfe = _metric(records, "nfe")
    assert {"linear/nodebench/tsit5", "linear/torchdiffeq/dopri8"} <= set(nfe["variant"])
    assert (nfe["value"] > 0).all() and (_metric(records, "time")["value"] > 0).all()
    errors = _metric(records, "error")
    dopri5 = errors[errors["variant"].str.endswith("/dopri5")].pivot(index="step", columns="variant")["value"]
    # the same tableau and controller: both libraries land on the same answer
    assert torch.allclose(torch.tensor(dopri5.iloc[:, 0].values), torch.tensor(dopri5.iloc[:, 1].values))


def test_report_sections_render_from_records(smoke_runs, tmp_path):
    path = build_report(list(smoke_runs.values()), tmp_path / "report")
    text = path.read_text()
    assert "failed to build" not in text
    for name, run_dir in smoke_runs.items():
        assert f"\n## {name}\n" in text and text.index(f"\n## {name}\n") < text.index("\n## Runs\n")
        run_id = store.read_meta(run_dir)["run_id"]
        figures = sorted((tmp_path / "report" / "figures").glob(f"{name}-{run_id}*.png"))
        assert figures, name
        for figure in figures:
            assert figure.read_bytes().startswith(PNG_MAGIC)
            assert f"](figures/{figure.name})" in text
    assert "| nodebench-adjoint | saved for backward | 0 |" in text
