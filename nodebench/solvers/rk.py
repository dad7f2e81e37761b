"""Explicit Runge–Kutta methods: one step, error estimate and dense output for every tableau.

A method is its :class:`~nodebench.solvers.tableaus.Tableau` (data); :class:`RungeKutta` is the one
:class:`~nodebench.solvers.method.Method` that steps any of them, fixed grid (``b_err`` is None) or
adaptive. Stage derivatives live in a preallocated buffer when no graph is being built (one ``addmv``
per stage), and in a list combined with out-of-place adds when autograd records the solve (direct
backpropagation through the solver). Per-sample step control steps them too, through
:func:`stage_matrices` (see :mod:`~nodebench.solvers.per_sample`).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from nodebench.solvers.controller import initial_step, nudge
from nodebench.solvers.errors import SolverError, StiffnessWarning
from nodebench.solvers.method import Config, Method, Step
from nodebench.solvers.tableaus import ALL_SOLVERS, Tableau

FIXED_OPTIONS = frozenset({"step_size", "max_num_steps", "dtype", "perturb", "grid_constructor", "interp"})
ADAPTIVE_OPTIONS = frozenset(
    {
        "first_step",
        "max_num_steps",
        "dtype",
        "safety",
        "ifactor",
        "dfactor",
        "controller",
        "step_t",
        "jump_t",
        "norm",
        "min_step",
        "max_step",
        "batch",
        "stiffness_check",
    }
)
#: A tested step counts as stiff when ``h |λ|`` exceeds this fraction of the tableau's stability boundary
#: on the negative real axis (dopri5: 3.3066, tsit5: 3.5068, dopri8: 5.1666). Hairer's DOPRI5 uses 3.25
#: (98 %), with its PI controller, which holds ``h |λ|`` just under the boundary on a stiff problem;
#: nodebench's default I controller (safety 0.9) settles accepted steps lower and more erratically
#: (``h |λ|`` of 2.8 to 3.6 on the issue's ``y' = -1e6 (y - cos t)``), so the fraction is 0.8.
STIFF_FRACTION = 0.8
#: The tableaus tested. dopri8 has the two stages too, but on the stiff problem its steps settle near
#: 0.4 of its boundary (h |λ| about 2), where its steps on non-stiff problems at loose tolerances also
#: sit (the demo spiral at rtol 1e-1: 15-step runs above 2.7), so no threshold separates the two.
STIFF_TESTED = ("dopri5", "tsit5")
STIFF_STEPS = 15  # that many tested steps above it: stiff (Hairer's IASTI = 15)
NONSTIFF_STEPS = 6  # that many below it clear the count (Hairer's NONSTI = 6)


STIFF_PATIENCE = 2000  # after the warning, SolverError after this many more tested steps above the threshold


class StiffnessTest:
    """Hairer's stiffness test of DOPRI5 (Hairer & Wanner II, Sec. IV.2), on the two stages every
    :attr:`~nodebench.solvers.tableaus.Tableau.stiffness_probe` tableau has at the step's end (tested:
    :data:`STIFF_TESTED`):
    ``h |λ| ≈ |h| ||k_s - k_{s-1}|| / ||y1 - Y_{s-1}||``.

    The estimate is made on every ``every``-th accepted step and, once one exceeded the threshold, on
    every step, until ``NONSTIFF_STEPS`` in a row are below it (Hairer's NSTIFF logic), and on every step
    after a warning; it rides on the
    step's error-ratio read (no extra read, no extra evaluation). ``STIFF_STEPS`` tested steps above the
    threshold (fewer than ``NONSTIFF_STEPS`` below in between) mean stiff: a :class:`StiffnessWarning`
    (once per solve), and :class:`SolverError` after ``STIFF_PATIENCE`` more tested steps above it.

    Why warn first: a moderately stiff problem (Van der Pol with mu = 20, in the ``batch`` work-precision
    preset) sits at the stability boundary on its slow phases yet finishes in a few thousand steps; an
    error would break it. A problem that stays stiff stops a few seconds later instead of grinding to
    ``max_num_steps``.
    """

    def __init__(self, every: int, threshold: float, name: str) -> None:
        self.every, self.threshold, self.name = every, threshold, name
        self.accepted = self.above = self.below = self.stiff_steps = 0
        self.warned = False

    def wanted(self) -> bool:
        """Whether the step about to be tried is tested (if it is accepted)."""
        return (self.accepted + 1) % self.every == 0 or self.above > 0 or self.warned

    def _advice(self) -> str:
        return (
            "use an implicit method, method='radau' or method='bdf' (odeint_adjoint: adjoint_method too), "
            "or options={'stiffness_check': 0} to turn the test off"
        )

    def accept(self, hlamb: float | None, t: float, h: float) -> None:
        self.accepted += 1
        if hlamb is None or math.isnan(hlamb):  # not tested, or the two stages coincide (no estimate)
            return
        if hlamb <= self.threshold:
            self.below += 1
            if self.below >= NONSTIFF_STEPS:
                self.above = 0
            return
        self.below = 0
        self.above += 1
        if self.warned:
            self.stiff_steps += 1
            if self.stiff_steps >= STIFF_PATIENCE:
                raise SolverError(
                    t,
                    "problem is stiff",
                    f"{self.name} took {STIFF_PATIENCE} more steps at the edge of its stability region after "
                    f"the stiffness warning (h |lambda| = {hlamb:.3g} > {self.threshold:.3g}, step "
                    f"{abs(h):.3g}); " + self._advice(),
                )
        elif self.above >= STIFF_STEPS:
            self.warned = True
            warnings.warn(
                f"{self.name}: the problem looks stiff at t={t:.6g}: {STIFF_STEPS} steps at the edge of the "
                f"stability region (h |lambda| = {hlamb:.3g} > {self.threshold:.3g}, step {abs(h):.3g}), so "
                "the step size is limited by stability, not accuracy. The solve goes on, and stops with "
                f"SolverError after {STIFF_PATIENCE} more such steps; " + self._advice(),
                StiffnessWarning,
                stacklevel=5,
            )


@functools.lru_cache(maxsize=64)
def _weights(tableau: Tableau, dtype: torch.dtype, device: torch.device) -> dict[str, Any]:
    """Tableau rows as tensors on the state's dtype and device (cached)."""

    def tens(v):
        return torch.tensor(v, dtype=dtype, device=device)

    return {
        "a": [tens(row) if row else None for row in tableau.a],
        "b": tens(tableau.b),
        "b_err": tens(tableau.b_err) if tableau.b_err is not None else None,
    }


@functools.lru_cache(maxsize=64)
def stage_matrices(tableau: Tableau, dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
    """The tableau as dense matrices over the dense-output vectors (for batched steps, cached).

    ``a``: ``(stages, nvec)`` (row ``i`` the weights of stage ``i``'s input), ``b``, ``b_err``: ``(nvec,)``,
    ``dense``: ``(nvec, degree)`` polynomial coefficients of ``theta**1 .. theta**degree``, ``c``: nodes.
    """
    nvec = len(tableau.dense)
    a = torch.zeros(tableau.stages, nvec, dtype=dtype)
    for i, row in enumerate(tableau.a):
        a[i, : len(row)] = torch.tensor(row, dtype=dtype) if row else 0.0
    pad = [0.0] * (nvec - tableau.stages)
    degree = max(len(r) for r in tableau.dense)
    dense = torch.tensor([list(r) + [0.0] * (degree - len(r)) for r in tableau.dense], dtype=dtype)
    out = {
        "a": a,
        "b": torch.tensor(list(tableau.b) + pad, dtype=dtype),
        "b_err": torch.tensor(list(tableau.b_err or [0.0] * tableau.stages) + pad, dtype=dtype),
        "dense": dense,
        "c": torch.tensor(tableau.c, dtype=dtype),
    }
    return {k: v.to(device) for k, v in out.items()}


@functools.lru_cache(maxsize=64)
def _nodes(tableau: Tableau, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The nodes ``c`` (float64) and a mask of those equal to 1 (None if none), on ``device``."""
    c = torch.tensor(tableau.c, dtype=torch.float64, device=device)
    return c, (c == 1.0) if 1.0 in tableau.c[1:] else None


class StageStore(Protocol):
    """Where a step keeps its stage derivatives ``k_j`` (flat) and how it combines them.

    Two implementations: :class:`_Buffer` (no graph: one preallocated matrix, one ``addmv`` per
    combination) and :class:`_List` (autograd records: out-of-place adds).
    """

    def set(self, j: int, k: torch.Tensor) -> None:
        """Store ``k`` (the state's shape) as dense vector ``j``."""

    def get(self, j: int) -> torch.Tensor:
        """Dense vector ``j``, flat."""

    def stage_input(self, y0: torch.Tensor, i: int, h: float) -> torch.Tensor:
        """``y0 + h * sum_j a[i][j] k_j``."""

    def solution(self, y0: torch.Tensor, h: float) -> torch.Tensor:
        """``y0 + h * sum_j b_j k_j``."""

    def error(self) -> torch.Tensor:
        """``sum_j b_err_j k_j`` (without ``h``), no graph."""

    def dense(self, y0: torch.Tensor, w: list[float], h: float) -> torch.Tensor:
        """``y0 + h * sum_j w_j k_j`` over every dense vector."""

    def carry(self, j: int) -> None:
        """Make vector ``j`` (``f(t1, y1)``) the next step's first stage."""


class _Buffer:
    """Stage derivatives in a ``(nvec, n)`` buffer: no graph, one op per combination.

    ``addmv`` over this layout adds the terms ``h a_ij k_j`` to ``y0`` one at a time, each rounded to
    ``y0``'s precision; on a fixed grid's many small steps in float32 that rounding drifts (same sign
    every step when ``f`` barely changes: 3e-5 in 150 rk4 steps on a linear solution, where summing
    first keeps Euler's 9e-6). Fixed-grid methods (:class:`_SummedBuffer`) therefore sum the
    increment first and add it once; adaptive methods take few, long steps and keep the one op.
    """

    def __init__(self, tableau: Tableau, y0: torch.Tensor, shape: torch.Size) -> None:
        nvec = len(tableau.dense)
        self.K = torch.empty(nvec, y0.numel(), dtype=y0.dtype, device=y0.device)
        self.rows = [self.K[j].view(shape) for j in range(nvec)]  # shaped views: func output copies in
        self.KT = [self.K[:i].t() for i in range(nvec + 1)]  # transposed leading blocks, for addmv
        w = _weights(tableau, y0.dtype, y0.device)
        self.a, self.b, self.b_err = w["a"], w["b"], w["b_err"]
        self.s = tableau.stages
        self.guard = torch.is_grad_enabled()

    def set(self, j: int, k: torch.Tensor) -> None:
        if self.guard and k.requires_grad:
            raise RuntimeError("func's output began to require grad after its first evaluation")
        self.rows[j].copy_(k)

    def get(self, j: int) -> torch.Tensor:
        return self.K[j]

    def stage_input(self, y0: torch.Tensor, i: int, h: float) -> torch.Tensor:
        if isinstance(h, torch.Tensor):  # a first step not yet read back (h in the state's dtype)
            return torch.addmv(y0, self.KT[i], self.a[i] * h)
        return torch.addmv(y0, self.KT[i], self.a[i], alpha=h)

    def solution(self, y0: torch.Tensor, h: float) -> torch.Tensor:
        if isinstance(h, torch.Tensor):
            return torch.addmv(y0, self.KT[self.s], self.b * h.to(y0.dtype))
        return torch.addmv(y0, self.KT[self.s], self.b, alpha=h)

    def error(self) -> torch.Tensor:
        return torch.mv(self.KT[self.s], self.b_err)

    def dense(self, y0: torch.Tensor, w: list[float], h: float) -> torch.Tensor:
        wt = torch.tensor(w, dtype=y0.dtype, device=y0.device)
        return torch.addmv(y0, self.KT[-1], wt, alpha=h)

    def carry(self, j: int) -> None:
        self.K[0].copy_(self.K[j])


class _SummedBuffer(_Buffer):
    """A :class:`_Buffer` that sums each increment before adding it to ``y0`` (two ops, one rounding
    onto ``y0``): the fixed-grid methods' store."""

    def stage_input(self, y0: torch.Tensor, i: int, h: float) -> torch.Tensor:
        return torch.add(y0, torch.mv(self.KT[i], self.a[i]), alpha=h)

    def solution(self, y0: torch.Tensor, h: float) -> torch.Tensor:
        return torch.add(y0, torch.mv(self.KT[self.s], self.b), alpha=h)

    def dense(self, y0: torch.Tensor, w: list[float], h: float) -> torch.Tensor:
        wt = torch.tensor(w, dtype=y0.dtype, device=y0.device)
        return torch.add(y0, torch.mv(self.KT[-1], wt), alpha=h)


class _List:
    """Stage derivatives in a list, combined with out-of-place adds so autograd can follow them."""

    def __init__(self, tableau: Tableau, y0: torch.Tensor, shape: torch.Size) -> None:
        self.ks: list[torch.Tensor | None] = [None] * len(tableau.dense)
        self.tab = tableau
        self.s = tableau.stages

    def set(self, j: int, k: torch.Tensor) -> None:
        self.ks[j] = k.reshape(-1)

    def get(self, j: int) -> torch.Tensor:
        return self.ks[j]

    def _comb(self, y0: torch.Tensor, w, h: float) -> torch.Tensor:
        # The increment is summed first and added to y0 once (as the buffer's addmv does): adding each
        # small term to y0 in turn rounds each time, a bias that grows with the steps in float32.
        inc = None
        for wj, kj in zip(w, self.ks):
            if wj != 0.0:
                if isinstance(h, torch.Tensor):  # a first step not yet read back
                    term = kj * (h * wj).to(kj.dtype)
                    inc = term if inc is None else inc + term
                else:
                    inc = kj * (h * wj) if inc is None else torch.add(inc, kj, alpha=h * wj)
        return y0 if inc is None else y0 + inc

    def stage_input(self, y0: torch.Tensor, i: int, h: float) -> torch.Tensor:
        return self._comb(y0, self.tab.a[i], h)

    def solution(self, y0: torch.Tensor, h: float) -> torch.Tensor:
        return self._comb(y0, self.tab.b, h)

    def error(self) -> torch.Tensor:
        with torch.no_grad():
            return self._comb(torch.zeros_like(self.ks[0]), self.tab.b_err, 1.0)

    def dense(self, y0: torch.Tensor, w: list[float], h: float) -> torch.Tensor:
        return self._comb(y0, w, h)

    def carry(self, j: int) -> None:
        self.ks[0] = self.ks[j]


@dataclass
class _State:
    f: Callable
    cfg: Config
    K: StageStore
    y: torch.Tensor
    t0: float
    stiff: StiffnessTest | None = None


class RungeKutta(Method):
    """An explicit Runge–Kutta method given by its tableau (fixed grid or adaptive, FSAL or not).

    Arguments:
        tableau: the coefficients (see :mod:`~nodebench.solvers.tableaus`).
    """

    def __init__(self, tableau: Tableau) -> None:
        self.tableau = tableau
        self.defers_first_read = tableau.adaptive
        self.name = tableau.name
        self.order = tableau.order
        self.adaptive = tableau.adaptive
        self.option_names = ADAPTIVE_OPTIONS if tableau.adaptive else FIXED_OPTIONS
        self.per_sample = tableau.adaptive
        self.stiff_threshold = (
            STIFF_FRACTION * tableau.stability_boundary() if tableau.name in STIFF_TESTED else 0.0
        )

    def init(self, f, t0, y0, cfg):
        perturb = not self.adaptive and cfg.opts.perturb
        # with perturb the first stage is evaluated just after t0 (never at t0 itself, as torchdiffeq)
        f0 = f(nudge(t0, t0 + cfg.direction, cfg.opts.t_dtype) if perturb else t0, y0)
        # Build a graph only when autograd records this solve (through y0 or through func's parameters).
        grad = torch.is_grad_enabled() and (y0.requires_grad or f0.requires_grad)
        K = (_List if grad else _Buffer if self.adaptive else _SummedBuffer)(self.tableau, y0, cfg.shape)
        K.set(0, f0)
        st = _State(f, cfg, K, y0, t0)
        every = getattr(cfg.opts, "stiffness_check", 0)
        if self.stiff_threshold > 0 and every > 0:
            st.stiff = StiffnessTest(every, self.stiff_threshold, self.name)
        if not self.adaptive:  # adaptive methods check f0 with the initial step's read-back
            if not bool(torch.isfinite(f0).all()):
                raise SolverError(t0, "non-finite derivative", "func(t0, y0) is not finite")
        return st

    def initial_step(self, st, direction, span, read=True):
        cfg, m = st.cfg, st.cfg.prefix
        y, f0 = st.y, st.K.get(0)
        if cfg.opts.first_step is not None:
            finite = torch.isfinite(f0).all()
            if not read:
                return torch.tensor(
                    cfg.opts.first_step, dtype=torch.float64, device=y.device
                ), finite.double()
            if not bool(finite):
                raise SolverError(st.t0, "non-finite derivative", "func(t0, y0) is not finite")
            return cfg.opts.first_step
        return initial_step(
            lambda t_, y_: st.f(t_, y_).reshape(-1),
            st.t0,
            y.detach(),
            f0.detach(),
            self.order - 1,
            cfg.rtol,
            cfg.atol,
            direction,
            cfg.norm,
            m,
            read,
        )

    def step(self, st, t, h, t1):
        tab, K, f, y = self.tableau, st.K, st.f, st.y
        s = tab.stages
        t_dtype = st.cfg.opts.t_dtype
        # As torchdiffeq: stages at an adaptive step's end see f just before t1 (the left side of a jump
        # there); on a fixed grid only with ``perturb``.
        nudged = self.adaptive or st.cfg.opts.perturb
        if isinstance(h, torch.Tensor):  # a first step not yet read back: times and h on the device
            times, h_state = self._times(t, h, t1, t_dtype, y), h.to(y.dtype)
            yi = y
            for i in range(1, s):
                yi = K.stage_input(y, i, h_state)
                K.set(i, f(times[i], yi))
        else:
            t_end_stage = nudge(t1, t, t_dtype) if nudged else None
            yi = y_probe = y
            for i in range(1, s):
                y_probe = yi
                yi = K.stage_input(y, i, h)
                K.set(i, f(t_end_stage if nudged and tab.c[i] == 1.0 else t + tab.c[i] * h, yi))
        # FSAL tableaus evaluate their last stage at y1 itself; otherwise form y1 from b.
        y1 = yi if tab.fsal else K.solution(y, h)
        err = K.error() if self.adaptive else None
        probe = None
        if st.stiff is not None and not isinstance(h, torch.Tensor) and st.stiff.wanted():
            with torch.no_grad():  # h |lambda| from the last two stages, both at t1 (see StiffnessTest)
                num = torch.linalg.vector_norm(K.get(s - 1) - K.get(s - 2))
                den = torch.linalg.vector_norm(y1 - y_probe)
                probe = torch.where(den > 0, num * abs(h) / den, torch.full_like(den, math.nan))
        return Step(t, t1, h, y, y1, error=err, data=[None], probe=probe)

    def _times(self, t, h, t1, t_dtype, y) -> torch.Tensor:
        """Every stage's time (in ``t_dtype``) of an adaptive step whose ``t``, ``h`` are 0-d tensors."""
        c, ends = _nodes(self.tableau, y.device)
        times = torch.addcmul(t, c, h)
        if ends is not None:
            times = torch.where(ends, nudge(t1, t, t_dtype), times)
        return times.to(t_dtype)

    def _end(self, st, step) -> torch.Tensor | None:
        """``f(t1, y1)`` of a method without FSAL, evaluated once per step when first needed."""
        if step.data[0] is None:
            step.data[0] = st.f(step.t1, step.y1)
            st.K.set(self.tableau.stages, step.data[0])
        return step.data[0]

    def dense(self, st, step, t):
        if not self.tableau.fsal:
            self._end(st, step)
        return st.K.dense(step.y0, self.tableau.dense_weights((t - step.t0) / step.h), step.h)

    def advance(self, st, step):
        K, s = st.K, self.tableau.stages
        st.y = step.y1
        perturb = not self.adaptive and st.cfg.opts.perturb
        if perturb:  # evaluated just after the grid point, never reused
            K.set(0, st.f(nudge(step.t1, step.t1 + st.cfg.direction, st.cfg.opts.t_dtype), step.y1))
        elif self.tableau.fsal:
            K.carry(s - 1)
        elif step.data[0] is not None:
            K.carry(s)
        else:
            K.set(0, st.f(step.t1, step.y1))

    def jump(self, st, t, y, fy, after, span=math.inf):
        st.y = y
        st.K.set(0, fy if fy is not None else st.f(after, y))
        return None

    def on_accept(self, st, step):
        if st.stiff is not None:
            st.stiff.accept(step.probe_value, step.t0, step.h)

    def derivative_at_end(self, st, step):
        return st.K.get(self.tableau.stages - 1) if self.tableau.fsal else None


RK_METHODS: dict[str, RungeKutta] = {name: RungeKutta(tab) for name, tab in ALL_SOLVERS.items()}
