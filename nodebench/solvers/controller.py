"""Step-size control: norms, the initial step and the I / PI controllers.

The controller sees error ratios and step sizes only, never the tableau (its ``order`` is an int).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def rms_norm(x: torch.Tensor) -> float:
    """Root mean square of a tensor, as a Python float."""
    return torch.linalg.vector_norm(x).item() / math.sqrt(x.numel())


class BlockNorm:
    """Maximum over blocks of each block's RMS, on a leading part of a flat state.

    The adjoint's error norms are of this kind: ``"full"`` has a block for the state, the adjoint and
    every parameter gradient; ``"seminorm"`` keeps only the state and the adjoint (entries past
    ``prefix`` are ignored), as in Kidger, Chen & Lyons (2021) and torchdiffeq.

    Arguments:
        sizes: number of entries of each block, in order from the start of the flat state.
        device: device of the state.
    """

    def __init__(self, sizes: list[int], device: torch.device) -> None:
        self.prefix = sum(sizes)
        self.single = len(sizes) == 1
        self.ids = torch.repeat_interleave(
            torch.arange(len(sizes), device=device), torch.tensor(sizes, device=device)
        )
        self.sizes = torch.tensor(sizes, dtype=torch.float64, device=device)

    def __call__(self, x: torch.Tensor) -> float:
        """The norm of ``x``, the leading ``prefix`` entries of a flat state."""
        if self.single:
            return rms_norm(x)
        sums = torch.zeros(len(self.sizes), dtype=torch.float64, device=x.device)
        sums.index_add_(0, self.ids, x.double().square())
        return (sums / self.sizes).max().sqrt().item()


def initial_step(
    f: Callable[[float, torch.Tensor], torch.Tensor],
    t0: float,
    y0: torch.Tensor,
    f0: torch.Tensor,
    order: int,
    rtol: float,
    atol: float,
    direction: float,
    norm: Callable[[torch.Tensor], float] = rms_norm,
    prefix: int | None = None,
) -> float:
    """The two-evaluation starting step of Hairer, Nørsett & Wanner (Sec. II.4), as torchdiffeq.

    Arguments:
        f: the flat right-hand side ``f(t, y)``; evaluated once here.
        t0, y0, f0: start time, flat state and ``f(t0, y0)``.
        order: the error estimate's order (torchdiffeq passes the method's order minus one).
        direction: +1 or -1.
        norm, prefix: the error norm and the number of leading entries it looks at (None: all).
    Returns:
        the magnitude of the first step (positive).
    """
    m = prefix
    ys, fs = (y0, f0) if m is None else (y0[:m], f0[:m])
    scale = ys.abs().mul_(rtol).add_(atol)
    d0 = norm(ys / scale)
    d1 = norm(fs / scale)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    y1 = torch.add(y0, f0, alpha=direction * h0)
    f1 = f(t0 + direction * h0, y1)
    df = f1 - f0 if m is None else f1[:m] - fs
    d2 = norm(df / scale) / h0
    if max(d1, d2) <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / (order + 1))
    return min(100 * h0, h1)


class Controller:
    """Integral (I) or proportional-integral (PI) step-size control.

    Arguments:
        order: exponent base; the I controller uses ``ratio ** (-1/order)``.
        safety, ifactor, dfactor: safety factor and growth / shrink bounds.
        kind: ``"I"`` (torchdiffeq's rule) or ``"PI"`` (Gustafsson: ``beta1 = 0.7, beta2 = 0.4``).
    """

    def __init__(self, order: int, safety: float, ifactor: float, dfactor: float, kind: str = "I") -> None:
        self.order = order
        self.safety = safety
        self.ifactor = ifactor
        self.dfactor = dfactor
        self.kind = kind
        self.prev_ratio = 1.0

    def next_step(self, h: float, ratio: float) -> float:
        """Propose the next step size from the error ratio of the step of size ``h``.

        A step is accepted when ``ratio <= 1``. A non-finite ratio shrinks the step by ``dfactor``.
        """
        if not math.isfinite(ratio):
            return h * self.dfactor
        if ratio == 0.0:
            return h * self.ifactor
        k = self.order
        if self.kind == "PI":
            factor = self.safety * ratio ** (-0.7 / k) * self.prev_ratio ** (0.4 / k)
        else:
            factor = self.safety * ratio ** (-1.0 / k)
        lower = 1.0 if ratio < 1 else self.dfactor
        if ratio <= 1:
            self.prev_ratio = max(ratio, 1e-4)
        return h * min(self.ifactor, max(factor, lower))
