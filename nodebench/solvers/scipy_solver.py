"""``method="scipy_solver"``: torchdiffeq's wrapper of ``scipy.integrate.solve_ivp``.

As torchdiffeq 0.2.5's ``_impl/scipy_wrapper.py``: the state goes to NumPy (float64), ``solve_ivp``
integrates with ``options["solver"]`` (default ``"LSODA"``), ``rtol``, ``atol``, ``min_step`` and
``max_step``, and reports the state at the output times. Nothing is recorded for autograd: the
result of ``odeint`` does not require grad (``odeint_adjoint`` still differentiates, by solving the
adjoint system with scipy as well). Unlike torchdiffeq, decreasing times integrate backwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from nodebench.solvers.errors import SolverError

SCIPY_OPTIONS = {"solver", "min_step", "max_step", "dtype"}
SCIPY_METHODS = ("LSODA", "RK45", "RK23", "DOP853", "Radau", "BDF")


@dataclass(frozen=True)
class ScipyMethod:
    """The ``scipy_solver`` method (adaptive: it takes ``rtol`` and ``atol``)."""

    name: str = "scipy_solver"
    order: int = 5
    adaptive: bool = True


SCIPY = ScipyMethod()


def _np_tol(tol) -> float | np.ndarray:
    return tol.detach().cpu().double().numpy() if isinstance(tol, torch.Tensor) else float(tol)


def solve_scipy(
    f: Callable[[float, torch.Tensor], torch.Tensor], y0: torch.Tensor, ts: list[float], rtol, atol, opts
) -> list[torch.Tensor]:
    """Integrate the flat state ``y0`` through ``ts`` with ``scipy.integrate.solve_ivp``."""
    from scipy.integrate import solve_ivp  # scipy comes with torchdiffeq; imported only when used

    dtype, device = y0.dtype, y0.device

    def fun(t: float, y: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = f(float(t), torch.from_numpy(y).to(device=device, dtype=dtype))
        return out.detach().reshape(-1).cpu().double().numpy()

    kwargs = {"max_step": opts.max_step}
    if opts.solver == "LSODA":
        kwargs["min_step"] = opts.min_step
    sol = solve_ivp(
        fun,
        (ts[0], ts[-1]),
        y0.detach().reshape(-1).cpu().double().numpy(),
        method=opts.solver,
        t_eval=np.asarray(ts),
        rtol=_np_tol(rtol),
        atol=_np_tol(atol),
        **kwargs,
    )
    if not sol.success or sol.y.shape[1] != len(ts):
        t_fail = float(sol.t[-1]) if len(sol.t) else ts[0]
        raise SolverError(t_fail, "scipy solve_ivp failed", str(sol.message))
    ys = torch.from_numpy(sol.y.T.copy()).to(device=device, dtype=dtype)
    return [y0.detach()] + [ys[i] for i in range(1, len(ts))]
