"""asv: memory of direct backprop (O(L)) against the adjoint (O(1)) on a fixed rk4 grid of L steps.

asv runs each benchmark in its own process, so ``peakmem_*`` is the peak RSS of that process.
"""

from __future__ import annotations

import torch

from benchmarks import metrics
from nodebench import odeint, odeint_adjoint
from nodebench.models.mnist import ode_block_func

STEPS = [5, 20, 80]


class DirectVsAdjoint:
    params = [["direct", "adjoint"], STEPS]
    param_names = ["mode", "steps"]
    timeout = 300

    def setup(self, mode, steps):
        torch.set_num_threads(1)
        torch.manual_seed(0)
        self.func = ode_block_func(64)
        self.x = torch.randn(8, 64, 7, 7, requires_grad=True)

    def peakmem_forward_backward(self, mode, steps):
        solve = odeint if mode == "direct" else odeint_adjoint
        y = solve(
            self.func, self.x, torch.tensor([0.0, 1.0]), method="rk4", options={"step_size": 1.0 / steps}
        )
        y[-1].sum().backward()

    def track_saved_bytes(self, mode, steps):
        return metrics.saved_bytes(mode, steps)

    track_saved_bytes.unit = "bytes"
