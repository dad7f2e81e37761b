"""Tolerance section: NFE against numerical error and time across tolerances (paper Fig. 3a, 3b)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nodebench.report import _cost, style
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


#: rtol = atol of the spiral sweep's float64 reference solve (``nodebench.workloads.tolerance.REFERENCE_TOL``;
#: the report reads records only, so it is restated here and a test holds the two equal).
SPIRAL_REFERENCE_TOL = 1e-12
MNIST_PREFIX = "mnist_odenet/"


def reference_tol(meta: dict[str, Any], variants: Iterable[str]) -> float | None:
    """rtol = atol of the reference the sweep's error is measured against: the run's
    ``mnist_reference_tol`` for the MNIST ODE-Net's variants, else the spiral sweep's fixed one."""
    if any(str(v).startswith(MNIST_PREFIX) for v in variants):
        return (meta.get("config") or {}).get("mnist_reference_tol")
    return SPIRAL_REFERENCE_TOL


@style.figure_function
def draw(table: pd.DataFrame, fits: pd.DataFrame, reference: float | None) -> Figure:
    """Paper Fig. 3a/3b for a sweep: (a) NFE against numerical error, (b) NFE against wall time.

    Colour: the method; marker and line style: the library; marker shade: the tolerance (light:
    loose). Panel (b) draws each solver's least-squares line.

    Arguments:
        table: :func:`sweep` rows (``variant``, ``tol``, ``nfe_forward``, ``error_rms``, ``time_forward``).
        fits: :func:`time_fits` rows (``variant``, ``µs per NFE``, ``intercept ms``).
        reference: rtol = atol of the reference solve (:func:`reference_tol`), ``None`` if unknown.

    Returns:
        The figure.
    """
    fig, axes = _cost.figure(2, width=5.0, height=4.0)
    ax_a, ax_b = axes[0]
    tols = sorted(table["tol"].unique(), reverse=True)
    fit = fits.set_index("variant")
    solvers = []
    for variant, part in table.groupby("variant", sort=False):
        library, method = style.split_solver(variant)
        base, (marker, linestyle) = style.colour(method), style.library_style(library)
        shade = style.shade_map(tols, base, reverse=True)
        part = part.sort_values("tol", ascending=False)
        points = {"color": [shade[t] for t in part["tol"]], "edgecolor": base, "marker": marker, "s": 50}
        ax_a.plot(part["nfe_forward"], part["error_rms"], color=base, ls=linestyle, lw=1, zorder=2)
        ax_a.scatter(part["nfe_forward"], part["error_rms"], zorder=3, **points)
        ax_b.scatter(part["nfe_forward"], part["time_forward"], zorder=3, **points)
        if variant in fit.index and np.isfinite(fit.loc[variant, "µs per NFE"]):
            grid = np.array([part["nfe_forward"].min(), part["nfe_forward"].max()])
            line = grid * fit.loc[variant, "µs per NFE"] * 1e-6 + fit.loc[variant, "intercept ms"] * 1e-3
            ax_b.plot(grid, line, color=base, ls=linestyle, lw=1, zorder=2)
        solvers.append(style.solver_handle(library, method))
    style.log_axis(ax_a, x=True, y=True)
    style.log_ticks(ax_a, "x")
    against = f"{style.tolerance_label(reference)} reference" if reference else "reference"
    ax_a.set(xlabel="NFE forward", ylabel=f"numerical error (RMS vs {against})")
    ax_a.set_title("(a) NFE against numerical error")
    ax_b.set(xlabel="NFE forward", ylabel="forward time [s] (median of repeats)")
    style.from_zero(ax_b)
    ax_b.set_title("(b) NFE against wall time")
    for ax in (ax_a, ax_b):
        ax.grid(alpha=0.3)
    style.categorical_legend(fig, solvers, "solver", loc="outside right upper")
    shade_entries = style.shade_handles([style.tolerance_label(t) for t in tols])
    style.categorical_legend(fig, shade_entries, "rtol = atol\n(marker shade)", loc="outside right lower")
    return fig


def _caption(records: pd.DataFrame, reference: float | None) -> str:
    """What the sweep figure draws."""
    against = f"rtol = atol = {reference:g}" if reference else "a tight tolerance"
    return (
        f"*Fig. 3a/3b, run `{records['run_id'].iloc[0]}`: one line per solver (colour: method; marker and "
        "line style: library), one point per tolerance (shade: light = loose); numerical error = RMS "
        f"difference from a float64 reference solve at {against}; wall time = median of repeated forward "
        f"solves, with each solver's least-squares line. {_cost.seeds_drawn(records)}.*"
    )


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
        name = f"tolerance-{meta['run_id']}.png"
        reference = reference_tol(meta, table["variant"])
        lines += [
            _cost.save(draw(table, fits, reference), out_dir, name),
            "",
            _caption(records, reference),
            "",
        ]
    return "\n".join(lines)
