"""torchdiffeq behind nodebench's signatures, and one :func:`solve` for both libraries.

The adapters take exactly nodebench's arguments (method, rtol, atol, options, adjoint_norm, ...) and
translate them: ``adjoint_norm="seminorm"`` becomes torchdiffeq's ``adjoint_options={"norm": "seminorm"}``
and ``"full"`` its default mixed norm (the maximum of the blocks' RMS norms, as nodebench's); the
adjoint options default to the forward ones exactly when nodebench's do. Both libraries' evaluations
are counted the same way, by wrapping ``func`` in :class:`CountingFunc`.

The two seminorms differ in one block. torchdiffeq's ``"seminorm"`` keeps the time-gradient channel
``dL/dt`` in the backward error norm, and fills that channel whenever ``func`` depends on ``t``, even
when ``t`` needs no gradient (its augmented dynamics mark the detached time ``requires_grad_`` in
place, so ``func`` always sees a time that requires grad). nodebench's seminorm has the state and
adjoint blocks only. For time-dependent ``func`` torchdiffeq therefore takes more backward steps;
:func:`state_seminorm` passed as ``adjoint_norm`` gives torchdiffeq nodebench's seminorm exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torchdiffeq

from nodebench import solvers

MODES = ("odeint", "odeint_adjoint")
# The methods both libraries have (torchdiffeq 0.2.5 has no tsit5).
TORCHDIFFEQ_METHODS = ("euler", "midpoint", "rk4", "bosh3", "dopri5")

Func = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Norm = Callable[[tuple[torch.Tensor, ...]], torch.Tensor]


def state_seminorm(tensors: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """nodebench's seminorm as a torchdiffeq adjoint norm: the larger RMS of the state and the adjoint.

    Arguments:
        tensors: the blocks of torchdiffeq's backward state ``(dL/dt, y, dL/dy, *dL/dparams)`` as it
            hands them to an adjoint norm (errors or states already divided by the tolerances).
    Returns:
        a 0-d tensor.
    """
    _, y, adj_y, *_ = tensors
    return torch.maximum(y.pow(2).mean().sqrt(), adj_y.pow(2).mean().sqrt())


class CountingFunc(torch.nn.Module):
    """``func`` with its evaluations counted into ``stats["nfe_<phase>"]``.

    A module ``func`` becomes a submodule, so ``parameters()`` (what both adjoints differentiate by
    default) are its parameters.

    Arguments:
        func: the right-hand side ``func(t, y)``.
        stats: counters ``{"nfe_forward": int, "nfe_backward": int}``, updated in place.
    """

    def __init__(self, func: Func, stats: dict[str, int]) -> None:
        super().__init__()
        self.func = func
        self.stats = stats
        self.phase = "forward"

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.stats[f"nfe_{self.phase}"] += 1
        return self.func(t, y)


def _options(options: dict[str, Any] | None) -> dict[str, Any]:
    """nodebench options as torchdiffeq options (the same names; torchdiffeq's only controller is I)."""
    out = dict(options or {})
    controller = out.pop("controller", "I")
    if controller != "I":
        raise ValueError(
            f"options['controller']: torchdiffeq has only the 'I' controller, got {controller!r}"
        )
    return out


def _check_method(name: str, method: str) -> None:
    if method not in TORCHDIFFEQ_METHODS:
        raise ValueError(
            f"{name}: torchdiffeq 0.2.5 has no {method!r}; shared methods are {TORCHDIFFEQ_METHODS}"
        )


def odeint(
    func: Func,
    y0: torch.Tensor,
    t: torch.Tensor,
    method: str = "dopri5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    options: dict[str, Any] | None = None,
) -> torch.Tensor:
    """torchdiffeq's ``odeint`` with nodebench's signature (see :func:`nodebench.odeint`).

    Returns:
        tensor of shape ``(len(t), *y0.shape)``.
    """
    _check_method("method", method)
    return torchdiffeq.odeint(func, y0, t, rtol=rtol, atol=atol, method=method, options=_options(options))


def odeint_adjoint(
    func: Func,
    y0: torch.Tensor,
    t: torch.Tensor,
    method: str = "dopri5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    options: dict[str, Any] | None = None,
    adjoint_method: str | None = None,
    adjoint_rtol: float | None = None,
    adjoint_atol: float | None = None,
    adjoint_params: Sequence[torch.Tensor] | None = None,
    adjoint_norm: str | Norm = "seminorm",
    adjoint_options: dict[str, Any] | None = None,
) -> torch.Tensor:
    """torchdiffeq's ``odeint_adjoint`` with nodebench's signature (see :func:`nodebench.odeint_adjoint`).

    Arguments:
        adjoint_norm: ``"seminorm"`` (torchdiffeq's ``adjoint_options["norm"] = "seminorm"``), ``"full"``
            (torchdiffeq's default adjoint norm) or a torchdiffeq norm callable such as
            :func:`state_seminorm`.
        others: as :func:`nodebench.odeint_adjoint`.
    Returns:
        tensor of shape ``(len(t), *y0.shape)``.
    """
    _check_method("method", method)
    adj_method = method if adjoint_method is None else adjoint_method
    _check_method("adjoint_method", adj_method)
    if adjoint_options is None:  # nodebench carries the forward options over to a method of the same kind
        same_kind = (method in solvers.ADAPTIVE_SOLVERS) == (adj_method in solvers.ADAPTIVE_SOLVERS)
        adjoint_options = options if same_kind else None
    adj_opts = _options(adjoint_options)
    if callable(adjoint_norm) or adjoint_norm == "seminorm":
        adj_opts["norm"] = adjoint_norm
    elif adjoint_norm != "full":
        raise ValueError(f"adjoint_norm must be 'seminorm', 'full' or a callable, got {adjoint_norm!r}")
    return torchdiffeq.odeint_adjoint(
        func,
        y0,
        t,
        rtol=rtol,
        atol=atol,
        method=method,
        options=_options(options),
        adjoint_rtol=adjoint_rtol,
        adjoint_atol=adjoint_atol,
        adjoint_method=adj_method,
        adjoint_options=adj_opts,
        adjoint_params=adjoint_params,
    )


_IMPLS = {
    "nodebench": (solvers.odeint, solvers.odeint_adjoint),
    "torchdiffeq": (odeint, odeint_adjoint),
}


def solve(
    library: str,
    mode: str,
    func: Func,
    y0: torch.Tensor,
    t: torch.Tensor,
    method: str = "dopri5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    options: dict[str, Any] | None = None,
    adjoint_norm: str | Norm = "seminorm",
    adjoint_params: Sequence[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, int]]:
    """Solve with either library in either mode, counting evaluations of ``func``.

    Evaluations made while the call runs count as forward; those made afterwards (the adjoint's
    backward solve, once ``backward()`` runs) as backward. Direct backpropagation (``odeint``) never
    evaluates ``func`` in the backward pass, so its ``nfe_backward`` stays 0.

    Arguments:
        library: ``"nodebench"`` or ``"torchdiffeq"``.
        mode: ``"odeint"`` (backpropagate through the solver) or ``"odeint_adjoint"``.
        func, y0, t, method, rtol, atol, options: as :func:`nodebench.odeint`.
        adjoint_norm, adjoint_params: as :func:`nodebench.odeint_adjoint` (adjoint mode only); torchdiffeq
            also takes a norm callable (see :func:`odeint_adjoint`).
    Returns:
        ``(y, stats)``: the solution, shape ``(len(t), *y0.shape)``, and ``{"nfe_forward": int,
        "nfe_backward": int}``, which keeps counting when ``backward()`` runs later.
    """
    if library not in _IMPLS:
        raise ValueError(f"library must be one of {tuple(_IMPLS)}, got {library!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    direct, adjoint = _IMPLS[library]
    stats = {"nfe_forward": 0, "nfe_backward": 0}
    counted = CountingFunc(func, stats)
    if mode == "odeint":
        y = direct(counted, y0, t, method, rtol, atol, options)
    else:
        y = adjoint(
            counted,
            y0,
            t,
            method,
            rtol,
            atol,
            options,
            adjoint_params=adjoint_params,
            adjoint_norm=adjoint_norm,
        )
    counted.phase = "backward"
    return y, stats
