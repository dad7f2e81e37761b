"""Helpers shared by the cost sections (memory, tolerance, nfe, solvers): per-run split, pivots, figures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def runs(df: pd.DataFrame, metas: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], pd.DataFrame]]:
    """Each run's meta with its records, in the order of ``metas``, skipping runs without records."""
    for meta in metas:
        records = df[df["run_id"] == meta["run_id"]]
        if not records.empty:
            yield meta, records


def heading(meta: dict[str, Any]) -> list[str]:
    """A subsection heading naming the run, its preset and device, and a CPU-only note where it applies."""
    device = meta.get("device") or "unknown device"
    lines = [f"#### Run `{meta['run_id']}` (preset {meta.get('preset')}, {device})", ""]
    if not str(device).startswith("cuda"):
        lines += [f"Measured on CPU only: {meta.get('cpu')}, torch threads: {meta.get('torch_threads')}.", ""]
    return lines


def wide(records: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """Metrics as columns: the mean over seeds of ``value`` per ``index`` (e.g. variant and step)."""
    means = records.groupby([*index, "metric"], sort=False)["value"].mean()
    return means.unstack("metric").reset_index()


def seeds_drawn(records: pd.DataFrame) -> str:
    """The seeds a figure of ``records`` draws, for its caption (values are means over seeds)."""
    seeds = sorted(int(s) for s in records["seed"].unique() if s >= 0)
    if len(seeds) == 1:
        return f"Seed {seeds[0]} (one seed: no spread)"
    return f"Means over seeds {', '.join(map(str, seeds))} (no spread drawn)"


def linear_fit(x: pd.Series | np.ndarray, y: pd.Series | np.ndarray) -> tuple[float, float]:
    """Least-squares ``y = slope * x + intercept``; ``(nan, nan)`` with fewer than two distinct x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(np.unique(x)) < 2:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def save(fig: Figure, out_dir: Path, name: str) -> str:
    """Write ``fig`` to ``out_dir/figures/name`` and return the markdown image link."""
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "figures" / name, dpi=100)
    return f"![{name}](figures/{name})"


def figure(ncols: int, nrows: int = 1, width: float = 5.0, height: float = 4.0) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure (no pyplot state) and its axes as a 2-D array."""
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)
