"""scipy's Fortran multistep codes as a reference peer: LSODA (ODEPACK) and VODE (Adams mode).

The paper solved with LSODE-family Adams methods through scipy; these are their descendants in scipy:
``LSODA`` (``scipy.integrate.solve_ivp(method="LSODA")``: Adams, switching to BDF if it detects
stiffness) and ``VODE`` (``scipy.integrate.ode("vode", method="adams")``: variable-coefficient Adams).
Both run on the flattened float64 state with the same ``rtol``/``atol`` semantics as nodebench (ODEPACK's
weights ``rtol |y| + atol``, RMS norm), integrate without going past the last output time (``tcrit``)
and interpolate at the output times. NFE is counted by wrapping the function, as for the other
libraries (Jacobian evaluations by differences, if LSODA switches to BDF, count too). No gradients.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

SCIPY_METHODS = ("lsoda", "vode")


def solve_scipy(
    func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y0: torch.Tensor,
    t: torch.Tensor,
    method: str,
    rtol: float,
    atol: float,
    max_steps: int = 100_000,
) -> tuple[torch.Tensor, int]:
    """Solve ``dy/dt = func(t, y)`` with scipy's ``method`` at the times ``t``.

    Arguments:
        func: ``func(t, y)`` on float64 tensors of ``y0``'s shape (evaluated without gradients).
        y0, t: initial state and 1-D monotone output times.
        method: ``"lsoda"`` or ``"vode"``.
        rtol, atol: tolerances.
        max_steps: the Fortran codes' step limit.
    Returns:
        ``(y, nfe)``: the states at ``t`` (shape ``(len(t), *y0.shape)``, ``y0``'s dtype and device) and
        the number of evaluations of ``func``.
    Raises:
        ValueError: unknown ``method``. RuntimeError: the Fortran code reported failure.
    """
    if method not in SCIPY_METHODS:
        raise ValueError(f"method: scipy peer methods are {SCIPY_METHODS}, got {method!r}")
    from scipy.integrate import ode, solve_ivp

    shape, dev = y0.shape, y0.device
    ts = t.detach().double().cpu().numpy()
    nfe = [0]

    def rhs(tt: float, y: np.ndarray) -> np.ndarray:
        nfe[0] += 1
        with torch.no_grad():
            state = torch.as_tensor(y, dtype=torch.float64).reshape(shape).to(dev)
            out = func(torch.tensor(tt, dtype=torch.float64, device=dev), state)
        return out.reshape(-1).double().cpu().numpy()

    start = y0.detach().double().cpu().reshape(-1).numpy()
    if method == "lsoda":
        sol = solve_ivp(rhs, (ts[0], ts[-1]), start, "LSODA", t_eval=ts, rtol=rtol, atol=atol)
        if not sol.success:
            raise RuntimeError(f"scipy LSODA failed: {sol.message}")
        ys = sol.y.T
    else:
        r = ode(rhs).set_integrator("vode", method="adams", rtol=rtol, atol=atol, nsteps=max_steps)
        r.set_initial_value(start, ts[0])
        rows = [start]
        for ti in ts[1:]:
            rows.append(r.integrate(ti))
            if not r.successful():
                raise RuntimeError(f"scipy VODE failed at t={r.t:.10g} (status {r.get_return_code()})")
        ys = np.stack(rows)
    y = torch.as_tensor(ys, dtype=torch.float64).reshape(len(ts), *shape).to(dtype=y0.dtype, device=dev)
    return y, nfe[0]


def solve_scipy_stiff(
    func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y0: torch.Tensor,
    t: torch.Tensor,
    method: str,
    rtol: float,
    atol: float,
) -> tuple[torch.Tensor, dict[str, int]]:
    """Solve with scipy's stiff solver ``method`` (``"Radau"``, ``"BDF"``, ``"LSODA"``) through
    ``solve_ivp``, given the exact Jacobian by autograd (so that no evaluation goes to finite differences).

    Returns:
        ``(y, counts)``: the states at ``t`` (float64, ``y0``'s shape per time) and ``{"nfe", "jacobians",
        "factorizations"}`` as scipy reports them (``nfev``, ``njev``, ``nlu``).
    Raises:
        RuntimeError: scipy reported failure.
    """
    from scipy.integrate import solve_ivp

    shape = y0.shape

    def rhs(tt: float, y: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return (
                func(torch.tensor(tt, dtype=torch.float64), torch.as_tensor(y).reshape(shape))
                .reshape(-1)
                .numpy()
            )

    def jac(tt: float, y: np.ndarray) -> np.ndarray:
        t_ = torch.tensor(tt, dtype=torch.float64)
        J = torch.func.jacrev(lambda x: func(t_, x.reshape(shape)).reshape(-1))(torch.as_tensor(y))
        return J.detach().numpy()

    ts = t.detach().double().cpu().numpy()
    start = y0.detach().double().cpu().reshape(-1).numpy()
    sol = solve_ivp(rhs, (ts[0], ts[-1]), start, method, t_eval=ts, jac=jac, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"scipy {method} failed: {sol.message}")
    y = torch.as_tensor(sol.y.T).reshape(len(ts), *shape)
    return y, {"nfe": int(sol.nfev), "jacobians": int(sol.njev), "factorizations": int(sol.nlu)}
