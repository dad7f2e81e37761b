"""Build ``REPORT.md`` and its figures from stored runs only (records and meta; no model code)."""

from __future__ import annotations

import importlib
import os
import re
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from nodebench import claims
from nodebench.claims.evidence import load_state, with_finished_seeds
from nodebench.measure.provenance import utc_now
from nodebench.report import style
from nodebench.report._claims import rules_text, verdict_table
from nodebench.report._tables import final_values, markdown_table
from nodebench.store import load_runs, read_meta, resolve_run_dirs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_CURVES = 6
#: Replaces a placeholder ("TODO") that early exploratory runs stored instead of their protocol card.
PLACEHOLDER_CARD = (
    "*(This run stored a placeholder instead of its protocol card: it ran before the card was written. "
    "What it ran is its full config in `meta.json` -- the preset label lists the overrides -- with the "
    "workload's code at commit {commit}; the protocol as it stands is in docs/protocols.md.)*"
)
#: How every report reads ``a ± b``; stated once at its top.
PLUS_MINUS = (
    "Throughout, `a ± b` is the mean ± the sample standard deviation over seeds; a table or figure that "
    "shows a spread over something else (epochs, repeats) says so where it does."
)
STATUS_LABELS = {
    "complete": "complete",
    "failed": "**FAILED -- partial results**",
    "interrupted": "**INTERRUPTED -- partial results**",
    "running": "**UNFINISHED (running or killed) -- partial results**",
}


def _report_module(workload: str, package: str = __package__) -> Any:
    """``<package>.<workload>`` (by default ``nodebench.report.<workload>``) if it exists, else ``None``."""
    name = f"{package}.{workload}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def _figure_pattern(module: Any) -> re.Pattern[str] | None:
    """A workload's figure-data metrics (per-point series such as trajectories), as one pattern.

    The workload's schema (``nodebench.schema.<workload>``) lists them in ``FIGURE_METRICS`` (regular
    expressions matched against the whole metric name); they are plotted by its report section and left
    out of the per-run final-values table.
    """
    patterns = getattr(module, "FIGURE_METRICS", ())
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


def figure_rows(workload: str, records: pd.DataFrame) -> pd.Series:
    """Which of a workload's records are figure data (its schema's ``FIGURE_METRICS``), as a mask."""
    pattern = _figure_pattern(_report_module(workload, "nodebench.schema"))
    if pattern is None or records.empty:
        return pd.Series(False, index=records.index)
    return records["metric"].str.fullmatch(pattern)


def _protocol_card(meta: dict[str, Any]) -> str:
    """The run's stored protocol card. Cards of early runs cite the team's internal notes
    (``PROTOCOLS.md``), whose content now lives in the repository's ``docs/protocols.md``."""
    card = (meta.get("protocol") or "(no protocol card stored)").strip()
    card = re.sub(r"(?m)^TODO$", PLACEHOLDER_CARD.format(commit=(meta.get("git_commit") or "?")[:12]), card)
    return re.sub(r"(?<![/\w])PROTOCOLS\.md", "docs/protocols.md", card)


def _demote_headings(markdown: str, levels: int = 3) -> str:
    """Nest a protocol card's headings ``levels`` deeper so they sit under the run's heading."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        lines.append("#" * levels + line if line.startswith("#") and not fenced else line)
    return "\n".join(lines)


def _threads(meta: dict) -> object:
    """Torch threads of the run: its config's ``threads`` if it sets them, else those it finished with.

    Workloads that pin threads restore the caller's count when they end, so the count at the end of an
    attempt is the caller's, not the one that trained.
    """
    configured = (meta.get("config") or {}).get("threads")
    if configured is not None:
        return configured
    attempts = meta.get("attempts") or []
    last = attempts[-1].get("torch_threads") if attempts else None
    return last if last is not None else meta.get("torch_threads")


def relative_run_dir(meta: dict[str, Any]) -> str:
    """The run directory relative to its results folder (``runs/<workload>/<run-id>``), never absolute."""
    path = Path(meta.get("run_dir") or meta["run_id"])
    return "/".join(path.parts[-3:])


def _status(meta: dict[str, Any]) -> str:
    status = meta.get("status", "unknown")
    label = STATUS_LABELS.get(status, f"**{status}**")
    return f"{label}: {meta['error']}" if meta.get("error") else label


def _uncommitted(attempts: list[dict[str, Any]]) -> str:
    """Which attempts ran from a dirty tree and where the run directory keeps their diff ('' if none)."""
    parts = []
    for number, attempt in enumerate(attempts, start=1):
        saved = attempt.get("uncommitted")
        if saved:
            parts.append(
                f"attempt {number} ran from a dirty tree: diff in `{saved['diff']}` "
                f"({saved['diff_bytes']} bytes), {saved['untracked_files']} untracked files listed in "
                f"`{saved['untracked']}`"
            )
        elif attempt.get("git_dirty"):
            parts.append(f"attempt {number} ran from a dirty tree (its diff was not saved)")
    return "; ".join(parts)


def _provenance(meta: dict[str, Any], n_records: int) -> str:
    versions = meta.get("versions") or {}
    commit = meta.get("git_commit")
    commit_text = (
        "not a git checkout"
        if commit is None
        else commit[:12] + (" (dirty)" if meta.get("git_dirty") else "")
    )
    attempts = meta.get("attempts") or []
    items = [
        ("status", _status(meta)),
        *((("uncommitted changes", _uncommitted(attempts)),) if _uncommitted(attempts) else ()),
        ("command", f"`{meta.get('command', '')}`"),
        ("preset", meta.get("preset")),
        ("seeds", meta.get("seeds")),
        ("device", f"{meta.get('device')}" + (f" ({meta['gpu']})" if meta.get("gpu") else "")),
        ("CPU", f"{meta.get('cpu')}, {_threads(meta)} torch threads"),
        ("versions", ", ".join(f"{key} {value}" for key, value in versions.items())),
        ("git commit", commit_text),
        ("started / ended", f"{meta.get('started_at')} / {meta.get('ended_at') or '-'}"),
        ("attempts", f"{len(attempts)} (resumed {len(attempts) - 1} times)" if len(attempts) > 1 else "1"),
        ("records", n_records),
        ("load", load_state(meta)[1]),
        ("run directory", f"`{relative_run_dir(meta)}`"),
    ]
    return "\n".join(f"- {key}: {value}" for key, value in items)


@style.figure_function
def _curves_figure(stepped: pd.DataFrame, metrics: list[str]) -> Figure:
    """Value against step, one panel per metric, one line per variant: mean ± one sd over seeds.

    A variant named ``library/method`` (or ending so) takes the method's colour and the library's
    marker and line style (:mod:`~nodebench.report.style`); other variants get distinct colours.
    """
    from matplotlib.figure import Figure

    variants = list(dict.fromkeys(stepped["variant"]))
    solvers = {v: style.split_solver(v) for v in variants}
    colours = style.palette(m if lib else v for v, (lib, m) in solvers.items())

    def look(key: tuple[str, ...]) -> dict[str, Any]:
        library, method = solvers[key[0]]
        marker, linestyle = style.library_style(library)
        colour = colours[method if library else key[0]]
        return {
            "colour": colour,
            "label": key[0],
            "linestyle": linestyle,
            "marker": marker if library else None,
        }

    fig = Figure(figsize=(4.2 * len(metrics) + 1.8, 3.4), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        data = stepped[stepped["metric"] == metric]
        style.lines_with_bands(ax, style.group_bands(data, "step", "value", ["variant"], look))
        unit = data["unit"].iloc[0]
        ax.set_title(metric)
        ax.set(xlabel="step", ylabel=f"{metric} [{unit}]" if unit else metric)
        ax.grid(alpha=0.3)
    handles = []
    for variant in variants:
        spec = look((variant,))
        handles.append(
            style.handle(variant, spec["colour"], marker=spec["marker"], linestyle=spec["linestyle"])
        )
    style.categorical_legend(fig, handles, "variant", loc="outside right upper")
    return fig


def _curves(records: pd.DataFrame, path: Path) -> tuple[bool, list[str]]:
    """Plot value against step per metric (a line per variant) for metrics recorded at two steps or more.

    Returns:
        Whether a figure was written, and the metrics left out beyond :data:`MAX_CURVES`.
    """
    stepped = records[records["step"] >= 0]
    metrics = [m for m, group in stepped.groupby("metric", sort=False) if group["step"].nunique() > 1]
    if not metrics:
        return False, []
    _curves_figure(stepped, metrics[:MAX_CURVES]).savefig(path, dpi=100)
    return True, metrics[MAX_CURVES:]


RUNS_DIR = "runs"  # per-run pages, beside REPORT.md


def run_page(meta: dict[str, Any]) -> str:
    """The per-run page's path relative to the report folder."""
    return f"{RUNS_DIR}/{meta['run_id']}.md"


def _run_page(
    meta: dict[str, Any], records: pd.DataFrame, figure_metrics: re.Pattern[str] | None = None
) -> str:
    """One run's page: status, provenance, protocol card, final values, versions."""
    lines = [f"# Run `{meta['run_id']}` ({meta.get('workload')}, preset {meta.get('preset')})", ""]
    lines += [f"Status: {_status(meta)}. Back to the [report](../REPORT.md).", ""]
    lines += ["## Provenance", "", _provenance(meta, len(records)), ""]
    lines += ["## Protocol", "", _demote_headings(_protocol_card(meta), levels=2), ""]
    lines += ["## Final values", ""]
    figure_rows = (
        records["metric"].str.fullmatch(figure_metrics)
        if figure_metrics is not None and not records.empty
        else pd.Series(False, index=records.index)
    )
    values = records[~figure_rows]
    if values.empty:
        lines += ["No records.", ""] if records.empty else ["Only figure data (below).", ""]
    else:
        lines += [
            "Last value per seed, then mean and sample standard deviation over seeds (`std`, `seeds`).",
            "",
            markdown_table(final_values(values)),
            "",
        ]
    if figure_rows.any():
        names = ", ".join(f"`{name}`" for name in dict.fromkeys(records.loc[figure_rows, "metric"]))
        lines += [
            f"Figure data ({int(figure_rows.sum())} rows: {names}) is left out of this table and "
            "plotted in the workload's section of the report.",
            "",
        ]
    lines += ["## Versions and machine", "", markdown_table(_versions_table([meta])), ""]
    return "\n".join(lines)


def _curves_section(meta: dict[str, Any], records: pd.DataFrame, out_dir: Path) -> list[str]:
    """Generic curves of a run's stepped metrics (for workloads without a report section), captioned."""
    name = f"{meta['workload']}-{meta['run_id']}-curves.png"
    written, left_out = _curves(records, out_dir / "figures" / name)
    lines = []
    if written:
        seeds = sorted(s for s in records["seed"].unique() if s >= 0)
        spread = "bands: ± one sd over seeds" if len(seeds) > 1 else "one seed, no spread"
        lines += [
            f"![{meta['workload']} curves, run {meta['run_id']}](figures/{name})",
            "",
            f"*Value of each stepped metric against its step, per variant; run `{meta['run_id']}`, preset "
            f"{meta.get('preset')}, seeds {', '.join(map(str, seeds)) or '-'}; {spread}.*",
            "",
        ]
    if left_out:
        lines += [f"Not plotted: {', '.join(left_out)}.", ""]
    return lines


RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")


def _captioned(text: str, metas: list[dict[str, Any]]) -> str:
    """``text`` with a caption under every figure that has none (an italic line right after it).

    The generic caption names the figure (its alt text) and the presets of the runs it draws: those
    whose run ids appear in its alt text or file name, else all of ``metas``. It knows the runs, not
    the data drawn, so it names a seed only where those runs have a single one; otherwise it lists the
    runs' seeds and says it cannot tell which the figure draws. Sections caption their own figures
    (the seeds drawn, what the spread is over); such a caption is kept.
    """
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        match = re.fullmatch(r"!\[(?P<alt>[^\]]*)\]\([^)]*\)\s*", line)
        if not match:
            continue
        following = next((x for x in lines[i + 1 :] if x.strip()), "")
        if following.startswith("*") and not following.startswith("**"):
            continue
        named = set(RUN_ID.findall(line))
        drawn = [m for m in metas if m["run_id"] in named] or metas
        presets = ", ".join(dict.fromkeys(str(m.get("preset")) for m in drawn))
        seeds = sorted({int(s) for m in drawn for s in (m.get("seeds") or [])})
        if len(seeds) == 1:
            said = f"one seed ({seeds[0]})"
        else:
            said = (
                f"the runs' seeds are {', '.join(map(str, seeds)) or '-'}; the section does not say which "
                "of them the figure draws"
            )
        out += ["", f"*{match['alt']}. Preset {presets}; {said}.*"]
    return "\n".join(out)


def _versions_table(metas: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for meta in metas:
        versions = meta.get("versions") or {}
        commit = meta.get("git_commit")
        rows.append(
            {
                "run": meta["run_id"],
                "workload": meta.get("workload"),
                "host": meta.get("hostname"),
                "platform": meta.get("platform"),
                "CPU": meta.get("cpu"),
                "GPU": meta.get("gpu") or "",
                "device": meta.get("device"),
                "threads": _threads(meta),
                **{name: versions.get(name) for name in versions},
                "git": "" if commit is None else commit[:12] + ("+dirty" if meta.get("git_dirty") else ""),
            }
        )
    return pd.DataFrame(rows)


def _machines_table(metas: list[dict[str, Any]]) -> pd.DataFrame:
    """The distinct machines and software versions of the runs, with how many runs used each."""
    table = _versions_table(metas).drop(columns=["run", "git"])
    if table.empty:
        return table
    columns = [c for c in table.columns if c != "workload"]
    counted = table.astype(str).groupby(columns, sort=False).size().reset_index(name="runs")
    return counted


def _claims_section(workload: str, records: pd.DataFrame, metas: list[dict[str, Any]]) -> list[str]:
    """The claims resting on ``workload``, evaluated on this report's runs (nodebench.claims decides)."""
    ours = [claim for claim in claims.CLAIMS if claim.spec.workload == workload]
    if not ours:
        return []
    results = [r for r in claims.evaluate(ours, records, metas) if not r.evidence.empty]
    if not results:
        return [
            f"No claim of the paper rests on these runs (the {len(ours)} claims on `{workload}` cite the "
            "presets named in results/SUMMARY.md's claims table).",
            "",
        ]
    return [
        "#### The paper's claims on these runs",
        "",
        "Verdicts of `nodebench.claims` on the runs of this report (results/SUMMARY.md gives them on every "
        "stored run); the rules that decided them:",
        "",
        *rules_text(results),
        "",
        verdict_table(results),
        "",
        *(f"- Caveat, {r.claim.label}: {c}" for r in results for c in r.caveats),
        "",
    ]


def build_report(
    run_dirs: Iterable[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    finished_seeds: Callable[[str], Any] | None = None,
) -> Path:
    """Write ``REPORT.md``, one page per run and PNG figures for a set of runs, from their stored
    records and meta only.

    ``REPORT.md`` holds, per workload, the claims its runs bear on, the workload's own section from
    ``nodebench.report.<workload>.section(df, meta_list, out_dir)`` if that module exists (else generic
    curves of stepped metrics), then an index of the runs and the machines that made them. Each run's
    status, provenance, protocol card and final values are on its own page, ``runs/<run-id>.md``.

    Arguments:
        run_dirs: run directories, folders of runs or globs (:func:`nodebench.store.resolve_run_dirs`).
        out_dir: where ``REPORT.md``, ``runs/`` and ``figures/`` go (created if needed).
        finished_seeds: for a run that did not complete, the seeds all of whose units it finished
            (and chains: :func:`nodebench.runner.finished_parts`); without it such runs support no claim.

    Returns:
        The path of ``REPORT.md``.

    Raises:
        ValueError: ``run_dirs`` is empty.
    """
    run_dirs = list(run_dirs)
    if not run_dirs:
        raise ValueError("run_dirs is empty: there are no runs to report")
    run_dirs = resolve_run_dirs(run_dirs)
    records = load_runs(run_dirs)
    metas = [read_meta(path) for path in run_dirs]
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    (out_dir / RUNS_DIR).mkdir(parents=True, exist_ok=True)

    lines = [
        "# nodebench report",
        "",
        f"Generated {utc_now()} from {len(metas)} stored run(s); every number below is read from their "
        "records, measured on the device each run names. Each workload's results (the paper's claims on "
        "its runs, headline tables and figures) come first; each run's provenance, protocol card and "
        "final values are on its own page, linked from the index at the end.",
        "",
        f"{PLUS_MINUS} Protocols and the paper's numbers: docs/protocols.md in the repository.",
        "",
    ]
    index = []
    citable = with_finished_seeds(metas, finished_seeds)
    for workload in dict.fromkeys(m.get("workload") for m in metas):
        workload_metas = [m for m in metas if m.get("workload") == workload]
        workload_records = records[records["workload"] == workload].reset_index(drop=True)
        section, figures, failure = None, None, None
        try:
            module = _report_module(workload)
            section = getattr(module, "section", None)
            figures = _figure_pattern(_report_module(workload, "nodebench.schema"))
            if section is not None:
                text = section(workload_records, workload_metas, out_dir).strip()
        except Exception:
            section, failure = None, traceback.format_exc(limit=3).strip()
        lines += [f"## {workload}", ""]
        lines += _claims_section(workload, records, citable)
        if section is not None:
            lines += [_captioned(text, workload_metas), ""]
        if failure is not None:
            lines += [f"**The {workload} section failed to build:**", "", "```", failure, "```", ""]
        for meta in workload_metas:
            run_records = workload_records[workload_records["run_id"] == meta["run_id"]]
            if section is None:  # no section of its own: generic curves lead, per run
                lines += _curves_section(meta, run_records, out_dir)
            (out_dir / run_page(meta)).write_text(_run_page(meta, run_records, figures), encoding="utf-8")
            index.append(
                {
                    "workload": workload,
                    "preset": meta.get("preset"),
                    "run": f"[`{meta['run_id']}`]({run_page(meta)})",
                    "status": meta.get("status"),
                    "device": meta.get("device"),
                    "started": meta.get("started_at"),
                    "records": len(run_records),
                }
            )
    lines += [
        "## Runs",
        "",
        "Each run's page has its status, provenance (including the load beside it), protocol card, final "
        "values and versions.",
        "",
        markdown_table(pd.DataFrame(index)),
        "",
        "## Machines and versions",
        "",
        "The software and hardware that produced the runs above (each run's own page names its own).",
        "",
        markdown_table(_machines_table(metas)),
        "",
    ]
    path = out_dir / "REPORT.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
