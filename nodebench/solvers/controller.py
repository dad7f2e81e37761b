"""Step-size control: error norms and ratios, the initial step, the I / PI controllers, landing times.

The controller sees error estimates, tolerances and step sizes, never the tableau (a method's
``order`` is an int); the methods never see tolerances (adams, which chooses its own order and step,
is the exception: it reports its own verdict and proposal, which the controller passes through).
Every function here reads at most one value back to the host per call.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from nodebench.solvers.errors import SolverError

#: If set, called as ``hook(kind, margin)`` for every comparison that decides a count: the relative
#: distance from flipping it (``"ratio"``: accept, order, step size; ``"time"``: whether a step ends
#: on or past an output or landing time), so benchmarks can check that round-off cannot move a count
#: (``benchmarks.metrics.decision_margins``).
DECISION_HOOK: Callable[[str, float], None] | None = None


def record(kind: str, margin: float) -> None:
    """Report a decision's margin to :data:`DECISION_HOOK` (no-op when unset)."""
    if DECISION_HOOK is not None and math.isfinite(margin):
        DECISION_HOOK(kind, margin)


def rms_norm(x: torch.Tensor) -> float:
    """Root mean square of a tensor, as a Python float."""
    return torch.linalg.vector_norm(x).item() / math.sqrt(x.numel())


def _rms_tensor(x: torch.Tensor) -> torch.Tensor:
    """Root mean square as a 0-d float64 tensor (no read-back)."""
    return torch.linalg.vector_norm(x).double() / math.sqrt(x.numel())


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

    def tensor(self, x: torch.Tensor) -> torch.Tensor:
        """The norm of ``x`` as a 0-d float64 tensor (no read-back)."""
        if self.single:
            return _rms_tensor(x)
        sums = torch.zeros(len(self.sizes), dtype=torch.float64, device=x.device)
        sums.index_add_(0, self.ids, x.double().square())
        return (sums / self.sizes).max().sqrt()

    def __call__(self, x: torch.Tensor) -> float:
        """The norm of ``x``, the leading ``prefix`` entries of a flat state."""
        if self.single:
            return rms_norm(x)
        return self.tensor(x).item()


def initial_step(
    f: Callable[[float | torch.Tensor, torch.Tensor], torch.Tensor],
    t0: float,
    y0: torch.Tensor,
    f0: torch.Tensor,
    order: int,
    rtol: float | torch.Tensor,
    atol: float | torch.Tensor,
    direction: float,
    norm: Callable | None = None,
    prefix: int | None = None,
    read: bool = True,
) -> float | tuple[torch.Tensor, torch.Tensor]:
    """The two-evaluation starting step of Hairer, Nørsett & Wanner (Sec. II.4), as torchdiffeq.

    Computed on the state's device and read back once, together with a check that ``f0`` is finite
    (with ``read=False``: not read back; ``(h, f0 finite)`` as 0-d float64 tensors, for the caller to
    read with its next read-back; ``t0`` and ``direction`` may then be 0-d tensors).

    Arguments:
        f: the flat right-hand side ``f(t, y)`` (``t`` a float or a 0-d tensor); evaluated once here.
        t0, y0, f0: start time, flat state and ``f(t0, y0)``.
        order: the error estimate's order (torchdiffeq passes the method's order minus one).
        direction: +1 or -1.
        norm, prefix: the error norm and the number of leading entries it looks at (None: RMS, all).
    Returns:
        the magnitude of the first step (positive).
    Raises:
        SolverError: ``f0`` is not finite.
    """
    m = prefix
    ys, fs = (y0, f0) if m is None else (y0[:m], f0[:m])
    scale = ys.abs().mul_(rtol).add_(atol)
    if norm is None or isinstance(norm, BlockNorm):  # a norm that can stay on the device
        nt = _rms_tensor if norm is None else norm.tensor
        d0, d1 = nt(ys / scale), nt(fs / scale)
        h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1)
        y1 = torch.add(y0, f0 * (direction * h0).to(f0.dtype))
        f1 = f(t0 + direction * h0, y1)
        df = f1 - f0 if m is None else f1[:m] - fs
        d2 = nt(df / scale) / h0
        dm = torch.maximum(d1, d2)
        h1 = torch.where(dm <= 1e-15, torch.clamp(h0 * 1e-3, min=1e-6), (0.01 / dm) ** (1.0 / (order + 1)))
        pair = torch.stack([torch.minimum(100 * h0, h1), torch.isfinite(f0).all().double()])
        if not read:
            return pair[0], pair[1]
        h, finite = pair.tolist()
        if not finite:
            raise SolverError(t0, "non-finite derivative", "func(t0, y0) is not finite")
        return h
    if not bool(torch.isfinite(f0).all()):  # a caller's norm: floats, one read per norm
        raise SolverError(t0, "non-finite derivative", "func(t0, y0) is not finite")
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


class ErrorRatio:
    """The error of a step in units of the tolerance: ``||err / (rtol max(|y0|, |y1|) + atol)|| * |h|``.

    One read-back per step. Keeps ``|y|`` of the current state between steps (one ``abs`` per step).

    Arguments:
        rtol, atol: floats, or flat tensors over the ``prefix`` entries the norm sees.
        norm: the error norm (None: RMS over the whole state).
        y0: the flat initial state.
    """

    def __init__(self, rtol, atol, norm, y0: torch.Tensor) -> None:
        self.rtol, self.atol, self.norm = rtol, atol, norm
        self.m = None if norm is None else norm.prefix
        self.sqrt_n = math.sqrt(y0.numel() if self.m is None else self.m)
        self.reset(y0)
        self._pending: torch.Tensor | None = None

    def reset(self, y: torch.Tensor) -> None:
        """The state changed without a step (start, jump)."""
        y = y.detach() if y.requires_grad else y
        self.abs_y = (y if self.m is None else y[: self.m]).abs()

    def __call__(
        self, err: torch.Tensor, y1: torch.Tensor, h: float, probe: torch.Tensor | None = None
    ) -> float:
        """The ratio (one read); a ``probe`` (0-d tensor) is read with it into :attr:`probe_value`."""
        m = self.m
        with torch.no_grad():
            y1d = y1.detach() if y1.requires_grad else y1
            abs_y1 = (y1d if m is None else y1d[:m]).abs()
            tol = torch.maximum(self.abs_y, abs_y1).mul_(self.rtol).add_(self.atol)
            if probe is not None and (m is None or isinstance(self.norm, BlockNorm)):
                nt = torch.linalg.vector_norm(err.div_(tol)) / self.sqrt_n if m is None else (
                    self.norm.tensor(err[:m].div_(tol)))  # fmt: skip
                value, self.probe_value = torch.stack([nt.double(), probe.double()]).tolist()
                ratio = value * abs(h)
            elif m is None:
                ratio = torch.linalg.vector_norm(err.div_(tol)).item() * abs(h) / self.sqrt_n
            else:
                ratio = self.norm(err[:m].div_(tol)) * abs(h)
                if probe is not None:  # a caller's norm reads on its own
                    self.probe_value = probe.item()
        self._pending = abs_y1
        return ratio

    def tensor(self, err: torch.Tensor, y1: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """As calling it, for a 0-d tensor ``h``, without the read-back: a 0-d float64 tensor."""
        m = self.m
        with torch.no_grad():
            y1d = y1.detach() if m is None else y1.detach()[:m]
            abs_y1 = y1d.abs()
            tol = torch.maximum(self.abs_y, abs_y1).mul_(self.rtol).add_(self.atol)
            if m is None:
                ratio = torch.linalg.vector_norm(err.div_(tol)).double() * h.abs() / self.sqrt_n
            else:
                ratio = self.norm.tensor(err[:m].div_(tol)) * h.abs()
        self._pending = abs_y1
        return ratio

    def accept(self) -> None:
        """The step just measured was accepted: its ``|y1|`` is the next step's ``|y0|``."""
        self.abs_y = self._pending


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

    def accept(self, ratio: float) -> bool:
        """Whether a step with this error ratio is accepted (NaN is not)."""
        if DECISION_HOOK is not None:
            record("ratio", abs(ratio - 1.0))
        return ratio <= 1.0

    def next_step(self, h: float, ratio: float, proposal: float | None = None) -> float:
        """Propose the next step size from the error ratio of the step of size ``h``.

        A method that chooses its own step passes its ``proposal``, which is taken as it is. A
        non-finite ratio shrinks the step by ``dfactor``.
        """
        if proposal is not None:
            return proposal
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


class Landings:
    """The times steps must end on, in the direction of integration, and those where the state jumps.

    Arguments:
        times: every landing time (``step_t``, ``jump_t``, the adjoint's output times, the end for
            methods that land on it), in any order.
        jumps: the subset where the derivative is re-evaluated just past the time (``jump_t``).
        t0, direction: start and direction of the solve (times not past ``t0`` are dropped).
    """

    def __init__(self, times, jumps, t0: float, direction: float) -> None:
        d = direction
        self.d = d
        self.times = sorted({x for x in times if (x - t0) * d > 0}, key=lambda x: x * d)
        self.jumps = set(jumps)
        self.i = 0

    def next(self, t: float) -> float | None:
        """The first landing time strictly past ``t`` (None: none left)."""
        while self.i < len(self.times) and (self.times[self.i] - t) * self.d <= 0:
            self.i += 1
        return self.times[self.i] if self.i < len(self.times) else None

    def clip(self, t: float, h: float) -> tuple[float, float, bool]:
        """``(t1, h, clipped)``: the step ``t -> t + h``, shortened to end on the next landing time."""
        t1 = t + h
        stop = self.next(t)
        if stop is None:
            return t1, h, False
        record("time", abs(t1 - stop) / abs(h))
        if (t1 - stop) * self.d >= 0:
            return stop, stop - t, True
        return t1, h, False


def nudge(t: float, toward: float, t_dtype: torch.dtype) -> float:
    """The time next to ``t`` toward ``toward`` in the time dtype (torchdiffeq's ``perturb``).

    ``t`` and ``toward`` may be 0-d tensors (a step not yet read back): the result is then one too.
    """
    if isinstance(t, torch.Tensor):
        return torch.nextafter(t.to(t_dtype), toward.to(t_dtype)).double()
    if t_dtype == torch.float64:
        return math.nextafter(t, toward)
    if t_dtype == torch.float32:
        return float(np.nextafter(np.float32(t), np.float32(toward)))
    tt = torch.tensor(t, dtype=t_dtype)
    return float(torch.nextafter(tt, torch.tensor(toward, dtype=t_dtype)))
