"""Numbers in the documents cannot go stale: every measured number in README.md, docs/protocols.md and
results/README.md is either rendered from the committed records (a marker that `nodebench report --docs`
fills) or recomputed here from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import metrics
from nodebench import odeint, runner
from nodebench.report import prose

ROOT = Path(__file__).resolve().parent.parent
#: Numbers with a unit that are settings or thresholds, not measurements (the snippet, and why).
NOT_MEASUREMENTS = {
    "within 8 minutes": "the GPU check's time budget",
    "within 2x of the baseline ratio": "the gate's tolerance",
    "at least 0.1 s, 0.5 s warm-up": "asv's sampling settings",
    "by more than 1.1x": "asv's default factor, the threshold the noise exceeds",
    "a planted 2x slowdown": "the size of a planted regression",
    "about 8 CPU hours": "the budget the budget preset was sized to",
}
UNIT = re.compile(
    r"(?<![\w.=-])\d+(?:\.\d+)?\s?(?:min|minutes|h|hours|s|ms|µs|CPU hours|NFE|GB|MB|MiB)(?!\w)"
    r"|(?<![\w.=-])\d+(?:\.\d+)?x(?!\w)"
)


@pytest.fixture(scope="module")
def sources() -> prose.Sources:
    return prose.Sources(ROOT / "results" / "runs", runner.finished_parts)


@pytest.mark.parametrize("name", prose.DOCUMENTS)
def test_every_marker_matches_the_committed_records(name, sources):
    problems = prose.stale(ROOT / name, sources)
    assert not problems, f"{name} is out of date (run `nodebench report --docs`): {problems}"


def test_a_planted_wrong_number_fails_the_check(tmp_path, sources):
    text = (ROOT / "results" / "README.md").read_text()
    match = prose.FACT.search(text)
    assert match is not None
    planted = text.replace(match.group(0), f"<!-- fact:{match['key']} -->9.9 min<!-- /fact -->", 1)
    (tmp_path / "doc.md").write_text(planted)
    (problem,) = prose.stale(tmp_path / "doc.md", sources)
    assert problem.startswith(f"fact {match['key']}: '9.9 min' -> ")
    # a block edited by hand is caught too
    block = (
        "<!-- verdict-rules:start -->\n- **ratio**: within 3x is reproduced.\n<!-- verdict-rules:end -->\n"
    )
    (tmp_path / "doc.md").write_text(block)
    assert prose.stale(tmp_path / "doc.md", sources) == ["block verdict-rules is out of date"]
    # rendering repairs both
    repaired = prose.render(planted + block, sources)
    (tmp_path / "doc.md").write_text(repaired)
    assert prose.stale(tmp_path / "doc.md", sources) == []


def test_a_fact_about_an_unknown_run_or_claim_fails_clearly(sources):
    with pytest.raises(prose.StaleFact, match="no run 'nope'"):
        prose.fact(sources, "wall:nope")
    with pytest.raises(prose.StaleFact, match="no claim 'table9'"):
        prose.fact(sources, "claim:table9")
    with pytest.raises(prose.StaleFact, match="unknown fact 'speed'"):
        prose.fact(sources, "speed:x")


@pytest.mark.parametrize("name", prose.DOCUMENTS)
def test_no_measured_number_is_typed_outside_a_marker(name):
    text = (ROOT / name).read_text()
    text = prose.FACT.sub("", prose.BLOCK.sub("", text))
    text = re.sub(r"(?s)```.*?```", "", text)
    typed = []
    for line in text.splitlines():
        for match in UNIT.finditer(line):
            if not any(snippet in line for snippet in NOT_MEASUREMENTS):
                typed.append(f"{match.group(0)!r} in: {line.strip()}")
    assert not typed, "render these from records (a fact marker) or check them in this file: " + "; ".join(
        typed
    )


def _readme_number(pattern: str) -> list[float]:
    text = re.sub(r"\s+", " ", (ROOT / "README.md").read_text())
    match = re.search(pattern, text)
    assert match is not None, f"README no longer says {pattern!r}"
    return [float(g) for g in match.groups()]


def test_readme_operation_counts_per_evaluation_are_the_codes():
    adams, dopri5 = _readme_number(
        r"dispatches about ([\d.]+) small tensor operations per evaluation beyond `func`'s own against "
        r"dopri5's ([\d.]+)"
    )
    assert adams == round(metrics.solver_ops_per_nfe("adams", "linear", 1e-8)["ops_per_nfe"], 1)
    assert dopri5 == round(metrics.solver_ops_per_nfe("dopri5", "linear", 1e-8)["ops_per_nfe"], 1)


def test_readme_dopri8_output_error_is_the_codes():
    dense, stepped = _readme_number(r"a maximum error of about ([\d.e-]+) against ([\d.e-]+) with `step_t`")
    func, y0, t, exact = metrics.linear_problem()
    for options, said in ((None, dense), ({"step_t": t}, stepped)):
        error = float(
            (odeint(func, y0, t, method="dopri8", rtol=1e-8, atol=1e-10, options=options) - exact).abs().max()
        )
        assert said / 1.5 <= error <= said * 1.5, (options, error, said)
