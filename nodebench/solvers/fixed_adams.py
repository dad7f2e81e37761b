"""Fixed-grid Adams methods: torchdiffeq 0.2.5's ``explicit_adams``, ``implicit_adams``, ``fixed_adams``.

This is the *fixed-grid* family of torchdiffeq's ``_impl/fixed_adams.py`` (not an adaptive Adams
method): on the grid ``t0 + k h`` the first three steps are Runge–Kutta (the 3/8 rule, torchdiffeq's
``rk4``); after that each step is an Adams–Bashforth predictor of order ``min(steps so far, max_order - 1)``
over the stored derivatives and, for ``implicit_adams`` (``fixed_adams`` is the same method), up to
``max_iters`` Adams–Moulton corrector iterations that stop once successive increments agree within
``rtol``/``atol`` (max norm). A corrector that does not converge warns and drops the oldest derivative,
as torchdiffeq does. The coefficients are computed exactly (rational arithmetic) rather than copied.
"""

from __future__ import annotations

import collections
import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import torch

from nodebench.solvers.errors import SolverError
from nodebench.solvers.tableaus import RK4

MIN_ORDER = 4  # below this the history is too short and a step is a Runge–Kutta step
MAX_ORDER = 12


@dataclass(frozen=True)
class FixedAdams:
    """A fixed-grid Adams method (see the module docstring).

    Attributes:
        name: registry name.
        implicit: whether the Adams–Moulton corrector runs.
    """

    name: str
    implicit: bool
    order: int = 4  # the order torchdiffeq states for the family
    adaptive: bool = False


def _integrate_lagrange(nodes: list[int]) -> list[Fraction]:
    """``∫_0^1 ℓ_j(s) ds`` for the Lagrange basis on ``nodes`` (in units of the step)."""
    out = []
    for j, xj in enumerate(nodes):
        poly = [Fraction(1)]  # coefficients of s**0, s**1, ...
        for m, xm in enumerate(nodes):
            if m == j:
                continue
            scale = Fraction(1, xj - xm)
            shifted = [Fraction(0)] + poly  # s * poly
            poly = [
                (shifted[i] - (xm * poly[i] if i < len(poly) else 0)) * scale for i in range(len(shifted))
            ]
        out.append(sum(c / (p + 1) for p, c in enumerate(poly)))
    return out


@functools.cache
def bashforth(k: int) -> tuple[float, ...]:
    """Adams–Bashforth weights of ``f_n, f_{n-1}, ..., f_{n-k+1}`` (order ``k``)."""
    return tuple(float(x) for x in _integrate_lagrange([-m for m in range(k)]))


@functools.cache
def moulton(k: int) -> tuple[float, ...]:
    """Adams–Moulton weights of ``f_{n+1}, f_n, ..., f_{n-k+2}`` (order ``k``)."""
    return tuple(float(x) for x in _integrate_lagrange([1 - m for m in range(k)]))


def _converged(dy_old: torch.Tensor, dy: torch.Tensor, rtol, atol) -> bool:
    tol = torch.maximum(dy_old.abs(), dy.abs()) * rtol + atol
    return bool(((dy_old - dy).abs() / tol).max() < 1)


def solve_fixed_adams(
    f: Callable[[float, torch.Tensor], torch.Tensor],
    y0: torch.Tensor,
    ts: list[float],
    method: FixedAdams,
    rtol,
    atol,
    opts,
    counts,
    grid: list[float],
    nudge: Callable[[float, float], float],
) -> list[torch.Tensor]:
    """Integrate the flat state ``y0`` over ``grid``, returning it at the times ``ts``.

    Outputs between grid points are cubic Hermite interpolants (as nodebench's fixed-grid Runge–Kutta
    methods); the derivative at the step's end this needs is the next step's first evaluation.
    """
    max_order, max_iters = opts.max_order, opts.max_iters
    history: collections.deque[torch.Tensor] = collections.deque(maxlen=max_order - 1)
    a = RK4.a
    out = [y0]
    j = 1
    d = 1.0 if ts[-1] > ts[0] else -1.0
    y = y0
    f_next = None  # f(t1, y1) when an interior output needed it
    perturb = opts.perturb
    for t0, t1 in zip(grid[:-1], grid[1:]):
        h = t1 - t0
        t_first = nudge(t0, t1) if perturb else t0
        t_last = nudge(t1, t0) if perturb else t1
        f0 = f_next if (f_next is not None and not perturb) else f(t_first, y).reshape(-1)
        f_next = None
        history.appendleft(f0)
        order = min(len(history), max_order - 1)
        if order < MIN_ORDER - 1:
            k2 = f(t0 + h / 3, y + h * a[1][0] * f0).reshape(-1)
            k3 = f(t0 + 2 * h / 3, y + h * (a[2][0] * f0 + a[2][1] * k2)).reshape(-1)
            k4 = f(t_last, y + h * (a[3][0] * f0 + a[3][1] * k2 + a[3][2] * k3)).reshape(-1)
            dy = h * (RK4.b[0] * f0 + RK4.b[1] * k2 + RK4.b[2] * k3 + RK4.b[3] * k4)
        else:
            dy = h * sum(w * fk for w, fk in zip(bashforth(order), history))
            if method.implicit:
                am = moulton(order + 1)
                delta = h * sum(w * fk for w, fk in zip(am[1:], history))
                converged = False
                for _ in range(max_iters):
                    dy_old = dy
                    dy = h * am[0] * f(t_last, y + dy).reshape(-1) + delta
                    with torch.no_grad():
                        converged = _converged(dy_old, dy, rtol, atol)
                    if converged:
                        break
                if not converged:
                    warnings.warn(
                        f"{method.name}: the corrector did not converge at t={t1:.6g} in {max_iters} "
                        "iterations; the solution may be inaccurate (as torchdiffeq, the oldest "
                        "derivative is dropped)",
                        stacklevel=4,
                    )
                    history.pop()
        y1 = y + dy
        counts.accepted += 1
        if not bool(torch.isfinite(y1).all()):
            raise SolverError(t0, "non-finite state", f"the state is not finite at t={t1:.10g}")
        while j < len(ts) and (ts[j] - t1) * d <= 0:
            if ts[j] == t1:
                out.append(y1)
            else:
                if f_next is None:
                    f_next = f(t1, y1).reshape(-1)
                th = (ts[j] - t0) / h
                h00, h10 = (1 + 2 * th) * (1 - th) ** 2, th * (1 - th) ** 2
                h01, h11 = th * th * (3 - 2 * th), th * th * (th - 1)
                out.append(h00 * y + h10 * h * f0 + h01 * y1 + h11 * h * f_next)
            j += 1
        y = y1
    return out


FIXED_ADAMS_SOLVERS: dict[str, FixedAdams] = {
    "explicit_adams": FixedAdams("explicit_adams", implicit=False),
    "implicit_adams": FixedAdams("implicit_adams", implicit=True),
    "fixed_adams": FixedAdams("fixed_adams", implicit=True),
}
