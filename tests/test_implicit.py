"""Implicit methods (issue 26): the fixed-grid implicit Runge–Kutta family, radau, bdf and ndf.

Orders on a linear problem, stiff solves against scipy's stiff solvers, gradients through ``odeint``
and ``odeint_adjoint``, the Newton bookkeeping (Jacobians, factorisations, iterations) and bad input.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from nodebench import SolverError, odeint, odeint_adjoint, solver_stats
from nodebench.reference.problems import PROBLEMS, STIFF_PROBLEMS, Robertson, StiffLinear
from nodebench.reference.scipy_peer import solve_scipy_stiff
from nodebench.solvers.implicit_tableaus import FIXED_IMPLICIT, RADAU_IIA5
from nodebench.solvers.registry import METHODS

FIXED = sorted(FIXED_IMPLICIT)
ADAPTIVE = ("radau", "bdf", "ndf")
CPU = torch.device("cpu")


def _slope(hs: list[float], errors: list[float]) -> float:
    return float(np.polyfit(np.log(hs), np.log(errors), 1)[0])


def _mild_linear() -> tuple[StiffLinear, torch.Tensor, torch.Tensor]:
    """A non-stiff, time-dependent member of the stiff linear family (closed form): orders show."""
    func = StiffLinear(lam=(2.0, 1.0, 0.5))
    y0 = torch.tensor([[1.0, -0.5, 0.25]])
    return func, y0, torch.tensor([0.0, 1.0])


# -- orders -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXED)
def test_fixed_grid_order_on_a_linear_problem(name):
    """Log-log slope of the error at t = 1 against the step: the tableau's order (gl4 included, whose
    nodes torchdiffeq HEAD gets wrong: a time-dependent problem would show it)."""
    func, y0, t = _mild_linear()
    order = FIXED_IMPLICIT[name].order
    hs = [2.0**-k for k in ((2, 3, 4) if order >= 5 else (3, 4, 5, 6))]
    with torch.no_grad():
        exact = func.exact(y0, t)[-1]
        errors = [
            (odeint(func, y0, t, method=name, rtol=1e-13, atol=1e-13, options={"step_size": h})[-1] - exact)
            .abs()
            .max()
            .item()
            for h in hs
        ]
    assert abs(_slope(hs, errors) - order) < 0.3, (errors, _slope(hs, errors))


def test_radau_order_five_at_fixed_steps():
    """radau with its step pinned (min_step = max_step = h, tolerances loose enough to accept it)."""
    func, y0, t = _mild_linear()
    hs = [2.0**-k for k in (1, 2, 3)]
    with torch.no_grad():
        exact = func.exact(y0, t)[-1]
        errors = []
        for h in hs:
            opts = {"first_step": h, "min_step": h, "max_step": h}
            with solver_stats() as s:
                y = odeint(func, y0, t, method="radau", rtol=1.0, atol=1.0, options=opts)[-1]
            assert s.steps_accepted == round(1 / h) and s.steps_rejected == 0
            errors.append((y - exact).abs().max().item())
    assert abs(_slope(hs, errors) - 5) < 0.4, errors


@pytest.mark.parametrize("name", ADAPTIVE)
def test_adaptive_error_follows_the_tolerance(name):
    """Error against rtol over four decades: a slope near 1 (tolerance proportionality) and the error
    within 50 rtol."""
    func, y0, t = _mild_linear()
    rtols = [1e-4, 1e-5, 1e-6, 1e-7, 1e-8]
    with torch.no_grad():
        exact = func.exact(y0, t)[-1]
        errors = [
            (odeint(func, y0, t, method=name, rtol=r, atol=r)[-1] - exact).abs().max().item() for r in rtols
        ]
    assert all(e < 50 * r for e, r in zip(errors, rtols)), errors
    assert 0.6 < _slope(rtols, errors) < 1.4, errors


# -- stiff solves -----------------------------------------------------------------------------------


def _scipy(func, y0, t, method, rtol, atol):
    y, counts = solve_scipy_stiff(func, y0, t, method, rtol, atol)
    return y, counts["nfe"]


@pytest.mark.parametrize("problem", ["robertson", "stiff_linear", "hires"])
@pytest.mark.parametrize("name", ADAPTIVE)
def test_stiff_solves_against_scipy(problem, name):
    """Solutions at every output time against scipy's Radau at rtol 1e-12 (the closed form for the
    linear system), at rtol 1e-6; NFE (evaluations of f: autograd Jacobians apart for both libraries)
    within twice that of scipy's Radau (radau) or BDF (bdf, ndf) at the same tolerances."""
    p = STIFF_PROBLEMS[problem]
    func, y0, t = p.make(torch.float64, CPU)
    rtol, atol = 1e-6, 1e-6 * p.atol_factor
    with torch.no_grad():
        if p.exact is not None:
            truth = p.exact(func, y0, t)
        else:
            truth, _ = _scipy(func, y0, t, "Radau", 1e-12, 1e-16)
        with solver_stats() as s:
            y = odeint(func, y0, t, method=name, rtol=rtol, atol=atol)
        _, nfe_peer = _scipy(func, y0, t, "Radau" if name == "radau" else "BDF", rtol, atol)
    scale = truth.abs().amax(0) + atol / rtol  # per component: relative, or absolute where tiny
    assert ((y - truth).abs() / scale).max().item() < 30 * rtol
    assert s.nfe_forward <= 2 * nfe_peer, (s.nfe_forward, nfe_peer)
    assert s.jacobians >= 1 and s.factorizations >= 1 and s.newton_iterations >= s.steps_accepted


def test_stiff_van_der_pol_first_relaxation():
    """Van der Pol with mu = 1000 through its first relaxation (t to 1000): radau and ndf against scipy."""
    p = STIFF_PROBLEMS["vdp_stiff"]
    func, y0, _ = p.make(torch.float64, CPU)
    t = torch.tensor([0.0, 400.0, 1000.0])
    with torch.no_grad():
        truth, _ = _scipy(func, y0, t, "Radau", 1e-12, 1e-14)
        for name, peer in (("radau", "Radau"), ("ndf", "BDF")):
            with solver_stats() as s:
                y = odeint(func, y0, t, method=name, rtol=1e-6, atol=1e-9)
            _, nfe_peer = _scipy(func, y0, t, peer, 1e-6, 1e-9)
            assert (y - truth).abs().max().item() < 1e-3
            assert s.nfe_forward <= 2 * nfe_peer


def _stiff_call(method: str, dtype: torch.dtype, **kw):
    return odeint(
        lambda t, y: -1e6 * (y - torch.cos(t)),
        torch.tensor([0.0], dtype=dtype),
        torch.linspace(0, 10, 3, dtype=dtype),
        method=method,
        **kw,
    )


def _stiff_call_truth() -> np.ndarray:
    from scipy.integrate import solve_ivp

    sol = solve_ivp(lambda t, y: -1e6 * (y - np.cos(t)), (0, 10), [0.0], "Radau", t_eval=[0, 5, 10],
                    rtol=1e-13, atol=1e-15, jac=lambda t, y: np.array([[-1e6]]))  # fmt: skip
    return sol.y[0]


@pytest.mark.parametrize("name", ADAPTIVE)
def test_the_issues_stiff_call_is_solved(name):
    """The issue's call, in float64 (float32: below), with the default tolerances: error <= 10 rtol."""
    y = _stiff_call(name, torch.float64)
    truth = _stiff_call_truth()
    assert np.abs(y[:, 0].numpy() - truth).max() / np.abs(truth).max() <= 10 * 1e-7


@pytest.mark.parametrize("name", ["radau", "bdf"])
def test_the_issues_stiff_call_in_float32(name):
    """As the issue typed it (float32 state and times): radau and bdf still meet 10 rtol (rtol is raised
    to 100 float32 eps inside, with a warning, as scipy does)."""
    with pytest.warns(UserWarning, match="rtol 1e-07 is below 100 x the epsilon"):
        y = _stiff_call(name, torch.float32)
    truth = _stiff_call_truth()
    assert np.abs(y[:, 0].double().numpy() - truth).max() / np.abs(truth).max() <= 10 * 1e-7


def test_steps_below_the_time_resolution_stop_clearly():
    """ndf on the float32 call reaches steps float32 times cannot resolve (near t = pi/2, where y crosses
    zero and only atol 1e-9 controls): a SolverError naming it, not a grind."""
    with (
        pytest.raises(SolverError, match="below the resolution of torch.float32 times"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        _stiff_call("ndf", torch.float32)


def test_radau_lands_on_output_times():
    """Its collocation interpolant cannot follow cos t over the long stiff steps: outputs are step ends."""
    calls: list[float] = []

    def f(t, y):
        calls.append(float(t))
        return -1e6 * (y - torch.cos(t))

    odeint(f, torch.tensor([0.0], dtype=torch.float64), torch.tensor([0.0, 5.0, 10.0], dtype=torch.float64),
           method="radau")  # fmt: skip
    assert 5.0 in calls and max(calls) == 10.0


# -- torchdiffeq HEAD -------------------------------------------------------------------------------

# a checkout of torchdiffeq's repository (its HEAD has the fixed-grid implicit methods; 0.2.5 does not)
TORCHDIFFEQ_HEAD = Path(os.environ.get("NODEBENCH_TORCHDIFFEQ_HEAD", "/nonexistent"))

_HEAD_SCRIPT = """
import sys, torch
sys.path.insert(0, sys.argv[1])
import torchdiffeq
torch.set_default_dtype(torch.float64)
A = torch.tensor([[-0.2, 1.5, 2.0], [-1.0, -0.3, 0.5], [0.0, 0.0, -0.5]])
y0 = torch.tensor([[1.0, 0.5, -0.3], [0.2, 0.1, 0.9]])
t = torch.linspace(0, 2, 5)
out = {}
for name in sys.argv[3:]:
    for kind, f in (("autonomous", lambda t, y: y @ A.T), ("forced", lambda t, y: y @ A.T + torch.sin(t))):
        out[name, kind] = torchdiffeq.odeint(f, y0, t, method=name, options={"step_size": 0.05})
        if name == "trapezoid" and kind == "autonomous":
            out[name, "float32"] = torchdiffeq.odeint(
                lambda t, y: y @ A.T.float(), y0.float(), t.float(), method=name, options={"step_size": 0.05})
torch.save(out, sys.argv[2])
"""


@pytest.mark.skipif(
    not (TORCHDIFFEQ_HEAD / "torchdiffeq").is_dir(),
    reason="set NODEBENCH_TORCHDIFFEQ_HEAD to a torchdiffeq checkout",
)
def test_fixed_grid_implicit_methods_match_torchdiffeq_head(tmp_path):
    """Every fixed-grid implicit method against torchdiffeq HEAD (PR #265) on a grid of 0.05, with and
    without a time-dependent forcing: within 1e-7 (float64: both converge their stage equations, to
    torchdiffeq's residual 1e-8 and nodebench's Newton tolerance), except gl4 with forcing, where
    torchdiffeq's nodes are wrong (the error of its solution shows it: nodebench's is smaller)."""
    path = tmp_path / "head.pt"
    script = tmp_path / "head.py"
    script.write_text(_HEAD_SCRIPT)
    env = {**os.environ, "PYTHONPATH": ""}
    subprocess.run(
        [sys.executable, str(script), str(TORCHDIFFEQ_HEAD), str(path), *FIXED], check=True, env=env
    )
    theirs = torch.load(path)
    A = torch.tensor([[-0.2, 1.5, 2.0], [-1.0, -0.3, 0.5], [0.0, 0.0, -0.5]])
    y0 = torch.tensor([[1.0, 0.5, -0.3], [0.2, 0.1, 0.9]])
    t = torch.linspace(0, 2, 5)
    funcs = {"autonomous": lambda t, y: y @ A.T, "forced": lambda t, y: y @ A.T + torch.sin(t)}
    truth = odeint(funcs["forced"], y0, t, method="dopri5", rtol=1e-12, atol=1e-12)
    for name in FIXED:
        for kind, f in funcs.items():
            ours = odeint(f, y0, t, method=name, options={"step_size": 0.05})
            diff = (ours - theirs[name, kind]).abs().max().item()
            if name == "gl4" and kind == "forced":
                assert (ours - truth).abs().max() < 1e-6 < (theirs[name, kind] - truth).abs().max()
            else:
                assert diff < 1e-7, (name, kind, diff)
    ours32 = odeint(lambda t, y: y @ A.T.float(), y0.float(), t.float(), method="trapezoid",
                    options={"step_size": 0.05})  # fmt: skip
    assert (ours32 - theirs["trapezoid", "float32"]).abs().max().item() < 1e-5


def test_fixed_grid_options_are_torchdiffeqs():
    for name in FIXED:
        assert {"step_size", "perturb", "max_iters"} <= METHODS[name].option_names
        assert METHODS[name].option_defaults["max_iters"] == 100


def test_a_newton_iteration_that_cannot_converge_warns_like_torchdiffeq():
    """One huge implicit Euler step through Robertson's transient: max_iters=2 cannot converge; the
    solve warns (once) and goes on, as torchdiffeq's does."""
    func = Robertson()
    with pytest.warns(UserWarning, match=r"did not converge at t=.*of at most 2 iterations"), torch.no_grad():
        odeint(func, torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 2.0]), method="gl6",
               options={"max_iters": 2})  # fmt: skip


class _Sine(torch.nn.Module):
    """torchdiffeq's tests/problems.py SineODE: ``y' = 2y/t + g(t)``, linear in ``y`` with a Jacobian
    ``2/t`` that changes eightfold over the grid."""

    @staticmethod
    def g(t):
        return t**4 * torch.sin(2 * t) - t**2 + 4 * t**3

    def forward(self, t, y):
        return 2 * y / t + self.g(t)


def _sine_problem():
    t = torch.linspace(1, 8, 10, dtype=torch.float64)
    y0 = torch.tensor(-0.5 * math.cos(2.0) + 0.5 * math.sin(2.0) + 0.25 * math.cos(2.0) + 1 + math.pi - 0.25,
                      dtype=torch.float64)  # fmt: skip
    return _Sine(), y0, t


@pytest.mark.parametrize("name", ["implicit_euler", "trapezoid"])
def test_default_tolerances_give_the_discrete_solution(name):
    """At the default tolerances (the Newton iteration's stopping rule, not ``rtol = 1e-13``) a fixed-grid
    method returns its own discrete solution, here in closed form (the steps are linear in ``y``):
    implicit Euler ``y1 (1 - 2h/t1) = y0 + h g(t1)``; the trapezoid
    ``y1 (1 - h/t1) = y0 (1 + h/t0) + h/2 (g(t0) + g(t1))``. An iteration that stopped after one
    increment with a Jacobian from an earlier step (the rate of a previous solve let it) was off by 3e3
    of 1e4 here."""
    func, y0, t = _sine_problem()
    ys = [y0]
    for t0, t1 in zip(t[:-1], t[1:]):
        h = t1 - t0
        if name == "implicit_euler":
            ys.append((ys[-1] + h * func.g(t1)) / (1 - 2 * h / t1))
        else:
            ys.append((ys[-1] * (1 + h / t0) + h / 2 * (func.g(t0) + func.g(t1))) / (1 - h / t1))
    with torch.no_grad():
        ours = odeint(func, y0, t, method=name)
    assert ((ours - torch.stack(ys)).abs() / torch.stack(ys).abs().clamp(min=1)).max().item() < 1e-9


@pytest.mark.parametrize("name", FIXED)
def test_gradcheck_through_odeint_on_torchdiffeqs_sine_problem(name):
    """Mirrors tests/gradient_tests.py::TestGradient::test_odeint (there on its ``constant`` problem,
    whose Jacobian vanishes on the solution): finite differences of the forward solve agree with the
    gradient through the implicit stages, with respect to ``y0`` (``t``'s gradient is the exact
    solution's by design, see ``odeint``)."""
    func, y0, t = _sine_problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Newton iteration may fail on the way
        assert torch.autograd.gradcheck(lambda y: odeint(func, y, t, method=name), (y0.requires_grad_(True),))


@pytest.mark.parametrize("name", ["implicit_euler", "gl4"])
def test_adjoint_backward_solve_converges_at_round_off(name):
    """Mirrors tests/gradient_tests.py::TestGradient::test_adjoint: the backward solve's Newton
    iteration, whose increments reach a few ulps of the stages (an iterate that no longer changes), ends
    converged instead of reading a rate of 1 as divergence and warning at every step."""
    func, y0, t = _sine_problem()
    y0 = y0.requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (g,) = torch.autograd.grad(odeint_adjoint(func, y0, t, method=name)[-1], y0)
    if name == "implicit_euler":  # the backward implicit Euler recursion a_k = a_{k+1} / (1 - 2h/t_k)
        expected = torch.prod(1 / (1 - 2 * (t[1] - t[0]) / t[:-1])).item()  # -377: h 2/t reaches 1.56
    else:  # gl4 (order 4) is near the exact flow's exp(int_1^8 2/t dt) = 64
        expected = 64.0
    assert abs(g.item() - expected) / abs(expected) < 1e-6


# -- Newton bookkeeping -----------------------------------------------------------------------------


class Counted(torch.nn.Module):
    def __init__(self, func) -> None:
        super().__init__()
        self.func, self.calls = func, 0

    def forward(self, t, y):
        self.calls += 1
        return self.func(t, y)


@pytest.mark.parametrize("name", ["radau", "bdf", "gl4", "trbdf2"])
def test_counts_and_a_user_jacobian(name):
    """NFE counts evaluations; each autograd Jacobian calls func once more (counted as a Jacobian).
    With options['jacobian'] no call goes to func for Jacobians, and the solution is the same."""
    p = STIFF_PROBLEMS["robertson"]
    base, y0, _ = p.make(torch.float64, CPU)
    t = torch.tensor([0.0, 1.0, 10.0])
    fixed = {"step_size": 0.01} if not METHODS[name].adaptive else {}
    func = Counted(base)
    with torch.no_grad(), solver_stats() as s:
        y_auto = odeint(func, y0, t, method=name, rtol=1e-6, atol=1e-10, options=fixed)
    assert func.calls == s.nfe_forward + s.jacobians
    assert s.jacobians >= 1 and s.factorizations >= s.jacobians and s.newton_iterations > 0

    def jac(tt, y):
        return torch.func.jacrev(lambda x: base(tt, x))(y)

    func = Counted(base)
    with torch.no_grad(), solver_stats() as s2:
        y_user = odeint(func, y0, t, method=name, rtol=1e-6, atol=1e-10, options={**fixed, "jacobian": jac})
    assert func.calls == s2.nfe_forward and s2.jacobians == s.jacobians
    assert torch.allclose(y_user, y_auto, rtol=1e-10, atol=1e-14)


def test_jacobian_reuse_on_a_linear_problem():
    """A linear problem needs one Jacobian for the whole solve, and radau keeps its factorisations while
    the step size stays."""
    func, y0, t = _mild_linear()
    with torch.no_grad(), solver_stats() as s:
        odeint(func, y0, torch.linspace(0, 1, 2), method="radau", rtol=1e-8, atol=1e-10)
    assert s.jacobians == 1
    assert s.factorizations < 2 * (s.steps_accepted + s.steps_rejected)
    with torch.no_grad(), solver_stats() as s:
        odeint(func, y0, t, method="gl6", options={"step_size": 0.01})
    assert s.jacobians == 1 and s.factorizations == 2  # one real, one complex, for all 100 steps


def test_radau_transformation_is_hairers():
    """The eigenvector basis of A⁻¹, normalised as in RADAU5, reproduces Hairer's (and scipy's) T."""
    _, V, _, solved, partner = RADAU_IIA5.eigen()
    T = np.stack([V[:, 0].real, V[:, 1].real, V[:, 1].imag], 1)
    hairer = np.array([
        [0.09443876248897524, -0.14125529502095421, 0.03002919410514742],
        [0.25021312296533332, 0.20412935229379994, -0.38294211275726192],
        [1.0, 1.0, 0.0],
    ])  # fmt: skip
    assert np.allclose(T, hairer, atol=1e-14) and solved == [0, 1] and partner == {2: 1}


# -- gradients --------------------------------------------------------------------------------------


def _robertson_loss(k: torch.Tensor, y0: torch.Tensor, method: str, tol: float, interface=odeint):
    func = Robertson()
    with torch.no_grad():
        func.k.copy_(k)
    func.k.requires_grad_(k.requires_grad)
    t = torch.tensor([0.0, 1.0, 10.0])
    w = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2e4, -0.5], [-1.0, 3e4, 2.0]])
    y = interface(func, y0, t, method=method, rtol=tol, atol=tol * 1e-4)
    return (w * y).sum(), func


@pytest.mark.parametrize("name", ["radau", "bdf", "ndf"])
def test_gradients_through_odeint_on_a_stiff_problem(name):
    """d L / d (y0, k) through the solver (the implicit function theorem at each step's solution)
    against central differences of tight radau solves."""
    k0 = torch.tensor([0.04, 3e7, 1e4])
    y0 = torch.tensor([1.0, 0.0, 0.0], requires_grad=True)
    loss, func = _robertson_loss(k0.clone().requires_grad_(), y0, name, 1e-9)
    grads = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, [y0, func.k])])
    fd = []
    with torch.no_grad():
        for i in range(3):
            e = torch.zeros(3)
            e[i] = 1e-6
            plus = _robertson_loss(k0, torch.tensor([1.0, 0.0, 0.0]) + e, "radau", 1e-12)[0]
            minus = _robertson_loss(k0, torch.tensor([1.0, 0.0, 0.0]) - e, "radau", 1e-12)[0]
            fd.append((plus - minus) / 2e-6)
        for i in range(3):
            e = torch.zeros(3)
            e[i] = 1e-6 * k0[i]
            plus = _robertson_loss(k0 + e, torch.tensor([1.0, 0.0, 0.0]), "radau", 1e-12)[0]
            minus = _robertson_loss(k0 - e, torch.tensor([1.0, 0.0, 0.0]), "radau", 1e-12)[0]
            fd.append((plus - minus) / (2 * e[i]))
    fd = torch.stack(fd)
    assert torch.allclose(grads, fd, rtol=1e-4, atol=1e-9 * fd.abs().max()), (grads, fd)


@pytest.mark.parametrize("name", ["radau", "bdf", "ndf", "gl4", "radauIIA5", "trbdf2"])
@pytest.mark.parametrize("problem", ["linear", "cubic_spiral"])
def test_adjoint_with_implicit_methods(name, problem):
    """odeint_adjoint with an implicit method forward and backward (Newton matrices of the augmented
    state from J alone) against backpropagation through the same method: within the solver's accuracy
    (adaptive) or the adjoint's discretisation error (fixed grid, order >= 2 at h = 1/16 or 1/32)."""
    p = PROBLEMS[problem]
    fixed = not METHODS[name].adaptive
    opts = {"step_size": p.step_size} if fixed else None
    grads = {}
    for interface in (odeint, odeint_adjoint):
        func, y0, t = p.make(torch.float64, CPU)
        y0.requires_grad_(True)
        with solver_stats() as s:
            y = interface(func, y0, t, method=name, rtol=1e-8, atol=1e-10, options=opts)
            g = torch.autograd.grad(y.sum(), [y0, *func.parameters()])
        grads[interface] = torch.cat([x.reshape(-1) for x in g])
    assert s.jacobians_backward >= 1 and s.factorizations_backward >= 2
    a, b = grads[odeint_adjoint], grads[odeint]
    tol = 1e-3 if name == "trbdf2" else 1e-6
    assert ((a - b).abs().max() / b.abs().max()).item() < tol


def test_adjoint_of_an_implicit_forward_with_an_explicit_backward():
    """The forward's Newton options do not travel to an explicit backward method."""
    func, y0, t = PROBLEMS["linear"].make(torch.float64, CPU)
    y0.requires_grad_(True)
    y = odeint_adjoint(func, y0, t, method="radau", options={"max_iters": 5}, adjoint_method="dopri5")
    y.sum().backward()
    assert y0.grad is not None


# -- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "options", "error", "match"),
    [
        ("radau", {"jacobian": 3}, TypeError, r"options\['jacobian'\] must be callable"),
        ("radau", {"max_iters": 0}, ValueError, r"options\['max_iters'\] must be an int"),
        ("bdf", {"max_order": 6}, ValueError, r"options\['max_order'\] must be an int in 1..5"),
        ("radau", {"step_size": 0.1}, ValueError, "unknown option"),
        ("gl4", {"first_step": 0.1}, ValueError, "unknown option"),
        (
            "radau",
            {"jacobian": lambda t, y: torch.ones(5)},
            ValueError,
            r"options\['jacobian'\] returned shape",
        ),
        ("dopri5", {"stiffness_check": -1}, ValueError, r"options\['stiffness_check'\] must be an int"),
    ],
)
def test_bad_input_is_named(method, options, error, match):
    with pytest.raises(error, match=match):
        odeint(lambda t, y: -y, torch.ones(2, dtype=torch.float64), torch.tensor([0.0, 1.0]), method=method,
               options=options)  # fmt: skip


def test_a_user_jacobian_needs_a_plain_state():
    with pytest.raises(ValueError, match=r"options\['jacobian'\] needs y0 as one real"):
        odeint(lambda t, y: (-y[0], -y[1]), (torch.ones(1), torch.ones(1)), torch.tensor([0.0, 1.0]),
               method="radau", options={"jacobian": lambda t, y: None})  # fmt: skip


def test_a_non_finite_derivative_is_named():
    with pytest.raises(SolverError, match="non-finite derivative"):
        odeint(
            lambda t, y: y / 0.0, torch.ones(1, dtype=torch.float64), torch.tensor([0.0, 1.0]), method="radau"
        )


@pytest.mark.parametrize("name", ADAPTIVE)
def test_one_read_per_newton_iteration(name):
    """The implicit methods' host reads: one per Newton iteration (its convergence decision, the error
    norms folded in), radau one more on a step retried after a rejection, plus the CPU path's two reads
    of the output times and the initial step."""
    from benchmarks import metrics

    func, y0, t = STIFF_PROBLEMS["robertson"].make(torch.float64, CPU)
    with torch.no_grad(), solver_stats() as s, metrics.count_syncs() as reads:
        odeint(func, y0, t, method=name, rtol=1e-6, atol=1e-10)
    assert s.newton_iterations + 2 <= sum(reads.values()) <= s.newton_iterations + s.steps_rejected + 2


@pytest.mark.parametrize("name", ["radau", "bdf", "gl4"])
def test_tuple_and_complex_states(name):
    """The core's flat real state: tuple states (block norm) and complex ones (real pairs) work too."""
    t = torch.tensor([0.0, 1.0])
    opts = {"step_size": 0.01} if name == "gl4" else None
    y = odeint(lambda t, y: (-y[0], -2 * y[1]), (torch.ones(2), torch.ones(3)), t, method=name, options=opts)
    z = odeint(lambda t, y: 1j * y, torch.ones(2, dtype=torch.complex128), t, method=name, options=opts)
    assert (y[0][-1] - math.exp(-1)).abs().max() < 1e-6 and (y[1][-1] - math.exp(-2)).abs().max() < 1e-6
    assert (z[-1] - torch.exp(torch.tensor(1j))).abs().max() < 1e-6


@pytest.mark.parametrize("name", FIXED)
def test_func_independent_of_the_state_with_times_requiring_grad(name):
    """Mirrors torchdiffeq's tests/odeint_tests.py::TestSolverError::test_odeint (ode='exp', float32):
    ``f`` ignores ``y`` and ``t`` requires grad, so the stage equations hold nothing to differentiate
    through (this raised "cannot register a hook" before)."""
    t = torch.linspace(0.0, 1.0, 5, requires_grad=True)
    y = odeint(lambda t, y: torch.exp(t).expand_as(y), torch.tensor([1.0]), t, method=name)
    assert abs(y[-1].item() - math.e) < 0.25  # implicit_euler on 4 steps; the others far closer
    y.sum().backward()
    assert torch.allclose(t.grad[1:], torch.exp(t.detach()[1:]))  # dy(t_k)/dt_k = f(t_k) = e^t_k
