"""Claims rendered as markdown (:mod:`nodebench.claims` results), for SUMMARY.md and every REPORT.md."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from nodebench.claims import policy
from nodebench.claims.core import Result
from nodebench.claims.evidence import footprint
from nodebench.report._tables import markdown_table


def runs_text(result: Result) -> str:
    return ", ".join(f"`{r}`" for r in result.evidence.run_ids()) or "-"


def seeds_text(result: Result) -> str:
    return ", ".join(map(str, result.evidence.seeds())) or "-"


def verdict_cell(result: Result) -> str:
    return f"**{result.verdict}**" if result.verdict in policy.COMPARED else f"*{result.verdict}*"


def verdict_table(results: Sequence[Result]) -> str:
    """One row per claim: the paper's value, ours, the verdict and the rule that decided it, why."""
    rows = [
        {
            "claim": r.claim.label,
            "paper": r.claim.paper,
            "ours": r.ours,
            "verdict": verdict_cell(r),
            "rule": r.claim.rule.name if r.verdict != policy.NOT_RUN else "-",
            "why": r.why,
        }
        for r in results
    ]
    return markdown_table(pd.DataFrame(rows))


def evidence_table(results: Sequence[Result]) -> str:
    """One row per claim with evidence: preset, seeds, runs, their cost, machine, load and code state."""
    rows = []
    for r in results:
        if r.evidence.empty:
            continue
        print_ = footprint(r.evidence.metas)
        rows.append(
            {
                "claim": r.claim.label,
                "preset": r.evidence.preset,
                "seeds": seeds_text(r),
                "runs": runs_text(r),
                "CPU h": print_.cpu_text(),
                "machine": ", ".join(print_.machines),
                "timings": print_.load_text(),
                "code": ", ".join(print_.trees),
            }
        )
    return markdown_table(pd.DataFrame(rows)) if rows else "No claim has a citable run yet."


def rules_text(results: Sequence[Result]) -> list[str]:
    """One bullet per rule that decided a verdict in ``results``, as the policy states it."""
    used = dict.fromkeys(r.claim.rule.name for r in results if r.verdict != policy.NOT_RUN)
    return [f"- **{name}** rule: {policy.RULES[name].describe()}." for name in used]
