"""Memory section: memory against depth L per mode, least-squares slopes, the paper's O(1) vs O(L)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from nodebench.report import _cost, style
from nodebench.report._tables import markdown_table

#: The paper's Table 1 memory column (L: layers; L~: NFE of one forward solve), as published.
PAPER_MEMORY = {
    "nodebench-direct": "O(L~) (RK-Net)",
    "torchdiffeq-direct": "O(L~) (RK-Net)",
    "nodebench-adjoint": "O(1) (ODE-Net)",
    "torchdiffeq-adjoint": "O(1) (ODE-Net)",
    "resnet": "O(L) (ResNet)",
}
MEMORY_METRICS = {
    "saved_bytes": "saved for backward",
    "rss_growth": "peak RSS growth",
    "cuda_peak": "CUDA peak",
}
MIB = 2**20


def slopes(records: pd.DataFrame) -> pd.DataFrame:
    """Least-squares fit of each memory metric against L, per mode.

    Arguments:
        records: one run's records (variant = mode, step = L).

    Returns:
        One row per mode and metric: ``mode, metric, bytes/step, intercept bytes, MiB/step, vs direct``
        (the slope over that of ``nodebench-direct`` for the same metric), and the paper's claim.
    """
    rows = []
    for metric in MEMORY_METRICS:
        data = records[records["metric"] == metric]
        for mode, group in data.groupby("variant", sort=False):
            slope, intercept = _cost.linear_fit(group["step"], group["value"])
            # rounding errors of the fit (~1e-11 bytes) would print for an exact 0; "+ 0.0" drops "-0"
            slope, intercept = round(slope, 3) + 0.0, round(intercept, 3) + 0.0
            rows.append({"mode": mode, "metric": metric, "bytes/step": slope, "intercept bytes": intercept})
    table = pd.DataFrame(rows, columns=["mode", "metric", "bytes/step", "intercept bytes"])
    direct = table[table["mode"] == "nodebench-direct"].set_index("metric")["bytes/step"]
    table["MiB/step"] = table["bytes/step"] / MIB
    table["slope / nodebench-direct's"] = table["bytes/step"] / table["metric"].map(direct)
    table["paper"] = table["mode"].map(PAPER_MEMORY).fillna("")
    table["metric"] = table["metric"].map(MEMORY_METRICS)
    return table


def _raw(records: pd.DataFrame) -> pd.DataFrame:
    """Per mode and L: memory in MiB, time and NFE, averaged over seeds."""
    table = _cost.wide(records, ["variant", "step"]).rename(columns={"variant": "mode", "step": "L"})
    columns = {"saved_bytes": "saved MiB", "rss_growth": "RSS growth MiB", "cuda_peak": "CUDA peak MiB"}
    for metric, label in columns.items():
        if metric in table:
            table[label] = table.pop(metric) / MIB
    rename = {"time_fwd_bwd": "fwd+bwd s", "nfe_forward": "NFE fwd", "nfe_backward": "NFE bwd"}
    table = table.rename(columns=rename)
    keep = ["mode", "L", *[c for c in [*columns.values(), *rename.values()] if c in table]]
    return table[keep]


#: Colour of each mode: the Table 1 model it stands for (direct: RK-Net, adjoint: ODE-Net).
MODE_MODEL = {"direct": "rknet", "adjoint": "odenet", "resnet": "resnet"}


def mode_style(mode: str) -> tuple[str | None, str, str]:
    """``(library, model, label)`` of a memory mode such as ``nodebench-adjoint`` or ``resnet``."""
    library, _, gradient = mode.rpartition("-")
    model = MODE_MODEL.get(gradient, gradient)
    paper = PAPER_MEMORY.get(mode, "").split("(")[-1].rstrip(")") or model  # e.g. "RK-Net"
    return (library or None), model, f"{library} {gradient} ({paper})" if library else paper


@style.figure_function
def draw(records: pd.DataFrame) -> Figure:
    """Memory (and time) of one forward + backward pass against depth L, one panel per metric.

    Colour: the Table 1 model a mode stands for (direct backpropagation through rk4: RK-Net;
    adjoint: ODE-Net; ResNet); marker and line style: the library. Log-log axes, ticks at the L run.

    Arguments:
        records: one memory run's records (variant = mode, step = L, metrics of :data:`MEMORY_METRICS`
            and ``time_fwd_bwd``).

    Returns:
        The figure.
    """
    metrics = [m for m in [*MEMORY_METRICS, "time_fwd_bwd"] if (records["metric"] == m).any()]
    fig, axes = _cost.figure(len(metrics), width=4.6, height=4.0)
    modes = list(dict.fromkeys(records["variant"]))
    for ax, metric in zip(axes[0], metrics):
        data = records[records["metric"] == metric]
        for mode in modes:
            mean = data[data["variant"] == mode].groupby("step")["value"].mean()
            if metric != "time_fwd_bwd":
                mean = mean / MIB
            library, model, _ = mode_style(mode)
            marker, linestyle = style.library_style(library)
            ax.plot(
                mean.index, mean.to_numpy(), color=style.colour(model), ls=linestyle, marker=marker, ms=4.5
            )
        style.log_axis(ax, x=True, y=True)
        style.value_ticks(ax, data["step"].unique())
        ax.set_xlabel("L (rk4 steps or residual blocks)")
        ax.set_ylabel("seconds" if metric == "time_fwd_bwd" else "MiB")
        ax.set_title(MEMORY_METRICS.get(metric, "forward + backward time"))
        ax.grid(alpha=0.3)
    handles = []
    for mode in modes:
        library, model, label = mode_style(mode)
        marker, linestyle = style.library_style(library)
        handles.append(style.handle(label, style.colour(model), marker=marker, linestyle=linestyle))
    style.categorical_legend(fig, handles, "mode (Table 1 model)", loc="outside right upper")
    return fig


def section(df: pd.DataFrame, meta_list: list[dict[str, Any]], out_dir: Path) -> str:
    """The memory section: slopes beside the paper's claims, raw numbers and a log-log figure per run."""
    lines = [
        "Memory of one forward+backward pass of the MNIST ODE block (64x7x7 state) against depth L "
        "(rk4 steps over [0, 1], or residual blocks), each pass in a fresh process. Slopes are least-squares "
        "fits of memory against L; the paper's Table 1 claims are beside them (the paper's, not measured).",
        "",
    ]
    for meta, records in _cost.runs(df, meta_list):
        config = meta.get("config") or {}
        lines += _cost.heading(meta)
        if not (records["metric"] == "cuda_peak").any():
            lines += ["No CUDA peak was measured (not a CUDA run): the figures are CPU figures only.", ""]
        lines += [f"Batch {config.get('batch')}, L in {config.get('steps')}.", ""]
        lines += ["Least-squares slopes (memory = slope x L + intercept):", ""]
        lines += [markdown_table(slopes(records)), ""]
        lines += ["Raw numbers (mean over seeds):", "", markdown_table(_raw(records)), ""]
        lines += [_cost.save(draw(records), out_dir, f"memory-{meta['run_id']}.png"), ""]
        lines += [
            f"*Memory and time of one forward + backward pass against L, run `{meta['run_id']}` (colour: "
            "the Table 1 model a mode stands for; marker and line style: the library). Log-log axes: a "
            f"constant is a flat line, memory linear in L a line of slope 1. {_cost.seeds_drawn(records)}.*",
            "",
        ]
    return "\n".join(lines)
