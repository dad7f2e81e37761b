"""A claim, what measuring it returns, and :func:`evaluate`, which turns stored runs into verdicts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from nodebench.claims import policy
from nodebench.claims.evidence import NO_EVIDENCE, Evidence, Spec, select


@dataclass(frozen=True)
class Context:
    """Every stored run the claims are evaluated on (for figures a claim needs beyond its evidence, such
    as a data scale recorded by another run or a protocol study's cells)."""

    records: pd.DataFrame
    metas: list[dict[str, Any]]


@dataclass(frozen=True)
class Measurement:
    """Ours, measured from a claim's evidence.

    Attributes:
        ours: the value as the summary prints it.
        inputs: the claim's rule's inputs (:mod:`nodebench.claims.policy`).
        rows: the records it was computed from (they name the runs and seeds cited).
        notes: what qualifies the number (the protocol it ran, how many seeds), in a few words each.
        caveats: measured facts a reader should weigh against the verdict, as sentences.
        per_seed: per seed, the value as printed and the rule's inputs on that seed alone (where the
            claim can be decided per seed); when the seeds' verdicts differ, the summary prints them.
    """

    ours: str
    inputs: dict[str, Any]
    rows: pd.DataFrame
    notes: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()
    per_seed: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)


Measure = Callable[[Evidence, Context], Measurement | None]


@dataclass(frozen=True)
class Claim:
    """One claim of the paper (or of the seed slides), declared once.

    Attributes:
        id: a stable short name, e.g. ``"table1.odenet"``.
        label: the claim as a row names it.
        short: a few words that name it among the claims of its source (the summary's first lines).
        source: where the paper states it (``"Table 1"``, ``"Figure 3c"``, ``"slides, Example 1"``).
        paper: the paper's value, as published.
        kind: the comparison kind (a ratio to a number, an ordering, a trend, a memory class, a
            fraction, a threshold, not comparable).
        spec: the evidence to select.
        measure: how ours is computed from the evidence (``None``: the evidence lacks the records).
        rule: the policy rule that decides the verdict.
        how: how ours is computed, in a sentence (printed where claims are listed).
    """

    id: str
    label: str
    short: str
    source: str
    paper: str
    kind: str
    spec: Spec
    measure: Measure
    rule: policy.Rule
    how: str


@dataclass(frozen=True)
class Result:
    """A claim evaluated on stored runs.

    Attributes:
        claim: the claim.
        verdict: one of :data:`nodebench.claims.policy.VERDICTS`.
        ours: the value as printed (with per-seed values where the seeds' verdicts differ).
        why: the notes, joined.
        evidence: the runs and records the value came from (empty for ``not run``).
        caveats: measured caveats.
    """

    claim: Claim
    verdict: str
    ours: str
    why: str
    evidence: Evidence
    caveats: tuple[str, ...] = ()


def _not_run(claim: Claim, why: str) -> Result:
    return Result(claim, policy.NOT_RUN, policy.NOT_RUN, why, NO_EVIDENCE)


def evaluate_claim(claim: Claim, context: Context) -> Result:
    """One claim's :class:`Result` on the runs of ``context``."""
    evidence = select(context.records, context.metas, claim.spec)
    if evidence.empty:
        return _not_run(claim, f"no citable run: needs {claim.spec.text()}")
    measured = claim.measure(evidence, context)
    if measured is None or measured.rows.empty:
        return _not_run(claim, f"the cited runs ({', '.join(evidence.run_ids())}) lack the records it needs")
    verdict = claim.rule.decide(**measured.inputs)
    ours = measured.ours
    if len(measured.per_seed) > 1:
        by_seed = {seed: claim.rule.decide(**inputs) for seed, (_, inputs) in measured.per_seed.items()}
        if len(set(by_seed.values())) > 1:
            ours += "; per seed: " + ", ".join(
                f"{seed}: {text} ({by_seed[seed]})" for seed, (text, _) in sorted(measured.per_seed.items())
            )
    return Result(
        claim,
        verdict,
        ours,
        "; ".join(measured.notes),
        evidence.restrict(measured.rows),
        measured.caveats,
    )


def evaluate(claims: Sequence[Claim], records: pd.DataFrame, metas: Sequence[dict[str, Any]]) -> list[Result]:
    """Every claim's :class:`Result` on the given runs (records and meta of any workload and preset)."""
    context = Context(records, list(metas))
    return [evaluate_claim(claim, context) for claim in claims]


def tally(results: Sequence[Result]) -> dict[str, int]:
    """Verdict counts, every verdict present (zero where none)."""
    counts = {verdict: 0 for verdict in policy.VERDICTS}
    for result in results:
        counts[result.verdict] += 1
    return counts


def tally_text(results: Sequence[Result]) -> str:
    """The tally as printed: the compared verdicts out of the compared claims, the others apart."""
    counts = tally(results)
    compared = sum(counts[v] for v in policy.COMPARED)
    head = ", ".join(f"{counts[v]} {v}" for v in policy.COMPARED)
    tail = ", ".join(f"{counts[v]} {v}" for v in policy.UNCOMPARED)
    return f"{head} (of {compared} claims compared with the paper); apart from these, {tail}"
