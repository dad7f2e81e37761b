"""Meters, timers and provenance (behaviour only; timings themselves live in benchmarks)."""

from __future__ import annotations

import pytest
import torch

from nodebench.measure import (
    SavedTensorsMeter,
    Timer,
    capture,
    cuda_peak_bytes,
    current_rss_bytes,
    median_time,
    peak_rss_bytes,
    run_in_fresh_process,
)


def test_saved_tensors_meter_counts_each_storage_once():
    a = torch.randn(1000, requires_grad=True)
    with SavedTensorsMeter() as meter:
        b = a.exp()  # saves its result b: 8000 bytes
        c = b[:500].sin()  # saves a view of b: same storage, not counted again
        d = c.cos()  # saves c: 4000 bytes
    assert (meter.bytes, meter.count, meter.saved) == (12000, 2, 3)
    d.sum().backward()
    assert a.grad is not None
    with SavedTensorsMeter() as meter, torch.no_grad():
        a.exp().sin()
    assert (meter.bytes, meter.count) == (0, 0)


def test_timer_and_median_time():
    with Timer("cpu") as timer:
        sum(range(1000))
    assert timer.seconds >= 0
    calls = []
    assert median_time(lambda: calls.append(1), repeats=3, warmup=2) >= 0
    assert len(calls) == 5
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        median_time(lambda: None, repeats=0)


def test_rss_and_cuda_meters_without_cuda():
    assert peak_rss_bytes() >= current_rss_bytes() > 0
    assert cuda_peak_bytes("cpu") is None


def test_fresh_process_measures_rss_growth():
    measured = run_in_fresh_process("tests.fresh_functions:allocate", {"megabytes": 64}, timeout=120)
    assert measured.result == {"allocated": 64 * 2**20}
    assert measured.rss_growth_bytes > 48 * 2**20
    assert measured.peak_rss_bytes == measured.baseline_rss_bytes + measured.rss_growth_bytes
    assert measured.peak_rss_method in ("reset", "lifetime")


def test_fresh_process_errors_are_clear():
    with pytest.raises(RuntimeError, match=r"(?s)exit code 1.*ValueError: toy failure in the child"):
        run_in_fresh_process("tests.fresh_functions:fail", timeout=120)
    with pytest.raises(ValueError, match="fn_path must look like 'package.module:function'"):
        run_in_fresh_process("tests.fresh_functions.fail")
    with pytest.raises(TypeError, match="kwargs for .*:allocate must be JSON-serialisable"):
        run_in_fresh_process("tests.fresh_functions:allocate", {"megabytes": object()})


def test_provenance_never_fails_outside_git(tmp_path, monkeypatch):
    from nodebench.measure import provenance

    assert provenance.git_state(tmp_path) == (None, None)
    monkeypatch.setattr(provenance, "_PACKAGE_DIR", tmp_path)
    info = capture("cpu", "nodebench run x")
    assert (info["git_commit"], info["git_dirty"], info["command"]) == (None, None, "nodebench run x")
    assert info["versions"]["torch"] == torch.__version__ and info["gpu"] is None
