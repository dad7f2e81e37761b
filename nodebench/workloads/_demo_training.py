"""torchdiffeq's spiral demo as a cheap, deterministic training task for the cost workloads (tolerance, nfe).

The demo's data, model and batches are those of :mod:`nodebench.data.demo_spirals` and
:mod:`nodebench.models.demo_spirals`; this module adds the demo's training loop (RMSprop, L1 loss,
``nodebench.odeint``) and the layout the cost workloads use (states ``(n, 1, 2)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

import nodebench
from nodebench.data.demo_spirals import DEMO_TOL, demo_starts, make_trajectory
from nodebench.models.demo_spirals import DemoModel

TRUTH_RTOL, TRUTH_ATOL = DEMO_TOL


@dataclass(frozen=True)
class DemoData:
    """The demo's observed trajectory.

    Attributes:
        t: times, shape ``(n,)``.
        y: states, shape ``(n, 1, 2)``.
    """

    t: torch.Tensor
    y: torch.Tensor


def make_data(dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> DemoData:
    """The demo's true trajectory (:func:`nodebench.data.demo_spirals.make_trajectory`), without noise.

    Solved in float64 by nodebench's dopri5 at the demo's rtol 1e-7, atol 1e-9 and cast to ``dtype``.
    """
    truth = make_trajectory("demo")
    return DemoData(t=truth.t.to(device, dtype), y=truth.truth.unsqueeze(1).to(device, dtype))


def get_batch(
    data: DemoData, batch_size: int, batch_time: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The demo's batch: ``batch_size`` distinct start indices, ``batch_time`` consecutive points each.

    Returns:
        ``(y0, t, y)`` with shapes ``(B, 1, 2)``, ``(batch_time,)`` and ``(batch_time, B, 1, 2)``;
        ``t`` starts at 0 (``t[:batch_time]``).
    """
    starts = demo_starts(len(data.t), generator, batch_size, batch_time).to(data.y.device)
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
