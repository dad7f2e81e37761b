"""NFE section: adjoint backward against forward NFE, seminorm and full norm (paper Fig. 3c)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nodebench.report import _cost
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


def _figure(table: pd.DataFrame, out_dir: Path, name: str) -> str:
    import seaborn as sns

    problems = list(dict.fromkeys(table["problem"]))
    fig, axes = _cost.figure(len(problems) + 1)
    for ax, problem in zip(axes[0], problems):
        data = table[table["problem"] == problem]
        data = data.assign(solver=data["library"] + " " + data["method"])
        sns.scatterplot(data=data, x="nfe_forward", y="nfe_backward", hue="norm", style="solver", s=50, ax=ax)
        top = max(data["nfe_forward"].max(), data["nfe_backward"].max()) * 1.05
        ax.plot([0, top], [0, top / 2], "k--", lw=1, label="y = x/2 (paper)")
        ax.plot([0, top], [0, top], ":", color="grey", lw=1, label="y = x")
        ax.set(xlim=(0, top), ylim=(0, top), xlabel="NFE forward", ylabel="NFE backward", title=problem)
        ax.legend(fontsize="small")
    ax = axes[0, -1]
    spiral = table[table["problem"] == "spiral"]
    if not spiral.empty:
        data = spiral.assign(
            tolerance=spiral["tol"].map("{:.0e}".format), solver=spiral["library"] + " " + spiral["method"]
        )
        sns.lineplot(
            data=data,
            x="step",
            y="nfe_forward",
            hue="tolerance",
            style="solver",
            markers=True,
            errorbar=None,
            ax=ax,
        )
        ax.set(xlabel="training iteration", ylabel="NFE forward", title="spiral: NFE forward over training")
        ax.legend(fontsize="small")
    return _cost.save(fig, out_dir, name)


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
        lines += [_figure(table, out_dir, f"nfe-{meta['run_id']}.png"), ""]
    return "\n".join(lines)
