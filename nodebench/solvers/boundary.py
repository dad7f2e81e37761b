"""The API boundary: torchdiffeq's kinds of state, mapped onto the one flat real vector the core solves.

A tuple of tensors is concatenated; a complex tensor is viewed as real pairs; a float16/bfloat16 state
is carried in float32 (see :data:`LOW_PRECISION`). ``func`` still sees, and returns, the caller's kind of
state. Tensor tolerances become one flat tensor; torchdiffeq's default mixed norm for tuples (the
largest RMS over the components) becomes a :class:`BlockNorm`; a caller's ``norm`` sees the caller's
state. A plain real tensor of float32/float64 is passed through untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from nodebench.solvers.controller import BlockNorm

# States of these dtypes are integrated in float32 and returned in their own dtype; a tolerance finer
# than the dtype's epsilon is refused (func computes in that dtype, so its output is no more precise).
LOW_PRECISION = (torch.float16, torch.bfloat16)


class UserNorm:
    """A caller's ``norm`` (on the caller's kind of state) as a norm on the core's flat state."""

    def __init__(self, fn: Callable[[Any], Any], restore: Callable[[torch.Tensor], Any], n: int) -> None:
        self.fn, self.restore, self.prefix = fn, restore, n

    def __call__(self, x: torch.Tensor) -> float:
        value = self.fn(self.restore(x))
        return float(value.item() if isinstance(value, torch.Tensor) else value)


@dataclass
class State:
    """How the caller's state maps onto a flat real vector.

    Attributes:
        is_tuple: the caller gave a tuple of tensors.
        shapes: each component's shape (one entry for a single tensor).
        dtype: the caller's dtype (complex, low precision or ordinary real).
        work: the real dtype the core integrates in.
        plain: a real float32/float64 tensor: nothing to flatten, the core sees the caller's tensor.
    """

    is_tuple: bool
    shapes: list[torch.Size]
    dtype: torch.dtype
    work: torch.dtype
    plain: bool

    @property
    def is_complex(self) -> bool:
        return self.dtype.is_complex

    @property
    def sizes(self) -> list[int]:
        """Flat real entries per component."""
        k = 2 if self.is_complex else 1
        return [k * math.prod(s) for s in self.shapes]

    @property
    def n(self) -> int:
        return sum(self.sizes)

    def _flat_one(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_complex:
            x = torch.view_as_real(x.resolve_conj())
        return x.reshape(-1).to(self.work)

    def flatten(self, y: Any) -> torch.Tensor:
        """The caller's state (or derivative) as the flat real vector."""
        if self.plain:
            return y
        parts = y if self.is_tuple else (y,)
        return torch.cat([self._flat_one(p) for p in parts])

    def restore(self, flat: torch.Tensor, lead: tuple[int, ...] = ()) -> Any:
        """The caller's kind of state from ``flat`` (shape ``(*lead, n)``)."""
        if self.plain:
            return flat
        out = []
        for part, shape in zip(torch.split(flat, self.sizes, dim=-1), self.shapes):
            if self.is_complex:
                part = torch.view_as_complex(part.reshape(*lead, *shape, 2).contiguous())
            else:
                part = part.reshape((*lead, *shape)).to(self.dtype)
            out.append(part)
        return tuple(out) if self.is_tuple else out[0]

    def wrap(self, func: Callable) -> Callable:
        """``func`` on the caller's state as a function of the flat state, with its output checked."""
        if self.plain:
            return func

        def flat_func(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            out = func(t, self.restore(y))
            return self.flatten(self.check_output(out))

        return flat_func

    def check_output(self, out: Any) -> Any:
        """``func``'s output checked against the state (shapes, a tuple like it) and cast to its dtype
        where ``func`` returned another floating (or complex) dtype, as torchdiffeq computes on."""
        parts = out if self.is_tuple else (out,)
        if self.is_tuple and (not isinstance(out, tuple) or len(out) != len(self.shapes)):
            raise TypeError(
                f"func must return a tuple of {len(self.shapes)} tensors like y0, got {type(out).__name__}"
            )
        for i, (p, shape) in enumerate(zip(parts, self.shapes)):
            where = f"func's output[{i}]" if self.is_tuple else "func's output"
            if not isinstance(p, torch.Tensor):
                raise TypeError(f"{where} must be a torch.Tensor, got {type(p).__name__}")
            if p.shape != shape:
                raise ValueError(f"{where} has shape {tuple(p.shape)} but the state has shape {tuple(shape)}")
            if p.dtype != self.dtype and not (
                (p.dtype.is_floating_point and self.dtype.is_floating_point)
                or (p.is_complex() and self.dtype.is_complex)
            ):
                raise TypeError(f"{where} has dtype {p.dtype} but the state has dtype {self.dtype}")
        if any(p.dtype != self.dtype for p in parts):
            parts = tuple(p.to(self.dtype) for p in parts)
            return parts if self.is_tuple else parts[0]
        return out

    def tolerance(self, name: str, tol: Any, device: torch.device) -> float | torch.Tensor:
        """A scalar tolerance as a float, a per-component one as a flat tensor over the state."""
        if isinstance(tol, (tuple, list)):
            if not self.is_tuple or len(tol) != len(self.shapes):
                raise ValueError(f"{name}: a tuple of tolerances needs a tuple state of the same length")
            parts = [_scalar_or_tensor(f"{name}[{i}]", x) for i, x in enumerate(tol)]
        else:
            one = _scalar_or_tensor(name, tol)
            if isinstance(one, float):
                return one
            parts = [one] * len(self.shapes)
        if all(isinstance(p, float) for p in parts) and len(set(parts)) == 1:
            return parts[0]
        flat = []
        for p, shape in zip(parts, self.shapes):
            p = torch.as_tensor(p, dtype=torch.float64)
            try:
                p = torch.broadcast_to(p.cpu(), shape)
            except RuntimeError:
                raise ValueError(
                    f"{name}: a tensor of shape {tuple(p.shape)} does not broadcast to the state's "
                    f"shape {tuple(shape)}"
                ) from None
            if self.is_complex:
                p = p.unsqueeze(-1).expand(*shape, 2)
            flat.append(p.reshape(-1))
        return torch.cat(flat).to(device=device, dtype=self.work)

    def norm(self, user: Callable | None, device: torch.device) -> BlockNorm | UserNorm | None:
        """The forward error norm: the caller's, torchdiffeq's mixed norm for tuples, else RMS (None)."""
        if user is not None:
            if self.plain:  # the caller's shape (a 0-d state's norm sees shape (), as in torchdiffeq)
                shape = self.shapes[0]
                return UserNorm(user, lambda x: x.view(shape), self.n)
            return UserNorm(user, self.restore, self.n)
        if self.is_tuple and len(self.shapes) > 1:
            return BlockNorm(self.sizes, device)
        return None


def _scalar_or_tensor(name: str, tol: Any) -> float | torch.Tensor:
    if isinstance(tol, torch.Tensor):
        if tol.requires_grad:
            raise ValueError(f"{name} must not require grad")
        if not (tol.dtype.is_floating_point or tol.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"{name} must be a real tensor, got dtype {tol.dtype}")
        if tol.is_meta:
            raise ValueError(f"{name} is on the meta device: tolerances need values")
        if tol.numel() == 1:
            tol = tol.item()
        else:
            values = tol.detach().cpu().double()
            if not torch.isfinite(values).all() or (values < 0).any():
                raise ValueError(f"{name} must be non-negative and finite everywhere")
            return values
    if isinstance(tol, bool) or not isinstance(tol, (int, float)):
        raise TypeError(f"{name} must be a non-negative float or tensor, got {type(tol).__name__}")
    tol = float(tol)
    if not math.isfinite(tol) or tol < 0:
        raise ValueError(f"{name} must be non-negative and finite, got {tol}")
    return tol


def describe(y0: Any, name: str = "y0") -> State:
    """Validate the caller's state (a tensor or a tuple of tensors) and say how it maps to flat."""
    is_tuple = isinstance(y0, tuple)
    parts = y0 if is_tuple else (y0,)
    if is_tuple and len(parts) == 0:
        raise ValueError(f"{name} must not be an empty tuple")
    for i, p in enumerate(parts):
        where = f"{name}[{i}]" if is_tuple else name
        if not isinstance(p, torch.Tensor):
            kind = "a torch.Tensor or a tuple of tensors" if not is_tuple else "a torch.Tensor"
            raise TypeError(f"{where} must be {kind}, got {type(p).__name__}")
        if not (torch.is_floating_point(p) or p.is_complex()):
            raise TypeError(f"{where} must be a floating-point or complex tensor, got dtype {p.dtype}")
        if p.is_meta:
            raise ValueError(
                f"{where} is on the meta device, which holds shapes but no values; a solve needs values "
                "(use cpu or cuda)"
            )
        if p.dtype != parts[0].dtype:
            raise TypeError(
                f"{name}: every component must have one dtype, got {parts[0].dtype} and {p.dtype}"
            )
        if p.device != parts[0].device:
            raise ValueError(
                f"{name}: every component must be on one device, got {parts[0].device} and {p.device}"
            )
    if sum(p.numel() for p in parts) == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(parts[0].shape)}")
    dtype = parts[0].dtype
    if dtype.is_complex:
        work = torch.float64 if dtype == torch.complex128 else torch.float32
        if dtype not in (torch.complex64, torch.complex128):
            raise TypeError(f"{name}: complex dtype {dtype} is not supported; use complex64 or complex128")
    elif dtype in LOW_PRECISION:
        work = torch.float32
    else:
        work = dtype
    plain = not is_tuple and not dtype.is_complex and dtype not in LOW_PRECISION
    return State(is_tuple, [p.shape for p in parts], dtype, work, plain)


def check_low_precision(state: State, rtol: float | torch.Tensor, adaptive: bool) -> None:
    """Refuse a relative tolerance finer than a low-precision state's epsilon (see :data:`LOW_PRECISION`)."""
    if state.dtype not in LOW_PRECISION or not adaptive:
        return
    eps = torch.finfo(state.dtype).eps
    smallest = float(rtol.min()) if isinstance(rtol, torch.Tensor) else rtol
    if smallest < eps:
        raise ValueError(
            f"rtol={smallest:g} is finer than {state.dtype} can resolve (eps = {eps:g}): func computes in "
            f"{state.dtype}, so no step can be shown to meet it. Pass rtol >= {eps:g} or give y0 as float32"
        )
