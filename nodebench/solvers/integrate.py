"""The loop: steps any :class:`~nodebench.solvers.method.Method` from the first output time to the last.

Two loops, one per kind of method: :func:`_adaptive` (the controller accepts or rejects each step and
sizes the next) and :func:`_fixed` (a grid). Both own what is the same for every method: where steps
must end (``step_t``, ``jump_t``, the adjoint's landings on output times, the final time for methods
that land on it), outputs by the method's dense output, events, ``max_num_steps``, step-size
underflow and the counts. Times are Python floats (float64) inside the loop; ``func`` receives them
as 0-d tensors of the time dtype. The state is flat. Per-sample step control has its own vectorised
loop (:mod:`~nodebench.solvers.per_sample`).

Host synchronisations: one per attempted step (the error ratio the controller reads, with the stiffness
test's estimate where dopri5 or tsit5 make one; adams reads its norms, sometimes twice; the implicit
methods read once per Newton iteration, their error norms folded into those reads), plus, on a CPU,
one for the output times and one for the initial step size.
On an accelerator (see :data:`FOLD_FIRST_READ`) the adaptive Runge–Kutta methods take their first step
with ``t0`` and ``h`` still on the device, so the output times, the initial step size and ``f0``'s
finiteness ride on the first step's read (:class:`Times`): exactly one read per attempted step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from nodebench.solvers.boundary import UserNorm
from nodebench.solvers.controller import Controller, ErrorRatio, Landings, nudge, record
from nodebench.solvers.errors import SolverError
from nodebench.solvers.method import Config, Counts, Method
from nodebench.solvers.validate import check_func_output

if TYPE_CHECKING:
    from nodebench.solvers.event import Event

_EPS = 2.220446049250313e-16

#: Fold the reads of the output times and the initial step into the first step's read (None: where the
#: times are on an accelerator). A read on the CPU waits for nothing, while the fold costs some 40 small
#: tensor operations (about 0.3 ms, 10 % of the spiral demo's solve on one CPU thread); on a GPU each read
#: drains the device's queue. ``benchmarks.metrics.syncs_per_step`` sets it to count the accelerator path.
FOLD_FIRST_READ: bool | None = None


def fold_first_read(t: torch.Tensor) -> bool:
    """Whether a solve with output times ``t`` folds its first reads (see :data:`FOLD_FIRST_READ`)."""
    return t.device.type != "cpu" if FOLD_FIRST_READ is None else FOLD_FIRST_READ


__all__ = ["Counts", "Jump", "Times", "make_rhs", "solve"]


def make_rhs(
    func: Callable, shape: torch.Size, t_dtype: torch.dtype, device: torch.device, counts: Counts, check: bool
) -> Callable[[float | torch.Tensor, torch.Tensor], torch.Tensor]:
    """Wrap ``func(t, y)`` as ``f(t, y_flat) -> dy/dt`` (in ``y``'s shape) that counts evaluations.

    ``t`` is a Python float or a 0-d tensor (the device-side initial step).
    """
    first = [check]
    scalar = torch.scalar_tensor

    def f(t: float | torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        counts.nfe += 1
        yv = y.view(shape)
        tt = t.to(t_dtype) if isinstance(t, torch.Tensor) else scalar(t, dtype=t_dtype, device=device)
        out = func(tt, yv)
        if first[0]:
            check_func_output(out, yv)
            first[0] = False
        return out if out.dtype == yv.dtype else out.to(yv.dtype)  # torchdiffeq computes on

    return f


#: ``jump(j, y, fy) -> (y_new, f_new)`` at the ``j``-th output time: the state to continue from and, if
#: the caller can give it without evaluating ``f``, the derivative there (else ``None``: the method
#: evaluates it). ``fy`` is ``f`` at ``(t_j, y)`` when the method already has it (an FSAL stage, the
#: Adams corrector's evaluation), else ``None``.
Jump = Callable[[int, torch.Tensor, "torch.Tensor | None"], "tuple[torch.Tensor, torch.Tensor | None]"]


def solve(
    f: Callable[[float, torch.Tensor], torch.Tensor],
    y0: torch.Tensor,
    ts: list[float] | Times,
    method: Method,
    cfg: Config,
    event: Event | None = None,
    jump: Jump | None = None,
) -> list[torch.Tensor]:
    """Integrate the flat state ``y0`` through the times ``ts``.

    Arguments:
        f: right-hand side on flat states (see :func:`make_rhs`).
        y0: flat initial state at ``ts[0]``.
        ts: strictly monotone output times (Python floats), or :class:`Times` whose values are not
            read yet (read, and checked, with the first step's read-back when the method allows).
        method: the method (see :mod:`~nodebench.solvers.registry`).
        cfg: tolerances, validated options, counters, norm, shape and direction (one object).
        event: stop at this event function's zero instead (``ts`` is then ``[t0, ±inf]``); the result
            is ``[y0, y(event.t)]``.
        jump: adaptive methods only: land on every output time ``ts[j]`` (``0 < j < len(ts) - 1``) and
            continue from the state ``jump`` returns there (the adjoint's jump; see :data:`Jump`).
    Returns:
        the flat state at every time in ``ts`` (the first is ``y0`` itself; with ``jump``, before it).
    """
    if isinstance(ts, Times):
        opts = cfg.opts
        plain = (
            event is None and jump is None and not opts.step_t and not opts.jump_t and cfg.callbacks is None
        )
        if method.defers_first_read and plain and len(ts) > 1 and not isinstance(cfg.norm, UserNorm):
            return _adaptive(f, y0, ts, method, cfg, event, jump)
        ts = ts.read(cfg)
    if len(ts) == 1:
        return [y0]
    if method.adaptive:
        return _adaptive(f, y0, ts, method, cfg, event, jump)
    return _fixed(f, y0, ts, method, cfg, event)


class Times:
    """Output times still on the device: read back (and checked) once, by the first read the solve
    makes anyway, instead of one read of their own (see :attr:`Method.defers_first_read`).

    Arguments:
        t: the caller's 1-D tensor of times (its shape, dtype and device already checked).
        check: ``check(values) -> values``: the checks of the values (finite, strictly monotone).
    """

    def __init__(self, t: torch.Tensor, check: Callable[[list[float]], list[float]]) -> None:
        self.t, self.check = t, check
        self.values: list[float] | None = None

    def __len__(self) -> int:
        return len(self.t)

    def read(self, cfg: Config | None = None, values: list[float] | None = None) -> list[float]:
        """The checked values (read back now unless given); sets ``cfg``'s direction and end."""
        if self.values is None:
            self.values = self.check(self.t.detach().double().tolist() if values is None else values)
        ts = self.values
        if cfg is not None and len(ts) > 1:
            cfg.direction, cfg.t_end = (1.0 if ts[-1] > ts[0] else -1.0), ts[-1]
        return ts


def _adaptive(f, y0, ts, m: Method, cfg: Config, event, jump) -> list[torch.Tensor]:
    """The adaptive loop: dense output at the output times, or, with ``jump``, a landing on each.

    With ``jump`` a step that would pass the next output time is clipped to end on it; once accepted
    the state is replaced by the one ``jump`` returns, with the derivative there if ``jump`` can give
    it from the method's last evaluation, else the method evaluates it (the jump invalidates FSAL);
    the integration goes on with the step the controller had proposed before the clip — no new initial
    step, no restart (a method that restarts its own step selection after a jump, adams, says so).
    """
    opts, counts, cb = cfg.opts, cfg.counts, cfg.callbacks
    t_dtype = opts.t_dtype
    ctrl = Controller(m.order, opts.safety, opts.ifactor, opts.dfactor, opts.controller)
    pending = None
    if isinstance(ts, Times):  # the first step before any read-back (see Times)
        ts, state, h_abs, pending, error_ratio = _first_step_unread(f, y0, ts, m, cfg)
    else:
        error_ratio = ErrorRatio(cfg.rtol, cfg.atol, cfg.norm, y0)
    d = cfg.direction
    t = ts[0]
    landing = [*opts.step_t, *opts.jump_t]
    if jump is not None:
        landing += ts[1:]
    if m.lands_on_end and math.isfinite(ts[-1]):
        landing.append(ts[-1])
    if m.lands_on_outputs:  # radau: its interpolant is only of stage order between long stiff steps
        landing += [s for s in ts[1:-1] if math.isfinite(s)]
    lands = Landings(landing, opts.jump_t, t, d)
    jumps = lands.jumps

    def span(at: float) -> float:
        nxt = lands.next(at)
        return abs((nxt if nxt is not None else ts[-1]) - at)

    if pending is None:
        state = m.init(f, t, y0, cfg)
        if t in jumps:  # a discontinuity at the start: the derivative from the side we go to
            m.jump(state, t, y0, None, nudge(t, t + d, t_dtype), span(t))
        h_abs = m.initial_step(state, d, span(t))
    y = y0
    out = [y0]
    j = 1
    attempts = 0 if pending is None else 1
    max_steps = opts.max_num_steps
    while True:
        if pending is not None:
            step, ratio, clipped = pending
            pending = None
            h_next = ctrl.next_step(abs(step.h), ratio, step.proposal)
            accepted = ctrl.accept(ratio)
            t1, h = step.t1, step.h
        else:
            nxt = lands.next(t) if lands.times else None
            if nxt is not None and abs(nxt - t) <= 4 * _EPS * abs(t):
                # A sliver left before a landing time: the state at t is the state there.
                fy = m.snap(state, nxt)
                t = nxt
                while j < len(ts) and (ts[j] - t) * d <= 0:
                    out.append(y)
                    j += 1
                if j == len(ts):
                    return out
                h_abs, y = _landed(m, state, t, y, fy, jump, j, ts, jumps, d, t_dtype, span, h_abs, None)
                error_ratio.reset(y)
                continue
            if attempts >= max_steps:
                raise SolverError(
                    t, "max_num_steps exceeded", f"{attempts} steps attempted, max_num_steps={max_steps}"
                )
            attempts += 1
            h_abs = min(max(h_abs, opts.min_step), opts.max_step)
            h = d * h_abs
            if cb is not None:
                cb.on_step(t, y, h)
            if not m.self_stepping and (abs(h) <= 4 * _EPS * abs(t) or t + h == t):
                raise SolverError(
                    t, "step size underflow", f"step {h:.3g} is too small to advance from t={t:.10g}"
                )
            if lands.times and not m.self_stepping:
                t1, h, clipped = lands.clip(t, h)
            else:
                t1, clipped = t + h, False
            step = m.step(state, t, h, t1)
            t1, h = step.t1, step.h
            if step.accepted is not None:  # the method judged itself
                accepted, ratio = step.accepted, math.nan
            else:
                ratio = error_ratio(step.error, step.y1, h, step.probe)
                if step.probe is not None:
                    step.probe_value = error_ratio.probe_value
                accepted = ctrl.accept(ratio)
                if not accepted and abs(h) <= opts.min_step:  # taken whatever its error (torchdiffeq)
                    if not math.isfinite(ratio):
                        why = f"a step of min_step={opts.min_step:g} gives a non-finite state"
                        raise SolverError(t, "non-finite state", why)
                    accepted = True
            h_next = ctrl.next_step(abs(h), ratio, step.proposal)
        if not accepted:
            counts.rejected += 1
            if cb is not None:
                cb.on_reject(t, y, h)
            m.reject(state, step)
            h_abs = h_next
            continue
        counts.accepted += 1
        if cb is not None:
            cb.on_accept(t, y, h)
        m.on_accept(state, step)
        if step.error is not None:
            error_ratio.accept()
        if event is not None:
            hit = event.check(t, t1, step.y1, lambda s, step=step: m.dense(state, step, s))
            if hit is not None:
                return [y0, hit]
        k = j
        while k < len(ts) and (ts[k] - t1) * d <= 0:
            k += 1
        if k < len(ts) and ts[k] != t1:
            record("time", abs(ts[k] - t1) / abs(h))
        if k > j:
            out.extend(m.outputs(state, step, ts[j:k]))
            j = k
        if j == len(ts):
            return out
        t, y = t1, step.y1
        if (jump is not None and clipped and t1 == ts[j - 1]) or t1 in jumps:
            fy = m.derivative_at_end(state, step)
            h_abs, y_new = _landed(m, state, t, y, fy, jump, j, ts, jumps, d, t_dtype, span, h_abs, h_next)
            if y_new is not y:
                error_ratio.reset(y_new)
            y = y_new
        else:
            m.advance(state, step)
            h_abs = h_next


def _first_step_unread(f, y0, times: Times, m: Method, cfg: Config):
    """Start and first step with ``t0``, the direction and ``h`` still on the device; one read-back
    then gives the output times (checked here), the step size, the error ratio and ``f0``'s finiteness.

    Returns ``(ts, state, h_abs, (step, ratio, clipped), error_ratio)``.
    """
    opts = cfg.opts
    t = times.t.detach()
    t0 = t[0].double()
    d = torch.sign(t[-1] - t[0]).double()
    state = m.init(f, t0, y0, cfg)
    with torch.no_grad():  # the step size is a constant of the solve, never differentiated
        h_abs, finite = m.initial_step(state, d, math.inf, read=False)
        h_abs = torch.clamp(h_abs, min=opts.min_step, max=opts.max_step)
    h = d * h_abs
    step = m.step(state, t0, h, t0 + h)
    error_ratio = ErrorRatio(cfg.rtol, cfg.atol, cfg.norm, y0)
    ratio = error_ratio.tensor(step.error, step.y1, h)
    ratio, h_abs, finite, *values = torch.cat([torch.stack([ratio, h_abs, finite]), t.double()]).tolist()
    ts = times.read(cfg, values)  # raises on bad times before anything else is looked at
    if not finite:
        raise SolverError(ts[0], "non-finite derivative", "func(t0, y0) is not finite")
    hf = cfg.direction * h_abs
    step.t0, step.t1, step.h = ts[0], ts[0] + hf, hf
    if isinstance(getattr(state, "t0", None), torch.Tensor):
        state.t0 = ts[0]
    return ts, state, h_abs, (step, ratio, False), error_ratio


def _landed(m, state, t, y, fy, jump, j, ts, jumps, d, t_dtype, span, h_abs, h_next):
    """At a landing time ``t`` just reached: the adjoint's jump (if ``t`` is an output time) and/or a
    ``jump_t`` discontinuity. Returns the step size to go on with and the state to go on from."""
    at_jump_t = t in jumps
    after = nudge(t, t + d, t_dtype) if at_jump_t else t
    if jump is not None and t == ts[j - 1]:
        y, f_new = jump(j - 1, y, fy)
        h_new = m.jump(state, t, y, None if at_jump_t else f_new, after, span(t))
        if h_new is not None:
            return h_new, y
        # the proposal before the clip (or a larger one after it)
        return (h_abs if h_next is None else max(h_abs, h_next)), y
    if at_jump_t:
        h_new = m.jump(state, t, y, None, after, span(t))
        if h_new is not None:
            return h_new, y
    return (h_abs if h_next is None else h_next), y


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


def _fixed(f, y0, ts, m: Method, cfg: Config, event: Event | None = None) -> list[torch.Tensor]:
    """The fixed-grid loop: one step per grid interval, outputs off the grid by the method's dense
    output, events on the open-ended grid ``t0 + k h``."""
    opts, counts, d = cfg.opts, cfg.counts, cfg.direction
    if event is not None:
        grid = _event_grid(ts[0], d, opts.step_size, opts.max_num_steps)
    elif opts.grid_constructor is not None:  # the caller's grid (see validate.bind_grid)
        grid = opts.grid_constructor(ts, y0)
        if len(grid) - 1 > opts.max_num_steps:
            why = f"the grid has {len(grid) - 1} steps > max_num_steps={opts.max_num_steps}"
            raise SolverError(ts[0], "max_num_steps exceeded", why)
    else:
        grid = _fixed_grid(ts, opts.step_size, opts.max_num_steps, opts.t_eps)
    if opts.interp == "linear":  # torchdiffeq's default: a straight line between grid points

        def dense(state, step, s):
            return step.y0 + ((s - step.t0) / step.h) * (step.y1 - step.y0)

        def outputs(state, step, times):
            return [
                step.y1 if s == step.t1 else step.y0 if s == step.t0 else dense(state, step, s) for s in times
            ]
    else:
        dense, outputs = m.dense, m.outputs
    state = m.init(f, ts[0], y0, cfg)
    out = [y0]
    j = 1
    step = None
    cb = cfg.callbacks
    for t0, t1 in _pairs(grid):
        if step is not None:
            m.advance(state, step)  # only when another step follows: no evaluation past the end
        if cb is not None:
            cb.on_step(t0, step.y1 if step is not None else y0, t1 - t0)
        step = m.step(state, t0, t1 - t0, t1)
        counts.accepted += 1
        if event is not None:
            hit = event.check(t0, t1, step.y1, lambda s, step=step: dense(state, step, s))
            if hit is not None:
                return [y0, hit]
        k = j
        while k < len(ts) and (ts[k] - t1) * d <= 0:
            k += 1
        for s, yj in zip(ts[j:k], outputs(state, step, ts[j:k]) if k > j else []):
            if not bool(torch.isfinite(yj).all()):
                raise SolverError(
                    t0, "non-finite state", f"the state is not finite at output time t={s:.10g}"
                )
            out.append(yj)
        j = k
    return out
