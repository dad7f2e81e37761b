"""MNIST section: paper-style Table 1 and Figure 3c/3d, from the stored records of ``mnist`` runs only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from nodebench.claims.evidence import Spec, footprint, load_state, select
from nodebench.report import style
from nodebench.report._tables import markdown_table
from nodebench.schema.mnist import PAPER_TABLE1

TEST_IMAGES = 10_000
LABELS = {"mlp": "1-layer MLP", "resnet": "ResNet", "rknet": "RK-Net", "odenet": "ODE-Net"}
#: The paper's Table 1 memory and time columns (L: layers; L~: NFE of one forward solve), as published.
PAPER_COST = {
    "mlp": ("-", "-"),
    "resnet": ("O(L)", "O(L)"),
    "rknet": ("O(L~)", "O(L~)"),
    "odenet": ("O(1)", "O(L~)"),
}


def _mean_sd(values: pd.Series, fmt: str = ".2f") -> str:
    """``mean`` or ``mean ± sd`` over seeds; empty when there are no values."""
    if values.empty:
        return ""
    text = format(values.mean(), fmt)
    return text + (f" ± {values.std():{fmt}}" if len(values) > 1 else "")


def _metric(records: pd.DataFrame, metric: str) -> pd.DataFrame:
    return records[records["metric"] == metric]


def _last_per_seed(records: pd.DataFrame, metric: str) -> pd.Series:
    """The value at each seed's last recorded epoch."""
    rows = _metric(records, metric).sort_values("step", kind="stable")
    return rows.groupby("seed")["value"].last()


def table1(run: pd.DataFrame, meta: dict[str, Any]) -> pd.DataFrame:
    """Table 1 for one run: ours beside the paper's, one row per model in training order.

    Arguments:
        run: the run's records.
        meta: the run's meta (for the planned number of epochs).

    Returns:
        A frame of display strings and numbers, ready for :func:`markdown_table`.
    """
    planned = (meta.get("config") or {}).get("epochs")
    rows = []
    for model in dict.fromkeys(run["variant"]):
        records = run[run["variant"] == model]
        paper = PAPER_TABLE1.get(model, {})
        params = _metric(records, "params")["value"]
        nfe_f, nfe_b = _metric(records, "nfe_forward")["value"], _metric(records, "nfe_backward")["value"]
        cuda = _metric(records, "cuda_peak")["value"]
        rows.append(
            {
                "model": LABELS.get(model, model),
                "epochs (paper: 160)": f"{records['step'].max() + 1}"
                + (f" of {planned} planned" if planned and records["step"].max() + 1 < planned else ""),
                "seeds": records.loc[records["seed"] >= 0, "seed"].nunique(),
                "test error % (ours)": _mean_sd(_last_per_seed(records, "test_error")),
                "test error % (paper)": f"{paper['test_error_pct']:.2f}" if paper else "",
                "params (ours)": f"{int(params.iloc[0]):,}" if not params.empty else "",
                "params (paper)": f"{paper['params_millions']:.2f}M" if paper else "",
                "peak RSS MiB": _metric(records, "peak_rss")["value"].max(),
                **({"CUDA peak MiB": cuda.max()} if not cuda.empty else {}),
                "train s/epoch (median)": _metric(records, "epoch_time")["value"].median(),
                "NFE fwd/iter (± over epochs)": _mean_sd(nfe_f, ".1f"),
                "NFE bwd/iter (± over epochs)": _mean_sd(nfe_b, ".1f")
                if model != "rknet"
                else "0 (backprop)",
                "memory (paper)": PAPER_COST.get(model, ("", ""))[0],
                "time (paper)": PAPER_COST.get(model, ("", ""))[1],
            }
        )
    return pd.DataFrame(rows)


def _time_per_image_ms(records: pd.DataFrame, meta: dict[str, Any]) -> float:
    """Median evaluation time per test image (ms): recorded, or the epoch's eval time over its images."""
    recorded = _metric(records, "test_time_per_image")["value"]
    if not recorded.empty:
        return 1e3 * float(recorded.median())
    images = (meta.get("config") or {}).get("test_size") or TEST_IMAGES
    return 1e3 * float(_metric(records, "eval_time")["value"].median()) / images


def table1_by_preset(
    records: pd.DataFrame, metas: list[dict[str, Any]], presets: tuple[str, ...]
) -> pd.DataFrame:
    """Table 1 with one test-error column per citable preset that ran (the claims' evidence rule per
    model and preset), the paper's values, and the time column from the most faithful preset.

    Returns:
        One row per model of the paper's Table 1 that has a run (empty frame if none).
    """
    rows = []
    for model, label in LABELS.items():
        chosen = {p: select(records, metas, Spec("mnist", (p,), variants=model)) for p in presets}
        chosen = {p: ev for p, ev in chosen.items() if not ev.empty}
        if not chosen:
            continue
        paper = PAPER_TABLE1[model]
        row: dict[str, Any] = {"model": label, "paper: test error": f"{paper['test_error_pct']:.2f}%"}
        for preset, ev in chosen.items():
            errors = _last_per_seed(ev.records, "test_error")
            epochs = int(ev.records["step"].max()) + 1
            row[f"{preset} ({epochs} ep.)"] = f"{_mean_sd(errors)}%"
        ev = next(iter(chosen.values()))
        params = _metric(ev.records, "params")["value"]
        row["params (paper)"] = (f"{params.iloc[0] / 1e6:.3f}M" if not params.empty else "-") + (
            f" ({paper['params_millions']:.2f}M)"
        )
        row["train s/epoch"] = f"{_metric(ev.records, 'epoch_time')['value'].median():.0f}"
        row["test ms/image"] = f"{_time_per_image_ms(ev.records, ev.metas[-1]):.2f}"
        row["timings"] = footprint(ev.metas).load_text()
        row["memory, time (paper)"] = ", ".join(PAPER_COST[model])
        rows.append(row)
    table = pd.DataFrame(rows)
    columns = [c for c in table.columns if c.partition(" (")[0] not in presets]
    by_preset = sorted(
        (c for c in table.columns if c.partition(" (")[0] in presets),
        key=lambda c: presets.index(c.partition(" (")[0]),
    )
    return table[columns[:2] + by_preset + columns[2:]].fillna("-")  # model, paper, protocols, the rest


def _run_label(meta: dict[str, Any]) -> str:
    return f"{meta.get('preset')} {meta['run_id'][-6:]}"


LINE_KEYS = ["model", "method", "run"]


def _line_styles(data: pd.DataFrame) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Colour and label of each (model, method, run) line, in Table 1's model order: the model's colour
    (ODE-Net: its solver's), lighter for a further run of the same model and method (runs in the order
    of their labels)."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    seen: dict[tuple[str, str], int] = {}
    order = list(LABELS)
    keys = sorted(
        dict.fromkeys(zip(*(data[k] for k in LINE_KEYS))),
        key=lambda k: (order.index(k[0]) if k[0] in order else len(order), *k),
    )
    for model, method, run in keys:
        base = style.colour(method if model == "odenet" else model)
        repeat = seen[(model, method)] = seen.get((model, method), -1) + 1
        name = LABELS.get(model, model) + (f" ({method})" if model == "odenet" else "")
        out[(model, method, run)] = {
            "colour": style.lighter(base, min(0.25 * repeat, 0.6)) if repeat else base,
            "label": f"{name}, run {run}",
            "marker": "o",
        }
    return out


def _epoch_axis(ax: Any, epochs: pd.Series) -> None:
    """Ticks at the epochs run when they are few, else integer ticks."""
    from matplotlib.ticker import MaxNLocator

    if epochs.nunique() <= 16:
        style.value_ticks(ax, epochs.unique())
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


@style.figure_function
def draw_curves(data: pd.DataFrame) -> Figure:
    """Training loss and test error after each epoch, one line per model and run: log axes, geometric
    mean ×/÷ geometric sd over seeds (:func:`~nodebench.report.style.spread`).

    Arguments:
        data: rows ``model, method, run, seed, epoch, metric, value`` with metrics ``train_loss`` and
            ``test_error`` (%); ``method`` is the ODE-Net's solver (its colour), ``run`` a short label.

    Returns:
        The figure.
    """
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    lines = _line_styles(data)
    for ax, (metric, label) in zip(
        fig.subplots(1, 2), (("train_loss", "training loss"), ("test_error", "test error [%]"))
    ):
        part = _metric(data, metric)
        style.lines_with_bands(
            ax, style.group_bands(part, "epoch", "value", LINE_KEYS, lines.get, log=True), log=True
        )
        ax.set(xlabel="epoch", ylabel=label)
        ax.set_title(f"{label} after each epoch")
        _epoch_axis(ax, part["epoch"])
        ax.grid(alpha=0.3)
    handles = [style.handle(v["label"], v["colour"], marker="o", linestyle="-") for v in lines.values()]
    style.categorical_legend(fig, handles, "model, run", loc="outside right upper")
    return fig


@style.figure_function
def draw_nfe(wide: pd.DataFrame) -> Figure:
    """Figure 3d (NFE-forward per iteration over the epochs, from 0) and 3c (adjoint backward against
    forward NFE, one point per epoch and seed, shaded light to dark by epoch).

    Arguments:
        wide: rows ``model, method, run, seed, epoch, nfe_forward, nfe_backward`` (means per epoch).

    Returns:
        The figure.
    """
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_d, ax_c = fig.subplots(1, 2, width_ratios=[1.3, 1])
    lines = _line_styles(wide)
    style.lines_with_bands(ax_d, style.group_bands(wide, "epoch", "nfe_forward", LINE_KEYS, lines.get))
    ax_d.set(xlabel="epoch", ylabel="NFE forward per iteration")
    ax_d.set_title("Fig. 3d: NFE forward over training")
    style.from_zero(ax_d)
    _epoch_axis(ax_d, wide["epoch"])
    adjoint = wide[wide["nfe_backward"] > 0]
    epochs = sorted(adjoint["epoch"].unique())
    for key, part in adjoint.groupby(LINE_KEYS, sort=False):
        base = lines[key]["colour"]
        shade = style.shade_map(epochs, base)
        ax_c.scatter(
            part["nfe_forward"],
            part["nfe_backward"],
            color=[shade[e] for e in part["epoch"]],
            edgecolor=base,
            s=40,
        )
    top = max(adjoint["nfe_forward"].max(), adjoint["nfe_backward"].max(), 1) * 1.1
    ax_c.plot([0, top], [0, top], color=style.GUIDE, lw=0.8, ls=(0, (4, 2)), label="backward = forward")
    ax_c.plot(
        [0, top], [0, top / 2], color=style.PAPER, lw=1, ls=(0, (1, 1.5)), label="backward = forward / 2"
    )
    ax_c.set(
        xlim=(0, top), ylim=(0, top), xlabel="NFE forward per iteration", ylabel="NFE backward per iteration"
    )
    ax_c.set_aspect("equal", adjustable="box")
    ax_c.set_title("Fig. 3c: adjoint, per epoch")
    style.categorical_legend(ax_c, ax_c.get_lines(), loc="upper left")
    for ax in (ax_c, ax_d):
        ax.grid(alpha=0.3)
    handles = [style.handle(v["label"], v["colour"], marker="o", linestyle="-") for v in lines.values()]
    style.categorical_legend(fig, handles, "model, run", loc="outside right upper")
    if epochs:
        labels = [f"{e:g}" for e in epochs]
        style.categorical_legend(
            fig, style.shade_handles(labels), "epoch (3c shade)", loc="outside right lower"
        )
    return fig


def _figures(df: pd.DataFrame, metas: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """Training curves and Figure 3c/3d; returns the markdown lines linking them."""
    labels = {meta["run_id"]: _run_label(meta) for meta in metas}
    methods = {meta["run_id"]: (meta.get("config") or {}).get("method") or "dopri5" for meta in metas}
    stepped = df[df["step"] >= 0]
    data = stepped.assign(
        run=stepped["run_id"].map(labels),
        method=stepped["run_id"].map(methods),
        model=stepped["variant"],
        epoch=stepped["step"] + 1,
    )
    curves = data[data["metric"].isin(["train_loss", "test_error"])]
    _save(draw_curves(curves), out_dir, "mnist-curves.png")
    seeds = sorted(int(s) for s in curves["seed"].unique() if s >= 0)
    runs = ", ".join(f"`{m['run_id']}`" for m in metas)
    presets = ", ".join(dict.fromkeys(str(m.get("preset")) for m in metas))
    spread = (
        "lines: geometric mean, bands: ×/÷ one geometric sd over seeds (log axes)"
        if len(seeds) > 1
        else "one seed: no spread"
    )
    lines = [
        "![MNIST training loss and test error per epoch](figures/mnist-curves.png)",
        "",
        f"*Training loss (mean over the epoch's batches) and test error (all test images) after each "
        f"epoch, per model (colour; ODE-Net in its solver's colour, lighter for a second run); runs {runs}, "
        f"preset {presets}, seeds {', '.join(map(str, seeds))}; {spread}.*",
        "",
    ]

    nfe = data[data["metric"].isin(["nfe_forward", "nfe_backward"])]
    if nfe.empty:
        return lines + ["No NFE records (neither RK-Net nor ODE-Net was trained).", ""]
    wide = nfe.pivot_table(
        index=[*LINE_KEYS, "seed", "epoch"], columns="metric", values="value"
    ).reset_index()
    _save(draw_nfe(wide), out_dir, "mnist-nfe.png")
    seeds = sorted(int(s) for s in wide["seed"].unique() if s >= 0)
    return lines + [
        "![MNIST NFE: Figure 3d and 3c](figures/mnist-nfe.png)",
        "",
        "*Left (Fig. 3d): NFE of the ODE block per training iteration, averaged over each epoch, for "
        "RK-Net (fixed RK4 steps) and ODE-Net (its solver at rtol = atol = 1e-3), from 0. Right (Fig. 3c): "
        "ODE-Net's adjoint backward NFE against its forward NFE, one point per epoch (shade: light = "
        f"early), with y = x and the paper's y = x/2. Runs {runs}, preset {presets}, seeds "
        f"{', '.join(map(str, seeds))}; "
        + ("lines: mean, bands: ± sd over seeds" if len(seeds) > 1 else "one seed: no spread")
        + ". The four-panel Figure 3 with the tolerance sweep is in results/SUMMARY.md.*",
        "",
    ]


def _save(fig: Figure, out_dir: Path, name: str) -> None:
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "figures" / name, dpi=100)


def section(df: pd.DataFrame, metas: list[dict[str, Any]], out_dir: Path) -> str:
    """Table 1 per run, then the training curves and Figure 3c/3d of all runs.

    Arguments:
        df: records of the ``mnist`` runs.
        metas: their meta dicts.
        out_dir: the report folder; figures go to ``figures/``.

    Returns:
        Markdown.
    """
    lines = [
        "Paper values are Chen et al. (2018), Table 1, as published -- not measured here (160 epochs). "
        "Ours: test error after the last recorded epoch (mean ± sd over seeds; one seed shows no spread), "
        "exact parameter counts, process peak RSS "
        "during training (max over epochs; includes the data and the Python process), training time per "
        "epoch, and solver evaluations of the ODE block per training iteration: mean ± sd **over the "
        "epochs** of the run (not over seeds). The "
        "paper's NFE came from an implicit Adams solver; ours from dopri5 at rtol = atol = 1e-3, with the "
        "adjoint's seminorm error control, so NFE are not expected to match.",
        "",
    ]
    per_iteration = df[df["variant"] == ITERATIONS]
    df = df[df["variant"] != ITERATIONS]
    for meta in metas:
        run = df[df["run_id"] == meta["run_id"]]
        threads = (meta.get("config") or {}).get("threads")
        lines += [f"#### Table 1: run `{meta['run_id']}` ({meta.get('preset')}, {meta.get('device')})", ""]
        lines += [f"Torch threads while training: {threads} (the run's config).", ""]
        lines += [markdown_table(table1(run, meta), floatfmt=".4g") if not run.empty else "No records.", ""]
        under, load = load_state(meta)
        if under is None:
            timing = (
                "Timings: no load average was recorded for this run (it predates load recording); it ran "
                "beside other jobs on a shared machine, so read its times as taken under load."
            )
        else:
            timing = f"Timings: {load}."
        lines += [timing, ""]
    if df.empty:
        return "\n".join(lines)
    lines += _figures(df, metas, out_dir)
    lines += _iteration_figure(per_iteration, metas, out_dir)
    return "\n".join(lines)


ITERATIONS = "odenet/iterations"  # the variant of single training iterations (``nfe_every``)


def iteration_nfe(records: pd.DataFrame) -> pd.DataFrame:
    """ODE-Net's forward and backward NFE of single training iterations: rows ``seed``, ``x``
    (iteration), ``nfe_forward``, ``nfe_backward`` (empty without such records)."""
    rows = records[records["variant"] == ITERATIONS]
    if rows.empty:
        return pd.DataFrame(columns=["seed", "x", "nfe_forward", "nfe_backward"])
    wide = rows.pivot_table(index=["seed", "step"], columns="metric", values="value").reset_index()
    return wide.rename(columns={"step": "x"})


def training_text(config: dict[str, Any]) -> str:
    """The per-iteration protocol of a run, read from its config: epochs, lr, batch, solver, sampling."""
    epochs = config.get("epochs", "?")
    return (
        f"{epochs} epoch{'' if epochs == 1 else 's'}, lr {config.get('lr', '?')}, batch "
        f"{config.get('batch_size', '?')}, {config.get('method', 'dopri5')} at rtol = atol = "
        f"{config.get('tol', '?')}, adjoint with the seminorm, NFE of one iteration in every "
        f"{config.get('nfe_every', '?')}"
    )


@style.figure_function
def draw_iterations(runs: list[tuple[str, str, pd.DataFrame]]) -> Figure:
    """Figure 3d/3c from single training iterations, one colour per run's solver method.

    Arguments:
        runs: per run ``(label, method, rows)``, rows :func:`iteration_nfe` (``x``, ``nfe_forward``,
            ``nfe_backward``).

    Returns:
        The figure.
    """
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_d, ax_c = fig.subplots(1, 2, width_ratios=[1.3, 1])
    top, handles = 1.0, []
    for label, method, wide in runs:
        base = style.colour(method)
        ax_d.plot(wide["x"], wide["nfe_forward"], color=base, lw=1)
        ax_c.scatter(wide["nfe_forward"], wide["nfe_backward"], s=14, alpha=0.5, color=base)
        top = max(top, wide["nfe_forward"].max(), wide["nfe_backward"].max())
        handles.append(style.handle(label, base, marker="o", linestyle="-"))
    top *= 1.1
    ax_c.plot([0, top], [0, top], color=style.GUIDE, lw=0.8, ls=(0, (4, 2)), label="backward = forward")
    ax_c.plot(
        [0, top], [0, top / 2], color=style.PAPER, lw=1, ls=(0, (1, 1.5)), label="backward = forward / 2"
    )
    ax_c.set(xlim=(0, top), ylim=(0, top), xlabel="NFE forward", ylabel="NFE backward (adjoint)")
    ax_c.set_aspect("equal", adjustable="box")
    ax_c.set_title("Fig. 3c per training iteration")
    style.categorical_legend(ax_c, ax_c.get_lines(), loc="upper left")
    ax_d.set(xlabel="training iteration", ylabel="NFE forward")
    ax_d.set_title("Fig. 3d per training iteration")
    style.from_zero(ax_d)
    for ax in (ax_c, ax_d):
        ax.grid(alpha=0.3)
    style.categorical_legend(fig, handles, "solver (run)", loc="outside right upper")
    return fig


def _iteration_figure(df: pd.DataFrame, metas: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """Figure 3c/3d from single training iterations (``nfe_every``), one colour per run's solver."""
    if df.empty:
        return []
    said, runs = [], []
    for meta in metas:
        wide = iteration_nfe(df[df["run_id"] == meta["run_id"]])
        if wide.empty:
            continue
        config = meta.get("config") or {}
        method = config.get("method", "dopri5")
        runs.append((f"{method} ({meta['run_id'][-6:]})", method, wide))
        ratio = (wide["nfe_backward"] / wide["nfe_forward"]).median()
        said.append(
            f"{training_text(config)}: forward {wide['nfe_forward'].median():.0f}, backward "
            f"{wide['nfe_backward'].median():.0f} NFE per iteration, backward/forward {ratio:.2f} "
            f"(medians over {len(wide)} iterations, run `{meta['run_id']}`)"
        )
    _save(draw_iterations(runs), out_dir, "mnist-nfe-iterations.png")
    seeds = sorted(int(s) for s in df["seed"].unique() if s >= 0)
    return [
        "Figure 3c/3d per training iteration (ODE-Net alone, one run per solver): " + "; ".join(said) + ".",
        "",
        "![MNIST NFE per training iteration, by solver](figures/mnist-nfe-iterations.png)",
        "",
        "*Left: NFE of the ODE block in single training iterations (every recorded one), from 0. Right: the "
        "same iterations' adjoint backward NFE against forward NFE, with y = x and the paper's y = x/2. "
        f"Colour: the run's solver. Seed(s) {', '.join(map(str, seeds))}, every iteration drawn; no spread.*",
        "",
    ]
