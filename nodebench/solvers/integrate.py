"""The integrate loop: one Runge–Kutta core for every tableau, fixed grid or adaptive.

Times are Python floats (float64) inside the loop; ``func`` receives them as 0-d tensors of the time
dtype. The state is flattened once; stage derivatives live in a preallocated buffer when no graph is
being built (one ``addmv`` per stage), and in a list combined with out-of-place adds when autograd is
recording (direct backpropagation through the solver).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from nodebench.solvers.adams import Multistep, solve_adams
from nodebench.solvers.controller import BlockNorm, Controller, initial_step
from nodebench.solvers.errors import SolverError
from nodebench.solvers.fixed_adams import FixedAdams, solve_fixed_adams
from nodebench.solvers.scipy_solver import ScipyMethod, solve_scipy
from nodebench.solvers.tableaus import Tableau
from nodebench.solvers.validate import Options, check_func_output

_EPS = 2.220446049250313e-16


@dataclass
class Counts:
    nfe: int = 0
    accepted: int = 0
    rejected: int = 0


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
    """Stage derivatives in a ``(nvec, n)`` buffer: no graph, one op per combination."""

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
        return torch.addmv(y0, self.KT[i], self.a[i], alpha=h)

    def solution(self, y0: torch.Tensor, h: float) -> torch.Tensor:
        return torch.addmv(y0, self.KT[self.s], self.b, alpha=h)

    def error(self) -> torch.Tensor:
        return torch.mv(self.KT[self.s], self.b_err)

    def dense(self, y0: torch.Tensor, w: list[float], h: float) -> torch.Tensor:
        wt = torch.tensor(w, dtype=y0.dtype, device=y0.device)
        return torch.addmv(y0, self.KT[-1], wt, alpha=h)

    def carry(self, j: int) -> None:
        self.K[0].copy_(self.K[j])


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
        out = y0
        for wj, kj in zip(w, self.ks):
            if wj != 0.0:
                out = torch.add(out, kj, alpha=h * wj)
        return out

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


def make_rhs(
    func: Callable, shape: torch.Size, t_dtype: torch.dtype, device: torch.device, counts: Counts, check: bool
) -> Callable[[float, torch.Tensor], torch.Tensor]:
    """Wrap ``func(t, y)`` as ``f(t_float, y_flat) -> dy/dt`` (in ``y``'s shape) that counts evaluations."""
    first = [check]
    scalar = torch.scalar_tensor

    def f(t: float, y: torch.Tensor) -> torch.Tensor:
        counts.nfe += 1
        yv = y.view(shape)
        out = func(scalar(t, dtype=t_dtype, device=device), yv)
        if first[0]:
            check_func_output(out, yv)
            first[0] = False
        return out

    return f


#: ``jump(j, y, fy) -> (y_new, f_new)`` at the ``j``-th output time: the state to continue from and, if
#: the caller can give it without evaluating ``f``, the derivative there (else ``None``: the solver
#: evaluates it). ``fy`` is ``f`` at ``(t_j, y)`` when the method already has it (an FSAL stage, the
#: Adams corrector's evaluation), else ``None``.
Jump = Callable[[int, torch.Tensor, "torch.Tensor | None"], "tuple[torch.Tensor, torch.Tensor | None]"]


def _finite(x: torch.Tensor) -> bool:
    return bool(torch.isfinite(x).all())


def solve(
    f: Callable[[float, torch.Tensor], torch.Tensor],
    y0: torch.Tensor,
    shape: torch.Size,
    ts: list[float],
    tableau: Tableau,
    rtol: float | torch.Tensor,
    atol: float | torch.Tensor,
    opts: Options,
    counts: Counts,
    norm: BlockNorm | None = None,
    event: Event | None = None,
    jump: Jump | None = None,
) -> list[torch.Tensor]:
    """Integrate the flat state ``y0`` through the times ``ts``.

    Arguments:
        f: right-hand side on flat states (see :func:`make_rhs`).
        y0: flat initial state at ``ts[0]``.
        shape: the user's state shape.
        ts: strictly monotone output times (Python floats).
        tableau, rtol, atol, opts: the method, tolerances (floats, or flat tensors: one per entry the
            error norm looks at) and validated options.
        counts: NFE and step counters, updated in place.
        norm: the error norm (default: RMS over the whole state).
        event: stop at this event function's zero instead (``ts`` is then ``[t0, ±inf]``); the result
            is ``[y0, y(event.t)]``.
        jump: adaptive methods only: land on every output time ``ts[j]`` (``0 < j < len(ts) - 1``) and
            continue from the state ``jump`` returns there instead of ``y`` (the adjoint's jump; see
            :data:`Jump` and :func:`_solve_adaptive`).
    Returns:
        the flat state at every time in ``ts`` (the first is ``y0`` itself; with ``jump``, before it).
    """
    if isinstance(tableau, Multistep):
        return solve_adams(f, y0, ts, rtol, atol, opts, counts, norm, jump)
    if len(ts) == 1:
        return [y0]
    if isinstance(tableau, ScipyMethod):
        return solve_scipy(f, y0, ts, rtol, atol, opts)
    if isinstance(tableau, FixedAdams):
        grid = _fixed_grid(ts, opts.step_size, opts.max_num_steps, opts.t_eps)
        return solve_fixed_adams(
            f, y0, ts, tableau, rtol, atol, opts, counts, grid, lambda t, to: nudge(t, to, opts.t_dtype)
        )
    f0 = f(ts[0], y0)
    if not _finite(f0):
        raise SolverError(ts[0], "non-finite derivative", "func(t0, y0) is not finite")
    # Build a graph only when autograd records this solve (through y0 or through func's parameters).
    grad = torch.is_grad_enabled() and (y0.requires_grad or f0.requires_grad)
    stages: StageStore = (_List if grad else _Buffer)(tableau, y0, shape)
    stages.set(0, f0)
    if tableau.adaptive:
        return _solve_adaptive(f, y0, ts, tableau, rtol, atol, opts, counts, norm, stages, event, jump)
    return _solve_fixed(f, y0, ts, tableau, opts, counts, stages, event)


class Event:
    """Stop a solve where ``fn(t, y)`` (a scalar on the flat state) changes sign.

    After each accepted step the solver calls :meth:`check`; on a sign change the event time is found
    by bisection on the step's dense output down to the time dtype's resolution.

    Arguments:
        fn: ``fn(t, y_flat) -> float``.
        sign0: the sign of ``fn`` at the start (non-zero).
        t_eps: machine epsilon of the time dtype.
    """

    def __init__(self, fn: Callable[[float, torch.Tensor], float], sign0: float, t_eps: float) -> None:
        self.fn, self.sign0, self.t_eps = fn, sign0, t_eps
        self.t: float | None = None
        self.evaluations = 0

    def _sign(self, t: float, y: torch.Tensor) -> float:
        self.evaluations += 1
        return math.copysign(1.0, v) if (v := self.fn(t, y)) != 0 else 0.0

    def check(
        self, t0: float, t1: float, y1: torch.Tensor, at: Callable[[float], torch.Tensor]
    ) -> torch.Tensor | None:
        """The state at the event if ``fn`` changed sign on ``(t0, t1]``, else None."""
        if self._sign(t1, y1) == self.sign0:
            return None
        lo, hi = t0, t1
        while abs(hi - lo) > 2 * self.t_eps * max(1.0, abs(lo), abs(hi)):
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            if self._sign(mid, at(mid)) == self.sign0:
                lo = mid
            else:
                hi = mid
        self.t = 0.5 * (lo + hi)
        return y1 if self.t == t1 else at(self.t)


def _fixed_grid(ts: list[float], step_size: float | None, max_num_steps: int, t_eps: float) -> list[float]:
    """torchdiffeq's grid: ``t0 + k h`` and the final time (or the output times if no step size).

    A span within a few rounding errors of the time dtype (``t_eps``) of a whole number of steps gets
    that number, so float32 times do not leave a sliver step at the end.
    """
    if step_size is None:
        return ts
    t0, t1 = ts[0], ts[-1]
    d = 1.0 if t1 > t0 else -1.0
    q = abs(t1 - t0) / step_size
    n = max(1, math.ceil(q - 8 * t_eps * max(1.0, q)))
    if n > max_num_steps:
        raise SolverError(
            t0, "max_num_steps exceeded", f"the fixed grid needs {n} steps > max_num_steps={max_num_steps}"
        )
    return [t0 + d * k * step_size for k in range(n)] + [t1]


def nudge(t: float, toward: float, t_dtype: torch.dtype) -> float:
    """The time next to ``t`` toward ``toward`` in the time dtype (torchdiffeq's ``perturb``)."""
    if t_dtype == torch.float64:
        return math.nextafter(t, toward)
    if t_dtype == torch.float32:
        return float(np.nextafter(np.float32(t), np.float32(toward)))
    tt = torch.tensor(t, dtype=t_dtype)
    return float(torch.nextafter(tt, torch.tensor(toward, dtype=t_dtype)))


def _event_grid(t0: float, d: float, h: float, max_num_steps: int):
    """An open-ended fixed grid for an event search: ``t0 + k h``, at most ``max_num_steps`` steps."""
    for k in range(max_num_steps + 1):
        yield t0 + d * k * h
    raise SolverError(
        t0 + d * max_num_steps * h, "max_num_steps exceeded", "no event within max_num_steps steps"
    )


def _pairs(grid):
    it = iter(grid)
    a = next(it)
    for b in it:
        yield a, b
        a = b


def _solve_fixed(
    f, y0, ts, tab: Tableau, opts: Options, counts: Counts, K: StageStore, event: Event | None = None
) -> list[torch.Tensor]:
    if event is not None:
        grid = _event_grid(ts[0], 1.0 if ts[-1] > ts[0] else -1.0, opts.step_size, opts.max_num_steps)
    else:
        grid = _fixed_grid(ts, opts.step_size, opts.max_num_steps, opts.t_eps)
    s = tab.stages
    out = [y0]
    j = 1
    d = 1.0 if ts[-1] > ts[0] else -1.0
    y = y0
    first = True  # slot 0 already holds f(t0, y0)
    k1 = None  # f(t1, y1) when an off-grid output needed it: the next step's first stage
    perturb = opts.perturb
    for t0, t1 in _pairs(grid):
        h = t1 - t0
        if not first or perturb:
            # With perturb, the first stage is evaluated just after t0 (never reused from the last step).
            t0p = nudge(t0, t1, opts.t_dtype) if perturb else t0
            K.set(0, k1 if (k1 is not None and not perturb) else f(t0p, y))
        first = False
        k1 = None
        for i in range(1, s):
            ti = t0 + tab.c[i] * h
            if perturb and tab.c[i] == 1.0:  # a stage at the step's end is evaluated just before t1
                ti = nudge(t1, t0, opts.t_dtype)
            K.set(i, f(ti, K.stage_input(y, i, h)))
        y1 = K.solution(y, h)
        counts.accepted += 1
        if event is not None:
            end = [None]  # f(t1, y1), for the Hermite interpolant, once

            def at(tt: float, t0=t0, t1=t1, h=h, y=y, y1=y1, end=end) -> torch.Tensor:
                if end[0] is None:
                    end[0] = f(t1, y1)
                    K.set(s, end[0])
                return K.dense(y, tab.dense_weights((tt - t0) / h), h)

            hit = event.check(t0, t1, y1, at)
            if hit is not None:
                return [y0, hit]
            k1 = end[0]
        while j < len(ts) and (ts[j] - t1) * d <= 0:
            if ts[j] == t1:
                yj = y1
            else:
                if k1 is None:  # Hermite needs f(t1, y1); it is also the next step's first stage.
                    k1 = f(t1, y1)
                    K.set(s, k1)
                yj = K.dense(y, tab.dense_weights((ts[j] - t0) / h), h)
            if not _finite(yj):
                raise SolverError(
                    t0, "non-finite state", f"the state is not finite at output time t={ts[j]:.10g}"
                )
            out.append(yj)
            j += 1
        y = y1
    return out


def _stops(opts: Options, t0: float, d: float) -> tuple[list[float], set[float]]:
    """``step_t`` and ``jump_t`` past ``t0`` in the direction of integration, in order; and the jumps."""
    times = sorted({x for x in (*opts.step_t, *opts.jump_t) if (x - t0) * d > 0}, key=lambda x: x * d)
    return times, {x for x in opts.jump_t}


def _solve_adaptive(
    f,
    y0,
    ts,
    tab: Tableau,
    rtol,
    atol,
    opts: Options,
    counts: Counts,
    norm,
    K: StageStore,
    event=None,
    jump=None,
) -> list[torch.Tensor]:
    """The adaptive loop: dense output at the output times, or, with ``jump``, a landing on each.

    With ``jump`` a step that would pass the next output time is clipped to end on it; once accepted the
    state is replaced by the one ``jump`` returns, with the derivative there if ``jump`` can give it
    from the FSAL stage it is passed, else ``f`` is evaluated (the jump invalidates FSAL); the
    integration goes on with the step the controller had proposed before the clip — no new initial
    step, no restart.
    """
    t_end = ts[-1]
    d = 1.0 if t_end > ts[0] else -1.0
    s = tab.stages
    m = None if norm is None else norm.prefix
    sqrt_n = math.sqrt(y0.numel() if m is None else m)
    ctrl = Controller(tab.order, opts.safety, opts.ifactor, opts.dfactor, opts.controller)
    max_steps = opts.max_num_steps
    stops, jumps = _stops(opts, ts[0], d)
    next_stop = 0
    t_dtype = opts.t_dtype

    t = ts[0]
    y = y0
    f0 = K.get(0)
    if ts[0] in jumps:  # a discontinuity at the start: the derivative from the side we go to
        K.set(0, f(nudge(t, t + d, opts.t_dtype), y))
        f0 = K.get(0)
    if opts.first_step is not None:
        h_abs = opts.first_step
    else:
        h_abs = initial_step(
            lambda t_, y_: f(t_, y_).reshape(-1),
            t,
            y.detach(),
            f0.detach(),
            tab.order - 1,
            rtol,
            atol,
            d,
            *(() if norm is None else (norm, m)),
        )
    yd = y.detach() if m is None else y.detach()[:m]
    abs_y = yd.abs()

    out = [y0]
    j = 1
    attempts = 0
    while True:
        if attempts >= max_steps:
            raise SolverError(
                t, "max_num_steps exceeded", f"{attempts} steps attempted, max_num_steps={max_steps}"
            )
        attempts += 1
        h_abs = min(max(h_abs, opts.min_step), opts.max_step)
        h = d * h_abs
        t1 = t + h
        if abs(h) <= 4 * _EPS * abs(t) or t1 == t:
            raise SolverError(
                t, "step size underflow", f"step {h:.3g} is too small to advance from t={t:.10g}"
            )
        while next_stop < len(stops) and (stops[next_stop] - t) * d <= 0:
            next_stop += 1
        if next_stop < len(stops) and (t1 - stops[next_stop]) * d >= 0:
            t1 = stops[next_stop]  # land on step_t / jump_t exactly
            h = t1 - t
        clipped = jump is not None and (t1 - ts[j]) * d >= 0
        if clipped:  # land on the output time, where the state jumps
            t1 = ts[j]
            h = t1 - t
        # As torchdiffeq: stages at the step's end see f just before t1 (the left side of a jump there).
        t_end_stage = nudge(t1, t, t_dtype)
        for i in range(1, s):
            yi = K.stage_input(y, i, h)
            K.set(i, f(t_end_stage if tab.c[i] == 1.0 else t + tab.c[i] * h, yi))
        # FSAL tableaus evaluate their last stage at y1 itself; otherwise form y1 from b.
        y1 = yi if tab.fsal else K.solution(y, h)
        with torch.no_grad():
            err = K.error()
            y1d = y1.detach() if m is None else y1.detach()[:m]
            abs_y1 = y1d.abs()
            tol = torch.maximum(abs_y, abs_y1).mul_(rtol).add_(atol)
            if m is None:
                ratio = torch.linalg.vector_norm(err.div_(tol)).item() * abs(h) / sqrt_n
            else:
                ratio = norm(err[:m].div_(tol)) * abs(h)
        h_next = ctrl.next_step(abs(h), ratio)
        if ratio <= 1.0 and clipped:
            counts.accepted += 1
            out.append(y1)
            j += 1
            if j == len(ts):
                return out
            t, (y, f_new) = t1, jump(j - 1, y1, K.get(s - 1) if tab.fsal else None)
            abs_y = (y.detach() if m is None else y.detach()[:m]).abs()
            if f_new is None or t in jumps:
                f_new = f(nudge(t, t + d, t_dtype) if t in jumps else t, y)
            K.set(0, f_new)
            h_abs = max(h_abs, h_next)  # the proposal before the clip (or a larger one after it)
            continue
        if ratio <= 1.0:
            counts.accepted += 1
            end = [None]  # f(t1, y1) of a method without FSAL, once computed

            def at(tt: float, t=t, t1=t1, h=h, y=y, y1=y1, end=end) -> torch.Tensor:
                if not tab.fsal and end[0] is None:
                    end[0] = f(t1, y1)
                    K.set(s, end[0])
                return K.dense(y, tab.dense_weights((tt - t) / h), h)

            if event is not None:
                hit = event.check(t, t1, y1, at)
                if hit is not None:
                    return [y0, hit]
            while j < len(ts) and (ts[j] - t1) * d <= 0:
                out.append(y1 if ts[j] == t1 else at(ts[j]))
                j += 1
            if j == len(ts):
                return out
            t, y, abs_y = t1, y1, abs_y1
            if t in jumps:  # past a discontinuity: evaluate just after it, carry nothing over
                K.set(0, f(nudge(t, t + d, opts.t_dtype), y))
            elif tab.fsal:
                K.carry(s - 1)
            elif end[0] is not None:
                K.carry(s)
            else:
                K.set(0, f(t, y))
        else:
            counts.rejected += 1
        h_abs = h_next
