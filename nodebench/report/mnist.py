"""MNIST section: paper-style Table 1 and Figure 3c/3d, from the stored records of ``mnist`` runs only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from nodebench.claims.evidence import Spec, footprint, load_state, select
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
    return pd.DataFrame(rows).fillna("-")


def _run_label(meta: dict[str, Any]) -> str:
    return f"{meta.get('preset')} {meta['run_id'][-6:]}"


def _figures(df: pd.DataFrame, metas: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """Training curves and Figure 3c/3d; returns the markdown lines linking them."""
    import seaborn as sns
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    labels = {meta["run_id"]: _run_label(meta) for meta in metas}
    stepped = df[df["step"] >= 0]
    data = stepped.assign(
        run=stepped["run_id"].map(labels),
        model=stepped["variant"].map(lambda v: LABELS.get(v, v)),
        epoch=stepped["step"] + 1,
    )
    lines = []
    style = "run" if data["run"].nunique() > 1 else None

    fig = Figure(figsize=(10, 3.5), layout="constrained")
    for ax, (metric, title) in zip(
        fig.subplots(1, 2), (("train_loss", "training loss"), ("test_error", "test error [%]"))
    ):
        sns.lineplot(
            data=_metric(data, metric),
            x="epoch",
            y="value",
            hue="model",
            style=style,
            marker="o",
            errorbar="sd",
            ax=ax,
        )
        ax.set(xlabel="epoch", ylabel=title, yscale="log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.savefig(out_dir / "figures" / "mnist-curves.png", dpi=100)
    seeds = sorted(int(s) for s in df["seed"].unique() if s >= 0)
    runs = ", ".join(f"`{m['run_id']}`" for m in metas)
    presets = ", ".join(dict.fromkeys(str(m.get("preset")) for m in metas))
    spread = "lines: mean, bands: ± sd over seeds" if len(seeds) > 1 else "one seed: no spread"
    lines += [
        "![MNIST training loss and test error per epoch](figures/mnist-curves.png)",
        "",
        f"*Training loss (mean over the epoch's batches) and test error (all test images) after each "
        f"epoch, per model; runs {runs}, preset {presets}, seeds {', '.join(map(str, seeds))}; {spread}.*",
        "",
    ]

    nfe = data[data["metric"].isin(["nfe_forward", "nfe_backward"])]
    if nfe.empty:
        return lines + ["No NFE records (neither RK-Net nor ODE-Net was trained).", ""]
    wide = nfe.pivot_table(index=["run", "model", "seed", "epoch"], columns="metric", values="value")
    wide = wide.reset_index()
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_d, ax_c = fig.subplots(1, 2)
    sns.lineplot(
        data=wide, x="epoch", y="nfe_forward", hue="model", style=style, marker="o", errorbar="sd", ax=ax_d
    )
    ax_d.set(xlabel="epoch", ylabel="NFE forward per iteration", title="Fig. 3d: NFE-forward over training")
    ax_d.xaxis.set_major_locator(MaxNLocator(integer=True))
    adjoint = wide[wide["nfe_backward"] > 0]
    if not adjoint.empty:
        sns.scatterplot(data=adjoint, x="nfe_forward", y="nfe_backward", hue="epoch", style=style, ax=ax_c)
        top = max(adjoint["nfe_forward"].max(), adjoint["nfe_backward"].max()) * 1.1
        ax_c.plot([0, top], [0, top], color="grey", lw=0.8, ls="--", label="backward = forward")
        ax_c.plot([0, top], [0, top / 2], color="grey", lw=0.8, ls=":", label="backward = forward / 2")
        ax_c.set(xlim=(0, top), ylim=(0, top))
        ax_c.legend(fontsize="small")
    ax_c.set(
        xlabel="NFE forward per iteration",
        ylabel="NFE backward per iteration",
        title="Fig. 3c: adjoint models, one point per epoch",
    )
    fig.savefig(out_dir / "figures" / "mnist-nfe.png", dpi=100)
    return lines + [
        "![MNIST NFE: Figure 3d and 3c](figures/mnist-nfe.png)",
        "",
        "*Left (Fig. 3d): NFE of the ODE block per training iteration, averaged over each epoch, for "
        "RK-Net (fixed RK4 steps) and ODE-Net (dopri5, rtol = atol = 1e-3). Right (Fig. 3c): ODE-Net's "
        "adjoint backward NFE against its forward NFE, one point per epoch, with y = x and the paper's "
        f"y = x/2. Runs {runs}, preset {presets}, seeds {', '.join(map(str, seeds))}; {spread}. The "
        "four-panel Figure 3 with the tolerance sweep is in results/SUMMARY.md.*",
        "",
    ]


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


def _iteration_figure(df: pd.DataFrame, metas: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """Figure 3c/3d from single training iterations (``nfe_every``), one colour per run's solver."""
    if df.empty:
        return []
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_d, ax_c = fig.subplots(1, 2)
    said, top = [], 1.0
    for meta in metas:
        wide = iteration_nfe(df[df["run_id"] == meta["run_id"]])
        if wide.empty:
            continue
        config = meta.get("config") or {}
        label = f"{config.get('method', 'dopri5')} ({meta['run_id'][-6:]})"
        ax_d.plot(wide["x"], wide["nfe_forward"], lw=1, label=label)
        ax_c.scatter(wide["nfe_forward"], wide["nfe_backward"], s=12, alpha=0.5, label=label)
        top = max(top, wide["nfe_forward"].max(), wide["nfe_backward"].max())
        ratio = (wide["nfe_backward"] / wide["nfe_forward"]).median()
        said.append(
            f"{training_text(config)}: forward {wide['nfe_forward'].median():.0f}, backward "
            f"{wide['nfe_backward'].median():.0f} NFE per iteration, backward/forward {ratio:.2f} "
            f"(medians over {len(wide)} iterations, run `{meta['run_id']}`)"
        )
    top *= 1.1
    ax_c.plot([0, top], [0, top], color="grey", lw=0.8, ls="--", label="backward = forward")
    ax_c.plot([0, top], [0, top / 2], color="black", lw=0.8, ls=":", label="backward = forward / 2")
    ax_c.set(xlim=(0, top), ylim=(0, top), xlabel="NFE forward", ylabel="NFE backward (adjoint)")
    ax_c.set_title("Fig. 3c per training iteration")
    ax_d.set(xlabel="training iteration", ylabel="NFE forward", title="Fig. 3d per training iteration")
    for ax in (ax_c, ax_d):
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    fig.savefig(out_dir / "figures" / "mnist-nfe-iterations.png", dpi=100)
    return [
        "Figure 3c/3d per training iteration (ODE-Net alone, one run per solver): " + "; ".join(said) + ".",
        "",
        "![MNIST NFE per training iteration, by solver](figures/mnist-nfe-iterations.png)",
        "",
        "*Left: NFE of the ODE block in single training iterations (every recorded one). Right: the same "
        "iterations' adjoint backward NFE against forward NFE, with y = x and the paper's y = x/2. One seed "
        "per run: no spread.*",
        "",
    ]
