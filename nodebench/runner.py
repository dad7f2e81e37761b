"""The driver: one way to start or resume a run and to run a workload's units into it.

``nodebench run`` and ``nodebench reproduce`` both open a run with :func:`open_run` (a new run, or a
checked resume of an unfinished one) and fill it with :func:`run_units`: the workload's plan, minus
the units journalled earlier, goes to an :class:`Executor`; the driver journals each result (rows,
artifacts) in plan order. The driver is the only writer of the run store; units run anywhere an
executor puts them (:mod:`nodebench.units`).
"""

from __future__ import annotations

import ast
import dataclasses
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from nodebench import store, workloads
from nodebench.units import PARTIAL_ATTR, UnitResult, UnitSpec, UnitTask, execute_task, with_inputs
from nodebench.workloads.base import config_from_dict, config_to_dict


class RunSetupError(ValueError):
    """A run cannot be opened as asked (bad override, resume of another workload, ...)."""


class Executor(Protocol):
    """Runs units; the driver journals what it yields."""

    def run(self, tasks: Sequence[UnitTask], progress: Callable[[int], None]) -> Iterator[UnitResult]:
        """Run ``tasks`` and yield each result as it completes (any order).

        ``tasks`` are in plan order. A task may start only after the tasks named in its
        ``spec.depends_on`` that are among ``tasks`` have completed; their results' artifacts must be
        added to its inputs (:func:`nodebench.units.with_inputs`). Inputs from units completed in
        earlier attempts are already in ``task.inputs``. ``progress(n)`` advances the display.
        On the first failure, yield what completed, then raise that unit's exception (carrying the
        partial result as :data:`nodebench.units.PARTIAL_ATTR` where there is one); let
        ``KeyboardInterrupt`` through.
        """
        ...


class LocalExecutor:
    """Runs units one after another in this process, in plan order, with live progress."""

    name = "local"

    def describe(self) -> dict[str, Any]:
        """What ``meta.json`` records about the executor of an attempt."""
        return {"executor": self.name}

    def run(self, tasks: Sequence[UnitTask], progress: Callable[[int], None]) -> Iterator[UnitResult]:
        """See :meth:`Executor.run`."""
        done: dict[str, UnitResult] = {}
        for task in tasks:
            result = execute_task(with_inputs(task, done), progress)
            done[result.key] = result
            yield result


def _ray_executor(**options: Any) -> Executor:
    from nodebench.ray_executor import RayExecutor

    return RayExecutor(**options)


#: Executors by name (``nodebench run --executor NAME``); each value builds one from keyword options.
EXECUTORS: dict[str, Callable[..., Executor]] = {"local": LocalExecutor, "ray": _ray_executor}


def get_executor(name: str, **options: Any) -> Executor:
    """The executor registered as ``name``, built with ``options``.

    Raises:
        RunSetupError: unknown name, or options the executor does not take or refuses.
    """
    if name not in EXECUTORS:
        raise RunSetupError(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}")
    try:
        return EXECUTORS[name](**options)
    except (TypeError, ValueError) as exc:
        raise RunSetupError(f"--executor {name}: {exc}") from None


def describe_executor(executor: Executor) -> dict[str, Any]:
    """What ``meta.json`` records about an attempt's executor (its ``describe()``, else its class)."""
    describe = getattr(executor, "describe", None)
    return describe() if callable(describe) else {"executor": type(executor).__name__}


# --------------------------------------------------------------------------------------------------
# Configs


def parse_override(config: Any, assignment: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE`` (VALUE a Python literal, else a string) into a field of ``config`` and a value.

    Lists become tuples. Raises RunSetupError naming the known fields if KEY is not one.
    """
    key, sep, text = assignment.partition("=")
    names = {f.name for f in dataclasses.fields(config)}
    if not sep or key not in names:
        raise RunSetupError(f"--set expects KEY=VALUE with KEY one of {sorted(names)}, got {assignment!r}")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    return key, tuple(value) if isinstance(value, list) else value


def configure(
    module: ModuleType, preset: str, seeds: Sequence[int] | None = None, overrides: Sequence[str] = ()
) -> tuple[Any, str, str]:
    """The config of ``preset`` with ``seeds`` and ``KEY=VALUE`` overrides applied.

    Returns:
        ``(config, label, protocol)``: the preset label is ``preset`` or ``preset+KEY=VALUE,...``, and
        the protocol card gains a note naming the overrides.
    """
    if preset not in module.PRESETS:
        raise RunSetupError(
            f"--preset {preset}: workload {module.NAME!r} has presets {', '.join(module.PRESETS)}"
        )
    config = module.PRESETS[preset]
    overridden = dict(parse_override(config, item) for item in overrides)
    changes = dict(overridden)
    if seeds:
        changes["seeds"] = tuple(seeds)
    try:
        config = dataclasses.replace(config, **changes)
    except (TypeError, ValueError) as exc:
        raise RunSetupError(f"--set: {exc}") from None
    label = preset + ("+" + ",".join(f"{k}={v}" for k, v in overridden.items()) if overridden else "")
    note = "\n".join(f"- **Override**: `{k} = {v!r}`" for k, v in overridden.items())
    protocol = module.PROTOCOL + (f"\nThis run changes preset `{preset}`:\n\n{note}\n" if note else "")
    return config, label, protocol


# --------------------------------------------------------------------------------------------------
# Opening runs


def new_run(
    module: ModuleType,
    out: str | Path,
    preset: str = "smoke",
    device: str = "cpu",
    command: str | None = None,
    seeds: Sequence[int] | None = None,
    overrides: Sequence[str] = (),
) -> tuple[store.Recorder, Any]:
    """Start a new run of ``module`` in ``<out>/<workload>/<run-id>``; returns ``(recorder, config)``."""
    config, label, protocol = configure(module, preset, seeds, overrides)
    module.plan(config)  # a config the workload refuses fails here, before a run directory exists
    recorder = store.create_run(out, module.NAME, label, config_to_dict(config), device, protocol, command)
    _record_data(module, config, recorder)
    return recorder, config


def resume(
    module: ModuleType,
    run_dir: str | Path,
    command: str | None = None,
    preset: str | None = None,
    device: str | None = None,
    seeds: Sequence[int] | None = None,
) -> tuple[store.Recorder, Any]:
    """Reopen the unfinished run ``run_dir`` of ``module``; returns ``(recorder, config)``.

    ``preset``, ``device`` and ``seeds``, where given, must be the run's own.

    Raises:
        RunSetupError: not a run, another workload's run, a mismatch, complete or in use.
    """
    run_dir = Path(run_dir)
    try:
        meta = store.read_meta(run_dir)
    except (FileNotFoundError, store.RunStateError) as exc:
        raise RunSetupError(f"--resume {run_dir}: {exc}") from None
    if meta.get("workload") != module.NAME:
        raise RunSetupError(
            f"--resume {run_dir}: that run is of workload {meta.get('workload')!r}, not {module.NAME!r}"
        )
    for option, given, stored in (
        ("--preset", preset, meta.get("preset")),
        ("--device", device, meta.get("device")),
    ):
        if given is not None and given != stored:
            raise RunSetupError(
                f"{option} {given}: the run being resumed used {stored}; omit {option} to resume it"
            )
    if seeds and list(seeds) != list(meta.get("seeds") or []):
        raise RunSetupError(f"--seed {list(seeds)}: the run being resumed used seeds {meta.get('seeds')}")
    try:
        config = config_from_dict(module.Config, meta["config"])
        recorder = store.resume_run(run_dir, command)
    except (ValueError, store.RunStateError) as exc:
        raise RunSetupError(f"--resume {run_dir}: {exc}") from None
    _record_data(module, config, recorder)
    return recorder, config


def _record_data(module: ModuleType, config: Any, recorder: store.Recorder) -> None:
    """Put the checksums of the data files a workload reads (its ``data_provenance``) into ``meta.json``.

    Each attempt gets its own entry (data can be re-fetched between attempts); ``meta["data"]`` is the
    first attempt's.
    """
    describe = getattr(module, "data_provenance", None)
    if describe is None:
        return
    data = describe(config)
    recorder.meta["attempts"][-1]["data"] = data
    recorder.meta.setdefault("data", data)
    store.write_json_atomic(recorder.run_dir / store.META_FILE, recorder.meta)


def finished_seeds(run_dir: str | Path) -> list[int]:
    """The seeds of a stored run all of whose planned units are journalled, whatever its status.

    The plan is recomputed from the run's stored config; a seed counts when every unit of it and every
    unit belonging to no seed is journalled. So an interrupted run's finished seeds can be cited
    while its unfinished ones cannot (units of a seed depend on nothing of another seed's).
    """
    _, specs, done = _plan_and_journal(run_dir)
    return _finished_seeds(specs, done)


def _plan_and_journal(run_dir: str | Path) -> tuple[ModuleType, list[Any], set[str]]:
    """A stored run's workload module, its plan (from the stored config) and its journalled unit keys."""
    meta = store.read_meta(run_dir)
    module = workloads.load(meta["workload"])
    specs = module.plan(config_from_dict(module.Config, meta["config"]))
    return module, specs, set(store.journalled_units(run_dir))


def _finished_seeds(specs: list[Any], done: set[str]) -> list[int]:
    by_seed: dict[int | None, list[str]] = {}
    for spec in specs:
        seed = spec.params.get("seed")
        by_seed.setdefault(None if seed is None else int(seed), []).append(spec.key)
    if not all(key in done for key in by_seed.pop(None, [])):
        return []
    return sorted(seed for seed, keys in by_seed.items() if all(key in done for key in keys))


def finished_parts(run_dir: str | Path) -> dict[str, list]:
    """What of a stored run can be cited, whatever its status: its finished seeds, and its finished chains.

    Returns:
        ``{"seeds": finished_seeds(run_dir), "variants": [[name, seed], ...]}``. ``variants`` is filled
        for workloads that name a unit parameter ``VARIANT_PARAM`` (the records' variant, or its first
        path segment, e.g. mnist's ``model``): a (name, seed) counts when every unit of that seed with
        that name, every unit of that seed with no name and every unit of no seed is journalled. Such a
        chain depends on nothing outside it, so its records are final whether or not its seed finished.
    """
    module, specs, done = _plan_and_journal(run_dir)
    param = getattr(module, "VARIANT_PARAM", None)
    variants: list[list[Any]] = []
    if param is not None:
        chains: dict[tuple[str, int], list[str]] = {}
        shared: dict[int | None, list[str]] = {}  # units of no seed, and a seed's units of no name
        for spec in specs:
            seed = spec.params.get("seed")
            if seed is not None and param in spec.params:
                chains.setdefault((str(spec.params[param]), int(seed)), []).append(spec.key)
            else:
                shared.setdefault(None if seed is None else int(seed), []).append(spec.key)
        ready = {seed: all(k in done for k in keys) for seed, keys in shared.items()}
        if ready.pop(None, True):
            variants = [
                [name, seed]
                for (name, seed), keys in sorted(chains.items())
                if ready.get(seed, True) and all(k in done for k in keys)
            ]
    return {"seeds": _finished_seeds(specs, done), "variants": variants}


def unfinished_run(runs_root: str | Path, module: ModuleType, preset: str, device: str) -> Path | None:
    """The latest run of ``module`` at ``preset`` on ``device`` under ``runs_root`` if it is unfinished."""
    previous = store.find_runs(runs_root, module.NAME, preset, device)
    if previous and store.read_meta(previous[-1]).get("status") != "complete":
        return previous[-1]
    return None


# --------------------------------------------------------------------------------------------------
# Running


def check_plan(specs: Sequence[UnitSpec]) -> None:
    """Raise ValueError if keys repeat or a unit depends on one that is not planned before it."""
    seen: set[str] = set()
    for spec in specs:
        if spec.key in seen:
            raise ValueError(f"plan: unit key {spec.key!r} appears twice")
        missing = [key for key in spec.depends_on if key not in seen]
        if missing:
            raise ValueError(f"plan: unit {spec.key!r} depends on {missing}, not planned before it")
        seen.add(spec.key)


def pending_tasks(
    module: ModuleType, config: Any, recorder: store.Recorder, held: dict[str, UnitResult] | None = None
) -> list[UnitTask]:
    """The plan's units not journalled in ``recorder``'s run, as tasks with their stored inputs.

    Units in ``held`` (results kept by :meth:`~nodebench.store.Recorder.hold`, not yet journalled) are
    listed too, in plan order, and give their artifacts to the units depending on them. Sets the
    progress total and ticks the weight of the units journalled or held.
    """
    held = held or {}
    specs = module.plan(config)
    check_plan(specs)
    recorder.set_total(sum(spec.ticks for spec in specs))
    stored = config_to_dict(config)
    device = recorder.meta.get("device", "cpu")
    tasks = []
    for spec in specs:
        if recorder.completed(spec.key):
            recorder.tick(spec.ticks)
            continue
        if spec.key in held:
            recorder.tick(spec.ticks)
        inputs: dict[str, bytes] = {}
        for key in spec.depends_on:
            if recorder.completed(key):
                inputs.update(recorder.read_artifacts(key))
            elif key in held:
                inputs.update(held[key].artifacts)
        tasks.append(UnitTask(module.NAME, stored, device, spec, inputs))
    return tasks


def run_units(
    module: ModuleType, config: Any, recorder: store.Recorder, executor: Executor | None = None
) -> None:
    """Run every unit of ``module.plan(config)`` not yet journalled in ``recorder``'s run.

    Results are journalled in plan order as they become contiguous; one that arrives ahead of its turn
    is held on disk (:meth:`~nodebench.store.Recorder.hold`) meanwhile, so a run killed outright loses
    none and a resume journals the held ones without running them again. When a unit fails, the results
    that did complete are journalled too, the failing unit's partial rows are kept unjournalled (a
    resume drops them), and the exception propagates. Units that declare ``releases_inputs`` have
    their dependencies' artifacts deleted once they are journalled.
    """
    executor = executor or LocalExecutor()
    waiting: dict[str, UnitResult] = recorder.held()
    tasks = pending_tasks(module, config, recorder, waiting)
    by_key = {task.spec.key: task for task in tasks}
    position = 0
    attempt = len(recorder.meta.get("attempts", [])) - 1
    units: dict[str, Any] = recorder.meta.setdefault("units", {})
    host = socket.gethostname()

    def commit(result: UnitResult) -> None:
        recorder.commit(result)
        spec = by_key[result.key].spec
        if spec.releases_inputs:
            for key in spec.depends_on:
                recorder.delete_artifacts(key)
        where = dict(getattr(executor, "placements", {}).get(result.key) or {})
        where.setdefault("host", host)
        where.setdefault("device", recorder.meta.get("device", "cpu"))
        units[result.key] = {"attempt": attempt, **where}

    def flush() -> None:
        nonlocal position
        while position < len(tasks) and tasks[position].spec.key in waiting:
            commit(waiting.pop(tasks[position].spec.key))
            position += 1

    recorder.meta["attempts"][-1]["executor"] = describe_executor(executor)
    try:
        to_run = [task for task in tasks if task.spec.key not in waiting]
        flush()  # held results of an earlier attempt that are now in turn
        for result in executor.run(to_run, recorder.tick):
            if result.key not in by_key:
                raise RuntimeError(f"executor returned unit {result.key!r}, which was not asked for")
            if recorder.completed(result.key) or result.key in waiting:  # delivered twice
                continue
            waiting[result.key] = result
            flush()
            if result.key in waiting:  # ahead of its turn: kept on disk until then
                recorder.hold(result)
        if position != len(tasks):
            missing = [task.spec.key for task in tasks[position:] if task.spec.key not in waiting]
            raise RuntimeError(f"the executor finished without returning units {missing}")
    except BaseException as exc:
        for task in tasks[position:]:
            if task.spec.key in waiting:
                commit(waiting.pop(task.spec.key))
        partial = getattr(exc, PARTIAL_ATTR, None)
        if isinstance(partial, UnitResult):
            recorder.keep_unfinished(partial)
        raise
    finally:
        recorder.meta["attempts"][-1]["executor"] = describe_executor(executor)
