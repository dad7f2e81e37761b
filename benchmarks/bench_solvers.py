"""asv: forward solves of nodebench's own solvers (CPU time, ratio to torchdiffeq, counts, accuracy).

Speed is tracked two ways: ``time_solve`` (asv's statistics over many samples, settings in
:class:`metrics.TimeSettings`) and ``track_ratio_vs_torchdiffeq`` (nodebench / torchdiffeq measured call
by call in the same process, so it carries across machines and load). Counts and errors are
deterministic ``track_`` figures.
"""

from __future__ import annotations

import torch

from benchmarks import metrics
from nodebench import odeint, solver_stats

METHODS = ["bosh3", "dopri5", "tsit5", "adams", "rk4", "midpoint", "euler"]
PEER_METHODS = ["bosh3", "dopri5", "rk4", "midpoint", "euler"]  # torchdiffeq has no tsit5


class SpiralSolve(metrics.TimeSettings):
    """The spiral demo network (batch 20, 10 output times, float32, no grad) as in issue 2."""

    params = [METHODS]
    param_names = ["method"]

    def setup(self, method):
        torch.set_num_threads(1)
        self.func, self.y0, self.t = metrics.spiral_setup(torch.float32)
        self.opts = metrics.solver_options(method)

    def time_solve(self, method):
        with torch.no_grad():
            odeint(self.func, self.y0, self.t, method=method, options=self.opts)


class SpiralSolveCounts(metrics.TrackSettings):
    params = [METHODS]
    param_names = ["method"]

    def track_nfe(self, method):
        func, y0, t = metrics.spiral_setup(torch.float32)
        with torch.no_grad(), solver_stats() as s:
            odeint(func, y0, t, method=method, options=metrics.solver_options(method))
        return s.nfe_forward

    track_nfe.unit = "evaluations"


class SpiralSolveVsTorchdiffeq(metrics.TrackSettings):
    params = [PEER_METHODS]
    param_names = ["method"]

    def track_ratio_vs_torchdiffeq(self, method):
        """nodebench / torchdiffeq CPU time of the same solve, interleaved call by call in a process;
        the median over fresh processes (:data:`metrics.FRESH_PROCESSES`)."""
        return metrics.median_of_fresh_processes(
            "benchmarks.metrics:speed_ratio_vs_torchdiffeq", {"method": method}, lambda r: r.result["ratio"]
        )

    track_ratio_vs_torchdiffeq.unit = "ratio"


class LinearAccuracy(metrics.TrackSettings):
    """Counts and error against the matrix exponential at rtol 1e-6 (deterministic)."""

    params = [["bosh3", "dopri5", "tsit5", "adams"]]
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

    def track_solver_ops_per_nfe(self, method):
        """The solver's own tensor operations per evaluation (its overhead, machine-independent)."""
        return metrics.solver_ops_per_nfe(method, "linear")["ops_per_nfe"]

    track_solver_ops_per_nfe.unit = "operations"


class SyncBudget(metrics.TrackSettings):
    """Host synchronisations per attempted step of the spiral demo solve (issue 25's budget: <= 1).

    Counted on the CPU by a dispatch mode (``metrics.count_syncs``): deterministic, no timing.
    """

    params = [["nodebench", "nodebench_per_sample", "torchdiffeq"]]
    param_names = ["library"]

    def track_syncs_per_step(self, library):
        if library == "nodebench_per_sample":
            return metrics.syncs_per_step("nodebench", options={"batch": "independent"})["syncs_per_step"]
        return metrics.syncs_per_step(library)["syncs_per_step"]

    track_syncs_per_step.unit = "syncs per step"


class StackedVanDerPol(metrics.TrackSettings):
    """Per-sample against shared step control on 64 stacked Van der Pol oscillators (issue 25)."""

    timeout = 600

    def setup(self):
        import importlib.util

        if importlib.util.find_spec("torchode") is None:
            raise NotImplementedError("torchode is not installed in this environment")  # asv: skipped
        self.rows = metrics.stacked_vdp(batch=64, repeats=5)

    def track_calls_per_sample_over_shared(self):
        """Calls of func with per-sample control over shared control's (deterministic; target <= 0.5)."""
        return self.rows["per_sample"]["nfe"] / self.rows["shared"]["nfe"]

    track_calls_per_sample_over_shared.unit = "ratio"

    def track_time_per_sample_over_torchode(self):
        """Per-sample CPU time over torchode's, same process, interleaved (target <= 1.0)."""
        return self.rows["per_sample"]["time_s"] / self.rows["torchode"]["time_s"]

    track_time_per_sample_over_torchode.unit = "ratio"

    def track_syncs_per_step_per_sample(self):
        return self.rows["per_sample"]["syncs_per_step"]

    track_syncs_per_step_per_sample.unit = "syncs per step"


class StiffSolveCounts(metrics.TrackSettings):
    """Robertson's kinetics to t = 1e5 (float64, rtol 1e-6, atol 1e-10, no grad) by the implicit methods:
    evaluations, Jacobians and LU factorisations (issue 26; commits before it have no implicit method)."""

    params = [["radau", "bdf", "ndf"]]
    param_names = ["method"]

    def _stats(self, method):
        try:
            from nodebench.reference.problems import STIFF_PROBLEMS
        except ImportError:
            raise NotImplementedError("no implicit methods at this commit") from None
        func, y0, t = STIFF_PROBLEMS["robertson"].make(torch.float64, torch.device("cpu"))
        with torch.no_grad(), solver_stats() as s:
            odeint(func, y0, t, method=method, rtol=1e-6, atol=1e-10)
        return s

    def track_nfe(self, method):
        return self._stats(method).nfe_forward

    def track_jacobians(self, method):
        return self._stats(method).jacobians

    def track_factorizations(self, method):
        return self._stats(method).factorizations

    track_nfe.unit = "evaluations"
    track_jacobians.unit = "Jacobians"
    track_factorizations.unit = "factorisations"
