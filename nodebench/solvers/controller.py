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


def initial_step(
    f: Callable[[float, torch.Tensor], torch.Tensor],
    t0: float,
    y0: torch.Tensor,
    f0: torch.Tensor,
    order: int,
    rtol: float,
    atol: float,
    direction: float,
    error_dims: int | None = None,
) -> float:
    """The two-evaluation starting step of Hairer, Nørsett & Wanner (Sec. II.4), as torchdiffeq.

    Arguments:
        f: the flat right-hand side ``f(t, y)``; evaluated once here.
        t0, y0, f0: start time, state and ``f(t0, y0)``.
        order: the error estimate's order (torchdiffeq passes the method's order minus one).
        direction: +1 or -1.
        error_dims: if given, only the first ``error_dims`` entries enter the norms (seminorm).
    Returns:
        the magnitude of the first step (positive).
    """
    m = error_dims
    ys, fs = (y0, f0) if m is None else (y0[:m], f0[:m])
    scale = ys.abs().mul_(rtol).add_(atol)
    d0 = rms_norm(ys / scale)
    d1 = rms_norm(fs / scale)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    y1 = torch.add(y0, f0, alpha=direction * h0)
    f1 = f(t0 + direction * h0, y1)
    df = f1 - f0 if m is None else f1[:m] - fs
    d2 = rms_norm(df / scale) / h0
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
