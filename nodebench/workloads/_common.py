"""Helpers shared by the cost workloads (memory, tolerance, nfe, solvers): counted solves in either library.

Both libraries are called as a user would call them; evaluations of ``func`` are counted the same way
for both, by :class:`CountingFunc`, so NFE figures are comparable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

LIBRARIES = ("nodebench", "torchdiffeq")
NORMS = ("seminorm", "full")

Func = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class CountingFunc(nn.Module):
    """``func`` with its evaluations counted in ``counts["nfe_forward"]`` or ``counts["nfe_backward"]``.

    Evaluations count as forward until :attr:`phase` is set to ``"backward"``. A module ``func`` becomes
    a submodule, so ``parameters()`` (what both adjoints differentiate by default) are its parameters.

    Arguments:
        func: the right-hand side ``func(t, y)``.
    """

    def __init__(self, func: Func) -> None:
        super().__init__()
        self.func = func
        self.phase = "forward"
        self.counts = {"nfe_forward": 0, "nfe_backward": 0}

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.counts[f"nfe_{self.phase}"] += 1
        return self.func(t, y)


def solve(
    library: str,
    func: nn.Module,
    y0: torch.Tensor,
    t: torch.Tensor,
    method: str,
    rtol: float = 1e-7,
    atol: float = 1e-9,
    options: dict[str, Any] | None = None,
    adjoint: bool = False,
    adjoint_norm: str = "seminorm",
) -> torch.Tensor:
    """Solve with ``library``'s ``odeint`` (or ``odeint_adjoint``), as a user of that library would.

    Arguments:
        library: ``"nodebench"`` or ``"torchdiffeq"``.
        func, y0, t, method, rtol, atol, options: as :func:`nodebench.odeint`; torchdiffeq takes any of
            its own methods too.
        adjoint: use the adjoint method (gradients to ``func.parameters()``).
        adjoint_norm: ``"seminorm"`` or ``"full"`` (torchdiffeq: ``adjoint_options={"norm": "seminorm"}``
            or its default norm).

    Returns:
        The solution, shape ``(len(t), *y0.shape)``.
    """
    if adjoint_norm not in NORMS:
        raise ValueError(f"adjoint_norm must be one of {NORMS}, got {adjoint_norm!r}")
    if library == "nodebench":
        import nodebench

        if not adjoint:
            return nodebench.odeint(func, y0, t, method=method, rtol=rtol, atol=atol, options=options)
        return nodebench.odeint_adjoint(
            func, y0, t, method=method, rtol=rtol, atol=atol, options=options, adjoint_norm=adjoint_norm
        )
    if library == "torchdiffeq":
        import torchdiffeq

        if not adjoint:
            return torchdiffeq.odeint(func, y0, t, method=method, rtol=rtol, atol=atol, options=options)
        adjoint_options = dict(options or {})
        if adjoint_norm == "seminorm":
            adjoint_options["norm"] = "seminorm"
        return torchdiffeq.odeint_adjoint(
            func, y0, t, method=method, rtol=rtol, atol=atol, options=options, adjoint_options=adjoint_options
        )
    raise ValueError(f"library must be one of {LIBRARIES}, got {library!r}")


def dtype_of(name: str) -> torch.dtype:
    """``"float32"`` / ``"float64"`` -> the torch dtype; ValueError otherwise."""
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {name!r}")
    return getattr(torch, name)
