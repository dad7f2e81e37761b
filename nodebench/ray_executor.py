"""Run a workload's units as Ray tasks (``nodebench run W --executor ray``).

Ray is imported only when this executor runs (``pip install nodebench[ray]``). Each unit is one Ray
task in its own worker process: it receives plain data (a :class:`nodebench.units.UnitTask`: the
workload's name, its config as a dict, the device, the unit and its input artifacts as bytes) and
returns a :class:`nodebench.units.UnitResult` (rows and artifacts) plus where it ran. The driver alone
writes the run store, so nodes need no shared filesystem, and the store's lock, fsync and resume
guarantees are those of a serial run.

- Dependencies: a unit is submitted once every unit it depends on has returned (an epoch after the one
  before); their artifacts travel with it.
- Faults: a worker or node that dies mid-unit makes Ray retry the unit (``max_retries``); an exception
  raised by the unit itself is not retried (it would fail again). A unit that still fails does not
  stop the others: every unit not depending on it runs, then the failure is raised, so the run ends
  ``failed`` with everything else journalled and ``--resume`` runs only what is missing.
- Placement: workloads whose records are timings compared across units declare
  ``RAY_PLACEMENT = "serial"``; their units then run one at a time on one node, each holding every
  CPU of that node (and a whole GPU when GPUs are asked for), so nothing of ours runs beside a timed
  unit and all of a run's timings come from the same machine. Other workloads (``"parallel"``, the
  default) pack units by ``cpus_per_unit`` / ``gpus_per_unit`` (fractions share a GPU).

Workers pin torch threads to the workload config's ``threads`` (:func:`nodebench.units.execute_task`);
Ray also sets ``OMP_NUM_THREADS`` to the task's CPU count. Every node needs the same nodebench (and
any workload registered at run time importable under the same module path).
"""

from __future__ import annotations

import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from nodebench.units import PARTIAL_ATTR, UnitResult, UnitTask, with_inputs

PLACEMENTS = ("parallel", "serial")
#: Object store size of an embedded local Ray started by nodebench (units exchange small artifacts).
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20


class RayNotInstalled(RuntimeError):
    """``--executor ray`` was asked for but ray cannot be imported."""


class UnitsFailed(RuntimeError):
    """Units failed under the Ray executor after their retries; the others completed."""


def import_ray() -> Any:
    """The ``ray`` module, or :class:`RayNotInstalled` saying how to get it."""
    try:
        import ray
    except ImportError as exc:
        raise RayNotInstalled(
            f"--executor ray needs Ray, which is not importable here ({exc}); "
            "install it with `pip install 'nodebench[ray]'`"
        ) from None
    return ray


def placement_of(module: Any) -> str:
    """The workload module's ``RAY_PLACEMENT`` (default ``"parallel"``), checked."""
    placement = getattr(module, "RAY_PLACEMENT", "parallel")
    if placement not in PLACEMENTS:
        raise ValueError(
            f"workload {module.NAME!r}: RAY_PLACEMENT must be one of {PLACEMENTS}, got {placement!r}"
        )
    return placement


def _run_unit(task: UnitTask, module_path: str | None) -> tuple[UnitResult, dict[str, Any]]:
    """The body of one Ray task: run the unit here, return its result and where it ran."""
    from nodebench import workloads
    from nodebench.units import execute_task

    if module_path is not None:  # workloads registered at run time in the driver (plug-ins, tests)
        workloads.register(task.workload, module_path)
    started = time.time()
    result = execute_task(task)
    placement: dict[str, Any] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "device": task.device,
        "started_at": round(started, 3),
        "seconds": round(time.time() - started, 3),
    }
    try:
        import ray

        context = ray.get_runtime_context()
        placement["node_id"] = context.get_node_id()
        gpu_ids = ray.get_gpu_ids()
        if gpu_ids:
            placement["gpu_ids"] = [str(gpu) for gpu in gpu_ids]
    except Exception:  # pragma: no cover - outside Ray (direct calls in tests)
        pass
    if task.device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            placement["device_name"] = torch.cuda.get_device_name(torch.device(task.device))
    return result, placement


class RayExecutor:
    """Runs units as Ray tasks; see the module docstring.

    Arguments:
        address: a running cluster's address (``ray start --head`` printed it; ``"auto"`` finds a
            local one). ``None``: connect to the Ray this process already initialised, else start an
            embedded local Ray with this machine's CPUs (stopped again afterwards).
        cpus_per_unit: CPUs each unit reserves (parallel placement).
        gpus_per_unit: GPUs each unit reserves; a fraction packs units on a GPU. ``None``: 1 for a
            CUDA run, else 0.
        max_retries: how often Ray reruns a unit whose worker or node died.
        init_options: extra keyword arguments for ``ray.init`` when this executor starts Ray.

    Call :meth:`close` when done: a Ray this executor started (embedded or connected) is released.

    Attributes:
        placements: per completed unit of the last :meth:`run`, where it ran (host, node, pid, device,
            GPU ids, start time, seconds).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        cpus_per_unit: float = 1.0,
        gpus_per_unit: float | None = None,
        max_retries: int = 3,
        init_options: dict[str, Any] | None = None,
    ) -> None:
        if not (math.isfinite(cpus_per_unit) and cpus_per_unit > 0):
            raise ValueError(f"--cpus-per-unit must be a positive number, got {cpus_per_unit}")
        if gpus_per_unit is not None and not (math.isfinite(gpus_per_unit) and gpus_per_unit >= 0):
            raise ValueError(f"--gpus-per-unit must be a number >= 0, got {gpus_per_unit}")
        if gpus_per_unit is not None and gpus_per_unit > 1 and gpus_per_unit != int(gpus_per_unit):
            raise ValueError(f"--gpus-per-unit above 1 must be a whole number, got {gpus_per_unit}")
        if max_retries < 0:
            raise ValueError(f"--max-retries must be >= 0, got {max_retries}")
        self.address = address
        self.cpus_per_unit = cpus_per_unit
        self.gpus_per_unit = gpus_per_unit
        self.max_retries = max_retries
        self.init_options = dict(init_options or {})
        self.placements: dict[str, dict[str, Any]] = {}
        self._cluster: dict[str, Any] = {}
        self._started = False

    # ---- description for meta.json

    def describe(self) -> dict[str, Any]:
        """What meta.json records about this executor (after :meth:`run`: the cluster it used)."""
        return {
            "executor": self.name,
            "address": self.address or "embedded local Ray",
            "cpus_per_unit": self.cpus_per_unit,
            "gpus_per_unit": self.gpus_per_unit,
            "max_retries": self.max_retries,
            **self._cluster,
        }

    # ---- running

    def _connect(self, ray: Any) -> None:
        """Initialise Ray unless this process already did (then that Ray is used)."""
        if ray.is_initialized():
            return
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
        if self.address is None:
            options["object_store_memory"] = LOCAL_OBJECT_STORE_BYTES
        options.update(self.init_options)
        # ray.init installs its own SIGTERM handler (it exits with SystemExit, and a run would be recorded
        # as failed); the caller's handler (the CLI's: SIGTERM interrupts a run) is put back
        previous = signal.getsignal(signal.SIGTERM)
        ray.init(address=self.address, **options)
        if previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
        self._started = True

    def close(self) -> None:
        """Disconnect from Ray if :meth:`run` connected (an embedded Ray stops with it)."""
        if self._started:
            import_ray().shutdown()
            self._started = False

    def _resources(self, ray: Any, device: str, placement: str) -> tuple[dict[str, Any], int | None]:
        """Task options for every unit of the run, and the most units in flight (None: no limit)."""
        gpus = self.gpus_per_unit
        if gpus is None:
            gpus = 1.0 if device.startswith("cuda") else 0.0
        if device.startswith("cuda") and gpus == 0:
            raise ValueError(
                "a CUDA run on Ray needs --gpus-per-unit > 0 (Ray hides GPUs from tasks without)"
            )
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        total_gpus = sum(node.get("Resources", {}).get("GPU", 0) for node in nodes)
        if gpus > 0 and total_gpus == 0:
            raise ValueError(f"--gpus-per-unit {gpus}: the Ray cluster has no GPU")
        self._cluster = {
            "nodes": len(nodes),
            "cluster_cpus": sum(node.get("Resources", {}).get("CPU", 0) for node in nodes),
            "cluster_gpus": total_gpus,
            "ray_version": ray.__version__,
            "placement": placement,
        }
        options: dict[str, Any] = {"max_retries": self.max_retries, "retry_exceptions": False}
        if placement == "parallel":
            return options | {"num_cpus": self.cpus_per_unit, "num_gpus": gpus}, None
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        candidates = [n for n in nodes if n.get("Resources", {}).get("GPU", 0) >= math.ceil(gpus)]
        if not candidates:
            raise ValueError(f"no Ray node has {math.ceil(gpus)} GPU(s) for a serial-placement workload")
        node = max(candidates, key=lambda n: (n["Resources"].get("CPU", 0), n["NodeID"]))
        self._cluster["serial_node"] = node.get("NodeManagerHostname", node["NodeID"])
        options |= {
            "num_cpus": node["Resources"].get("CPU", 1),
            "num_gpus": math.ceil(gpus),
            "scheduling_strategy": NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
        }
        return options, 1

    def run(self, tasks: Sequence[UnitTask], progress: Callable[[int], None]) -> Iterator[UnitResult]:
        """Run ``tasks`` on Ray; yield each result as it arrives (see :class:`nodebench.runner.Executor`)."""
        self.placements = {}
        if not tasks:
            return
        ray = import_ray()
        from nodebench import workloads

        module = workloads.load(tasks[0].workload)
        placement = placement_of(module)
        module_path = module.__name__ if tasks[0].workload not in workloads.BUILTIN else None
        self._connect(ray)
        inflight: dict[Any, str] = {}
        try:
            options, limit = self._resources(ray, tasks[0].device, placement)
            remote = ray.remote(_run_unit).options(**options)
            yield from self._schedule(ray, remote, tasks, progress, module_path, inflight, limit)
        finally:
            for ref in inflight:  # interrupted or abandoned: stop what still runs
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: S110 - best effort, the task may have finished meanwhile
                    pass

    def _schedule(
        self,
        ray: Any,
        remote: Any,
        tasks: Sequence[UnitTask],
        progress: Callable[[int], None],
        module_path: str | None,
        inflight: dict[Any, str],
        limit: int | None,
    ) -> Iterator[UnitResult]:
        order = {task.spec.key: index for index, task in enumerate(tasks)}
        by_key = {task.spec.key: task for task in tasks}
        blockers = {key: {d for d in task.spec.depends_on if d in order} for key, task in by_key.items()}
        blockers_of = {key: tuple(deps) for key, deps in blockers.items()}
        dependants: dict[str, list[str]] = {key: [] for key in by_key}
        for key, deps in blockers.items():
            for dep in deps:
                dependants[dep].append(key)
        ready = sorted((key for key, deps in blockers.items() if not deps), key=order.__getitem__)
        # Results kept for their artifacts, until every dependant has been submitted with them.
        kept: dict[str, UnitResult] = {}
        unsubmitted = {key: len(children) for key, children in dependants.items()}
        seen: set[str] = set()
        failures: dict[str, BaseException] = {}
        blocked: set[str] = set()

        def block(key: str) -> None:
            for child in dependants[key]:
                if child not in blocked:
                    blocked.add(child)
                    block(child)

        while ready or inflight:
            while ready and (limit is None or len(inflight) < limit):
                key = ready.pop(0)
                task = with_inputs(by_key[key], kept)
                inflight[remote.remote(task, module_path)] = key
                for dep in blockers_of[key]:
                    unsubmitted[dep] -= 1
                    if not unsubmitted[dep]:
                        kept.pop(dep, None)
            finished, _ = ray.wait(list(inflight), num_returns=1)
            for ref in finished:
                key = inflight.pop(ref)
                try:
                    result, where = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # the unit raised: not retried
                    failures[key] = _cause(exc)
                    block(key)
                    continue
                except ray.exceptions.RayError as exc:  # worker/node died after every retry, ...
                    failures[key] = exc
                    block(key)
                    continue
                if key in seen:  # a duplicate delivery: journalled once
                    continue
                seen.add(key)
                if unsubmitted[key]:
                    kept[key] = result
                self.placements[key] = where
                progress(by_key[key].spec.ticks)
                yield result
                for child in dependants[key]:
                    blockers[child].discard(key)
                    if not blockers[child] and child not in blocked:
                        ready.append(child)
                ready.sort(key=order.__getitem__)
        if failures:
            raise _failure(failures, blocked, order, self.max_retries)


def _cause(exc: BaseException) -> BaseException:
    """The exception a unit raised inside a Ray task (with its partial result), else ``exc``."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def _failure(
    failures: dict[str, BaseException], blocked: set[str], order: dict[str, int], retries: int
) -> BaseException:
    """One exception for the failed units: the first (plan order) unit's, with the others noted."""
    keys = sorted(failures, key=order.__getitem__)
    lines = [f"unit {key!r}: {type(failures[key]).__name__}: {failures[key]}".strip() for key in keys]
    message = (
        f"{len(keys)} unit(s) failed under the Ray executor (a dead worker is retried {retries} time(s)); "
        f"the other units completed"
        + (f", except {len(blocked)} that depend on a failed one" if blocked else "")
    )
    first = failures[keys[0]]
    error = UnitsFailed(message + ":\n" + "\n".join(lines))
    partial = getattr(first, PARTIAL_ATTR, None)
    if partial is not None:
        setattr(error, PARTIAL_ATTR, partial)
    error.__cause__ = first
    return error
