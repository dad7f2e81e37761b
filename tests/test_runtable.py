"""results/README.md's run table comes from meta.json: wall time, threads, commands, killed attempts."""

from __future__ import annotations

import json

import pytest

from nodebench.report import runtable


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
        f"intro prose\n\n{runtable.START}\nold typed table, 38 min\n{runtable.END}\n\nmore prose\n"
    )
    assert runtable.main(["--check", str(readme)]) == 1
    assert runtable.main([str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro prose\n") and text.endswith("\n\nmore prose\n") and "38 min" not in text
    spiral, latent = runtable.rows(tmp_path / "runs")  # spiral sorts before latent
    assert (spiral["workload"], spiral["wall time"], spiral["threads"]) == ("spiral", "30 s", 2)
    assert spiral["commit"] == "- (dirty tree)"
    assert latent["wall time"] == "44.4 min + 1 killed attempt (no end recorded)"
    assert latent["threads"] == 1 and latent["command"] == "`nodebench run w`, resumed 1x"
    assert latent["commit"] == "`01234567`"
    assert runtable.main(["--check", str(readme)]) == 0


def test_a_readme_without_markers_is_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no table here\n")
    with pytest.raises(ValueError, match="markers"):
        runtable.render(readme)
