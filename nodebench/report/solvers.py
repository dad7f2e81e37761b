"""Solvers section: work-precision diagrams and nodebench's per-NFE overhead against its peers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from nodebench.report import _cost
from nodebench.report._tables import markdown_table

POINT_METRICS = ["rtol", "atol", "nfe", "error", "time"]


def points(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (problem, library, method, rtol step): rtol, atol, nfe, error, time (mean over seeds)."""
    data = records[records["metric"].isin(POINT_METRICS) & (records["variant"].str.count("/") == 2)]
    table = _cost.wide(data, ["variant", "step"])
    if table.empty:
        return table
    table[["problem", "library", "method"]] = table["variant"].str.split("/", expand=True)
    table["µs/NFE"] = table["time"] / table["nfe"] * 1e6
    return table


def overhead(table: pd.DataFrame, peer: str) -> pd.DataFrame:
    """nodebench's time per NFE over ``peer``'s, per (problem, method), at the rtols both ran.

    Returns:
        Columns ``problem, method, rtols, µs/NFE nodebench, µs/NFE <peer>, overhead ratio`` (median of the
        per-rtol ratios) and ``NFE ratio`` (median of nodebench's NFE over the peer's).
    """
    keys = ["problem", "method", "step"]
    ours, theirs = table[table["library"] == "nodebench"], table[table["library"] == peer]
    both = ours.merge(theirs, on=keys, suffixes=("_nb", "_peer"))
    if both.empty:
        return pd.DataFrame()
    both["ratio"] = both["µs/NFE_nb"] / both["µs/NFE_peer"]
    both["nfe_ratio"] = both["nfe_nb"] / both["nfe_peer"]
    return (
        both.groupby(["problem", "method"], sort=False)
        .agg(
            rtols=("step", "size"),
            nb=("µs/NFE_nb", "median"),
            peer=("µs/NFE_peer", "median"),
            ratio=("ratio", "median"),
            nfe_ratio=("nfe_ratio", "median"),
        )
        .reset_index()
        .rename(
            columns={
                "nb": "µs/NFE nodebench",
                "peer": f"µs/NFE {peer}",
                "ratio": f"overhead ratio nodebench/{peer}",
                "nfe_ratio": "NFE ratio",
            }
        )
    )


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per (problem, library, method): rtol range, smallest error and the NFE and time it took."""
    rows = []
    for (problem, library, method), group in table.groupby(["problem", "library", "method"], sort=False):
        best = group.loc[group["error"].idxmin()]
        rows.append(
            {
                "problem": problem,
                "library": library,
                "method": method,
                "rtol range": f"{group['rtol'].max():.0e} .. {group['rtol'].min():.0e}",
                "smallest error": best["error"],
                "NFE there": best["nfe"],
                "time there s": best["time"],
                "median µs/NFE": group["µs/NFE"].median(),
            }
        )
    return pd.DataFrame(rows)


def _figure(table: pd.DataFrame, problem: str, out_dir: Path, name: str) -> str:
    import seaborn as sns

    data = table[table["problem"] == problem].sort_values(["library", "method", "step"])
    data = data.assign(solver=data["library"] + "/" + data["method"])
    fig, axes = _cost.figure(2, width=6.0)
    for ax, x, label in zip(axes[0], ["time", "nfe"], ["wall time per solve [s] (median)", "NFE"]):
        sns.lineplot(
            data=data, x=x, y="error", hue="solver", style="library", markers=True, sort=False, ax=ax
        )
        _cost.loglog(ax)
        ax.set(xlabel=label, ylabel="error at T (RMS)")
        ax.set_title(f"{problem}: error against {'time' if x == 'time' else 'NFE'}")
    axes[0, 0].get_legend().remove()
    axes[0, 1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return _cost.save(fig, out_dir, name)


def section(df: pd.DataFrame, meta_list: list[dict[str, Any]], out_dir: Path) -> str:
    """The solvers section: per run, work-precision figures per problem and the overhead tables."""
    lines = [
        "Work-precision diagrams: error at the final time against wall time and against NFE, one line per "
        "library and method, over the rtols of the protocol (atol = rtol x atol_factor).",
        "",
    ]
    for meta, records in _cost.runs(df, meta_list):
        lines += _cost.heading(meta)
        table = points(records)
        if table.empty:
            lines += ["No solver points were recorded.", ""]
            continue
        wanted = (meta.get("config") or {}).get("libraries") or []
        missing = [lib for lib in wanted if lib not in set(table["library"])]
        if missing:
            lines += [f"Not measured (not installed or not run on that machine): {', '.join(missing)}.", ""]
        gaps = records[records["metric"] == "reference_gap"].groupby("variant")["value"].max()
        if not gaps.empty:
            text = ", ".join(f"{v.split('/')[0]} {g:.1e}" for v, g in gaps.items())
            lines += [f"Reference error estimates (0: exact): {text}.", ""]
        for peer in ("torchdiffeq", "torchode"):
            ratio = overhead(table, peer)
            if not ratio.empty:
                lines += [f"Per-NFE overhead, nodebench against {peer} (medians over shared rtols):", ""]
                lines += [markdown_table(ratio), ""]
        lines += ["Per solver:", "", markdown_table(summary(table)), ""]
        for problem in dict.fromkeys(table["problem"]):
            lines += [_figure(table, problem, out_dir, f"solvers-{meta['run_id']}-{problem}.png"), ""]
    return "\n".join(lines)
