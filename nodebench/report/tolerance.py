"""Tolerance section: NFE against numerical error and time across tolerances (paper Fig. 3a, 3b)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from nodebench.report import _cost
from nodebench.report._tables import markdown_table

SWEEP = ["tol", "nfe_forward", "error_rms", "error_max", "task_mse", "time_forward"]


def sweep(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (library/method, tolerance): the metrics of the sweep, averaged over seeds."""
    swept = records.loc[records["metric"] == "tol", "variant"].unique()
    data = records[records["metric"].isin(SWEEP) & records["variant"].isin(swept)]
    table = _cost.wide(data, ["variant", "step"]).sort_values(["variant", "step"], kind="stable")
    return table[["variant", *[m for m in SWEEP if m in table]]].reset_index(drop=True)


def time_fits(table: pd.DataFrame) -> pd.DataFrame:
    """Least-squares ``time = s/NFE * NFE + intercept`` per library/method."""
    rows = []
    for variant, group in table.groupby("variant", sort=False):
        slope, intercept = _cost.linear_fit(group["nfe_forward"], group["time_forward"])
        rows.append({"variant": variant, "µs per NFE": slope * 1e6, "intercept ms": intercept * 1e3})
    return pd.DataFrame(rows)


def _figure(table: pd.DataFrame, fits: pd.DataFrame, out_dir: Path, name: str) -> str:
    import seaborn as sns

    data = table.assign(**{"log10 tol": table["tol"].map(math.log10)})
    fig, axes = _cost.figure(2)
    ax = axes[0, 0]
    sns.scatterplot(
        data=data,
        x="nfe_forward",
        y="error_rms",
        hue="log10 tol",
        style="variant",
        palette="viridis",
        s=60,
        ax=ax,
    )
    _cost.loglog(ax)
    ax.set(xlabel="NFE forward", ylabel="numerical error (RMS vs 1e-12 reference)")
    ax.set_title("(a) NFE against numerical error")
    ax = axes[0, 1]
    sns.scatterplot(data=data, x="nfe_forward", y="time_forward", hue="variant", s=60, ax=ax)
    for i, (variant, us_per_nfe, intercept_ms) in enumerate(fits.itertuples(index=False)):
        xs = data.loc[data["variant"] == variant, "nfe_forward"]
        grid = pd.Series([xs.min(), xs.max()])
        ax.plot(grid, grid * us_per_nfe * 1e-6 + intercept_ms * 1e-3, color=f"C{i}", lw=1)
    ax.set(xlabel="NFE forward", ylabel="forward time [s] (median)")
    ax.set_title("(b) NFE against wall time, least-squares lines")
    return _cost.save(fig, out_dir, name)


def section(df: pd.DataFrame, meta_list: list[dict[str, Any]], out_dir: Path) -> str:
    """The tolerance section: the sweep table, the time-per-NFE fits and Fig. 3a/3b per run."""
    lines = [
        "A trained model solved at rtol = atol = tol (paper Fig. 3a, 3b): the spiral-demo model, or, in runs "
        "of preset `mnist` (variants `mnist_odenet/...`), the ODE block of the trained MNIST ODE-Net on the "
        "first test images (a subset; their test error is in the run's records and in results/SUMMARY.md's "
        "Figure 3). The paper's solver was an implicit Adams method, so only the trends compare.",
        "",
    ]
    for meta, records in _cost.runs(df, meta_list):
        lines += _cost.heading(meta)
        reference = records[records["variant"] == "reference"].groupby("metric")["value"].mean()
        train = records[(records["variant"] == "train") & (records["metric"] == "loss_l1")]
        if not train.empty:
            last = train.sort_values("step", kind="stable").groupby("seed")["value"].last()
            lines += [f"Final training L1 loss (mean over seeds): {last.mean():.4g}.", ""]
        if not reference.empty:
            nfe, gap = reference.get("nfe_forward", math.nan), reference.get("reference_gap", math.nan)
            lines += [
                f"Reference solve: {nfe:.0f} NFE; the nodebench and torchdiffeq references differ by at "
                f"most {gap:.2g}.",
                "",
            ]
        table = sweep(records)
        if table.empty:
            lines += ["No tolerance sweep was recorded.", ""]
            continue
        fits = time_fits(table)
        lines += [markdown_table(table), "", "Forward time against NFE (least squares):", ""]
        lines += [markdown_table(fits), ""]
        lines += [_figure(table, fits, out_dir, f"tolerance-{meta['run_id']}.png"), ""]
    return "\n".join(lines)
