"""SUMMARY.md from hand-made records: verdict logic, missing runs, no model code, no absolute paths."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import pytest

from nodebench import claims, store
from nodebench.claims import policy
from nodebench.claims.core import Context, evaluate_claim
from nodebench.cli import main
from nodebench.report import summary


def make_run(
    out: Path,
    workload: str,
    preset: str,
    seeds: list[int],
    rows: list[tuple],
    status: str = "complete",
    config: dict | None = None,
) -> Path:
    """A run of ``workload`` whose records are ``rows`` of ``(variant, seed, step, metric, value)``."""
    config = {"seeds": seeds} | (config or {})
    recorder = store.create_run(out, workload, preset, config, "cpu", "## card", "test")
    with recorder.unit("all"):
        for variant, seed, step, metric, value in rows:
            recorder.record(variant, seed, step, metric, value)
    recorder.finish(status)
    return recorder.run_dir


def mnist_rows(
    errors: dict[str, float], seed: int = 0, nfe: tuple[float, float] = (20.0, 10.0)
) -> list[tuple]:
    params = {"mlp": 238510, "resnet": 576778, "rknet": 208266, "odenet": 208266}
    rows = []
    for model, error in errors.items():
        rows.append((model, seed, -1, "params", params[model]))
        for epoch in range(3):
            rows.append((model, seed, epoch, "test_error", error + (2 - epoch)))
            if model == "odenet":
                rows.append((model, seed, epoch, "nfe_forward", nfe[0] + epoch))
                rows.append((model, seed, epoch, "nfe_backward", nfe[1] + epoch / 2))
    return rows


def _section_rows(path: Path, heading: str) -> dict[str, dict[str, str]]:
    text = path.read_text()
    body = text[text.index(f"\n## {heading}\n") :].split("\n## ", 2)[1]
    lines = [line for line in body.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split(" | ")]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        rows[cells[0]] = dict(zip(header, cells))
    return rows


def table(path: Path) -> dict[str, dict[str, str]]:
    """The claims table as ``{claim: {column: cell}}``, verdict markup stripped."""
    rows = _section_rows(path, "The claims")
    for row in rows.values():
        row["verdict"] = row["verdict"].strip("*")
    return rows


def evidence(path: Path) -> dict[str, dict[str, str]]:
    """The evidence-and-cost table as ``{claim: {column: cell}}``."""
    return _section_rows(path, "Evidence and cost")


def test_missing_runs_are_not_run(tmp_path):
    before = set(sys.modules)
    # only a smoke MNIST run: smoke is never cited, so every claim is "not run"
    make_run(tmp_path / "runs", "mnist", "smoke", [0], mnist_rows({"odenet": 0.42}))
    path = summary.build_summary([tmp_path / "runs"], tmp_path / "SUMMARY.md")
    imported = set(sys.modules) - before
    assert not [n for n in imported if n.startswith(("nodebench.models", "nodebench.workloads"))]
    rows = table(path)
    assert len(rows) == len(claims.CLAIMS)
    assert {row["verdict"] for row in rows.values()} == {"not run"}
    assert rows["Table 1, ODE-Net: test error"]["ours"] == "not run"
    text = path.read_text()
    n = len(claims.CLAIMS)
    tally = "0 reproduced, 0 partly, 0 not (of 0 claims compared with the paper); apart from these, 0 not "
    assert f"Tally: {tally}comparable, {n} not run." in text
    assert "MNIST version: not drawn" in text and "Spiral version: not drawn" in text


def test_verdicts_from_records(tmp_path):
    runs = tmp_path / "runs"
    errors = {"mlp": 3.5, "resnet": 0.45, "rknet": 0.47, "odenet": 0.70}
    make_run(runs, "mnist", "standard", [0], mnist_rows(errors))
    # an unfinished run with a perfect score is ignored
    make_run(runs, "mnist", "standard", [0], mnist_rows({"odenet": 0.42}), status="interrupted")
    memory = []
    for L in (4, 8, 16):
        memory += [
            ("nodebench-direct", 0, L, "saved_bytes", 1000.0 * L + 50),
            ("nodebench-adjoint", 0, L, "saved_bytes", 300.0),
            ("resnet", 0, L, "saved_bytes", 200.0 * L),
        ]
    make_run(runs, "memory", "standard", [0], memory)
    latent = []
    for seed in (0, 1):
        for n, (rnn, ode) in {30: (0.40, 0.17), 50: (0.33, 0.60), 100: (0.18, 0.20)}.items():
            latent += [(f"rnn_tanh/n={n}", seed, -1, "rmse_extrap_truth", rnn + seed * 0.01)]
            latent += [(f"latent_ode/n={n}", seed, -1, "rmse_extrap_truth", ode + seed * 0.01)]
    make_run(runs, "latent", "standard", [0, 1], latent)

    path = summary.build_summary([runs], tmp_path / "SUMMARY.md")
    rows, cited = table(path), evidence(path)
    ode = rows["Table 1, ODE-Net: test error"]
    assert ode["verdict"] == "partly" and ode["rule"] == "ratio"  # 0.70 vs 0.42: 1.67x
    assert ode["ours"] == "0.70%"
    assert "3 of the paper's 160 epochs" in ode["why"] and "1 seed" in ode["why"]
    assert rows["Table 1, RK-Net: test error"]["verdict"] == "reproduced"
    assert rows["Table 1, 1-layer MLP: test error"]["verdict"] == "not"  # 2.2x
    memory_row = rows["Table 1 memory: adjoint O(1), RK-Net O(L~), ResNet O(L) in depth"]
    assert memory_row["verdict"] == "reproduced" and "ResNet 0.20 (grows)" in memory_row["ours"]
    # Figure 3c: backward/forward = (10 + e/2) / (20 + e): about half -> reproduced; 3d rises
    assert rows["Figure 3c: NFE backward vs forward (MNIST ODE-Net, epoch means)"]["verdict"] == "reproduced"
    assert rows["Figure 3d: NFE forward over training (MNIST ODE-Net)"]["verdict"] == "reproduced"
    # Table 2: absolute RMSE not comparable (tallied apart), mean over the two seeds with their sd
    rnn = rows["Table 2, RNN: extrapolation RMSE at n = 30/50/100"]
    assert rnn["verdict"] == "not comparable" and rnn["ours"].startswith("0.41/0.34/0.18 (sd 0.01/0.01/0.01)")
    assert cited["Table 2, RNN: extrapolation RMSE at n = 30/50/100"]["seeds"] == "0, 1"
    ordering = rows["Table 2: latent ODE below the RNN at every n"]
    assert ordering["verdict"] == "partly" and ordering["ours"] == "latent ODE below at n = 30"
    text = path.read_text()
    assert "(of 9 claims compared with the paper); apart from these, 2 not comparable" in text
    # workloads that did not run
    assert rows["Figure 3a: NFE vs numerical error (MNIST ODE-Net, dopri5)"]["verdict"] == "not run"
    assert rows["Slides Example 1: learn W of dz/dt = Wz"]["verdict"] == "not run"


def test_latest_run_per_seed_and_paper_preset_first(tmp_path, monkeypatch):
    ids = iter(f"20260101T00000{i}Z-abcdef" for i in range(9))  # runs started in this order
    monkeypatch.setattr(store, "new_run_id", lambda: next(ids))
    runs = tmp_path / "runs"
    make_run(runs, "mnist", "standard", [0], mnist_rows({"odenet": 5.0}))
    newer = make_run(runs, "mnist", "standard", [0], mnist_rows({"odenet": 0.42}))
    extra = make_run(runs, "mnist", "standard", [1], mnist_rows({"odenet": 0.44}, seed=1))
    path = summary.build_summary([runs], tmp_path / "S.md")
    ode, cited = table(path)["Table 1, ODE-Net: test error"], evidence(path)["Table 1, ODE-Net: test error"]
    assert cited["seeds"] == "0, 1" and cited["preset"] == "standard"
    assert cited["runs"] == f"`{newer.name}`, `{extra.name}`"
    assert ode["ours"] == "0.43 ± 0.01%"
    budget = make_run(runs, "mnist", "budget", [0], mnist_rows({"odenet": 0.45}))
    path = summary.build_summary([runs], tmp_path / "S.md")
    cited = evidence(path)["Table 1, ODE-Net: test error"]
    assert cited["preset"] == "budget" and cited["runs"] == f"`{budget.name}`"
    assert "the paper's schedule compressed" in table(path)["Table 1, ODE-Net: test error"]["why"]
    paper = make_run(runs, "mnist", "paper", [0], mnist_rows({"odenet": 0.41}))
    cited = evidence(summary.build_summary([runs], tmp_path / "S.md"))["Table 1, ODE-Net: test error"]
    assert cited["preset"] == "paper" and cited["runs"] == f"`{paper.name}`"


def test_latent_table2_cites_one_protocol_and_the_tanh_rnn(tmp_path, monkeypatch):
    """An earlier configuration of the preset is not pooled with the latest; the ratio is per seed."""
    ids = iter(f"20260101T00000{i}Z-abcdef" for i in range(9))
    monkeypatch.setattr(store, "new_run_id", lambda: next(ids))
    runs = tmp_path / "runs"
    old = [
        (f"{m}/n={n}", 0, -1, "rmse_extrap_truth", 9.0) for m in ("rnn", "latent_ode") for n in (30, 50, 100)
    ]
    old = [(v, seed, step, m, x) for v, _, step, m, x in old for seed in (0, 1)]
    make_run(runs, "latent", "standard", [0, 1], old, config={"cell": "gru"})
    new = []
    for seed, scale in ((1, 1.0), (2, 2.0)):
        for n in (30, 50, 100):
            new += [(f"rnn_tanh/n={n}", seed, -1, "rmse_extrap_truth", 1.0 * scale)]
            new += [(f"rnn_tanh_nodt/n={n}", seed, -1, "rmse_extrap_truth", 5.0)]
            new += [(f"latent_ode/n={n}", seed, -1, "rmse_extrap_truth", 0.4 * scale)]
    latest = make_run(runs, "latent", "standard", [1, 2], new, config={"patience": 5})
    path = summary.build_summary([runs], tmp_path / "S.md")
    rows, cited = table(path), evidence(path)
    rnn = rows["Table 2, RNN: extrapolation RMSE at n = 30/50/100"]
    assert rnn["ours"].startswith("1.50/1.50/1.50 (sd 0.71/0.71/0.71)")
    label = "Table 2, RNN: extrapolation RMSE at n = 30/50/100"
    assert cited[label]["runs"] == f"`{latest.name}`" and cited[label]["seeds"] == "1, 2"
    ratio = rows["Table 2: ratio latent ODE / RNN at n = 30/50/100"]
    assert ratio["paper"] == "0.42/0.47/0.74" and ratio["ours"] == "0.40/0.40/0.40"
    assert ratio["verdict"] == "partly"  # 0.40 vs 0.74 at n = 100: 1.86x


def test_cli_summary_has_no_absolute_paths(tmp_path, capsys):
    runs = tmp_path / "runs"
    make_run(runs, "mnist", "standard", [0], mnist_rows({"odenet": 0.5, "mlp": 1.6}))
    out = tmp_path / "results" / "SUMMARY.md"
    assert main(["report", "--summary", str(out), "--runs", str(runs)]) == 0
    assert "summary written to" in capsys.readouterr().out
    text = out.read_text()
    assert str(tmp_path) not in text and "/work/" not in text and "/home/" not in text
    assert not re.search(r"\]\(/", text)  # links are relative


def test_cli_summary_bad_path(tmp_path, capsys):
    assert main(["report", "--summary", str(tmp_path / "S.md"), str(tmp_path / "nope")]) == 2
    assert "no runs found" in capsys.readouterr().err


@pytest.mark.parametrize("claim", claims.CLAIMS, ids=lambda c: c.id)
def test_every_claim_handles_no_evidence(claim):
    records = pd.DataFrame(columns=[*store.COLUMNS, *store.META_COLUMNS])
    result = evaluate_claim(claim, Context(records, []))
    assert result.verdict == policy.NOT_RUN and claim.spec.workload in result.why


def sweep_rows(prefix: str, task: str) -> list[tuple]:
    rows = []
    for step, (tol, nfe, err, sec) in enumerate(
        [(1e-2, 20, 1e-2, 0.1), (1e-4, 40, 1e-4, 0.2), (1e-6, 80, 1e-6, 0.4)]
    ):
        rows += [(prefix, 0, step, "tol", tol), (prefix, 0, step, "nfe_forward", nfe)]
        rows += [(prefix, 0, step, "error_rms", err), (prefix, 0, step, "time_forward", sec)]
        rows += [(prefix, 0, step, task, 1.0 + step)]
    return rows


def test_figure3_four_panels_from_records(tmp_path, monkeypatch):
    from nodebench.report import figure3

    runs = tmp_path / "runs"
    make_run(runs, "mnist", "standard", [0], mnist_rows({"odenet": 0.5}))
    make_run(runs, "tolerance", "mnist", [0], sweep_rows("mnist_odenet/nodebench/dopri5", "test_error"))
    make_run(runs, "tolerance", "standard", [0], sweep_rows("nodebench/dopri5", "task_mse"))
    nfe = [
        (f"nodebench/seminorm/tol={tol}", seed, it, metric, value * (1 + it / 100))
        for tol in ("1e-03", "1e-05")
        for seed in (0, 1)
        for it in (0, 50, 100)
        for metric, value in (("nfe_forward", 30.0 + seed), ("nfe_backward", 15.0))
    ]
    make_run(runs, "nfe", "standard", [0, 1], nfe)
    drawn = []
    real_draw = figure3.draw
    monkeypatch.setattr(figure3, "draw", lambda *a, **k: drawn.append(real_draw(*a, **k)) or drawn[-1])
    path = summary.build_summary([runs], tmp_path / "out" / "SUMMARY.md")
    text = path.read_text()
    for name in ("figure3-mnist.png", "figure3-spiral.png"):
        assert f"(figures/{name})" in text
        assert (tmp_path / "out" / "figures" / name).read_bytes().startswith(b"\x89PNG")
    assert len(drawn) == 2
    for fig in drawn:
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        assert [t[:3] for t in titles] == ["(a)", "(b)", "(c)", "(d)"]
    mnist_fig = drawn[0]
    # (a): one colour per measured tolerance, and the legend names exactly those (no interpolated ones)
    legend = [t.get_text() for t in mnist_fig.axes[0].get_legend().get_texts()]
    assert legend == ["1e-2", "1e-4", "1e-6", "test error % (subset)"]
    # (c) carries the paper's y = x/2 line
    assert any(line.get_label() == "y = x/2 (paper)" for line in mnist_fig.axes[2].get_lines())
    assert "One seed (0)" in text and "Bands: ± one standard deviation over seeds 0, 1" in text
    rows = table(path)
    assert rows["Figure 3a: NFE vs numerical error (MNIST ODE-Net, dopri5)"]["verdict"] == "reproduced"
    assert "test error %" in rows["Figure 3a: NFE vs numerical error (MNIST ODE-Net, dopri5)"]["ours"]
    assert str(tmp_path) not in text


def test_an_interrupted_run_is_cited_for_its_finished_seeds_only(tmp_path, monkeypatch):
    ids = iter(f"20260101T00000{i}Z-abcdef" for i in range(9))
    monkeypatch.setattr(store, "new_run_id", lambda: next(ids))
    runs = tmp_path / "runs"
    rows = (
        mnist_rows({"odenet": 0.40})
        + mnist_rows({"odenet": 0.50}, seed=1)
        + mnist_rows({"odenet": 9.0}, seed=2)
    )
    cut = make_run(runs, "mnist", "standard", [0, 1, 2], rows, status="interrupted")
    rerun = make_run(runs, "mnist", "standard", [2], mnist_rows({"odenet": 0.60}, seed=2))
    claim = "Table 1, ODE-Net: test error"
    # without knowing which seeds it finished, the interrupted run is not cited
    assert evidence(summary.build_summary([runs], tmp_path / "S.md"))[claim]["seeds"] == "2"
    finished = {cut.name: [0, 1], rerun.name: [2]}
    path = summary.build_summary([runs], tmp_path / "S.md", lambda d: finished[Path(d).name])
    cited = evidence(path)[claim]
    assert cited["seeds"] == "0, 1, 2" and cited["runs"] == f"`{cut.name}`, `{rerun.name}`"
    ours = table(path)[claim]["ours"]  # seed 2's 9.0 from the cut run is not used
    assert ours.startswith("0.50 ± 0.10%") and "2: 0.60%" in ours


def test_an_interrupted_run_is_cited_for_its_finished_chains(tmp_path, monkeypatch):
    ids = iter(f"20260101T00000{i}Z-abcdef" for i in range(9))
    monkeypatch.setattr(store, "new_run_id", lambda: next(ids))
    runs = tmp_path / "runs"
    make_run(runs, "mnist", "standard", [0], mnist_rows({"mlp": 2.0, "resnet": 0.50, "odenet": 0.60}))
    # the budget run: ResNet's chain finished, ODE-Net's did not (its last epoch is not final)
    rows = mnist_rows({"resnet": 0.30}) + [r for r in mnist_rows({"odenet": 9.0}) if r[2] < 2]
    config = {"models": ["resnet", "odenet"], "epochs": 3}
    cut = make_run(runs, "mnist", "budget", [0], rows, status="interrupted", config=config)
    parts = {"seeds": [], "variants": [["resnet", 0]]}
    path = summary.build_summary([runs], tmp_path / "S.md", lambda d: parts if Path(d) == cut else [])
    cited = evidence(path)
    assert cited["Table 1, ResNet: test error"]["runs"] == f"`{cut.name}`"
    assert table(path)["Table 1, ResNet: test error"]["ours"].startswith("0.30%")
    assert cut.name not in cited["Table 1, ODE-Net: test error"]["runs"]  # the standard run instead
    assert table(path)["Table 1, ODE-Net: test error"]["ours"].startswith("0.60%")
    text = path.read_text()
    assert f"Unfinished run `{cut.name}` (preset `budget`, interrupted" in text
    assert "ResNet 3 of 3 epochs, test error 0.30% (cited)" in text
    assert "ODE-Net 2 of 3 epochs, test error 10.00% (not cited)" in text
    # Table 1's protocol columns in citation order whichever model has which protocols
    assert "| model | paper: test error | budget (3 ep.) | standard (3 ep.) | params (paper) |" in text
    # seeds alone (the older form of ``finished``) cite nothing of a run whose only seed is unfinished
    path = summary.build_summary([runs], tmp_path / "S2.md", lambda d: [])
    assert evidence(path)["Table 1, ResNet: test error"]["runs"] != f"`{cut.name}`"


def test_figure3_with_adams_beside_dopri5(tmp_path):
    runs = tmp_path / "runs"
    sweep = sweep_rows("mnist_odenet/nodebench/dopri5", "test_error")
    sweep += sweep_rows("mnist_odenet/nodebench/adams", "test_error")
    make_run(runs, "tolerance", "mnist", [0], sweep)
    for method, backward in (("dopri5", 20.0), ("adams", 7.0)):  # backward/forward 1.0 and 0.35
        rows = [
            ("odenet/iterations", 0, it, metric, value)
            for it in range(0, 40, 4)
            for metric, value in (("nfe_forward", 20.0), ("nfe_backward", backward))
        ]
        make_run(
            runs,
            "mnist",
            "figure3" if method == "dopri5" else "figure3-adams",
            [0],
            rows,
            config={"method": method},
        )
    path = summary.build_summary([runs], tmp_path / "out" / "SUMMARY.md")
    text, rows = path.read_text(), table(path)
    adams = rows["Figure 3c per iteration: ODE-Net trained with adams"]
    assert adams["ours"].startswith("backward/forward 0.35 (median of 10 iterations")
    assert adams["verdict"] == "partly"  # below 0.9 but outside 0.4-0.6
    assert rows["Figure 3c per iteration: ODE-Net trained with dopri5"]["verdict"] == "not"
    assert "Figure 3a: NFE vs numerical error (MNIST ODE-Net, adams)" in rows
    # the methods figure states the claims' verdicts, not verdicts of its own
    assert "- Figure 3c per iteration: ODE-Net trained with adams: backward/forward 0.35" in text
    assert "forward 20, backward 7 NFE — **partly**" in text
    assert (tmp_path / "out" / "figures" / "figure3-mnist-methods.png").read_bytes().startswith(b"\x89PNG")


def test_unfinished_mnist_runs_say_how_far_each_model_got():
    import pandas as pd

    from nodebench.report.summary import unfinished_mnist

    rows = [
        {"run_id": "r", "variant": "resnet", "seed": 0, "step": s, "metric": "test_error", "value": v}
        for s, v in ((0, 1.0), (1, 0.5))
    ]
    meta = {"run_id": "r", "workload": "mnist", "preset": "budget", "status": "interrupted",
            "config": {"models": ["resnet", "odenet"], "epochs": 4}}  # fmt: skip
    (line, _) = unfinished_mnist(pd.DataFrame(rows), [meta])
    assert "ResNet 2 of 4 epochs, test error 0.50%" in line and "ODE-Net 0 of 4 epochs" in line
    assert unfinished_mnist(pd.DataFrame(rows), [{**meta, "status": "complete"}]) == []
