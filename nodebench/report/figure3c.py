"""Report section of workload ``figure3c``: each cell's backward/forward NFE ratio, and which cells, if
any, reach the paper's "roughly half" (the policy's ``half`` rule, :data:`nodebench.claims.policy.HALF`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from nodebench.claims.measures import figure3c_cells
from nodebench.claims.policy import HALF
from nodebench.report._tables import markdown_table


def cell_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per cell of the study, ordered as the paper's solver first, in display strings."""
    cells = figure3c_cells(df)
    rows = []
    for cell in cells.itertuples(index=False):
        rows.append(
            {
                "model": cell.model,
                "solver": cell.solver,
                "backward norm": cell.norm,
                "rtol = atol": f"{cell.tol:.0e}",
                "iterations": cell.iterations,
                "NFE forward": f"{cell.nfe_forward:.0f}",
                "NFE backward": f"{cell.nfe_backward:.0f}",
                "backward / forward": f"{cell.ratio:.2f} [{cell.ratio_q1:.2f}, {cell.ratio_q3:.2f}]",
                "(calls + VJPs) / forward": f"{cell.ratio_vjp:.2f}",
                "time backward / forward": f"{cell.time_ratio:.2f}",
                "half rule": HALF.decide(ratio=cell.ratio),
            }
        )
    return pd.DataFrame(rows)


COUNTED = ("nfe_forward", "nfe_backward", "loss")


def same_under_both_norms(df: pd.DataFrame) -> list[str]:
    """The cells (``model/solver/tol=``) whose full-norm and seminorm runs recorded the same NFE (both
    directions) and loss at every iteration: the backward norm never changed a step there."""
    rows = df[df["metric"].isin(COUNTED)]
    parts = rows["variant"].str.split("/", expand=True)
    if parts.shape[1] != 4:
        return []
    rows = rows.assign(cell=parts[0] + "/" + parts[1] + "/" + parts[3], norm=parts[2])
    same = []
    for cell, group in rows.groupby("cell", sort=False):
        by_norm = {
            norm: g.sort_values(["seed", "step", "metric"])[["seed", "step", "metric", "value"]]
            for norm, g in group.groupby("norm")
        }
        full, semi = by_norm.get("full"), by_norm.get("seminorm")
        if full is not None and semi is not None and len(full) == len(semi):
            if (full.to_numpy() == semi.to_numpy()).all():
                same.append(str(cell))
    return same


def section(df: pd.DataFrame, metas: list[dict[str, Any]], out_dir: Path) -> str:
    """The study's table and what it says."""
    if df.empty:
        return "No records."
    table = cell_table(df)
    near = table[table["half rule"] == "reproduced"]
    said = (
        "Cells whose median ratio is within the `half` rule's band: "
        + "; ".join(
            f"{r['model']} {r['solver']} {r['backward norm']} at {r['rtol = atol']} "
            f"({r['backward / forward']})"
            for _, r in near.iterrows()
        )
        if not near.empty
        else "No cell reaches the paper's half: its `half` rule gives *reproduced* in none of them"
    )
    same = same_under_both_norms(df)
    if same:
        said += (
            ". The full norm and the seminorm recorded identical NFE and losses at every iteration in "
            + ", ".join(f"`{cell}`" for cell in same)
            + ": there the parameter-gradient channels never decided a step (their error stays below the "
            "state's and the adjoint's in the max-over-blocks norm), so the seminorm saves nothing"
        )
    return "\n".join(
        [
            "Per cell (one training run from the seed per solver, tolerance and backward norm): medians over "
            "the recorded iterations of the forward and backward NFE (nodebench's count: in the backward "
            "pass one evaluation of the augmented dynamics, a call of the network and a vector-Jacobian "
            "product), the median backward/forward ratio with its interquartile range over iterations, the "
            "same ratio counting every call and every VJP as an evaluation, and the ratio of wall times. "
            f"`half rule`: {HALF.describe()}.",
            "",
            markdown_table(table),
            "",
            said + ".",
            "",
        ]
    )
