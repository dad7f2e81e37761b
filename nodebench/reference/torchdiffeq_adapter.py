"""torchdiffeq behind nodebench's signatures, and one way to call either library: :func:`integrate`
(as a user of that library would) and :func:`solve` (the same, counting evaluations).

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
LIBRARIES = ("nodebench", "torchdiffeq")
NORMS = ("seminorm", "full")
# The methods both libraries have (torchdiffeq 0.2.5 has no tsit5).
TORCHDIFFEQ_METHODS = ("euler", "midpoint", "rk4", "bosh3", "dopri5")


def has_method(library: str, method: str) -> bool:
    """Whether ``library`` offers ``method`` (nodebench: all of its own; torchdiffeq: the shared ones)."""
    return library == "nodebench" or method in TORCHDIFFEQ_METHODS


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
    """``func`` with its evaluations counted into ``counts["nfe_<phase>"]``.

    Evaluations count as forward until :attr:`phase` is set to ``"backward"``. A module ``func`` becomes
    a submodule, so ``parameters()`` (what both adjoints differentiate by default) are its parameters.
    Both libraries' evaluations are counted this same way, so NFE figures are comparable.

    Arguments:
        func: the right-hand side ``func(t, y)``.
        counts: counters ``{"nfe_forward": int, "nfe_backward": int}`` updated in place (``None``: new
            ones, zero).
    """

    def __init__(self, func: Func, counts: dict[str, int] | None = None) -> None:
        super().__init__()
        self.func = func
        self.counts = {"nfe_forward": 0, "nfe_backward": 0} if counts is None else counts
        self.phase = "forward"

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.counts[f"nfe_{self.phase}"] += 1
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
    adj_method = method if adjoint_method is None else adjoint_method
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


def integrate(
    library: str,
    func: Func,
    y0: torch.Tensor,
    t: torch.Tensor,
    method: str = "dopri5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    options: dict[str, Any] | None = None,
    adjoint: bool = False,
    adjoint_norm: str | Norm = "seminorm",
    adjoint_params: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Solve with ``library``'s ``odeint`` (or ``odeint_adjoint``), as a user of that library would.

    Arguments:
        library: ``"nodebench"`` or ``"torchdiffeq"``.
        func, y0, t, method, rtol, atol, options: as :func:`nodebench.odeint`; torchdiffeq takes any of
            its own methods too.
        adjoint: use the adjoint method (gradients to ``func.parameters()`` unless ``adjoint_params``).
        adjoint_norm, adjoint_params: as :func:`nodebench.odeint_adjoint` (see :func:`odeint_adjoint`
            for torchdiffeq's).

    Returns:
        The solution, shape ``(len(t), *y0.shape)``.
    """
    if library not in _IMPLS:
        raise ValueError(f"library must be one of {LIBRARIES}, got {library!r}")
    direct, adjoint_fn = _IMPLS[library]
    if not adjoint:
        return direct(func, y0, t, method, rtol, atol, options)
    return adjoint_fn(
        func, y0, t, method, rtol, atol, options, adjoint_params=adjoint_params, adjoint_norm=adjoint_norm
    )


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
    """:func:`integrate` in either mode, counting evaluations of ``func``.

    Evaluations made while the call runs count as forward; those made afterwards (the adjoint's
    backward solve, once ``backward()`` runs) as backward. Direct backpropagation (``odeint``) never
    evaluates ``func`` in the backward pass, so its ``nfe_backward`` stays 0.

    Arguments:
        library: ``"nodebench"`` or ``"torchdiffeq"``.
        mode: ``"odeint"`` (backpropagate through the solver) or ``"odeint_adjoint"``.
        others: as :func:`integrate`.
    Returns:
        ``(y, counts)``: the solution, shape ``(len(t), *y0.shape)``, and ``{"nfe_forward": int,
        "nfe_backward": int}``, which keeps counting when ``backward()`` runs later.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    counted = CountingFunc(func)
    y = integrate(
        library,
        counted,
        y0,
        t,
        method,
        rtol,
        atol,
        options,
        adjoint=mode == "odeint_adjoint",
        adjoint_norm=adjoint_norm,
        adjoint_params=adjoint_params,
    )
    counted.phase = "backward"
    return y, counted.counts
