"""Wall-clock timing with device synchronisation."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import torch

DeviceLike = torch.device | str | torch.Tensor | None


def synchronize(device: DeviceLike = None) -> None:
    """Wait for queued work on ``device`` to finish (a no-op for CPU).

    Arguments:
        device: a device, a device string, or a tensor whose device is meant; ``None`` means CPU.
    """
    if device is None:
        return
    if isinstance(device, torch.Tensor):
        device = device.device
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """Context manager measuring the wall time of its block, synchronising ``device`` on both ends.

    Example::

        with Timer(device) as timer:
            loss.backward()
        timer.seconds

    Arguments:
        device: device (or tensor on it) whose queued work is waited for before each clock read.
    """

    def __init__(self, device: DeviceLike = None) -> None:
        self.device = device
        self.seconds: float = float("nan")
        self._start = 0.0

    def __enter__(self) -> Timer:
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self._start


def median_time(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1, device: DeviceLike = None) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` untimed calls.

    Arguments:
        fn: the callable to time, called without arguments.
        repeats: number of timed calls (at least 1).
        warmup: number of untimed calls made first (at least 0).
        device: device synchronised before and after each timed call.

    Returns:
        The median time of one call in seconds.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be non-negative, got {warmup}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        with Timer(device) as timer:
            fn()
        times.append(timer.seconds)
    return statistics.median(times)
