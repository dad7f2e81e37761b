"""Memory meters: bytes saved for backward, peak RSS, CUDA peak, and measurement in a fresh process.

For how peak RSS is read see :mod:`nodebench.measure._rss`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

from nodebench.measure import _rss
from nodebench.measure._rss import current_rss_bytes, peak_rss_bytes, reset_peak_rss, split_fn_path

__all__ = [
    "FreshProcessResult",
    "SavedTensorsMeter",
    "cuda_peak_bytes",
    "current_rss_bytes",
    "peak_rss_bytes",
    "reset_cuda_peak",
    "reset_peak_rss",
    "run_in_fresh_process",
]


class SavedTensorsMeter:
    """Adds up the bytes of the tensors autograd saves for backward inside the block.

    Each distinct storage counts once, so views of one storage are not double-counted; a storage
    freed and its address reused within the block counts again. Parameters and inputs saved by an op
    count too. Use one meter per forward pass to be measured.

    Example::

        with SavedTensorsMeter() as meter:
            loss = model(x).sum()
        meter.bytes, meter.count

    Attributes:
        bytes: total bytes of the distinct storages saved.
        count: number of distinct storages saved.
        saved: number of tensors saved (views of one storage counted each time).
    """

    def __init__(self) -> None:
        self.bytes = 0
        self.count = 0
        self.saved = 0
        self._seen: dict[tuple[str, int], weakref.ref] = {}
        self._hooks: torch.autograd.graph.saved_tensors_hooks | None = None

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        self.saved += 1
        try:
            storage = tensor.untyped_storage()
        except (NotImplementedError, RuntimeError):  # sparse and other storage-less layouts
            self.bytes += tensor.element_size() * tensor.nelement()
            self.count += 1
            return tensor
        key = (str(tensor.device), storage.data_ptr())
        known = self._seen.get(key)
        if known is None or known() is not storage:
            self._seen[key] = weakref.ref(storage)
            self.bytes += storage.nbytes()
            self.count += 1
        return tensor

    @staticmethod
    def _unpack(tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def __enter__(self) -> SavedTensorsMeter:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._hooks is not None
        self._hooks.__exit__(exc_type, exc, tb)
        self._hooks = None
        self._seen.clear()


def reset_cuda_peak(device: torch.device | str) -> None:
    """Reset CUDA peak-memory statistics of ``device``; a no-op for non-CUDA devices or without CUDA."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats(device)


def cuda_peak_bytes(device: torch.device | str) -> int | None:
    """Peak bytes allocated by tensors on ``device`` since the last :func:`reset_cuda_peak`.

    Arguments:
        device: the device; anything but an available CUDA device gives ``None``.

    Returns:
        ``torch.cuda.max_memory_allocated(device)``, or ``None`` when it does not apply.
    """
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return int(torch.cuda.max_memory_allocated(device))


@dataclass(frozen=True)
class FreshProcessResult:
    """What :func:`run_in_fresh_process` returns.

    Attributes:
        result: the dict the function returned.
        peak_rss_bytes: the child's peak RSS over the call (see ``peak_rss_method``).
        baseline_rss_bytes: the child's RSS after its imports, just before the call.
        rss_growth_bytes: ``peak_rss_bytes - baseline_rss_bytes``.
        peak_rss_method: ``"reset"`` when the high-water mark was reset at the baseline, so the peak is
            that of the call alone; ``"lifetime"`` when it could not be, so the peak may be an import's.
    """

    result: dict[str, Any]
    peak_rss_bytes: int
    baseline_rss_bytes: int
    rss_growth_bytes: int
    peak_rss_method: str


def run_in_fresh_process(
    fn_path: str, kwargs: dict[str, Any] | None = None, timeout: float | None = None
) -> FreshProcessResult:
    """Call a module-level function in a fresh Python process and measure that process's memory.

    The child runs ``sys.executable`` with the parent's ``sys.path`` and working directory, imports the
    function's module, measures its RSS (the baseline), calls ``function(**kwargs)`` and reports the
    peak RSS after the call.

    Arguments:
        fn_path: ``"package.module:function"``; the function must return a JSON-serialisable dict.
        kwargs: JSON-serialisable keyword arguments.
        timeout: seconds before the child is killed; ``None`` waits for ever.

    Returns:
        A :class:`FreshProcessResult`.

    Raises:
        ValueError: ``fn_path`` is malformed.
        TypeError: ``kwargs`` is not JSON-serialisable.
        RuntimeError: the child failed or timed out; the message holds the tail of its stderr.
    """
    split_fn_path(fn_path)
    kwargs = {} if kwargs is None else kwargs
    try:
        spec_text = json.dumps(
            {
                "fn_path": fn_path,
                "kwargs": kwargs,
                "sys_path": [os.path.abspath(p) if p == "" else p for p in sys.path],
            }
        )
    except TypeError as exc:
        raise TypeError(f"kwargs for {fn_path} must be JSON-serialisable: {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="nodebench-fresh-") as tmp:
        spec_path, out_path = Path(tmp, "spec.json"), Path(tmp, "result.json")
        spec_path.write_text(spec_text, encoding="utf-8")
        # -P: the script's folder does not go on sys.path; the child takes the parent's sys.path instead
        command = [sys.executable, "-P", _rss.__file__, str(spec_path), str(out_path)]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
            raise RuntimeError(
                f"{fn_path} did not finish within {timeout} s in a fresh process; stderr tail:\n"
                f"{_tail(stderr or '')}"
            ) from None
        if proc.returncode != 0 or not out_path.exists():
            raise RuntimeError(
                f"{fn_path} failed in a fresh process (exit code {proc.returncode}); stderr tail:\n"
                f"{_tail(proc.stderr)}"
            )
        payload = json.loads(out_path.read_text(encoding="utf-8"))
    return FreshProcessResult(
        result=payload["result"],
        peak_rss_bytes=payload["peak"],
        baseline_rss_bytes=payload["baseline"],
        rss_growth_bytes=payload["peak"] - payload["baseline"],
        peak_rss_method=payload["method"],
    )


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty)"
