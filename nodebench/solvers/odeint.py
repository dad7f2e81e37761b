"""``odeint``: solve an ODE and backpropagate directly through the solver's operations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from nodebench.solvers import stats as _stats
from nodebench.solvers.integrate import Counts, make_rhs, solve
from nodebench.solvers.validate import check_method, check_options, check_t, check_tol, check_y0


def prepare(func, y0, t, method, rtol, atol, options):
    """Validate the public arguments; return ``(tableau, ts, rtol, atol, opts, t_dtype)``."""
    if not callable(func):
        raise TypeError(f"func must be callable as func(t, y), got {type(func).__name__}")
    check_y0(y0)
    ts = check_t(t, y0)
    tableau = check_method(method)
    rtol = check_tol("rtol", rtol)
    atol = check_tol("atol", atol)
    opts = check_options(options, tableau)
    opts["t_eps"] = torch.finfo(t.dtype).eps  # the resolution the caller's times were given in
    t_dtype = opts.get("dtype") or t.dtype
    return tableau, ts, rtol, atol, opts, t_dtype


def odeint(
    func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y0: torch.Tensor,
    t: torch.Tensor,
    method: str = "dopri5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    options: dict[str, Any] | None = None,
) -> torch.Tensor:
    """Solve ``dy/dt = func(t, y)`` from ``y(t[0]) = y0`` and return ``y`` at every time in ``t``.

    Gradients reach ``y0`` and every tensor ``func`` uses by backpropagating through the solver's
    operations (the RK-Net of the paper on a fixed grid). Where ``t.requires_grad``, the gradient to
    each ``t[i]`` is that of the exact solution: ``dy(t_i)/dt_i = f(t_i, y_i)`` and
    ``dy(t_i)/dt_0 = -(dy(t_i)/dy0) f(t_0, y0)``; this costs ``len(t)`` extra evaluations.

    Arguments:
        func: ``func(t, y) -> dy/dt`` with the shape and dtype of ``y``; ``t`` is a 0-d tensor.
        y0: initial state, any non-empty floating shape.
        t: 1-D strictly increasing or decreasing floating tensor of output times.
        method: ``euler``, ``midpoint``, ``rk4`` (fixed grid) or ``bosh3``, ``dopri5``, ``tsit5`` (adaptive).
        rtol, atol: relative and absolute tolerances (adaptive methods).
        options: fixed grid: ``step_size``, ``max_num_steps``, ``dtype``; adaptive: ``first_step``,
            ``max_num_steps``, ``dtype``, ``safety``, ``ifactor``, ``dfactor``, ``controller`` ("I" or "PI").
    Returns:
        tensor of shape ``(len(t), *y0.shape)`` with ``result[0] == y0``.
    Raises:
        SolverError: step-size underflow, ``max_num_steps`` exceeded, or a non-finite state or derivative.
    """
    tableau, ts, rtol, atol, opts, t_dtype = prepare(func, y0, t, method, rtol, atol, options)
    shape = y0.shape
    counts = Counts()
    f = make_rhs(func, shape, t_dtype, y0.device, counts, check=True)
    t_grad = t.requires_grad and torch.is_grad_enabled()
    y_start = y0.reshape(-1)
    if t_grad:
        with torch.no_grad():
            f_start = f(ts[0], y_start.detach()).reshape(-1)
        # Same value as y0; its derivative in t[0] is -f(t0, y0): the solution's sensitivity to t0.
        y_start = y_start - (t[0] - t[0].detach()).to(y0.dtype) * f_start
    try:
        ys = solve(f, y_start, shape, ts, tableau, rtol, atol, opts, counts)
        if t_grad:
            ys[0] = y0.reshape(-1)
            for i in range(1, len(ts)):
                with torch.no_grad():
                    fi = f(ts[i], ys[i].detach()).reshape(-1)
                ys[i] = ys[i] + (t[i] - t[i].detach()).to(y0.dtype) * fi
    finally:
        _stats.report(
            _stats.active_stats(), counts.nfe, counts.accepted, counts.rejected, False, tableau.name
        )
    return torch.stack(ys).view(len(ts), *shape)
