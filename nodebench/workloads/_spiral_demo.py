"""torchdiffeq's spiral demo (docs/protocols.md): truth, batches, model and seeded training.

A self-contained copy for the cost workloads (tolerance, nfe), which need "a trained model" whose
training is cheap and deterministic; the ``spiral`` workload has its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import nodebench

TRUE_A = ((-0.1, 2.0), (-2.0, -0.1))
TRUE_Y0 = ((2.0, 0.0),)
TRUTH_RTOL, TRUTH_ATOL = 1e-7, 1e-9


class CubicDynamics(nn.Module):
    """The demo's true dynamics ``y' = (y**3) @ A`` for row states ``y`` of shape ``(..., 2)``."""

    def __init__(self, A: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("A", A)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (y**3) @ self.A


@dataclass(frozen=True)
class DemoData:
    """The demo's observed trajectory.

    Attributes:
        t: times, shape ``(n,)``.
        y: states, shape ``(n, 1, 2)``.
    """

    t: torch.Tensor
    y: torch.Tensor


def make_data(
    size: int = 1000,
    t_max: float = 25.0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> DemoData:
    """The true trajectory from ``y0 = [2, 0]`` on ``linspace(0, t_max, size)``, without noise.

    Solved in float64 by nodebench's dopri5 at rtol 1e-7, atol 1e-9 (the demo's) and cast to ``dtype``.
    """
    A = torch.tensor(TRUE_A, dtype=torch.float64, device=device)
    y0 = torch.tensor(TRUE_Y0, dtype=torch.float64, device=device)
    t = torch.linspace(0.0, t_max, size, dtype=torch.float64, device=device)
    with torch.no_grad():
        y = nodebench.odeint(CubicDynamics(A), y0, t, method="dopri5", rtol=TRUTH_RTOL, atol=TRUTH_ATOL)
    return DemoData(t=t.to(dtype), y=y.to(dtype))


class DemoModel(nn.Module):
    """The demo's network: ``Linear(2, 50) - Tanh - Linear(50, 2)`` applied to ``y**3``.

    Weights are drawn N(0, 0.1) (from the global generator, seeded by the caller), biases 0.
    """

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 50), nn.Tanh(), nn.Linear(50, 2))
        for module in self.net.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.1)
                nn.init.constant_(module.bias, 0.0)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(y**3)


def get_batch(
    data: DemoData, batch_size: int, batch_time: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The demo's batch: ``batch_size`` distinct start indices, ``batch_time`` consecutive points each.

    Returns:
        ``(y0, t, y)`` with shapes ``(B, 1, 2)``, ``(batch_time,)`` and ``(batch_time, B, 1, 2)``;
        ``t`` starts at 0 (``t[:batch_time]``).
    """
    count = len(data.t) - batch_time
    starts = torch.randperm(count, generator=generator)[:batch_size].to(data.y.device)
    y0 = data.y[starts]
    y = torch.stack([data.y[starts + i] for i in range(batch_time)], dim=0)
    return y0, data.t[:batch_time], y


def train(
    model: DemoModel,
    data: DemoData,
    iterations: int,
    generator: torch.Generator,
    batch_size: int = 20,
    batch_time: int = 10,
    lr: float = 1e-3,
    rtol: float = TRUTH_RTOL,
    atol: float = TRUTH_ATOL,
    on_iteration: Callable[[int, float], None] | None = None,
) -> None:
    """The demo's training: RMSprop, L1 loss, ``nodebench.odeint`` (dopri5) backpropagated directly.

    Arguments:
        model: the model, trained in place.
        data: the observed trajectory.
        iterations: optimiser steps.
        generator: draws the batches.
        batch_size, batch_time, lr, rtol, atol: the demo's settings.
        on_iteration: called as ``on_iteration(i, loss)`` after step ``i`` (1-based).
    """
    optimizer = torch.optim.RMSprop(model.parameters(), lr=lr)
    for i in range(1, iterations + 1):
        optimizer.zero_grad()
        y0, t, y = get_batch(data, batch_size, batch_time, generator)
        pred = nodebench.odeint(model, y0, t, method="dopri5", rtol=rtol, atol=atol)
        loss = (pred - y).abs().mean()
        loss.backward()
        optimizer.step()
        if on_iteration is not None:
            on_iteration(i, loss.item())
