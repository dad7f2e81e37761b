"""Was a run timed beside other load? From the load averages its unit journal holds (records only)."""

from __future__ import annotations

from typing import Any

from nodebench.store import unit_loads

#: Timings count as taken under load when the 1-minute load average at some unit's start or end
#: exceeded the run's own torch threads by this many runnable processes or more.
OTHER_LOAD = 1.0


def threads(meta: dict[str, Any]) -> int:
    """Torch threads the run computed with: its config's ``threads``, else its meta's count (at least 1)."""
    configured = (meta.get("config") or {}).get("threads")
    value = configured if configured is not None else meta.get("torch_threads")
    return int(value) if value else 1


def load_state(meta: dict[str, Any]) -> tuple[bool | None, str]:
    """Whether the run's timings were taken under load, and a sentence saying what was recorded.

    Returns:
        ``(None, text)`` when the run recorded no load averages (runs before load recording),
        otherwise ``(under_load, text)`` with the range of load averages, CPUs and threads.
    """
    run_dir = meta.get("run_dir")
    loads = unit_loads(run_dir) if run_dir else None
    if loads is None or loads[["load_start", "load_end"]].isna().all().all():
        return None, "load average not recorded (the run predates load recording)"
    values = loads[["load_start", "load_end"]].stack()
    cpus = loads["cpus"].dropna()
    own = threads(meta)
    under = bool(values.max() - own >= OTHER_LOAD)
    text = (
        f"1-minute load average {values.min():.1f}-{values.max():.1f} at unit starts and ends"
        f" ({len(loads)} units) on {int(cpus.max()) if not cpus.empty else '?'} CPUs, {own} torch thread(s)"
    )
    return under, text + (": **timings taken under load**" if under else ": no other load")
