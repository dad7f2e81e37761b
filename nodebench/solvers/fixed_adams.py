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
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import torch

from nodebench.solvers.controller import nudge
from nodebench.solvers.errors import SolverError
from nodebench.solvers.method import Config, Method, Step
from nodebench.solvers.tableaus import RK4

MIN_ORDER = 4  # below this the history is too short and a step is a Runge–Kutta step
MAX_ORDER = 12


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


FIXED_ADAMS_OPTIONS = frozenset(
    {"step_size", "max_num_steps", "dtype", "perturb", "max_order", "max_iters", "grid_constructor", "interp"}
)


@dataclass
class _State:
    f: Callable
    cfg: Config
    y: torch.Tensor
    history: collections.deque
    f_next: torch.Tensor | None = None  # f(t1, y1) when an interior output needed it


class FixedAdams(Method):
    """A fixed-grid Adams method (see the module docstring).

    Outputs between grid points are cubic Hermite interpolants (as nodebench's fixed-grid Runge–Kutta
    methods); the derivative at the step's end they need is the next step's first evaluation.

    Arguments:
        name: registry name.
        implicit: whether the Adams–Moulton corrector runs.
    """

    order = 4  # the order torchdiffeq states for the family
    adaptive = False
    option_names = FIXED_ADAMS_OPTIONS

    def __init__(self, name: str, implicit: bool) -> None:
        self.name, self.implicit = name, implicit

    def init(self, f, t0, y0, cfg):
        return _State(f, cfg, y0, collections.deque(maxlen=cfg.opts.max_order - 1))

    def step(self, st, t0, h, t1):
        f, y, opts, history = st.f, st.y, st.cfg.opts, st.history
        perturb, t_dtype = opts.perturb, opts.t_dtype
        t_first = nudge(t0, t1, t_dtype) if perturb else t0
        t_last = nudge(t1, t0, t_dtype) if perturb else t1
        f0 = st.f_next if (st.f_next is not None and not perturb) else f(t_first, y).reshape(-1)
        st.f_next = None
        history.appendleft(f0)
        order = min(len(history), opts.max_order - 1)
        a = RK4.a
        if order < MIN_ORDER - 1:
            k2 = f(t0 + h / 3, y + h * a[1][0] * f0).reshape(-1)
            k3 = f(t0 + 2 * h / 3, y + h * (a[2][0] * f0 + a[2][1] * k2)).reshape(-1)
            k4 = f(t_last, y + h * (a[3][0] * f0 + a[3][1] * k2 + a[3][2] * k3)).reshape(-1)
            dy = h * (RK4.b[0] * f0 + RK4.b[1] * k2 + RK4.b[2] * k3 + RK4.b[3] * k4)
        else:
            dy = h * sum(w * fk for w, fk in zip(bashforth(order), history))
            if self.implicit:
                dy = self._correct(st, y, dy, h, order, t1, t_last)
        y1 = y + dy
        if not bool(torch.isfinite(y1).all()):
            raise SolverError(t0, "non-finite state", f"the state is not finite at t={t1:.10g}")
        return Step(t0, t1, h, y, y1, data=f0)

    def _correct(self, st, y, dy, h, order, t1, t_last):
        opts, history = st.cfg.opts, st.history
        am = moulton(order + 1)
        delta = h * sum(w * fk for w, fk in zip(am[1:], history))
        converged = False
        for _ in range(opts.max_iters):
            dy_old = dy
            dy = h * am[0] * st.f(t_last, y + dy).reshape(-1) + delta
            with torch.no_grad():
                converged = _converged(dy_old, dy, st.cfg.rtol, st.cfg.atol)
            if converged:
                break
        if not converged:
            warnings.warn(
                f"{self.name}: the corrector did not converge at t={t1:.6g} in {opts.max_iters} "
                "iterations; the solution may be inaccurate (as torchdiffeq, the oldest "
                "derivative is dropped)",
                stacklevel=6,
            )
            history.pop()
        return dy

    def dense(self, st, step, t):
        if st.f_next is None:
            st.f_next = st.f(step.t1, step.y1).reshape(-1)
        h, th = step.h, (t - step.t0) / step.h
        h00, h10 = (1 + 2 * th) * (1 - th) ** 2, th * (1 - th) ** 2
        h01, h11 = th * th * (3 - 2 * th), th * th * (th - 1)
        return h00 * step.y0 + h10 * h * step.data + h01 * step.y1 + h11 * h * st.f_next

    def advance(self, st, step):
        st.y = step.y1

    def jump(self, st, t, y, fy, after, span=math.inf):
        st.y, st.f_next = y, None
        st.history.clear()  # the history of f is not that of the new state
        return None


FIXED_ADAMS_METHODS: dict[str, FixedAdams] = {
    "explicit_adams": FixedAdams("explicit_adams", implicit=False),
    "implicit_adams": FixedAdams("implicit_adams", implicit=True),
    "fixed_adams": FixedAdams("fixed_adams", implicit=True),
}
