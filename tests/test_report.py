"""Reports are built from stored records and meta alone."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from nodebench import store, workloads
from nodebench.report import build_report, final_values, markdown_table

WORKLOAD = "ghostbench"  # deliberately not a registered workload: the report must not need its code
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_page(report: Path, run_dir: Path) -> str:
    """The per-run page of ``run_dir`` in the report folder ``report``."""
    return (report / "runs" / f"{run_dir.name}.md").read_text()


def make_run(out: Path, preset: str, seeds: list[int], fail: bool) -> Path:
    config = {"seeds": seeds, "width": 3}
    recorder = store.create_run(
        out, WORKLOAD, preset, config, "cpu", "## Ghost protocol\n\nMade up.", "ghost cmd"
    )
    for seed in seeds:
        for variant, accuracy in (("ode", 90.0 - 10 * seed), ("resnet", 95.0)):
            with recorder.unit(f"{variant}/{seed}"):
                for step in range(3):
                    recorder.record(variant, seed, step, "loss", 1.0 / (step + 1) + seed, "")
                recorder.record(variant, seed, store.NO_STEP, "accuracy", accuracy, "%")
    if fail:
        with pytest.raises(RuntimeError), recorder, recorder.unit("ode/99"):
            recorder.record("ode", 99, 0, "loss", 5.0, "")
            raise RuntimeError("boom")
    else:
        recorder.finish("complete")
    return recorder.run_dir


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    return [
        make_run(tmp_path / "runs", "smoke", [0, 1], fail=False),
        make_run(tmp_path / "runs", "standard", [0], fail=True),
    ]


def test_report_from_records_only(tmp_path, runs):
    assert WORKLOAD not in workloads.names()
    before = set(sys.modules)
    path = build_report(runs, tmp_path / "report")
    imported = set(sys.modules) - before
    assert not [name for name in imported if name.startswith(("nodebench.models", "nodebench.workloads"))]

    text = path.read_text()
    assert path == tmp_path / "report" / "REPORT.md"
    complete, failed = (store.read_meta(run)["run_id"] for run in runs)
    assert f"| {WORKLOAD} | smoke | [`{complete}`](runs/{complete}.md) | complete | cpu |" in text
    assert f"| {WORKLOAD} | standard | [`{failed}`](runs/{failed}.md) | failed | cpu |" in text
    # results lead, then the index; each run's detail is on its own page; ± is defined once at the top
    assert text.index("curves.png)") < text.index("## Runs") < text.index("## Machines and versions")
    assert "- command:" not in text and "Final values" not in text
    assert text.count("`a ± b` is the mean ± the sample standard deviation over seeds") == 1
    first, second = run_page(path.parent, runs[0]), run_page(path.parent, runs[1])
    assert "Status: **FAILED -- partial results**: RuntimeError: boom" in second
    assert "\n#### Ghost protocol\n" in first and "- command: `ghost cmd`" in first
    assert "](../REPORT.md)" in first
    # final values: mean and sample std over seeds of each seed's last value
    assert "| ode | accuracy | % | 85 | 7.071 | 2 |" in first
    assert "| resnet | accuracy | % | 95 | 0 | 2 |" in first
    assert "| ode | loss |  | 0.8333 | 0.7071 | 2 |" in first
    assert "| ode | loss |  | 2.667 | 3.3 | 2 |" in second  # failed run: the cut-off unit's row is kept
    assert "| run | workload | host | platform | CPU |" in second and failed in second
    machines = text[text.index("## Machines and versions") :]
    assert "| host | platform | CPU |" in machines and machines.rstrip().endswith("| 2 |")  # two runs
    for run_id in (complete, failed):
        figure = tmp_path / "report" / "figures" / f"{WORKLOAD}-{run_id}-curves.png"
        assert figure.read_bytes().startswith(PNG_MAGIC)
        assert f"](figures/{figure.name})" in text
        assert f"*Value of each stepped metric against its step, per variant; run `{run_id}`" in text


def test_workload_section_hook(tmp_path, runs, monkeypatch):
    calls = []

    def section(df: pd.DataFrame, metas: list[dict], out_dir: Path) -> str:
        calls.append((df, metas))
        (out_dir / "figures" / "ghost.png").write_bytes(PNG_MAGIC)
        figures = "![ghost plot](figures/ghost.png)\n\n![captioned](figures/ghost.png)\n\n*Mine.*"
        figures += f"\n\n![one run {metas[0]['run_id']}](figures/ghost.png)"
        return "Ghost section body\n\n" + figures

    hook = types.ModuleType(f"nodebench.report.{WORKLOAD}")
    hook.section = section
    monkeypatch.setitem(sys.modules, hook.__name__, hook)
    text = build_report(runs, tmp_path / "report").read_text()
    assert f"## {WORKLOAD}\n\nGhost section body" in text
    assert text.index("Ghost section body") < text.index("## Runs")
    # a figure without a caption gets one naming presets, and seeds only as far as the runs tell (the
    # generic caption cannot know which seeds the figure draws); one with a caption keeps it
    assert (
        "![ghost plot](figures/ghost.png)\n\n*ghost plot. Preset smoke, standard; the runs' seeds are 0, 1; "
        "the section does not say which of them the figure draws.*"
    ) in text
    assert "![captioned](figures/ghost.png)\n\n*Mine.*" in text
    ((df, metas),) = calls
    # a figure that names its run is captioned with that run's preset alone
    assert (
        f"![one run {metas[0]['run_id']}](figures/ghost.png)\n\n*one run {metas[0]['run_id']}. Preset smoke;"
        in text
    )
    assert len(df) == 2 * 2 * 4 + 2 * 4 + 1 and set(df["preset"]) == {"smoke", "standard"}
    assert [meta["preset"] for meta in metas] == ["smoke", "standard"]
    assert not list((tmp_path / "report" / "figures").glob("*-curves.png"))

    def broken(df: pd.DataFrame, metas: list[dict], out_dir: Path) -> str:
        raise KeyError("missing_metric")

    hook.section = broken
    text = build_report(runs, tmp_path / "report2").read_text()
    assert f"**The {WORKLOAD} section failed to build:**" in text and "KeyError: 'missing_metric'" in text
    assert "| ode | accuracy | % | 85 | 7.071 | 2 |" in run_page(tmp_path / "report2", runs[0])


def test_figure_metrics_leave_the_final_values(tmp_path, runs, monkeypatch):
    hook = types.ModuleType(f"nodebench.report.{WORKLOAD}")
    hook.section = lambda df, metas, out_dir: "Ghost section body"
    monkeypatch.setitem(sys.modules, hook.__name__, hook)
    schema = types.ModuleType(f"nodebench.schema.{WORKLOAD}")  # the workload's record schema names them
    schema.FIGURE_METRICS = (r"lo+ss",)  # whole-name match: "loss" is figure data, "accuracy" stays
    monkeypatch.setitem(sys.modules, schema.__name__, schema)
    build_report(runs[:1], tmp_path / "report")
    text = run_page(tmp_path / "report", runs[0])
    values = text[text.index("## Final values") : text.index("## Versions and machine")]
    assert "| ode | accuracy | % | 85 | 7.071 | 2 |" in values and "| loss |" not in values
    assert "Figure data (12 rows: `loss`) is left out of this table" in values

    schema.FIGURE_METRICS = (r"los",)  # a prefix alone does not match
    build_report(runs[:1], tmp_path / "report2")
    text = run_page(tmp_path / "report2", runs[0])
    assert "| ode | loss |  | 0.8333 | 0.7071 | 2 |" in text and "Figure data" not in text


def test_threads_are_the_configured_ones(tmp_path):
    recorder = store.create_run(
        tmp_path / "runs", WORKLOAD, "smoke", {"seeds": [0], "threads": 3}, "cpu", "", "c"
    )
    with recorder.unit("ode/0"):
        recorder.record("ode", 0, 0, "loss", 1.0, "")
    recorder.finish("complete")  # records the caller's thread count, which the workload restored
    build_report([recorder.run_dir], tmp_path / "report")
    text = run_page(tmp_path / "report", recorder.run_dir)
    assert ", 3 torch threads" in text and "| cpu | 3 |" in text


def test_report_rejects_no_runs(tmp_path):
    with pytest.raises(ValueError, match="run_dirs is empty"):
        build_report([], tmp_path)


def test_tables():
    records = pd.DataFrame(
        {
            "variant": ["a", "a", "a", "b"],
            "seed": [0, 0, 1, 0],
            "metric": ["m"] * 4,
            "unit": ["s"] * 4,
            "value": [1.0, 2.0, 4.0, float("nan")],
        }
    )
    table = final_values(records)
    assert table.to_dict("list") == {
        "variant": ["a", "b"],
        "metric": ["m", "m"],
        "unit": ["s", "s"],
        "value": [3.0, pytest.approx(float("nan"), nan_ok=True)],
        "std": [pytest.approx(2**0.5), pytest.approx(float("nan"), nan_ok=True)],
        "seeds": [2, 1],
    }
    assert markdown_table(pd.DataFrame({"x|y": ["p|q"], "n": [1.23456]})).splitlines() == [
        "| x\\|y | n |",
        "|---|---:|",
        "| p\\|q | 1.235 |",
    ]


def test_load_and_relative_run_directory(tmp_path, monkeypatch):
    from nodebench.claims.evidence import load_state

    monkeypatch.setattr(store.os, "getloadavg", lambda: (4.0, 0, 0))
    recorder = store.create_run(tmp_path / "runs", WORKLOAD, "smoke", {"seeds": [0], "threads": 1}, "cpu")
    with recorder.unit("u"):
        recorder.record("v", 0, 0, "time", 1.0, "s")
    recorder.finish("complete")
    meta = store.read_meta(recorder.run_dir)
    under, text = load_state(meta)
    assert under is True and "4.0-4.0" in text and "under load" in text
    monkeypatch.setattr(store.os, "getloadavg", lambda: (1.5, 0, 0))
    quiet = store.create_run(tmp_path / "runs", WORKLOAD, "smoke", {"seeds": [0], "threads": 1}, "cpu")
    with quiet.unit("u"):
        quiet.record("v", 0, 0, "time", 1.0, "s")
    quiet.finish("complete")
    assert load_state(store.read_meta(quiet.run_dir))[0] is False

    build_report([recorder.run_dir], tmp_path / "report")
    text = run_page(tmp_path / "report", recorder.run_dir)
    assert f"- run directory: `runs/{WORKLOAD}/{recorder.run_id}`" in text
    assert "**timings taken under load**" in text
    assert str(tmp_path) not in text and str(tmp_path) not in (tmp_path / "report" / "REPORT.md").read_text()


def test_placeholder_protocol_card_is_explained(tmp_path):
    recorder = store.create_run(tmp_path, WORKLOAD, "explore", {"seeds": [0]}, "cpu", "## Card\n\nTODO\n")
    with recorder.unit("u"):
        recorder.record("v", 0, 0, "m", 1.0)
    recorder.finish("complete")
    build_report([recorder.run_dir], tmp_path / "report")
    text = run_page(tmp_path / "report", recorder.run_dir)
    assert "\nTODO\n" not in text and "stored a placeholder instead of its protocol card" in text
