"""Records of workload ``compat`` (torchdiffeq's own test suite, run against each backend).

Counts: variant ``"<backend>/<module>"`` (a test module of the checkout's ``tests/``), metrics
``"<kind>_<outcome>"`` (kind ``tests`` or ``subtests``; outcome ``pass``, ``fail``, ``error``,
``skip``) over every test method and subtest, the same
with ``_aside`` appended over the subtests that name a method the run sets aside (the config's
``aside``), ``tests_pass_without_aside`` (test methods that
pass, or fail only in such subtests) and ``seconds``.

Outcomes: one row per test method and subtest, variant ``"<backend>/<id>"`` (the unittest id, and the
subtest's parameters as unittest prints them; a repeated id gets ``" #k"``), metric ``"outcome_<outcome>"``,
value 1. The failure messages are the unit's artifact ``outcomes-<backend>-<module>.json``.
"""

from __future__ import annotations

import re

BACKENDS = ("torchdiffeq", "nodebench")
#: Per-outcome rows: figure data for the report (listed there, not in a run's final-values table).
OUTCOME_PREFIX = "outcome_"
FIGURE_METRICS = (r"outcome_\w+",)


def count_variant(backend: str, module: str) -> str:
    return f"{backend}/{module}"


def split_variant(variant: str) -> tuple[str, str]:
    """``(backend, rest)`` of a variant: the module (counts) or the test id (outcomes)."""
    backend, _, rest = variant.partition("/")
    return backend, rest


def names_method(test_id: str, methods: tuple[str, ...]) -> bool:
    """Whether a subtest's parameters name one of ``methods`` (``method='<name>'``)."""
    found = re.findall(r"method='([^']*)'", test_id)
    return any(m in methods for m in found)
