"""Latent report: scale-free RMSE and latent-ODE/baseline ratios on hand-made records."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from nodebench.claims import table2 as report
from nodebench.report import latent as latent_report

DATA = {"n_spirals": 1000, "noise_std": 0.1, "amplitude": 0.3, "n_grid": 1000, "start_min": 200}
DATA |= {"start_max": None, "val_spirals": 100}


def _meta(run: str, seeds: list[int], **config) -> dict:
    return {"run_id": run, "seeds": seeds, "preset": "standard", "config": DATA | {"seeds": seeds} | config}


def _row(run: str, variant: str, seed: int, metric: str, value: float) -> dict:
    return {"run_id": run, "variant": variant, "seed": seed, "step": -1, "metric": metric, "value": value}


@pytest.fixture()
def records() -> tuple[pd.DataFrame, list[dict]]:
    """Run "new" records train_std (2 and 4); "old" (same data, earlier cell names) does not; "other" has
    other data and no scale anywhere."""
    rows = [_row("new", "data", 0, "train_std", 2.0), _row("new", "data", 1, "train_std", 4.0)]
    finals = {  # (run, model, seed) -> extrapolation RMSE vs truth at n = 30
        ("new", "latent_ode", 0): 0.5,
        ("new", "latent_ode", 1): 1.2,
        ("new", "rnn_tanh", 0): 1.0,
        ("new", "rnn_tanh", 1): 2.0,
        ("old", "latent_ode", 0): 0.6,
        ("old", "rnn", 0): 1.5,
        ("other", "latent_ode", 0): 0.3,
    }
    for (run, model, seed), value in finals.items():
        rows.append(_row(run, f"{model}/n=30", seed, "rmse_extrap_truth", value))
        rows.append(_row(run, f"{model}/n=30", seed, "val_rmse_extrap", value) | {"step": 100})
    metas = [
        _meta("new", [0, 1], models=["latent_ode", "rnn_tanh"], geometry="torchdiffeq"),
        _meta("old", [0], models=["latent_ode", "rnn"], cell="rnn"),  # before `geometry` existed
        _meta("other", [0], noise_std=0.3),
    ]
    return pd.DataFrame(rows), metas


def test_train_scales_recorded_or_borrowed_from_the_same_data(records):
    df, metas = records
    scales = report.train_scales(df, metas).set_index(["run_id", "seed"])
    assert scales.loc[("new", 0), "train_std"] == 2.0 and scales.loc[("new", 0), "scale_from"] == "new"
    assert scales.loc[("new", 1), "train_std"] == 4.0
    assert scales.loc[("old", 0), "train_std"] == 2.0 and scales.loc[("old", 0), "scale_from"] == "new"
    assert math.isnan(scales.loc[("other", 0), "train_std"]) and scales.loc[("other", 0), "scale_from"] == ""


def test_normalised_rmse_divides_by_the_seed_own_scale(records):
    df, metas = records
    tagged = report.tagged(df, metas)
    finals = report.finals(tagged, "rmse_extrap_truth")
    norm = report.normalised(finals, report.train_scales(df, metas)).set_index(["run_id", "model", "seed"])
    assert norm.loc[("new", "latent_ode", 0), "value"] == pytest.approx(0.25)
    assert norm.loc[("new", "latent_ode", 1), "value"] == pytest.approx(0.3)
    assert norm.loc[("new", "rnn_tanh", 1), "value"] == pytest.approx(0.5)
    assert norm.loc[("old", "latent_ode", 0), "value"] == pytest.approx(0.3)
    assert math.isnan(norm.loc[("other", "latent_ode", 0), "value"])


def test_ratio_per_seed_then_mean_and_std(records):
    df, metas = records
    tagged = report.tagged(df, metas)
    assert set(tagged[tagged["run_id"] == "old"]["model"]) == {
        "latent_ode",
        "rnn_tanh",
    }  # old `rnn`, cell rnn
    finals = report.finals(tagged, "rmse_extrap_truth")
    ratio = report.ratios(finals, "rnn_tanh").set_index(["run_id", "seed"])["value"]
    assert ratio[("new", 0)] == pytest.approx(0.5) and ratio[("new", 1)] == pytest.approx(0.6)
    assert ratio[("old", 0)] == pytest.approx(0.4)
    assert ("other", 0) not in ratio.index  # no baseline there: no ratio
    # mean ± sample std over seeds of the per-seed ratios, not the ratio of the means (0.567)
    assert latent_report._mean_std(ratio.loc["new"], ".3f") == "0.550 ± 0.071 (2)"
    assert report.canonical_model("rnn", {"cell": "gru"}) == "gru"
    assert report.canonical_model("rnn", {}) == "gru"  # the cell's default then


def test_table2_rows_raw_normalised_ratio(records):
    df, metas = records
    tagged = report.tagged(df[df["run_id"] == "new"], metas)
    text = latent_report._table2(tagged, report.train_scales(df, metas), [30])
    assert "| Latent ODE / RNN | paper: ratio of the two rows above | 0.4171 |" in text
    assert "| Latent ODE | ours: RMSE vs noise-free truth | 0.8500 ± 0.4950 (2) |" in text
    assert "| Latent ODE | ours: RMSE / train_std, vs noise-free truth | 0.2750 ± 0.0354 (2) |" in text
    assert "| Latent ODE / tanh RNN | ours: ratio per seed, vs truth | 0.550 ± 0.071 (2) |" in text


def test_sensitivity_cells_are_compared_with_the_card_they_vary():
    """A later card with another solver does not become the protocol study's reference: the cells
    changed one choice of the first card, so that card (fewest differing fields) is their reference."""
    first = [_meta("first", [0, 1, 2], method="dopri5", iterations=1500, models=["latent_ode", "rnn_tanh"])]
    later = [
        _meta(r, [s], method="adams", iterations=6000, models=["latent_ode", "gru"])
        for s, r in enumerate("ab")
    ]
    noise = [_meta("cell-noise", [0], method="dopri5", iterations=1500, noise_std=0.3)]
    grid = [_meta("cell-grid", [0], method="dopri5", iterations=1500, n_grid=2000)]
    assert report.study_reference([first, later], [noise, grid]) is first
    assert report.study_reference([later, first], [noise]) is first
    # equal distance: the latest group wins; no cells or no cards: no reference
    assert (
        report.study_reference([first, [_meta("again", [0], method="dopri5", iterations=1500)]], [noise])[0][
            "run_id"
        ]
        == "again"
    )
    assert report.study_reference([first], []) is None and report.study_reference([], [noise]) is None
