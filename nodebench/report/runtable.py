"""The run table of ``results/README.md``: one row per committed run, from its ``meta.json`` (never typed).

Rendered into the ``run-table`` block by ``nodebench report --docs`` (:mod:`nodebench.report.prose`). Wall
time is the sum over a run's attempts of ``ended_at - started_at``; an attempt that was killed has no end
and is counted as such, not guessed. Threads are the run's torch threads (its config's, else those
recorded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nodebench import store
from nodebench.claims.evidence import attempt_seconds, tree_state
from nodebench.report._build import _threads

ORDER = ("spiral", "memory", "tolerance", "nfe", "solvers", "mnist", "latent")


def rank(workload: str | None) -> tuple[int, str]:
    """Where a workload's runs sit in the tables: :data:`ORDER`, then any other by name."""
    return (ORDER.index(workload) if workload in ORDER else len(ORDER), str(workload))


def format_seconds(seconds: float) -> str:
    """``2.3 h``, ``14.7 min`` or ``45 s``."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _wall(meta: dict[str, Any]) -> str:
    times = [attempt_seconds(a) for a in meta.get("attempts") or []]
    text = format_seconds(sum(t for t in times if t is not None))
    open_last = bool(times) and times[-1] is None and meta.get("status") == "running"
    killed = sum(t is None for t in times) - open_last
    if killed:
        text += f" + {killed} killed attempt{'s' * (killed > 1)} (no end recorded)"
    if open_last:
        text += " + an attempt still running or killed (no end recorded)"
    return text


def first_command(meta: dict[str, Any]) -> str:
    """The command the run was started with."""
    attempts = meta.get("attempts") or []
    return attempts[0]["command"] if attempts else meta.get("command", "")


def _command(meta: dict[str, Any]) -> str:
    resumed = len(meta.get("attempts") or []) - 1
    return f"`{first_command(meta)}`" + (f", resumed {resumed}x" if resumed > 0 else "")


def rows(runs_root: Path) -> list[dict[str, Any]]:
    """One row per run under ``runs_root`` (``runs/<workload>/<run-id>``), in workload then start order."""
    metas = [store.read_meta(p.parent) for p in runs_root.glob("*/*/meta.json")]
    metas.sort(key=lambda m: (rank(m.get("workload")), m.get("started_at")))
    out = []
    for m in metas:
        commit = m.get("git_commit")
        out.append(
            {
                "workload": m.get("workload"),
                "run": f"`runs/{m.get('workload')}/{m.get('run_id')}`",
                "preset": m.get("preset"),
                "command": _command(m),
                "wall time": _wall(m),
                "threads": _threads(m),
                "CPU": m.get("cpu"),
                "commit": "-" if commit is None else f"`{commit[:8]}`",
                "code": tree_state(m),
                "status": m.get("status"),
            }
        )
    return out


def table(runs_root: Path) -> str:
    """The markdown table of :func:`rows`."""
    body = rows(runs_root)
    if not body:
        return "(no runs)"
    head = list(body[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[k]).replace("|", "\\|") for k in head) + " |" for r in body]
    return "\n".join(lines)
