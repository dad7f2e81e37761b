"""asv: the adjoint's backward pass (CPU time, ratio to torchdiffeq), its NFE and its gradient error."""

from __future__ import annotations

import torch

from benchmarks import metrics
from nodebench import odeint_adjoint

NORMS = ["seminorm", "full"]


class AdjointBackward(metrics.TimeSettings):
    params = [NORMS]
    param_names = ["norm"]

    def setup(self, norm):
        torch.set_num_threads(1)
        self.func, y0, t = metrics.spiral_setup(torch.float32)
        self.loss = odeint_adjoint(self.func, y0, t, adjoint_norm=norm).sin().sum()
        self.params_ = tuple(self.func.parameters())

    def time_backward(self, norm):
        torch.autograd.grad(self.loss, self.params_, retain_graph=True)


class AdjointBackwardVsTorchdiffeq(metrics.TrackSettings):
    params = [NORMS]
    param_names = ["norm"]
    timeout = 300

    def track_ratio_vs_torchdiffeq(self, norm):
        """nodebench / torchdiffeq CPU time of the backward pass, interleaved call by call in a process;
        the median over fresh processes (:data:`metrics.FRESH_PROCESSES`)."""
        return metrics.median_of_fresh_processes(
            "benchmarks.metrics:adjoint_backward_ratio_vs_torchdiffeq",
            {"norm": norm},
            lambda r: r.result["ratio"],
        )

    track_ratio_vs_torchdiffeq.unit = "ratio"


class AdjointCounts(metrics.TrackSettings):
    params = [NORMS]
    param_names = ["norm"]

    def setup(self, norm):
        self.stats = metrics.adjoint_stats(norm)

    def track_nfe_forward(self, norm):
        return self.stats["nfe_forward"]

    track_nfe_forward.unit = "evaluations"

    def track_nfe_backward(self, norm):
        return self.stats["nfe_backward"]

    track_nfe_backward.unit = "evaluations"

    def track_grad_error_vs_torchdiffeq(self, norm):
        return self.stats["grad_error_vs_torchdiffeq"]

    track_grad_error_vs_torchdiffeq.unit = "relative error"


class AdjointManyTimes(metrics.TrackSettings):
    """The adjoint on the spiral demo with 100 output times: the backward pass lands on every one."""

    def setup(self):
        self.stats = metrics.adjoint_stats("seminorm", times=100)

    def track_nfe_backward(self):
        return self.stats["nfe_backward"]

    track_nfe_backward.unit = "evaluations"
