"""Measurement: timers with device sync, memory meters and provenance.

NFE and step statistics come from :func:`nodebench.solver_stats`.
"""

from nodebench.measure.memory import (
    FreshProcessResult,
    SavedTensorsMeter,
    cuda_peak_bytes,
    current_rss_bytes,
    peak_rss_bytes,
    reset_cuda_peak,
    reset_peak_rss,
    run_in_fresh_process,
)
from nodebench.measure.provenance import capture
from nodebench.measure.timing import Timer, median_time, synchronize

__all__ = [
    "FreshProcessResult",
    "SavedTensorsMeter",
    "Timer",
    "capture",
    "cuda_peak_bytes",
    "current_rss_bytes",
    "median_time",
    "peak_rss_bytes",
    "reset_cuda_peak",
    "reset_peak_rss",
    "run_in_fresh_process",
    "synchronize",
]
