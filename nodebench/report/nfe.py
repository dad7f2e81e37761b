"""NFE section: adjoint backward against forward NFE, seminorm and full norm (paper Fig. 3c)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nodebench.report import _cost, style
from nodebench.report._tables import markdown_table

PAPER_RATIO = 0.5  # Fig. 3c: "roughly half", as published


def split_variants(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (problem, library, method, norm, tol, seed, step) with NFE forward, backward, ratio.

    Variants are ``[mnist_block/]<library>[/<method>]/<norm>/tol=<tol>``: the spiral's, or the MNIST
    ODE block's with the prefix; without a method segment the method is dopri5.
    """
    data = records[records["metric"].isin(["nfe_forward", "nfe_backward", "nfe_ratio"])]
    table = data.pivot_table(
        index=["variant", "seed", "step"], columns="metric", values="value"
    ).reset_index()
    parts = table["variant"].str.split("/")
    mnist = parts.str[0] == "mnist_block"
    head = parts.where(~mnist, parts.str[1:])  # <library>[/<method>]/<norm>/tol=<tol>
    table["problem"] = np.where(mnist, "MNIST ODE block", "spiral")
    table["library"] = head.str[0]
    table["method"] = [p[1] if len(p) == 4 else "dopri5" for p in head]
    table["norm"] = head.str[-2]
    table["tol"] = head.str[-1].str.removeprefix("tol=").astype(float)
    return table


def ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Per (problem, library, method, norm, tol): mean NFE and the backward/forward ratio (mean, min, max)."""
    grouped = table.groupby(["problem", "library", "method", "norm", "tol"], sort=False)
    out = grouped.agg(
        points=("nfe_ratio", "size"),
        nfe_forward=("nfe_forward", "mean"),
        nfe_backward=("nfe_backward", "mean"),
        ratio=("nfe_ratio", "mean"),
        ratio_min=("nfe_ratio", "min"),
        ratio_max=("nfe_ratio", "max"),
    ).reset_index()
    out["paper ratio"] = PAPER_RATIO
    return out


def seminorm_savings(table: pd.DataFrame) -> pd.DataFrame:
    """Per (problem, library, tol): backward NFE with full norm and seminorm, and the seminorm's saving."""
    keys = ["problem", "library", "method", "tol", "seed", "step"]
    both = table.pivot_table(index=keys, columns="norm", values="nfe_backward").reset_index()
    if not {"seminorm", "full"} <= set(both.columns):
        return pd.DataFrame()
    both["saving"] = 1 - both["seminorm"] / both["full"]
    return (
        both.groupby(["problem", "library", "method", "tol"], sort=False)
        .agg(full=("full", "mean"), seminorm=("seminorm", "mean"), saving=("saving", "mean"))
        .reset_index()
        .sort_values(["problem", "library", "method", "tol"], ascending=[True] * 3 + [False], kind="stable")
        .rename(columns={"full": "NFE bwd full", "seminorm": "NFE bwd seminorm", "saving": "mean saving"})
    )


NORM_FILL = {"seminorm": True, "full": False}  # filled markers: seminorm; hollow: full norm


@style.figure_function
def draw(table: pd.DataFrame) -> Figure:
    """Paper Fig. 3c per problem (backward against forward NFE, with y = x/2 and y = x), and the
    spiral's forward NFE over training.

    Colour: the method; marker and line style: the library; filled markers: the seminorm, hollow: the
    full norm; line shade in the last panel: the tolerance (light: loose).

    Arguments:
        table: :func:`split_variants` rows (``problem, library, method, norm, tol, step,
            nfe_forward, nfe_backward``).

    Returns:
        The figure.
    """
    problems = list(dict.fromkeys(table["problem"]))
    spiral = table[table["problem"] == "spiral"]
    fig, axes = _cost.figure(len(problems) + (not spiral.empty), width=4.6, height=4.4)
    solvers = list(dict.fromkeys(zip(table["library"], table["method"])))
    norms = [n for n in NORM_FILL if (table["norm"] == n).any()]
    for ax, problem in zip(axes[0], problems):
        data = table[table["problem"] == problem]
        for (library, method, norm), part in data.groupby(["library", "method", "norm"], sort=False):
            base = style.colour(method)
            ax.scatter(
                part["nfe_forward"],
                part["nfe_backward"],
                marker=style.library_style(library).marker,
                facecolor=base if NORM_FILL.get(norm, True) else "none",
                edgecolor=base,
                s=36,
                alpha=0.8,
                zorder=3,
            )
        top = max(data["nfe_forward"].max(), data["nfe_backward"].max()) * 1.05
        half = ax.plot(
            [0, top], [0, top / 2], color=style.PAPER, ls=(0, (1, 1.5)), lw=1, label="y = x/2 (paper)"
        )
        same = ax.plot([0, top], [0, top], color=style.GUIDE, ls=(0, (4, 2)), lw=0.8, label="y = x")
        ax.set(xlim=(0, top), ylim=(0, top), xlabel="NFE forward", ylabel="NFE backward (adjoint)")
        ax.set_aspect("equal", adjustable="box")
        ax.set_title(f"{problem}: backward vs forward")
        ax.grid(alpha=0.3)
        if ax is axes[0, 0]:
            style.categorical_legend(ax, half + same, loc="upper left")
    if not spiral.empty:
        ax = axes[0, -1]
        tols = sorted(spiral["tol"].unique(), reverse=True)
        for (library, method, tol), part in spiral.groupby(["library", "method", "tol"], sort=False):
            mean = part.groupby("step")["nfe_forward"].mean()
            marker, linestyle = style.library_style(library)
            shade = style.shade_map(tols, style.colour(method), reverse=True)[tol]
            ax.plot(mean.index, mean.to_numpy(), color=shade, ls=linestyle, marker=marker, ms=3.5, lw=1.2)
        ax.set(xlabel="training iteration", ylabel="NFE forward")
        ax.set_title("spiral: NFE forward over training")
        style.from_zero(ax)
        style.value_ticks(ax, spiral["step"].unique())
        ax.grid(alpha=0.3)
    fig.get_layout_engine().set(w_pad=0.08)
    style.categorical_legend(
        fig,
        [style.solver_handle(lib, m, line=False) for lib, m in solvers],
        "solver",
        loc="outside right upper",
    )
    fills = [
        style.handle(
            f"{norm} norm" if norm == "full" else norm,
            "black",
            marker="o",
            markerfacecolor="black" if NORM_FILL[norm] else "none",
        )
        for norm in norms
    ]
    style.categorical_legend(fig, fills, "adjoint error norm", loc="outside right center")
    if not spiral.empty:
        tol_entries = style.shade_handles([style.tolerance_label(t) for t in tols], linestyle="-")
        style.categorical_legend(
            fig, tol_entries, "rtol = atol\n(line shade, last panel)", loc="outside right lower"
        )
    return fig


def _caption(records: pd.DataFrame) -> str:
    """What the NFE figure draws."""
    return (
        f"*Run `{records['run_id'].iloc[0]}`. Left: adjoint backward against forward NFE of one loss, one "
        "point per training checkpoint and tolerance (colour: method; marker: library; filled: seminorm, "
        "hollow: full norm), with y = x and the paper's y = x/2. Right: the spiral's forward NFE at each "
        "checkpoint, averaged over both norms (line shade: tolerance, light = loose). "
        f"{_cost.seeds_drawn(records)}.*"
    )


def section(df: pd.DataFrame, meta_list: list[dict[str, Any]], out_dir: Path) -> str:
    """The NFE section: ratio tables, seminorm savings and the Fig. 3c scatter per run."""
    lines = [
        "Forward and backward NFE of `odeint_adjoint` (dopri5 in both libraries; nodebench's adams where "
        "the run has it). The paper (Fig. 3c, MNIST, implicit Adams) reports the backward pass at roughly "
        "half the forward NFE (the paper's figure, not measured).",
        "",
    ]
    for meta, records in _cost.runs(df, meta_list):
        lines += _cost.heading(meta)
        table = split_variants(records)
        if table.empty:
            lines += ["No NFE was recorded.", ""]
            continue
        lines += ["Backward/forward NFE ratio per setting (mean over checkpoints and seeds):", ""]
        lines += [markdown_table(ratios(table)), ""]
        savings = seminorm_savings(table)
        if not savings.empty:
            lines += ["Backward NFE, seminorm against full norm:", "", markdown_table(savings), ""]
        lines += [_cost.save(draw(table), out_dir, f"nfe-{meta['run_id']}.png"), "", _caption(records), ""]
    return "\n".join(lines)
