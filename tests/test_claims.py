"""The claims registry and its verdict policy: each rule kind on hand-made inputs and records, evidence
selection, cost and provenance, and a SUMMARY that states every rule it used."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nodebench import claims, store
from nodebench.claims import evidence, policy
from nodebench.claims.core import Context, evaluate_claim
from nodebench.report import summary
from tests.test_summary import make_run, mnist_rows, sweep_rows, table

# ---- each rule kind --------------------------------------------------------------------------------------


def test_ratio_rule_either_way_and_the_weakest_pair_decides():
    rule = policy.RATIO
    assert rule.decide(pairs=[(0.50, 0.42)]) == policy.REPRODUCED  # 1.19x
    assert rule.decide(pairs=[(0.35, 0.42)]) == policy.REPRODUCED  # better by 1.2x
    assert rule.decide(pairs=[(0.80, 0.42)]) == policy.PARTLY  # 1.9x
    assert rule.decide(pairs=[(0.90, 0.42)]) == policy.NOT  # 2.1x
    assert rule.decide(pairs=[(math.nan, 0.42)]) == policy.NOT
    assert rule.decide(pairs=[(0.42, 0.42), (0.80, 0.42)]) == policy.PARTLY
    assert "within 1.25x" in rule.describe() and "within 2x" in rule.describe()


@pytest.mark.parametrize(
    ("ratio", "verdict"),
    [(0.5, "reproduced"), (0.41, "reproduced"), (0.62, "reproduced"), (0.39, "partly"), (0.84, "partly")]
    + [(0.9, "not"), (1.0, "not"), (2.8, "not"), (math.nan, "not")],
)
def test_half_rule_bands_come_from_its_thresholds(ratio, verdict):
    assert policy.HALF.decide(ratio=ratio) == verdict
    assert "0.40-0.625" in policy.HALF.describe() and "below 0.9" in policy.HALF.describe()


def test_ordering_trend_memory_threshold_drop_and_not_comparable():
    assert policy.ORDERING.decide(holds=[True, True]) == policy.REPRODUCED
    assert policy.ORDERING.decide(holds=[True, False]) == policy.PARTLY
    assert policy.ORDERING.decide(holds=[False]) == policy.NOT
    assert policy.TREND.decide(rhos=[1.0, 0.9]) == policy.REPRODUCED
    assert policy.TREND.decide(rhos=[0.5, 0.3]) == policy.PARTLY  # every one positive
    assert policy.TREND.decide(rhos=[0.9, -0.2]) == policy.PARTLY  # one strong
    assert policy.TREND.decide(rhos=[0.5, -0.2]) == policy.NOT
    expected = {"adjoint": "O(1)", "direct": "grows"}
    assert policy.MEMORY.decide(expected=expected, relative={"adjoint": 0.005, "direct": 1.0}) == "reproduced"
    assert policy.MEMORY.decide(expected=expected, relative={"adjoint": 0.5, "direct": 1.0}) == "partly"
    assert policy.BELOW.decide(final=[0.01, 0.02], first=[1.0, 1.0]) == policy.REPRODUCED
    assert policy.BELOW.decide(final=[0.01, 0.4], first=[1.0, 1.0]) == policy.PARTLY
    assert policy.BELOW.decide(final=[0.01, 1.4], first=[1.0, 1.0]) == policy.NOT
    assert policy.DROP.decide(drops=[12.0, 50.0]) == policy.REPRODUCED
    assert policy.DROP.decide(drops=[7.0, 50.0]) == policy.PARTLY
    assert policy.DROP.decide(drops=[0.9, 50.0]) == policy.NOT
    assert policy.UNPUBLISHED_SCALE.decide() == policy.NOT_COMPARABLE


def test_every_claim_names_a_rule_of_the_policy():
    assert {c.rule.name for c in claims.CLAIMS} <= set(policy.RULES)
    assert len({c.id for c in claims.CLAIMS}) == len(claims.CLAIMS)


# ---- on hand-made records ----------------------------------------------------------------------------


def _every_workload(runs: Path) -> None:
    """Hand-made runs holding the records of every declared claim."""
    make_run(
        runs,
        "mnist",
        "standard",
        [0, 1],
        mnist_rows({"mlp": 1.7, "resnet": 0.4, "rknet": 0.5, "odenet": 0.43}),
    )
    make_run(runs, "mnist", "standard", [1], mnist_rows({"odenet": 0.45}, seed=1))
    for preset, method, backward in (("figure3", "dopri5", 20.0), ("figure3-adams", "adams", 11.0)):
        rows = [
            ("odenet/iterations", 0, it, metric, value)
            for it in range(0, 40, 4)
            for metric, value in (("nfe_forward", 20.0), ("nfe_backward", backward))
        ]
        make_run(runs, "mnist", preset, [0], rows, config={"method": method})
    memory = [
        (mode, 0, L, "saved_bytes", slope * L + 100.0)
        for L in (4, 8, 16)
        for mode, slope in (("nodebench-direct", 1000.0), ("nodebench-adjoint", 0.0), ("resnet", 300.0))
    ]
    make_run(runs, "memory", "standard", [0], memory)
    latent = []
    for seed in (0, 1):
        latent.append(("data", seed, -1, "train_std", 4.0))
        for n, (rnn, ode) in {30: (0.40, 0.17), 50: (0.33, 0.15), 100: (0.18, 0.13)}.items():
            latent += [(f"rnn_tanh/n={n}", seed, -1, "rmse_extrap_truth", rnn)]
            latent += [(f"latent_ode/n={n}", seed, -1, "rmse_extrap_truth", ode)]
    make_run(runs, "latent", "standard", [0, 1], latent)
    sweep = sweep_rows("mnist_odenet/nodebench/dopri5", "test_error")
    make_run(
        runs, "tolerance", "mnist", [0], sweep + sweep_rows("mnist_odenet/nodebench/adams", "test_error")
    )
    make_run(runs, "tolerance", "standard", [0], sweep_rows("nodebench/dopri5", "task_mse"))
    nfe = [
        ("nodebench/seminorm/tol=1e-05", 0, it, metric, value)
        for it in (0, 50)
        for metric, value in (("nfe_forward", 30.0), ("nfe_backward", 14.0))
    ]
    make_run(runs, "nfe", "standard", [0], nfe)
    spiral = []
    for seed in (0, 1):
        for variant in ("example1/adjoint/dopri5", "example2/adjoint/dopri5"):
            metric = "W_err_max" if variant.startswith("example1") else "traj_mse"
            spiral += [(variant, seed, 0, metric, 1.0), (variant, seed, 500, metric, 0.01 + 0.5 * seed)]
            spiral += [(variant, seed, 0, "nfe_forward", 30.0), (variant, seed, 0, "nfe_backward", 80.0)]
    make_run(runs, "spiral", "standard", [0, 1], spiral)
    study = [
        (f"mnist/{solver}/{norm}/tol=1e-03", 0, it, metric, value)
        for solver, backward in (("lsoda", 11.0), ("dopri5", 20.0))
        for norm in ("full", "seminorm")
        for it in (0, 1)
        for metric, value in (
            ("nfe_forward", 20.0),
            ("nfe_backward", backward),
            ("f_forward", 20.0),
            ("f_backward", backward),
            ("vjp_backward", backward),
            ("time_forward", 1.0),
            ("time_backward", 1.0),
        )
    ]
    make_run(runs, "figure3c", "standard", [0], study)


@pytest.fixture
def full(tmp_path: Path) -> Path:
    _every_workload(tmp_path / "runs")
    return summary.build_summary([tmp_path / "runs"], tmp_path / "out" / "SUMMARY.md")


def test_every_claim_has_a_verdict_and_its_rule_is_on_the_page(full: Path):
    text, rows = full.read_text(), table(full)
    assert len(rows) == len(claims.CLAIMS)
    assert "not run" not in {row["verdict"] for row in rows.values()}
    how = text[text.index("## How to read it") :]
    for claim in claims.CLAIMS:
        row = rows[claim.label]
        assert row["rule"] == claim.rule.name, claim.id
        assert f"**{claim.rule.name}** rule: {claim.rule.describe()}." in how, claim.id
    # the absolute Table 2 values are not comparable and counted apart from the compared claims
    compared = len(claims.CLAIMS) - 2
    assert f"(of {compared} claims compared with the paper); apart from these, 2 not comparable" in text
    assert rows["Table 2, Latent ODE: extrapolation RMSE at n = 30/50/100"]["verdict"] == "not comparable"
    # five numbered lines open the page
    assert [line[:3] for line in text.splitlines()[4:9]] == ["1. ", "2. ", "3. ", "4. ", "5. "]


def test_seeds_that_disagree_are_shown_seed_by_seed(full: Path):
    rows = table(full)
    example1 = rows["Slides Example 1: learn W of dz/dt = Wz"]
    # seed 0 ends at 0.01 (below 0.05), seed 1 at 0.51 (improved only): partly, each seed shown
    assert example1["verdict"] == "partly"
    assert "per seed: 0: 0.01 (reproduced), 1: 0.51 (partly)" in example1["ours"]
    # seeds that agree are not spelled out
    assert "per seed" not in rows["Table 2: ratio latent ODE / RNN at n = 30/50/100"]["ours"]


def test_rules_and_verdicts_on_the_full_records(full: Path):
    rows = table(full)
    assert rows["Figure 3c per iteration: ODE-Net trained with adams"]["verdict"] == "reproduced"  # 0.55
    assert rows["Figure 3c per iteration: ODE-Net trained with dopri5"]["verdict"] == "not"  # 1.00
    study = rows["Figure 3c under the paper's solver (MNIST ODE-Net, LSODA through scipy)"]
    assert study["verdict"] == "reproduced" and study["ours"].startswith(
        "LSODA, full norm: backward/forward 0.55"
    )
    assert (
        rows["Figure 3c on the spiral-demo model (adjoint, dopri5, over training)"]["verdict"] == "reproduced"
    )
    assert rows["Figure 3c on the spiral examples (adjoint, dopri5)"]["verdict"] == "not"  # 2.7
    assert rows["Table 1 memory: adjoint O(1), RK-Net O(L~), ResNet O(L) in depth"]["verdict"] == "reproduced"
    ratio = rows["Table 2: ratio latent ODE / RNN at n = 30/50/100"]
    assert ratio["ours"] == "0.42/0.45/0.72" and ratio["verdict"] == "reproduced"
    # the RMSE row shows ours divided by train_std too
    assert (
        "/ train_std 0.043/0.037/0.033"
        in rows["Table 2, Latent ODE: extrapolation RMSE at n = 30/50/100"]["ours"]
    )


# ---- evidence, cost, provenance ----------------------------------------------------------------------


def test_a_preset_without_the_claims_variant_falls_through_to_the_next(tmp_path, monkeypatch):
    ids = iter(f"20260101T00000{i}Z-abcdef" for i in range(9))
    monkeypatch.setattr(store, "new_run_id", lambda: next(ids))
    runs = tmp_path / "runs"
    make_run(runs, "mnist", "standard", [0], mnist_rows({"mlp": 2.7, "odenet": 0.6}))
    mlp = make_run(runs, "mnist", "paper-mlp", [0], mnist_rows({"mlp": 1.3}))
    records = store.load_runs([runs])
    metas = [store.read_meta(d) for d in store.resolve_run_dirs([runs])]
    spec = claims.BY_ID["table1.mlp"].spec
    chosen = evidence.select(records, metas, spec)
    assert chosen.preset == "paper-mlp" and chosen.run_ids() == [mlp.name]
    chosen = evidence.select(records, metas, claims.BY_ID["table1.odenet"].spec)
    assert chosen.preset == "standard"  # paper-mlp holds no odenet rows
    # a config filter keeps other methods' runs out
    spec = evidence.Spec("mnist", ("standard",), "odenet", config={"method": ("adams", "dopri5")})
    assert evidence.select(records, metas, spec).empty


def test_cost_is_measured_cpu_time_where_units_recorded_it(tmp_path):
    run = make_run(tmp_path, "mnist", "standard", [0], mnist_rows({"odenet": 0.5}))
    meta = store.read_meta(run)
    measured = evidence.cost(meta)
    assert measured.measured and measured.cpu_seconds >= 0
    # a journal from before CPU time was recorded: the bound, wall time times threads
    (run / store.UNITS_FILE).write_text(json.dumps({"unit": "all", "end": 0}) + "\n")
    meta["attempts"] = [{"started_at": "2026-01-01T00:00:00+00:00", "ended_at": "2026-01-01T01:00:00+00:00"}]
    meta["config"] = {"threads": 2}
    bound = evidence.cost(meta)
    assert not bound.measured and bound.cpu_seconds == 7200.0 and bound.wall_seconds == 3600.0
    assert evidence.footprint([meta]).cpu_text() == "2.00 (bound)"


def test_tree_state_says_whether_the_diff_was_kept():
    assert evidence.tree_state({"attempts": [{"git_dirty": False}]}) == evidence.CLEAN
    saved = {"git_dirty": True, "uncommitted": {"diff": "uncommitted-1.diff"}}
    assert evidence.tree_state({"attempts": [saved]}) == evidence.SAVED_DIFF
    assert evidence.tree_state({"attempts": [saved, {"git_dirty": True}]}) == evidence.UNSAVED
    assert evidence.machine({"cpu": "Intel(R) Xeon(R) Processor @ 2.50GHz"}) == "Intel Xeon @ 2.50GHz"


def test_a_claim_whose_runs_lack_its_metric_is_not_run_and_says_which_runs(tmp_path):
    run = make_run(tmp_path, "mnist", "standard", [0], [("odenet", 0, 0, "train_loss", 1.0)])
    records = store.load_runs([run])
    result = evaluate_claim(claims.BY_ID["table1.odenet"], Context(records, [store.read_meta(run)]))
    assert result.verdict == policy.NOT_RUN and run.name in result.why
