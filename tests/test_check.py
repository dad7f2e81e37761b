"""The correctness matrix (`nodebench check`) and the torchdiffeq adapters."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch

from nodebench import solver_stats
from nodebench.reference import PROBLEMS, check, solve, state_seminorm
from nodebench.solvers import ALL_SOLVERS, METHODS
from nodebench.solvers import adjoint as adjoint_module
from nodebench.solvers.rk import RungeKutta

LIBRARIES = ["nodebench", "torchdiffeq"]


class Decay(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rate = torch.nn.Parameter(torch.tensor(-0.5))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.rate * y


def test_quick_matrix_passes():
    table = check.run_matrix(quick=True)
    assert list(table.columns) == check.COLUMNS
    assert set(table["mode"]) == {"odeint", "odeint_adjoint"}
    assert {"gradcheck", "nfe forward vs torchdiffeq", "grad t vs analytic"} <= set(table["quantity"])
    assert table["passed"].all(), table[~table["passed"]].to_string()


def _unchecked(tableau, **changes):
    """A copy of a tableau with changed coefficients, past the checks construction would make.

    Tableaus refuse such coefficients on construction (tests/test_tableaus.py); the reference check
    must still catch a method that is wrong in a way no construction check sees.
    """
    broken = copy.copy(tableau)
    for key, value in changes.items():
        object.__setattr__(broken, key, value)
    return broken


def test_broken_tableau_fails(monkeypatch, capsys):
    rk4 = ALL_SOLVERS["rk4"]
    b = (rk4.b[0] + 0.01, rk4.b[1] - 0.01, *rk4.b[2:])  # still consistent, but first order only
    monkeypatch.setitem(METHODS, "rk4", RungeKutta(_unchecked(rk4, b=b)))
    monkeypatch.setattr(check, "QUICK", check.Selection(("exponential",), ("rk4",), ("float64",)))
    table = check.run_matrix(quick=True)
    failed = set(table.loc[~table["passed"], "quantity"])
    assert {"solution vs analytic", "solution vs torchdiffeq", "grad params vs torchdiffeq"} <= failed
    assert "nfe forward vs torchdiffeq" not in failed  # the same number of stages
    assert check.main("cpu", quick=True) == 1
    assert " failed" in capsys.readouterr().out.splitlines()[-1]


def test_sloppy_adjoint_fails_the_adjoint_rows_only(monkeypatch):
    exact_solve = adjoint_module.solve

    def sloppy(f, y0, ts, method, cfg, *args):  # the adjoint ignores its tolerances
        cfg = dataclasses.replace(cfg, rtol=1e4 * cfg.rtol, atol=1e4 * cfg.atol)
        return exact_solve(f, y0, ts, method, cfg, *args)

    monkeypatch.setattr(adjoint_module, "solve", sloppy)
    monkeypatch.setattr(check, "QUICK", check.Selection(("exponential",), ("dopri5",), ("float64",)))
    table = check.run_matrix(quick=True)
    failed = table[~table["passed"]]
    assert set(failed["mode"]) == {"odeint_adjoint"}
    assert {"grad params vs analytic", "grad params vs torchdiffeq"} <= set(failed["quantity"])


def test_a_solve_that_raises_is_a_failed_row(monkeypatch):
    monkeypatch.setitem(METHODS, "euler", RungeKutta(_unchecked(ALL_SOLVERS["euler"], b=(math.nan,))))
    monkeypatch.setattr(check, "QUICK", check.Selection(("exponential",), ("euler",), ("float64",)))
    table = check.run_matrix(quick=True)
    assert not table["passed"].any()
    assert table["quantity"].str.startswith("raised SolverError").all()


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("mode", ["odeint", "odeint_adjoint"])
def test_euler_counts_one_evaluation_per_step(library, mode):
    func = Decay()
    y0 = torch.tensor([1.0, 2.0], requires_grad=True)
    t = torch.tensor([0.0, 0.5, 1.0])
    y, stats = solve(library, mode, func, y0, t, "euler", options={"step_size": 0.125})
    assert stats == {"nfe_forward": 8, "nfe_backward": 0}
    y.sum().backward()
    assert stats["nfe_backward"] == (8 if mode == "odeint_adjoint" else 0)
    assert func.rate.grad is not None


@pytest.mark.parametrize("mode", ["odeint", "odeint_adjoint"])
def test_counts_agree_with_solver_stats_and_torchdiffeq(mode):
    func = Decay()
    y0 = torch.tensor([1.0, 2.0], requires_grad=True)
    t = torch.tensor([0.0, 0.7, 2.0])
    counts, reported = {}, {}
    for library in LIBRARIES:
        with solver_stats() as reported[library]:
            y, counts[library] = solve(library, mode, func, y0, t, "dopri5", rtol=1e-6, atol=1e-8)
            y.sum().backward()
    assert counts["nodebench"]["nfe_forward"] == counts["torchdiffeq"]["nfe_forward"]
    # The backward pass does not restart at the output times: fewer evaluations than torchdiffeq's.
    assert counts["nodebench"]["nfe_backward"] <= counts["torchdiffeq"]["nfe_backward"]
    assert reported["torchdiffeq"].nfe_forward == 0  # solver_stats sees nodebench's solves only
    ours = reported["nodebench"]
    assert ours.nfe_forward == counts["nodebench"]["nfe_forward"]
    assert ours.nfe_backward == counts["nodebench"]["nfe_backward"]
    steps = ours.steps_accepted + ours.steps_rejected
    assert counts["nodebench"]["nfe_forward"] == 2 + 6 * steps
    if mode == "odeint_adjoint":  # f0 and the initial step once, 6 per step; a jump costs none (FSAL)
        back = ours.steps_accepted_backward + ours.steps_rejected_backward
        assert counts["nodebench"]["nfe_backward"] == 2 + 6 * back


def test_torchdiffeq_seminorm_includes_the_time_channel():
    """torchdiffeq's "seminorm" controls dL/dt of a time-dependent func; state_seminorm does not."""
    nfe = {}
    for name, library, norm in [
        ("nodebench", "nodebench", "seminorm"),
        ("torchdiffeq", "torchdiffeq", "seminorm"),
        ("torchdiffeq, state_seminorm", "torchdiffeq", state_seminorm),
    ]:
        func, y0, t = PROBLEMS["cosine"].make(torch.float64, torch.device("cpu"))
        y, stats = solve(library, "odeint_adjoint", func, y0, t, "dopri5", 1e-8, 1e-10, adjoint_norm=norm)
        y.sum().backward()
        nfe[name] = stats["nfe_backward"]
    # nodebench's backward pass also does not restart at the output times, hence "<=".
    assert nfe["nodebench"] <= nfe["torchdiffeq, state_seminorm"] < nfe["torchdiffeq"]


def test_adapter_rejects_what_torchdiffeq_lacks():
    func, y0, t = Decay(), torch.ones(2), torch.tensor([0.0, 1.0])
    with pytest.raises(ValueError, match="tsit5"):
        solve("torchdiffeq", "odeint", func, y0, t, "tsit5")
    with pytest.raises(ValueError, match="controller"):
        solve("torchdiffeq", "odeint", func, y0, t, "dopri5", options={"controller": "PI"})
    with pytest.raises(ValueError, match="library"):
        solve("scipy", "odeint", func, y0, t)


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_problems_are_deterministic_and_exact_at_t0(name):
    problem = PROBLEMS[name]
    (f1, y1, t1), (f2, y2, t2) = (problem.make(torch.float32, torch.device("cpu")) for _ in range(2))
    assert y1.dtype == t1.dtype == torch.float32 and torch.equal(y1, y2) and torch.equal(t1, t2)
    assert all(torch.equal(a, b) for a, b in zip(f1.parameters(), f2.parameters()))
    assert f1(t1[0], y1).shape == y1.shape
    grid = t1 / problem.step_size
    assert torch.equal(grid, grid.round())
    if problem.exact is not None:
        assert torch.allclose(problem.exact(f1, y1, t1)[0], y1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_unavailable_is_a_clear_error(capsys):
    assert check.main("cuda", quick=True) == 2
    assert "CUDA is not available" in capsys.readouterr().err
