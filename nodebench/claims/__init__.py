"""The paper's claims as data: one registry, one verdict policy, the evidence behind each verdict.

- :mod:`~nodebench.claims.policy`: every verdict rule, named once, with the sentence that states it.
- :mod:`~nodebench.claims.evidence`: which runs a claim rests on; their cost, machine, load and tree.
- :mod:`~nodebench.claims.registry`: :data:`CLAIMS`, each claim declared once.
- :mod:`~nodebench.claims.core`: :func:`evaluate` turns stored runs into :class:`Result` objects.

Reads records and meta only; imports no model, data or workload code. ``results/SUMMARY.md`` and every
``REPORT.md`` render these results; nothing else decides a verdict.
"""

from nodebench.claims.core import Claim, Context, Measurement, Result, evaluate, tally, tally_text
from nodebench.claims.registry import BY_ID, CLAIMS

__all__ = ["BY_ID", "CLAIMS", "Claim", "Context", "Measurement", "Result", "evaluate", "tally", "tally_text"]
