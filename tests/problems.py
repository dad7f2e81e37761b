"""Analytic test problems shared by the solver tests (float64 by default via conftest)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from nodebench.models.demo_spirals import DemoTrue, Example2True


@dataclass
class Problem:
    name: str
    func: Callable
    y0: torch.Tensor
    t: torch.Tensor
    exact: Callable[[torch.Tensor], torch.Tensor]  # times -> (len(t), *y0.shape)


def linear() -> Problem:
    """y' = A y with a non-normal A; truth by the matrix exponential."""
    A = torch.tensor([[-0.1, -1.0, 0.3], [1.0, -0.1, 0.0], [0.2, 0.5, -0.4]])
    y0 = torch.tensor([[1.0, 0.5, -0.3], [0.2, -1.0, 0.8]])
    t = torch.tensor([0.0, 0.5, 1.3, 2.0, 3.7])
    return Problem(
        "linear",
        lambda t, y: y @ A.T,
        y0,
        t,
        lambda ts: torch.stack([y0 @ torch.linalg.matrix_exp(A * (ti - ts[0])).T for ti in ts]),
    )


def time_dependent() -> Problem:
    """y' = cos(t) y: y = y0 exp(sin t - sin t0)."""
    y0 = torch.tensor([1.0, -2.0, 0.5])
    t = torch.tensor([0.3, 1.0, 2.5, 4.0])
    return Problem(
        "time_dependent",
        lambda t, y: torch.cos(t) * y,
        y0,
        t,
        lambda ts: torch.stack([y0 * torch.exp(torch.sin(ti) - torch.sin(ts[0])) for ti in ts]),
    )


def decay() -> Problem:
    """y' = -0.7 y (decay) and +0.5 y (growth) side by side."""
    rate = torch.tensor([-0.7, 0.5])
    y0 = torch.tensor([2.0, 1.0])
    t = torch.tensor([0.0, 1.0, 2.0, 3.0])
    return Problem(
        "decay_growth",
        lambda t, y: rate * y,
        y0,
        t,
        lambda ts: torch.stack([y0 * torch.exp(rate * (ti - ts[0])) for ti in ts]),
    )


PROBLEMS = {p.__name__: p for p in (linear, time_dependent, decay)}


def spiral_demo() -> torch.nn.Module:
    """torchdiffeq's spiral demo true dynamics y' = (y**3) A, A a parameter, in the default dtype."""
    return DemoTrue(torch.get_default_dtype(), learnable=True)


def example2() -> torch.nn.Module:
    """The slides' Example 2 sigmoid-gated dynamics, A, B, x0 parameters, in the default dtype."""
    return Example2True(torch.get_default_dtype(), learnable=True)


class TimeMLP(torch.nn.Module):
    """A small time-dependent MLP: f(t, y) = W2 tanh(W1 [y, t] + b1) + b2."""

    def __init__(self, dim: int = 2, hidden: int = 8) -> None:
        super().__init__()
        self.l1 = torch.nn.Linear(dim + 1, hidden)
        self.l2 = torch.nn.Linear(hidden, dim)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        tt = t.expand(*y.shape[:-1], 1).to(y.dtype)
        return self.l2(torch.tanh(self.l1(torch.cat([y, tt], -1))))


def fixed_h(method_order: int) -> list[float]:
    """Step sizes for a convergence study, coarse enough to stay above round-off."""
    return [0.2 / 2**k for k in range(4)] if method_order >= 4 else [0.1 / 2**k for k in range(4)]


def slope(xs: list[float], ys: list[float]) -> float:
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


class LinearField(torch.nn.Module):
    """dy/dt = y A^T with A a parameter: the matrix-exponential reference for gradient tests."""

    def __init__(self, A: torch.Tensor) -> None:
        super().__init__()
        self.A = torch.nn.Parameter(A.clone())

    def forward(self, t, y):
        return y @ self.A.T


class Counted(torch.nn.Module):
    """Wraps a vector field and counts its evaluations in ``n``."""

    def __init__(self, f) -> None:
        super().__init__()
        self.f, self.n = f, 0

    def forward(self, t, y):
        self.n += 1
        return self.f(t, y)


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max|a - b| / max|b|, computed in float64."""
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()
