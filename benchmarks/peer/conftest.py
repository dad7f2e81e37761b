"""pytest-benchmark suite: nodebench against torchdiffeq, measured side by side in one process.

Run: ``.venv/bin/python -m pytest benchmarks/peer --benchmark-enable -s``. Each benchmark records its
peer's median and the ratio in ``extra_info``; the ratios are printed at the end of the session.
``NODEBENCH_PEER_DEVICE=cuda`` runs them on the GPU (torch's default device; timings synchronise).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import pytest
import torch

RATIOS: list[str] = []
DEVICE = os.environ.get("NODEBENCH_PEER_DEVICE", "cpu")


def _sync() -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def interleaved_medians(
    fns: dict[str, Callable[[], object]], repeats: int = 15, warmup: int = 3
) -> dict[str, float]:
    """Median wall time of each callable, run alternately so that machine drift hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            _sync()
            t0 = time.perf_counter()
            fn()
            _sync()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def _device():
    """Tensors and modules the benchmarks create land on ``NODEBENCH_PEER_DEVICE`` (default cpu)."""
    if DEVICE.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip(f"NODEBENCH_PEER_DEVICE={DEVICE} but CUDA is not available")
    previous = torch.get_default_device()
    torch.set_default_device(DEVICE)
    yield
    torch.set_default_device(previous)


@pytest.fixture
def report_ratio():
    def add(line: str) -> None:
        RATIOS.append(line)

    return add


def pytest_terminal_summary(terminalreporter):
    if RATIOS:
        terminalreporter.section("nodebench / torchdiffeq (same process, interleaved medians)")
        for line in RATIOS:
            terminalreporter.write_line(line)
