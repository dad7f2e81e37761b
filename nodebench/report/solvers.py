"""Solvers section: work-precision diagrams and nodebench's per-NFE overhead against its peers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nodebench.report import _cost, style
from nodebench.report._tables import markdown_table

POINT_METRICS = ["rtol", "atol", "nfe", "error", "time"]
#: Counted apart by the stiff libraries (issue 26).
STIFF_METRICS = ["jacobians", "factorizations", "newton_iterations"]
STIFF_LIBRARIES = ("nodebench_stiff", "scipy_stiff")
#: The rtol of the stiff table and of the equal-error comparison (the issue's target).
STIFF_RTOL = 1e-6


def points(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (problem, library, method, rtol step): rtol, atol, nfe, error, time (mean over seeds)."""
    data = records[
        records["metric"].isin(POINT_METRICS + STIFF_METRICS) & (records["variant"].str.count("/") == 2)
    ]
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


def _at_rtol(part: pd.DataFrame, rtol: float) -> pd.DataFrame:
    return part[np.isclose(part["rtol"], rtol, rtol=1e-6)]


def stiff_table(table: pd.DataFrame, rtol: float = STIFF_RTOL) -> pd.DataFrame:
    """The stiff libraries' points at ``rtol``: NFE, Jacobians, LU factorisations, Newton iterations,
    error and time, per problem and solver."""
    part = _at_rtol(table[table["library"].isin(STIFF_LIBRARIES)], rtol)
    if part.empty:
        return pd.DataFrame()
    cols = ["problem", "library", "method", "nfe", *[c for c in STIFF_METRICS if c in part], "error", "time"]
    out = part[cols].rename(
        columns={
            "nfe": "NFE",
            "jacobians": "Jacobians",
            "factorizations": "LU",
            "newton_iterations": "Newton",
            "time": "time s",
        }  # fmt: skip
    )
    return out.reset_index(drop=True)


def equal_error(table: pd.DataFrame, rtol: float = STIFF_RTOL) -> pd.DataFrame:
    """nodebench's NFE at the error of each scipy stiff solver's point at ``rtol``, over scipy's NFE.

    nodebench's NFE at that error is interpolated linearly in log(error)-log(NFE) between its two
    points around it (NaN where its points do not bracket the error).
    """
    rows = []
    stiff = table[table["library"].isin(STIFF_LIBRARIES)]
    for problem, group in stiff.groupby("problem", sort=False):
        peers = _at_rtol(group[group["library"] == "scipy_stiff"], rtol)
        for method, ours in group[group["library"] == "nodebench_stiff"].groupby("method", sort=False):
            ours = ours[ours["error"] > 0].sort_values("error")
            for _, peer in peers.iterrows():
                err = peer["error"]
                nfe = np.nan
                if len(ours) >= 2 and ours["error"].min() <= err <= ours["error"].max():
                    nfe = float(np.exp(np.interp(np.log(err), np.log(ours["error"]), np.log(ours["nfe"]))))
                rows.append(
                    {
                        "problem": problem,
                        "nodebench": method,
                        "scipy": peer["method"],
                        "error (scipy at rtol)": err,
                        "NFE scipy": peer["nfe"],
                        "NFE nodebench at that error": nfe,
                        "ratio": nfe / peer["nfe"],
                    }
                )
    return pd.DataFrame(rows)


@style.figure_function
def draw(table: pd.DataFrame, problem: str) -> Figure:
    """Work-precision diagrams of one problem: error at T against wall time and against NFE.

    One line per solver over its rtols (tight to the right): colour = method, marker and line style =
    library (:mod:`~nodebench.report.style`), so nodebench's and torchdiffeq's dopri5 share a colour.

    Arguments:
        table: :func:`points` rows (``problem, library, method, step, error, time, nfe``).
        problem: the problem drawn.

    Returns:
        The figure.
    """
    data = table[table["problem"] == problem]
    order = sorted(
        data.groupby(["library", "method"], sort=False).groups,
        key=lambda key: (
            list(style.METHOD_COLOURS).index(key[1]) if key[1] in style.METHOD_COLOURS else 99,
            key,
        ),
    )
    fig, axes = _cost.figure(2, width=5.2, height=4.2)
    handles = []
    for library, method in order:
        part = data[(data["library"] == library) & (data["method"] == method)].sort_values("step")
        marker, linestyle = style.library_style(library)
        for ax, x in zip(axes[0], ("time", "nfe")):
            ax.plot(
                part[x], part["error"], color=style.colour(method), ls=linestyle, marker=marker, ms=4, lw=1.3
            )
        handles.append(style.solver_handle(library, method))
    for ax, label, what in zip(axes[0], ("wall time per solve [s] (median)", "NFE"), ("wall time", "NFE")):
        style.log_axis(ax, x=True, y=True)
        style.log_ticks(ax, "x")
        ax.set(xlabel=label, ylabel="error at T (RMS)")
        ax.set_title(f"{problem}: error against {what}")
        ax.grid(alpha=0.3)
    style.categorical_legend(fig, handles, "solver", loc="outside right upper")
    return fig


def _caption(records: pd.DataFrame, problem: str) -> str:
    """What a work-precision figure draws."""
    return (
        f"*Work-precision diagrams of `{problem}`, run `{records['run_id'].iloc[0]}`: one line per solver "
        "over the protocol's rtols (colour: method; marker and line style: library); error at the final "
        "time against the reference, wall time the median of repeated solves. "
        f"{_cost.seeds_drawn(records)}.*"
    )


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
        stiff = stiff_table(table)
        if not stiff.empty:
            lines += [
                f"Stiff solvers at rtol {STIFF_RTOL:g} (NFE: evaluations of f; Jacobians by autograd for "
                "every library, counted apart; LU: factorisations; Newton: nodebench's Newton iterations):",
                "",
                markdown_table(stiff),
                "",
            ]
            ratios = equal_error(table)
            if not ratios.empty:
                lines += [
                    "NFE at equal error: nodebench's, interpolated at the error of each scipy solver at "
                    f"rtol {STIFF_RTOL:g}, over scipy's:",
                    "",
                    markdown_table(ratios),
                    "",
                ]
        lines += ["Per solver:", "", markdown_table(summary(table)), ""]
        for problem in dict.fromkeys(table["problem"]):
            name = f"solvers-{meta['run_id']}-{problem}.png"
            lines += [_cost.save(draw(table, problem), out_dir, name), "", _caption(records, problem), ""]
    return "\n".join(lines)
