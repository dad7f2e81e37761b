"""asv: forward solves of nodebench's own solvers (time per solve, time per NFE, counts, accuracy)."""

from __future__ import annotations

import statistics
import time

import torch

from benchmarks import metrics
from nodebench import odeint, solver_stats

METHODS = ["bosh3", "dopri5", "tsit5", "rk4", "midpoint", "euler"]


def _options(method: str):
    return {"step_size": 0.05} if method in ("rk4", "midpoint", "euler") else None


class SpiralSolve:
    """The spiral demo network (batch 20, 10 output times, float32, no grad) as in issue 2."""

    params = [METHODS]
    param_names = ["method"]
    version = 1

    def setup(self, method):
        torch.set_num_threads(1)
        self.func, self.y0, self.t = metrics.spiral_setup(torch.float32)
        self.opts = _options(method)
        with torch.no_grad(), solver_stats() as s:
            odeint(self.func, self.y0, self.t, method=method, options=self.opts)
        self.nfe = s.nfe_forward

    def time_solve(self, method):
        with torch.no_grad():
            odeint(self.func, self.y0, self.t, method=method, options=self.opts)

    def track_time_per_nfe(self, method):
        times = []
        with torch.no_grad():
            for _ in range(15):
                t0 = time.perf_counter()
                odeint(self.func, self.y0, self.t, method=method, options=self.opts)
                times.append(time.perf_counter() - t0)
        return statistics.median(times) / self.nfe * 1e6

    track_time_per_nfe.unit = "microseconds"

    def track_nfe(self, method):
        return self.nfe

    track_nfe.unit = "evaluations"


class LinearAccuracy:
    """Counts and error against the matrix exponential at rtol 1e-6 (deterministic)."""

    params = [["bosh3", "dopri5", "tsit5"]]
    param_names = ["method"]

    def setup(self, method):
        self.stats = metrics.solve_stats(method, "linear")

    def track_nfe(self, method):
        return self.stats["nfe"]

    track_nfe.unit = "evaluations"

    def track_steps_accepted(self, method):
        return self.stats["accepted"]

    track_steps_accepted.unit = "steps"

    def track_steps_rejected(self, method):
        return self.stats["rejected"]

    track_steps_rejected.unit = "steps"

    def track_error(self, method):
        return self.stats["error"]

    track_error.unit = "relative error"


def track_time_ratio_vs_torchdiffeq():
    """nodebench / torchdiffeq wall time on the spiral solve, measured in the same process."""
    return metrics.speed_ratio_vs_torchdiffeq()["ratio"]


track_time_ratio_vs_torchdiffeq.unit = "ratio"
