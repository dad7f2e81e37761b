"""``results/SUMMARY.md``: one row per claim of the paper (and of the seed slides), from stored records only.

Each claim names the workload whose runs can support it, the paper's value and a rule that turns our
records into a value and a verdict: **reproduced**, **partly** or **not** (with the reason in a few
words), or **not run** when no complete run of a citable preset (``paper`` or ``standard``) exists.
Like every report module it reads records and meta only: it imports no model and no workload.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nodebench.measure.provenance import utc_now
from nodebench.report import mnist as mnist_report
from nodebench.report._load import load_state
from nodebench.report._tables import markdown_table
from nodebench.schema import latent as latent_schema
from nodebench.schema import mnist as mnist_schema
from nodebench.store import load_runs, read_meta, resolve_run_dirs

#: Presets a claim may rest on, most complete first: smoke and exploratory runs are plumbing checks.
CITABLE_PRESETS = ("paper", "standard")
REPRODUCED, PARTLY, NOT, NOT_RUN = "reproduced", "partly", "not", "not run"
#: A measured value within this factor of the paper's reproduces it; within ``PARTLY_FACTOR``, partly.
CLOSE_FACTOR = 1.25
PARTLY_FACTOR = 2.0

_MNIST_LABELS = {"mlp": ("1-layer MLP", "-"), "resnet": ("ResNet", "O(L)"), "rknet": ("RK-Net", "O(L~)")}
_MNIST_LABELS["odenet"] = ("ODE-Net", "O(1)")
#: Chen et al. (2018) Table 1 from the mnist schema (label, test error %, parameters in millions, memory).
PAPER_TABLE1 = {
    model: (
        label,
        mnist_schema.PAPER_TABLE1[model]["test_error_pct"],
        mnist_schema.PAPER_TABLE1[model]["params_millions"],
        memory,
    )
    for model, (label, memory) in _MNIST_LABELS.items()
}
#: Which variant of the memory workload measures each Table 1 model's memory class.
MEMORY_MODE = {"resnet": "resnet", "rknet": "nodebench-direct", "odenet": "nodebench-adjoint"}
#: Chen et al. (2018) Table 2: predictive RMSE on 100 extrapolated points, by observed points n.
PAPER_TABLE2 = {
    "rnn": ("RNN", latent_schema.PAPER_TABLE2["rnn"]),
    "latent_ode": ("Latent ODE", latent_schema.PAPER_TABLE2["latent_ode"]),
}
#: Memory slope (bytes per step) below this fraction of direct backpropagation's counts as flat, O(1).
FLAT_FRACTION = 0.01


@dataclass(frozen=True)
class Evidence:
    """The citable runs of one workload: records of the chosen (run, seed) pairs and the runs' meta.

    Attributes:
        records: tidy records (``seed = -1`` rows of a chosen run are kept).
        metas: meta dicts of the runs that contribute, oldest first.
        preset: the preset they ran (``None``: no citable run).
    """

    records: pd.DataFrame
    metas: list[dict[str, Any]]
    preset: str | None

    @property
    def empty(self) -> bool:
        return not self.metas

    def seeds(self, rows: pd.DataFrame | None = None) -> list[int]:
        rows = self.records if rows is None else rows
        return sorted(int(s) for s in rows["seed"].unique() if s >= 0)

    def run_ids(self, rows: pd.DataFrame | None = None) -> list[str]:
        rows = self.records if rows is None else rows
        return list(dict.fromkeys(rows["run_id"]))


@dataclass(frozen=True)
class Row:
    """One line of the summary."""

    claim: str
    paper: str
    ours: str
    verdict: str
    why: str
    preset: str = "-"
    seeds: str = "-"
    runs: str = "-"


def select(
    records: pd.DataFrame,
    metas: list[dict[str, Any]],
    workload: str,
    presets: tuple[str, ...] = CITABLE_PRESETS,
) -> Evidence:
    """The runs a claim about ``workload`` rests on.

    Complete runs of the first of ``presets`` that has any (default: the citable presets), of the
    configuration of its latest run (seeds and threads aside: an earlier configuration of the preset
    is another protocol, not more seeds of this one); where several runs hold the same seed, the
    latest (by run id, which starts with its UTC start time) wins, so a rerun supersedes an older run
    and runs of further seeds add to it. A run that did not complete contributes the seeds listed in
    its ``finished_seeds`` (every planned unit of the seed journalled; set by :func:`build_summary`).
    """
    candidates = [
        m for m in metas if m.get("workload") == workload and _seeds_of(m) and m.get("preset") in presets
    ]
    for preset in presets:
        chosen = sorted((m for m in candidates if m.get("preset") == preset), key=lambda m: m["run_id"])
        if chosen:
            break
    else:
        return Evidence(records.iloc[0:0], [], None)

    def protocol(meta: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in (meta.get("config") or {}).items() if k not in ("seeds", "threads")}

    chosen = [m for m in chosen if protocol(m) == protocol(chosen[-1])]
    owner: dict[int, str] = {}
    for meta in chosen:
        for seed in _seeds_of(meta):
            owner[int(seed)] = meta["run_id"]
    keep_runs = set(owner.values())
    rows = records[records["run_id"].isin(keep_runs)]
    mask = rows["seed"].map(lambda s: s < 0) | pd.Series(
        [owner.get(int(s)) == r for s, r in zip(rows["seed"], rows["run_id"])], index=rows.index, dtype=bool
    )
    return Evidence(
        rows[mask].reset_index(drop=True), [m for m in chosen if m["run_id"] in keep_runs], preset
    )


def _seeds_of(meta: dict[str, Any]) -> list[int]:
    """The seeds a run can be cited for: all of a complete run's, an unfinished run's finished ones."""
    if meta.get("status") == "complete":
        return [int(s) for s in meta.get("seeds") or []]
    return [int(s) for s in meta.get("finished_seeds") or []]


def _final(rows: pd.DataFrame, metric: str) -> pd.Series:
    """Per seed, the value of ``metric`` at its last recorded step."""
    data = rows[rows["metric"] == metric].sort_values("step", kind="stable")
    return data.groupby("seed")["value"].last()


def _mean_sd(values: pd.Series, fmt: str) -> str:
    text = format(values.mean(), fmt)
    return text + (f" ± {values.std():{fmt}}" if len(values) > 1 else "")


def _seeds_text(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds)) if seeds else "-"


def _ratio_verdict(ours: float, paper: float) -> str:
    """``reproduced`` within :data:`CLOSE_FACTOR` of the paper (either way), ``partly`` within
    :data:`PARTLY_FACTOR`, else ``not``."""
    if not (np.isfinite(ours) and ours > 0 and paper > 0):
        return NOT
    factor = max(ours / paper, paper / ours)
    return REPRODUCED if factor <= CLOSE_FACTOR else PARTLY if factor <= PARTLY_FACTOR else NOT


def _row(claim: str, paper: str, evidence: Evidence, rows: pd.DataFrame | None = None, **fields: str) -> Row:
    """A row with preset, seeds and runs filled in from ``evidence`` (restricted to ``rows``)."""
    return Row(
        claim=claim,
        paper=paper,
        preset=evidence.preset or "-",
        seeds=_seeds_text(evidence.seeds(rows)),
        runs=", ".join(f"`{r}`" for r in evidence.run_ids(rows)) or "-",
        **fields,
    )


def _not_run(claim: str, paper: str, workload: str, detail: str = "") -> Row:
    why = detail or f"no complete `{workload}` run at a citable preset ({' or '.join(CITABLE_PRESETS)})"
    return Row(claim=claim, paper=paper, ours=NOT_RUN, verdict=NOT_RUN, why=why)


# ---- claims -------------------------------------------------------------------------------------------


def _memory_class(memory: Evidence, mode: str) -> tuple[str | None, float | None]:
    """``O(1)``/growing memory class of a memory-workload mode from its saved-for-backward slope."""
    data = memory.records[memory.records["metric"] == "saved_bytes"]
    fits = {}
    for variant, group in data.groupby("variant"):
        if group["step"].nunique() > 1:
            fits[variant] = float(np.polyfit(group["step"].astype(float), group["value"], 1)[0])
    if mode not in fits or "nodebench-direct" not in fits or fits["nodebench-direct"] <= 0:
        return None, None
    relative = fits[mode] / fits["nodebench-direct"]
    return ("O(1)" if abs(relative) < FLAT_FRACTION else "grows with L"), relative


def table1(evidence: dict[str, Evidence]) -> list[Row]:
    """Table 1: per model, test error, parameter count and memory class."""
    mnist, memory = evidence["mnist"], evidence["memory"]
    rows = []
    for model, (label, error, params_m, memory_class) in PAPER_TABLE1.items():
        claim = f"Table 1, {label}: test error, params, memory"
        paper = f"{error:.2f}%, {params_m:.2f}M, {memory_class}"
        records = mnist.records[mnist.records["variant"] == model] if not mnist.empty else None
        if records is None or records.empty:
            rows.append(_not_run(claim, paper, "mnist"))
            continue
        errors = _final(records, "test_error")
        params = records.loc[records["metric"] == "params", "value"]
        epochs = int(records["step"].max()) + 1
        ours_mem, mem_ok = "-", True
        if model in MEMORY_MODE:
            found, relative = _memory_class(memory, MEMORY_MODE[model]) if not memory.empty else (None, None)
            if found is None:
                ours_mem, mem_ok = "memory not run", False
            else:
                ours_mem = f"{found} (slope {relative:.2f} x direct's)"
                mem_ok = (found == "O(1)") == (memory_class == "O(1)")
        verdict = _ratio_verdict(float(errors.mean()), error)
        if verdict == REPRODUCED and not mem_ok:
            verdict = PARTLY
        n_params = int(params.iloc[0]) if not params.empty else 0
        reasons = [f"{epochs} of the paper's 160 epochs"]
        reasons.append(f"{len(errors)} seed{'s' if len(errors) != 1 else ''}")
        if not mem_ok:
            reasons.append("memory class differs or was not measured")
        if n_params and abs(n_params / 1e6 - params_m) > 0.005:
            reasons.append(
                f"params {100 * (n_params / 1e6 / params_m - 1):+.0f}% (same architecture as torchdiffeq's)"
            )
        row = _row(
            claim,
            paper,
            mnist,
            records,
            ours=f"{_mean_sd(errors, '.2f')}%, {n_params / 1e6:.3f}M, {ours_mem}",
            verdict=verdict,
            why="; ".join(reasons),
        )
        if model in MEMORY_MODE and not memory.empty:
            row = dataclasses.replace(row, runs=", ".join([row.runs, *(f"`{r}`" for r in memory.run_ids())]))
        rows.append(row)
    return rows


def table2(evidence: dict[str, Evidence]) -> list[Row]:
    """Table 2: extrapolation RMSE per model and n, and the ordering (latent ODE below RNN)."""
    latent = evidence["latent"]
    rows, means = [], {}
    # the paper's RNN: the tanh RNN with the time-gap input where it ran, else earlier runs' baseline
    tanh = not latent.empty and latent.records["variant"].str.startswith("rnn_tanh/").any()
    variant_of = {"rnn": "rnn_tanh" if tanh else "rnn", "latent_ode": "latent_ode"}
    for model, (label, paper_values) in PAPER_TABLE2.items():
        for n, paper_value in paper_values.items():
            claim = f"Table 2, {label}, n={n}: extrapolation RMSE"
            records = (
                latent.records[latent.records["variant"] == f"{variant_of[model]}/n={n}"]
                if not latent.empty
                else None
            )
            finals = None if records is None else records[(records["metric"] == "rmse_extrap_truth")]
            if finals is None or finals.empty:
                rows.append(_not_run(claim, f"{paper_value:.4f}", "latent"))
                continue
            values = finals.groupby("seed")["value"].last()
            means[(model, n)] = float(values.mean())
            mean = means[(model, n)]
            verdict = _ratio_verdict(mean, paper_value)
            why = "vs noise-free truth on our spiral card; the paper's spiral scale is unpublished"
            rows.append(
                _row(
                    claim,
                    f"{paper_value:.4f}",
                    latent,
                    finals,
                    ours=_mean_sd(values, ".4f"),
                    verdict=verdict,
                    why=f"{why} ({max(mean / paper_value, paper_value / mean):.1f}x off)",
                )
            )
    counts = list(PAPER_TABLE2["latent_ode"][1])
    claim, paper = "Table 2: latent ODE beats RNN at every n", "yes (all 3 n)"
    if not all((m, n) in means for m in PAPER_TABLE2 for n in counts):
        rows.append(_not_run(claim, paper, "latent", "not every model and n has a citable run"))
    else:
        wins = [n for n in counts if means[("latent_ode", n)] < means[("rnn", n)]]
        verdict = REPRODUCED if len(wins) == len(counts) else PARTLY if wins else NOT
        lost = [n for n in counts if n not in wins]
        rows.append(
            _row(
                claim,
                paper,
                latent,
                latent.records[latent.records["metric"] == "rmse_extrap_truth"],
                ours=f"at n = {', '.join(map(str, wins)) or 'none'}",
                verdict=verdict,
                why="mean over seeds" + (f"; RNN ahead at n = {', '.join(map(str, lost))}" if lost else ""),
            )
        )
    claim = "Table 2: ratio latent ODE / RNN at n = 30/50/100"
    paper_ratio = {n: PAPER_TABLE2["latent_ode"][1][n] / PAPER_TABLE2["rnn"][1][n] for n in counts}
    paper_text = "/".join(f"{paper_ratio[n]:.2f}" for n in counts)
    finals = latent.records[latent.records["metric"] == "rmse_extrap_truth"] if not latent.empty else None
    per_seed = {}
    if finals is not None:
        for n in counts:
            ode = _final(finals[finals["variant"] == f"latent_ode/n={n}"], "rmse_extrap_truth")
            rnn = _final(finals[finals["variant"] == f"{variant_of['rnn']}/n={n}"], "rmse_extrap_truth")
            per_seed[n] = (ode / rnn).dropna()
    if not per_seed or any(r.empty for r in per_seed.values()):
        rows.append(_not_run(claim, paper_text, "latent", "not every model and n has a citable run"))
    else:
        order = {NOT: 0, PARTLY: 1, REPRODUCED: 2}
        verdict = min((_ratio_verdict(per_seed[n].mean(), paper_ratio[n]) for n in counts), key=order.get)
        rows.append(
            _row(
                claim,
                paper_text,
                latent,
                finals,
                ours="/".join(f"{per_seed[n].mean():.2f}" for n in counts),
                verdict=verdict,
                why="ratio per seed (same data set), mean over seeds; scale-free, unlike the raw RMSE",
            )
        )
    return rows


def _rank_corr(x: pd.Series, y: pd.Series) -> float:
    """Spearman rank correlation (numpy only)."""
    return float(np.corrcoef(x.rank().to_numpy(), y.rank().to_numpy())[0, 1])


def _sweep_rows(
    ev: Evidence, prefix: str, model: str, workload: str, task: tuple[str, str], optional: bool = False
) -> list[Row]:
    """Figure 3a/3b rows from one tolerance sweep (variants starting with ``prefix``) on ``model``.

    Where the records hold no such sweep: *not run* rows, or none if the sweep is ``optional``.
    """
    claims = (
        (f"Figure 3a: NFE vs numerical error ({model})", "tighter tolerance: more NFE, less error"),
        (f"Figure 3b: NFE vs wall time ({model})", "time grows with NFE"),
    )
    if ev.empty:
        return (
            [] if optional else [_not_run(c, p, workload, f"no complete {workload} run") for c, p in claims]
        )
    data = ev.records[ev.records["variant"].str.startswith(prefix)]
    wide = data.pivot_table(index=["variant", "seed", "step"], columns="metric", values="value").reset_index()
    if wide.empty or not {"tol", "nfe_forward", "error_rms"} <= set(wide.columns):
        if optional:
            return []
        return [_not_run(c, p, workload, "the run holds no nodebench sweep") for c, p in claims]
    rho_nfe = _rank_corr(wide["tol"], wide["nfe_forward"])
    rho_err = _rank_corr(wide["tol"], wide["error_rms"])
    verdict = REPRODUCED if rho_nfe <= -0.8 and rho_err >= 0.8 else PARTLY if rho_err >= 0.8 else NOT
    tols = wide["tol"]
    task_metric, task_label = task
    task_text = ""
    if task_metric in wide:
        low, high = wide[task_metric].min(), wide[task_metric].max()
        task_text = f"; {task_label} " + (
            f"{low:.3g} at every tol" if low == high else f"{low:.3g}-{high:.3g}"
        )
    rows = [
        _row(
            *claims[0],
            ev,
            data,
            ours=(
                f"{int(wide['nfe_forward'].min())}-{int(wide['nfe_forward'].max())} NFE for error "
                f"{wide['error_rms'].max():.1e}-{wide['error_rms'].min():.1e} "
                f"over tol {tols.max():.0e}-{tols.min():.0e}{task_text}"
            ),
            verdict=verdict,
            why=f"rank corr. tol~NFE {rho_nfe:.2f}, tol~error {rho_err:.2f}",
        )
    ]
    if "time_forward" not in wide:
        rows.append(_not_run(*claims[1], workload, "no forward times recorded"))
    else:
        rho_t = _rank_corr(wide["nfe_forward"], wide["time_forward"])
        per = (wide["time_forward"] / wide["nfe_forward"]).median()
        rows.append(
            _row(
                *claims[1],
                ev,
                data,
                ours=f"rank corr. NFE~time {rho_t:.2f}; {per * 1e3:.2f} ms per evaluation (median)",
                verdict=REPRODUCED if rho_t >= 0.8 else PARTLY if rho_t > 0 else NOT,
                why="CPU timings" + _load_note(ev.metas),
            )
        )
    return rows


def figure3ab(evidence: dict[str, Evidence]) -> list[Row]:
    """Figure 3a/3b from tolerance sweeps: NFE trades against numerical error, time follows NFE.

    On the trained MNIST ODE-Net (the paper's model; tolerance preset ``mnist``) and on the spiral-demo
    model of the tolerance workload's ``standard`` preset.
    """
    mnist = [
        row
        for method, label in (("dopri5", "MNIST ODE-Net"), ("adams", "MNIST ODE-Net, adams"))
        for row in _sweep_rows(
            evidence["tolerance_mnist"],
            f"{MNIST_SWEEP}/nodebench/{method}",
            label,
            "`tolerance` (preset `mnist`)",
            ("test_error", "test error %"),
            optional=method != "dopri5",
        )
    ]
    return mnist + _sweep_rows(
        evidence["tolerance"], "nodebench/", "spiral-demo model", "tolerance", ("task_mse", "task MSE")
    )


def figure3cd(evidence: dict[str, Evidence]) -> list[Row]:
    """Figure 3c (backward NFE about half the forward) and 3d (forward NFE rises over training)."""
    mnist, spiral = evidence["mnist"], evidence["spiral"]
    c_claim, c_paper = "Figure 3c: NFE backward vs forward (MNIST ODE-Net)", "backward ≈ forward / 2"
    d_claim, d_paper = "Figure 3d: NFE forward over training (MNIST ODE-Net)", "rises with training"
    rows = []
    odenet = mnist.records[mnist.records["variant"] == "odenet"] if not mnist.empty else None
    if odenet is None or not (odenet["metric"] == "nfe_backward").any():
        rows += [_not_run(c_claim, c_paper, "mnist"), _not_run(d_claim, d_paper, "mnist")]
    else:
        wide = odenet.pivot_table(index=["seed", "step"], columns="metric", values="value").reset_index()
        ratio = wide["nfe_backward"] / wide["nfe_forward"]
        median = float(ratio.median())
        verdict = REPRODUCED if 0.4 <= median <= 0.6 else PARTLY if median < 0.9 else NOT
        rows.append(
            _row(
                c_claim,
                c_paper,
                mnist,
                odenet,
                ours=f"backward/forward {median:.2f} (median over epochs, "
                f"range {ratio.min():.2f}-{ratio.max():.2f})",
                verdict=verdict,
                why="dopri5 with the seminorm, not the paper's implicit Adams"
                + ("; backward about as costly as forward" if median >= 0.9 else ""),
            )
        )
        first = wide.sort_values("step").groupby("seed").first()["nfe_forward"]
        last = wide.sort_values("step").groupby("seed").last()["nfe_forward"]
        epochs = int(wide["step"].max()) + 1
        rises = bool((last > first).all())
        rows.append(
            _row(
                d_claim,
                d_paper,
                mnist,
                odenet,
                ours=f"{first.mean():.1f} -> {last.mean():.1f} per iteration over {epochs} epochs",
                verdict=REPRODUCED if rises else NOT,
                why=f"{epochs} of 160 epochs; {len(first)} seed{'s' if len(first) != 1 else ''}",
            )
        )
    for method in FIGURE3_METHODS:  # per training iteration, ODE-Net with each solver (preset figure3)
        rows += _figure3c_per_iteration(evidence[f"mnist_figure3_{method}"], method, c_paper)
    # the same ratio where the adjoint runs over many output times: the spiral examples
    s_claim = "Figure 3c on the spiral examples (adjoint, dopri5)"
    adjoint = (
        spiral.records[spiral.records["variant"].str.fullmatch(r"example[12]/adjoint/dopri5")]
        if not spiral.empty
        else None
    )
    if adjoint is None or adjoint.empty:
        rows.append(_not_run(s_claim, c_paper, "spiral"))
    else:
        per_seed = adjoint.groupby(["variant", "seed", "metric"])["value"].mean().unstack("metric")
        ratio = per_seed["nfe_backward"] / per_seed["nfe_forward"]
        rows.append(
            _row(
                s_claim,
                c_paper,
                spiral,
                adjoint,
                ours=f"backward/forward {ratio.min():.1f}-{ratio.max():.1f} (mean over training)",
                verdict=NOT if ratio.min() >= 1 else PARTLY,
                why="the backward solve lands on each of up to 32 observation times per segment (at least "
                "one step per interval), the forward passes them with dense output",
            )
        )
    return rows


def _iteration_nfe(ev: Evidence) -> pd.DataFrame:
    return mnist_report.iteration_nfe(ev.records)


def _training_text(ev: Evidence) -> str:
    return mnist_report.training_text((ev.metas[-1].get("config") or {}) if ev.metas else {})


def _figure3c_per_iteration(ev: Evidence, method: str, paper: str) -> list[Row]:
    """Figure 3c from single iterations of ODE-Net trained with ``method`` (no row without a run)."""
    wide = _iteration_nfe(ev)
    if wide.empty or "nfe_backward" not in wide:
        return []
    ratio = wide["nfe_backward"] / wide["nfe_forward"]
    median = float(ratio.median())
    claim = f"Figure 3c per iteration: ODE-Net trained with {method}"
    return [
        _row(
            claim,
            paper,
            ev,
            ev.records[ev.records["variant"] == mnist_report.ITERATIONS],
            ours=f"backward/forward {median:.2f} (median of {len(wide)} iterations, "
            f"range {ratio.min():.2f}-{ratio.max():.2f}); forward {wide['nfe_forward'].median():.0f}, "
            f"backward {wide['nfe_backward'].median():.0f} NFE",
            verdict=REPRODUCED if 0.4 <= median <= 0.6 else PARTLY if median < 0.9 else NOT,
            why=f"nodebench, {_training_text(ev)}"
            + ("; backward about as costly as forward" if median >= 0.9 else ""),
        )
    ]


def memory_claim(evidence: dict[str, Evidence]) -> list[Row]:
    """Adjoint memory O(1) in depth, direct backpropagation and ResNet O(L)."""
    memory = evidence["memory"]
    claim, paper = "Memory: adjoint O(1) vs backprop O(L) in depth", "O(1) vs O(L)"
    if memory.empty:
        return [_not_run(claim, paper, "memory")]
    adjoint, rel_a = _memory_class(memory, "nodebench-adjoint")
    resnet, rel_r = _memory_class(memory, "resnet")
    if adjoint is None:
        return [_not_run(claim, paper, "memory", "no saved-for-backward sweep over L")]
    steps = sorted(memory.records["step"].unique())
    ok = adjoint == "O(1)" and (resnet is None or resnet != "O(1)")
    ours = f"saved-bytes slope: adjoint {rel_a:.2f} x direct's" + (
        f", ResNet {rel_r:.2f} x" if rel_r is not None else ""
    )
    return [
        _row(
            claim,
            paper,
            memory,
            ours=ours,
            verdict=REPRODUCED if ok else NOT,
            why=f"saved-for-backward bytes, least squares over L = {steps[0]}..{steps[-1]}",
        )
    ]


def spiral_examples(evidence: dict[str, Evidence]) -> list[Row]:
    """The slides' Examples 1 and 2: the learned model recovers the dynamics (no published numbers)."""
    spiral = evidence["spiral"]
    rows = []
    specs = (
        (
            "Slides Example 1: learn W of dz/dt = Wz",
            "learned W ≈ W (plot only)",
            "example1/",
            "W_err_max",
            "max |W - W_true|",
            0.05,
        ),
        (
            "Slides Example 2: learn blended spirals",
            "fitted trajectory (plot only)",
            "example2/",
            "traj_mse",
            "trajectory MSE",
            None,
        ),
    )
    for claim, paper, prefix, metric, label, threshold in specs:
        records = (
            spiral.records[spiral.records["variant"].str.startswith(prefix)] if not spiral.empty else None
        )
        data = None if records is None else records[records["metric"] == metric]
        if data is None or data.empty:
            rows.append(_not_run(claim, paper, "spiral"))
            continue
        ordered = data.sort_values("step", kind="stable")
        first = ordered.groupby(["variant", "seed"])["value"].first()
        last = ordered.groupby(["variant", "seed"])["value"].last()
        by_variant = last.groupby("variant").mean()
        best, worst = by_variant.idxmin(), by_variant.idxmax()
        if threshold is not None:
            good = (last < threshold).all()
            verdict = REPRODUCED if good else PARTLY if (last < first).all() else NOT
            why = f"all variants below {threshold}" if good else f"not all variants below {threshold}"
        else:
            drop = float((first / last).min())
            verdict = REPRODUCED if drop >= 10 else PARTLY if drop > 1 else NOT
            why = f"MSE falls at least {drop:.0f}x from the untrained model in every variant"
        rows.append(
            _row(
                claim,
                paper,
                spiral,
                data,
                ours=f"{label} {by_variant.min():.3g} ({best}) to {by_variant.max():.3g} ({worst})",
                verdict=verdict,
                why=why
                + (
                    ""
                    if spiral.preset == "paper"
                    else "; Example 2 trains 1000 of 3000 steps"
                    if prefix == "example2/"
                    else ""
                ),
            )
        )
    return rows


def _load_note(metas: list[dict[str, Any]]) -> str:
    """Whether the runs' timings were taken beside other load (see :mod:`nodebench.report._load`)."""
    states = [load_state(m)[0] for m in metas]
    if any(states):
        return "; timings taken under load"
    return "; load not recorded" if None in states else ""


#: The claims in the order they are listed; each maps the workloads' evidence to rows.
CLAIMS: tuple[Callable[[dict[str, Evidence]], list[Row]], ...] = (
    table1,
    table2,
    figure3ab,
    figure3cd,
    memory_claim,
    spiral_examples,
)
WORKLOADS = ("mnist", "memory", "latent", "tolerance", "spiral", "nfe")
MNIST_SWEEP = "mnist_odenet"  # the tolerance workload's variant prefix for its MNIST ODE-Net sweep


#: Solver methods whose Figure 3 evidence is gathered side by side (ODE-Net trained with each).
FIGURE3_METHODS = ("dopri5", "adams")
#: The mnist presets of those runs (the method in each run's config tells them apart).
FIGURE3_PRESETS = ("figure3", "figure3-adams")


def _method_of(meta: dict[str, Any]) -> str:
    return str((meta.get("config") or {}).get("method", "dopri5"))


def _evidence(records: pd.DataFrame, metas: list[dict[str, Any]]) -> dict[str, Evidence]:
    evidence = {w: select(records, metas, w) for w in WORKLOADS}
    evidence["tolerance_mnist"] = select(records, metas, "tolerance", presets=("mnist",))
    for method in FIGURE3_METHODS:  # the mnist `figure3` preset, once per ODE-Net solver
        runs = [m for m in metas if _method_of(m) == method]
        evidence[f"mnist_figure3_{method}"] = select(records, runs, "mnist", presets=FIGURE3_PRESETS)
    return evidence


def summary_rows(records: pd.DataFrame, metas: list[dict[str, Any]]) -> pd.DataFrame:
    """Every claim's row from the given records and meta (runs of any workload and preset)."""
    evidence = _evidence(records, metas)
    rows = [row for claim in CLAIMS for row in claim(evidence)]
    frame = pd.DataFrame([row.__dict__ for row in rows])
    return frame[["claim", "paper", "ours", "preset", "seeds", "runs", "verdict", "why"]]


def _runs_text(ev: Evidence) -> str:
    return ", ".join(f"`{r}`" for r in ev.run_ids()) or "-"


def _spread_note(seeds: list[int], over: str) -> str:
    if len(seeds) > 1:
        return f"Bands: ± one standard deviation over seeds {_seeds_text(seeds)}"
    return f"One seed ({_seeds_text(seeds)}): no spread over seeds is shown; {over}"


def _figure3_methods(evidence: dict[str, Evidence], folder: Path, link_prefix: str) -> list[str]:
    """Figure 3 (a, c, d) on MNIST with the paper's solver family (adams) beside dopri5, and in words
    whether the paper's "backward about half of forward" appears with either."""
    from nodebench.report import figure3

    sweep_ev = evidence["tolerance_mnist"]
    sweeps = {
        m: figure3.sweep_table(sweep_ev.records, f"{MNIST_SWEEP}/nodebench/{m}", "test_error")
        for m in FIGURE3_METHODS
    }
    sweeps = {m: table for m, table in sweeps.items() if not table.empty}
    runs = {m: evidence[f"mnist_figure3_{m}"] for m in FIGURE3_METHODS}
    training = {m: _iteration_nfe(ev) for m, ev in runs.items()}
    training = {m: table for m, table in training.items() if not table.empty}
    if "adams" not in sweeps and "adams" not in training:
        return [
            "Figure 3 with Adams: not drawn (needs an adams sweep or an mnist `figure3` run with adams).",
            "",
        ]
    name = "figure3-mnist-methods.png"
    figure3.draw_methods(
        sweeps, training, folder / name, title="Figure 3 on MNIST: nodebench adams beside dopri5"
    )
    said = []
    for method, table in training.items():
        ratio = (table["nfe_backward"] / table["nfe_forward"]).median()
        half = 0.4 <= ratio <= 0.6
        said.append(
            f"with {method} the backward pass takes {ratio:.2f} times the forward NFE (median over "
            f"{len(table)} iterations, run {_runs_text(runs[method])}): the paper's \"backward about half "
            f'of forward" {"appears" if half else "does not appear"}'
        )
    sweep_text = ""
    if sweeps:
        sweep_text = (
            f"(a): tolerance run {_runs_text(sweep_ev)} (preset `mnist`) on the trained ODE-Net checkpoint, "
            "each method at the rtol = atol written beside its points; "
        )
    return [
        f"![Figure 3 with adams and dopri5 on MNIST]({link_prefix}/{name})",
        "",
        f"*Figure 3 with the paper's solver family.* {sweep_text}(c)/(d): ODE-Net trained once per "
        "method (mnist presets `figure3`, `figure3-adams`: "
        + "; ".join(_training_text(runs[m]) for m in training)
        + "); dotted: the paper's y = x/2. In words: "
        + "; ".join(said or ["no per-iteration run yet"])
        + ". One seed per method: no spread over seeds is shown.*",
        "",
    ]


def figures(evidence: dict[str, Evidence], folder: Path, link_prefix: str = "figures") -> list[str]:
    """Figure 3 as one four-panel figure on the MNIST ODE-Net and on the spiral model, with captions.

    Returns:
        Markdown lines (images linked as ``<link_prefix>/<name>.png``); a sentence where records lack.
    """
    from nodebench.report import figure3

    lines = ["## Figure 3, redrawn from our records", ""]
    mnist, sweep_ev = evidence["mnist"], evidence["tolerance_mnist"]
    odenet = mnist.records[mnist.records["variant"] == "odenet"] if not mnist.empty else pd.DataFrame()
    sweep = figure3.sweep_table(sweep_ev.records, MNIST_SWEEP + "/nodebench/dopri5", "test_error")
    if odenet.empty or sweep.empty:
        lines += ["MNIST version: not drawn (needs an mnist run and a tolerance run of preset `mnist`).", ""]
    else:
        wide = odenet.pivot_table(index=["seed", "step"], columns="metric", values="value").reset_index()
        training = wide.assign(x=wide["step"] + 1, series="ODE-Net")
        name = "figure3-mnist.png"
        figure3.draw(
            sweep,
            training,
            folder / name,
            title="Figure 3 on the trained MNIST ODE-Net (nodebench dopri5, adjoint with seminorm)",
            task_label="test error % (subset)",
            training_label="epoch",
            hue_label="epoch",
            colour_by_x=True,
        )
        config = (sweep_ev.metas[-1].get("config") or {}) if sweep_ev.metas else {}
        epochs = int(wide["step"].max()) + 1
        lines += [
            f"![Figure 3 on the MNIST ODE-Net]({link_prefix}/{name})",
            "",
            f"*Figure 3, MNIST.* (a)/(b): tolerance sweep of the trained ODE-Net (checkpoint of run "
            f"{_runs_text(mnist)}, preset {mnist.preset}, after {epochs} of the paper's 160 epochs) by run "
            f"{_runs_text(sweep_ev)} (tolerance preset `mnist`): the ODE block solved for the first "
            f"{config.get('mnist_test_size', '?')} test images (a subset, to keep it to minutes on a CPU) "
            f"as one batch in {config.get('eval_dtype', '?')} at each rtol = atol shown; numerical error = "
            "RMS difference of the block's output from a float64 solve at "
            f"{config.get('mnist_reference_tol', '?')}; dashed: test error of the subset; wall time = "
            f"median of {config.get('repeats', '?')} solves on CPU{_load_note(sweep_ev.metas)}. (c)/(d): "
            "NFE of the ODE block per training iteration, averaged over each epoch, during training "
            "(rtol = atol = 1e-3); the dotted line is the paper's y = x/2. "
            f"{_spread_note(mnist.seeds(odenet), 'points are epochs')}.",
            "",
        ]
    lines += _figure3_methods(evidence, folder, link_prefix)
    tol_ev, nfe_ev = evidence["tolerance"], evidence["nfe"]
    sweep = figure3.sweep_table(tol_ev.records, "nodebench/dopri5", "task_mse")
    nfe = (
        nfe_ev.records[nfe_ev.records["variant"].str.match(r"nodebench/seminorm/tol=")]
        if not nfe_ev.empty
        else None
    )
    if sweep.empty or nfe is None or nfe.empty:
        lines += ["Spiral version: not drawn (needs standard tolerance and nfe runs).", ""]
    else:
        wide = nfe.pivot_table(
            index=["variant", "seed", "step"], columns="metric", values="value"
        ).reset_index()
        training = wide.assign(x=wide["step"], series=wide["variant"].str.extract(r"(tol=.*)$")[0])
        name = "figure3-spiral.png"
        figure3.draw(
            sweep,
            training,
            folder / name,
            title="Figure 3 on torchdiffeq's spiral-demo model (nodebench dopri5)",
            task_label="task MSE vs data",
            training_label="training iteration",
            hue_label="adjoint rtol = atol",
        )
        lines += [
            f"![Figure 3 on the spiral-demo model]({link_prefix}/{name})",
            "",
            f"*Figure 3, spiral-demo model.* (a)/(b): tolerance run {_runs_text(tol_ev)} (preset "
            f"{tol_ev.preset}): the trained model solved over its whole trajectory in float64 at each "
            "rtol = atol shown; error against a reference at 1e-12; dashed: MSE against the data; wall "
            f"time = median of repeated solves on CPU{_load_note(tol_ev.metas)}. (c)/(d): nfe run "
            f"{_runs_text(nfe_ev)} "
            f"(preset {nfe_ev.preset}): adjoint (seminorm) forward and backward NFE of one loss over a fixed "
            "batch, at checkpoints of training, one colour per tolerance; dotted: the paper's y = x/2. "
            f"{_spread_note(nfe_ev.seeds(nfe), 'points are training checkpoints')}.",
            "",
        ]
    return lines


def build_summary(
    run_dirs: Iterable[str | os.PathLike[str]],
    out_path: str | os.PathLike[str] = "results/SUMMARY.md",
    finished_seeds: Callable[[Path], list[int]] | None = None,
) -> Path:
    """Write the claims summary for ``run_dirs`` (run directories, folders of runs or globs).

    Arguments:
        finished_seeds: for a run that did not complete, the seeds all of whose units it finished
            (:func:`nodebench.runner.finished_seeds`); without it such runs are not cited.
    Returns:
        The path written.
    """
    dirs = resolve_run_dirs(list(run_dirs))
    records = load_runs(dirs)
    metas = [read_meta(d) for d in dirs]
    if finished_seeds is not None:
        for run_dir, meta in zip(dirs, metas):
            if meta.get("status") != "complete":
                meta["finished_seeds"] = finished_seeds(Path(run_dir))
    table = summary_rows(records, metas)
    counts = table["verdict"].value_counts()
    tally = ", ".join(f"{counts.get(v, 0)} {v}" for v in (REPRODUCED, PARTLY, NOT, NOT_RUN))
    lines = [
        "# Which claims of the Neural ODE paper does nodebench reproduce?",
        "",
        f"Generated {utc_now()} by `nodebench report --summary` from the records of {len(metas)} stored "
        "run(s); never edited by hand. One row per claim of Chen et al. (2018) -- Table 1, Table 2, "
        "Figure 3a-d, the memory claim -- and of the seed slides' Examples 1 and 2.",
        "",
        f"Tally: {tally}.",
        "",
        markdown_table(table),
        "",
        "## How to read it",
        "",
        "- **paper**: the published value, not measured here. **ours**: read from the records of the "
        "runs named; `a ± b` is the mean ± sample standard deviation over the seeds listed.",
        "- **preset**: only runs of the `paper` preset (the published protocol) or, failing "
        "that, the `standard` preset (the protocol shortened to fit a CPU budget, see docs/protocols.md) "
        "are cited; smoke and exploratory runs never are. A run is cited for the seeds it finished (every "
        "unit of the seed recorded), so an interrupted run's finished seeds count and its unfinished ones "
        "do not. Where runs share a seed, the latest counts. "
        "Exception: Figure 3a/3b on MNIST rest on the tolerance workload's `mnist` preset, a sweep of the "
        "trained `standard` ODE-Net checkpoint on a test subset.",
        f"- **verdict**: numbers within {CLOSE_FACTOR}x of the paper's (either way) are *reproduced*, "
        f"within {PARTLY_FACTOR}x *partly*, else *not*; a qualitative claim (a trend, an ordering, a "
        "memory class) is *reproduced* when the records show it. *not run*: no citable run holds it.",
        "- Protocols, the paper's numbers and what is ours: [docs/protocols.md](../docs/protocols.md); "
        "the full reports with figures: [reports/](reports/).",
        "",
    ]
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines += figures(_evidence(records, metas), path.parent / "figures")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
