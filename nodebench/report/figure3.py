"""The paper's Figure 3 as one four-panel figure, from stored records only.

(a) NFE-forward against numerical error, one colour per measured tolerance, task error beside it;
(b) NFE-forward against wall time; (c) NFE-backward against NFE-forward with the paper's y = x/2;
(d) NFE-forward over training. Panels (a)/(b) come from a tolerance sweep of a trained model, (c)/(d)
from NFE recorded during training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

SWEEP_COLUMNS = ("tol", "nfe_forward", "error_rms", "time_forward")
TRAINING_COLUMNS = ("x", "seed", "nfe_forward", "nfe_backward")


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
    return f"{tol:.0e}".replace("e-0", "e-")


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
        colour_by_x: colour panel (c) by ``x`` (one series, e.g. epochs), else by ``series``.

    Returns:
        The figure (saved to ``path``).
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import LogLocator, MaxNLocator

    fig = Figure(figsize=(16, 4.2), layout="constrained")
    ax_a, ax_b, ax_c, ax_d = fig.subplots(1, 4)
    tols = sorted(sweep["tol"].unique(), reverse=True)
    colours = dict(zip(tols, _palette(len(tols))))
    for tol in tols:
        part = sweep[sweep["tol"] == tol]
        kwargs = {"color": colours[tol], "s": 45, "zorder": 3, "label": _tol_label(tol)}
        ax_a.scatter(part["nfe_forward"], part["error_rms"], **kwargs)
        ax_b.scatter(part["nfe_forward"], part["time_forward"], **kwargs)
    ordered = sweep.groupby("tol").mean(numeric_only=True).sort_index(ascending=False)
    ax_a.plot(ordered["nfe_forward"], ordered["error_rms"], color="grey", lw=0.8, zorder=2)
    ax_b.plot(ordered["nfe_forward"], ordered["time_forward"], color="grey", lw=0.8, zorder=2)
    ax_a.set(xlabel="NFE forward", ylabel="numerical error (RMS vs reference)", yscale="log")
    ax_a.set_title("(a) NFE vs error, by tolerance")
    ax_a.yaxis.set_major_locator(LogLocator(numticks=8))
    task = ax_a.twinx()
    if ordered["task"].notna().any():
        values = ordered["task"].dropna()
        task.plot(ordered["nfe_forward"], ordered["task"], color="black", ls="--", marker="x", lw=0.9)
        if (values > 0).all() and values.max() / values.min() > 50:
            task.set_yscale("log")
    task.set_ylabel(f"{task_label} (dashed)", fontsize="small")
    ax_b.set(xlabel="NFE forward", ylabel="wall time of one forward solve [s]")
    ax_b.set_title("(b) NFE vs wall time")
    legend = [Line2D([], [], marker="o", ls="", color=colours[t], label=_tol_label(t)) for t in tols] + [
        Line2D([], [], color="black", ls="--", marker="x", label=task_label)
    ]
    ax_a.legend(handles=legend, title="rtol = atol", fontsize="small", title_fontsize="small")

    c_key = "x" if colour_by_x else "series"
    hues = sorted(training[c_key].unique()) if colour_by_x else list(dict.fromkeys(training["series"]))
    hue_colours = dict(zip(hues, _palette(len(hues), sequential=True)))
    for hue in hues:
        part = training[training[c_key] == hue]
        ax_c.scatter(part["nfe_forward"], part["nfe_backward"], color=hue_colours[hue], s=30, label=str(hue))
    series = list(dict.fromkeys(training["series"]))
    line_colours = hue_colours if not colour_by_x else dict(zip(series, _palette(len(series))))
    for name in series:
        stats = training[training["series"] == name].groupby("x")["nfe_forward"].agg(["mean", "std"])
        colour = line_colours[name]
        ax_d.plot(stats.index, stats["mean"], color=colour, marker="o", ms=3, label=str(name))
        spread = stats["std"].fillna(0)
        if (spread > 0).any():
            ax_d.fill_between(
                stats.index, stats["mean"] - spread, stats["mean"] + spread, color=colour, alpha=0.2
            )
    if len(series) > 1 or not colour_by_x:
        ax_d.legend(fontsize="small")
    top = max(training["nfe_forward"].max(), training["nfe_backward"].max(), 1) * 1.1
    xs = np.array([0, top])
    ax_c.plot(xs, xs / 2, color="black", lw=1, ls=":", label="y = x/2 (paper)")
    ax_c.plot(xs, xs, color="grey", lw=0.8, ls="--", label="y = x")
    ax_c.set(xlim=(0, top), ylim=(0, top), xlabel="NFE forward", ylabel="NFE backward (adjoint)")
    ax_c.set_title("(c) NFE backward vs forward")
    ax_c.legend(title=hue_label, fontsize="small", title_fontsize="small", ncols=2 if len(hues) > 6 else 1)
    ax_d.set(xlabel=training_label, ylabel="NFE forward")
    ax_d.set_title("(d) NFE forward over training")
    ax_d.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (ax_a, ax_b):
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        ax.grid(alpha=0.3)
    for ax in (ax_c, ax_d):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return fig


def draw_methods(
    sweeps: dict[str, pd.DataFrame], training: dict[str, pd.DataFrame], path: Path, *, title: str
) -> Figure:
    """Figure 3 (a), (c), (d) with one colour per solver method, for comparing methods side by side.

    Arguments:
        sweeps: per method, :func:`sweep_table` rows of one model's tolerance sweep (panel a).
        training: per method, rows ``x`` (training iteration), ``nfe_forward``, ``nfe_backward``
            (panels c and d).
        path: the PNG to write (its folder is created).
        title: the figure's title.
    """
    from matplotlib.ticker import LogLocator, MaxNLocator

    methods = list(dict.fromkeys([*sweeps, *training]))
    colours = dict(zip(methods, _palette(len(methods))))
    fig = Figure(figsize=(13, 4.2), layout="constrained")
    ax_a, ax_c, ax_d = fig.subplots(1, 3)
    for method, sweep in sweeps.items():
        mean = sweep.groupby("tol").mean(numeric_only=True).sort_index(ascending=False)
        ax_a.plot(mean["nfe_forward"], mean["error_rms"], marker="o", color=colours[method], label=method)
        for tol, row in mean.iterrows():
            ax_a.annotate(
                _tol_label(tol),
                (row["nfe_forward"], row["error_rms"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
                color=colours[method],
            )
    ax_a.set(xlabel="NFE forward", ylabel="numerical error (RMS vs reference)", yscale="log")
    ax_a.yaxis.set_major_locator(LogLocator(numticks=8))
    ax_a.set_title("(a) NFE vs error (labels: rtol = atol)")
    top = 1.0
    for method, rows in training.items():
        ax_c.scatter(
            rows["nfe_forward"], rows["nfe_backward"], s=12, alpha=0.5, color=colours[method], label=method
        )
        top = max(top, rows["nfe_forward"].max(), rows["nfe_backward"].max())
        ordered = rows.sort_values("x")
        ax_d.plot(ordered["x"], ordered["nfe_forward"], color=colours[method], lw=1, label=method)
    top *= 1.1
    xs = np.array([0, top])
    ax_c.plot(xs, xs / 2, color="black", lw=1, ls=":", label="y = x/2 (paper)")
    ax_c.plot(xs, xs, color="grey", lw=0.8, ls="--", label="y = x")
    ax_c.set(xlim=(0, top), ylim=(0, top), xlabel="NFE forward", ylabel="NFE backward (adjoint)")
    ax_c.set_title("(c) NFE backward vs forward, per iteration")
    ax_d.set(xlabel="training iteration", ylabel="NFE forward")
    ax_d.set_title("(d) NFE forward over training")
    for ax in (ax_a, ax_c, ax_d):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return fig


def _palette(n: int, sequential: bool = False) -> list:
    """``n`` distinct colours: a qualitative palette, or a sequential one for ordered values."""
    from matplotlib import colormaps

    if sequential:
        cmap = colormaps["viridis"]
        return [cmap(x) for x in np.linspace(0.05, 0.9, max(n, 1))][:n]
    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]
