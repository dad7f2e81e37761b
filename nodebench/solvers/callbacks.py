"""torchdiffeq's step callbacks: methods of ``func`` that the loop calls around each step.

A ``func`` (an ``nn.Module`` or any object) may define

- ``callback_step(t0, y0, dt)``: before every attempted step;
- ``callback_accept_step(t0, y0, dt)``: after a step is accepted;
- ``callback_reject_step(t0, y0, dt)``: after a step is rejected;

and the same names with ``_adjoint`` appended, which ``odeint_adjoint`` calls around the steps of its
backward solve. The arguments are torchdiffeq's: ``t0`` the step's start (a 0-d tensor of the time
dtype, the real time also when time decreases), ``y0`` the state there in the caller's kind (a tuple
for tuple states; in the backward solve the tuple ``(vjp_t, y, adj_y, *adj_params)``), ``dt`` the
step's size (a positive 0-d tensor in either direction, as torchdiffeq passes it; for
``callback_step`` before the step is clipped to a landing time, for accept/reject after). A method
that cannot call a callback the ``func`` defines says so in a warning, as torchdiffeq does: fixed-grid
methods call only ``callback_step`` (every step is accepted), ``scipy_solver`` none.

Costs: nothing when ``func`` defines no callback (the loop holds ``None``); otherwise two small
host-to-device copies per call (``t0``, ``dt``) and no read-back of its own. On an accelerator a solve
with callbacks reads its output times and first step size before the first step instead of folding
them into that step's read (:data:`~nodebench.solvers.integrate.FOLD_FIRST_READ`): two reads more per
solve, as on a CPU. Per-sample step control calls no callback (it warns).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

#: The callbacks the loop knows, in torchdiffeq's names.
NAMES = ("callback_step", "callback_accept_step", "callback_reject_step")
#: Their backward-solve counterparts (``odeint_adjoint``).
ADJOINT_NAMES = tuple(f"{name}_adjoint" for name in NAMES)


@dataclass
class Callbacks:
    """The callbacks of one solve, with the map from the core's flat state to the caller's.

    Attributes:
        step, accept, reject: the callables (None where ``func`` does not define one).
        view: flat state -> what the callbacks receive as ``y0``.
        t_dtype, device: of the times they receive.
    """

    step: Callable | None
    accept: Callable | None
    reject: Callable | None
    view: Callable[[torch.Tensor], Any]
    t_dtype: torch.dtype
    device: torch.device

    def _call(self, fn: Callable, t: float, y: torch.Tensor, h: float) -> None:
        scalar = torch.scalar_tensor
        fn(scalar(t, dtype=self.t_dtype, device=self.device), self.view(y),
           scalar(abs(h), dtype=self.t_dtype, device=self.device))  # fmt: skip

    def on_step(self, t: float, y: torch.Tensor, h: float) -> None:
        if self.step is not None:
            self._call(self.step, t, y, h)

    def on_accept(self, t: float, y: torch.Tensor, h: float) -> None:
        if self.accept is not None:
            self._call(self.accept, t, y, h)

    def on_reject(self, t: float, y: torch.Tensor, h: float) -> None:
        if self.reject is not None:
            self._call(self.reject, t, y, h)


def defined(func: Any, names: tuple[str, ...] = NAMES) -> dict[str, Callable]:
    """The callbacks among ``names`` that ``func`` defines (name -> callable)."""
    found = {}
    for name in names:
        fn = getattr(func, name, None)
        if fn is not None:
            if not callable(fn):
                raise TypeError(
                    f"func.{name} must be callable as {name}(t0, y0, dt), got {type(fn).__name__}"
                )
            found[name] = fn
    return found


def supported(method: Any) -> frozenset[str]:
    """The callbacks the loop calls for ``method``: all three for adaptive methods the loop steps,
    ``callback_step`` on a fixed grid, none for a method that steps itself (scipy)."""
    if getattr(method, "self_stepping", False):
        return frozenset()
    return frozenset(NAMES) if method.adaptive else frozenset({"callback_step"})


def select(func: Any, method: Any, adjoint: bool = False) -> dict[str, Callable]:
    """The callbacks ``func`` defines that the loop calls for ``method`` (by their forward names).

    ``adjoint``: look for the ``_adjoint`` names (the backward solve). A callback the method cannot
    call is dropped with a warning naming it, as torchdiffeq warns.
    """
    found = defined(func, ADJOINT_NAMES if adjoint else NAMES)
    ok = supported(method)
    base = {name: name.removesuffix("_adjoint") for name in found}
    dropped = sorted(name for name in found if base[name] not in ok)
    if dropped:
        warnings.warn(
            f"Solver '{method.name}' does not support callbacks {set(dropped)}: they are not called "
            f"({'fixed-grid methods call only callback_step' if ok else 'it chooses its own steps'})",
            stacklevel=4,
        )
    return {base[name]: fn for name, fn in found.items() if base[name] in ok}


def make(
    chosen: dict[str, Callable],
    view: Callable[[torch.Tensor], Any],
    t_dtype: torch.dtype,
    device: torch.device,
) -> Callbacks | None:
    """:class:`Callbacks` from :func:`select`'s choice (None if empty)."""
    if not chosen:
        return None
    return Callbacks(
        chosen.get("callback_step"),
        chosen.get("callback_accept_step"),
        chosen.get("callback_reject_step"),
        view,
        t_dtype,
        device,
    )
