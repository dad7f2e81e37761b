"""``results/SUMMARY.md``: the paper's claims (:mod:`nodebench.claims`) rendered from stored records.

The page opens with five lines, the tally and one row per claim (verdict, the rule that decided it,
the runs, their CPU hours, machine, load and code state), then Table 1 and Table 2 as blocks, Figure
3 redrawn, the rules every verdict followed (from :mod:`nodebench.claims.policy`) and each claim as
declared. Verdicts come from :func:`nodebench.claims.evaluate` alone. Like every report module it
reads records and meta only: it imports no model and no workload.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nodebench import claims
from nodebench.claims import policy, table2
from nodebench.claims.core import Result
from nodebench.claims.evidence import UNSAVED, chains_of, footprint, tree_state, with_finished_seeds
from nodebench.measure.provenance import utc_now
from nodebench.report import figure3
from nodebench.report import latent as latent_report
from nodebench.report import mnist as mnist_report
from nodebench.report._claims import evidence_table, rules_text, runs_text, seeds_text, verdict_table
from nodebench.report._tables import markdown_table
from nodebench.store import load_runs, read_meta, resolve_run_dirs


def _by_source(results: Sequence[Result], with_value: bool = False) -> str:
    """``results`` named briefly, grouped by where the paper states them, in declared order."""
    groups: dict[str, list[str]] = {}
    for r in results:
        value = f" ({r.ours.split(' (')[0].split('; ')[0]})" if with_value else ""
        groups.setdefault(r.claim.source, []).append(r.claim.short + value)
    return "; ".join(f"{source}: {', '.join(names)}" for source, names in groups.items()) or "none"


def five_lines(results: Sequence[Result]) -> list[str]:
    """What reproduces, what does not and why, what cannot be compared, what it cost, what is missing."""
    by = {v: [r for r in results if r.verdict == v] for v in policy.VERDICTS}
    compared = sum(len(by[v]) for v in policy.COMPARED)
    cited = {m["run_id"]: m for r in results for m in r.evidence.metas}
    cost = footprint(list(cited.values()))
    under = sum(1 for m in cited.values() if footprint([m]).under_load)
    unsaved = sum(1 for m in cited.values() if tree_state(m) == UNSAVED)
    bound = (
        "" if cost.measured else " (at most: runs that predate CPU-time records count wall time x threads)"
    )
    return [
        f"1. **Reproduced**, {len(by[policy.REPRODUCED])} of the {compared} claims compared with the paper: "
        f"{_by_source(by[policy.REPRODUCED])}.",
        f"2. **Partly**, {len(by[policy.PARTLY])}: {_by_source(by[policy.PARTLY])}. **Not**, "
        f"{len(by[policy.NOT])}: {_by_source(by[policy.NOT], with_value=True)}; why, claim by claim: the "
        "`why` column and the caveats below.",
        f"3. **Not comparable**, {len(by[policy.NOT_COMPARABLE])}: {_by_source(by[policy.NOT_COMPARABLE])} "
        "(the paper does not publish what its number depends on; the rows say what).",
        f"4. **Cost**: the {len(cited)} cited runs took {cost.cpu_hours:.1f} CPU hours{bound} on "
        f"{', '.join(cost.machines) or '-'}; {under} of them ran beside other load, {unsaved} from a "
        "modified tree whose diff was not saved.",
        f"5. **Not run**, {len(by[policy.NOT_RUN])}: {_by_source(by[policy.NOT_RUN])}.",
    ]


def caveats(results: Sequence[Result]) -> list[str]:
    """The measured caveats, one bullet each under the claim they qualify."""
    lines = []
    for r in results:
        lines += [f"- **{r.claim.label}**: {c}" for c in r.caveats]
    return lines


def how_to_read(results: Sequence[Result]) -> list[str]:
    """The rules that decided the verdicts on this page, each as :mod:`nodebench.claims.policy` states it,
    then how evidence is chosen and counted."""
    lines = ["## How to read it", "", *rules_text(results)]
    lines += [
        f"- {policy.NOT_RUN_TEXT}.",
        "- **Seeds that disagree**: where a claim can be decided seed by seed and the seeds' verdicts "
        "differ, its `ours` cell lists every seed's value and verdict; the row's verdict is the rule on the "
        "mean over seeds.",
        "- **paper**: the published value, not measured here. **ours**: read from the records of the runs "
        "in the evidence table; `a ± b` is the mean ± sample standard deviation over the seeds listed.",
        "- **Evidence**: each claim names its workload and presets in order of preference (the claims "
        "table at the end); the first preset whose runs hold the claim's records is cited, in the "
        "configuration of its latest run; where runs share a seed the latest counts, and an interrupted run "
        "counts for the seeds it finished, and for each model whose chain of units in a seed it finished "
        "(MNIST: a model's epochs; they depend on nothing else of the run). Smoke runs and exploratory "
        "presets are never cited.",
        "- **CPU h**: the cited runs' process CPU time summed over their units where they recorded it; "
        "else `(bound)`: their units' wall time times their torch threads, which is above the CPU time when "
        "a run waited for a core. **timings**: *under load* when the 1-minute load average beside some unit "
        "exceeded the run's own threads by one or more. **code**: whether the runs ran from a clean "
        "checkout, or from a modified one whose diff the run directory keeps (or did not keep).",
        "- Protocols, the paper's numbers and what is ours: [docs/protocols.md](../docs/protocols.md); "
        "the reports with their figures: [reports/](reports/).",
        "",
    ]
    return lines


def declared(results: Sequence[Result]) -> list[str]:
    """Every claim as the registry declares it."""
    rows = [
        {
            "id": f"`{r.claim.id}`",
            "claim": r.claim.label,
            "in the paper": r.claim.source,
            "kind": r.claim.kind,
            "evidence": r.claim.spec.text(),
            "ours is": r.claim.how,
            "rule": r.claim.rule.name,
        }
        for r in results
    ]
    return [
        "## The claims as declared",
        "",
        "Rendered from `nodebench/claims/registry.py`, where each claim is declared once.",
        "",
        markdown_table(pd.DataFrame(rows)),
        "",
    ]


# ---- Table 1, Table 2 ---------------------------------------------------------------------------------


def table1_block(records: pd.DataFrame, metas: list[dict[str, Any]], results: Sequence[Result]) -> list[str]:
    """Table 1 with every citable MNIST protocol side by side, and the time column."""
    table = mnist_report.table1_by_preset(records, metas, claims.registry.MNIST_TABLE1)
    if table.empty:
        return ["## Table 1", "", "No citable MNIST run yet.", ""]
    memory = next((r for r in results if r.claim.id == "memory"), None)
    return [
        "## Table 1",
        "",
        "Test error after the last epoch of each citable MNIST protocol (mean ± sd over seeds where there "
        "are several), with the training time per epoch and the evaluation time per test image (medians "
        "over epochs; one torch thread on CPU, so they compare models, not hardware). The paper's memory and "
        "time columns are classes in the depth L (L~: evaluations of one forward solve). The verdict rows "
        "above cite the first protocol in this order that has a run: "
        + ", then ".join(f"`{p}`" for p in claims.registry.MNIST_TABLE1)
        + "; the others are kept as history.",
        "",
        markdown_table(table),
        "",
        *(
            [f"Memory in depth (the memory workload): {memory.ours} — **{memory.verdict}**.", ""]
            if memory is not None and memory.verdict != policy.NOT_RUN
            else []
        ),
        *unfinished_mnist(records, metas),
    ]


def unfinished_mnist(records: pd.DataFrame, metas: list[dict[str, Any]]) -> list[str]:
    """A line per unfinished MNIST run of a Table 1 protocol: how far each model got, and which models'
    chains finished (those are cited, :func:`nodebench.runner.finished_parts`; the others are not)."""
    lines = []
    for meta in metas:
        if meta.get("workload") != "mnist" or meta.get("status") == "complete":
            continue
        if meta.get("preset") not in claims.registry.MNIST_TABLE1:
            continue
        config = meta.get("config") or {}
        chains = chains_of(meta)
        run = records[(records["run_id"] == meta["run_id"]) & (records["metric"] == "test_error")]
        done = run.groupby("variant")["step"].max() + 1
        parts = []
        for model in config.get("models") or []:
            epochs = int(done.get(model, 0))
            last = run[(run["variant"] == model) & (run["step"] == epochs - 1)]["value"]
            error = f", test error {last.mean():.2f}%" if epochs and not last.empty else ""
            seeds = [int(s) for s in meta.get("seeds") or []]
            state = "cited" if seeds and all((model, s) in chains for s in seeds) else "not cited"
            parts.append(
                f"{mnist_report.LABELS.get(model, model)} {epochs} of {config.get('epochs')} epochs{error} "
                f"({state})"
            )
        lines.append(
            f"Unfinished run `{meta['run_id']}` (preset `{meta.get('preset')}`, {meta.get('status')}; "
            "a model is cited once its chain of epochs has finished): "
            + "; ".join(parts)
            + f". Resume: `nodebench run mnist --resume results/runs/mnist/{meta['run_id']}`."
        )
        lines.append("")
    return lines


def table2_block(
    records: pd.DataFrame, metas: list[dict[str, Any]], results: Sequence[Result], folder: Path
) -> list[str]:
    """Table 2: the measured caveats, then raw, normalised by the training data's scale and the ratio to
    each baseline; Table 2 as a figure and a Figure-8 panel of the first cited run."""
    ordering = next((r for r in results if r.claim.id == "table2.ordering"), None)
    if ordering is None or ordering.evidence.empty:
        return ["## Table 2", "", "No citable latent run yet.", ""]
    latent = records[records["workload"] == "latent"]
    latent_metas = [m for m in metas if m.get("workload") == "latent"]
    cited = ordering.evidence.metas
    rows = latent[latent["run_id"].isin({m["run_id"] for m in cited})]
    body = latent_report.table2_markdown(rows, cited, latent, latent_metas)
    lines = ["## Table 2", ""]
    notes = [c for r in results if r.claim.source == "Table 2" for c in r.caveats]
    if notes:
        lines += ["Measured caveats:", "", *(f"- {c}" for c in notes), ""]
    lines += [
        f"Runs {runs_text(ordering)} (preset {ordering.evidence.preset}, seeds {seeds_text(ordering)}). "
        "Predictive RMSE on the 100 extrapolated points of the test spirals; `train_std` is the pooled "
        "coordinate standard deviation of each seed's training spirals, so RMSE / train_std is free of our "
        "spirals' scale; ratios are taken per seed on the same data set, then averaged. The paper's rows "
        "are the paper's, on its unpublished protocol.",
        "",
        body,
        "",
    ]
    finals = table2.finals(table2.tagged(rows, cited), "rmse_extrap_truth")
    name = "table2.png"
    latent_report.draw_table2(finals, title="Table 2 on our spiral card").savefig(folder / name, dpi=100)
    lines += [
        f"![Table 2 as a figure](figures/{name})",
        "",
        f"*Table 2 as a figure.* (a) Extrapolation RMSE against the noise-free truth by observed points n, "
        f"one point per seed ({seeds_text(ordering)}) and model, lines through the means; stars: the "
        "paper's RNN and latent ODE, on its unpublished data scale. (b) The latent ODE over the tanh RNN "
        "(Δt input) per seed on the same data set, its mean, and the paper's ratio as stars.*",
        "",
    ]
    traced = rows[rows["metric"] == "pred_x"]
    if not traced.empty:
        run_id = traced["run_id"].iloc[0]
        run = rows[rows["run_id"] == run_id]
        n = int(table2.tagged(traced, cited)["n"].min())
        panel = latent_report.draw_figure8_panel(run, n, metas=cited)
        if panel is not None:
            name = "figure8.png"
            panel.savefig(folder / name, dpi=100)
            lines += [
                f"![Figure 8 on our spiral card](figures/{name})",
                "",
                f"*Figure 8 on our card*: run `{run_id}`, the first seed it recorded trajectories for, "
                f"n = {n} observed points: a counter-clockwise and a clockwise test spiral (rows), each "
                "model (columns): ground truth, observations, the prediction inside the observation window "
                "(solid) and the extrapolation beyond it (dashed). Every n and spiral: the latent report.*",
                "",
            ]
    return lines


# ---- Figure 3 -------------------------------------------------------------------------------------------


def _result(results: Sequence[Result], claim_id: str) -> Result:
    return next(r for r in results if r.claim.id == claim_id)


def _spread_note(seeds: list[int], over: str) -> str:
    if len(seeds) > 1:
        return f"Bands: ± one standard deviation over seeds {', '.join(map(str, seeds))}"
    return f"One seed ({', '.join(map(str, seeds)) or '-'}): no spread over seeds is shown; {over}"


def _config(result: Result) -> dict[str, Any]:
    return (result.evidence.metas[-1].get("config") or {}) if result.evidence.metas else {}


def _verdict_words(result: Result) -> str:
    return f"{result.claim.label}: {result.ours} — **{result.verdict}**"


def figures(results: Sequence[Result], folder: Path, link_prefix: str = "figures") -> list[str]:
    """Figure 3 on the MNIST ODE-Net, with adams beside dopri5, and on the spiral-demo model.

    Returns:
        Markdown lines (images linked as ``<link_prefix>/<name>.png``); a sentence where records lack.
    """
    lines = ["## Figure 3, redrawn from our records", ""]
    sweep_r, train_r = _result(results, "figure3a.mnist.dopri5"), _result(results, "figure3c.epochs")
    sweep = figure3.sweep_table(sweep_r.evidence.records, "mnist_odenet/nodebench/dopri5", "test_error")
    odenet = train_r.evidence.records
    if sweep.empty or odenet.empty:
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
        config = _config(sweep_r)
        lines += [
            f"![Figure 3 on the MNIST ODE-Net]({link_prefix}/{name})",
            "",
            f"*Figure 3, MNIST.* (a)/(b): tolerance sweep by run {runs_text(sweep_r)} (preset `mnist`) of "
            "the ODE-Net trained by the committed `standard` mnist run (its checkpoint): the ODE block "
            f"solved for the first {config.get('mnist_test_size', '?')} test images as one batch in "
            f"{config.get('eval_dtype', '?')} at each rtol = atol shown; numerical error = RMS difference "
            f"from a float64 solve at {config.get('mnist_reference_tol', '?')}; dashed: test error of the "
            f"subset; wall time = median of {config.get('repeats', '?')} solves on CPU "
            f"({_result(results, 'figure3b.mnist.dopri5').why}). (c)/(d): NFE of the ODE block per training "
            f"iteration, averaged over each epoch, by run {runs_text(train_r)} (preset "
            f"{train_r.evidence.preset}); dotted: the paper's y = x/2. "
            f"{_spread_note(train_r.evidence.seeds(), 'points are epochs')}.",
            "",
        ]
    lines += _figure3_methods(results, folder, link_prefix)
    sweep_r, nfe_r = _result(results, "figure3a.spiral"), _result(results, "figure3c.spiral_demo")
    sweep = figure3.sweep_table(sweep_r.evidence.records, "nodebench/dopri5", "task_mse")
    nfe = nfe_r.evidence.records
    if sweep.empty or nfe.empty:
        lines += ["Spiral version: not drawn (needs citable tolerance and nfe runs).", ""]
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
            f"*Figure 3, spiral-demo model.* (a)/(b): tolerance run {runs_text(sweep_r)} (preset "
            f"{sweep_r.evidence.preset}): the trained model solved over its whole trajectory in float64 at "
            "each rtol = atol shown; error against a reference at 1e-12; dashed: MSE against the data; wall "
            f"time = median of repeated solves on CPU ({_result(results, 'figure3b.spiral').why}). (c)/(d): "
            f"nfe run {runs_text(nfe_r)} (preset {nfe_r.evidence.preset}): adjoint (seminorm) forward and "
            "backward NFE of one loss over a fixed batch, "
            "at checkpoints of training, one colour per tolerance; dotted: the paper's y = x/2. "
            f"{_spread_note(nfe_r.evidence.seeds(), 'points are training checkpoints')}.",
            "",
        ]
    return lines


def _figure3_methods(results: Sequence[Result], folder: Path, link_prefix: str) -> list[str]:
    """Figure 3 (a, c, d) on MNIST with adams beside dopri5, and the claims' verdicts in words."""
    methods = ("dopri5", "adams")
    sweeps = {
        m: figure3.sweep_table(
            _result(results, f"figure3a.mnist.{m}").evidence.records,
            f"mnist_odenet/nodebench/{m}",
            "test_error",
        )
        for m in methods
    }
    sweeps = {m: table for m, table in sweeps.items() if not table.empty}
    per_iteration = {m: _result(results, f"figure3c.iterations.{m}") for m in methods}
    training = {m: mnist_report.iteration_nfe(r.evidence.records) for m, r in per_iteration.items()}
    training = {m: table for m, table in training.items() if not table.empty}
    if "adams" not in sweeps and "adams" not in training:
        return ["Figure 3 with Adams: not drawn (needs an adams sweep or an mnist `figure3-adams` run).", ""]
    name = "figure3-mnist-methods.png"
    figure3.draw_methods(
        sweeps, training, folder / name, title="Figure 3 on MNIST: nodebench adams beside dopri5"
    )
    protocols = "; ".join(
        f"{m}: {mnist_report.training_text(_config(r))}, run {runs_text(r)}"
        for m, r in per_iteration.items()
        if m in training
    )
    return [
        f"![Figure 3 with adams and dopri5 on MNIST]({link_prefix}/{name})",
        "",
        "*Figure 3 with the paper's solver family.* (a)/(b): the tolerance sweep above, NFE against the "
        "numerical error and against wall time, each method in its colour with rtol = atol as the points' "
        f"shade (light = loose); (c)/(d): ODE-Net trained once per method ({protocols}); dotted: the "
        "paper's y = x/2. One seed per method: no spread over seeds is shown.*",
        "",
        *(f"- {_verdict_words(r)}" for m, r in per_iteration.items() if m in training),
        "",
    ]


# ---- the page -------------------------------------------------------------------------------------------


def build_summary(
    run_dirs: Iterable[str | os.PathLike[str]],
    out_path: str | os.PathLike[str] = "results/SUMMARY.md",
    finished_seeds: Callable[[str], Any] | None = None,
) -> Path:
    """Write the claims summary for ``run_dirs`` (run directories, folders of runs or globs).

    Arguments:
        finished_seeds: for a run that did not complete, the seeds all of whose units it finished
            (and chains: :func:`nodebench.runner.finished_parts`); without it such runs are not cited.

    Returns:
        The path written.
    """
    dirs = resolve_run_dirs(list(run_dirs))
    records = load_runs(dirs)
    metas = with_finished_seeds([read_meta(d) for d in dirs], finished_seeds)
    results = claims.evaluate(claims.CLAIMS, records, metas)
    path = Path(out_path)
    (path.parent / "figures").mkdir(parents=True, exist_ok=True)
    lines = [
        "# Which claims of the Neural ODE paper does nodebench reproduce?",
        "",
        f"Generated {utc_now()} by `nodebench report --summary` from the records of {len(metas)} stored "
        "run(s); never edited by hand. One row per claim of Chen et al. (2018) -- Table 1, Table 2, "
        "Figure 3a-d, the memory claim -- and of the seed slides' Examples 1 and 2, each declared once in "
        "`nodebench/claims` and decided by a rule stated under [How to read it](#how-to-read-it).",
        "",
        *five_lines(results),
        "",
        f"Tally: {claims.tally_text(results)}.",
        "",
        "## The claims",
        "",
        verdict_table(results),
        "",
    ]
    notes = caveats(results)
    if notes:
        lines += ["Measured caveats (from the same records):", "", *notes, ""]
    lines += [
        "## Evidence and cost",
        "",
        evidence_table(results),
        "",
        *table1_block(records, metas, results),
        *table2_block(records, metas, results, path.parent / "figures"),
        *figures(results, path.parent / "figures"),
        *how_to_read(results),
        *declared(results),
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
