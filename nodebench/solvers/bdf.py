"""``method="bdf"`` and ``method="ndf"``: variable-order (1 to 5) backward differentiation formulas.

The multistep family of LSODE (the paper's solver, which switches to it when a problem turns stiff),
in the quasi-constant step-size form of Shampine & Reichelt ("The MATLAB ODE Suite", 1997) and of
scipy's ``BDF``, on torch states:

- **History** as backward differences ``D`` of the interpolating polynomial, rescaled when the step
  size changes (``D ← (R U)ᵀ D``), so each formula is the fixed-step one.
- **Step** of order ``k``: predict ``y_p = sum_{j<=k} D_j``, then solve
  ``(1 - κ) γ_k (y - y_p) - h f(t1, y) + sum_{j<=k} γ_j D_j = 0`` by a simplified Newton iteration with
  ``I - h/α_k J`` (``α_k = (1 - κ_k) γ_k``), at most ``max_iters`` (4) iterations, stopped as in scipy.
  ``bdf`` is the plain BDF (``κ = 0``, LSODE's formulas); ``ndf`` uses Klopfenstein–Shampine's
  numerical differentiation formulas (``κ = -0.185, -1/9, -0.0823, -0.0415, 0``), scipy's default.
- **Error** ``C_k (y - y_p)``; orders ``k - 1`` and ``k + 1`` are estimated from the differences after
  ``k + 1`` steps of one size, and the order and step with the largest step-size factor are chosen.
- **Jacobian** (autograd or ``options["jacobian"]``) kept until the iteration fails with an old one;
  the factorisation kept while the step size stays.
- **A failed Newton iteration** with a fresh Jacobian halves the step (a rejected step).
- **Dense output** from the interpolating polynomial.

It judges its own steps and lands on the final time; after a jump of the state (the adjoint's, or
``jump_t``) it restarts at order 1 with a new initial step. Host reads: one per Newton iteration (the
increment's norm, with the error norms at orders ``k - 1``, ``k``, ``k + 1`` folded into it).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from nodebench.solvers.controller import initial_step
from nodebench.solvers.errors import SolverError
from nodebench.solvers.implicit_rk import Factors
from nodebench.solvers.method import Config, Method, Step
from nodebench.solvers.newton import (
    Linearization,
    check_step,
    floor_rtol,
    implicit_solution,
    linearization,
    newton,
    newton_tolerance,
    scale,
    wnorm,
)
from nodebench.solvers.radau import IMPLICIT_ADAPTIVE_OPTIONS

MAX_ORDER = 5
MIN_FACTOR, MAX_FACTOR = 0.2, 10.0
NDF_KAPPA = (0.0, -0.1850, -1 / 9, -0.0823, -0.0415, 0.0)


@functools.lru_cache(maxsize=64)
def _change_matrix(order: int, factor: float) -> tuple[tuple[float, ...], ...]:
    """``(R U)ᵀ``: the map of the first ``order + 1`` differences to a step ``factor`` times as long."""

    def r_matrix(fac: float) -> list[list[float]]:
        M = [[0.0] * (order + 1) for _ in range(order + 1)]
        M[0] = [1.0] * (order + 1)
        for i in range(1, order + 1):
            for j in range(1, order + 1):
                M[i][j] = (i - 1 - fac * j) / i
        out = [row[:] for row in M]  # cumulative product down the columns
        for i in range(1, order + 1):
            out[i] = [out[i - 1][j] * M[i][j] for j in range(order + 1)]
        return out

    R, U = r_matrix(factor), r_matrix(1.0)
    RU = [
        [sum(R[i][k] * U[k][j] for k in range(order + 1)) for j in range(order + 1)] for i in range(order + 1)
    ]
    return tuple(tuple(RU[j][i] for j in range(order + 1)) for i in range(order + 1))


@dataclass
class _BDF:
    f: Callable
    cfg: Config
    lin: Linearization
    facs: Factors
    t: float
    D: torch.Tensor  # (MAX_ORDER + 3, n) differences (a graph where recorded)
    h_abs: float  # the step size D is scaled to
    order: int
    n_equal: int
    record: bool
    tol: float
    direction: float
    current_jac: bool = False
    f0: torch.Tensor | None = None  # f at the start (for the first step size)


class BDF(Method):
    """``method="bdf"`` / ``"ndf"`` (see the module docstring).

    Arguments:
        name: registry name.
        kappa: the NDF coefficients (zeros: plain BDF).
    """

    adaptive = True
    implicit = True
    lands_on_end = True
    order = 1  # the order it starts at (the initial step's exponent)
    option_names = IMPLICIT_ADAPTIVE_OPTIONS | {"max_order"}
    option_defaults = {"max_iters": 4, "max_order": MAX_ORDER}  # noqa: RUF012

    def __init__(self, name: str, kappa: tuple[float, ...]) -> None:
        self.name = name
        gamma = [0.0] + [math.fsum(1 / j for j in range(1, k + 1)) for k in range(1, MAX_ORDER + 1)]
        self.gamma = gamma
        self.alpha = [(1 - kap) * g for kap, g in zip(kappa, gamma)]
        self.error_const = [kap * g + 1 / (k + 1) for k, (kap, g) in enumerate(zip(kappa, gamma))]

    def init(self, f, t0, y0, cfg):
        cfg = floor_rtol(cfg, y0.dtype, self.name)
        f0 = f(t0, y0).reshape(-1)
        record = torch.is_grad_enabled() and (y0.requires_grad or f0.requires_grad)
        lin = linearization(f, cfg)
        n = y0.numel()
        D = torch.zeros(MAX_ORDER + 3, n, dtype=y0.dtype, device=y0.device)
        tol = newton_tolerance(cfg.rtol, y0.dtype)
        st = _BDF(f, cfg, lin, Factors(lin), t0, D, 0.0, 1, 0, record, tol, cfg.direction)
        st.f0 = f0 if record else f0.detach()
        st.D = self._start(y0, st.f0, 1.0, st.direction, D)
        return st

    @staticmethod
    def _start(y: torch.Tensor, fy: torch.Tensor, h_abs: float, d: float, like: torch.Tensor) -> torch.Tensor:
        rest = torch.zeros(like.shape[0] - 2, like.shape[1], dtype=like.dtype, device=like.device)
        return torch.cat([y.reshape(1, -1), (fy * (h_abs * d)).reshape(1, -1), rest])

    def initial_step(self, st, direction, span):
        cfg = st.cfg
        y = st.D[0]
        if cfg.opts.first_step is not None:
            if not bool(torch.isfinite(st.f0).all()):
                raise SolverError(st.t, "non-finite derivative", "func(t0, y0) is not finite")
            h = cfg.opts.first_step
        else:
            h = initial_step(
                lambda t_, y_: st.f(t_, y_).reshape(-1), st.t, y.detach(), st.f0.detach(), 1, cfg.rtol,
                cfg.atol, direction, cfg.norm, cfg.prefix,
            )  # fmt: skip
            h = min(h, span) if math.isfinite(span) else h
        st.h_abs = h
        st.D = self._start(y, st.f0, h, st.direction, st.D)
        st.order, st.n_equal = 1, 0
        return h

    def _rescale(self, st: _BDF, factor: float) -> None:
        """Rescale the differences to a step ``factor`` times as long."""
        if factor == 1.0:
            return
        k = st.order
        M = torch.tensor(_change_matrix(k, factor), dtype=st.D.dtype, device=st.D.device)
        with torch.set_grad_enabled(st.record):  # also from inside a step's no-grad Newton block
            st.D = torch.cat([M @ st.D[: k + 1], st.D[k + 1 :]])
        st.h_abs *= factor
        st.n_equal = 0

    def step(self, st: _BDF, t, h, t1):
        cfg, lin, facs = st.cfg, st.lin, st.facs
        check_step(cfg, t, h)
        h_abs = abs(h)
        if h_abs != st.h_abs:
            self._rescale(st, h_abs / st.h_abs)
            st.h_abs = h_abs  # exactly the step taken
        k = st.order
        D = st.D
        alpha, gamma, ec = self.alpha, self.gamma, self.error_const
        g = torch.tensor(gamma[1 : k + 1], dtype=D.dtype, device=D.device)
        y_pred = D[: k + 1].sum(0)
        psi = (g @ D[1 : k + 1]) / alpha[k]
        c = h / alpha[k]
        Dd, yp, ps = D.detach(), y_pred.detach(), psi.detach()
        top = cfg.opts.max_order
        with torch.no_grad():
            sc = scale(cfg, yp)
            coef = 1.0 / c  # (I - c J) x = r is solved as (I/c - J) x = r / c

            def increment(d):
                fy = st.f(t1, yp + d).reshape(-1)
                fac = facs.get(alpha[k] * st.direction, h_abs)  # alpha/h
                return lin.solve(fac, (fy * c - ps - d) * coef), torch.isfinite(fy).all()

            def extra(d):
                y_new = yp + d
                s_new = scale(cfg, y_new)
                out = [wnorm(cfg, ec[k] * d, s_new)]
                out.append(wnorm(cfg, ec[k - 1] * (Dd[k] + d), s_new) if k > 1 else math.inf)
                out.append(wnorm(cfg, ec[k + 1] * (d - Dd[k + 1]), s_new) if k < top else math.inf)
                return out

            while True:
                if facs.jac is None:
                    facs.reset(lin.jacobian(t1, yp))
                    st.current_jac = True
                r = newton(
                    increment, torch.zeros_like(yp), lambda dy: wnorm(cfg, dy, sc), st.tol,
                    cfg.opts.max_iters, cfg.counts, math.inf, extra=extra,
                )  # fmt: skip
                if r.converged or st.current_jac:
                    break
                facs.reset(lin.jacobian(t1, yp))
                st.current_jac = True
            y_old = D[0]
            if not r.converged:
                self._rescale(st, 0.5)
                return Step(t, t1, h, y_old, y_old, accepted=False, proposal=st.h_abs)
            err, err_m, err_p = r.extra
            safety = 0.9 * (2 * cfg.opts.max_iters + 1) / (2 * cfg.opts.max_iters + r.iterations)
            if not err <= 1:
                factor = max(MIN_FACTOR, safety * err ** (-1 / (k + 1))) if math.isfinite(err) else MIN_FACTOR
                self._rescale(st, factor)
                return Step(t, t1, h, y_old, y_old, accepted=False, proposal=st.h_abs)
        d = r.z
        if st.record:
            J = facs.jac

            def phi(dz: torch.Tensor) -> torch.Tensor:
                return (c * st.f(t1, y_pred + dz[0]).reshape(-1) - psi)[None]

            eye1 = torch.ones(1, 1, dtype=D.dtype, device=D.device)
            d = implicit_solution(d[None], phi, eye1, c, J)[0]
        y_new = y_pred + d
        # Differences of the new polynomial: D_{k+2} = d - D_{k+1}, D_{k+1} = d, D_i += D_{i+1} (i <= k).
        rows = list(D)
        rows[k + 2] = d - rows[k + 1]
        rows[k + 1] = d
        for i in reversed(range(k + 1)):
            rows[i] = rows[i] + rows[i + 1]
        st.D = torch.stack(rows)
        st.t = t1
        st.n_equal += 1
        st.current_jac = False
        data = {"D": st.D, "order": k, "h": h}
        proposal = st.h_abs
        if st.n_equal >= k + 1:
            norms = [err_m, err, err_p]
            factors = [x ** (-1 / (k + j)) if x > 0 else math.inf for j, x in enumerate(norms)]
            best = max(range(3), key=lambda j: factors[j])
            st.order = k + best - 1
            factor = min(MAX_FACTOR, safety * factors[best])
            self._rescale(st, factor)
            proposal = st.h_abs
        return Step(t, t1, h, y_old, y_new, accepted=True, proposal=proposal, data=data)

    def dense(self, st, step, t):
        """The polynomial through the last ``order + 1`` points (the step's differences, before any
        rescaling for the next step)."""
        D, k, h = step.data["D"], step.data["order"], step.data["h"]
        out = D[0]
        p = 1.0
        for j in range(k):
            p = p * (t - (step.t1 - h * j)) / (h * (1 + j))
            out = out + p * D[j + 1]
        return out

    def snap(self, st, t):
        st.t = t
        return None

    def jump(self, st, t, y, fy, after, span=math.inf):
        st.t = t
        st.f0 = (fy if fy is not None else st.f(after, y)).reshape(-1)
        if not st.record:
            st.f0 = st.f0.detach()
        st.D = self._start(y, st.f0, 1.0, st.direction, st.D)
        return self.initial_step(st, st.direction, span if math.isfinite(span) else max(1.0, abs(t)))


BDF_METHODS: dict[str, BDF] = {
    "bdf": BDF("bdf", (0.0,) * (MAX_ORDER + 1)),
    "ndf": BDF("ndf", NDF_KAPPA),
}
