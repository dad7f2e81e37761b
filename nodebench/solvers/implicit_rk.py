"""Fixed-grid implicit Runge–Kutta methods: torchdiffeq HEAD's ``implicit_euler``, ``implicit_midpoint``,
``trapezoid``, ``gl4``, ``gl6``, ``radauIIA3``, ``radauIIA5``, ``sdirk2`` and ``trbdf2``.

Same names, options (``step_size``, ``perturb``, ``max_iters``, ``max_num_steps``, ``dtype``) and
solutions as torchdiffeq's (``torchdiffeq/_impl/fixed_grid_implicit.py``), computed differently:
torchdiffeq solves each step's stage equations by Broyden's method started from the identity, to a
residual below 1e-8 (float64) or 1e-6 (float32) in the 2-norm, which on a stiff problem (``h |λ| >> 1``)
converges slowly or not at all; here the stages are solved by a simplified Newton iteration with the
Jacobian ``∂f/∂y`` (autograd, or ``options["jacobian"]``), kept across steps while the iteration
converges fast and refreshed when it does not (see :mod:`~nodebench.solvers.newton`), until the
increment is below ``newton_tolerance(rtol)`` in the error norm of the solve's ``rtol``/``atol`` (fixed-grid
methods otherwise ignore them, as torchdiffeq's do; the fixed-grid Adams corrector uses them the same way).
``max_iters`` (default 100, torchdiffeq's) bounds the iterations of one stage solve; a solve that does
not converge warns, as torchdiffeq's does, and the step goes on from the last iterate.

With no error estimate to catch an inaccurate stage solve, a fixed-grid step never ends its iteration
on the first increment unless that increment is itself below the tolerance (RADAU5's rule, which trusts
the previous solve's contraction rate, would accept one increment taken with a Jacobian from an earlier
step however large it is). Every evaluation happens where torchdiffeq's do with respect to ``perturb``:
a Jacobian is taken at the step's start (just after it with ``perturb``), and on a non-stiff step the
iteration starts from ``f`` there (see :meth:`ImplicitRK._stages`).

Outputs between grid points are cubic Hermite interpolants, as for nodebench's other fixed-grid methods.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from nodebench.solvers.controller import nudge
from nodebench.solvers.errors import SolverError
from nodebench.solvers.implicit_tableaus import FIXED_IMPLICIT, ImplicitTableau
from nodebench.solvers.method import Config, Method, Step
from nodebench.solvers.newton import (
    Linearization,
    complex_dtype,
    implicit_solution,
    linearization,
    newton,
    newton_tolerance,
    scale,
    wnorm,
)
from nodebench.solvers.rk import FIXED_OPTIONS

IMPLICIT_FIXED_OPTIONS = FIXED_OPTIONS | {"max_iters", "jacobian"}


@dataclass(frozen=True)
class StageData:
    """A tableau's coefficients as tensors on one dtype and device (see :func:`stage_data`)."""

    c: list[float]
    a: torch.Tensor  # A' (s', s')
    a0: torch.Tensor  # weights of the explicit first stage (s',)
    d: torch.Tensor  # (s',)
    b0: float
    lam: list[complex]  # eigenvalues of A'^-1 (fully implicit tableaus)
    V: torch.Tensor | None
    Vinv: torch.Tensor | None
    solved: list[int]
    partner: dict[int, int]
    diag: list[float]  # a'_ii (diagonally implicit tableaus)


@functools.lru_cache(maxsize=64)
def stage_data(tab: ImplicitTableau, dtype: torch.dtype, device: torch.device) -> StageData:
    """The tensors a step of ``tab`` needs (cached per dtype and device)."""
    ap = tab.implicit_a
    cd = complex_dtype(dtype)
    V = Vinv = None
    lam, solved, partner = [], [], {}
    if not tab.diagonal:
        lam_np, V_np, Vinv_np, solved, partner = tab.eigen()
        lam = [complex(x) for x in lam_np]
        V = torch.tensor(V_np, dtype=cd, device=device)
        Vinv = torch.tensor(Vinv_np, dtype=cd, device=device)
    return StageData(
        c=list(tab.c[tab.first :]),
        a=torch.tensor(ap, dtype=dtype, device=device),
        a0=torch.tensor(tab.explicit_a, dtype=dtype, device=device),
        d=torch.tensor(tab.d, dtype=dtype, device=device),
        b0=tab.b[0] if tab.explicit_first else 0.0,
        lam=lam,
        V=V,
        Vinv=Vinv,
        solved=list(solved),
        partner=dict(partner),
        diag=[float(ap[i, i]) for i in range(len(ap))],
    )


def stage_times(t0: float, h: float, c: list[float], t1: float, nudge_end: Callable | None) -> list[float]:
    """``t0 + c_i h``; a node of 1 is ``t1`` itself (or, with ``nudge_end``, just before it)."""
    return [(t1 if nudge_end is None else nudge_end()) if ci == 1.0 else t0 + ci * h for ci in c]


def evaluate_stages(f: Callable, times: list[float], y0: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
    """``f(t_i, y0 + Z_i)`` for every row of ``Z``, as rows."""
    return torch.stack([f(ti, y0 + zi).reshape(-1) for ti, zi in zip(times, Z)])


class Factors:
    """Factorisations of ``shift I - J`` for one Jacobian, by shift (cleared when ``J`` or ``h`` changes)."""

    def __init__(self, lin: Linearization) -> None:
        self.lin = lin
        self.jac: Any = None
        self.by_shift: dict[complex | float, Any] = {}
        self.h: float | None = None
        self._jnorm: float | None = None

    def reset(self, jac: Any) -> None:
        self.jac, self.by_shift, self.h = jac, {}, None
        self._jnorm = None

    def jnorm(self) -> float:
        """``||J||_inf`` (the largest absolute row sum; read once per Jacobian)."""
        if self._jnorm is None:
            self._jnorm = float(self.lin.matrix_norm(self.jac))
        return self._jnorm

    def get(self, coef: complex | float, h: float) -> Any:
        """The factorisation of ``coef/h I - J``; a step within rounding of the last (a grid's steps
        ``t_{k+1} - t_k``) keeps its factorisations."""
        if self.h is None or abs(h - self.h) > 1e-10 * abs(self.h):
            self.by_shift, self.h = {}, h
        fac = self.by_shift.get(coef)
        if fac is None:
            fac = self.by_shift[coef] = self.lin.factor(self.jac, coef / self.h)
        return fac


def firk_increment(sd: StageData, facs: Factors, lin: Linearization, h: float, F, W_minus_E) -> torch.Tensor:
    """The Newton increment of a fully implicit stage system, decoupled by ``A'⁻¹ = V Λ V⁻¹``:
    ``(λ_j/h - J) ΔW_j = (V⁻¹ F)_j - λ_j/h (V⁻¹ (Z - E))_j``, ``ΔZ = Re(V ΔW)``."""
    cd = sd.V.dtype
    G = sd.Vinv @ F.to(cd)
    W = sd.Vinv @ W_minus_E.to(cd)
    rows: list[torch.Tensor | None] = [None] * len(sd.lam)
    for j in sd.solved:
        lam = sd.lam[j]
        if lam.imag == 0.0:
            r = (G[j] - (lam.real / h) * W[j]).real
            rows[j] = lin.solve(facs.get(lam.real, h), r).to(cd)
        else:
            rows[j] = lin.solve(facs.get(lam, h), G[j] - (lam / h) * W[j])
    for j, i in sd.partner.items():
        rows[j] = rows[i].conj()
    return (sd.V @ torch.stack(rows)).real.to(F.dtype)


class _Slope:
    """``f`` at a step's start, evaluated only where a stage iteration starts from it (see
    :meth:`ImplicitRK._stages`)."""

    def __init__(self, value: torch.Tensor | None, evaluate: Callable[[], torch.Tensor]) -> None:
        self.value, self._evaluate = value, evaluate

    def get(self, facs: Factors, h: float) -> torch.Tensor | None:
        if h * facs.jnorm() > 1.0:
            return None
        if self.value is None:
            self.value = self._evaluate().detach()
        return self.value


@dataclass
class _State:
    f: Callable
    cfg: Config
    lin: Linearization
    facs: Factors
    y: torch.Tensor
    f0: torch.Tensor | None  # f at the current (t, y) when known
    record: bool
    tol: float
    fresh: bool = False  # the Jacobian was taken at this step's start
    refresh: bool = True  # take a new Jacobian at the next step's start
    eta: float = 1.0
    warned: bool = False
    extra: dict = field(default_factory=dict)


class ImplicitRK(Method):
    """A fixed-grid implicit Runge–Kutta method given by its :class:`ImplicitTableau`."""

    adaptive = False
    implicit = True
    option_names = IMPLICIT_FIXED_OPTIONS
    option_defaults = {"max_iters": 100}  # noqa: RUF012 (torchdiffeq's default)

    def __init__(self, tableau: ImplicitTableau) -> None:
        self.tableau = tableau
        self.name = tableau.name
        self.order = tableau.order

    def init(self, f, t0, y0, cfg):
        lin = linearization(f, cfg)
        perturb = cfg.opts.perturb
        t_first = nudge(t0, t0 + cfg.direction, cfg.opts.t_dtype) if perturb else t0
        f0 = f(t_first, y0)
        if not bool(torch.isfinite(f0).all()):
            raise SolverError(t0, "non-finite derivative", "func(t0, y0) is not finite")
        record = torch.is_grad_enabled() and (y0.requires_grad or f0.requires_grad)
        tol = newton_tolerance(cfg.rtol, y0.dtype)
        return _State(f, cfg, lin, Factors(lin), y0, f0.reshape(-1).detach(), record, tol)

    @staticmethod
    def _first_time(st: _State, t0: float, t1: float) -> float:
        """Where a step's evaluations at its start happen: ``t0``, or just after it with ``perturb``."""
        opts = st.cfg.opts
        return nudge(t0, t1, opts.t_dtype) if opts.perturb else t0

    def _f0(self, st: _State, t0: float, t1: float, y0: torch.Tensor) -> torch.Tensor:
        return st.f(self._first_time(st, t0, t1), y0).reshape(-1)

    @staticmethod
    def _eta0(st: _State, full: bool) -> float:
        """The rate a stage iteration starts from: never below 1 on a fixed grid (module docstring)."""
        return math.inf if full else max(st.lin.eta0(st.eta), 1.0)

    def step(self, st, t0, h, t1):
        tab, y0 = self.tableau, st.y
        sd = stage_data(tab, y0.dtype, y0.device)
        yd = y0.detach()
        f0g = f0 = None
        if tab.explicit_first:
            if st.record:
                f0g = self._f0(st, t0, t1, y0)
                f0 = f0g.detach()
            else:
                f0 = st.f0 if st.f0 is not None else self._f0(st, t0, t1, y0)
        else:
            f0 = st.f0
        opts = st.cfg.opts
        nudge_end = (lambda: nudge(t1, t0, opts.t_dtype)) if opts.perturb else None
        times = stage_times(t0, h, sd.c, t1, nudge_end)
        with torch.no_grad():
            E = (
                h * sd.a0[:, None] * f0[None]
                if tab.explicit_first
                else torch.zeros(len(sd.c), yd.numel(), dtype=yd.dtype, device=yd.device)
            )
            slope = _Slope(f0, lambda: self._f0(st, t0, t1, yd))
            Z = self._stages(st, sd, self._first_time(st, t0, t1), h, times, yd, E, slope)
            f0 = slope.value
        if st.record:
            y0e = y0.reshape(-1)

            def phi(z: torch.Tensor) -> torch.Tensor:
                F = evaluate_stages(st.f, times, y0e, z)
                out = h * (sd.a @ F)
                return out if f0g is None else out + h * sd.a0[:, None] * f0g[None]

            J = st.lin.matrix(st.facs.jac)
            Z = implicit_solution(Z, phi, sd.a, h, J)
            E = h * sd.a0[:, None] * f0g[None] if f0g is not None else E
        y1 = y0 + sd.d @ (Z - E)
        if tab.explicit_first:
            y1 = y1 + (h * sd.b0) * (f0g if f0g is not None else f0)
        st.extra = {}
        return Step(
            t0, t1, h, y0, y1, data={"f0": f0g if f0g is not None else (f0 if tab.explicit_first else None)}
        )

    def _stages(self, st: _State, sd: StageData, t0, h, times, yd, E, slope: _Slope) -> torch.Tensor:
        """The converged stage increments ``Z'`` (rows), refreshing a stale Jacobian once if needed.

        ``t0`` is the step's first time (just after it with ``perturb``, as every evaluation there), where
        a new Jacobian is taken. Where the step is not stiff (``h ||J||_inf <= 1``) the iteration starts
        from the explicit prediction ``Z'_i = c_i h f(t0, y0)`` (as torchdiffeq's starts; about a fifth
        fewer Newton iterations on non-stiff problems), else from ``Z' = E`` (the explicit stage's part
        alone): on a stiff step the explicit prediction is off by ``h |λ|`` and costs more iterations
        than it saves (Robertson with radauIIA5 on a fixed grid: 6x the evaluations)."""
        lin, facs, cfg = st.lin, st.facs, st.cfg
        sc = scale(cfg, yd)
        max_iters = cfg.opts.max_iters
        solve = self._dirk if self.tableau.diagonal else self._firk
        for _ in range(2):
            if st.refresh or facs.jac is None:
                facs.reset(lin.jacobian(t0, yd))
                st.fresh, st.refresh = True, False
            ok, Z, theta, iters = solve(st, sd, h, times, yd, E, slope, sc, max_iters)
            if ok or st.fresh:
                break
            st.refresh = True
        if not ok:  # a grid's step cannot shrink: full Newton, a new Jacobian at every iterate
            ok, Z, theta, iters = solve(st, sd, h, times, yd, E, slope, sc, max_iters, full=True)
            st.refresh = True
        if not ok and not st.warned:
            st.warned = True
            warnings.warn(
                f"{self.name}: the Newton iteration did not converge at t={t0:.6g} (step {h:.3g}; gave up "
                f"after {iters} of at most {max_iters} iterations, contraction rate {theta:.3g}); the "
                "solution may be inaccurate (warned once per solve)",
                stacklevel=5,
            )
        st.fresh = False
        st.refresh = st.refresh or (iters > 2 and theta > 1e-3)
        return Z

    def _firk(self, st, sd, h, times, yd, E, slope, sc, max_iters, full=False):
        f, lin, facs, cfg = st.f, st.lin, st.facs, st.cfg

        def increment(Z):
            if full:  # the Jacobian at the last stage of this iterate
                facs.reset(lin.jacobian(times[-1], yd + Z[-1]))
            F = evaluate_stages(f, times, yd, Z)
            return firk_increment(sd, facs, lin, h, F, Z - E), torch.isfinite(F).all()

        f0 = slope.get(facs, h)
        guess = E.clone() if f0 is None else E + h * sd.a.sum(1)[:, None] * f0[None]
        r = newton(
            increment, guess, lambda dz: wnorm(cfg, dz, sc), st.tol, max_iters, cfg.counts,
            self._eta0(st, full), stale=not (st.fresh or full), slow=0.5,
        )  # fmt: skip
        if r.converged:
            st.eta = r.eta
        return r.converged, r.z, r.theta, r.iterations

    def _dirk(self, st, sd, h, times, yd, E, slope, sc, max_iters, full=False):
        """Stage by stage: ``(1/(h a_ii) - J) Δz = (E_i - z)/(h a_ii) + f(t_i, y0 + z)``."""
        f, lin, facs, cfg = st.f, st.lin, st.facs, st.cfg
        Zs: list[torch.Tensor] = []
        ks: list[torch.Tensor] = []
        ok_all, theta_max, iters_max = True, 0.0, 0
        for i, ti in enumerate(times):
            gamma = sd.diag[i]
            shift = 1.0 / (h * gamma)
            Ei = E[i]
            for j in range(i):
                Ei = Ei + (h * float(sd.a[i, j])) * ks[j]
            prev = ks[-1] if ks else slope.get(facs, h)
            guess = Ei.clone() if prev is None else Ei + (h * gamma) * prev

            def increment(z, ti=ti, Ei=Ei, shift=shift, gamma=gamma):
                if full:  # the Jacobian at this iterate
                    facs.reset(lin.jacobian(ti, yd + z))
                Fi = f(ti, yd + z).reshape(-1)
                return lin.solve(facs.get(1.0 / gamma, h), (Ei - z) * shift + Fi), torch.isfinite(Fi).all()

            r = newton(
                increment, guess, lambda dz: wnorm(cfg, dz, sc), st.tol, max_iters, cfg.counts,
                self._eta0(st, full), stale=not (st.fresh or full), slow=0.5,
            )  # fmt: skip
            if not r.converged:
                ok_all = False
                if not (st.fresh or full):
                    return False, None, r.theta, r.iterations
            else:
                st.eta = r.eta
            Zs.append(r.z)
            ks.append((r.z - Ei) * shift)
            theta_max, iters_max = max(theta_max, r.theta), max(iters_max, r.iterations)
        return ok_all, torch.stack(Zs), theta_max, iters_max

    def _end(self, st: _State, step: Step) -> torch.Tensor:
        if step.data.get("f1") is None:
            step.data["f1"] = st.f(step.t1, step.y1).reshape(-1)
        return step.data["f1"]

    def dense(self, st, step, t):
        f0 = step.data.get("f0")
        if f0 is None:
            f0 = step.data["f0"] = (
                st.f0 if (st.f0 is not None and not st.record) else self._f0(st, step.t0, step.t1, step.y0)
            )
        f1 = self._end(st, step)
        h, th = step.h, (t - step.t0) / step.h
        h00, h10 = (1 + 2 * th) * (1 - th) ** 2, th * (1 - th) ** 2
        h01, h11 = th * th * (3 - 2 * th), th * th * (th - 1)
        return h00 * step.y0 + h10 * h * f0 + h01 * step.y1 + h11 * h * f1

    def advance(self, st, step):
        st.y = step.y1
        f1 = step.data.get("f1")
        st.f0 = f1.detach() if (f1 is not None and not st.cfg.opts.perturb) else None

    def jump(self, st, t, y, fy, after, span=math.inf):
        st.y = y
        st.f0 = fy.reshape(-1).detach() if fy is not None else None
        return None


FIXED_IMPLICIT_METHODS: dict[str, ImplicitRK] = {
    name: ImplicitRK(tab) for name, tab in FIXED_IMPLICIT.items()
}
