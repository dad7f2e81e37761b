"""Numbers in prose that cannot go stale: measured numbers in the project's documents live only inside
markers that this module renders from the committed records.

    nodebench report --docs            # re-render every marker of the documents in place
    nodebench report --docs --check    # exit 1 when a document is out of date (the test suite runs it)

Two kinds of marker, both invisible when the markdown is rendered:

- a block, ``<!-- NAME:start -->`` ... ``<!-- NAME:end -->`` on lines of their own, holds a table or a
  list; ``NAME`` is one of :data:`BLOCKS`;
- a fact, ``<!-- fact:KEY -->TEXT<!-- /fact -->`` inside a sentence, holds a number or a few words;
  ``KEY`` is ``NAME:ARG:ARG...`` with ``NAME`` one of :data:`FACTS` (a run's wall time, CPU hours, load,
  a config field, a recorded value, a claim's value or verdict).

Everything is read from ``results/runs`` (records and meta, and the claims evaluated on them); no model
runs. Numbers that describe the code rather than a run (operation counts, say) are checked by tests.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from nodebench import claims, store
from nodebench.claims import policy
from nodebench.claims.evidence import (
    attempt_seconds,
    footprint,
    load_state,
    machine,
    seeds_of,
    with_finished_seeds,
)
from nodebench.report import runtable
from nodebench.report._tables import markdown_table
from nodebench.report.runtable import format_seconds

#: The documents whose markers are rendered, relative to the repository root.
DOCUMENTS = ("README.md", "docs/protocols.md", "results/README.md")
FACT = re.compile(r"<!-- fact:(?P<key>[^ ]+) -->(?P<text>.*?)<!-- /fact -->")
BLOCK = re.compile(r"(?ms)^<!-- (?P<name>[a-z0-9-]+):start -->\n(?P<body>.*?)^<!-- (?P=name):end -->$")


class StaleFact(ValueError):
    """A marker whose key is unknown or whose run, variant or claim is not in the records."""


class Sources:
    """The committed runs, read once: metas, records and the claims' results on them."""

    def __init__(self, runs_root: Path, finished_seeds: Callable[[str], Any] | None = None) -> None:
        self.runs_root = Path(runs_root)
        self.finished_seeds = finished_seeds
        dirs = sorted(p.parent for p in self.runs_root.glob("*/*/meta.json"))
        self.dirs = {d.name: d for d in dirs}
        self.metas = {d.name: store.read_meta(d) for d in dirs}

    def meta(self, run_id: str) -> dict[str, Any]:
        try:
            return self.metas[run_id]
        except KeyError:
            raise StaleFact(f"no run {run_id!r} under {self.runs_root}") from None

    @functools.cached_property
    def records(self) -> pd.DataFrame:
        return store.load_runs(list(self.dirs.values())) if self.dirs else pd.DataFrame(columns=store.COLUMNS)

    @functools.cached_property
    def results(self) -> dict[str, claims.Result]:
        metas = with_finished_seeds(list(self.metas.values()), self.finished_seeds)
        return {r.claim.id: r for r in claims.evaluate(claims.CLAIMS, self.records, metas)}

    def result(self, claim_id: str) -> claims.Result:
        try:
            return self.results[claim_id]
        except KeyError:
            raise StaleFact(f"no claim {claim_id!r} (ids: {sorted(self.results)})") from None


# ---- facts ----------------------------------------------------------------------------------------------


def _runs(sources: Sources, ids: str) -> list[dict[str, Any]]:
    """The runs named by comma-separated ids; ``*``: every run."""
    if ids == "*":
        return sorted(sources.metas.values(), key=lambda m: m.get("started_at") or "")
    return [sources.meta(run_id) for run_id in ids.split(",")]


def _wall(sources: Sources, ids: str) -> str:
    """Total wall time of the runs' attempts (killed attempts count nothing)."""
    seconds = sum(s for m in _runs(sources, ids) for s in map(attempt_seconds, m.get("attempts") or []) if s)
    return format_seconds(seconds)


def _cpu(sources: Sources, ids: str) -> str:
    """CPU hours of the runs (measured, or the wall-time bound, said so)."""
    print_ = footprint(_runs(sources, ids))
    return f"{print_.cpu_hours:.1f} CPU hours" + (
        "" if print_.measured else " (at most: wall time x threads)"
    )


def _load(sources: Sources, run_id: str) -> str:
    """The range of the 1-minute load average at the run's unit starts and ends."""
    under, text = load_state(sources.meta(run_id))
    if under is None:
        return "load not recorded"
    return "load " + text.split("1-minute load average ", 1)[1].split(" at unit", 1)[0]


def _machines(sources: Sources, ids: str) -> str:
    return ", ".join(dict.fromkeys(machine(m) for m in _runs(sources, ids)))


def _config(sources: Sources, run_id: str, field: str) -> str:
    config = sources.meta(run_id).get("config") or {}
    if field not in config:
        raise StaleFact(f"run {run_id} has no config field {field!r}")
    value = config[field]
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _value(sources: Sources, run_id: str, variant: str, seed: str, metric: str, fmt: str) -> str:
    """The last recorded value of ``metric`` for the run's variant and seed, formatted by ``fmt``."""
    records = sources.records
    rows = records[
        (records["run_id"] == run_id)
        & (records["variant"] == variant)
        & (records["seed"] == int(seed))
        & (records["metric"] == metric)
    ]
    if rows.empty:
        raise StaleFact(f"run {run_id} has no {metric!r} of {variant!r}, seed {seed}")
    return format(float(rows.sort_values("step", kind="stable")["value"].iloc[-1]), fmt)


def _claim(sources: Sources, claim_id: str) -> str:
    return sources.result(claim_id).ours


def _verdict(sources: Sources, claim_id: str) -> str:
    return sources.result(claim_id).verdict


def _seeds(sources: Sources, run_id: str) -> str:
    return ", ".join(map(str, seeds_of(sources.meta(run_id))))


#: Inline facts by name; their arguments follow the name in the key, separated by ``:``.
FACTS: dict[str, Callable[..., str]] = {
    "wall": _wall,
    "cpu": _cpu,
    "load": _load,
    "machines": _machines,
    "config": _config,
    "value": _value,
    "claim": _claim,
    "verdict": _verdict,
    "seeds": _seeds,
}


# ---- blocks ---------------------------------------------------------------------------------------------


def _run_table(sources: Sources) -> str:
    return runtable.table(sources.runs_root)


def _hours_table(sources: Sources) -> str:
    """What the cited runs took, per workload and preset: the command, wall time, CPU hours, machine."""
    groups: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for result in sources.results.values():
        for meta in result.evidence.metas:
            groups.setdefault((meta["workload"], meta.get("preset")), {})[meta["run_id"]] = meta
    rows = []
    for (workload, preset), metas in sorted(groups.items(), key=lambda g: runtable.rank(g[0][0])):
        runs = sorted(metas.values(), key=lambda m: m["run_id"])
        print_ = footprint(runs)
        commands = dict.fromkeys(runtable.first_command(m) for m in runs)
        wall = sum(s for m in runs for s in map(attempt_seconds, m.get("attempts") or []) if s)
        rows.append(
            {
                "workload": workload,
                "preset": preset,
                "command": "; ".join(f"`{c}`" for c in commands),
                "runs": len(runs),
                "wall time": format_seconds(wall),
                "CPU hours": f"{print_.cpu_hours:.2f}" + ("" if print_.measured else " (at most)"),
                "machine": ", ".join(print_.machines),
                "timings": print_.load_text(),
            }
        )
    return markdown_table(pd.DataFrame(rows)) if rows else "(no cited runs)"


def _verdict_rules(sources: Sources) -> str:
    return "\n".join(
        [f"- **{rule.name}**: {rule.describe()}." for rule in policy.RULES.values()]
        + [f"- {policy.NOT_RUN_TEXT}."]
    )


def _adams_nfe(sources: Sources) -> str:
    """NFE and error of adams, dopri5 and scipy's LSODA at rtol 1e-8 in the latest solvers run."""
    runs = sorted(m["run_id"] for m in sources.metas.values() if m.get("workload") == "solvers")
    if not runs:
        raise StaleFact("no solvers run")
    records = sources.records[sources.records["run_id"] == runs[-1]]
    wide = records.pivot_table(index=["variant", "step"], columns="metric", values="value").reset_index()
    wide = wide[
        (wide["rtol"] == 1e-8)
        & wide["variant"].str.fullmatch(r"[a-z]+/(nodebench/(adams|dopri5)|scipy/lsoda)")
    ]
    rows = [
        {
            "problem": v.split("/")[0],
            "solver": "/".join(v.split("/")[1:]),
            "NFE": int(nfe),
            "max error": f"{err:.1e}",
        }
        for v, nfe, err in zip(wide["variant"], wide["nfe"], wide["error"])
    ]
    return f"Run `{runs[-1]}` (workload `solvers`), rtol = 1e-8:\n\n" + markdown_table(pd.DataFrame(rows))


#: Blocks by name.
BLOCKS: dict[str, Callable[[Sources], str]] = {
    "run-table": _run_table,
    "hours-table": _hours_table,
    "verdict-rules": _verdict_rules,
    "adams-nfe": _adams_nfe,
}


# ---- rendering --------------------------------------------------------------------------------------------


def fact(sources: Sources, key: str) -> str:
    """The text of the fact ``key`` (``NAME:ARG...``)."""
    name, *args = key.split(":")
    if name not in FACTS:
        raise StaleFact(f"unknown fact {name!r} (known: {sorted(FACTS)})")
    try:
        return FACTS[name](sources, *args)
    except TypeError as exc:
        raise StaleFact(f"fact {key!r}: {exc}") from None


def render(text: str, sources: Sources) -> str:
    """``text`` with every block and fact re-rendered."""

    def block(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in BLOCKS:
            raise StaleFact(f"unknown block {name!r} (known: {sorted(BLOCKS)})")
        body = BLOCKS[name](sources).rstrip("\n")
        note = (
            f"<!-- generated by `nodebench report --docs` from results/runs: edit {name}, not this text -->"
        )
        return f"<!-- {name}:start -->\n{note}\n{body}\n<!-- {name}:end -->"

    text = BLOCK.sub(block, text)
    return FACT.sub(lambda m: f"<!-- fact:{m['key']} -->{fact(sources, m['key'])}<!-- /fact -->", text)


def stale(path: Path, sources: Sources) -> list[str]:
    """The markers of ``path`` whose text differs from what the records give (``KEY: has -> should``)."""
    text = path.read_text(encoding="utf-8")
    out = []
    for match in FACT.finditer(text):
        want = fact(sources, match["key"])
        if match["text"] != want:
            out.append(f"fact {match['key']}: {match['text']!r} -> {want!r}")
    for match in BLOCK.finditer(text):
        if render(match.group(0), sources) != match.group(0):
            out.append(f"block {match['name']} is out of date")
    return out


def main(argv: list[str] | None = None, finished_seeds: Callable[[str], Any] | None = None) -> int:
    """The command line (see the module docstring); ``finished_seeds`` as for the summary."""
    parser = argparse.ArgumentParser(prog="nodebench report --docs", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository root (default: .)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a document is out of date")
    args = parser.parse_args(argv)
    sources = Sources(args.root / "results" / "runs", finished_seeds)
    status = 0
    for name in DOCUMENTS:
        path = args.root / name
        if args.check:
            problems = stale(path, sources)
            for problem in problems:
                print(f"{name}: {problem}")
            status |= bool(problems)
        else:
            path.write_text(render(path.read_text(encoding="utf-8"), sources), encoding="utf-8")
            print(f"{name}: rendered")
    if args.check:
        print(
            "documents up to date" if not status else "documents out of date: run `nodebench report --docs`"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
