"""The Figure 3c study: every count of every cell, and scipy's evaluations counted in both directions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from nodebench import odeint_adjoint, solver_stats, store
from nodebench.cli import main
from nodebench.workloads import figure3c

COUNTS = {"nfe_forward", "nfe_backward", "f_forward", "f_backward", "vjp_backward"}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    tiny = dataclasses.replace(figure3c.PRESETS["smoke"], iterations=2, spiral_span=20)
    saved = figure3c.PRESETS["smoke"]
    figure3c.PRESETS["smoke"] = tiny
    try:
        assert main(["run", "figure3c", "--preset", "smoke", "--out", str(out)]) == 0
    finally:
        figure3c.PRESETS["smoke"] = saved
    (run_dir,) = (out / "figure3c").iterdir()
    return run_dir


def test_every_cell_records_every_count(smoke_run: Path):
    records = store.read_records(smoke_run)
    cells = {
        f"spiral/{s}/{n}/tol={t:.0e}" for s in figure3c.SOLVERS for n in figure3c.NORMS for t in (1e-3, 1e-5)
    }
    assert set(records["variant"]) == cells
    wide = records.pivot_table(index=["variant", "step"], columns="metric", values="value")
    assert COUNTS | {"time_forward", "time_backward", "loss"} <= set(wide.columns)
    assert list(wide.index.get_level_values("step").unique()) == [0, 1]
    # the solver's counts are the calls the network received, in both directions, for every solver;
    # one output time: each backward evaluation of the augmented dynamics is one call and one VJP
    assert (wide["nfe_forward"] == wide["f_forward"]).all()
    assert (wide["nfe_backward"] == wide["f_backward"]).all()
    assert (wide["vjp_backward"] == wide["f_backward"]).all()
    assert (wide[list(COUNTS)] > 0).all().all()
    # every cell starts from the same weights and batch: the first losses differ by solve error only
    first = torch.tensor(wide.xs(0, level="step")["loss"].values)
    assert torch.allclose(first, first[0].expand(len(first)), rtol=1e-3)


def test_scipy_evaluations_are_counted_in_both_directions():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)).double()
    counted = figure3c.Counted(lambda t, y: net(y))
    y0 = torch.randn(4, 2, dtype=torch.float64)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    with solver_stats() as stats:
        y = odeint_adjoint(
            counted,
            y0,
            t,
            method="scipy_solver",
            options={"solver": "LSODA"},
            rtol=1e-6,
            atol=1e-6,
            adjoint_params=tuple(net.parameters()),
        )
        counted.phase = "backward"
        y[-1].square().sum().backward()
    assert stats.nfe_forward == counted.counts["f_forward"] > 0
    assert stats.nfe_backward == counted.counts["f_backward"] == counted.counts["vjp_backward"] > 0


def test_config_names_what_is_wrong():
    with pytest.raises(ValueError, match="model must be one of"):
        figure3c.Config(model="cifar")
    with pytest.raises(ValueError, match="subsets of"):
        figure3c.Config(solvers=("rk4",))
    with pytest.raises(ValueError, match="tolerances must be positive"):
        figure3c.Config(tolerances=(0.0,))
    assert len(figure3c.plan(figure3c.PRESETS["standard"])) == 3 * 3 * 2


def test_report_lists_every_cell_with_the_half_rule(smoke_run: Path, tmp_path: Path):
    from nodebench.report import build_report

    text = build_report([smoke_run], tmp_path / "report").read_text()
    assert "failed to build" not in text
    assert "| spiral | lsoda | full | 1e-03 | 2 |" in text  # the paper's solver first, 2 iterations
    assert text.count("| spiral |") == 12 and "`half rule`: a ratio within 1.25x" in text


def test_lsoda_takes_a_banded_jacobian_for_large_states():
    """The study's LSODA declares a band of width 0: a large state solves in O(N) memory (a full
    Jacobian's work array would be N x N), with the same result as the default on a small one."""
    decay = lambda t, y: -y  # noqa: E731
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    y0 = torch.linspace(-1.0, 1.0, 50_000, dtype=torch.float64)
    banded = {"solver": "LSODA", "lband": 0, "uband": 0}
    y = odeint_adjoint(
        decay, y0, t, method="scipy_solver", options=banded, rtol=1e-7, atol=1e-9, adjoint_params=()
    )
    torch.testing.assert_close(
        y[-1], y0 * torch.exp(torch.tensor(-1.0, dtype=torch.float64)), rtol=1e-5, atol=1e-7
    )
    with pytest.raises(ValueError, match=r"options\['uband'\] must be an int"):
        odeint_adjoint(decay, y0[:3], t, method="scipy_solver", options={"uband": 1.5}, adjoint_params=())


def test_identical_norm_cells_are_named_and_a_difference_is_not():
    import pandas as pd

    from nodebench.report.figure3c import same_under_both_norms

    rows = []
    for norm in ("full", "seminorm"):
        for solver, backward in (
            ("dopri5", {"full": 20.0, "seminorm": 20.0}),
            ("adams", {"full": 30.0, "seminorm": 28.0}),
        ):
            for step in range(2):
                for metric, value in (("nfe_forward", 32.0), ("nfe_backward", backward[norm]), ("loss", 1.5)):
                    rows.append(
                        {
                            "variant": f"m/{solver}/{norm}/tol=1e-03",
                            "seed": 0,
                            "step": step,
                            "metric": metric,
                            "value": value,
                        }
                    )
    assert same_under_both_norms(pd.DataFrame(rows)) == ["m/dopri5/tol=1e-03"]
