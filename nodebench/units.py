"""Units of work: what a workload plans, what runs one unit anywhere, and what comes back.

A workload is a list of units (:func:`plan`), each run by the workload's ``execute(spec, unit)``.
A unit's inputs are plain data -- a :class:`UnitTask`: the workload's name, its config as a dict,
the device, the :class:`UnitSpec` and the artifacts (bytes) of the units it depends on -- and its
outputs are a :class:`UnitResult`: rows and artifacts. Units never touch the run store; the driver
(:mod:`nodebench.runner`) journals results. So an executor other than the in-process loop (another
process, another machine) can run a unit: it ships the task, calls :func:`execute_task` there and
hands back the result.

This module imports nothing heavy at import time (a worker needs only this and the workload).
"""

from __future__ import annotations

import dataclasses
import operator
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

NO_STEP = -1
NO_SEED = -1


@dataclass(frozen=True)
class UnitSpec:
    """One unit of a workload's plan.

    Attributes:
        key: the journal key, unique in the run, no line breaks, e.g. ``"odenet/seed=0/epoch=3"``.
        params: plain (JSON-able) data the workload needs to run the unit, e.g. ``{"seed": 0}``.
        depends_on: keys of units that must complete first; their artifacts are this unit's inputs.
        ticks: the unit's progress weight (a unit skipped on resume or run remotely ticks it at once).
        releases_inputs: once this unit is journalled, the artifacts of its ``depends_on`` units are
            spent and the driver deletes them (e.g. the previous epoch's checkpoint).
    """

    key: str
    params: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    ticks: int = 1
    releases_inputs: bool = False


@dataclass(frozen=True)
class Row:
    """One measurement without the run's id and workload (the driver adds them).

    Fields as :meth:`nodebench.store.Recorder.record`; ``value`` is already a float.
    """

    variant: str
    seed: int
    step: int
    metric: str
    value: float
    unit: str = ""


@dataclass(frozen=True)
class UnitResult:
    """What a unit produced.

    Attributes:
        key: the unit's key.
        rows: the records, in the order they were made.
        artifacts: plain file name -> bytes (the driver keeps them in the run's ``checkpoints/``).
        load: the 1-minute load average where the unit ran, at its start and end (journalled, so
            reports can flag timings taken under load); ``None``: not known.
        cpus: logical CPUs where the unit ran.
        seconds: the unit's wall time and its process's CPU time (user + system, every thread) where
            it ran, in seconds (:func:`unit_clocks`); ``None``: not known.
    """

    key: str
    rows: tuple[Row, ...] = ()
    artifacts: dict[str, bytes] = field(default_factory=dict)
    load: tuple[float | None, float | None] | None = None
    cpus: int | None = None
    seconds: tuple[float, float] | None = None


@dataclass(frozen=True)
class UnitTask:
    """Everything needed to run one unit anywhere (picklable plain data).

    Attributes:
        workload: the registered workload name (:func:`nodebench.workloads.load`).
        config: the run's config as stored in ``meta.json`` (``config_to_dict``).
        device: the run's device, e.g. ``"cpu"`` or ``"cuda"``.
        spec: the unit.
        inputs: artifacts of the units in ``spec.depends_on`` (name -> bytes).
    """

    workload: str
    config: dict[str, Any]
    device: str
    spec: UnitSpec
    inputs: dict[str, bytes] = field(default_factory=dict)


#: The attribute of an exception raised by a unit that holds the unit's partial :class:`UnitResult`.
PARTIAL_ATTR = "nodebench_partial_result"


def check_text(name: str, value: Any, allow_empty: bool = False) -> str:
    """``value`` if a string without line breaks (non-empty unless ``allow_empty``); ValueError otherwise."""
    if not isinstance(value, str) or (not value and not allow_empty):
        raise ValueError(f"{name} must be a {'' if allow_empty else 'non-empty '}string, got {value!r}")
    if "\n" in value or "\r" in value:
        raise ValueError(f"{name} must not contain line breaks, got {value!r}")
    return value


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer ({-1} for none), got {value!r}") from None


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"value must be a number, got {value!r}") from None


def make_row(variant: str, seed: int, step: int, metric: str, value: Any, unit: str = "") -> Row:
    """A checked :class:`Row` (``value``: anything ``float()`` takes, e.g. a 0-d tensor).

    Raises:
        ValueError: a field has the wrong type, is empty where it may not be, or holds a line break.
    """
    return Row(
        check_text("variant", variant),
        _int("seed", seed),
        _int("step", step),
        check_text("metric", metric),
        _float(value),
        check_text("unit", unit, allow_empty=True),
    )


def check_artifact_name(name: str) -> str:
    """``name`` if it is a plain file name (no folder, not hidden); ValueError otherwise."""
    if not isinstance(name, str) or not name or name.startswith(".") or "/" in name or "\\" in name:
        raise ValueError(f"artifact name must be a plain file name, got {name!r}")
    return name


class UnitContext:
    """What a workload's ``execute(spec, unit)`` reads its inputs from and writes its outputs into.

    Attributes:
        key: the unit's key.
        config: the workload's config (its ``Config`` instance).
        device: the torch device to run on.
        inputs: artifacts of the units this one depends on (name -> bytes).
    """

    def __init__(
        self,
        key: str,
        config: Any,
        device: Any,
        inputs: Mapping[str, bytes] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.key = key
        self.config = config
        self.device = device
        self.inputs: Mapping[str, bytes] = dict(inputs or {})
        self._progress = progress
        self._rows: list[Row] = []
        self._artifacts: dict[str, bytes] = {}
        self.ticked = 0

    def record(self, variant: str, seed: int, step: int, metric: str, value: Any, unit: str = "") -> None:
        """Add one measurement (arguments as :meth:`nodebench.store.Recorder.record`)."""
        self._rows.append(make_row(variant, seed, step, metric, value, unit))

    def save(self, name: str, data: bytes) -> None:
        """Add an output artifact ``name`` (a plain file name, unique in the run)."""
        if not isinstance(data, bytes | bytearray):
            raise TypeError(f"artifact {name!r} must be bytes, got {type(data).__name__}")
        self._artifacts[check_artifact_name(name)] = bytes(data)

    def input(self, name: str) -> bytes:
        """The input artifact ``name``; KeyError naming what is there if it is missing."""
        try:
            return self.inputs[name]
        except KeyError:
            raise KeyError(
                f"unit {self.key!r} has no input artifact {name!r} (inputs: {sorted(self.inputs)})"
            ) from None

    def tick(self, n: int = 1) -> None:
        """Advance the progress display by ``n`` (a no-op where nobody watches)."""
        self.ticked += n
        if self._progress is not None:
            self._progress(n)

    def result(self) -> UnitResult:
        """The rows and artifacts so far."""
        return UnitResult(self.key, tuple(self._rows), dict(self._artifacts))


def load1() -> float | None:
    """The 1-minute load average (runnable processes, all users), or ``None`` where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def unit_clocks(since: tuple[float, float] | None = None) -> tuple[float, float]:
    """Wall and process CPU clocks now, or the seconds elapsed on each ``since`` an earlier reading.

    The CPU clock is this process's user + system time over all its threads, so a unit's CPU seconds
    are its real CPU cost (below its wall time when it waited for a core held by other load).
    """
    now = (time.perf_counter(), time.process_time())
    return now if since is None else (now[0] - since[0], now[1] - since[1])


def with_inputs(task: UnitTask, done: Mapping[str, UnitResult]) -> UnitTask:
    """``task`` with the artifacts of its ``depends_on`` units that are in ``done`` added to its inputs."""
    extra: dict[str, bytes] = {}
    for key in task.spec.depends_on:
        if key in done:
            extra.update(done[key].artifacts)
    return dataclasses.replace(task, inputs={**task.inputs, **extra}) if extra else task


def execute_task(task: UnitTask, progress: Callable[[int], None] | None = None) -> UnitResult:
    """Run one unit where this is called and return what it produced.

    Loads the workload, rebuilds its config from ``task.config`` and calls its ``execute`` (with torch
    pinned to the config's ``threads``, where it has that field, and restored after). If the
    unit raises, the exception propagates with the partial :class:`UnitResult` attached as the
    attribute :data:`PARTIAL_ATTR` (the driver keeps those rows, unjournalled, as a failed run's).

    Arguments:
        task: the unit and its inputs.
        progress: called with tick counts while the unit runs (``None``: no live progress).
    """
    import contextlib

    import torch

    from nodebench import workloads
    from nodebench.workloads.base import config_from_dict, torch_threads

    module = workloads.load(task.workload)
    config = config_from_dict(module.Config, task.config)
    context = UnitContext(task.spec.key, config, torch.device(task.device), task.inputs, progress)
    threads = getattr(config, "threads", None)  # a workload's pinned torch thread count, restored after
    load_start, clocks = load1(), unit_clocks()
    try:
        with torch_threads(threads) if threads else contextlib.nullcontext():
            module.execute(task.spec, context)
    except BaseException as exc:
        setattr(exc, PARTIAL_ATTR, context.result())
        raise
    if progress is not None and context.ticked < task.spec.ticks:
        progress(task.spec.ticks - context.ticked)
    return dataclasses.replace(
        context.result(), load=(load_start, load1()), cpus=os.cpu_count(), seconds=unit_clocks(clocks)
    )
