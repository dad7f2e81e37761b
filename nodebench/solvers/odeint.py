"""``odeint``: solve an ODE and backpropagate directly through the solver's operations."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from nodebench.solvers import callbacks
from nodebench.solvers import stats as _stats
from nodebench.solvers.boundary import State, check_low_precision, describe
from nodebench.solvers.integrate import Times, make_rhs, solve
from nodebench.solvers.integrate import fold_first_read as _fold_t
from nodebench.solvers.method import Config, Counts, Method
from nodebench.solvers.validate import (
    Options,
    bind_grid,
    check_method,
    check_options,
    check_t,
    check_t_values,
)


@dataclass
class Problem:
    """A validated call, with the caller's state mapped onto the core's flat real vector.

    Attributes:
        state: how the caller's state maps to flat (and back).
        func: the right-hand side on the core's state.
        y0: the core's initial state (the caller's tensor itself for a plain real tensor).
        ts, method, rtol, atol, opts: validated times (or :class:`Times` not yet read), method,
            tolerances and options.
        norm: the forward error norm (None: RMS over the state).
        callbacks: torchdiffeq's step callbacks ``func`` defines that the method calls (or None).
    """

    state: State
    func: Callable
    y0: torch.Tensor
    ts: list[float] | Times
    method: Method
    rtol: float | torch.Tensor
    atol: float | torch.Tensor
    opts: Options
    norm: Any
    callbacks: Any = None

    def config(self, counts: Counts, ts: list[float] | None = None) -> Config:
        """The :class:`~nodebench.solvers.method.Config` of a solve of this problem through ``ts``
        (direction and end are set when the solve reads unread times)."""
        ts = self.ts if ts is None else ts
        cb = self.callbacks
        if isinstance(ts, Times):
            return Config(self.rtol, self.atol, self.opts, counts, self.norm, self.y0.shape, callbacks=cb)
        d = 1.0 if len(ts) < 2 or ts[-1] > ts[0] else -1.0
        return Config(self.rtol, self.atol, self.opts, counts, self.norm, self.y0.shape, d, ts[-1], cb)


def check_tolerances(rtol: Any, atol: Any) -> None:
    """Refuse a component where both tolerances are zero (its error could never be accepted)."""
    if not isinstance(rtol, torch.Tensor) and not isinstance(atol, torch.Tensor):
        if rtol == 0 and atol == 0:
            raise ValueError("rtol and atol are both 0 (somewhere): at least one must be positive")
        return
    r = rtol if isinstance(rtol, torch.Tensor) else torch.tensor([rtol])
    a = atol if isinstance(atol, torch.Tensor) else torch.tensor([atol])
    if bool(((r.cpu() == 0) & (a.cpu() == 0)).any()):
        raise ValueError("rtol and atol are both 0 (somewhere): at least one must be positive")


def report_forward(counts: Any, m: Method, attempts: int | None = None, per_sample: Any = None) -> None:
    """A forward solve's counts (:class:`Counts`, or per-sample control's with its ``attempts`` and
    ``per_sample`` lists) to the active ``solver_stats()`` collectors."""
    _stats.report(
        _stats.active_stats(),
        counts.nfe,
        counts.accepted,
        counts.rejected,
        False,
        m.name,
        attempts,
        per_sample,
        linear=counts.linear() if m.implicit else None,
    )


def prepare(
    func: Any, y0: Any, t: Any, method: Any, rtol: Any, atol: Any, options: Any, read_t: bool = True
) -> Problem:
    """Validate the public arguments and map the caller's state onto the core's.

    ``read_t=False``: ``t``'s values are not read here; ``Problem.ts`` is then a
    :class:`~nodebench.solvers.integrate.Times` that the solve reads with its first read-back.
    """
    if not callable(func):
        raise TypeError(f"func must be callable as func(t, y), got {type(func).__name__}")
    state = describe(y0)
    first = y0[0] if state.is_tuple else y0
    ts = check_t(t, first) if read_t else Times(check_t(t, first, read=False), check_t_values)
    m = check_method(method)
    opts = check_options(options, m, t.dtype)
    rtol = state.tolerance("rtol", rtol, first.device)
    atol = state.tolerance("atol", atol, first.device)
    check_tolerances(rtol, atol)
    check_low_precision(state, rtol, m.adaptive)
    if opts.jacobian is not None and not state.plain:
        raise ValueError(
            "options['jacobian'] needs y0 as one real float32/float64 tensor (the Jacobian is over its "
            "entries); for tuple, complex or half-precision states leave it out (autograd builds it)"
        )
    shape = first.shape
    view = (lambda y: y.view(shape)) if state.plain else state.restore
    opts = bind_grid(opts, func, view, t.dtype, first.device)
    return Problem(
        state=state,
        func=state.wrap(func),
        y0=state.flatten(y0),
        ts=ts,
        method=m,
        rtol=rtol,
        atol=atol,
        opts=opts,
        norm=state.norm(opts.norm, first.device) if m.adaptive else None,
        callbacks=callbacks.make(callbacks.select(func, m), view, opts.t_dtype, first.device),
    )


def odeint(
    func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y0: torch.Tensor | tuple[torch.Tensor, ...],
    t: torch.Tensor,
    method: str = "dopri5",
    rtol: float | torch.Tensor | tuple = 1e-7,
    atol: float | torch.Tensor | tuple = 1e-9,
    options: dict[str, Any] | None = None,
    event_fn: Callable[[torch.Tensor, Any], torch.Tensor] | None = None,
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Solve ``dy/dt = func(t, y)`` from ``y(t[0]) = y0`` and return ``y`` at every time in ``t``.

    Gradients reach ``y0`` and every tensor ``func`` uses by backpropagating through the solver's
    operations (the RK-Net of the paper on a fixed grid). Where ``t.requires_grad``, the gradient to
    each ``t[i]`` is that of the exact solution: ``dy(t_i)/dt_i = f(t_i, y_i)`` and
    ``dy(t_i)/dt_0 = -(dy(t_i)/dy0) f(t_0, y0)``; this costs ``len(t)`` extra evaluations.

    Arguments:
        func: ``func(t, y) -> dy/dt`` with the shape of ``y`` (a tuple like ``y`` for tuple states);
            ``t`` is a 0-d tensor of ``t``'s dtype (``options["dtype"]`` if given). An output of
            another floating dtype is cast to the state's (as torchdiffeq computes on; a less precise
            one warns). ``func`` may define torchdiffeq's step callbacks ``callback_step``,
            ``callback_accept_step``, ``callback_reject_step`` (and their ``_adjoint`` forms for
            :func:`odeint_adjoint`): see :mod:`~nodebench.solvers.callbacks`.
        y0: initial state: a non-empty floating or complex tensor, or a tuple of them (one dtype).
            float16/bfloat16 states are integrated in float32 and returned in their dtype; an ``rtol``
            finer than their epsilon is refused.
        t: 1-D strictly increasing or decreasing floating tensor of output times (per-sample control:
            also ``(batch, T)``, one row per sample).
        method: fixed grid ``euler``, ``midpoint``, ``heun2``, ``heun3``, ``rk4``, and the fixed-grid
            Adams family ``explicit_adams``, ``implicit_adams`` (= ``fixed_adams``); adaptive
            ``adaptive_heun``, ``fehlberg2``, ``bosh3``, ``dopri5``, ``tsit5``, ``dopri8``, the
            variable-order ``adams``, and ``scipy_solver`` (scipy's solvers; no autograd graph).
            None: ``dopri5`` (torchdiffeq's default).
        rtol, atol: relative and absolute tolerances (adaptive methods): non-negative floats, or tensors
            broadcastable to the state (a tuple of them for tuple states); not both zero.
        options: fixed grid: ``step_size`` or ``grid_constructor`` (``(func, y0, t) -> grid``, from
            ``t[0]`` to ``t[-1]``), ``perturb``, ``interp`` (``"cubic"`` Hermite, the default, or
            ``"linear"``, torchdiffeq's default), ``max_num_steps``, ``dtype`` (fixed-grid Adams
            also ``max_order``, ``max_iters``); adaptive Runge–Kutta: ``first_step``, ``max_num_steps``,
            ``dtype``, ``safety``, ``ifactor``, ``dfactor``, ``controller`` ("I" or "PI"), ``step_t``,
            ``jump_t``, ``norm``, ``min_step``, ``max_step`` (torchdiffeq's meanings) and ``batch``
            (``"independent"``: per-sample step control, see :mod:`~nodebench.solvers.per_sample`);
            ``adams``: ``first_step``, ``max_num_steps``, ``dtype``, ``max_order``, ``step_t``;
            ``scipy_solver``: ``solver``, ``min_step``, ``max_step``, ``max_num_steps``,
            ``dtype``. Each method's set is its ``option_names``; any other key is an error.
        event_fn: torchdiffeq's event mode: ``t`` holds the start and a time giving the direction, and
            the solve stops where ``event_fn(t, y)`` crosses zero (see
            :func:`~nodebench.solvers.event.odeint_event`, which this calls).
    Returns:
        tensor of shape ``(len(t), *y0.shape)`` with ``result[0] == y0`` (a tuple of them for tuple
        states); with ``event_fn``, ``(event_t, solution)``, ``solution`` of shape ``(2, *y0.shape)``.
    Raises:
        TypeError, ValueError: bad arguments, named in the message, before any evaluation of ``func``
            (on an accelerator, the values of ``t`` are read, and checked, with the first step's
            read-back: see :data:`~nodebench.solvers.integrate.FOLD_FIRST_READ`).
        SolverError: step-size underflow, ``max_num_steps`` exceeded, or a non-finite state or derivative.
    """
    if event_fn is not None:
        from nodebench.solvers.event import event_call

        return event_call(
            odeint, func, y0, t, event_fn, dict(method=method, rtol=rtol, atol=atol, options=options)
        )
    if batch_mode(options) == "independent":
        return _odeint_per_sample(func, y0, t, method, rtol, atol, options)
    t_grad = isinstance(t, torch.Tensor) and t.requires_grad and torch.is_grad_enabled()
    p = prepare(func, y0, t, method, rtol, atol, options, read_t=t_grad or not _fold(t))
    m, ts, opts = p.method, p.ts, p.opts
    y0 = p.y0 if m.differentiable else p.y0.detach()
    shape = y0.shape
    counts = Counts()
    f = make_rhs(p.func, shape, opts.t_dtype, y0.device, counts, check=True)
    y_start = y0.reshape(-1)
    if t_grad:
        with torch.no_grad():
            f_start = f(ts[0], y_start.detach()).reshape(-1)
        # Same value as y0; its derivative in t[0] is -f(t0, y0): the solution's sensitivity to t0.
        y_start = y_start - (t[0] - t[0].detach()).to(y0.dtype) * f_start
    try:
        ys = solve(f, y_start, ts, m, p.config(counts))
        ts = ts.values if isinstance(ts, Times) else ts
        if t_grad:
            ys[0] = y0.reshape(-1)
            for i in range(1, len(ts)):
                with torch.no_grad():
                    fi = f(ts[i], ys[i].detach()).reshape(-1)
                ys[i] = ys[i] + (t[i] - t[i].detach()).to(y0.dtype) * fi
    finally:
        report_forward(counts, m)
    out = torch.stack(ys).view(len(ts), *shape)
    return out if p.state.plain else p.state.restore(out, (len(ts),))


def _fold(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and _fold_t(t)


def batch_mode(options: Any) -> str:
    """``options["batch"]`` if given (validated later with the other options), else ``"shared"``."""
    return options.get("batch", "shared") if isinstance(options, dict) else "shared"


def check_per_sample(func: Any, y0: Any, t: Any, method: Any, options: Any) -> tuple[Method, Options, int]:
    """Validate a per-sample call (``options["batch"] == "independent"``): ``(method, options, batch)``."""
    if not callable(func):
        raise TypeError(f"func must be callable as func(t, y), got {type(func).__name__}")
    state = describe(y0)
    m = check_method(method)
    if not m.per_sample:
        raise ValueError(
            f"options['batch']='independent': method {m.name!r} has no per-sample step control; it is "
            f"available for the adaptive Runge-Kutta methods (e.g. 'dopri5', 'tsit5', 'bosh3')"
        )
    if not state.plain:
        raise TypeError(
            "options['batch']='independent' needs y0 as one real float32/float64 tensor whose first "
            "dimension is the batch (not a tuple, complex or half-precision state)"
        )
    if y0.ndim < 1:
        raise ValueError(
            "options['batch']='independent' needs y0 with a leading batch dimension, got a 0-d tensor"
        )
    if not isinstance(t, torch.Tensor) or not torch.is_floating_point(t):
        raise TypeError("t must be a floating-point torch.Tensor")
    B = y0.shape[0]
    if t.ndim not in (1, 2) or (t.ndim == 2 and t.shape[0] != B) or t.shape[-1] == 0:
        raise ValueError(
            f"t must have shape (T,) or (batch, T) = ({B}, T) with options['batch']='independent', "
            f"got {tuple(t.shape)}"
        )
    if t.is_meta or t.device != y0.device:
        raise ValueError(f"t must be on y0's device ({y0.device}), got {t.device}")
    if t.requires_grad:
        raise ValueError("t must not require grad with options['batch']='independent' (not supported)")
    opts = check_options(options, m, t.dtype)
    if callbacks.defined(func, callbacks.NAMES + callbacks.ADJOINT_NAMES):
        warnings.warn(
            "options['batch']='independent': func's step callbacks are not called (each sample has its "
            "own steps)",
            stacklevel=3,
        )
    if opts.norm is not None or opts.step_t or opts.jump_t:
        raise ValueError(
            "options['batch']='independent' does not support options 'norm', 'step_t' or 'jump_t' "
            "(the error norm is each sample's RMS)"
        )
    return m, opts, B


def _shared_options(options: dict) -> dict:
    return {k: v for k, v in options.items() if k != "batch"}


def _odeint_per_sample(func, y0, t, method, rtol, atol, options):
    from nodebench.solvers.per_sample import PerSampleCounts, solve_per_sample

    m, opts, B = check_per_sample(func, y0, t, method, options)
    if B == 1:  # a batch of one is shared control, exactly
        return odeint(func, y0, t.reshape(-1), method, rtol, atol, _shared_options(options))
    state = describe(y0)
    rtol = state.tolerance("rtol", rtol, y0.device)
    atol = state.tolerance("atol", atol, y0.device)
    check_tolerances(rtol, atol)
    counts = PerSampleCounts()
    try:
        return solve_per_sample(func, y0, t, m, rtol, atol, opts, counts)
    finally:
        report_forward(counts, m, counts.attempts, counts.per_sample())
