"""The published asv site renders offline in headless Chromium (skipped where Chromium is missing)."""

from __future__ import annotations

import json

import pytest

from benchmarks import asvtool, sitecheck

needs_chromium = pytest.mark.skipif(sitecheck.chromium() is None, reason="chromium is not installed")


@pytest.mark.parametrize(
    "cpu,cores,name",
    [
        ("Intel(R) Xeon(R) Processor @ 2.50GHz", 2, "intel-xeon-2.50ghz-2cpu"),
        ("AMD EPYC", 2, "amd-epyc-2cpu"),
        ("AMD EPYC 7B13 64-Core Processor", 16, "amd-epyc-7b13-64-core-16cpu"),
    ],
)
def test_asv_machine_names_say_the_cpu(cpu, cores, name):
    assert asvtool.machine_name(cpu, cores) == name


def test_the_committed_history_is_filed_by_cpu():
    for folder in asvtool.HISTORY.iterdir():
        if folder.is_dir():
            machine = json.loads((folder / "machine.json").read_text())
            assert (
                folder.name
                == machine["machine"]
                == asvtool.machine_name(machine["cpu"], int(machine["num_cpu"]))
            )


@needs_chromium
def test_the_offline_site_renders_the_grid_and_a_graph_with_data_points(tmp_path):
    site = tmp_path / "html"
    assert asvtool.publish(site) == []
    assert sitecheck.check(site) == []


@needs_chromium
def test_the_check_fails_on_the_site_asv_publishes_as_is(tmp_path):
    """Without the local copies the page needs the CDNs, which the check cannot reach: it must say so."""
    site = tmp_path / "html"
    asvtool.publish(site)
    index = site / "index.html"
    text = index.read_text()
    for url, local in asvtool.CDN.items():
        text = text.replace(f'src="vendor/{local}"', f'src="{url}"')
    index.write_text(text)
    problems = sitecheck.check(site, pages=("grid",))
    assert problems and any("did not load" in p or "0 plots" in p for p in problems)
