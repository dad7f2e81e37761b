"""``odeint_event``: solve until an event function crosses zero, with gradients of the event time.

As torchdiffeq's ``odeint_event``: the event time ``t*`` solves ``g(t*, y(t*)) = 0``; its gradient follows
from the implicit function theorem, ``dt*/dθ = -(∂g/∂y · dy(t*)/dθ) / (∂g/∂t + ∂g/∂y · f(t*, y(t*)))``,
routed through the returned state as torchdiffeq does.

Every method finds events the same way: the loop (:mod:`~nodebench.solvers.integrate`) calls
:meth:`Event.check` after each accepted step, which bisects on the method's own dense output. So
adams, the fixed-grid Adams family, scipy's solvers and every Runge–Kutta tableau stop at the event.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.autograd.functional import vjp

from nodebench.solvers.integrate import make_rhs, solve
from nodebench.solvers.method import Counts
from nodebench.solvers.odeint import odeint, prepare, report_forward


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

    def _sign(self, t: float, y: torch.Tensor) -> float:
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


class _ImplicitGradient(torch.autograd.Function):
    """Identity on ``(t*, y*)`` whose backward adds the event time's dependence on the state."""

    @staticmethod
    def forward(ctx, func, event_fn, event_t, state_t):  # type: ignore[override]
        ctx.func, ctx.event_fn = func, event_fn
        ctx.save_for_backward(event_t, state_t)
        return event_t.detach(), state_t.detach()

    @staticmethod
    def backward(ctx, grad_t, grad_state):  # type: ignore[override]
        event_t, state_t = ctx.saved_tensors
        event_t = event_t.detach().clone().requires_grad_(True)
        state_t = state_t.detach().clone().requires_grad_(True)
        with torch.no_grad():
            f_val = ctx.func(event_t, state_t)
        with torch.enable_grad():
            c, (dg_dt, dg_dy) = vjp(ctx.event_fn, (event_t, state_t))
        dg_total = dg_dt + torch.sum(dg_dy * f_val)  # dg/dt along the solution at t*
        grad_t = grad_t + torch.sum(grad_state * f_val)  # the state's own dependence on t*
        if dg_total.abs().item() == 0.0:
            raise ZeroDivisionError(
                "odeint_event: the event function is tangent to the solution at the event "
                "(d/dt g(t, y(t)) = 0), so the event time has no gradient"
            )
        grad_state = grad_state + dg_dy * (-grad_t / dg_total).reshape_as(c)
        return None, None, None, grad_state


def odeint_event(
    func: Callable,
    y0: torch.Tensor | tuple[torch.Tensor, ...],
    t0: torch.Tensor,
    *,
    event_fn: Callable[[torch.Tensor, Any], torch.Tensor],
    reverse_time: bool = False,
    odeint_interface: Callable = odeint,
    **kwargs: Any,
) -> tuple[torch.Tensor, Any]:
    """Solve from ``t0`` until ``event_fn(t, y)`` crosses zero (torchdiffeq's ``odeint_event``).

    Arguments:
        func, y0: as :func:`odeint` (tuple and complex states included).
        t0: start time, a 0-d (or one-element) floating tensor.
        event_fn: ``event_fn(t, y) -> tensor``; the solve stops where any entry changes sign.
        reverse_time: integrate towards decreasing time.
        odeint_interface: :func:`odeint` or :func:`odeint_adjoint`, used for the differentiable solve.
        kwargs: ``rtol``, ``atol``, ``method``, ``options`` (and ``odeint_adjoint``'s ``adjoint_*``).
            Fixed-grid methods need ``options["step_size"]``.
    Returns:
        ``(event_t, solution)``: the event time (shape of ``t0``) and the state at ``[t0, event_t]``
        (shape ``(2, *y0.shape)``, a tuple of them for tuple states). Gradients reach ``y0``, ``t0`` and
        the parameters of ``func`` through both.
    Raises:
        SolverError: no event within ``max_num_steps`` steps, or a failing solve.
    """
    if not callable(event_fn):
        raise TypeError(f"event_fn must be callable as event_fn(t, y), got {type(event_fn).__name__}")
    if not isinstance(t0, torch.Tensor) or t0.numel() != 1 or not torch.is_floating_point(t0):
        raise TypeError("t0 must be a one-element floating-point tensor")
    solve_kw = {k: v for k, v in kwargs.items() if k in ("method", "rtol", "atol", "options")}
    t_pair = torch.cat([t0.reshape(-1), t0.reshape(-1).detach() + (-1.0 if reverse_time else 1.0)])
    p = prepare(
        func,
        y0,
        t_pair,
        solve_kw.get("method", "dopri5"),
        solve_kw.get("rtol", 1e-7),
        solve_kw.get("atol", 1e-9),
        solve_kw.get("options"),
    )
    m = p.method
    if not m.adaptive and p.opts.step_size is None:
        raise ValueError(f"odeint_event: the fixed-grid method {m.name!r} needs options['step_size']")
    if p.opts.batch != "shared":
        raise ValueError(
            "odeint_event: options['batch'] must be 'shared' (one event time for the whole state)"
        )
    state, t_dtype, device = p.state, p.opts.t_dtype, p.y0.device

    def flat_event(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return event_fn(t, state.restore(y) if not state.plain else y)

    t_start = float(t0.detach())
    with torch.no_grad():
        g0 = torch.as_tensor(flat_event(torch.scalar_tensor(t_start, dtype=t_dtype, device=device), p.y0))
    signs = torch.sign(g0)

    def combined(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """All event entries made positive at the start; the event is where the smallest reaches 0."""
        return torch.min(torch.as_tensor(flat_event(t, y)) * signs)

    counts = Counts()
    d = -1.0 if reverse_time else 1.0
    found = t_start
    with torch.no_grad():
        y_found = p.y0
        if bool((g0 != 0).all()):
            f = make_rhs(p.func, p.y0.shape, t_dtype, device, counts, check=True)
            event = Event(
                lambda t, y: float(combined(torch.scalar_tensor(t, dtype=t_dtype, device=device), y)),
                1.0,
                torch.finfo(t_dtype).eps,
            )
            ts = [t_start, d * math.inf]
            try:
                ys = solve(f, p.y0.reshape(-1), ts, m, p.config(counts, ts), event)
            finally:
                report_forward(counts, m)
            found = event.t
            y_found = ys[-1].view(p.y0.shape)
    event_t = torch.tensor(found, dtype=t0.dtype, device=t0.device).reshape(t0.shape)

    needs_grad = torch.is_grad_enabled() and (
        any(x.requires_grad for x in (y0 if state.is_tuple else (y0,)))
        or t0.requires_grad
        or (isinstance(func, torch.nn.Module) and any(q.requires_grad for q in func.parameters()))
        or "adjoint_params" in kwargs
    )
    if needs_grad and not m.differentiable and odeint_interface is odeint:
        raise ValueError(
            f"odeint_event: method {m.name!r} records no graph, so odeint cannot differentiate the event "
            "time; pass odeint_interface=odeint_adjoint (or solve without gradients)"
        )
    if needs_grad:
        # Re-solve to the event time with gradients; the event time itself gets its gradient below.
        t_grad = torch.cat([t0.reshape(-1), event_t.reshape(-1).detach()])
        sol = odeint_interface(func, y0, t_grad, **kwargs)
        last = tuple(s[-1] for s in sol) if state.is_tuple else sol[-1]
        state_t = state.flatten(last)
        event_t, state_t = _ImplicitGradient.apply(p.func, combined, event_t.reshape(()), state_t)
        event_t = event_t.reshape(t0.shape)
        end = state.restore(state_t)
        if state.is_tuple:
            return event_t, tuple(torch.cat([s[:-1], e[None]]) for s, e in zip(sol, end))
        return event_t, torch.cat([sol[:-1], end[None]])
    y_end = state.restore(y_found)
    if state.is_tuple:
        return event_t, tuple(torch.stack([a, b]) for a, b in zip(y0, y_end))
    return event_t, torch.stack([y0, y_end])


def event_call(
    interface: Callable,
    func: Callable,
    y0: Any,
    t: Any,
    event_fn: Callable,
    kwargs: dict[str, Any],
) -> tuple[torch.Tensor, Any]:
    """``odeint(..., event_fn=...)`` / ``odeint_adjoint(..., event_fn=...)``, torchdiffeq's event mode.

    ``t`` holds two times: the start and any later (or earlier) time giving the direction; the solve
    stops at ``event_fn``'s zero and returns ``(event_t, solution)``, ``solution`` of shape
    ``(2, *y0.shape)``, as :func:`odeint_event` with ``odeint_interface=interface`` (so the event time is
    differentiated too; torchdiffeq's event mode differentiates only the state, its ``odeint_event``
    both).
    """
    if not isinstance(t, torch.Tensor) or t.ndim != 1 or len(t) != 2:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"t must hold exactly two times with event_fn (start, and direction), got {shape}")
    if not torch.is_floating_point(t):
        raise TypeError(f"t must be a floating-point tensor, got dtype {t.dtype}")
    t_values = t.detach().cpu().double().tolist()
    if not t_values[0] != t_values[1]:
        raise ValueError("t must hold two different times with event_fn (their order gives the direction)")
    reverse = t_values[1] < t_values[0]
    return odeint_event(
        func, y0, t[0], event_fn=event_fn, reverse_time=reverse, odeint_interface=interface, **kwargs
    )
