"""The correctness matrix behind ``nodebench check``.

Every problem of :data:`~nodebench.reference.problems.PROBLEMS` is solved by nodebench with every
method, in both modes (``odeint``: backpropagation through the solver; ``odeint_adjoint``: Algorithm 1
with the seminorm), in float64 and float32. Each case gives rows ``(problem, method, mode, dtype,
quantity, max_rel_error, threshold, passed)``; an error is ``max|a - b| / max(max|b|, tiny)`` with ``b``
the reference. Gradients are those of ``L = sum(w * y)`` for fixed random weights ``w`` on all outputs.

Quantities:

- ``solution / grad y0 / grad params vs analytic``: against the closed form and autograd through it;
  ``grad t vs analytic`` from a second solve with ``t.requires_grad``. Nonlinear problems are compared
  ``vs reference``: torchdiffeq's dopri5 in float64 at ``rtol = atol = 1e-12``, backpropagated (an
  independent implementation; 1e-11 from the closed forms of the analytic problems).
- ``... vs torchdiffeq``: torchdiffeq 0.2.5 with the same method, tolerances, options and mode (the
  methods both have: euler, midpoint, rk4, bosh3, dopri5). Its adjoint runs with
  :func:`~nodebench.reference.torchdiffeq_adapter.state_seminorm`, nodebench's seminorm, because
  torchdiffeq's own ``"seminorm"`` also controls the time-gradient channel (see the adapter).
- ``nfe forward / nfe backward vs torchdiffeq``: relative difference of the evaluations of ``func``,
  counted by the same wrapper for both libraries.
- ``nfe reported vs counted``: nodebench's :func:`~nodebench.solver_stats` against the wrapper.
- ``... vs scipy lsoda / vode`` (``adams``, float64, ``odeint`` mode): scipy's Fortran Adams codes
  (:mod:`~nodebench.reference.scipy_peer`), descendants of the LSODE the paper used, as a peer for
  nodebench's own Adams method: the solution (threshold as against torchdiffeq) and the ratio of the
  forward NFE, ``nfe / nfe_scipy`` (the column holds the ratio), which passes up to ``NFE_SCIPY``.
- ``gradcheck`` (float64): directional derivatives of ``L`` along two seeded random unit directions in
  ``(y0, parameters)`` against central differences, on the first three output times; the row passes
  only if ``torch.autograd.gradcheck`` (fast mode, same step, element-wise ``atol = threshold *
  max|grad|``) passes too.

- Implicit methods (issue 26): ``radau``, ``bdf``, ``ndf`` and the nine fixed-grid implicit Runge–Kutta
  methods get every row above that applies (torchdiffeq 0.2.5 has none of them: no torchdiffeq rows;
  torchdiffeq HEAD's fixed-grid ones are compared in ``tests/test_implicit.py``). ``nfe reported vs
  counted`` adds the Jacobians to the reported NFE: autograd calls ``func`` once per Jacobian, which
  nodebench counts as a Jacobian. Stiff rows (float64, ``odeint``, rtol ``STIFF_RTOL`` = 1e-6, atol from
  the problem): ``radau``/``bdf``/``ndf`` on every problem of ``STIFF_PROBLEMS``, the solution at every
  output time against the closed form or scipy's Radau at rtol 1e-12 (threshold ``K_STIFF`` = 30 rtol),
  and the forward NFE over that of scipy's Radau (radau) or BDF (bdf, ndf) at the same tolerances with
  the exact Jacobian (the column holds the ratio; passes up to ``NFE_SCIPY_STIFF`` = 2).

Threshold policy (``eps``: the dtype's machine epsilon; ``R = 1e3``; ``rtol``: the solve's):

- Tolerances: float64 ``rtol = 1e-8, atol = 1e-10`` (bosh3, of order 3, ``1e-6, 1e-8`` to keep its step
  count near dopri5's); float32 ``rtol = 1e-5, atol = 1e-7``.
- Adaptive methods against the truth: solutions ``100 rtol + R eps``, gradients ``300 rtol + R eps``.
  Local error control does not bound the global error by ``rtol``; on these O(1) problems the largest
  errors seen are 8 ``rtol`` (solutions) and 70 ``rtol`` (gradients, which add the adjoint's or the
  backpropagated error and are relative to a scale with cancellations).
- Fixed-grid methods of order ``p`` with step ``h`` (``Problem.step_size``) against the truth:
  ``C h**p + R eps`` with the problem's ``C`` (``Problem.fixed_c``), one constant for euler, midpoint and
  rk4, solutions and gradients: three times the largest ``error / h**p`` measured, rounded up.
- Fixed-grid implicit methods add ``k rtol`` to ``C h**p`` (their stage solves stop at a tolerance from
  ``rtol``; in float32 this is what their errors are made of, the high orders' ``C h**p`` being tiny);
  their gradcheck runs at ``tol = GRADCHECK_TOL_IMPLICIT_FIXED`` = 1e-9 as for an adaptive method.
- Against torchdiffeq on a fixed grid: ``R eps``; grid and tableau are the same, so only rounding
  differs. Adaptive: as against the truth. bosh3 adds ``10 rtol**(2/3)``: torchdiffeq fits its quartic
  interpolant through ``y0 + h/2 k2`` as the midpoint value, which is first-order (local error
  ``h**2 y''/8``), so with ``h ~ rtol**(1/3)`` its outputs between steps err by about ``rtol**(2/3)``
  (0.2 to 1.0 of it measured for rtol 1e-4 to 1e-8; nodebench's cubic Hermite stays within ``rtol``).
- NFE against torchdiffeq: relative difference at most 0.2 (adaptive backward passes: only an excess
  counts, since nodebench's does not restart at every output time as torchdiffeq's does); in float32,
  adaptive methods may also differ by two steps' evaluations (rounding flips accept/reject decisions
  whose error ratio is near 1, and float32 runs take few steps). Reported against counted: exactly equal.
- gradcheck at solve tolerance ``tol``: the step ``eps_fd = tol**(1/3)`` balances the truncation
  ``eps_fd**2`` against the noise ``tol / eps_fd`` (adaptive step choices jump with the inputs), so the
  threshold is ``100 tol**(2/3)``. dopri5 and tsit5 run at ``tol = 1e-9``, bosh3 at ``1e-7``, both modes.
  Backpropagation on a fixed grid is the exact derivative of the discrete map: ``tol = eps``. The
  adjoint on a fixed grid discretises the adjoint ODE, so it is not the derivative of the discrete
  forward map and has no gradcheck row; its gradients are checked against the truth with ``C h**p``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from nodebench.reference.problems import PROBLEMS, STIFF_PROBLEMS, Problem
from nodebench.reference.scipy_peer import SCIPY_METHODS, solve_scipy, solve_scipy_stiff
from nodebench.reference.torchdiffeq_adapter import MODES, TORCHDIFFEQ_METHODS, solve, state_seminorm
from nodebench.solvers import odeint, solver_stats
from nodebench.solvers.registry import METHODS

COLUMNS = ["problem", "method", "mode", "dtype", "quantity", "max_rel_error", "threshold", "passed"]
DTYPES = {"float64": torch.float64, "float32": torch.float32}
# (rtol, atol) per dtype, with per-method exceptions.
TOLERANCES = {
    torch.float64: {"default": (1e-8, 1e-10), "bosh3": (1e-6, 1e-8)},
    torch.float32: {"default": (1e-5, 1e-7)},
}
K_SOLUTION = 100.0
K_GRADIENT = 300.0
ROUNDOFF = 1e3
BOSH3_INTERP = 10.0
NFE_RELATIVE = 0.2
NFE_FLOAT32_STEPS = 2  # float32 rounding may flip this many accept/reject decisions
REFERENCE_TOL = 1e-12
GRADCHECK_TOL = {"bosh3": 1e-7, "dopri5": 1e-9, "tsit5": 1e-9, "adams": 1e-9, "radau": 1e-9, "bdf": 1e-9,
                 "ndf": 1e-9}  # fmt: skip
#: gradcheck of the fixed-grid implicit methods: their Newton solves stop at a tolerance, so the step is
#: chosen as for an adaptive method at this tolerance (solves at rtol = atol = it).
GRADCHECK_TOL_IMPLICIT_FIXED = 1e-9
#: Stiff rows (float64, odeint): rtol of the solves, error threshold in units of it, NFE ratio to scipy.
STIFF_RTOL = 1e-6
K_STIFF = 30.0
NFE_SCIPY_STIFF = 2.0
STIFF_PEERS = {"radau": "Radau", "bdf": "BDF", "ndf": "BDF"}
NFE_SCIPY = 2.0  # adams may need up to twice the evaluations of scipy's LSODA / VODE
GRADCHECK_DIRECTIONS = 2
GRADCHECK_TIMES = 3  # the first output times only: two intervals
K_GRADCHECK = 100.0
TINY = 1e-300


@dataclass(frozen=True)
class Selection:
    """Which part of the matrix to run."""

    problems: tuple[str, ...]
    methods: tuple[str, ...]
    dtypes: tuple[str, ...]
    stiff: tuple[str, ...] = ()  # stiff problems, for the implicit adaptive methods among ``methods``


# The methods the matrix was calibrated for (thresholds, gradcheck tolerances); the other tableaus are
# checked against torchdiffeq in tests/test_torchdiffeq_compat.py.
CHECKED_METHODS = (
    "euler", "midpoint", "rk4", "bosh3", "dopri5", "tsit5", "adams",
    # issue 26: the implicit methods
    "radau", "bdf", "ndf", "implicit_euler", "implicit_midpoint", "trapezoid", "gl4", "gl6", "radauIIA3",
    "radauIIA5", "sdirk2", "trbdf2",
)  # fmt: skip
FULL = Selection(tuple(PROBLEMS), CHECKED_METHODS, tuple(DTYPES), tuple(STIFF_PROBLEMS))
QUICK = Selection(("linear", "cubic_spiral"), ("rk4", "dopri5", "tsit5"), ("float64",))


@dataclass
class _Outcome:
    """A solve's solution, gradients of ``L`` and evaluation counts."""

    y: torch.Tensor
    grads: dict[str, torch.Tensor]
    nfe: dict[str, int]
    reported: dict[str, int]


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max|a - b| / max(max|b|, tiny)`` in float64.

    Arguments:
        a: the value under test.
        b: the reference, same shape.
    Returns:
        the maximum relative error.
    """
    a, b = a.detach().double(), b.detach().double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(TINY)).item()


def tolerances(method: str, dtype: torch.dtype) -> tuple[float, float]:
    """``(rtol, atol)`` of the check's solves."""
    table = TOLERANCES[dtype]
    return table.get(method, table["default"])


def _options(problem: Problem, method: str) -> dict[str, Any] | None:
    return {"step_size": problem.step_size} if _fixed(method) else None


def _fixed(method: str) -> bool:
    return not METHODS[method].adaptive


def _weights(problem: Problem, device: torch.device) -> torch.Tensor:
    _, y0, t = problem.make(torch.float64, device)
    gen = torch.Generator().manual_seed(0)
    return torch.randn(len(t), *y0.shape, generator=gen, dtype=torch.float64).to(device)


def _grads(
    loss: torch.Tensor, y0: torch.Tensor, func: nn.Module, t: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    params = list(func.parameters())
    inputs = [y0, *params] + ([t] if t is not None else [])
    g = torch.autograd.grad(loss, inputs)
    out = {"y0": g[0], "params": torch.cat([x.reshape(-1) for x in g[1 : 1 + len(params)]])}
    if t is not None:
        out["t"] = g[-1]
    return out


def _truth(problem: Problem, w: torch.Tensor, device: torch.device) -> _Outcome:
    """The float64 truth: the closed form, or torchdiffeq's dopri5 at ``REFERENCE_TOL``."""
    func, y0, t = problem.make(torch.float64, device)
    y0.requires_grad_(True)
    if problem.exact is not None:
        t.requires_grad_(True)
        y = problem.exact(func, y0, t)
    else:
        y, _ = solve("torchdiffeq", "odeint", func, y0, t, "dopri5", REFERENCE_TOL, REFERENCE_TOL)
    grads = _grads((w * y).sum(), y0, func, t if problem.exact is not None else None)
    return _Outcome(y.detach(), grads, {}, {})


def _run(
    library: str,
    mode: str,
    problem: Problem,
    method: str,
    dtype: torch.dtype,
    w: torch.Tensor,
    device: torch.device,
    t_grad: bool = False,
) -> _Outcome:
    """Solve ``problem`` with one library and differentiate ``L`` (and ``t`` where asked)."""
    func, y0, t = problem.make(dtype, device)
    y0.requires_grad_(True)
    t.requires_grad_(t_grad)
    rtol, atol = tolerances(method, dtype)
    norm = state_seminorm if library == "torchdiffeq" else "seminorm"
    with solver_stats() as reported:
        y, nfe = solve(library, mode, func, y0, t, method, rtol, atol, _options(problem, method), norm)
        grads = _grads((w.to(dtype) * y).sum(), y0, func, t if t_grad else None)
    return _Outcome(y.detach(), grads, dict(nfe), reported.as_dict())


def _roundoff(dtype: torch.dtype) -> float:
    return ROUNDOFF * torch.finfo(dtype).eps


def _vs_truth(problem: Problem, method: str, dtype: torch.dtype, k: float) -> float:
    """Threshold against the truth: ``k * rtol`` (adaptive) or ``C * h**p`` (fixed grid), plus rounding."""
    if _fixed(method):
        bound = problem.fixed_c * problem.step_size ** METHODS[method].order
        if METHODS[method].implicit:  # the stage solves stop at a tolerance from rtol
            bound += k * tolerances(method, dtype)[0]
    else:
        bound = k * tolerances(method, dtype)[0]
    return bound + _roundoff(dtype)


def _vs_torchdiffeq(method: str, dtype: torch.dtype, k: float) -> float:
    """Threshold against torchdiffeq: rounding (fixed grid) or ``k * rtol`` (adaptive; see module doc)."""
    if _fixed(method):
        return _roundoff(dtype)
    rtol = tolerances(method, dtype)[0]
    extra = BOSH3_INTERP * rtol ** (2 / 3) if method == "bosh3" else 0.0
    return k * rtol + extra + _roundoff(dtype)


def _nfe_rel(a: int, b: int) -> float:
    return abs(a - b) / max(b, 1)


def _nfe_threshold(method: str, dtype: torch.dtype, nfe: int) -> float:
    """20%; in float32, at least ``NFE_FLOAT32_STEPS`` steps' evaluations of an adaptive method."""
    tableau = METHODS[method].tableau
    if dtype == torch.float64 or not tableau.adaptive:
        return NFE_RELATIVE
    per_step = tableau.stages - (1 if tableau.fsal else 0)
    return max(NFE_RELATIVE, NFE_FLOAT32_STEPS * per_step / max(nfe, 1))


def _case(
    problem: Problem,
    method: str,
    mode: str,
    dtype: torch.dtype,
    truth: _Outcome,
    w: torch.Tensor,
    dev: torch.device,
) -> Iterator[tuple[str, float, float]]:
    """``(quantity, error, threshold)`` for one problem, method, mode and dtype."""
    ours = _run("nodebench", mode, problem, method, dtype, w, dev)
    label = "analytic" if problem.exact is not None else "reference"
    yield f"solution vs {label}", rel_error(ours.y, truth.y), _vs_truth(problem, method, dtype, K_SOLUTION)
    for key in ("y0", "params"):
        err = rel_error(ours.grads[key], truth.grads[key])
        yield f"grad {key} vs {label}", err, _vs_truth(problem, method, dtype, K_GRADIENT)
    if problem.exact is not None:
        timed = _run("nodebench", mode, problem, method, dtype, w, dev, t_grad=True)
        err = rel_error(timed.grads["t"], truth.grads["t"])
        yield "grad t vs analytic", err, _vs_truth(problem, method, dtype, K_GRADIENT)
    counted = (ours.nfe["nfe_forward"], ours.nfe["nfe_backward"])
    # An autograd Jacobian calls func once; nodebench counts it as a Jacobian, not an evaluation.
    r = ours.reported
    reported = (r["nfe_forward"] + r["jacobians"], r["nfe_backward"] + r["jacobians_backward"])
    yield "nfe reported vs counted", max(_nfe_rel(r, c) for r, c in zip(reported, counted)), 0.0
    if method == "adams" and dtype == torch.float64 and mode == "odeint":
        func, y0, t = problem.make(dtype, dev)
        rtol, atol = tolerances(method, dtype)
        for peer in SCIPY_METHODS:
            y, nfe = solve_scipy(func, y0, t, peer, rtol, atol)
            yield (
                f"solution vs scipy {peer}",
                rel_error(ours.y, y),
                _vs_torchdiffeq(method, dtype, K_SOLUTION),
            )
            yield f"nfe forward ratio to scipy {peer}", ours.nfe["nfe_forward"] / nfe, NFE_SCIPY
    if method not in TORCHDIFFEQ_METHODS:
        return
    theirs = _run("torchdiffeq", mode, problem, method, dtype, w, dev)
    yield "solution vs torchdiffeq", rel_error(ours.y, theirs.y), _vs_torchdiffeq(method, dtype, K_SOLUTION)
    for key in ("y0", "params"):
        err = rel_error(ours.grads[key], theirs.grads[key])
        yield f"grad {key} vs torchdiffeq", err, _vs_torchdiffeq(method, dtype, K_GRADIENT)
    phases = ("forward", "backward") if mode == "odeint_adjoint" else ("forward",)
    for phase in phases:
        key = f"nfe_{phase}"
        err = _nfe_rel(ours.nfe[key], theirs.nfe[key])
        if phase == "backward" and not _fixed(method):  # no restarts: fewer is no error
            err = max(0.0, ours.nfe[key] - theirs.nfe[key]) / max(theirs.nfe[key], 1)
        yield f"nfe {phase} vs torchdiffeq", err, _nfe_threshold(method, dtype, theirs.nfe[key])


def _gradcheck_setting(problem: Problem, method: str) -> tuple[float, dict[str, Any] | None]:
    """``(tol, options)`` of a gradcheck (see the module docstring)."""
    if _fixed(method):
        if METHODS[method].implicit:
            return GRADCHECK_TOL_IMPLICIT_FIXED, _options(problem, method)
        return torch.finfo(torch.float64).eps, _options(problem, method)
    return GRADCHECK_TOL[method], None


def _gradcheck(
    problem: Problem, method: str, mode: str, w: torch.Tensor, dev: torch.device
) -> tuple[float, float, bool]:
    """Directional derivatives of ``L`` against central differences, and ``torch.autograd.gradcheck``.

    Returns:
        ``(error, threshold, passed)``: the largest error over a few random unit directions in
        ``(y0, params)``, relative to the largest directional derivative; its threshold; and whether
        ``torch.autograd.gradcheck`` (fast mode, same step, element-wise tolerance) passed.
    """
    func, y0, t = problem.make(torch.float64, dev)
    t, w = t[:GRADCHECK_TIMES], w[:GRADCHECK_TIMES]
    names = [n for n, _ in func.named_parameters()]
    inputs = [y0, *(p.detach() for p in func.parameters())]
    tol, options = _gradcheck_setting(problem, method)
    eps = tol ** (1 / 3)
    threshold = K_GRADCHECK * tol ** (2 / 3)

    def loss(*xs: torch.Tensor) -> torch.Tensor:
        params = dict(zip(names, xs[1:]))

        def f(tt: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(func, params, (tt, y))

        y, _ = solve("nodebench", mode, f, xs[0], t, method, tol, tol, options, adjoint_params=xs[1:])
        return (w * y).sum()

    xs = [x.clone().requires_grad_(True) for x in inputs]
    grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss(*xs), xs)])
    x = torch.cat([v.reshape(-1) for v in inputs])
    gen = torch.Generator().manual_seed(1)
    analytic, numeric = [], []
    with torch.no_grad():
        for _ in range(GRADCHECK_DIRECTIONS):
            u = torch.randn(x.numel(), generator=gen, dtype=x.dtype).to(dev)
            u /= u.norm()
            ends = [torch.split(x + s * eps * u, [v.numel() for v in inputs]) for s in (1.0, -1.0)]
            plus, minus = ([p.view_as(v) for p, v in zip(e, inputs)] for e in ends)
            numeric.append((loss(*plus) - loss(*minus)) / (2 * eps))
            analytic.append(grad @ u)
    ok = torch.autograd.gradcheck(
        loss,
        xs,
        eps=eps,
        atol=threshold * grad.abs().max().item(),
        rtol=0.0,
        fast_mode=True,
        raise_exception=False,
    )
    return rel_error(torch.stack(analytic), torch.stack(numeric)), threshold, bool(ok)


def _stiff_case(name: str, method: str, dev: torch.device) -> Iterator[tuple[str, float, float]]:
    """The stiff rows of ``method`` on stiff problem ``name`` (float64, ``odeint``, no gradients)."""
    problem = STIFF_PROBLEMS[name]
    func, y0, t = problem.make(torch.float64, dev)
    rtol, atol = STIFF_RTOL, STIFF_RTOL * problem.atol_factor
    with torch.no_grad():
        if problem.exact is not None:
            truth, label = problem.exact(func, y0, t), "analytic"
        else:
            truth, label = solve_scipy_stiff(func, y0, t, "Radau", 1e-12, 1e-16)[0], "scipy Radau at 1e-12"
        with solver_stats() as stats:
            y = odeint(func, y0, t, method, rtol, atol)
        peer = STIFF_PEERS[method]
        _, counts = solve_scipy_stiff(func, y0, t, peer, rtol, atol)
    yield f"stiff solution vs {label}", rel_error(y, truth.to(y)), K_STIFF * rtol
    yield f"stiff nfe ratio to scipy {peer}", stats.nfe_forward / counts["nfe"], NFE_SCIPY_STIFF


class DeviceUnavailable(RuntimeError):
    """The requested device cannot be used."""


def _device(device: str) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable(
            f"--device {device}: CUDA is not available here (torch {torch.__version__}, "
            f"built with CUDA {torch.version.cuda}); run with --device cpu"
        )
    return dev


def run_matrix(device: str = "cpu", quick: bool = False) -> pd.DataFrame:
    """Run the correctness matrix (see the module docstring for the rows and thresholds).

    Arguments:
        device: ``"cpu"`` or ``"cuda"`` (or ``"cuda:N"``).
        quick: run the :data:`QUICK` subset instead of :data:`FULL`.
    Returns:
        one row per check, with the columns :data:`COLUMNS`.
    Raises:
        DeviceUnavailable: ``device`` is CUDA and CUDA is not available.
    """
    dev = _device(device)
    sel = QUICK if quick else FULL
    rows = []

    def add(key: tuple[str, str, str, str], quantity: str, err: float, thr: float, ok: bool = True) -> None:
        rows.append((*key, quantity, err, thr, bool(ok and math.isfinite(err) and err <= thr)))

    for name in sel.problems:
        problem = PROBLEMS[name]
        w = _weights(problem, dev)
        truth = _truth(problem, w, dev)
        for dname in sel.dtypes:
            for method in sel.methods:
                for mode in MODES:
                    key = (name, method, mode, dname)
                    try:  # a solve that fails (SolverError, a torch error) is a failed row, not a crash
                        for quantity, err, thr in _case(problem, method, mode, DTYPES[dname], truth, w, dev):
                            add(key, quantity, err, thr)
                        if dname == "float64" and (mode == "odeint" or not _fixed(method)):
                            err, thr, ok = _gradcheck(problem, method, mode, w, dev)
                            add(key, "gradcheck", err, thr, ok)
                    except RuntimeError as exc:
                        add(key, f"raised {type(exc).__name__}: {exc}"[:100], math.nan, math.nan)
    if "float64" in sel.dtypes:
        for name in sel.stiff:
            for method in (m for m in sel.methods if m in STIFF_PEERS):
                key = (name, method, "odeint", "float64")
                try:
                    for quantity, err, thr in _stiff_case(name, method, dev):
                        add(key, quantity, err, thr)
                except RuntimeError as exc:
                    add(key, f"raised {type(exc).__name__}: {exc}"[:100], math.nan, math.nan)
    return pd.DataFrame(rows, columns=COLUMNS)


def main(device: str = "cpu", quick: bool = False) -> int:
    """``nodebench check``: print the matrix and a summary; non-zero exit status if any row fails.

    Arguments:
        device: ``"cpu"`` or ``"cuda"``.
        quick: the reduced matrix.
    Returns:
        0 if every row passed, 1 if any failed, 2 if the device is not available.
    """
    start = time.perf_counter()
    try:
        table = run_matrix(device=device, quick=quick)
    except DeviceUnavailable as exc:
        print(f"nodebench check: {exc}", file=sys.stderr)
        return 2
    for name in table["problem"].unique():
        print(f"{name}: {(PROBLEMS.get(name) or STIFF_PROBLEMS[name]).description}")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.2e}"))
    failed = int((~table["passed"]).sum())
    passed = len(table) - failed
    elapsed = time.perf_counter() - start
    print(f"{passed} passed, {failed} failed ({'quick' if quick else 'full'} matrix, {elapsed:.1f} s)")
    return 1 if failed else 0
