"""results/README.md's run table comes from meta.json: wall time, threads, commands, killed attempts."""

from __future__ import annotations

import json

import pytest

from nodebench.report import prose, runtable


def _meta(root, workload, run_id, attempts, **extra):
    d = root / "runs" / workload / run_id
    d.mkdir(parents=True)
    meta = {
        "run_id": run_id,
        "workload": workload,
        "preset": "standard",
        "status": "complete",
        "cpu": "CPU X",
    }
    meta.update(extra, attempts=attempts, started_at=attempts[0]["started_at"])
    (d / "meta.json").write_text(json.dumps(meta))


def _attempt(start, end, command="nodebench run w", dirty=False):
    return {"started_at": start, "ended_at": end, "command": command, "git_dirty": dirty, "torch_threads": 2}


def test_the_table_is_what_meta_says_and_the_prose_stays(tmp_path):
    _meta(
        tmp_path,
        "latent",
        "r2",
        [
            _attempt("2026-01-01T00:00:00+00:00", None),
            _attempt("2026-01-01T01:00:00+00:00", "2026-01-01T01:44:24+00:00"),
        ],
        config={"threads": 1},
        git_commit="0123456789abcdef",
    )
    _meta(
        tmp_path,
        "spiral",
        "r1",
        [_attempt("2026-01-01T00:00:00+00:00", "2026-01-01T00:00:30+00:00", dirty=True)],
    )
    readme = tmp_path / "README.md"
    readme.write_text(
        "intro prose\n\n<!-- run-table:start -->\nold typed table, 38 min\n"
        "<!-- run-table:end -->\n\nmore prose\n"
    )
    sources = prose.Sources(tmp_path / "runs")
    assert prose.stale(readme, sources) == ["block run-table is out of date"]
    readme.write_text(prose.render(readme.read_text(), sources))
    text = readme.read_text()
    assert text.startswith("intro prose\n") and text.endswith("\n\nmore prose\n") and "38 min" not in text
    spiral, latent = runtable.rows(tmp_path / "runs")  # spiral sorts before latent
    assert (spiral["workload"], spiral["wall time"], spiral["threads"]) == ("spiral", "30 s", 2)
    assert (spiral["commit"], spiral["code"]) == ("-", "modified tree, diff not saved")
    assert latent["wall time"] == "44.4 min + 1 killed attempt (no end recorded)"
    assert latent["threads"] == 1 and latent["command"] == "`nodebench run w`, resumed 1x"
    assert (latent["commit"], latent["code"]) == ("`01234567`", "clean tree")
    assert prose.stale(readme, sources) == []


def test_an_unknown_block_is_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- run-tabel:start -->\nx\n<!-- run-tabel:end -->\n")
    with pytest.raises(prose.StaleFact, match="unknown block 'run-tabel'"):
        prose.render(readme.read_text(), prose.Sources(tmp_path))
