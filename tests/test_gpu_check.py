"""``make gpu-check`` stops at once, saying why, where CUDA is not available."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from benchmarks import cuda_memory_probe, gpu_check


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


def test_gpu_check_probe_is_cuda_only(tmp_path):
    assert gpu_check.main(["--out", str(tmp_path), "--device", "cpu", "--steps", "probe"]) == 0
    summary = (tmp_path / "GPU_CHECK.md").read_text()
    assert "| probe | skipped | 0 | it measures CUDA memory (--device cuda only) |" in summary


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")
def test_cuda_memory_probe_without_cuda_says_why(capsys):
    assert cuda_memory_probe.main([]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_cuda_memory_probe_lists_the_blocks_alive_at_the_peak():
    mib = cuda_memory_probe.MIB
    torch_dir = str(Path(torch.__file__).resolve().parent)
    frame = [{"filename": f"{torch_dir}/nn/functional.py", "line": 1, "name": "conv"}]
    frame += [{"filename": "/opt/torch/venv/site-packages/torchdiffeq/_impl/rk.py", "line": 5, "name": "rk"}]
    frame += [{"filename": "/x/nodebench/solvers/rk.py", "line": 258, "name": "stage_input"}]
    trace = [
        {"action": "alloc", "addr": 1, "size": 2 * mib, "frames": frame},
        {"action": "alloc", "addr": 2, "size": 32 * mib, "frames": []},
        {"action": "alloc", "addr": 3, "size": 1 * mib, "frames": []},
        {"action": "free_requested", "addr": 3, "size": 1 * mib},
        {"action": "free_requested", "addr": 1, "size": 2 * mib},
        {"action": "alloc", "addr": 4, "size": 2 * mib, "frames": []},  # 34 MiB now, below the 35 peak
    ]
    blocks = cuda_memory_probe._alive_at_peak({"device_traces": [trace]}, blocks=2)
    assert [b["MiB"] for b in blocks] == [32.0, 2.0]  # the largest two of the three alive at 35 MiB
    # torch's own frames left out, torchdiffeq's kept though its path holds "/torch/"
    assert blocks[1]["where"] == "rk.py:5 rk <- rk.py:258 stage_input"
