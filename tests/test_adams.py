"""method="adams": variable-step variable-order Adams–Bashforth–Moulton (PECE) against the matrix
exponential, scipy's LSODA and dopri5; gradients (direct and adjoint); counts; bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import torch

from nodebench import SolverError, odeint, odeint_adjoint, solver_stats
from tests.problems import LinearField, rel_error

A_NONNORMAL = [[-0.1, -1.0, 0.3], [1.0, -0.1, 0.0], [0.2, 0.5, -0.4]]
OSC = [[-0.1, 2.0], [-2.0, -0.1]]  # issue 13's damped oscillator, y0 = (2, 0) on [0, 25]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("decreasing", [False, True])
@pytest.mark.parametrize("shape", [(3,), (2, 3), (4, 5, 3)])
def test_linear_against_matrix_exponential(dtype, decreasing, shape):
    A = torch.tensor(A_NONNORMAL, dtype=torch.float64)
    y0 = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0.1, 0.6, 1.3, 2.0, 3.7], dtype=torch.float64)
    t = t.flip(0) if decreasing else t
    tol = 1e-9 if dtype == torch.float64 else 1e-5
    y = odeint(LinearField(A).to(dtype), y0.to(dtype), t.to(dtype), method="adams", rtol=tol, atol=tol)
    exact = torch.stack([y0 @ torch.linalg.matrix_exp(A * (ti - t[0])).T for ti in t])
    assert y.dtype == dtype and y.shape == (len(t), *shape)
    assert torch.equal(y[0], y0.to(dtype))
    # Threshold policy of `nodebench check`: 100 rtol + 1e3 eps.
    assert rel_error(y, exact) <= 100 * tol + 1e3 * torch.finfo(dtype).eps


def _oscillator(method: str, tol: float, t_out: int = 2) -> tuple[float, int, dict]:
    A = torch.tensor(OSC, dtype=torch.float64)
    y0 = torch.tensor([2.0, 0.0], dtype=torch.float64)
    t = torch.linspace(0.0, 25.0, t_out, dtype=torch.float64)
    with solver_stats() as stats:
        y = odeint(lambda t, y: A @ y, y0, t, method=method, rtol=tol, atol=tol)
    exact = torch.stack([torch.linalg.matrix_exp(A * ti) @ y0 for ti in t])
    return (y - exact).abs().max().item(), stats.nfe_forward, stats.as_dict()


def _lsoda_nfe(tol: float) -> tuple[float, int]:
    A = np.array(OSC)
    sol = scipy.integrate.solve_ivp(
        lambda t, y: A @ y, (0.0, 25.0), [2.0, 0.0], method="LSODA", rtol=tol, atol=tol
    )
    exact = scipy.linalg.expm(A * 25.0) @ np.array([2.0, 0.0])
    return float(np.abs(sol.y[:, -1] - exact).max()), int(sol.nfev)


def test_error_falls_as_tolerance_tightens():
    errs = [_oscillator("adams", tol)[0] for tol in (1e-4, 1e-6, 1e-8, 1e-10)]
    for tol, err in zip((1e-4, 1e-6, 1e-8, 1e-10), errs):
        assert err <= 30 * tol, (tol, err)  # global error over four periods; dopri5: 9 tol at 1e-6
    # Every 100-fold tightening gains at least a factor 10 in the global error.
    assert all(b <= a / 10 for a, b in zip(errs[:-1], errs[1:])), errs


@pytest.mark.parametrize("tol", [1e-8, 1e-10])
def test_nfe_against_lsoda_and_dopri5(tol):
    err, nfe, _ = _oscillator("adams", tol)
    lsoda_err, lsoda_nfe = _lsoda_nfe(tol)
    # Issue 13: 747 / 931 LSODA evaluations; a Shampine–Gordon Adams code is in the same league.
    assert nfe <= 1.3 * lsoda_nfe, (nfe, lsoda_nfe)
    assert err <= 3 * max(lsoda_err, tol), (err, lsoda_err)
    if tol == 1e-8:
        dopri_err, dopri_nfe, _ = _oscillator("dopri5", tol)
        assert nfe <= 0.5 * dopri_nfe and err <= 3 * dopri_err, (nfe, dopri_nfe, err, dopri_err)


def test_counts_are_those_of_pece():
    """One evaluation at the start, two per accepted step, one per rejected step; reported = counted."""
    calls = [0]
    A = torch.tensor(A_NONNORMAL)

    def f(t, y):
        calls[0] += 1
        return y @ A.T

    # A rough first step forces rejections, so both kinds of step are counted.
    y0 = torch.ones(2, 3)
    with solver_stats() as stats:
        odeint(
            f, y0, torch.linspace(0, 3, 7), method="adams", rtol=1e-7, atol=1e-9, options={"first_step": 0.5}
        )
    assert stats.nfe_forward == calls[0]
    assert stats.steps_rejected > 0
    assert stats.nfe_forward == 1 + 2 * stats.steps_accepted + stats.steps_rejected


def test_dense_output_at_many_times():
    err, nfe, _ = _oscillator("adams", 1e-9, t_out=200)
    err_two, nfe_two, _ = _oscillator("adams", 1e-9, t_out=2)
    assert nfe == nfe_two  # output times do not change the steps
    assert err <= 100 * 1e-9


@pytest.mark.parametrize("mode", ["odeint", "adjoint", "adjoint-dopri5-back", "dopri5-forward"])
def test_gradients_against_matrix_exponential(mode):
    A = torch.tensor(A_NONNORMAL, requires_grad=True)
    y0 = torch.tensor([[1.0, 0.5, -0.3], [0.2, -1.0, 0.8]], requires_grad=True)
    t = torch.tensor([0.1, 0.6, 1.3, 2.0], requires_grad=True)
    w = torch.randn(len(t), 2, 3, generator=torch.Generator().manual_seed(2))
    exact = torch.stack([y0 @ torch.linalg.matrix_exp(A * (ti - t[0])).T for ti in t])
    ref = torch.autograd.grad((exact * w).sum(), (A, y0, t))
    func = LinearField(A.detach())
    kw = {"rtol": 1e-10, "atol": 1e-12}
    if mode == "odeint":
        y = odeint(func, y0, t, method="adams", **kw)
    elif mode == "adjoint":
        y = odeint_adjoint(func, y0, t, method="adams", **kw)
    elif mode == "adjoint-dopri5-back":
        y = odeint_adjoint(func, y0, t, method="adams", adjoint_method="dopri5", **kw)
    else:
        y = odeint_adjoint(func, y0, t, method="dopri5", adjoint_method="adams", **kw)
    got = torch.autograd.grad((y * w).sum(), (func.A, y0, t))
    for g, r, name in zip(got, ref, ["A", "y0", "t"]):
        assert rel_error(g, r) <= 1e-7, name


@pytest.mark.parametrize("max_order", [1, 2, 12])
def test_max_order_caps_the_order(max_order):
    """Lower order caps cost more evaluations and stay within tolerance."""
    A = torch.tensor(OSC, dtype=torch.float64)
    y0 = torch.tensor([2.0, 0.0], dtype=torch.float64)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    nfe = {}
    for mo in (max_order, 12):
        with solver_stats() as stats:
            y = odeint(
                lambda t, y: A @ y, y0, t, method="adams", rtol=1e-4, atol=1e-4, options={"max_order": mo}
            )
        nfe[mo] = stats.nfe_forward
        assert (y[-1] - torch.linalg.matrix_exp(A * 2.0) @ y0).abs().max() <= 1e-3
    if max_order < 12:
        assert nfe[max_order] > 1.5 * nfe[12]


@pytest.mark.parametrize(
    "options, match",
    [
        ({"max_order": 0}, "max_order"),
        ({"max_order": 13}, "max_order"),
        ({"max_order": 2.0}, "max_order"),
        ({"safety": 0.9}, "unknown option"),
        ({"step_size": 0.1}, "unknown option"),
        ({"first_step": -1.0}, "first_step"),
    ],
)
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        odeint(lambda t, y: -y, torch.ones(2), torch.tensor([0.0, 1.0]), method="adams", options=options)


def test_failures_are_solver_errors():
    t = torch.tensor([0.0, 2.0])
    with pytest.raises(SolverError, match="max_num_steps") as info:
        odeint(lambda t, y: -y, torch.ones(2), t, method="adams", options={"max_num_steps": 3})
    assert 0.0 <= info.value.t < 2.0
    # y' = y^2 from 1 blows up at t = 1.
    with pytest.raises(SolverError) as info:
        odeint(lambda t, y: y * y, torch.ones(1), t, method="adams")
    assert info.value.reason in ("step size underflow", "non-finite derivative", "max_num_steps exceeded")
    assert abs(info.value.t - 1.0) < 1e-2
    with pytest.raises(SolverError, match="non-finite derivative"):
        odeint(lambda t, y: y * math.nan, torch.ones(1), t, method="adams")


def test_step_t_lands_steps():
    """adams lands on step_t (the loop's landings, as for every method); jump_t is not offered."""
    ends = []

    def f(t, y):
        ends.append(float(t))
        return -y

    y0 = torch.ones(1, dtype=torch.float64)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    y = odeint(f, y0, t, method="adams", rtol=1e-9, atol=1e-11, options={"step_t": [0.7, 1.3]})
    assert abs(y[-1].item() - math.exp(-2.0)) < 1e-8
    assert 0.7 in ends and 1.3 in ends  # steps end there (the corrector evaluates at the step's end)
    with pytest.raises(ValueError, match="unknown option"):
        odeint(f, y0, t, method="adams", options={"jump_t": [1.0]})
