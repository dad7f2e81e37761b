"""Small table helpers: final values per variant and markdown rendering (no tabulate needed)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def final_values(records: pd.DataFrame) -> pd.DataFrame:
    """Final value of each variant x metric: the last row per seed, then mean and spread over seeds.

    Arguments:
        records: tidy records (at least ``variant, seed, metric, unit, value``) in file order.

    Returns:
        Columns ``variant, metric, unit, value`` (mean over seeds), ``std`` (sample standard deviation
        over seeds, NaN for one seed) and ``seeds`` (count), in order of first appearance.
    """
    columns = ["variant", "metric", "unit", "value", "std", "seeds"]
    if records.empty:
        return pd.DataFrame(columns=columns)
    last = records.groupby(["variant", "metric", "unit", "seed"], sort=False)["value"].last().reset_index()
    table = (
        last.groupby(["variant", "metric", "unit"], sort=False)["value"]
        .agg(value="mean", std="std", seeds="size")
        .reset_index()
    )
    return table[columns]


def _cell(value: Any, floatfmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        text = format(value, floatfmt)
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """Render ``frame`` (its columns, not its index) as a GitHub-flavoured markdown table.

    Arguments:
        frame: the table.
        floatfmt: format spec for floats; NaN renders as an empty cell.

    Returns:
        The markdown text, without a trailing newline.
    """
    header = [_cell(str(column), floatfmt) for column in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(dtype) for dtype in frame.dtypes]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if is_num else "---" for is_num in numeric) + "|",
    ]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(value, floatfmt) for value in row) + " |")
    return "\n".join(lines)
