"""compat section: torchdiffeq's own test suite, passed and failed per backend, and what still fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from nodebench.report import _cost
from nodebench.report._tables import markdown_table
from nodebench.schema import compat as schema

#: Most failing tests and subtests listed per run.
MAX_LISTED = 200


def counts(records: pd.DataFrame) -> pd.DataFrame:
    """One row per backend: tests and subtests by outcome, with and without the set-aside subtests."""
    data = records[
        ~records["metric"].str.startswith(schema.OUTCOME_PREFIX) & (records["metric"] != "seconds")
    ]
    if data.empty:
        return pd.DataFrame()
    data = data.assign(backend=data["variant"].map(lambda v: schema.split_variant(v)[0]))
    table = data.pivot_table(index="backend", columns="metric", values="value", aggfunc="sum").fillna(0)
    rows = []
    for backend, row in table.iterrows():

        def get(name: str, row: pd.Series = row) -> int:
            return int(row.get(name, 0))

        rows.append(
            {
                "backend": backend,
                "tests passed": get("tests_pass"),
                "tests failed": get("tests_fail") + get("tests_error"),
                "subtests passed": get("subtests_pass"),
                "subtests failed": get("subtests_fail") + get("subtests_error"),
                "tests + subtests passed": get("tests_pass") + get("subtests_pass"),
                "set-aside subtests passed": get("subtests_pass_aside"),
                "set-aside subtests failed": get("subtests_fail_aside") + get("subtests_error_aside"),
                "tests passed, set-aside ignored": get("tests_pass_without_aside"),
                "subtests passed, set-aside left out": get("subtests_pass") - get("subtests_pass_aside"),
            }
        )
    order = {b: i for i, b in enumerate(schema.BACKENDS)}
    return pd.DataFrame(rows).sort_values("backend", key=lambda s: s.map(order)).reset_index(drop=True)


def failures(records: pd.DataFrame, aside: tuple[str, ...]) -> pd.DataFrame:
    """Tests and subtests that do not pass on nodebench (set-aside subtests left out), with their
    outcome on torchdiffeq where the run has it."""
    data = records[records["metric"].str.startswith(schema.OUTCOME_PREFIX)]
    if data.empty:
        return pd.DataFrame()
    split = data["variant"].map(schema.split_variant)
    data = data.assign(
        backend=split.str[0], id=split.str[1], outcome=data["metric"].str.removeprefix(schema.OUTCOME_PREFIX)
    )
    outcome = data.pivot_table(index="id", columns="backend", values="outcome", aggfunc="first")
    if "nodebench" not in outcome.columns:
        return pd.DataFrame()
    bad = outcome[outcome["nodebench"] != "pass"]
    aside_ids = [i for i in bad.index if schema.names_method(i, aside)]
    # a test method failing only in set-aside subtests is left out with them
    parents = {i.split(" ", 1)[0] for i in aside_ids}
    other = {i.split(" ", 1)[0] for i in bad.index if " " in i and i not in aside_ids}
    drop = set(aside_ids) | (parents - other)
    bad = bad[[i not in drop for i in bad.index]]
    out = bad.reset_index().rename(columns={"id": "test or subtest"})
    return out[["test or subtest", *[b for b in schema.BACKENDS if b in out.columns]]]


def section(df: pd.DataFrame, meta_list: list[dict[str, Any]], out_dir: Path) -> str:
    """Counts per backend and the tests and subtests that still fail on nodebench, per run."""
    lines = [
        "torchdiffeq's own test suite (a checkout's `tests/`, unchanged), run against the checkout's "
        "torchdiffeq and against nodebench through an import alias. A test method counts as failed when "
        "any of its subtests fails; set-aside subtests name a method the run sets aside.",
        "",
    ]
    for meta, records in _cost.runs(df, meta_list):
        lines += _cost.heading(meta)
        data = meta.get("data") or {}
        aside = tuple((meta.get("config") or {}).get("aside", ()))
        lines += [
            f"Checkout `{data.get('checkout', '?')}` (commit "
            f"{data.get('git_commit') or data.get('revision') or 'unknown'}, files "
            f"sha256 `{str(data.get('sha256', '?'))[:12]}`); set aside: {', '.join(aside) or 'none'}.",
            "",
        ]
        table = counts(records)
        if table.empty:
            lines += ["No counts were recorded.", ""]
            continue
        lines += [markdown_table(table), ""]
        failing = failures(records, aside)
        if failing.empty:
            lines += ["Every test and subtest that is not set aside passes on nodebench.", ""]
            continue
        lines += [f"Not passing on nodebench ({len(failing)}, set-aside subtests left out):", ""]
        lines += [markdown_table(failing.head(MAX_LISTED)), ""]
        if len(failing) > MAX_LISTED:
            lines += [f"... and {len(failing) - MAX_LISTED} more (the run's records list them all).", ""]
    return "\n".join(lines)
