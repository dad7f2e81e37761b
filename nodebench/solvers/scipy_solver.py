"""``method="scipy_solver"``: torchdiffeq's wrapper of scipy's solvers, stepped by nodebench's loop.

As torchdiffeq 0.2.5's ``_impl/scipy_wrapper.py``: the state goes to NumPy (float64) and one of
``scipy.integrate``'s solvers (``options["solver"]``, default ``"LSODA"``) integrates with ``rtol``,
``atol``, ``min_step`` and ``max_step``. Where torchdiffeq calls ``solve_ivp``, this drives the same
solver object one step at a time (``solver.step()``, as ``solve_ivp`` does internally) and evaluates
its dense output at the output times exactly as ``solve_ivp(t_eval=...)`` does, so the numbers are
the same; the loop owns the rest, which gives scipy events (``odeint_event``) and step statistics.
scipy chooses where each step ends (its own controller, its own rejections, which are not counted).
Nothing is recorded for autograd: the result of ``odeint`` does not require grad (``odeint_adjoint``
still differentiates, by solving the adjoint system with scipy as well). Decreasing times
integrate backwards (scipy's solvers take a decreasing span; torchdiffeq negates time instead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nodebench.solvers.errors import SolverError
from nodebench.solvers.method import Method, Step

SCIPY_OPTIONS = frozenset({"solver", "min_step", "max_step", "dtype", "max_num_steps", "lband", "uband"})
SCIPY_METHODS = ("LSODA", "RK45", "RK23", "DOP853", "Radau", "BDF")


def _np_tol(tol) -> float | np.ndarray:
    return tol.detach().cpu().double().numpy() if isinstance(tol, torch.Tensor) else float(tol)


#: The absolute tolerance that takes an entry out of scipy's error test: its weight
#: ``rtol * |y| + atol`` is then so large that the entry's error counts as zero.
IGNORED_ATOL = 1e300


def _seminorm_atol(cfg: Any, size: int) -> float | np.ndarray:
    """``atol`` for scipy, with the entries past the error norm's ``prefix`` (the adjoint's parameter
    channels under the seminorm) out of the error test: scipy's solvers take per-entry tolerances but no
    norm, so this is how they honour a seminorm."""
    atol = _np_tol(cfg.atol)
    if cfg.prefix is None or cfg.prefix >= size:
        return atol
    full = np.broadcast_to(np.asarray(atol, dtype=float), (size,)).copy()
    full[cfg.prefix :] = IGNORED_ATOL
    return full


@dataclass
class _State:
    solver: Any
    dtype: torch.dtype
    device: torch.device
    t0: float
    first: bool = True  # solve_ivp evaluates t0 with the first step's outputs


class ScipySolver(Method):
    """``scipy_solver``: a scipy ``OdeSolver`` behind the :class:`~nodebench.solvers.method.Method`
    interface (it chooses its own steps; see the module docstring)."""

    name = "scipy_solver"
    order = 5
    adaptive = True
    option_names = SCIPY_OPTIONS
    self_stepping = True
    differentiable = False

    def init(self, f, t0, y0, cfg):
        from scipy.integrate import BDF, DOP853, LSODA, RK23, RK45, Radau  # imported only when used

        classes = {"LSODA": LSODA, "RK45": RK45, "RK23": RK23, "DOP853": DOP853, "Radau": Radau, "BDF": BDF}
        dtype, device = y0.dtype, y0.device

        def fun(t: float, y: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                out = f(float(t), torch.from_numpy(y).to(device=device, dtype=dtype))
            return np.asarray(out.detach().reshape(-1).cpu().double().numpy(), dtype=float)

        opts = cfg.opts
        kwargs = {"max_step": opts.max_step}
        if opts.solver == "LSODA":
            kwargs["min_step"] = opts.min_step
            kwargs |= {k: v for k, v in (("lband", opts.lband), ("uband", opts.uband)) if v is not None}
        # An event search has no final time: scipy needs a finite bound, the largest float will do.
        t_bound = cfg.t_end if math.isfinite(cfg.t_end) else math.copysign(np.finfo(float).max, cfg.direction)
        solver = classes[opts.solver](
            fun,
            t0,
            y0.detach().reshape(-1).cpu().double().numpy(),
            t_bound,
            rtol=_np_tol(cfg.rtol),
            atol=_seminorm_atol(cfg, y0.numel()),
            **kwargs,
        )
        return _State(solver, dtype, device, t0)

    def initial_step(self, st, direction, span):
        return math.inf  # unused: scipy chooses its own steps

    def step(self, st, t, h, t1):
        solver = st.solver
        y0 = self._tensor(st, solver.y)
        message = solver.step()
        if solver.status == "failed":
            raise SolverError(solver.t, "scipy solver failed", str(message))
        return Step(
            solver.t_old, solver.t, solver.t - solver.t_old, y0, self._tensor(st, solver.y), accepted=True
        )

    @staticmethod
    def _tensor(st: _State, y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(y, dtype=np.float64)).to(device=st.device, dtype=st.dtype)

    def outputs(self, st, step, times):
        times = ([st.t0] if st.first else []) + list(times)  # as solve_ivp(t_eval=...) asks
        ys = st.solver.dense_output()(np.asarray(times))
        cols = [self._tensor(st, ys[:, i]) for i in range(ys.shape[1])]
        return cols[1:] if st.first else cols

    def dense(self, st, step, t):
        return self._tensor(st, st.solver.dense_output()(t))

    def advance(self, st, step):
        st.first = False


SCIPY = ScipySolver()
