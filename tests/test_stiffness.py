"""The stiffness test of dopri5 and tsit5 (issue 26): it fires on the issue's stiff call and stays silent
on the spiral demo and the gate's problems, at no extra evaluation or host read."""

from __future__ import annotations

import warnings

import pytest
import torch

from benchmarks import metrics
from nodebench import SolverError, StiffnessWarning, odeint, solver_stats
from nodebench.data.demo_spirals import DEMO_T_MAX, DEMO_Y0
from nodebench.models.demo_spirals import DemoTrue
from nodebench.reference.problems import PROBLEMS
from nodebench.solvers import rk


def _stiff_call(method: str, **options):
    return odeint(
        lambda t, y: -1e6 * (y - torch.cos(t)),
        torch.tensor([0.0]),
        torch.linspace(0, 10, 3),
        method=method,
        options=options or None,
    )


@pytest.mark.parametrize("method", ["dopri5", "tsit5"])
def test_the_issues_stiff_call_warns_then_stops(method):
    """As typed in the issue (float32, default tolerances): a StiffnessWarning naming the time and the
    implicit methods, then a SolverError, long before max_num_steps (a count, not a timing)."""
    with solver_stats() as stats, pytest.warns(StiffnessWarning, match=r"looks stiff at t=.*method='radau'"):
        with pytest.raises(SolverError, match="problem is stiff") as info:
            _stiff_call(method)
    assert info.value.reason == "problem is stiff" and 0 < info.value.t < 1
    assert "method='radau' or method='bdf'" in str(info.value)
    assert stats.attempts < 40_000  # of the default max_num_steps = 1,000,000


def test_the_test_can_be_turned_off():
    with warnings.catch_warnings():
        warnings.simplefilter("error", StiffnessWarning)
        with pytest.raises(SolverError, match="max_num_steps exceeded"):
            _stiff_call("dopri5", stiffness_check=0, max_num_steps=3000)


def _silent_solves():
    """The spiral demo (the true dynamics over its span and the demo network, as the gate solves it) and
    the gate's linear problem, and every reference problem, at tolerances from loose to tight."""
    linear, y0, t, _ = metrics.linear_problem()
    yield "gate linear", linear, y0, t
    yield "gate spiral", *metrics.spiral_setup()
    yield "spiral demo", DemoTrue(torch.float64), torch.tensor([DEMO_Y0]), torch.linspace(0, DEMO_T_MAX, 50)
    for name, problem in PROBLEMS.items():
        yield name, *problem.make(torch.float64, torch.device("cpu"))


@pytest.mark.parametrize("method", ["dopri5", "tsit5"])
def test_silent_on_the_spiral_demo_and_the_gate_problems(method):
    """Tested on every accepted step (stiffness_check=1), nothing fires."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", StiffnessWarning)
        for _, func, y0, t in _silent_solves():
            for rtol in (1e-3, 1e-6, 1e-9):
                with torch.no_grad():
                    odeint(
                        func,
                        y0,
                        t,
                        method=method,
                        rtol=rtol,
                        atol=rtol * 1e-2,
                        options={"stiffness_check": 1},
                    )


@pytest.mark.parametrize("method", ["dopri5", "tsit5"])
def test_no_extra_evaluation_or_read(method):
    """With the test on every step or off, the same evaluations, steps and host reads."""
    func, y0, t = metrics.spiral_setup()
    seen = []
    for every in (1, 0):
        with torch.no_grad(), solver_stats() as s, metrics.count_syncs() as reads:
            odeint(func, y0, t, method=method, rtol=1e-6, atol=1e-8, options={"stiffness_check": every})
        seen.append((s.nfe_forward, s.steps_accepted, s.steps_rejected, sum(reads.values())))
    assert seen[0] == seen[1]


def test_threshold_is_a_fraction_of_the_stability_boundary():
    dopri5 = rk.RK_METHODS["dopri5"]
    assert abs(dopri5.tableau.stability_boundary() - 3.3066) < 1e-3
    assert dopri5.stiff_threshold == pytest.approx(rk.STIFF_FRACTION * 3.3066, abs=1e-3)
    assert rk.RK_METHODS["bosh3"].stiff_threshold == 0.0  # one stage at the step's end: not tested
    assert rk.RK_METHODS["dopri8"].stiff_threshold == 0.0  # see rk.STIFF_TESTED
