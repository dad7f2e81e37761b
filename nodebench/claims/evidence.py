"""Which runs a claim rests on, and what they cost: selection, load, CPU hours, machine, tree state.

Reads records and meta only (through :mod:`nodebench.store`); imports no model, data or workload code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from nodebench.store import unit_journal

#: Timings count as taken under load when the 1-minute load average at some unit's start or end
#: exceeded the run's own torch threads by this many runnable processes or more.
OTHER_LOAD = 1.0
CLEAN, SAVED_DIFF, UNSAVED = "clean tree", "modified tree, diff saved", "modified tree, diff not saved"


@dataclass(frozen=True)
class Spec:
    """Where a claim's evidence comes from.

    Attributes:
        workload: the workload whose runs can hold it.
        presets: citable presets in order of preference: the first that holds the claim's rows wins.
        variants: a regular expression the claim's variants match in full (``None``: any variant);
            a preset whose chosen runs hold no such rows does not hold the claim.
        config: config fields a run must have (e.g. ``{"method": "adams"}``; a field a run's config
            lacks counts as its default, given as the second element: ``{"method": ("adams", "dopri5")}``).
    """

    workload: str
    presets: tuple[str, ...]
    variants: str | None = None
    config: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def text(self) -> str:
        """The spec in words, for the page that lists claims."""
        parts = [f"`{self.workload}` runs of preset " + " or else ".join(f"`{p}`" for p in self.presets)]
        if self.config:
            parts.append(", ".join(f"{k} = {v[0]}" for k, v in self.config.items()))
        if self.variants:
            parts.append(f"variants `{self.variants}`")
        return "; ".join(parts)


@dataclass(frozen=True)
class Evidence:
    """The runs a claim rests on: records of the chosen (run, seed) pairs and the runs' meta.

    Attributes:
        records: tidy records (per-run ``seed = -1`` rows of a chosen run are kept).
        metas: meta dicts of the runs that contribute, oldest first.
        preset: the preset they ran (``None``: no citable run).
    """

    records: pd.DataFrame
    metas: list[dict[str, Any]]
    preset: str | None

    @property
    def empty(self) -> bool:
        return not self.metas

    def rows(self, variants: str | None = None, metric: str | None = None) -> pd.DataFrame:
        """The records whose variant matches ``variants`` in full and whose metric is ``metric``."""
        rows = self.records
        if variants is not None:
            rows = rows[rows["variant"].str.fullmatch(variants)]
        if metric is not None:
            rows = rows[rows["metric"] == metric]
        return rows

    def seeds(self, rows: pd.DataFrame | None = None) -> list[int]:
        rows = self.records if rows is None else rows
        return sorted(int(s) for s in rows["seed"].unique() if s >= 0)

    def run_ids(self, rows: pd.DataFrame | None = None) -> list[str]:
        rows = self.records if rows is None else rows
        return list(dict.fromkeys(rows["run_id"]))

    def restrict(self, rows: pd.DataFrame) -> Evidence:
        """This evidence cut to ``rows`` (and the runs they come from)."""
        ids = set(rows["run_id"])
        return Evidence(rows, [m for m in self.metas if m["run_id"] in ids], self.preset)


NO_EVIDENCE = Evidence(
    pd.DataFrame(columns=["run_id", "variant", "seed", "step", "metric", "value"]), [], None
)


def seeds_of(meta: dict[str, Any]) -> list[int]:
    """The seeds a run can be cited for: all of a complete run's, an unfinished run's finished ones."""
    if meta.get("status") == "complete":
        return [int(s) for s in meta.get("seeds") or []]
    return [int(s) for s in meta.get("finished_seeds") or []]


def chains_of(meta: dict[str, Any]) -> set[tuple[str, int]]:
    """The (name, seed) chains an unfinished run finished (``finished_variants``; none for a complete run,
    whose seeds are all cited). A chain covers the variant ``name`` and the variants under ``name/``."""
    if meta.get("status") == "complete":
        return set()
    return {(str(name), int(seed)) for name, seed in meta.get("finished_variants") or []}


def citable(meta: dict[str, Any]) -> bool:
    """Whether anything of the run can be cited: a finished seed or a finished chain."""
    return bool(seeds_of(meta) or chains_of(meta))


def _cited_rows(rows: pd.DataFrame, meta: dict[str, Any]) -> pd.Series:
    """Which of ``rows`` (one run's) the run can be cited for: its cited seeds, and its finished chains."""
    seeds, chains = set(seeds_of(meta)), chains_of(meta)
    mask = rows["seed"].isin(seeds)
    if chains:
        mask |= pd.Series(
            [
                (variant, int(seed)) in chains or (variant.split("/", 1)[0], int(seed)) in chains
                for variant, seed in zip(rows["variant"], rows["seed"])
            ],
            index=rows.index,
            dtype=bool,
        )
    return mask


def _matches(meta: dict[str, Any], config: dict[str, tuple[Any, Any]]) -> bool:
    have = meta.get("config") or {}
    return all(have.get(key, default) == want for key, (want, default) in config.items())


def _protocol(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (meta.get("config") or {}).items() if k not in ("seeds", "threads", "models")}


def select(records: pd.DataFrame, metas: Sequence[dict[str, Any]], spec: Spec) -> Evidence:
    """The runs a claim rests on.

    For each preset of ``spec`` in turn: its runs with a citable seed (:func:`seeds_of`) and the
    required config, cut to the configuration of the latest of them (seeds, threads and the model
    list aside: an earlier configuration is another protocol, not more seeds of this one, while runs
    of other models of the same protocol add to it); where several runs hold the same seed of a
    variant, the latest (by run id, which starts with its UTC start time) wins. The first preset whose
    selection holds rows matching ``spec.variants`` is the evidence.
    """
    candidates = [
        m for m in metas if m.get("workload") == spec.workload and citable(m) and _matches(m, spec.config)
    ]
    pattern = re.compile(spec.variants) if spec.variants else None
    for preset in spec.presets:
        chosen = sorted((m for m in candidates if m.get("preset") == preset), key=lambda m: m["run_id"])
        if pattern is not None:
            ids = set(records.loc[records["variant"].str.fullmatch(pattern), "run_id"])
            chosen = [m for m in chosen if m["run_id"] in ids]
        if not chosen:
            continue
        chosen = [m for m in chosen if _protocol(m) == _protocol(chosen[-1])]
        rows = records[records["run_id"].isin({m["run_id"] for m in chosen})]
        if pattern is not None:
            rows = rows[rows["variant"].str.fullmatch(pattern)]
        owner: dict[tuple[str, int], str] = {}  # (variant, seed) -> the latest run citable for it
        for meta in chosen:
            mine = rows[rows["run_id"] == meta["run_id"]]
            mine = mine[_cited_rows(mine, meta)]
            for variant, seed in mine[["variant", "seed"]].drop_duplicates().itertuples(index=False):
                owner[(variant, int(seed))] = meta["run_id"]
        owners = set(owner.values())
        keep = pd.Series(
            [
                run in owners if seed < 0 else owner.get((variant, int(seed))) == run
                for variant, seed, run in zip(rows["variant"], rows["seed"], rows["run_id"])
            ],
            index=rows.index,
            dtype=bool,
        )
        kept = rows[keep].reset_index(drop=True)
        if kept.empty:
            continue
        ids = set(kept["run_id"])
        return Evidence(kept, [m for m in chosen if m["run_id"] in ids], preset)
    return NO_EVIDENCE


# ---- what the runs cost and where they ran ------------------------------------------------------------


def threads(meta: dict[str, Any]) -> int:
    """Torch threads the run computed with: its config's ``threads``, else its meta's count (at least 1)."""
    configured = (meta.get("config") or {}).get("threads")
    value = configured if configured is not None else meta.get("torch_threads")
    return int(value) if value else 1


def load_state(meta: dict[str, Any]) -> tuple[bool | None, str]:
    """Whether the run's timings were taken under load, and a sentence saying what was recorded.

    Returns:
        ``(None, text)`` when the run recorded no load averages (runs before load recording),
        otherwise ``(under_load, text)`` with the range of load averages, CPUs and threads.
    """
    run_dir = meta.get("run_dir")
    loads = unit_journal(run_dir) if run_dir else None
    if loads is None or loads[["load_start", "load_end"]].isna().all().all():
        return None, "load average not recorded (the run predates load recording)"
    values = loads[["load_start", "load_end"]].stack()
    cpus = loads["cpus"].dropna()
    own = threads(meta)
    under = bool(values.max() - own >= OTHER_LOAD)
    text = (
        f"1-minute load average {values.min():.1f}-{values.max():.1f} at unit starts and ends"
        f" ({len(loads)} units) on {int(cpus.max()) if not cpus.empty else '?'} CPUs, {own} torch thread(s)"
    )
    return under, text + (": **timings taken under load**" if under else ": no other load")


def attempt_seconds(attempt: dict[str, Any]) -> float | None:
    """Wall seconds of one attempt (start to end), ``None`` where it has no recorded end (killed)."""
    if not attempt.get("started_at") or not attempt.get("ended_at"):
        return None
    start, end = (datetime.fromisoformat(attempt[k]) for k in ("started_at", "ended_at"))
    return (end - start).total_seconds()


@dataclass(frozen=True)
class Cost:
    """What a run cost.

    Attributes:
        wall_seconds: the attempts' wall time, start to end (killed attempts count nothing).
        cpu_seconds: process CPU time summed over units where every unit recorded it; else units'
            own seconds (or the wall time) times the run's torch threads, an upper bound.
        measured: whether ``cpu_seconds`` is the measured CPU time (else the bound).
    """

    wall_seconds: float
    cpu_seconds: float
    measured: bool


def cost(meta: dict[str, Any]) -> Cost:
    """The run's :class:`Cost` from its meta and unit journal."""
    wall = sum(s for s in map(attempt_seconds, meta.get("attempts") or []) if s is not None)
    run_dir = meta.get("run_dir")
    units = unit_journal(run_dir) if run_dir else None
    if units is not None and not units.empty and units["cpu_s"].notna().all():
        return Cost(wall, float(units["cpu_s"].sum()), True)
    placed = [u.get("seconds") for u in (meta.get("units") or {}).values()]
    if placed and all(isinstance(s, int | float) for s in placed):  # units ran elsewhere (Ray)
        return Cost(wall, float(sum(placed)) * threads(meta), False)
    return Cost(wall, wall * threads(meta), False)


def tree_state(meta: dict[str, Any]) -> str:
    """Whether the code that ran was committed: :data:`CLEAN`, :data:`SAVED_DIFF` or :data:`UNSAVED`."""
    attempts = meta.get("attempts") or [meta]
    if any(a.get("git_dirty") and not a.get("uncommitted") for a in attempts):
        return UNSAVED
    return SAVED_DIFF if any(a.get("git_dirty") for a in attempts) else CLEAN


def machine(meta: dict[str, Any]) -> str:
    """The machine in a few words: CPU model (and GPU where the run used CUDA)."""
    cpu = str(meta.get("cpu") or "unknown CPU")
    cpu = re.sub(r"\(R\)|\(TM\)| Processor| CPU", "", cpu).replace("  ", " ").strip()
    gpu = meta.get("gpu") if str(meta.get("device", "")).startswith("cuda") else None
    return f"{cpu} + {gpu}" if gpu else cpu


@dataclass(frozen=True)
class Footprint:
    """Cost and provenance of a set of runs, as the summary prints them."""

    cpu_hours: float
    measured: bool
    machines: tuple[str, ...]
    under_load: bool | None
    trees: tuple[str, ...]

    def cpu_text(self) -> str:
        return f"{self.cpu_hours:.2f}" + ("" if self.measured else " (bound)")

    def load_text(self) -> str:
        return {True: "under load", False: "idle", None: "not recorded"}[self.under_load]


def footprint(metas: Sequence[dict[str, Any]]) -> Footprint:
    """The :class:`Footprint` of ``metas`` (CPU hours summed; under load if any run was)."""
    costs = [cost(m) for m in metas]
    states = [load_state(m)[0] for m in metas]
    under = True if any(states) else (None if None in states or not states else False)
    return Footprint(
        cpu_hours=sum(c.cpu_seconds for c in costs) / 3600,
        measured=all(c.measured for c in costs),
        machines=tuple(dict.fromkeys(machine(m) for m in metas)),
        under_load=under,
        trees=tuple(dict.fromkeys(tree_state(m) for m in metas)),
    )


def with_finished_seeds(
    metas: Sequence[dict[str, Any]], finished: Callable[[str], Any] | None
) -> list[dict[str, Any]]:
    """``metas`` with ``finished_seeds`` (and ``finished_variants``) set on every run that did not complete.

    ``finished(run_dir)`` gives the finished seeds, or a dict ``{"seeds": [...], "variants": [[name,
    seed], ...]}`` as :func:`nodebench.runner.finished_parts` does.
    """
    out = []
    for meta in metas:
        meta = dict(meta)
        if meta.get("status") != "complete" and finished is not None and meta.get("run_dir"):
            parts = finished(meta["run_dir"])
            if isinstance(parts, Mapping):
                meta["finished_seeds"] = list(parts.get("seeds") or [])
                meta["finished_variants"] = [list(v) for v in parts.get("variants") or []]
            else:
                meta["finished_seeds"] = list(parts)
        out.append(meta)
    return out
