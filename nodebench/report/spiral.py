"""Report section of the ``spiral`` workload, built only from its stored records.

Per run: a table with one row per variant (trajectory MSEs, Example 1's W error, NFE and time per
training iteration), Example 1's learned W, training curves, and per problem the phase portraits and
x(t), y(t) of the truth, the observations and the learned model at the stored snapshots (first seed).
The record encoding is :mod:`nodebench.schema.spiral` and the run's protocol card.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nodebench.report import style
from nodebench.report._tables import markdown_table
from nodebench.schema.spiral import PROBLEMS, SNAPSHOT, W_METRICS, W_TRUE


def _variants(run: pd.DataFrame) -> list[str]:
    """Training variants (``problem/mode/solver``) in order of appearance."""
    return [v for v in run["variant"].drop_duplicates() if v.count("/") == 2]


def _series(run: pd.DataFrame, variant: str, seed: int, metric: str) -> pd.Series:
    """Values of ``metric`` indexed by step, for one variant and seed."""
    rows = run[(run["variant"] == variant) & (run["seed"] == seed) & (run["metric"] == metric)]
    return rows.set_index("step")["value"].sort_index()


def _trained_steps(run: pd.DataFrame, variant: str, seed: int) -> int:
    """Training iterations completed: the last checkpoint's step."""
    mse = _series(run, variant, seed, "traj_mse")
    return int(mse.index.max()) if len(mse) else 0


def _per_iteration(run: pd.DataFrame, variant: str, seed: int, metric: str) -> tuple[float, float]:
    """Mean per iteration and total over training of a windowed metric (NaN if not recorded)."""
    values = _series(run, variant, seed, metric)
    end = _trained_steps(run, variant, seed)
    if values.empty or end <= values.index.max():
        return float("nan"), float("nan")
    weights = np.diff(np.append(values.index.to_numpy(), end)).astype(float)  # iterations per window
    total = float((values.to_numpy() * weights).sum())
    return total / weights.sum(), total


def _final(run: pd.DataFrame, variant: str, seed: int, metric: str) -> float:
    values = _series(run, variant, seed, metric)
    return float(values.iloc[-1]) if len(values) else float("nan")


def _mean_sd(values: list[float]) -> str:
    finite = [v for v in values if not np.isnan(v)]
    if not finite:
        return ""
    if len(finite) == 1:
        return f"{finite[0]:.3g}"
    return f"{np.mean(finite):.3g} ± {np.std(finite, ddof=1):.2g}"


TAIL = 5
SUMMARY = (  # column, metric, what: last checkpoint, median of the last TAIL, mean / total over iterations
    ("final traj MSE", "traj_mse", "final"),
    (f"traj MSE, median last {TAIL}", "traj_mse", "tail"),
    ("traj MSE, own solver", "traj_mse_solver", "final"),
    ("max abs(W - W_true)", "W_err_max", "final"),
    ("NFE fwd / iter", "nfe_forward", "mean"),
    ("NFE bwd / iter", "nfe_backward", "mean"),
    ("time / iter [ms]", "time_step", "ms"),
    ("train time [s]", "time_step", "total"),
)


def _value(run: pd.DataFrame, variant: str, seed: int, metric: str, what: str) -> float:
    if what == "final":
        return _final(run, variant, seed, metric)
    if what == "tail":
        values = _series(run, variant, seed, metric)
        return float(values.iloc[-TAIL:].median()) if len(values) else float("nan")
    mean, total = _per_iteration(run, variant, seed, metric)
    return {"mean": mean, "ms": 1e3 * mean, "total": total}[what]


def summary_table(run: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: final trajectory MSEs, W error, NFE and time per iteration (over seeds)."""
    rows = []
    seeds = sorted(run["seed"].unique())
    for variant in _variants(run):
        problem, mode, solver = variant.split("/")
        row: dict[str, Any] = {"problem": problem, "mode": mode, "solver": solver}
        row["iterations"] = _trained_steps(run, variant, seeds[0])
        row["seeds"] = len(seeds)
        per_seed = {
            column: [_value(run, variant, seed, metric, what) for seed in seeds]
            for column, metric, what in SUMMARY
        }
        backward, forward = per_seed["NFE bwd / iter"], per_seed["NFE fwd / iter"]
        per_seed["NFE bwd / fwd"] = [b / f for b, f in zip(backward, forward)]
        row |= {column: _mean_sd(values) for column, values in per_seed.items()}
        rows.append(row)
    return pd.DataFrame(rows)


def w_table(run: pd.DataFrame) -> pd.DataFrame:
    """Example 1's final learned W per variant and seed, beside the true W."""
    rows = [{"variant": "truth", "seed": "", **dict(zip(W_METRICS, np.ravel(W_TRUE)))}]
    seeds = sorted(run["seed"].unique())
    for variant in _variants(run):
        if variant.startswith("example1/"):
            for seed in seeds:
                entries = {m: _final(run, variant, seed, m) for m in W_METRICS}
                rows.append({"variant": variant, "seed": str(seed), **entries})
    return pd.DataFrame(rows)


def _snapshots(run: pd.DataFrame, variant: str, seed: int) -> dict[int, pd.DataFrame]:
    """Stored trajectories of a variant: ``{updates: frame indexed by time index with columns x, y}``."""
    rows = run[(run["variant"] == variant) & (run["seed"] == seed)]
    found: dict[int, dict[str, pd.Series]] = {}
    for metric, group in rows.groupby("metric", sort=False):
        match = re.fullmatch(SNAPSHOT, metric)
        if match:
            axis, updates = match.group(1), int(match.group(2))
            found.setdefault(updates, {})[axis] = group.set_index("step")["value"]
    return {k: pd.DataFrame(found[k]).sort_index() for k in sorted(found)}


def _data(run: pd.DataFrame, problem: str, seed: int) -> pd.DataFrame:
    """The data unit's rows of ``problem``: columns t, truth_x, truth_y (and obs_x, obs_y), by index."""
    rows = run[(run["variant"] == problem) & (run["seed"] == seed)]
    return rows.pivot_table(index="step", columns="metric", values="value", sort=True)


def _grid(
    n_rows: int,
    n_cols: int,
    width: float,
    height: float,
    *,
    gaps: tuple[float, float] = (0.75, 0.75),
    margins: tuple[float, float, float, float] = (1.0, 0.25, 0.55, 0.45),
    **subplots: Any,
) -> tuple[Any, Any]:
    """A figure with a fixed-spacing grid of axes (no layout engine: it would redraw many times).

    Arguments:
        n_rows, n_cols: the grid.
        width, height: one axes' size in inches.
        gaps: horizontal and vertical space between axes (inches), room for labels and titles.
        margins: left, right, bottom, top margins (inches).
        subplots: more :meth:`~matplotlib.figure.Figure.subplots` options (``sharex``).
    """
    from matplotlib.figure import Figure

    left, right, bottom, top = margins
    fig_w = left + right + n_cols * width + (n_cols - 1) * gaps[0]
    fig_h = bottom + top + n_rows * height + (n_rows - 1) * gaps[1]
    fig = Figure(figsize=(fig_w, fig_h))
    fig.subplots_adjust(
        left=left / fig_w,
        right=1 - right / fig_w,
        bottom=bottom / fig_h,
        top=1 - top / fig_h,
        wspace=gaps[0] / width,
        hspace=gaps[1] / height,
    )
    return fig, fig.subplots(n_rows, n_cols, squeeze=False, **subplots)


def variant_colour(variant: str) -> Any:
    """A training variant's colour: its solver's, lighter for the adjoint than for direct backpropagation."""
    mode, solver = variant.split("/")[-2:]
    base = style.colour(solver)
    return style.lighter(base, 0.45) if mode == "adjoint" else base


@style.figure_function
def draw_snapshots(data: pd.DataFrame, predictions: dict[str, dict[int, pd.DataFrame]], kind: str) -> Figure:
    """Phase portraits (``kind="phase"``, equal aspect) or x(t), y(t) (``"xt"``) of one problem: a row
    per variant, a column per stored snapshot (updates made).

    Arguments:
        data: the problem's data unit (:func:`_data`: ``t``, ``truth_x``, ``truth_y``, maybe ``obs_x``,
            ``obs_y``, indexed by time index).
        predictions: per variant (``problem/mode/solver``), its snapshots (:func:`_snapshots`).
        kind: ``"phase"`` or ``"xt"``.

    Returns:
        The figure.
    """
    variants = list(predictions)
    columns = sorted({k for snaps in predictions.values() for k in snaps})
    fig, axes = _grid(len(variants), len(columns), 2.3, 2.3 if kind == "phase" else 1.9)
    quantity = "y" if kind == "phase" else "x(t), y(t)"
    for row, variant in enumerate(variants):
        for col, updates in enumerate(columns):
            ax = axes[row][col]
            _draw(ax, kind, data, predictions[variant].get(updates), variant_colour(variant))
            ax.tick_params(labelsize=7)
            ax.set_xlabel("x" if kind == "phase" else "t", fontsize=8, labelpad=1)
            mode_solver = variant.split("/", 1)[1]
            ax.set_ylabel(f"{mode_solver}\n{quantity}" if col == 0 else quantity, fontsize=8, labelpad=1)
            if row == 0:
                ax.set_title(f"after {updates} updates", fontsize=9)
    axes[0][0].legend(fontsize=6, loc="lower left")
    return fig


def _phase_and_time_figures(
    run: pd.DataFrame, problem: str, seed: int, out_dir: Path, stem: str
) -> list[str]:
    """Write the phase-portrait and x(t), y(t) grids of ``problem``; return their markdown links.

    Rows are the problem's variants, columns the stored snapshots (updates made).
    """
    data = _data(run, problem, seed)
    variants = [v for v in _variants(run) if v.startswith(f"{problem}/")]
    snaps = {v: _snapshots(run, v, seed) for v in variants}
    if data.empty or not variants or not any(snaps.values()):
        return []
    links = []
    for kind in ("phase", "xt"):
        name = f"{stem}-{problem}-{kind}.png"
        draw_snapshots(data, snaps, kind).savefig(out_dir / "figures" / name, dpi=80)
        what = "phase portraits (y against x)" if kind == "phase" else "x(t) and y(t)"
        links.append(f"![{problem}: {what}, seed {seed}](figures/{name})")
    return links


def _draw(ax: Any, kind: str, data: pd.DataFrame, pred: pd.DataFrame | None, colour: Any) -> None:
    """One panel: truth, observations (if any) and the learned trajectory (if stored) in ``colour``."""
    has_obs = "obs_x" in data
    span = 1.5 * float(data[["truth_x", "truth_y"]].abs().to_numpy().max())
    if kind == "phase":
        ax.plot(data["truth_x"], data["truth_y"], color=style.TRUTH, lw=1.5, label="truth")
        if has_obs:
            ax.plot(data["obs_x"], data["obs_y"], ".", color=style.OBSERVED, ms=2, label="observations")
        if pred is not None:
            ax.plot(pred["x"], pred["y"], color=colour, lw=1.1, label="learned")
        ax.set(xlim=(-span, span), ylim=(-span, span))
        ax.set_aspect("equal", adjustable="box")
        return
    t = data["t"]
    for axis, shade, truth in (("x", colour, style.TRUTH), ("y", style.lighter(colour, 0.5), "0.82")):
        ax.plot(
            t,
            data[f"truth_{axis}"],
            color=truth,
            lw=2.2,
            label=f"truth {axis}",
        )
        if has_obs:
            ax.plot(
                t,
                data[f"obs_{axis}"],
                ".",
                color=style.OBSERVED,
                ms=1.5,
                label="observations" if axis == "x" else None,
            )
        if pred is not None:
            ax.plot(t.loc[pred.index], pred[axis], color=shade, lw=1.1, label=f"learned {axis}")
    ax.set_ylim(-span, span)


CURVE_METRICS = (  # metric, axis label, log scale
    ("loss", "training loss (window mean)", True),
    ("traj_mse", "trajectory MSE (tight dopri5)", True),
    ("nfe_forward", "NFE forward / iteration", False),
)


@style.figure_function
def draw_curves(run: pd.DataFrame) -> Figure | None:
    """Training loss, trajectory MSE and NFE-forward over training, one column per problem.

    Lines are means over seeds with bands of ± one sd where there are several seeds; on the log axes
    (loss, MSE) geometric means ×/÷ one geometric sd. Colour: the solver; lighter: the adjoint.

    Arguments:
        run: one spiral run's records.

    Returns:
        The figure, or ``None`` without training variants.
    """
    variants = _variants(run)
    problems = [p for p in PROBLEMS if any(v.startswith(f"{p}/") for v in variants)]
    if not problems:
        return None
    fig, axes = _grid(len(CURVE_METRICS), len(problems), 3.6, 2.3, gaps=(0.8, 0.25), sharex="col")
    for col, problem in enumerate(problems):
        mine = [v for v in variants if v.startswith(f"{problem}/")]
        for row, (metric, label, log) in enumerate(CURVE_METRICS):
            ax = axes[row][col]
            rows = run[run["variant"].isin(mine) & (run["metric"] == metric)]
            rows = rows[np.isfinite(rows["value"])]
            bands = style.group_bands(
                rows,
                "step",
                "value",
                ["variant"],
                lambda k: {"colour": variant_colour(k[0]), "label": k[0].split("/", 1)[1]},
                log=log,
            )
            style.lines_with_bands(ax, bands, log=log, lw=1)
            if not log:
                style.from_zero(ax)
            ax.tick_params(labelsize=7)
            ax.set_ylabel(label, fontsize=8)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(problem, fontsize=10)
            if row == len(CURVE_METRICS) - 1:
                ax.set_xlabel("training iteration (updates made)", fontsize=8)
            else:
                ax.tick_params(labelbottom=False)
        axes[-1][col].legend(fontsize=7, loc="best")
    return fig


def _curves_figure(run: pd.DataFrame, out_dir: Path, name: str) -> str | None:
    """Write :func:`draw_curves` of ``run`` and return its markdown link (``None`` without variants)."""
    fig = draw_curves(run)
    if fig is None:
        return None
    fig.savefig(out_dir / "figures" / name, dpi=80)
    return f"![spiral training curves](figures/{name})"


ADJOINT_RATIO_NOTE = (
    "Why the adjoint's backward NFE is several times its forward NFE here, not the paper's \"roughly "
    'half" (Fig. 3c): the loss of Examples 1 and 2 sees the solution at up to 32 observation times per '
    "segment (10 on the demo), and the backward solve must land on every one of them to add that time's "
    "loss gradient to the adjoint state: at least one step per observation interval, however short (6 new "
    "evaluations with dopri5), while the forward solve passes the same times with dense output in a few "
    "long steps. The paper's MNIST ODE-Net has a single output time, where there is nothing to land on "
    "(see the mnist report and results/SUMMARY.md). With fixed-step Euler the backward "
    "solve takes the forward's grid steps, restarting on each observation interval (one more evaluation "
    "per interval). Runs made before commit ee87740 also restarted the step-size controller at every time (a "
    "fresh initial step and short first steps, as torchdiffeq does), which made the ratio larger still; "
    "each run's git commit is in the appendix."
)


def _run_section(run: pd.DataFrame, meta: dict[str, Any], out_dir: Path) -> list[str]:
    stem = f"spiral-{meta['run_id']}"
    seeds = sorted(run["seed"].unique())
    lines = [f"#### Run `{meta['run_id']}` (preset {meta.get('preset')}, device {meta.get('device')})", ""]
    table = summary_table(run)
    if table.empty:
        return [*lines, "No training records.", ""]
    config = meta.get("config") or {}
    tolerance = f"rtol {config.get('eval_rtol')}, atol {config.get('eval_atol')}"
    lines += [
        "Final traj MSE: the learned model after the last update, integrated in float64 from the true "
        f"initial state over the whole time grid with dopri5 at {tolerance}, against the noise-free "
        f"truth; *median last {TAIL}*: median of that MSE over the last {TAIL} checkpoints (it "
        "fluctuates from checkpoint to checkpoint); *own solver*: the final MSE with the variant's "
        "training solver instead. NFE and time are means per training iteration (batch, forward, "
        "backward, optimizer step); `direct` has no backward solve (it backpropagates through the "
        "forward graph), so its NFE bwd is empty. Mean ± sd over seeds where there are several.",
        "",
        markdown_table(table),
        "",
        ADJOINT_RATIO_NOTE,
        "",
    ]
    if any(v.startswith("example1/") for v in _variants(run)):
        lines += ["Example 1, final learned W (row-major) against the true W:", ""]
        lines += [markdown_table(w_table(run), floatfmt=".4f"), ""]
    curves = _curves_figure(run, out_dir, f"{stem}-curves.png")
    if curves:
        spread = (
            "lines: mean, bands: ± one sd over seeds; on the log axes (loss, MSE) geometric mean, bands "
            "×/÷ one geometric sd"
            if len(seeds) > 1
            else "one seed: no spread"
        )
        lines += [
            curves,
            "",
            f"*Training curves per variant (training loss and NFE per iteration as window means of "
            f"`log_every` iterations, trajectory MSE at the checkpoints; colour: the solver, lighter for the "
            f"adjoint); run `{meta['run_id']}`, preset {meta.get('preset')}, seeds "
            f"{', '.join(map(str, seeds))}; {spread}.*",
            "",
        ]
    lines += [
        f"Truth (grey / faint), observations (dots) and the learned model (evaluation solve) at the "
        f"stored snapshots, seed {seeds[0]}; rows are `mode/solver`:",
        "",
    ]
    for problem in PROBLEMS:
        for link in _phase_and_time_figures(run, problem, seeds[0], out_dir, stem):
            lines += [
                link,
                "",
                f"*{problem}, seed {seeds[0]} alone (of the run's seeds {', '.join(map(str, seeds))}): truth "
                "grey, observations black dots, the learned trajectory in the variant's colour (the "
                "solver's, lighter for the adjoint; in x(t), y(t) x dark and y light, truth too); run "
                f"`{meta['run_id']}`.*",
                "",
            ]
    return lines


def section(df: pd.DataFrame, meta_list: list[dict[str, Any]], out_dir: Path) -> str:
    """The spiral section of ``REPORT.md``: tables and figures per run, from records only.

    Arguments:
        df: records of the spiral runs (with ``preset``, ``device``, ``status`` columns).
        meta_list: the runs' meta dicts.
        out_dir: the report folder; figures go to ``out_dir/figures``.

    Returns:
        Markdown text.
    """
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for meta in meta_list:
        lines += _run_section(df[df["run_id"] == meta["run_id"]], meta, out_dir)
    return "\n".join(lines)
