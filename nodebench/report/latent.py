"""Report section of workload ``latent``: Table 2 beside the paper's, Figure-8-like plots, protocol studies.

Built from stored records only (see :mod:`nodebench.workloads.latent` for the metrics and the
trajectory encoding ``step = slot * TRAJ_STRIDE + i``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from nodebench.report._tables import markdown_table
from nodebench.workloads.latent import TRAJ_STRIDE

PAPER = {
    "rnn": {30: 0.3937, 50: 0.3202, 100: 0.1813},
    "latent_ode": {30: 0.1642, 50: 0.1502, 100: 0.1346},
}
PAPER_COUNTS = tuple(PAPER["latent_ode"])  # the observation counts of Table 2
LABELS = {"rnn": "RNN", "latent_ode": "Latent ODE"}
MAIN_PRESETS = ("smoke", "standard", "paper")
COLOURS = {"rnn": "tab:orange", "latent_ode": "tab:blue"}
OBS_POINTS = 100  # points in the observation window (the workload's); the rest are extrapolated
# figure data (Figure 8 trajectories and which test spirals they are): plotted, not tabulated
FIGURE_METRICS = (r"pred_[xy]", r"truth_[xy]", r"obs_[xy]", r"traj_spiral", r"traj_orient")
BOOKKEEPING = ("seeds", "obs_counts", "trajectory_spirals", "eval_every", "threads")


def _tagged(df: pd.DataFrame) -> pd.DataFrame:
    """Model records with ``model`` and ``n`` columns parsed from variants ``"<model>/n=<n>"``."""
    parts = df["variant"].str.extract(r"^(?P<model>[a-z_]+)/n=(?P<n>\d+)$")
    out = df.assign(model=parts["model"], n=pd.to_numeric(parts["n"]))
    return out[out["model"].isin(list(LABELS))].astype({"n": "int64"})


def _final(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (model, n, seed) the final (``step = -1``) value of ``metric``."""
    rows = df[(df["metric"] == metric) & (df["step"] == -1)]
    return rows[["model", "n", "seed", "value"]]


def _mean_std(values: pd.Series, fmt: str = ".4f") -> str:
    """``mean ± std (seeds)``; just the mean for one seed; ``-`` for none."""
    if values.empty:
        return "-"
    if len(values) == 1:
        return f"{values.iloc[0]:{fmt}} (1 seed)"
    return f"{values.mean():{fmt}} ± {values.std():{fmt}} ({len(values)})"


def _table2(tagged: pd.DataFrame, counts: list[int]) -> tuple[str, list[str]]:
    """Table 2 (ours beside the paper's) and the verdicts on the issue's targets."""
    rows = []
    for model in ("rnn", "latent_ode"):
        rows.append(
            {"model": LABELS[model], "source": "paper (Chen et al. 2018)"}
            | {f"{n}/100": f"{PAPER[model][n]:.4f}" if n in PAPER[model] else "-" for n in counts}
        )
        for source, text in (
            ("truth", "ours, vs noise-free truth"),
            ("noisy", "ours, vs noisy observations"),
        ):
            final = _final(tagged[tagged["model"] == model], f"rmse_extrap_{source}")
            rows.append(
                {"model": LABELS[model], "source": text}
                | {f"{n}/100": _mean_std(final[final["n"] == n]["value"]) for n in counts}
            )
    means = {
        (model, source): _final(tagged[tagged["model"] == model], f"rmse_extrap_{source}")
        .groupby("n")["value"]
        .mean()
        for model in LABELS
        for source in ("truth", "noisy")
    }
    verdicts = []
    for source in ("truth", "noisy"):
        ode, rnn = means[("latent_ode", source)], means[("rnn", source)]
        at_or_below = [
            f"n={n}: {'yes' if ode.get(n, float('inf')) <= PAPER['latent_ode'][n] else 'no'}"
            for n in counts
            if n in PAPER["latent_ode"]
        ]
        worse = all(rnn.get(n, float("-inf")) > ode.get(n, float("inf")) for n in counts)
        verdicts.append(
            f"- Against the {'noise-free truth' if source == 'truth' else 'noisy observations'}: latent ODE "
            f"mean at or below the paper's: {', '.join(at_or_below) or '-'}; RNN worse than the latent "
            f"ODE in every column: {'yes' if worse else 'no'}."
        )
    return markdown_table(pd.DataFrame(rows)), verdicts


def _details(tagged: pd.DataFrame, counts: list[int]) -> str:
    """Interpolation RMSE, NFE, times and selected iterations, mean ± std over seeds."""
    metrics = (
        ("rmse_interp_truth", "interp. RMSE vs truth", ".4f"),
        ("rmse_interp_noisy", "interp. RMSE vs noisy", ".4f"),
        ("nfe_eval", "NFE (test prediction)", ".0f"),
        ("selected_iteration", "selected iteration (validation)", ".0f"),
        ("time_per_iteration", "s per training iteration", ".3f"),
        ("train_time", "training time [s]", ".0f"),
    )
    rows = []
    for model in ("rnn", "latent_ode"):
        for metric, text, fmt in metrics:
            final = _final(tagged[tagged["model"] == model], metric)
            if final.empty:
                continue
            rows.append(
                {"model": LABELS[model], "quantity": text}
                | {f"{n}/100": _mean_std(final[final["n"] == n]["value"], fmt) for n in counts}
            )
    return markdown_table(pd.DataFrame(rows))


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


def _figure8(df: pd.DataFrame, n: int, split: int, path: Path, title: str) -> bool:
    """Figure-8-like panels (rows RNN and latent ODE, one column per recorded test spiral) for n."""
    truth = _points(df, "data", "truth")
    if truth.empty:
        return False
    from matplotlib.figure import Figure

    obs = _points(df, f"data/n={n}", "obs")
    orient = df[(df["variant"] == "data") & (df["metric"] == "traj_orient")].set_index("step")["value"]
    slots = sorted(truth["slot"].unique())
    models = [m for m in ("rnn", "latent_ode") if (df["variant"] == f"{m}/n={n}").any()]
    fig = Figure(figsize=(3.2 * len(slots), 3.0 * len(models)), layout="constrained")
    axes = fig.subplots(len(models), len(slots), squeeze=False)
    for row, model in enumerate(models):
        pred = _points(df, f"{model}/n={n}", "pred")
        for col, slot in enumerate(slots):
            ax = axes[row][col]
            t, o, p = truth[truth["slot"] == slot], obs[obs["slot"] == slot], pred[pred["slot"] == slot]
            ax.plot(t["x"], t["y"], color="0.6", lw=1, label="ground truth")
            ax.scatter(o["x"], o["y"], s=8, color="k", zorder=3, label=f"observations (n={n})")
            inside, beyond = p[p["i"] < split], p[p["i"] >= split - 1]
            ax.plot(inside["x"], inside["y"], color=COLOURS[model], lw=1.6, label="prediction")
            ax.plot(beyond["x"], beyond["y"], color=COLOURS[model], lw=1.6, ls="--", label="extrapolation")
            turn = "counter-clockwise" if orient.get(slot, 1) > 0 else "clockwise"
            ax.set_title(f"{LABELS[model]}, test spiral {slot} ({turn})", fontsize=9)
            ax.set_aspect("equal", adjustable="datalim")
            ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=100)
    return True


def _curves(tagged: pd.DataFrame, path: Path) -> bool:
    """Validation extrapolation RMSE against iteration, one panel per n (mean and sd over seeds)."""
    data = tagged[(tagged["metric"] == "val_rmse_extrap") & (tagged["step"] >= 0)]
    if data.empty:
        return False
    import seaborn as sns
    from matplotlib.figure import Figure

    counts = sorted(data["n"].unique())
    fig = Figure(figsize=(4.2 * len(counts), 3.3), layout="constrained")
    axes = fig.subplots(1, len(counts), squeeze=False)[0]
    for ax, n in zip(axes, counts):
        sns.lineplot(
            data=data[data["n"] == n].assign(model=lambda d: d["model"].map(LABELS)),
            x="step",
            y="value",
            hue="model",
            errorbar="sd",
            ax=ax,
        )
        ax.set_yscale("log")
        ax.set_title(f"n = {n}: validation extrapolation RMSE")
        ax.set_xlabel("iteration")
        ax.set_ylabel("RMSE vs truth")
    fig.savefig(path, dpi=100)
    return True


def _differences(config: dict[str, Any], reference: dict[str, Any]) -> str:
    """The protocol fields where ``config`` differs from ``reference``, as ``key=value`` text."""
    changed = [
        f"{key}={value}"
        for key, value in config.items()
        if key not in BOOKKEEPING and reference.get(key) != value
    ]
    return ", ".join(changed) or "(none)"


def _by_config(metas: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Runs grouped by config apart from the seeds (e.g. one run per seed), in order of first start."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for meta in sorted(metas, key=lambda m: m.get("started_at") or ""):
        config = {k: v for k, v in (meta.get("config") or {}).items() if k not in ("seeds", "threads")}
        groups.setdefault(json.dumps(config, sort_keys=True), []).append(meta)
    return list(groups.values())


def _studies(df: pd.DataFrame, metas: list[dict[str, Any]]) -> tuple[str, str]:
    """One row per config and n: extrapolation RMSE on validation and test per model, and the data scale.

    Returns:
        The table and the name of the reference its ``differs from`` column compares against.
    """
    tagged = _tagged(df)
    ordered = sorted(metas, key=lambda m: m.get("started_at") or "")
    mains = [m for m in ordered if m.get("preset") in MAIN_PRESETS]
    standards = [m for m in mains if m.get("preset") == "standard"]
    reference = (standards or mains or ordered)[-1]  # the latest standard run if any
    rows = []
    for group in _by_config(metas):
        ids = [meta["run_id"] for meta in group]
        run = tagged[tagged["run_id"].isin(ids)]
        data = df[df["run_id"].isin(ids) & (df["variant"] == "data")]
        scale = data[data["metric"] == "extrap_scale"]["value"]
        config = group[0].get("config") or {}
        for n in sorted(run["n"].unique()):
            row: dict[str, Any] = {
                "runs": ", ".join(ids),
                "preset (+ overrides)": group[0].get("preset"),
                "differs from the reference in": _differences(config, reference.get("config") or {}),
                "n": n,
            }
            for model in ("latent_ode", "rnn"):
                part = run[(run["model"] == model) & (run["n"] == n)]
                val = part[part["metric"] == "val_rmse_extrap"].groupby("seed")["value"]
                best = val.min() if config.get("select", True) else val.last()
                row[f"{LABELS[model]} val"] = _mean_std(best, ".3f")
                for source in ("truth", "noisy"):
                    final = _final(part, f"rmse_extrap_{source}")["value"]
                    row[f"{LABELS[model]} test vs {source}"] = _mean_std(final, ".3f")
            row["extrap. scale"] = f"{scale.mean():.2f}" if not scale.empty else "-"
            rows.append(row)
    return markdown_table(
        pd.DataFrame(rows)
    ), f"run `{reference['run_id']}` (preset {reference.get('preset')})"


def _table2_block(
    df: pd.DataFrame, group: list[dict[str, Any]], title: str, note: str, out_dir: Path
) -> list[str]:
    """Table 2, the interpolation / NFE / time details and the figures of one group of runs."""
    ids = [meta["run_id"] for meta in group]
    seeds = sorted({seed for meta in group for seed in meta.get("seeds") or []})
    statuses = sorted({str(meta.get("status")) for meta in group})
    tagged = _tagged(df[df["run_id"].isin(ids)])
    counts = sorted(tagged["n"].unique())
    table, verdicts = _table2(tagged, counts)
    lines = [f"#### Table 2, {title} (seeds {seeds}; runs {', '.join(ids)}; {', '.join(statuses)})", ""]
    if note:
        lines += [note, ""]
    lines += [
        "Predictive RMSE on the 100 extrapolation points of the test spirals: root of the mean "
        "squared error over spirals, points and both coordinates; ours is mean ± sample std over "
        "seeds (count in brackets). The paper's numbers are the paper's, on its unpublished protocol.",
        "",
        table,
        "",
        *verdicts,
        "",
        "Observation window (interpolation), NFE and times:",
        "",
        _details(tagged, counts),
        "",
    ]
    curves = f"figures/latent-{ids[0]}-val-curves.png"
    if _curves(tagged, out_dir / curves):
        lines += [f"![validation RMSE during training, runs {', '.join(ids)}]({curves})", ""]
    traced = df[df["run_id"].isin(ids) & (df["metric"] == "truth_x")]["run_id"]
    if not traced.empty:  # Figure 8 from the first run that recorded trajectories
        meta = next(meta for meta in group if meta["run_id"] == traced.iloc[0])
        run = df[df["run_id"] == meta["run_id"]]
        for n in counts:
            name = f"figures/latent-{meta['run_id']}-fig8-n{n}.png"
            title = f"Run {meta['run_id']}, seed {(meta.get('seeds') or ['?'])[0]}, n = {n}: test spirals"
            if _figure8(run, n, OBS_POINTS, out_dir / name, title):
                lines += [f"![Figure 8 style, n={n}, run {meta['run_id']}]({name})", ""]
    return lines


def section(df: pd.DataFrame, metas: list[dict[str, Any]], out_dir: Path) -> str:
    """Table 2 and Figure 8 per main preset (runs pooled over seeds) and per protocol variant that covers
    every n of Table 2, then every run's extrapolation RMSE."""
    lines: list[str] = []
    groups = _by_config([meta for meta in metas if meta.get("preset") in MAIN_PRESETS])
    latest = {group[0]["preset"]: group[0].get("config") or {} for group in groups}  # last started wins
    groups.sort(key=lambda group: (group[0].get("config") or {}) != latest[group[0]["preset"]])
    for group in groups:
        preset = group[0]["preset"]
        differs = _differences(group[0].get("config") or {}, latest[preset])
        note = (
            f"An earlier configuration of this preset: it differs from the latest {preset} run in {differs}."
            if differs != "(none)"
            else ""
        )
        lines += _table2_block(df, group, f"preset {preset}", note, out_dir)
    reference = latest.get("standard") or next(iter(latest.values()), None)
    for group in _by_config([meta for meta in metas if meta.get("preset") not in MAIN_PRESETS]):
        counts = {n for meta in group for n in (meta.get("config") or {}).get("obs_counts") or []}
        if reference is None or not set(PAPER_COUNTS) <= counts:
            continue  # a study of part of the table: in the studies table below
        differs = _differences(group[0].get("config") or {}, reference)
        note = (
            f"A protocol variant, not the card: it differs from the standard preset in {differs}. "
            "Each run's meta.json holds its exact command."
        )
        lines += _table2_block(df, group, f"protocol variant ({differs})", note, out_dir)
    table, reference = _studies(df, metas)
    lines += [
        "#### Extrapolation RMSE of every run (protocol studies)",
        "",
        "Each exploratory run is the workload with the overrides in its preset label; runs that differ "
        "only in their seeds share a row. The third column lists the protocol fields in which the "
        f"config differs from the reference, {reference} (seeds, n and recorded trajectories aside). "
        "`val`: the best validation extrapolation RMSE (against the truth) seen in training, which "
        "selects the evaluated parameters; `test`: the test spirals. `extrap. scale`: RMS distance of "
        "the test truth from its spiral centre over the extrapolation window, per coordinate.",
        "",
        table,
        "",
    ]
    return "\n".join(lines)
