"""adams against dopri5: solver time per evaluation of ``func`` beyond the evaluation itself (issue 13).

A multistep method spends two evaluations per step where dopri5 spends six, so its per-step work
(predictor, corrector, error estimates at three orders, the difference table) is shared by fewer
evaluations: per NFE it costs more solver time. What matters to a user is the total, so each case
also reports the whole-solve time ratio. Cases: the damped oscillator (a 2x2 matrix product, the
cheapest ``func`` there is, so the overhead is laid bare), the spiral demo network, and the MNIST ODE
block (convolutions, where evaluations dominate).
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.metrics import ops_per_nfe
from benchmarks.peer.conftest import interleaved_medians
from nodebench import odeint
from nodebench.models.demo_spirals import DemoModel
from nodebench.models.mnist import ode_block_func


class _Oscillator(torch.nn.Module):
    """dy/dt = A y with A = [[-0.1, 2], [-2, -0.1]] (the issue's damped oscillator)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("A", torch.tensor([[-0.1, 2.0], [-2.0, -0.1]], dtype=torch.float64))

    def forward(self, t, y):
        return y @ self.A.T


def _case(name: str):
    torch.manual_seed(0)
    if name == "oscillator":  # t in [0, 25], rtol = atol = 1e-8, float64
        return _Oscillator(), torch.tensor([2.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 25.0]), 1e-8
    if name == "spiral":  # the spiral demo network, batch 20, 10 output times, float32
        return DemoModel(), torch.randn(20, 1, 2), torch.linspace(0.0, 1.0, 10), 1e-6
    func = ode_block_func(64)  # the MNIST ODE block, batch 32, t in [0, 1], float32
    return func, torch.randn(32, 64, 7, 7), torch.tensor([0.0, 1.0]), 1e-3


@pytest.mark.parametrize("name", ["oscillator", "spiral", "mnist_block"])
def test_adams_solver_time_per_evaluation_vs_dopri5(benchmark, report_ratio, name):
    func, y0, t, tol = _case(name)
    nfe, ops = {}, {}
    with torch.no_grad():
        solves = {
            m: (lambda m=m: odeint(func, y0, t, method=m, rtol=tol, atol=tol)) for m in ("adams", "dopri5")
        }
        for method, solve in solves.items():
            counted = ops_per_nfe(solve, func, t[0], y0)
            nfe[method], ops[method] = counted["nfe"], counted["ops_per_nfe"]
        med = interleaved_medians({**solves, "eval": lambda: func(t[0], y0)}, repeats=15)
        benchmark(solves["adams"])
    # solver time per evaluation, beyond the evaluation: (solve - NFE * eval) / NFE
    own = {m: (med[m] - nfe[m] * med["eval"]) / nfe[m] for m in solves}
    ratio = own["adams"] / own["dopri5"]
    total = med["adams"] / med["dopri5"]
    benchmark.extra_info.update(
        overhead_per_nfe_ratio=ratio,
        total_time_ratio=total,
        nfe=nfe,
        eval_us=med["eval"] * 1e6,
        ops_per_nfe=ops,
    )
    report_ratio(
        f"adams vs dopri5, {name} (rtol = atol = {tol:g}): NFE {nfe['adams']} vs {nfe['dopri5']}, "
        f"solver overhead per NFE {own['adams'] * 1e6:.0f} us vs {own['dopri5'] * 1e6:.0f} us "
        f"(ratio {ratio:.2f}; func alone {med['eval'] * 1e6:.0f} us; solver tensor operations per NFE "
        f"{ops['adams']:.1f} vs {ops['dopri5']:.1f}), whole solve ratio {total:.2f}"
    )
    assert nfe["adams"] > 0 and nfe["dopri5"] > 0
