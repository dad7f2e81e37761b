"""``method="radau"``: the three-stage Radau IIA method of order 5 with step-size control (RADAU5).

Hairer & Wanner's RADAU5 (Solving ODEs II, Sec. IV.8), in the form of scipy's ``Radau``, on torch
states: L-stable, stiffly accurate, order 5, with

- **the collocation system** solved by a simplified Newton iteration decoupled by the eigenvalues of
  ``A⁻¹`` (one real ``n x n`` and one complex ``n x n`` factorisation per step size and Jacobian; see
  :mod:`~nodebench.solvers.implicit_rk`), started from the previous step's collocation polynomial,
  stopped as in RADAU5 (``η ||ΔW|| <= κ``, ``κ = max(10 eps/rtol, min(0.03, rtol^½))``, ``η`` carried
  over from the last solve so one iteration can suffice), at most ``max_iters`` (6) iterations;
- **the Jacobian** (autograd or ``options["jacobian"]``) kept across steps and recomputed only when an
  accepted step's iteration was slow (more than 2 iterations and rate above 1e-3) or when the iteration
  fails with an old one; the **factorisations** kept while the step size stays (a proposed change
  smaller than 20 % is not made, so that they can be reused);
- **the embedded error estimate** ``(γ₀/h - J)⁻¹ (f0 + h⁻¹ Σ e_i Z_i)`` (refined once with one more
  evaluation after a rejection, as in RADAU5), Gustafsson's predictive step-size controller and a
  safety factor that shrinks with the Newton iterations;
- **a failed Newton iteration** with a fresh Jacobian is a rejected step that halves the step size;
- **outputs at step ends**: the loop clips steps to land on every output time. The collocation
  polynomial (``dense``, used for events) is only of the stage order 3 between step ends, and on a stiff
  problem the error estimate (filtered through ``(γ₀/h - J)⁻¹``) lets steps grow far beyond what that
  interpolant can follow: on ``y' = -1e6 (y - cos t)`` scipy's ``Radau`` interpolates ``y(5)`` with an
  error of 1e-3 at ``rtol=1e-7`` (its step ends are accurate).

It judges its own steps (the loop's controller passes its verdict and proposal through). Host
reads: one per Newton iteration (the increment's norm, with the error norm folded into
the same read), plus one on a step retried after a rejection.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from nodebench.solvers.controller import initial_step
from nodebench.solvers.errors import SolverError
from nodebench.solvers.implicit_rk import Factors, evaluate_stages, firk_increment, stage_data
from nodebench.solvers.implicit_tableaus import RADAU_IIA5
from nodebench.solvers.method import Config, Method, Step
from nodebench.solvers.newton import (
    Linearization,
    check_step,
    floor_rtol,
    implicit_solution,
    linearization,
    newton,
    newton_tolerance,
    read,
    scale,
    wnorm,
)

_S6 = math.sqrt(6.0)
#: Error-estimate weights of the stage increments (RADAU5's ``E``, in units of ``1/h``).
E_WEIGHTS = ((-13 - 7 * _S6) / 3, (-13 + 7 * _S6) / 3, -1 / 3)
#: Collocation polynomial: ``y(t0 + x h) = y0 + sum_j x^(j+1) (Pᵀ Z)_j``.
P_DENSE = (
    (13 / 3 + 7 * _S6 / 3, -23 / 3 - 22 * _S6 / 3, 10 / 3 + 5 * _S6),
    (13 / 3 - 7 * _S6 / 3, -23 / 3 + 22 * _S6 / 3, 10 / 3 - 5 * _S6),
    (1 / 3, -8 / 3, 10 / 3),
)
MIN_FACTOR, MAX_FACTOR = 0.2, 10.0

IMPLICIT_ADAPTIVE_OPTIONS = frozenset(
    {"first_step", "max_num_steps", "dtype", "step_t", "jump_t", "norm", "min_step", "max_step", "jacobian",
     "max_iters"}
)  # fmt: skip


def predict_factor(h_abs: float, h_abs_old: float | None, err: float, err_old: float | None) -> float:
    """Gustafsson's predictive step-size factor (as scipy's ``Radau``)."""
    if err_old is None or h_abs_old is None or err == 0:
        multiplier = 1.0
    else:
        multiplier = h_abs / h_abs_old * (err_old / err) ** 0.25
    return min(1.0, multiplier) * (err**-0.25 if err > 0 else math.inf)


@dataclass
class _Radau:
    f: Callable
    cfg: Config
    lin: Linearization
    facs: Factors
    t: float
    y: torch.Tensor
    f0: torch.Tensor  # f(t, y), flat, no graph
    record: bool
    tol: float
    current_jac: bool = False
    h_abs_old: float | None = None
    err_old: float | None = None
    rejected: bool = False
    eta: float = 1.0
    poly: tuple | None = None  # (t0, h, y0, Q) of the last accepted step (no graph)


class Radau(Method):
    """``method="radau"`` (see the module docstring)."""

    name = "radau"
    order = 5
    adaptive = True
    implicit = True
    lands_on_end = True
    lands_on_outputs = True
    option_names = IMPLICIT_ADAPTIVE_OPTIONS
    option_defaults = {"max_iters": 6}  # noqa: RUF012

    def init(self, f, t0, y0, cfg):
        cfg = floor_rtol(cfg, y0.dtype, self.name)
        f0 = f(t0, y0)
        record = torch.is_grad_enabled() and (y0.requires_grad or f0.requires_grad)
        lin = linearization(f, cfg)
        tol = newton_tolerance(cfg.rtol, y0.dtype)
        return _Radau(f, cfg, lin, Factors(lin), t0, y0, f0.reshape(-1).detach(), record, tol)

    def initial_step(self, st, direction, span):
        cfg = st.cfg
        if cfg.opts.first_step is not None:
            if not bool(torch.isfinite(st.f0).all()):
                raise SolverError(st.t, "non-finite derivative", "func(t0, y0) is not finite")
            return cfg.opts.first_step
        h = initial_step(
            lambda t_, y_: st.f(t_, y_).reshape(-1), st.t, st.y.detach(), st.f0, 3, cfg.rtol, cfg.atol,
            direction, cfg.norm, cfg.prefix,
        )  # fmt: skip
        return min(h, span) if math.isfinite(span) else h

    @staticmethod
    def _polynomial(poly: tuple, t: float) -> torch.Tensor:
        t0, h, y0, Q = poly
        x = (t - t0) / h
        return y0 + (x * Q[0] + x * x * Q[1] + x**3 * Q[2])

    def step(self, st: _Radau, t, h, t1):
        cfg, lin, facs = st.cfg, st.lin, st.facs
        sd = stage_data(RADAU_IIA5, st.y.dtype, st.y.device)
        y, yd = st.y, st.y.detach()
        check_step(cfg, t, h)
        h_abs = abs(h)
        times = [t + sd.c[0] * h, t + sd.c[1] * h, t1]
        with torch.no_grad():
            if st.poly is None:
                Z0 = torch.zeros(3, yd.numel(), dtype=yd.dtype, device=yd.device)
            else:
                Z0 = torch.stack([self._polynomial(st.poly, s) - yd for s in times])
            sc = scale(cfg, yd)
            ew = torch.tensor(E_WEIGHTS, dtype=yd.dtype, device=yd.device)
            zero = torch.zeros_like(Z0)

            def increment(Z):
                F = evaluate_stages(st.f, times, yd, Z)
                return firk_increment(sd, facs, lin, h, F, Z - zero), torch.isfinite(F).all()

            def estimate(Z) -> torch.Tensor:
                return lin.solve(facs.get(sd.lam[0].real, h), st.f0 + (ew @ Z) / h)

            def extra(Z):
                return [wnorm(cfg, estimate(Z), scale(cfg, yd, yd + Z[-1])), torch.isfinite(st.f0).all()]

            while True:
                if facs.jac is None:
                    facs.reset(lin.jacobian(t, yd))
                    st.current_jac = True
                r = newton(
                    increment, Z0, lambda dz: wnorm(cfg, dz, sc), st.tol, cfg.opts.max_iters, cfg.counts,
                    lin.eta0(st.eta), extra=extra,
                )  # fmt: skip
                if r.converged or st.current_jac:
                    break
                facs.reset(lin.jacobian(t, yd))
                st.current_jac = True
            if not r.converged:
                st.eta = 1.0
                return Step(t, t1, h, y, y, accepted=False, proposal=0.5 * h_abs)
            if r.extra and not r.extra[1]:  # f(t, y), evaluated after the last step, is not finite
                raise SolverError(t, "non-finite derivative", f"func(t, y) is not finite at t={t:.10g}")
            st.eta = r.eta
            Z = r.z
            err = r.extra[0]
            safety = 0.9 * (2 * cfg.opts.max_iters + 1) / (2 * cfg.opts.max_iters + r.iterations)
            if st.rejected and not err <= 1:  # RADAU5's refined estimate after a rejection
                e1 = estimate(Z)
                e2 = lin.solve(facs.get(sd.lam[0].real, h), st.f(t, yd + e1).reshape(-1) + (ew @ Z) / h)
                (err,) = read(wnorm(cfg, e2, scale(cfg, yd, yd + Z[-1])))
            if not err <= 1:  # also NaN
                factor = predict_factor(h_abs, st.h_abs_old, err, st.err_old) if math.isfinite(err) else 0
                st.rejected = True
                return Step(t, t1, h, y, y, accepted=False, proposal=h_abs * max(MIN_FACTOR, safety * factor))
        recompute = r.iterations > 2 and r.theta > 1e-3
        factor = min(MAX_FACTOR, safety * predict_factor(h_abs, st.h_abs_old, err, st.err_old))
        if not recompute and factor < 1.2:
            factor = 1.0  # keep the step size, and with it the factorisations
        if st.record:
            y0e = y.reshape(-1)
            A = sd.a
            Zg = implicit_solution(
                Z, lambda z: h * (A @ evaluate_stages(st.f, times, y0e, z)), A, h, facs.jac
            )
        else:
            Zg = Z
        y1 = y + Zg[-1]
        Q = torch.tensor(P_DENSE, dtype=yd.dtype, device=yd.device).T @ Zg
        with torch.no_grad():
            y1d = y1.detach() if y1.requires_grad else y1  # the same tensor: the adjoint's jump reuses f1
            f1 = st.f(t1, y1d).reshape(-1)
            if recompute:
                facs.reset(lin.jacobian(t1, y1d))
                st.current_jac = True
            else:
                st.current_jac = False
        st.h_abs_old, st.err_old, st.rejected = h_abs, err, False
        data = {"Q": Q, "f1": f1, "Qd": Q.detach()}
        return Step(t, t1, h, y, y1, accepted=True, proposal=h_abs * factor, data=data)

    def dense(self, st, step, t):
        return self._polynomial((step.t0, step.h, step.y0, step.data["Q"]), t)

    def advance(self, st, step):
        st.t, st.y, st.f0 = step.t1, step.y1, step.data["f1"]
        st.poly = (step.t0, step.h, step.y0.detach(), step.data["Qd"])

    def snap(self, st, t):
        st.t = t
        return st.f0

    def jump(self, st, t, y, fy, after, span=math.inf):
        st.t, st.y, st.poly = t, y, None
        st.f0 = (fy if fy is not None else st.f(after, y)).reshape(-1).detach()
        st.h_abs_old = st.err_old = None
        return None

    def derivative_at_end(self, st, step) -> Any:
        return step.data["f1"]


RADAU = Radau()
