"""The solvers against analytic solutions, their convergence orders, and torchdiffeq."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torchdiffeq

from nodebench import SolverError, odeint, solver_stats
from nodebench.solvers import ADAPTIVE_SOLVERS, ALL_SOLVERS, FIXED_SOLVERS
from nodebench.solvers.integrate import make_rhs, solve
from nodebench.solvers.method import Config, Counts
from nodebench.solvers.rk import RungeKutta
from nodebench.solvers.validate import check_options
from tests.problems import PROBLEMS, Counted, slope, spiral_demo

SHARED = ["euler", "midpoint", "rk4", "bosh3", "dopri5"]  # methods torchdiffeq 0.2.5 also has


def _opts(method: str, h: float = 1e-3):
    return {"step_size": h} if method in FIXED_SOLVERS else None


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


# ---- analytic problems --------------------------------------------------------------------------

# Error thresholds against the analytic solution: adaptive at rtol=1e-10 (global error a few hundred
# times the local tolerance at most), fixed grid at h=1e-3 (error ~ C h^order).
ANALYTIC_THRESHOLD = {
    "euler": 5e-3,
    "midpoint": 1e-5,
    "heun2": 1e-5,
    "heun3": 1e-8,
    "rk4": 1e-10,
    "adaptive_heun": 1e-5,
    "fehlberg2": 3e-5,
    "bosh3": 1e-7,
    "dopri5": 1e-8,
    "tsit5": 1e-8,
    "dopri8": 1e-6,  # its outputs come from a quartic interpolant over long steps (as torchdiffeq's)
}
# Second-order pairs at rtol = 1e-10 would take ~1e5 steps: they are held to rtol = 1e-7.
ANALYTIC_RTOL = {"adaptive_heun": 1e-7, "fehlberg2": 1e-7}


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("method", sorted(ALL_SOLVERS))
def test_analytic(problem, method):
    p = PROBLEMS[problem]()
    rtol = ANALYTIC_RTOL.get(method, 1e-10)
    y = odeint(p.func, p.y0, p.t, method=method, rtol=rtol, atol=rtol * 1e-2, options=_opts(method))
    assert y.shape == (len(p.t), *p.y0.shape)
    assert torch.equal(y[0], p.y0)
    assert _rel(y, p.exact(p.t)) < ANALYTIC_THRESHOLD[method]


@pytest.mark.parametrize("method", sorted(ALL_SOLVERS))
def test_decreasing_time_matches_analytic(method):
    p = PROBLEMS["linear"]()
    t = p.t.flip(0)
    y_end = p.exact(p.t)[-1]
    rtol = ANALYTIC_RTOL.get(method, 1e-10)
    y = odeint(p.func, y_end, t, method=method, rtol=rtol, atol=rtol * 1e-2, options=_opts(method))
    assert _rel(y[-1], p.y0) < ANALYTIC_THRESHOLD[method] * 10


# ---- convergence orders -------------------------------------------------------------------------


def _fixed_step_error(tableau, h: float, problem: str = "linear") -> float:
    """Global error over [t0, t0 + 1.6] of a problem stepping the tableau on a fixed grid of size h."""
    p = PROBLEMS[problem]()
    tab = dataclasses.replace(tableau, b_err=None) if tableau.adaptive else tableau
    t = [p.t[0].item(), p.t[0].item() + 1.6]
    counts = Counts()
    f = make_rhs(p.func, p.y0.shape, torch.float64, p.y0.device, counts, check=True)
    m = RungeKutta(tab)
    cfg = Config(1.0, 1.0, check_options({"step_size": h}, m), counts, shape=p.y0.shape, t_end=t[-1])
    ys = solve(f, p.y0.reshape(-1), t, m, cfg)
    exact = p.exact(torch.tensor(t))[-1].reshape(-1)
    return (ys[-1] - exact).abs().max().item()


@pytest.mark.parametrize("method", sorted(ALL_SOLVERS))
def test_convergence_order(method):
    tab = ALL_SOLVERS[method]
    # Fifth-order pairs reach their asymptotic slope only below h = 0.1 on this problem. The eighth-order
    # pair meets round-off below h = 0.1 and is a ninth-order method on linear autonomous problems:
    # it is measured on the time-dependent one.
    if tab.order >= 8:
        hs, problem = [0.8 / 2**k for k in range(3)], "time_dependent"
    else:
        hs, problem = [(0.1 if tab.order >= 5 else 0.2) / 2**k for k in range(4)], "linear"
    errs = [_fixed_step_error(tab, h, problem) for h in hs]
    assert abs(slope(hs, errs) - tab.order) < 0.2, (hs, errs)


@pytest.mark.parametrize("method", sorted(ADAPTIVE_SOLVERS))
def test_embedded_error_estimate_order(method):
    """The embedded estimate h * sum(b_err k) of one step is O(h^order) (a lower-order pair)."""
    tab = ADAPTIVE_SOLVERS[method]
    p = PROBLEMS["linear"]()
    y0 = p.y0.reshape(-1)
    hs = [(0.8 if tab.order >= 8 else 0.2) / 2**k for k in range(4)]  # eighth order: round-off below 0.1
    ests = []
    for h in hs:
        k = [p.func(None, y0.view(p.y0.shape)).reshape(-1)]
        for i in range(1, tab.stages):
            yi = y0 + h * sum(a * kj for a, kj in zip(tab.a[i], k))
            k.append(p.func(None, yi.view(p.y0.shape)).reshape(-1))
        ests.append((h * sum(e * kj for e, kj in zip(tab.b_err, k))).abs().max().item())
    assert abs(slope(hs, ests) - tab.order) < 0.3, ests


@pytest.mark.parametrize("method", sorted(ADAPTIVE_SOLVERS))
def test_dense_output_order(method):
    """One step of size h with an output at 0.37 h: local error O(h^(dense_order + 1))."""
    tab = ADAPTIVE_SOLVERS[method]
    p = PROBLEMS["decay"]()
    hs = [0.4 / 2**k for k in range(4)]
    errs = []
    for h in hs:
        t = torch.tensor([0.0, 0.37 * h])
        with solver_stats() as s:
            y = odeint(p.func, p.y0, t, method=method, rtol=1e3, atol=1e3, options={"first_step": h})
        assert s.steps_accepted == 1
        errs.append((y[-1] - p.exact(t)[-1]).abs().max().item())
    assert abs(slope(hs, errs) - (tab.dense_order + 1)) < 0.5, errs


@pytest.mark.parametrize("method", sorted(FIXED_SOLVERS))
def test_fixed_grid_dense_output_between_steps(method):
    """Off-grid outputs use cubic Hermite interpolation: no worse than the method's own order."""
    p = PROBLEMS["linear"]()
    t = torch.tensor([0.0, 0.333, 1.2345])
    h = 0.01
    y = odeint(p.func, p.y0, t, method=method, options={"step_size": h})
    order = min(ALL_SOLVERS[method].order, 3)
    assert _rel(y, p.exact(t)) < 50 * h**order


@pytest.mark.parametrize("method", sorted(ADAPTIVE_SOLVERS))
def test_tolerance_proportionality(method):
    p = PROBLEMS["linear"]()
    tols = [1e-4, 1e-5, 1e-6, 1e-7, 1e-8]
    tab = ADAPTIVE_SOLVERS[method]
    # dopri8's quartic interpolant would dominate its error: its steps land on the output times.
    opts = {"step_t": p.t} if tab.dense_order + 1 < tab.order else None
    errs = [
        _rel(odeint(p.func, p.y0, p.t, method=method, rtol=tol, atol=tol, options=opts), p.exact(p.t))
        for tol in tols
    ]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs
    assert 0.6 < slope(tols, errs) < 1.3, errs


# ---- statistics ---------------------------------------------------------------------------------


def test_dopri5_nfe_formula_and_stats():
    p = PROBLEMS["linear"]()
    with solver_stats() as outer:
        with solver_stats() as s:
            odeint(p.func, p.y0, p.t)
        odeint(p.func, p.y0, p.t, method="rk4", options={"step_size": 0.1})
    assert s.nfe_forward == 2 + 6 * (s.steps_accepted + s.steps_rejected)
    assert s.nfe_backward == 0 and s.solves == 1
    grid_steps = math.ceil((3.7 - 0.0) / 0.1)
    assert outer.nfe_forward == s.nfe_forward + 4 * grid_steps
    assert outer.solves == 2


@pytest.mark.parametrize("method,per_step", [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_fixed_grid_nfe(method, per_step):
    p = PROBLEMS["decay"]()
    with solver_stats() as s:
        odeint(p.func, p.y0, torch.tensor([0.0, 1.0]), method=method, options={"step_size": 0.125})
    assert s.nfe_forward == 8 * per_step and s.steps_accepted == 8


# ---- torchdiffeq --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(2,), (5, 2), (3, 4, 2)])
@pytest.mark.parametrize("method", SHARED)
def test_agrees_with_torchdiffeq(method, shape, dtype):
    torch.manual_seed(1)
    func = spiral_demo().to(dtype)
    y0 = (torch.rand(*shape, dtype=dtype) - 0.5) * 2
    t = torch.linspace(0.0, 2.0, 6, dtype=dtype)
    rtol, atol = (1e-7, 1e-9) if dtype == torch.float64 else (1e-5, 1e-6)
    opts = {"step_size": 0.01} if method in FIXED_SOLVERS else None
    with torch.no_grad(), solver_stats() as s:
        ours = odeint(func, y0, t, method=method, rtol=rtol, atol=atol, options=opts)
    counter = Counted(func)
    with torch.no_grad():
        theirs = torchdiffeq.odeint(counter, y0, t, method=method, rtol=rtol, atol=atol, options=opts)
        truth = odeint(func.double(), y0.double(), t.double(), rtol=1e-12, atol=1e-14)
    assert ours.dtype == dtype and ours.shape == theirs.shape
    assert abs(s.nfe_forward - counter.n) <= 0.2 * counter.n
    if method in FIXED_SOLVERS:  # the same grid and tableau: identical up to round-off
        assert _rel(ours, theirs) < (1e-12 if dtype == torch.float64 else 1e-5)
    else:  # the same tolerance: no less accurate than torchdiffeq (ours interpolates bosh3 better)
        err_ours, err_theirs = _rel(ours.double(), truth), _rel(theirs.double(), truth)
        assert err_ours <= 2 * err_theirs + 10 * rtol, (err_ours, err_theirs)
        assert _rel(ours, theirs) < 1000 * rtol


def test_decreasing_time_agrees_with_torchdiffeq():
    func = spiral_demo()
    with torch.no_grad():
        y_end = odeint(func, torch.tensor([[2.0, 0.0], [0.5, -0.5]]), torch.tensor([0.0, 2.0]))[-1]
        t = torch.linspace(2.0, 0.0, 5)
        assert _rel(odeint(func, y_end, t), torchdiffeq.odeint(func, y_end, t)) < 1e-5


# ---- bad input ----------------------------------------------------------------------------------


def _f(t, y):
    return -y


Y0 = torch.ones(2)
T = torch.linspace(0, 1, 3)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"t": torch.ones(2, 2)}, ValueError, "t must be 1-D"),
        ({"t": torch.tensor([0.0, 1.0, 0.5])}, ValueError, "strictly monotone"),
        ({"t": torch.tensor([0.0, 0.0])}, ValueError, "strictly monotone"),
        ({"t": torch.tensor([0, 1])}, TypeError, "t must be a floating"),
        ({"t": torch.tensor([0.0, float("nan")])}, ValueError, "t must be finite"),
        ({"t": [0.0, 1.0]}, TypeError, "t must be a 1-D torch.Tensor"),
        ({"y0": torch.ones(2, dtype=torch.int64)}, TypeError, "y0 must be a floating-point or complex"),
        ({"y0": torch.ones(0)}, ValueError, "y0 must not be empty"),
        ({"method": "rk45"}, ValueError, r"valid methods are \['adams', 'adaptive_heun', 'bdf', 'bosh3'"),
        ({"rtol": 0.0, "atol": 0.0}, ValueError, "rtol and atol are both 0"),
        ({"rtol": torch.tensor([0.0, 1e-3]), "atol": 0.0}, ValueError, "rtol and atol are both 0"),
        ({"rtol": -1e-3}, ValueError, "rtol must be non-negative"),
        ({"rtol": torch.ones(3)}, ValueError, r"rtol: a tensor of shape \(3,\) does not broadcast"),
        ({"rtol": torch.ones(2, requires_grad=True)}, ValueError, "rtol must not require grad"),
        ({"atol": float("inf")}, ValueError, "atol must be non-negative and finite"),
        ({"atol": "1e-3"}, TypeError, "atol must be a non-negative float"),
        ({"atol": (1e-3, 1e-3)}, ValueError, "a tuple of tolerances needs a tuple state"),
        ({"y0": (Y0.double(), Y0.float())}, TypeError, "every component must have one dtype"),
        ({"y0": ()}, ValueError, "must not be an empty tuple"),
        ({"y0": [Y0]}, TypeError, "y0 must be a torch.Tensor or a tuple"),
        ({"y0": torch.ones(2, device="meta")}, ValueError, "y0 is on the meta device"),
        ({"y0": torch.ones(2, device="meta"), "t": T.to("meta")}, ValueError, "y0 is on the meta device"),
        ({"t": T.to("meta")}, ValueError, "t is on the meta device"),
        ({"options": {"jump_t": "soon"}}, TypeError, r"options\['jump_t'\] must be a 1-D"),
        ({"options": {"norm": 2}}, TypeError, r"options\['norm'\] must be callable"),
        ({"method": "rk4", "options": {"perturb": 1}}, TypeError, r"options\['perturb'\] must be a bool"),
        ({"options": {"step": 0.1}}, ValueError, r"unknown option\(s\) \['step'\]"),
        ({"options": {"step_size": 0.1}}, ValueError, "unknown option"),  # dopri5 takes no step_size
        ({"method": "rk4", "options": {"step_size": 0.0}}, ValueError, "step_size'\\] must be positive"),
        ({"method": "rk4", "options": {"step_size": float("nan")}}, ValueError, "step_size"),
        ({"options": {"max_num_steps": 0}}, ValueError, "max_num_steps"),
        ({"options": "fast"}, TypeError, "options must be a dict"),
        ({"func": "not callable"}, TypeError, "func must be callable"),
        ({"func": lambda t, y: y[:1]}, ValueError, "func returned shape"),
        ({"func": lambda t, y: y > 0}, TypeError, "func returned dtype"),
    ],
)
def test_bad_input(kwargs, exc, match):
    args = {"func": _f, "y0": Y0, "t": T, **kwargs}
    with pytest.raises(exc, match=match):
        odeint(args.pop("func"), args.pop("y0"), args.pop("t"), **args)


def test_max_num_steps_exceeded():
    with pytest.raises(SolverError, match="max_num_steps exceeded") as e:
        odeint(_f, Y0, torch.tensor([0.0, 100.0]), options={"max_num_steps": 5})
    assert e.value.reason == "max_num_steps exceeded" and e.value.t > 0


def test_fixed_grid_max_num_steps():
    with pytest.raises(SolverError, match="max_num_steps"):
        odeint(_f, Y0, torch.tensor([0.0, 1e9]), method="euler", options={"step_size": 1e-3})


def test_step_size_underflow_at_blow_up():
    """y' = y^2, y(0) = 1 blows up at t = 1: the solver stops just before, saying where."""
    with pytest.raises(SolverError) as e:
        odeint(lambda t, y: y**2, torch.ones(1), torch.tensor([0.0, 2.0]))
    assert e.value.reason in ("step size underflow", "non-finite state")
    assert 0.99 < e.value.t < 1.001


def test_non_finite_derivative():
    with pytest.raises(SolverError, match="non-finite derivative"):
        odeint(lambda t, y: y * float("nan"), Y0, T)


def test_non_finite_mid_solve_does_not_hang():
    """A func that turns NaN past t = 0.5: rejected steps shrink to underflow, then a clear error."""

    def f(t, y):
        return -y if t < 0.5 else y * float("nan")

    with pytest.raises(SolverError) as e:
        odeint(f, Y0, T)
    assert e.value.reason == "step size underflow" and abs(e.value.t - 0.5) < 1e-6


def test_non_finite_state_fixed_grid():
    with pytest.raises(SolverError, match="non-finite state"):
        odeint(
            lambda t, y: y**2,
            torch.ones(1),
            torch.tensor([0.0, 10.0]),
            method="euler",
            options={"step_size": 0.1},
        )


def test_single_time_returns_y0():
    y = odeint(_f, Y0, torch.tensor([0.5]))
    assert y.shape == (1, 2) and torch.equal(y[0], Y0)


def test_time_dtype_option_reaches_func():
    seen = []

    def f(t, y):
        seen.append(t.dtype)
        return -y

    odeint(f, Y0, T, options={"dtype": torch.float32})
    assert set(seen) == {torch.float32}


def test_step_t_lands_on_output_times():
    """With step_t at the output times no output is interpolated: dopri8 is then as accurate as its order."""
    p = PROBLEMS["linear"]()
    with solver_stats() as s:
        y = odeint(p.func, p.y0, p.t, method="dopri8", rtol=1e-10, atol=1e-12, options={"step_t": p.t})
    assert _rel(y, p.exact(p.t)) < 1e-9
    free = odeint(p.func, p.y0, p.t, method="dopri8", rtol=1e-10, atol=1e-12)
    assert _rel(free, p.exact(p.t)) > 10 * _rel(y, p.exact(p.t))
    assert s.steps_accepted >= len(p.t) - 1


def test_pi_controller_is_accurate():
    p = PROBLEMS["linear"]()
    y = odeint(p.func, p.y0, p.t, rtol=1e-9, atol=1e-11, options={"controller": "PI"})
    assert _rel(y, p.exact(p.t)) < 1e-7


def test_float32_times_leave_no_sliver_step():
    """1.1 in float32 is 1.1000000238...: still 11 steps of 0.1, as torchdiffeq takes."""
    with solver_stats() as s:
        odeint(
            _f, Y0.float(), torch.tensor([0.0, 1.1], dtype=torch.float32), "euler", options={"step_size": 0.1}
        )
    assert s.steps_accepted == 11
