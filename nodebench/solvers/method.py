"""The one interface every method implements, and the registry of methods by name.

A method is what differs between, say, dopri5 and adams: how a step is taken and its error estimated,
how the state between step ends is interpolated, and what a discontinuity of the state (a *jump*)
does to the method's memory. Everything else — the loop over steps, where steps must end (output
times, ``step_t``/``jump_t``, the adjoint's landings), accepting or rejecting a step and sizing the
next one, events, statistics — belongs to the loop (:mod:`~nodebench.solvers.integrate`) and the
controller (:mod:`~nodebench.solvers.controller`), which call the methods only through this interface.

The lifecycle the loop drives (adaptive methods)::

    state = method.init(f, t0, y0, config)            # evaluates f(t0, y0) if the method needs it
    h = method.initial_step(state, direction, span)   # honours options["first_step"]
    loop:
        step = method.step(state, t, h, t1)            # a Step: y1, error estimate or own verdict
        accepted = controller.accept(step)             # ratio <= 1
        if accepted:
            method.dense(state, step, s)  for s in (t, t1]   # outputs, event search
            method.advance(state, step)                # the state moves to (t1, y1)
            method.jump(state, t1, y, f, ...)  at a jump  # restart after a discontinuity
        h = controller.next_step(h, step)

Fixed-grid methods take ``method.step(state, t0, t1, t1)`` on the grid; their ``error`` is None.

Implicit methods (:mod:`~nodebench.solvers.radau`, :mod:`~nodebench.solvers.bdf`,
:mod:`~nodebench.solvers.implicit_rk`) implement the same calls, keeping their Jacobian and
factorisation in their state and reporting a failed Newton iteration as a rejected :class:`Step`;
the stiffness test of the explicit pairs reads ``Step.probe`` with the error ratio and judges it in
``Method.on_accept``. torchdiffeq's step callbacks (``func.callback_step``,
``callback_accept_step``, ``callback_reject_step``) are the loop's, not the methods' (see
:mod:`~nodebench.solvers.callbacks`): a new method gets them without code of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Counts:
    """Evaluations of ``func`` and steps of one solve (per sample: tensors of shape ``(batch,)``).

    Implicit methods also count their linear algebra: ``jacobians`` (evaluations of ``∂f/∂y``, by
    autograd or the caller's ``options["jacobian"]``; the one call of ``func`` autograd makes to build a
    Jacobian is counted here, not in ``nfe``), ``factorizations`` (LU factorisations of the Newton
    matrix; a complex one counts once) and ``newton_iterations``.
    """

    nfe: int = 0
    accepted: int = 0
    rejected: int = 0
    jacobians: int = 0
    factorizations: int = 0
    newton_iterations: int = 0

    def linear(self) -> tuple[int, int, int]:
        """``(jacobians, factorizations, newton_iterations)``."""
        return self.jacobians, self.factorizations, self.newton_iterations


@dataclass
class Config:
    """Everything a method may read about a solve, validated once (built by the API).

    Attributes:
        rtol, atol: tolerances: floats, or flat tensors over the entries the error norm looks at.
        opts: the validated :class:`~nodebench.solvers.validate.Options`.
        counts: the solve's counters, updated in place.
        norm: the error norm on the leading ``norm.prefix`` entries (None: RMS over the whole state).
        shape: the caller's state shape (the loop works on the flat state).
        direction: +1.0 (increasing time) or -1.0.
        t_end: the last time of the solve (``±inf`` for an event search).
        callbacks: torchdiffeq's step callbacks ``func`` defines
            (:class:`~nodebench.solvers.callbacks.Callbacks`), or None.
        jacobian: for implicit methods, the linearisation of ``f`` to build Newton matrices from (see
            :mod:`~nodebench.solvers.newton`); None: the method builds one from ``opts.jacobian`` or by
            autograd (the adjoint passes one that knows the structure of its augmented state).
    """

    rtol: float | torch.Tensor
    atol: float | torch.Tensor
    opts: Any
    counts: Counts
    norm: Any = None
    shape: torch.Size = field(default_factory=lambda: torch.Size([]))
    direction: float = 1.0
    t_end: float = math.inf
    callbacks: Any = None
    jacobian: Any = None

    @property
    def prefix(self) -> int | None:
        """How many leading entries of the flat state the error norm sees (None: all)."""
        return None if self.norm is None else self.norm.prefix


@dataclass
class Step:
    """One attempted step, as a method reports it.

    Attributes:
        t0, t1, h: where the step starts and ends, and ``t1 - t0``.
        y0, y1: the state at both ends.
        error: the local error estimate (flat, no ``h`` factor applied) for the controller to weigh
            against the tolerances; None where the method judges itself (``ratio`` is then given).
        accepted: the method's own verdict, where it judges itself (adams, scipy), else None (the
            controller weighs ``error``).
        proposal: the next step's size, if the method chooses it itself (adams, scipy), else None.
        data: whatever the method needs to interpolate in, or advance past, this step.
        probe: a 0-d device tensor the loop reads back together with the error ratio (one read) and
            stores in ``probe_value`` before ``on_accept`` (the stiffness test's ``h |lambda|``).
    """

    t0: float
    t1: float
    h: float
    y0: torch.Tensor
    y1: torch.Tensor
    error: torch.Tensor | None = None
    accepted: bool | None = None
    proposal: float | None = None
    data: Any = None
    probe: torch.Tensor | None = None
    probe_value: float | None = None


class Method:
    """Base class of every method (see the module docstring for the lifecycle).

    Class attributes describe the method to the registry, the validator and the loop:

    Attributes:
        name: registry name.
        order: order of the propagated solution (the controller's exponent base).
        adaptive: takes ``rtol``/``atol`` and controls its step size.
        option_names: the ``options`` keys it accepts (checked by :mod:`~nodebench.solvers.validate`).
        lands_on_end: the loop clips the last step to end on the final time (adams: its interpolant
            must not extrapolate), instead of stepping past it and interpolating.
        lands_on_outputs: the loop clips steps to end on every output time (radau), instead of
            interpolating between step ends.
        self_stepping: the method chooses where each step ends (scipy's codes): the loop cannot clip
            a step, so it integrates interval by interval where it must land.
        differentiable: ``odeint`` can backpropagate through its operations (not scipy).
        per_sample: supports ``options={"batch": "independent"}``.
        defers_first_read: can take its first step with the step size and start time still on the
            device (``initial_step(..., read=False)``, tensor ``t0``/``h`` in ``step``), so that one
            read-back serves the output times, the initial step and the first decision.
        implicit: solves a nonlinear system per step with Newton's method (counts Jacobians,
            factorisations and iterations).
        option_defaults: defaults of options whose default differs by method (``max_iters``).
    """

    name: str = ""
    order: int = 1
    adaptive: bool = True
    option_names: frozenset[str] = frozenset()
    lands_on_end: bool = False
    lands_on_outputs: bool = False
    self_stepping: bool = False
    differentiable: bool = True
    per_sample: bool = False
    defers_first_read: bool = False
    implicit: bool = False
    option_defaults: dict[str, Any] = {}  # noqa: RUF012 (read-only class data)

    def init(self, f: Callable, t0: float, y0: torch.Tensor, cfg: Config) -> Any:
        """The method's state at ``(t0, y0)`` (flat ``y0``)."""
        raise NotImplementedError

    def initial_step(self, state: Any, direction: float, span: float) -> float:
        """The first step's size (positive); ``span`` is the distance to the first landing time."""
        raise NotImplementedError

    def step(self, state: Any, t0: float, h: float, t1: float) -> Step:
        """Attempt one step from ``t0`` of size ``h`` ending exactly at ``t1`` (``t0 + h`` unless clipped)."""
        raise NotImplementedError

    def dense(self, state: Any, step: Step, t: float) -> torch.Tensor:
        """The state at ``t`` inside the accepted ``step``."""
        raise NotImplementedError

    def outputs(self, state: Any, step: Step, times: list[float]) -> list[torch.Tensor]:
        """The state at each of ``times`` inside the accepted ``step`` (``step.y1`` at its end)."""
        return [step.y1 if s == step.t1 else self.dense(state, step, s) for s in times]

    def advance(self, state: Any, step: Step) -> None:
        """Move the state past the accepted ``step`` (carry derivatives, update history)."""

    def reject(self, state: Any, step: Step) -> None:
        """Undo what a rejected ``step`` changed (most methods change nothing until accepted)."""

    def jump(
        self, state: Any, t: float, y: torch.Tensor, fy: torch.Tensor | None, after: float, span: float
    ) -> float | None:
        """Continue from a new state ``y`` at ``t`` (a discontinuity: ``jump_t`` or the adjoint's jump).

        ``fy`` is the derivative at ``(t, y)`` if the caller has it, else None (evaluate it at
        ``after``, the time just past ``t`` when the derivative itself jumps there); ``span`` is the
        distance to the next landing time. Returns a new step size if the method restarts its
        step-size selection (adams), else None (keep the controller's).
        """
        raise NotImplementedError

    def snap(self, state: Any, t: float) -> torch.Tensor | None:
        """Move the state's time to ``t``, a landing time within round-off of it (no step is taken);
        returns the derivative there if the method has it, else None."""
        return None

    def derivative_at_end(self, state: Any, step: Step) -> torch.Tensor | None:
        """``f(t1, y1)`` if the method has it from the step without evaluating ``f`` (FSAL, adams's
        corrector evaluation), else None (so the adjoint's jump can reuse it)."""
        return None

    def on_accept(self, state: Any, step: Step) -> None:
        """Hook after every accepted step (stiffness detection would go here); nothing by default."""
