"""Report section of workload ``latent``: Table 2 beside the paper's, Figure-8-like plots, protocol studies.

Built from stored records only; :mod:`nodebench.schema.latent` says what they mean (variant names, the
trajectory encoding ``step = slot * TRAJ_STRIDE + i``, the paper's Table 2).

Scale-free figures: every RMSE is also divided by ``train_std``, the pooled coordinate standard
deviation of the training spirals' noisy observation windows (validation spirals excluded), recorded
per seed in the run's ``data`` unit. Runs made before it was recorded take it from a run on the same
data configuration and seed that did record it (the generator is seeded, so the value is the same;
runs with ``models=()`` exist for exactly this); :func:`train_scales` says which. The latent-ODE to
baseline ratio is taken per seed (same data set) and then averaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from nodebench.claims import table2 as t2
from nodebench.claims.table2 import BASELINES, LABELS, MODEL_ORDER, PAPER, PAPER_COUNTS, PAPER_RATIO, SHORT
from nodebench.claims.table2 import config as _config
from nodebench.report import style
from nodebench.report._tables import markdown_table
from nodebench.schema import PRESET_NAMES as MAIN_PRESETS
from nodebench.schema.latent import OBS_POINTS, TRAJ_STRIDE

SENSITIVITY = "sensitivity"  # preset (label prefix) of the protocol study's cells
HISTORY = "history.md"  # the latent report's companion page: earlier configurations and studies


def _mean_std(values: pd.Series, fmt: str = ".4f") -> str:
    """``mean ± std (seeds)``; just the mean for one seed; ``-`` for none."""
    if values.empty:
        return "-"
    if len(values) == 1:
        return f"{values.iloc[0]:{fmt}} (1 seed)"
    return f"{values.mean():{fmt}} ± {values.std():{fmt}} ({len(values)})"


def _by_n(values: pd.DataFrame, counts: list[int], fmt: str = ".4f") -> dict[str, str]:
    """``mean ± std (seeds)`` of ``values`` (columns ``n, value``) for each n."""
    return {f"{n}/100": _mean_std(values[values["n"] == n]["value"].dropna(), fmt) for n in counts}


def _table2(tagged: pd.DataFrame, scales: pd.DataFrame, counts: list[int]) -> str:
    """Table 2: the paper's rows, then ours raw, normalised by ``train_std``, and latent/baseline ratios."""
    rows = []
    paper_rows = (
        ("RNN", "paper: RMSE", PAPER["rnn"]),
        ("Latent ODE", "paper: RMSE", PAPER["latent_ode"]),
        ("Latent ODE / RNN", "paper: ratio of the two rows above", PAPER_RATIO),
    )
    for model, quantity, values in paper_rows:
        rows.append(
            {"model": model, "quantity": quantity}
            | {f"{n}/100": f"{values[n]:.4f}" if n in values else "-" for n in counts}
        )
    present = [m for m in MODEL_ORDER if (tagged["model"] == m).any()]
    for model in present:
        part = tagged[tagged["model"] == model]
        for source, text in (("truth", "noise-free truth"), ("noisy", "noisy observations")):
            final = t2.finals(part, f"rmse_extrap_{source}")
            rows.append({"model": LABELS[model], "quantity": f"ours: RMSE vs {text}"} | _by_n(final, counts))
        for source, text in (("truth", "noise-free truth"), ("noisy", "noisy observations")):
            final = t2.normalised(t2.finals(part, f"rmse_extrap_{source}"), scales)
            rows.append(
                {"model": LABELS[model], "quantity": f"ours: RMSE / train_std, vs {text}"}
                | _by_n(final, counts)
            )
    if "latent_ode" in present:
        for baseline in [m for m in present if m in BASELINES]:
            for source, text in (("truth", "truth"), ("noisy", "noisy")):
                ratio = t2.ratios(t2.finals(tagged, f"rmse_extrap_{source}"), baseline)
                rows.append(
                    {
                        "model": f"Latent ODE / {SHORT[baseline]}",
                        "quantity": f"ours: ratio per seed, vs {text}",
                    }
                    | _by_n(ratio, counts, ".3f")
                )
    return markdown_table(pd.DataFrame(rows))


def table2_markdown(
    records: pd.DataFrame,
    metas: list[dict[str, Any]],
    scale_records: pd.DataFrame,
    scale_metas: list[dict[str, Any]],
) -> str:
    """Table 2 of the runs ``metas`` (their ``records``): the paper's rows, ours raw, divided by
    ``train_std`` (taken from ``scale_records`` of ``scale_metas`` where a run did not record its own)
    and the latent-ODE/baseline ratios per seed."""
    tagged = t2.tagged(records, metas)
    scales = t2.train_scales(scale_records, scale_metas)
    scales = scales[scales["run_id"].isin({m["run_id"] for m in metas})]
    return _table2(tagged, scales, sorted(tagged["n"].unique()))


def _details(tagged: pd.DataFrame, counts: list[int]) -> str:
    """Interpolation RMSE, NFE, iterations, times, mean ± std over seeds."""
    metrics = (
        ("rmse_interp_truth", "interp. RMSE vs truth", ".4f"),
        ("rmse_interp_noisy", "interp. RMSE vs noisy", ".4f"),
        ("nfe_eval", "NFE (test prediction)", ".0f"),
        ("iterations_used", "iterations trained (cap or patience)", ".0f"),
        ("stopped_by_patience", "stopped by patience (fraction of seeds)", ".2f"),
        ("selected_iteration", "selected iteration (validation)", ".0f"),
        ("time_per_iteration", "s per training iteration", ".3f"),
        ("train_time", "training time [s]", ".0f"),
    )
    rows = []
    for model in MODEL_ORDER:
        for metric, text, fmt in metrics:
            final = t2.finals(tagged[tagged["model"] == model], metric)
            if final.empty:
                continue
            if metric == "stopped_by_patience":
                cells = {
                    f"{n}/100": f"{final[final['n'] == n]['value'].mean():.2f}"
                    if (final["n"] == n).any()
                    else "-"
                    for n in counts
                }
            else:
                cells = _by_n(final, counts, fmt)
            rows.append({"model": LABELS[model], "quantity": text} | cells)
    return markdown_table(pd.DataFrame(rows)) if rows else "(no final values yet)"


def _points(df: pd.DataFrame, variant: str, prefix: str) -> pd.DataFrame:
    """Recorded trajectory points of ``variant``: columns ``slot, i, x, y``."""
    rows = df[(df["variant"] == variant) & df["metric"].isin([f"{prefix}_x", f"{prefix}_y"])]
    wide = rows.pivot_table(index="step", columns="metric", values="value").reset_index()
    if wide.empty:
        return pd.DataFrame(columns=["slot", "i", "x", "y"])
    return pd.DataFrame(
        {
            "slot": wide["step"] // TRAJ_STRIDE,
            "i": wide["step"] % TRAJ_STRIDE,
            "x": wide[f"{prefix}_x"],
            "y": wide[f"{prefix}_y"],
        }
    )


def _trajectory_seed(df: pd.DataFrame) -> int | None:
    """The first seed whose test-spiral trajectories the records hold (``None``: none)."""
    seeds = df.loc[(df["variant"] == "data") & (df["metric"] == "truth_x"), "seed"]
    return int(seeds.min()) if not seeds.empty else None


def _traced_variants(df: pd.DataFrame, tagged: pd.DataFrame, n: int) -> pd.Series:
    """The variant of each model at ``n`` whose predicted trajectories ``df`` holds, by model."""
    traced = set(df.loc[df["metric"] == "pred_x", "variant"])
    at_n = tagged[(tagged["n"] == n) & tagged["variant"].isin(traced)]
    return at_n.drop_duplicates("model").set_index("model")["variant"]


def _turn(orient: pd.Series, slot: int, short: bool = False) -> str:
    clockwise = orient.get(slot, 1) <= 0
    if short:
        return "cw" if clockwise else "ccw"
    return "clockwise" if clockwise else "counter-clockwise"


def _spiral_panel(
    ax: Any, truth: pd.DataFrame, obs: pd.DataFrame, pred: pd.DataFrame, split: int, colour: Any, n: int
) -> None:
    """One test spiral: the truth, the observations, the prediction inside the observation window
    (solid) and beyond it (dashed), and a cross where observation ends; equal aspect, axes labelled."""
    ax.plot(truth["x"], truth["y"], color=style.TRUTH, lw=1.2, label="ground truth")
    ax.scatter(obs["x"], obs["y"], s=7, color=style.OBSERVED, zorder=3, label=f"observations (n = {n})")
    inside, beyond = pred[pred["i"] < split], pred[pred["i"] >= split - 1]
    ax.plot(inside["x"], inside["y"], color=colour, lw=1.6, label="prediction (observation window)")
    ax.plot(beyond["x"], beyond["y"], color=colour, lw=1.6, ls=(0, (3, 1.5)), label="extrapolation")
    edge = truth[truth["i"] == split - 1]
    ax.scatter(edge["x"], edge["y"], s=60, marker="X", color="crimson", zorder=4, label="observation ends")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x", fontsize=8, labelpad=1)
    ax.set_ylabel("y", fontsize=8, labelpad=1)
    ax.tick_params(labelsize=7)


def _legend_below(fig: Figure, n: int, ncols: int = 5) -> None:
    """The shared legend of the spiral panels, under them (prediction lines in black: each model's
    line takes its colour)."""
    handles = [
        style.handle("ground truth", style.TRUTH, linestyle="-"),
        style.handle(f"observations (n = {n})", style.OBSERVED, marker="o", markersize=4),
        style.handle("prediction (observation window)", "black", linestyle="-"),
        style.handle("extrapolation", "black", linestyle=(0, (3, 1.5))),
        style.handle("observation ends", "crimson", marker="X", markersize=7),
    ]
    style.categorical_legend(fig, handles, loc="outside lower center", ncols=ncols)


@style.figure_function
def draw_figure8(df: pd.DataFrame, tagged: pd.DataFrame, n: int, split: int, title: str) -> Figure | None:
    """Figure-8-like panels: a row per model, a column per recorded test spiral, for ``n``.

    Arguments:
        df: the records of one run (``data`` and ``data/n=<n>`` trajectories, models' ``pred_*``);
            the first seed that recorded trajectories is drawn.
        tagged: its model records (:func:`nodebench.claims.table2.tagged`).
        n: the observation count.
        split: points in the observation window (:data:`OBS_POINTS`).
        title: the figure's title.

    Returns:
        The figure, or ``None`` when the run recorded no trajectories (of any model at ``n``).
    """
    seed = _trajectory_seed(df)
    if seed is None:
        return None
    df = df[df["seed"] == seed]
    truth, obs = _points(df, "data", "truth"), _points(df, f"data/n={n}", "obs")
    orient = df[(df["variant"] == "data") & (df["metric"] == "traj_orient")].set_index("step")["value"]
    slots = sorted(truth["slot"].unique())
    variants = _traced_variants(df, tagged, n)
    models = [m for m in MODEL_ORDER if m in variants.index]
    if not models:
        return None
    fig = Figure(figsize=(2.9 * len(slots) + 0.4, 2.75 * len(models) + 0.9), layout="constrained")
    rows = fig.subfigures(len(models), 1, squeeze=False)[:, 0] if models else []
    for row, model in zip(rows, models):
        pred = _points(df, variants[model], "pred")
        row.suptitle(LABELS[model], fontsize=10, color=style.mix(style.colour(model), "black", 0.25))
        for ax, slot in zip(row.subplots(1, len(slots), squeeze=False)[0], slots):
            part = (truth[truth["slot"] == slot], obs[obs["slot"] == slot], pred[pred["slot"] == slot])
            _spiral_panel(ax, *part, split, style.colour(model), n)
            ax.set_title(f"test spiral {slot} ({_turn(orient, slot)})", fontsize=8)
    _legend_below(fig, n)
    fig.suptitle(title, fontsize=11)
    return fig


def _figure8(df: pd.DataFrame, tagged: pd.DataFrame, n: int, split: int, path: Path, title: str) -> bool:
    """Write :func:`draw_figure8` to ``path``; whether the run recorded trajectories to draw."""
    fig = draw_figure8(df, tagged, n, split, title)
    if fig is None:
        return False
    fig.savefig(path, dpi=100)
    return True


@style.figure_function
def draw_figure8_panel(
    records: pd.DataFrame,
    n: int,
    *,
    slots: Sequence[int] | None = None,
    models: Sequence[str] | None = None,
    metas: list[dict[str, Any]] | None = None,
    title: str | None = None,
) -> Figure | None:
    """A compact Figure 8 (for SUMMARY.md): one row per test spiral, one column per model, showing the
    ground truth, the observations, the prediction inside the observation window and the extrapolation.

    Arguments:
        records: the records of one latent run (its first seed with trajectories is drawn).
        n: the observation count (one of the run's ``obs_counts``).
        slots: the recorded test spirals to draw, one row each; default: the first counter-clockwise
            and the first clockwise one (two rows), or the first if all turn one way.
        models: the models, one column each, in this order; default: every model the run trained at
            ``n``, in Table 2's order (:data:`MODEL_ORDER`).
        metas: the runs' metas, to name earlier runs' ``rnn`` baseline by its cell
            (:func:`nodebench.claims.table2.tagged`).
        title: the figure's title; default names the run, seed and n.

    Returns:
        The figure, or ``None`` when the run recorded no trajectories or no model at ``n``.
    """
    seed = _trajectory_seed(records)
    if seed is None:
        return None
    df = records[records["seed"] == seed]
    variants = _traced_variants(df, t2.tagged(df, metas), n)
    chosen = [m for m in (models or MODEL_ORDER) if m in variants.index]
    truth, obs = _points(df, "data", "truth"), _points(df, f"data/n={n}", "obs")
    if not chosen or truth.empty:
        return None
    orient = df[(df["variant"] == "data") & (df["metric"] == "traj_orient")].set_index("step")["value"]
    recorded = sorted(truth["slot"].unique())
    if slots is None:
        firsts = {_turn(orient, slot): slot for slot in reversed(recorded)}
        slots = sorted(firsts.values())
    fig = Figure(figsize=(2.75 * len(chosen) + 0.3, 2.55 * len(slots) + 1.3), layout="constrained")
    axes = fig.subplots(len(slots), len(chosen), squeeze=False)
    for col, model in enumerate(chosen):
        pred = _points(df, variants[model], "pred")
        for row, slot in enumerate(slots):
            ax = axes[row][col]
            part = (truth[truth["slot"] == slot], obs[obs["slot"] == slot], pred[pred["slot"] == slot])
            _spiral_panel(ax, *part, OBS_POINTS, style.colour(model), n)
            ax.set_title(f"{SHORT[model]}, spiral {slot} ({_turn(orient, slot, short=True)})", fontsize=9)
    _legend_below(fig, n, ncols=3)
    run = records["run_id"].iloc[0]
    fig.suptitle(title or f"Test spirals, n = {n} observations, seed {seed} (run {run})", fontsize=10)
    return fig


@style.figure_function
def draw_table2(finals: pd.DataFrame, *, baseline: str = "rnn_tanh", title: str | None = None) -> Figure:
    """Table 2 as a figure: (a) extrapolation RMSE against n per model, one point per seed, the mean
    line, the paper's values as stars; (b) the ratio latent ODE / ``baseline`` per seed (same data set),
    its mean, and the paper's latent ODE / RNN ratio as stars.

    Arguments:
        finals: final values ``model, n, seed, value`` (e.g. ``rmse_extrap_truth`` rows of
            :func:`nodebench.claims.table2.finals`, any ``run_id``); models as in :data:`LABELS`.
        baseline: the model the ratio divides by (the paper's RNN is ``rnn_tanh``).
        title: the figure's title.

    Returns:
        The figure.
    """
    from matplotlib.lines import Line2D

    counts = sorted(set(finals["n"]) | set(PAPER_COUNTS))
    position = {n: i for i, n in enumerate(counts)}
    models = [m for m in MODEL_ORDER if (finals["model"] == m).any()]
    fig = Figure(figsize=(11.5, 4.4), layout="constrained")
    ax_a, ax_b = fig.subplots(1, 2)
    handles: list[Line2D] = []
    for k, model in enumerate(models):
        part = finals[finals["model"] == model]
        offset = (k - (len(models) - 1) / 2) * 0.09
        base = style.colour(model)
        x = part["n"].map(position) + offset
        ax_a.scatter(x, part["value"], color=base, s=18, alpha=0.75, edgecolor="none", zorder=3)
        mean = part.groupby("n")["value"].mean()
        ax_a.plot(mean.index.map(position) + offset, mean.to_numpy(), color=base, lw=1.4, zorder=2)
        handles.append(style.handle(LABELS[model], base, marker="o", linestyle="-", markersize=4))
    paper_style = {"marker": "*", "markersize": 13, "markeredgecolor": style.PAPER, "markeredgewidth": 0.8}
    for key, model in (("rnn", "rnn_tanh"), ("latent_ode", "latent_ode")):
        values = PAPER[key]
        xs = [position[n] for n in values]
        ax_a.plot(xs, list(values.values()), ls=(0, (1, 1.5)), lw=1, color=style.PAPER, zorder=4)
        ax_a.plot(xs, list(values.values()), ls="", color=style.colour(model), zorder=5, **paper_style)
        paper_label = "RNN" if key == "rnn" else "Latent ODE"
        handles.append(
            Line2D([], [], ls="", color=style.colour(model), label=f"paper: {paper_label}", **paper_style)
        )
    style.log_axis(ax_a)
    style.log_ticks(ax_a)
    ax_a.set(xlabel="observations per spiral (n)", ylabel="extrapolation RMSE")
    ax_a.set_title("(a) RMSE: seeds (points), mean (line)")
    ratio = t2.ratios(finals.assign(run_id=finals.get("run_id", "")), baseline)
    base = style.colour("latent_ode")
    ax_b.scatter(
        ratio["n"].map(position), ratio["value"], color=base, s=18, alpha=0.75, edgecolor="none", zorder=3
    )
    mean = ratio.groupby("n")["value"].mean()
    ax_b.plot(mean.index.map(position), mean.to_numpy(), color=base, lw=1.4, zorder=2)
    xs = [position[n] for n in PAPER_RATIO]
    ax_b.plot(xs, list(PAPER_RATIO.values()), ls=(0, (1, 1.5)), lw=1, color=style.PAPER, zorder=4)
    ax_b.plot(xs, list(PAPER_RATIO.values()), ls="", color=base, zorder=5, **paper_style)
    ax_b.axhline(1.0, color=style.GUIDE, lw=0.8, ls=(0, (4, 2)))
    top = max([1.1, *PAPER_RATIO.values(), *(ratio["value"] * 1.08)])
    ax_b.set_ylim(0, top)
    ax_b.set(xlabel="observations per spiral (n)", ylabel=f"RMSE ratio latent ODE / {SHORT[baseline]}")
    ax_b.set_title("(b) ratio per seed (same data), mean")
    ratio_handles = [
        style.handle(
            f"ours, per seed / mean (vs {SHORT[baseline]})", base, marker="o", linestyle="-", markersize=4
        ),
        Line2D([], [], ls="", color=base, label="paper: latent ODE / RNN", **paper_style),
    ]
    style.categorical_legend(ax_b, ratio_handles, loc="lower right")
    for ax in (ax_a, ax_b):
        ax.set_xticks(range(len(counts)), [str(n) for n in counts])
        ax.set_xlim(-0.5, len(counts) - 0.5)
        ax.grid(alpha=0.3)
    style.categorical_legend(fig, handles, "model", loc="outside right upper")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


@style.figure_function
def draw_val_curves(tagged: pd.DataFrame) -> Figure | None:
    """Validation extrapolation RMSE against iteration, one panel per n: per model the geometric mean
    over seeds with a ×/÷ one geometric sd band (log axis).

    Arguments:
        tagged: model records (:func:`nodebench.claims.table2.tagged`) with ``val_rmse_extrap`` at steps ≥ 0.

    Returns:
        The figure, or ``None`` without such records.
    """
    data = tagged[(tagged["metric"] == "val_rmse_extrap") & (tagged["step"] >= 0)]
    if data.empty:
        return None
    counts = sorted(data["n"].unique())
    models = [m for m in MODEL_ORDER if (data["model"] == m).any()]
    fig = Figure(figsize=(3.9 * len(counts) + 2.4, 3.4), layout="constrained")
    axes = fig.subplots(1, len(counts), squeeze=False)[0]
    for ax, n in zip(axes, counts):
        part = data[data["n"] == n]
        bands = style.group_bands(
            part, "step", "value", ["model"], lambda k: {"colour": style.colour(k[0])}, log=True
        )
        style.lines_with_bands(ax, bands, log=True)
        ax.set_title(f"n = {n}")
        ax.set(xlabel="training iteration", ylabel="validation extrapolation RMSE")
        ax.grid(alpha=0.3)
    handles = [style.handle(LABELS[m], style.colour(m), linestyle="-") for m in models]
    style.categorical_legend(fig, handles, "model", loc="outside right upper")
    return fig


def _curves(tagged: pd.DataFrame, path: Path) -> bool:
    """Write :func:`draw_val_curves` to ``path``; whether there was anything to draw."""
    fig = draw_val_curves(tagged)
    if fig is None:
        return False
    fig.savefig(path, dpi=100)
    return True


def _baseline(tagged: pd.DataFrame) -> str | None:
    """The baseline a study row compares against: the paper's RNN if it ran, else the first present."""
    return next((m for m in BASELINES if (tagged["model"] == m).any()), None)


def _study_row(
    tagged: pd.DataFrame, data: pd.DataFrame, scales: pd.DataFrame, n: int, config: dict[str, Any]
) -> dict[str, Any]:
    """Latent ODE and baseline figures of one config at one n (raw, normalised, ratio per seed)."""
    part = tagged[tagged["n"] == n]
    seeds = sorted(part["seed"].unique())
    baseline = _baseline(part)
    ode = part[part["model"] == "latent_ode"]
    val = ode[ode["metric"] == "val_rmse_extrap"].groupby("seed")["value"]
    row: dict[str, Any] = {"n": n, "seeds": ",".join(str(s) for s in seeds)}
    used = t2.finals(ode, "iterations_used")["value"]
    finished = not t2.finals(ode, "rmse_extrap_truth").empty
    row["latent ODE iterations"] = (
        _mean_std(used, ".0f") if not used.empty or not finished else f"{config.get('iterations')} (all)"
    )
    row["latent ODE val"] = _mean_std(val.min() if config.get("select", True) else val.last(), ".3f")
    for model, text in (("latent_ode", "latent ODE"), (baseline, "baseline")):
        final = t2.finals(part[part["model"] == model], "rmse_extrap_truth")
        row[f"{text} test vs truth"] = _mean_std(final["value"], ".3f")
        row[f"{text} / train_std"] = _mean_std(t2.normalised(final, scales)["value"].dropna(), ".4f")
    row["baseline"] = SHORT.get(baseline or "", "-")
    for source in ("truth", "noisy"):
        ratio = t2.ratios(t2.finals(part, f"rmse_extrap_{source}"), baseline) if baseline else pd.DataFrame()
        row[f"ratio vs {source}"] = _mean_std(ratio["value"] if not ratio.empty else pd.Series(), ".3f")
    std = scales.merge(part[["run_id", "seed"]].drop_duplicates(), on=["run_id", "seed"])[
        "train_std"
    ].dropna()
    row["train_std"] = f"{std.mean():.2f}" if not std.empty else "-"
    scale = data[(data["metric"] == "extrap_scale") & data["seed"].isin(seeds)]["value"]
    row["extrap. scale"] = f"{scale.mean():.2f}" if not scale.empty else "-"
    return row


def _studies(
    df: pd.DataFrame,
    tagged: pd.DataFrame,
    scales: pd.DataFrame,
    groups: list[list[dict[str, Any]]],
    reference: dict[str, Any],
) -> str:
    """One row per config (runs pooled over seeds) and n; columns as in :func:`_study_row`."""
    rows = []
    for group in groups:
        ids = [meta["run_id"] for meta in group]
        run = tagged[tagged["run_id"].isin(ids)]
        data = df[df["run_id"].isin(ids) & (df["variant"] == "data")]
        config = _config(group[0])
        for n in sorted(run["n"].unique()):
            rows.append(
                {
                    "runs": ", ".join(ids),
                    "preset (+ overrides)": group[0].get("preset"),
                    "differs from the reference in": t2.differences(config, _config(reference)),
                }
                | _study_row(run, data, scales, n, config)
            )
    return markdown_table(pd.DataFrame(rows)) if rows else "(no runs)"


def _sensitivity(
    df: pd.DataFrame,
    tagged: pd.DataFrame,
    scales: pd.DataFrame,
    card: list[dict[str, Any]],
    cells: list[list[dict[str, Any]]],
) -> str:
    """The protocol study: the card at its sensitivity cells' seeds and n, then each cell."""
    rows = []
    card_ids = [meta["run_id"] for meta in card]
    seeds = sorted({seed for group in cells for meta in group for seed in meta.get("seeds") or []})[:1]
    counts = {n for group in cells for meta in group for n in _config(meta).get("obs_counts") or []}
    base = tagged[tagged["run_id"].isin(card_ids) & tagged["seed"].isin(seeds) & tagged["n"].isin(counts)]
    data = df[df["run_id"].isin(card_ids) & (df["variant"] == "data")]
    for n in sorted(base["n"].unique()):
        rows.append(
            {"cell": "the reference card", "runs": ", ".join(card_ids)}
            | _study_row(base, data, scales, n, _config(card[0]))
        )
    for group in cells:
        ids = [meta["run_id"] for meta in group]
        run = tagged[tagged["run_id"].isin(ids)]
        data = df[df["run_id"].isin(ids) & (df["variant"] == "data")]
        differs = t2.differences(_config(group[0]), _config(card[0]), ignore=("models",))
        for n in sorted(run["n"].unique()):
            rows.append(
                {"cell": differs, "runs": ", ".join(ids)}
                | _study_row(run, data, scales, n, _config(group[0]))
            )
    return markdown_table(pd.DataFrame(rows)) if rows else "(no sensitivity runs yet)"


def _mean_ratio(tagged: pd.DataFrame, baseline: str, source: str = "truth") -> pd.Series:
    ratio = t2.ratios(t2.finals(tagged, f"rmse_extrap_{source}"), baseline)
    return ratio.groupby("n")["value"].mean()


def _claims(
    tagged: pd.DataFrame,
    scales: pd.DataFrame,
    card: list[dict[str, Any]],
    cells: list[list[dict[str, Any]]],
    reference_card: list[dict[str, Any]] | None = None,
) -> str:
    """What the card's numbers say beside the claims (whose verdicts the claims table gives): the absolute
    RMSE against the paper's and the scale it implies, how training ended, and which study cell comes
    nearest the paper; the sensitivity cells are compared with ``reference_card`` (default: the card),
    the card they vary."""
    reference_card = reference_card or card
    ids = [meta["run_id"] for meta in card]
    run = tagged[tagged["run_id"].isin(ids)]
    counts = [n for n in PAPER_COUNTS if (run["n"] == n).any()]
    if "latent_ode" not in set(run["model"]) or "rnn_tanh" not in set(run["model"]) or not counts:
        return "The card has no latent-ODE and tanh-RNN runs yet: no claim can be checked."
    seeds = sorted(run["seed"].unique())
    ode = t2.finals(run[run["model"] == "latent_ode"], "rmse_extrap_truth")
    ode_noisy = t2.finals(run[run["model"] == "latent_ode"], "rmse_extrap_noisy")
    raw = "/".join(f"{ode[ode['n'] == n]['value'].mean():.3f}" for n in counts)
    raw_noisy = "/".join(f"{ode_noisy[ode_noisy['n'] == n]['value'].mean():.3f}" for n in counts)
    norm = t2.normalised(ode, scales)
    norm_text = "/".join(f"{norm[norm['n'] == n]['value'].mean():.4f}" for n in counts)
    std = scales[scales["run_id"].isin(ids)]["train_std"].mean()
    paper_raw = "/".join(f"{PAPER['latent_ode'][n]:.4f}" for n in counts)
    implied = "/".join(f"{PAPER['latent_ode'][n] / norm[norm['n'] == n]['value'].mean():.2f}" for n in counts)
    closest = []
    cell_seeds = {seed for group in cells for meta in group for seed in meta.get("seeds") or []}
    cell_counts = {n for group in cells for meta in group for n in _config(meta).get("obs_counts") or []}

    def at_cells(group: list[dict[str, Any]]) -> pd.DataFrame:
        rows = tagged[tagged["run_id"].isin([meta["run_id"] for meta in group])]
        return rows[rows["seed"].isin(sorted(cell_seeds)[:1]) & rows["n"].isin(cell_counts)]

    candidates = [(card, at_cells(card))]
    if reference_card is not card:
        candidates.append((reference_card, at_cells(reference_card)))
    for group, cell in candidates + [
        (group, tagged[tagged["run_id"].isin([meta["run_id"] for meta in group])]) for group in cells
    ]:
        if not {"latent_ode", "rnn_tanh"} <= set(cell["model"]):
            continue
        r = _mean_ratio(cell, "rnn_tanh")
        distance = float((r - pd.Series(PAPER_RATIO)).abs().dropna().mean())
        raw_cell = (
            t2.finals(cell[cell["model"] == "latent_ode"], "rmse_extrap_truth").groupby("n")["value"].mean()
        )
        raw_distance = float((raw_cell - pd.Series(PAPER["latent_ode"])).abs().dropna().mean())
        label = (
            "the card"
            if group is card
            else "the study's reference card"
            if group is reference_card
            else "the cell " + t2.differences(_config(group[0]), _config(reference_card[0]), ("models",))
        )
        closest.append((distance, raw_distance, label))
    closest_text = ""
    if len(closest) > 1:
        by_ratio, by_raw = min(closest), min(closest, key=lambda c: c[1])
        closest_text = (
            " Among the card, the study's reference and its sensitivity cells (one seed, n = 30 and 100), "
            "the ratio nearest the "
            f"paper's is that of {by_ratio[2]} (mean distance {by_ratio[0]:.2f}), and the raw latent-ODE "
            f"RMSE nearest the paper's is that of {by_raw[2]} (mean distance {by_raw[1]:.3f})."
        )
    ode_units = t2.finals(run[run["model"] == "latent_ode"], "stopped_by_patience")
    capped = int((ode_units["value"] == 0).sum())
    late = t2.finals(run[run["model"] == "latent_ode"], "selected_iteration")
    iterations = _config(card[0]).get("iterations")
    used = t2.finals(run[run["model"] == "latent_ode"], "iterations_used")["value"]
    if ode_units.empty:
        budget_text = ""
    elif capped:
        budget_text = (
            f" *Training length*: the latent ODE ran to the {iterations}-iteration cap in {capped} of "
            f"{len(ode_units)} (seed, n) units, its validation best at iteration "
            f"{late['value'].min():.0f} or later, so longer training would likely lower its RMSE and the "
            "ratio; the cap is a compute budget of this study, not the paper's."
        )
    else:
        budget_text = (
            f" *Training length*: the patience rule, not the {iterations}-iteration cap, ended the latent "
            f"ODE's training in all {len(ode_units)} (seed, n) units, after {used.min():.0f} to "
            f"{used.max():.0f} iterations (validation best at iterations {late['value'].min():.0f} to "
            f"{late['value'].max():.0f}): by the rule on the validation spirals, training had stopped "
            "improving (the rule measures a plateau at the learning rate of that iteration, on the "
            "schedule that decays to the cap)."
        )
    return (
        f"**Beside the claims** (the card: runs {', '.join(ids)}, seeds {', '.join(str(s) for s in seeds)}, "
        f"n = {', '.join(str(n) for n in counts)}; protocol 'ours', its card above). *Absolute value*: "
        f"ours {raw} against the noise-free truth ({raw_noisy} against the noisy points), the paper's "
        f"{paper_raw}; divided by the training coordinate std (about {std:.2f}) ours is {norm_text}, so the "
        f"paper's raw numbers would match ours only if its data had a coordinate std of about {implied}. "
        "The paper gives neither its spiral equations, scale, time span, noise level, training length or "
        "stopping rule, nor whether its RMSE was taken against noisy or noise-free points, so its absolute "
        "values can be neither reproduced nor refuted; the ordering and the ratio are the checkable claims."
        + budget_text
        + closest_text
        + " No choice here was made on the test spirals: parameters, recurrent cells and the stopping "
        "iteration were selected on the validation spirals, and the test spirals were evaluated once."
    )


def _table2_block(
    df: pd.DataFrame,
    tagged_all: pd.DataFrame,
    scales: pd.DataFrame,
    group: list[dict[str, Any]],
    title: str,
    note: str,
    out_dir: Path,
) -> list[str]:
    """Table 2, the interpolation / NFE / time details and the figures of one group of runs."""
    ids = [meta["run_id"] for meta in group]
    seeds = sorted({seed for meta in group for seed in meta.get("seeds") or []})
    statuses = sorted({str(meta.get("status")) for meta in group})
    tagged = tagged_all[tagged_all["run_id"].isin(ids)]
    counts = sorted(tagged["n"].unique())
    config = _config(group[0])
    sources = scales[scales["run_id"].isin(ids)]
    borrowed = sorted(
        {src for run, src in zip(sources["run_id"], sources["scale_from"]) if src and src != run}
    )
    missing = sources[sources["train_std"].isna()]
    solver = f"{config.get('method')}, rtol {config.get('rtol')}, atol {config.get('atol')}"
    lines = [f"#### Table 2, {title} (seeds {seeds}; runs {', '.join(ids)}; {', '.join(statuses)})", ""]
    if note:
        lines += [note, ""]
    lines += [
        "Predictive RMSE on the 100 extrapolation points of the test spirals: root of the mean "
        "squared error over spirals, points and both coordinates; ours is mean ± sample std over "
        "seeds (count in brackets). `train_std`: the pooled coordinate standard deviation of the "
        "training spirals' noisy observation windows (validation spirals excluded), per seed. Ratios "
        "are taken per seed on the same data set, then averaged. The paper's numbers are the paper's, "
        f"on its unpublished protocol. Latent-ODE solver that ran: {solver} (the paper: implicit Adams, "
        f"1.5e-8). Training: at most {config.get('iterations')} iterations"
        + (
            f", patience {config.get('patience')} evaluations at {config.get('min_improvement')} relative "
            f"improvement from iteration {config.get('min_iterations', 0)} on"
            if config.get("patience")
            else ", no patience rule (every iteration run)"
        )
        + "; selection on the validation spirals.",
        "",
        _table2(tagged, scales, counts),
        "",
    ]
    lines += _table2_figure(tagged, ids, out_dir)
    if "interrupted" in statuses:
        lines += [
            "An interrupted run contributes the (seed, model, n) units it completed (its `units.jsonl` "
            "lists them).",
            "",
        ]
    if borrowed:
        lines += [
            f"`train_std` of these runs was recorded by run(s) {', '.join(borrowed)} on the same data.",
            "",
        ]
    if not missing.empty:
        lines += [
            f"No `train_std` for seed(s) {sorted(missing['seed'].unique())}: no normalised values there.",
            "",
        ]
    lines += [
        "Observation window (interpolation), NFE, iterations and times:",
        "",
        _details(tagged, counts),
        "",
    ]
    curves = f"figures/latent-{ids[0]}-val-curves.png"
    if _curves(tagged, out_dir / curves):
        val = tagged[(tagged["metric"] == "val_rmse_extrap") & (tagged["step"] >= 0)]
        lines += [
            f"![validation RMSE during training, runs {', '.join(ids)}]({curves})",
            "",
            "*Validation extrapolation RMSE (against the noise-free truth) during training, per n and "
            "model: "
            + (
                f"geometric mean over {_seeds_text(val)} ×/÷ one geometric sd (log axis); "
                if val["seed"].nunique() > 1
                else f"{_seeds_text(val)}, no spread (log axis); "
            )
            + f"runs {', '.join(ids)}.*",
            "",
        ]
    traced = df[df["run_id"].isin(ids) & (df["metric"] == "truth_x")]["run_id"]
    if not traced.empty:  # Figure 8 from the first run that recorded trajectories
        meta = next(meta for meta in group if meta["run_id"] == traced.iloc[0])
        run = df[df["run_id"] == meta["run_id"]]
        seed = _trajectory_seed(run)
        drawn = (
            f"seed {seed} alone (the seed that recorded test-spiral trajectories; the runs' seeds: "
            f"{', '.join(map(str, seeds))}), run `{meta['run_id']}`"
        )
        name = f"figures/latent-{meta['run_id']}-fig8-panel.png"
        panel = draw_figure8_panel(run, min(counts), metas=group)
        if panel is not None:
            panel.savefig(out_dir / name, dpi=100)
            lines += [
                f"![Figure 8 at a glance, n={min(counts)}, run {meta['run_id']}]({name})",
                "",
                f"*Figure 8 at a glance: the first recorded test spiral of each orientation at n = "
                f"{min(counts)}, per model (colour): ground truth grey, observations black, prediction in "
                f"the observation window solid, extrapolation dashed; {drawn}.*",
                "",
            ]
        for n in counts:
            name = f"figures/latent-{meta['run_id']}-fig8-n{n}.png"
            title = f"Run {meta['run_id']}, seed {seed}, n = {n}: test spirals"
            if _figure8(
                run, tagged[tagged["run_id"] == meta["run_id"]], n, OBS_POINTS, out_dir / name, title
            ):
                lines += [
                    f"![Figure 8 style, n={n}, run {meta['run_id']}]({name})",
                    "",
                    f"*Figure 8 style, n = {n}: every recorded test spiral (columns) per model (rows); "
                    f"{drawn}.*",
                    "",
                ]
    return lines


def _seeds_text(rows: pd.DataFrame) -> str:
    """``seed 0`` or ``seeds 0, 1, 2``: the seeds of ``rows``."""
    seeds = [str(int(s)) for s in sorted(rows["seed"].unique())]
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}"


def _table2_figure(tagged: pd.DataFrame, ids: list[str], out_dir: Path) -> list[str]:
    """Table 2 as a figure (:func:`draw_table2`) of one group of runs, linked and captioned."""
    finals = t2.finals(tagged, "rmse_extrap_truth")
    if finals.empty:
        return []
    name = f"figures/latent-{ids[0]}-table2.png"
    draw_table2(finals).savefig(out_dir / name, dpi=100)
    return [
        f"![Table 2 as a figure, runs {', '.join(ids)}]({name})",
        "",
        "*Table 2 as a figure: extrapolation RMSE against the noise-free truth on the test spirals, one "
        f"point per seed ({_seeds_text(finals)}) and the mean over seeds (line), per model (colour); "
        "stars: the paper's values (its RNN, its latent ODE; the paper's, not measured). Right: the "
        "latent ODE / tanh RNN ratio per seed on the same data, its mean, the paper's ratio as stars. "
        f"Runs {', '.join(ids)}.*",
        "",
    ]


def _has_models(group: list[dict[str, Any]]) -> bool:
    return any(_config(meta).get("models", ["x"]) for meta in group)


def section(df: pd.DataFrame, metas: list[dict[str, Any]], out_dir: Path) -> str:
    """The card's Table 2, the sensitivity table and the claims paragraph; then every earlier Table 2
    (other configurations of a main preset, protocol variants covering every n) and every run's row."""
    tagged = t2.tagged(df, metas)
    scales = t2.train_scales(df, metas)
    mains = [g for g in t2.by_config([m for m in metas if m.get("preset") in MAIN_PRESETS]) if _has_models(g)]
    latest = {group[0]["preset"]: _config(group[0]) for group in mains}  # last started wins
    current = [g for g in mains if _config(g[0]) == latest[g[0]["preset"]]]
    earlier = [g for g in mains if _config(g[0]) != latest[g[0]["preset"]]]
    card = next((g for g in current if g[0]["preset"] == "standard"), current[0] if current else None)
    others = [
        g for g in t2.by_config([m for m in metas if m.get("preset") not in MAIN_PRESETS]) if _has_models(g)
    ]
    cells = [g for g in others if str(g[0].get("preset", "")).startswith(SENSITIVITY)]
    reference_card = t2.study_reference(mains, cells) or card
    lines: list[str] = []
    if card is not None:
        lines += _table2_block(df, tagged, scales, card, f"the card: preset {card[0]['preset']}", "", out_dir)
        same = reference_card is card
        reference_ids = ", ".join(meta["run_id"] for meta in reference_card)
        lines += [
            "#### Protocol study (sensitivity of the card)",
            "",
            (
                "Each cell is the card"
                if same
                else f"Each cell is the card the study was made from (runs {reference_ids}, which differs "
                f"from the current card in {t2.differences(_config(reference_card[0]), _config(card[0]))})"
            )
            + " with one protocol choice changed (column `cell`), trained and "
            "selected exactly as that card but on seed 0 (three seeds where the seeds column says so) "
            "and n = 30 and 100, with the latent ODE and the paper's tanh RNN (Δt input) only. The "
            "reference's own row is its first seed at those n (all its seeds are in its Table 2). "
            "Baseline: the tanh RNN; ratio = latent ODE / baseline per seed. One seed is one draw: "
            "the card's seed spread in Table 2 says how far a single seed can move.",
            "",
            _sensitivity(df, tagged, scales, reference_card, cells),
            "",
            _claims(tagged, scales, card, cells, reference_card),
            "",
        ]
    history: list[str] = []
    for group in [g for g in current if g is not card] + earlier:
        preset = group[0]["preset"]
        differs = t2.differences(_config(group[0]), latest[preset])
        note = (
            f"An earlier configuration of this preset: it differs from the latest {preset} run in {differs}."
            if differs != "(none)"
            else ""
        )
        history += _table2_block(df, tagged, scales, group, f"preset {preset}", note, out_dir)
    reference = card[0] if card is not None else (metas[-1] if metas else {})
    for group in others:
        counts = {n for meta in group for n in _config(meta).get("obs_counts") or []}
        if card is None or not set(PAPER_COUNTS) <= counts:
            continue  # a study of part of the table: in the studies table below
        differs = t2.differences(_config(group[0]), _config(reference))
        note = (
            f"A protocol variant, not the card: it differs from the card in {differs}. "
            "Each run's meta.json holds its exact command."
        )
        history += _table2_block(df, tagged, scales, group, f"protocol variant ({differs})", note, out_dir)
    history += [
        "## Extrapolation RMSE of every run (protocol studies)",
        "",
        "Each exploratory run is the workload with the overrides in its preset label; runs that differ "
        "only in their seeds share a row. The third column lists the protocol fields in which the "
        f"config differs from the card, run `{reference.get('run_id')}` (preset {reference.get('preset')}; "
        "seeds, n and recorded trajectories aside). `val`: the best validation extrapolation RMSE "
        "(against the truth) seen in training, which selects the evaluated parameters; `test`: the "
        "test spirals. Baseline: the paper's tanh RNN where it ran, else the run's own baseline "
        "(earlier runs' `rnn` named by its cell). `extrap. scale`: RMS distance of the test truth from "
        "its spiral centre over the extrapolation window, per coordinate. Runs with no models "
        "(`models=()`) only record the data scale for earlier runs and have no row.",
        "",
        _studies(df, tagged, scales, mains + others, reference),
        "",
    ]
    (out_dir / HISTORY).write_text(
        "\n".join(
            [
                "# Latent ODE: earlier configurations and protocol studies",
                "",
                "Every Table 2 of a configuration other than the card's, and one row per run of every "
                "exploratory study, from the same records as [REPORT.md](REPORT.md).",
                "",
                *(line.replace("#### ", "## ") for line in history),
            ]
        ),
        encoding="utf-8",
    )
    lines += [
        f"Earlier configurations of the card, protocol variants and a row per exploratory run: [{HISTORY}]"
        f"({HISTORY}).",
        "",
    ]
    return "\n".join(lines)
