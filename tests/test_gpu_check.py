"""``make gpu-check`` stops at once, saying why, where CUDA is not available."""

from __future__ import annotations

import time

import pytest
import torch

from benchmarks import gpu_check


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available: the check would run for minutes")
def test_gpu_check_without_cuda_fails_fast_and_says_why(tmp_path, capsys):
    start = time.monotonic()
    assert gpu_check.main(["--out", str(tmp_path), "--device", "cuda"]) == 2
    assert time.monotonic() - start < 30
    message = "CUDA is not available"
    assert message in capsys.readouterr().err
    summary = (tmp_path / "GPU_CHECK.md").read_text()
    assert message in summary and "nothing was run" in summary
    assert not (tmp_path / "runs").exists()


def test_gpu_check_skips_a_step_whose_tool_is_absent(tmp_path, monkeypatch):
    """A missing optional tool (ray here) is a skipped step with its reason, not a failure."""
    real = gpu_check.importlib.util.find_spec
    monkeypatch.setattr(
        gpu_check.importlib.util, "find_spec", lambda n, *a: None if n == "ray" else real(n, *a)
    )
    assert gpu_check.main(["--out", str(tmp_path), "--device", "cpu", "--steps", "ray"]) == 0
    summary = (tmp_path / "GPU_CHECK.md").read_text()
    assert "| ray | skipped | 0 | ray is not importable here" in summary
    assert "- ray: absent" in summary
