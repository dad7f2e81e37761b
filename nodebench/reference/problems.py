"""Reference problems for the correctness matrix: dynamics, initial states, output times and truth.

Every problem's ``func`` is an ``nn.Module`` whose coefficients are ``nn.Parameter``s, so both libraries'
adjoints find them. Where a closed form exists, ``Problem.exact(func, y0, t)`` returns the solution as
a differentiable function of ``func``'s parameters, ``y0`` and ``t``: autograd through it gives the
analytic gradients. Nonlinear problems have ``exact=None`` and are checked against torchdiffeq and
a tight float64 reference solve.

Output times are dyadic and multiples of ``step_size``, so fixed-grid solutions at the output times
are grid values in both libraries (no interpolation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from nodebench.models.demo_spirals import DemoTrue, Example2True


class LinearODE(nn.Module):
    """``y' = A y`` for a batch of row states ``y`` of shape ``(batch, d)``."""

    def __init__(self, A: torch.Tensor) -> None:
        super().__init__()
        self.A = nn.Parameter(A)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y @ self.A.T

    def exact(self, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``y(t_i) = exp(A (t_i - t_0)) y0`` by ``torch.linalg.matrix_exp``."""
        E = torch.linalg.matrix_exp(self.A * (t - t[0])[:, None, None])
        return torch.einsum("bj,tij->tbi", y0, E)


class CosineODE(nn.Module):
    """``y' = k cos(t) y``: ``y(t) = y0 exp(k (sin t - sin t0))``."""

    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = nn.Parameter(torch.tensor(k))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.k * torch.cos(t) * y

    def exact(self, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        g = torch.exp(self.k * (torch.sin(t) - torch.sin(t[0])))
        return g.view(-1, *([1] * y0.ndim)) * y0


class ExponentialODE(nn.Module):
    """``y' = r * y`` with a learnable rate per component (decay where ``r < 0``, growth where ``r > 0``)."""

    def __init__(self, rate: torch.Tensor) -> None:
        super().__init__()
        self.rate = nn.Parameter(rate)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.rate * y

    def exact(self, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        dt = (t - t[0]).view(-1, *([1] * y0.ndim))
        return y0 * torch.exp(self.rate * dt)


class TimeMLP(nn.Module):
    """A small time-dependent MLP ``f(t, y) = W2 tanh(W1 [y, t] + b1) + b2`` (``t`` concatenated)."""

    def __init__(self, dim: int, hidden: int, generator: torch.Generator) -> None:
        super().__init__()
        self.l1 = nn.Linear(dim + 1, hidden)
        self.l2 = nn.Linear(hidden, dim)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.8)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        tt = t.to(y.dtype).expand(*y.shape[:-1], 1)
        return self.l2(torch.tanh(self.l1(torch.cat([y, tt], -1))))


class VanDerPol(nn.Module):
    """Van der Pol ``x' = v, v' = mu (1 - x^2) v - x`` on states ``(..., 2)`` = ``(x, v)``.

    ``mu`` is a float, or a tensor with one value per sample of a batch ``(batch, 2)`` of oscillators.
    """

    def __init__(self, mu: float | torch.Tensor) -> None:
        super().__init__()
        if isinstance(mu, torch.Tensor):
            self.register_buffer("mu", mu)
        else:
            self.mu = mu

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, v = y[..., 0], y[..., 1]
        return torch.stack([v, self.mu * (1 - x**2) * v - x], dim=-1)


def stacked_van_der_pol(
    batch: int = 64,
    mu_range: tuple[float, float] = (0.1, 20.0),
    t_end: float = 20.0,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> tuple[VanDerPol, torch.Tensor, torch.Tensor]:
    """``batch`` independent Van der Pol oscillators, ``mu`` log-spaced over ``mu_range``, all from
    ``y0 = (2, 0)`` on ``[0, t_end]``: the stacked problem of torchode's paper (Lienen & Günnemann 2022),
    whose samples need very different step sizes (issue 25).

    Returns:
        ``(func, y0, t)`` with ``y0`` of shape ``(batch, 2)`` and ``t = [0, t_end]``.
    """
    lo, hi = mu_range
    mu = torch.logspace(torch.log10(torch.tensor(lo)).item(), torch.log10(torch.tensor(hi)).item(), batch)
    func = VanDerPol(mu.to(dtype=dtype, device=device))
    y0 = torch.tensor([2.0, 0.0], dtype=dtype, device=device).repeat(batch, 1)
    return func, y0, torch.tensor([0.0, t_end], dtype=dtype, device=device)


class Robertson(nn.Module):
    """Robertson's chemical kinetics (Hairer & Wanner II, Sec. IV.1), rate constants learnable:
    ``y1' = -k1 y1 + k3 y2 y3``, ``y2' = k1 y1 - k3 y2 y3 - k2 y2^2``, ``y3' = k2 y2^2``,
    ``k = (0.04, 3e7, 1e4)``; eigenvalues of the Jacobian down to about -1e4 (stiff)."""

    def __init__(self, k: tuple[float, float, float] = (0.04, 3e7, 1e4)) -> None:
        super().__init__()
        self.k = nn.Parameter(torch.tensor(k))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        k1, k2, k3 = self.k
        y1, y2, y3 = y[..., 0], y[..., 1], y[..., 2]
        a, b, c = k1 * y1, k3 * y2 * y3, k2 * y2 * y2
        return torch.stack([-a + b, a - b - c, c], dim=-1)


class Hires(nn.Module):
    """HIRES (Schäfer 1975; Hairer & Wanner II, Sec. IV.10): 8 reactions of light-induced plant growth
    (stiff; the scale of its rates learnable as ``rate``, 1 by default)."""

    def __init__(self) -> None:
        super().__init__()
        self.rate = nn.Parameter(torch.tensor(1.0))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y1, y2, y3, y4, y5, y6, y7, y8 = (y[..., i] for i in range(8))
        r = 280.0 * self.rate * y6 * y8
        return torch.stack(
            [
                -1.71 * y1 + 0.43 * y2 + 8.32 * y3 + 0.0007,
                1.71 * y1 - 8.75 * y2,
                -10.03 * y3 + 0.43 * y4 + 0.035 * y5,
                8.32 * y2 + 1.71 * y3 - 1.12 * y4,
                -1.745 * y5 + 0.43 * y6 + 0.43 * y7,
                -r + 0.69 * y4 + 1.71 * y5 - 0.43 * y6 + 0.69 * y7,
                r - 1.81 * y7,
                -r + 1.81 * y7,
            ],
            dim=-1,
        )


class StiffLinear(nn.Module):
    """``y' = A (y - cos(t) u) - sin(t) u`` (``u`` the ones vector), whose solution is
    ``y(t) = cos(t) u + exp(A (t - t0)) (y0 - cos(t0) u)``: a slow forced mode and fast decaying ones.

    ``A = -V diag(lam) V⁻¹`` with a fixed non-normal ``V`` and ``lam = (1e4, 1e2, 1)`` by default.
    """

    def __init__(self, lam: tuple[float, ...] = (1e4, 1e2, 1.0)) -> None:
        super().__init__()
        d = len(lam)
        V = torch.eye(d, dtype=torch.float64) + 0.5 * torch.triu(torch.ones(d, d, dtype=torch.float64), 1)
        A = -V @ torch.diag(torch.tensor(lam, dtype=torch.float64)) @ torch.linalg.inv(V)
        self.A = nn.Parameter(A)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        t = t.to(y.dtype)
        return (y - torch.cos(t)) @ self.A.T - torch.sin(t)

    def exact(self, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The closed form above, differentiable in ``A``, ``y0`` and ``t``."""
        E = torch.linalg.matrix_exp(self.A * (t - t[0]).view(-1, 1, 1))
        start = y0 - torch.cos(t[0])
        return torch.cos(t).view(-1, *([1] * y0.ndim)) + torch.einsum("bj,tij->tbi", start, E)


@dataclass(frozen=True)
class StiffProblem:
    """A stiff reference problem (for the implicit methods: explicit ones would take ~1e4 to 1e7 steps).

    Arguments:
        name: registry name.
        description: one line for tables.
        make: ``make(dtype, device) -> (func, y0, t)``: an ``nn.Module``, ``y0`` of shape ``(batch, d)``
            and output times.
        exact: the closed form where there is one (``StiffLinear``), else None (scipy's Radau reference).
        atol_factor: absolute tolerance per unit of ``rtol`` (components far below 1 need it small).
    """

    name: str
    description: str
    make: Factory
    exact: Exact | None
    atol_factor: float


def _robertson(dtype: torch.dtype, device: torch.device) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    y0 = torch.tensor([[1.0, 0.0, 0.0]], dtype=dtype, device=device)
    return Robertson().to(dtype=dtype, device=device), y0, _t([0.0, 1.0, 1e2, 1e4, 1e5], dtype, device)


def _vdp_stiff(dtype: torch.dtype, device: torch.device) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    y0 = torch.tensor([[2.0, 0.0]], dtype=dtype, device=device)
    return VanDerPol(1000.0), y0, _t([0.0, 500.0, 1000.0, 2000.0, 3000.0], dtype, device)


def _stiff_linear(dtype: torch.dtype, device: torch.device) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    y0 = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, 1.5]], dtype=dtype, device=device)
    return StiffLinear().to(dtype=dtype, device=device), y0, _t([0.0, 0.5, 1.0, 5.0, 10.0], dtype, device)


def _hires(dtype: torch.dtype, device: torch.device) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    y0 = torch.tensor([[1.0, 0, 0, 0, 0, 0, 0, 0.0057]], dtype=dtype, device=device)
    return Hires().to(dtype=dtype, device=device), y0, _t([0.0, 5.0, 50.0, 321.8122], dtype, device)


Factory = Callable[[torch.dtype, torch.device], tuple[nn.Module, torch.Tensor, torch.Tensor]]
Exact = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Problem:
    """A reference problem.

    Arguments:
        name: registry name.
        description: one line for tables.
        make: ``make(dtype, device) -> (func, y0, t)``, deterministic (fixed seeds).
        exact: ``exact(func, y0, t) -> y`` of shape ``(len(t), *y0.shape)``, differentiable in ``func``'s
            parameters, ``y0`` and ``t``; ``None`` where there is no closed form.
        step_size: the fixed-grid step ``h`` (a power of two dividing every output time).
        fixed_c: ``C`` in the fixed-grid error bound ``C * h**order`` (relative errors of solutions and
            gradients, every fixed-grid method): three times the largest measured ``error / h**order``.
    """

    name: str
    description: str
    make: Factory
    exact: Exact | None
    step_size: float
    fixed_c: float


def _t(values: list[float], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, device=device)


def _linear(dtype: torch.dtype, device: torch.device) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    # Non-normal: a damped rotation coupled one way into a third, faster-decaying mode.
    A = torch.tensor([[-0.2, 1.5, 2.0], [-1.0, -0.3, 0.5], [0.0, 0.0, -0.5]])
    y0 = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    func = LinearODE(A).to(dtype=dtype, device=device)
    return func, y0.to(dtype=dtype, device=device), _t([0.0, 0.25, 0.5, 1.0, 2.0], dtype, device)


def _cosine(dtype: torch.dtype, device: torch.device) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    y0 = torch.tensor([1.0, -2.0, 0.5], dtype=dtype, device=device)
    return CosineODE(0.8).to(dtype=dtype, device=device), y0, _t([0.5, 1.0, 2.0, 3.0], dtype, device)


def _exponential(dtype: torch.dtype, device: torch.device) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    y0 = torch.tensor([[2.0, 1.0], [-0.5, 0.3], [1.0, -1.5]], dtype=dtype, device=device)
    func = ExponentialODE(torch.tensor([-0.7, 0.5])).to(dtype=dtype, device=device)
    return func, y0, _t([0.0, 0.5, 1.0, 2.0], dtype, device)


def _cubic_spiral(dtype: torch.dtype, device: torch.device) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    # The demo starts at [2, 0], where |y|**3 makes it fast; states of norm 0.8 keep C small on [0, 2].
    func = DemoTrue(dtype, learnable=True).to(device=device)
    y0 = torch.tensor([[0.8, 0.0], [0.4, -0.64]], dtype=dtype, device=device)
    return func, y0, _t([0.0, 0.5, 1.0, 2.0], dtype, device)


def _gated_spiral(dtype: torch.dtype, device: torch.device) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    func = Example2True(dtype, learnable=True).to(device=device)
    y0 = torch.tensor([[0.6, 0.3], [-0.5, 1.0]], dtype=dtype, device=device)
    return func, y0, _t([0.0, 1.0, 2.0, 4.0], dtype, device)


def _time_mlp(dtype: torch.dtype, device: torch.device) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(2)
    func = TimeMLP(2, 8, gen).to(dtype=dtype, device=device)
    y0 = torch.randn(3, 2, generator=gen).to(dtype=dtype, device=device)
    return func, y0, _t([0.0, 0.5, 1.0, 1.5], dtype, device)


def _exact(func: nn.Module, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return func.exact(y0, t)


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem("linear", "y' = A y, non-normal 3x3 A, batch of 4", _linear, _exact, 2**-4, 4.0),
        Problem("cosine", "y' = k cos(t) y", _cosine, _exact, 2**-4, 20.0),
        Problem("exponential", "y' = r * y, learnable decay/growth rates", _exponential, _exact, 2**-4, 2.0),
        Problem("cubic_spiral", "torchdiffeq demo y' = (y**3) @ A", _cubic_spiral, None, 2**-5, 10.0),
        Problem("gated_spiral", "slides' Example 2, sigmoid-gated", _gated_spiral, None, 2**-3, 6.0),
        Problem("time_mlp", "MLP 3-8-2 on [y, t]", _time_mlp, None, 2**-4, 3.0),
    )
}


STIFF_PROBLEMS: dict[str, StiffProblem] = {
    p.name: p
    for p in (
        StiffProblem("robertson", "Robertson's kinetics, t to 1e5", _robertson, None, 1e-4),
        StiffProblem("vdp_stiff", "Van der Pol, mu = 1000, y0 = (2, 0), t to 3000", _vdp_stiff, None, 1e-3),
        StiffProblem("stiff_linear", "y' = A (y - cos t) - sin t, eigenvalues -1e4, -1e2, -1", _stiff_linear,
                     _exact, 1e-3),
        StiffProblem("hires", "HIRES, 8 reactions, t to 321.8122", _hires, None, 1e-4),
    )
}  # fmt: skip
