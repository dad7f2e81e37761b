"""Resident-set-size meters, and the body of :func:`nodebench.measure.run_in_fresh_process`'s child.

Only the standard library and psutil are imported here: the child runs this file as a script, so a
function measured in a fresh process pays for no import it does not make itself.

Peak RSS on Linux is the kernel's high-water mark ``VmHWM`` from ``/proc/self/status`` -- the figure
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` also reports -- read from ``/proc`` because it honours
:func:`reset_peak_rss`, whereas ``ru_maxrss`` can keep a peak from before the reset once worker
threads have exited. Elsewhere ``ru_maxrss`` is used. Either way the result is at least the current
RSS from ``psutil.Process().memory_info().rss``.
"""

from __future__ import annotations

import gc
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import psutil

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def current_rss_bytes() -> int:
    """Resident set size of this process now, in bytes (psutil)."""
    return int(psutil.Process().memory_info().rss)


def _vm_hwm_bytes() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_rss_bytes() -> int:
    """Peak resident set size of this process, in bytes (see the module docstring for the source).

    Returns:
        ``VmHWM`` on Linux, else ``ru_maxrss`` (KiB on Linux, bytes on macOS), at least the current RSS.
    """
    peak = _vm_hwm_bytes()
    if peak is None:
        import resource

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = maxrss if sys.platform == "darwin" else maxrss * 1024
    return max(peak, current_rss_bytes())


def reset_peak_rss() -> bool:
    """Reset the peak-RSS high-water mark to the current RSS (Linux ``/proc/self/clear_refs``).

    Returns:
        True if the mark was reset, False where the platform does not allow it.
    """
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _vm_hwm_bytes() is not None


def split_fn_path(fn_path: str) -> tuple[str, str]:
    """``"package.module:function"`` -> ``("package.module", "function")``; ValueError if malformed."""
    module, sep, name = fn_path.partition(":")
    if not sep or not module or not name.isidentifier():
        raise ValueError(f"fn_path must look like 'package.module:function', got {fn_path!r}")
    return module, name


def child_main(spec_path: str, out_path: str) -> None:
    """The child: take the parent's ``sys.path``, import, measure the baseline, call, write JSON."""
    spec: dict[str, Any] = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    sys.path[:] = spec["sys_path"]
    module_name, name = split_fn_path(spec["fn_path"])
    fn = getattr(importlib.import_module(module_name), name)
    gc.collect()
    baseline = current_rss_bytes()
    method = "reset" if reset_peak_rss() else "lifetime"
    result = fn(**spec["kwargs"])
    peak = peak_rss_bytes()
    if not isinstance(result, dict):
        raise TypeError(f"{spec['fn_path']} must return a dict, got {type(result).__name__}")
    payload = {"result": result, "peak": peak, "baseline": baseline, "method": method}
    Path(out_path).write_text(json.dumps(payload), encoding="utf-8")


if __name__ == "__main__":
    child_main(sys.argv[1], sys.argv[2])
