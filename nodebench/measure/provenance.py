"""Provenance: what code, which versions and which machine produced a run."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string with seconds, e.g. ``2024-05-01T12:00:00+00:00``."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state(path: Path | None = None) -> tuple[str | None, bool | None]:
    """Commit and dirty flag of the git checkout holding ``path``.

    Dirty means a tracked file differs from the commit, or an untracked file lies inside the
    ``nodebench`` package (uncommitted code that ran); other untracked files such as results do not count.

    Arguments:
        path: a directory inside the checkout (default: the installed package).

    Returns:
        ``(commit, dirty)``, or ``(None, None)`` when ``path`` is not in a git checkout or git is missing.
    """
    path = _PACKAGE_DIR if path is None else path
    top = _git(["rev-parse", "--show-toplevel"], path)
    commit = _git(["rev-parse", "HEAD"], path)
    status = _git(["status", "--porcelain", "--untracked-files=all"], path)
    if top is None or commit is None or status is None:
        return None, None
    package = path.resolve().relative_to(Path(top.strip()).resolve()).as_posix()
    prefix = "" if package == "." else package + "/"
    dirty = any(
        not line.startswith("??") or line[3:].startswith(prefix) for line in status.splitlines() if line
    )
    return commit.strip(), dirty


def save_uncommitted(run_dir: Path, tag: str, path: Path | None = None) -> dict[str, Any] | None:
    """Save what the checkout holds beyond its commit into ``run_dir``, so a dirty run can be rebuilt.

    Writes ``uncommitted-<tag>.diff`` (``git diff --binary HEAD``: every change to tracked files, staged
    or not) and ``untracked-<tag>.txt`` (untracked files git does not ignore, one path a line).

    Arguments:
        run_dir: the run directory.
        tag: distinguishes attempts of one run, e.g. ``"1"``.
        path: a directory inside the checkout (default: the installed package).

    Returns:
        ``{"diff", "diff_bytes", "untracked", "untracked_files"}`` (file names relative to ``run_dir``),
        or ``None`` when ``path`` is not in a git checkout or git is missing.
    """
    path = _PACKAGE_DIR if path is None else path
    top = _git(["rev-parse", "--show-toplevel"], path)
    if top is None:
        return None
    root = Path(top.strip())
    diff = _git(["diff", "--binary", "HEAD"], root)
    untracked = _git(["ls-files", "--others", "--exclude-standard"], root)
    if diff is None or untracked is None:
        return None
    names = {"diff": f"uncommitted-{tag}.diff", "untracked": f"untracked-{tag}.txt"}
    (run_dir / names["diff"]).write_text(diff)
    (run_dir / names["untracked"]).write_text(untracked)
    return {**names, "diff_bytes": len(diff.encode()), "untracked_files": len(untracked.splitlines())}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo``, else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def capture(device: torch.device | str = "cpu", command: str | None = None) -> dict[str, Any]:
    """Collect provenance for a run; never raises for a missing git, package or file.

    Arguments:
        device: the device the run uses; its GPU name is recorded when it is CUDA.
        command: the command line; ``None`` uses ``sys.argv``.

    Returns:
        A JSON-serialisable dict: ``git_commit``, ``git_dirty``, ``versions`` (python, torch,
        torchdiffeq, nodebench, numpy, pandas), ``device``, ``cpu``, ``gpu``, ``cuda_version``,
        ``torch_threads``, ``cpu_count``, ``hostname``, ``platform``, ``started_at`` and ``command``.
    """
    device = torch.device(device)
    commit, dirty = git_state()
    gpu = None
    if device.type == "cuda" and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(device)
    nodebench_version = getattr(sys.modules.get("nodebench"), "__version__", None) or _version("nodebench")
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchdiffeq": _version("torchdiffeq"),
            "nodebench": nodebench_version,
            "numpy": _version("numpy"),
            "pandas": _version("pandas"),
        },
        "device": str(device),
        "cpu": cpu_model(),
        "gpu": gpu,
        "cuda_version": torch.version.cuda,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "started_at": utc_now(),
        "command": command if command is not None else shlex.join(sys.argv),
    }
