"""The paper's Figure 3 as one four-panel figure, from stored records only.

(a) NFE-forward against numerical error, one shade per measured tolerance, task error beside it;
(b) NFE-forward against wall time; (c) NFE-backward against NFE-forward with the paper's y = x/2;
(d) NFE-forward over training. Panels (a)/(b) come from a tolerance sweep of a trained model, (c)/(d)
from NFE recorded during training. Colours follow :mod:`nodebench.report.style`: the method's colour,
in shades from light (loose tolerance, early epoch) to dark.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator

from nodebench.report import style

SWEEP_COLUMNS = ("tol", "nfe_forward", "error_rms", "time_forward")


def sweep_table(records: pd.DataFrame, variant: str, task_metric: str) -> pd.DataFrame:
    """One row per (seed, tolerance) of a sweep: ``tol, nfe_forward, error_rms, time_forward, task``.

    Arguments:
        records: tolerance-workload records.
        variant: the swept variant, e.g. ``"nodebench/dopri5"``.
        task_metric: the task metric to put beside the numerical error (``task_mse``, ``test_error``).
    """
    rows = records[records["variant"] == variant]
    wide = rows.pivot_table(index=["seed", "step"], columns="metric", values="value").reset_index()
    if wide.empty:
        return pd.DataFrame(columns=[*SWEEP_COLUMNS, "task"])
    wide["task"] = wide[task_metric] if task_metric in wide else np.nan
    return wide


def _tol_label(tol: float) -> str:
    return style.tolerance_label(tol)


def _x_ticks(ax: Axes, values: pd.Series) -> None:
    """Ticks at the values run when they are few (epochs), else a few integer ticks."""
    distinct = sorted(values.unique())
    if len(distinct) <= 12:
        style.value_ticks(ax, distinct)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))


def _guides(ax: Axes, top: float) -> list:
    """The paper's y = x/2 and y = x on panel (c), square from 0 to ``top``; their legend entries."""
    xs = np.array([0, top])
    half = ax.plot(xs, xs / 2, color=style.PAPER, lw=1, ls=(0, (1, 1.5)), label="y = x/2 (paper)")
    same = ax.plot(xs, xs, color=style.GUIDE, lw=0.8, ls=(0, (4, 2)), label="y = x")
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="NFE forward", ylabel="NFE backward (adjoint)")
    ax.set_aspect("equal", adjustable="box")
    return half + same


@style.figure_function
def draw(
    sweep: pd.DataFrame,
    training: pd.DataFrame,
    path: Path,
    *,
    title: str,
    task_label: str,
    training_label: str,
    hue_label: str,
    colour_by_x: bool = False,
    method: str = "dopri5",
) -> Figure:
    """Write the four-panel figure.

    Arguments:
        sweep: :func:`sweep_table` rows (``tol``, ``nfe_forward``, ``error_rms``, ``time_forward``, ``task``).
        training: rows ``x`` (epoch or iteration), ``seed``, ``nfe_forward``, ``nfe_backward`` and
            ``series`` (one line of panel (d) each, e.g. a model or a tolerance).
        path: the PNG to write (its folder is created).
        title: the figure's title.
        task_label: axis label of the task error in panel (a).
        training_label: x label of panel (d) (``epoch`` or ``training iteration``).
        hue_label: legend title of panels (c) and (d).
        colour_by_x: shade panel (c) by ``x`` (one series, e.g. epochs), else by ``series``.
        method: the solver method drawn, whose colour (:mod:`~nodebench.report.style`) the shades take.

    Returns:
        The figure (saved to ``path``).
    """
    base = style.colour(method)
    training = training.dropna(subset=["nfe_forward"])  # e.g. a run's final rows, which hold no NFE
    fig = Figure(figsize=(16, 4.4), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.08)
    ax_a, ax_b, ax_c, ax_d = fig.subplots(1, 4)
    tols = sorted(sweep["tol"].unique(), reverse=True)
    shade = style.shade_map(tols, base, reverse=True)
    ordered = sweep.groupby("tol").mean(numeric_only=True).sort_index(ascending=False)
    for ax, y in ((ax_a, "error_rms"), (ax_b, "time_forward")):
        ax.plot(ordered["nfe_forward"], ordered[y], color=base, lw=0.8, zorder=2)
        for tol in tols:
            part = sweep[sweep["tol"] == tol]
            ax.scatter(part["nfe_forward"], part[y], color=shade[tol], edgecolor=base, s=45, zorder=3)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        ax.grid(alpha=0.3)
    style.log_axis(ax_a)
    ax_a.yaxis.set_major_locator(LogLocator(numticks=8))
    style.log_ticks(ax_a)
    ax_a.set(xlabel="NFE forward", ylabel="numerical error (RMS vs reference)")
    ax_a.set_title("(a) NFE vs error, by tolerance")
    task = ax_a.twinx()
    if ordered["task"].notna().any():
        values = ordered["task"].dropna()
        task.plot(ordered["nfe_forward"], ordered["task"], color="black", ls="--", marker="x", lw=0.9)
        if (values > 0).all() and values.max() / values.min() > 50:
            style.log_axis(task)
    task.set_ylabel(f"{task_label} (dashed)", fontsize="small")
    ax_b.set(xlabel="NFE forward", ylabel="wall time of one forward solve [s]")
    style.from_zero(ax_b)
    ax_b.set_title("(b) NFE vs wall time")
    legend = [style.handle(_tol_label(t), shade[t], marker="o", markeredgecolor=base) for t in tols]
    legend.append(style.handle(task_label, "black", marker="x", linestyle="--"))
    style.categorical_legend(ax_a, legend, "rtol = atol")

    series = list(dict.fromkeys(training["series"]))
    if colour_by_x:
        hues = sorted(training["x"].unique())
        hue_colour = style.shade_map(hues, base)
        line_colour = {name: c for name, c in zip(series, style.shades(base, len(series)))}
    else:
        hues = series
        hue_colour = line_colour = dict(zip(series, style.shades(base, len(series))))
    key = "x" if colour_by_x else "series"
    for hue in hues:
        part = training[training[key] == hue]
        ax_c.scatter(part["nfe_forward"], part["nfe_backward"], color=hue_colour[hue], edgecolor=base, s=30)
    top = max(training["nfe_forward"].max(), training["nfe_backward"].max(), 1) * 1.1
    guides = _guides(ax_c, top)
    entries = [style.handle(str(h), hue_colour[h], marker="o", markeredgecolor=base) for h in hues]
    style.categorical_legend(ax_c, entries + guides, hue_label, ncols=2 if len(hues) > 6 else 1)
    ax_c.set_title("(c) NFE backward vs forward")
    bands = style.group_bands(
        training,
        "x",
        "nfe_forward",
        ["series"],
        lambda k: {"colour": line_colour[k[0]], "label": str(k[0]), "marker": "o"},
    )
    style.lines_with_bands(ax_d, bands)
    if len(series) > 1 or not colour_by_x:
        style.categorical_legend(ax_d, [style.handle(str(s), line_colour[s], linestyle="-") for s in series])
    ax_d.set(xlabel=training_label, ylabel="NFE forward")
    style.from_zero(ax_d)
    _x_ticks(ax_d, training["x"])
    ax_d.set_title("(d) NFE forward over training")
    for ax in (ax_c, ax_d):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return fig


@style.figure_function
def draw_methods(
    sweeps: dict[str, pd.DataFrame],
    training: dict[str, pd.DataFrame],
    path: Path,
    *,
    title: str,
    library: str = "nodebench",
) -> Figure:
    """Figure 3 (a)-(d) with one colour per solver method, for comparing methods side by side.

    Arguments:
        sweeps: per method, :func:`sweep_table` rows of one model's tolerance sweep (panels a, b).
        training: per method, rows ``x`` (training iteration), ``nfe_forward``, ``nfe_backward``
            (panels c and d).
        path: the PNG to write (its folder is created).
        title: the figure's title.
        library: the library whose marker and line style every method's points take.

    Returns:
        The figure (saved to ``path``).
    """
    methods = list(dict.fromkeys([*sweeps, *training]))
    marker, linestyle = style.library_style(library)
    fig = Figure(figsize=(17, 4.6), layout="constrained")
    ax_a, ax_b, ax_c, ax_d = fig.subplots(1, 4)
    tols = sorted({t for sweep in sweeps.values() for t in sweep["tol"].unique()}, reverse=True)
    for method, sweep in sweeps.items():
        base = style.colour(method)
        shade = style.shade_map(tols, base, reverse=True)
        mean = sweep.groupby("tol").mean(numeric_only=True).sort_index(ascending=False)
        for ax, y in ((ax_a, "error_rms"), (ax_b, "time_forward")):
            ax.plot(mean["nfe_forward"], mean[y], color=base, ls=linestyle, lw=1.2, zorder=2)
            ax.scatter(
                mean["nfe_forward"],
                mean[y],
                color=[shade[t] for t in mean.index],
                edgecolor=base,
                marker=marker,
                s=42,
                zorder=3,
            )
    style.log_axis(ax_a)
    ax_a.yaxis.set_major_locator(LogLocator(numticks=8))
    style.log_ticks(ax_a)
    ax_a.set(xlabel="NFE forward", ylabel="numerical error (RMS vs reference)")
    ax_a.set_title("(a) NFE vs error")
    ax_b.set(xlabel="NFE forward", ylabel="wall time of one forward solve [s]")
    style.from_zero(ax_b)
    ax_b.set_title("(b) NFE vs wall time")
    if sweeps:
        style.categorical_legend(
            ax_b,
            style.shade_handles([_tol_label(t) for t in tols], marker=marker),
            "rtol = atol (marker shade)",
            loc="upper left",
        )
    top = 1.0
    for method, rows in training.items():
        base = style.colour(method)
        ax_c.scatter(rows["nfe_forward"], rows["nfe_backward"], s=14, alpha=0.5, color=base, marker=marker)
        top = max(top, rows["nfe_forward"].max(), rows["nfe_backward"].max())
        ordered = rows.sort_values("x")
        ax_d.plot(ordered["x"], ordered["nfe_forward"], color=base, ls=linestyle, lw=1)
    guides = _guides(ax_c, top * 1.1)
    ax_c.set_title("(c) NFE backward vs forward")
    ax_d.set(xlabel="training iteration", ylabel="NFE forward")
    style.from_zero(ax_d)
    ax_d.set_title("(d) NFE forward over training")
    solvers = [style.solver_handle(library, m) for m in methods]
    style.categorical_legend(ax_a, solvers, "solver")
    style.categorical_legend(ax_c, guides, loc="upper left")
    for ax in (ax_a, ax_b, ax_c, ax_d):
        ax.grid(alpha=0.3)
    for ax in (ax_a, ax_b, ax_d):
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return fig
