"""The workload registry.

A workload is a module ``nodebench/workloads/<name>.py`` exposing

- ``NAME: str``;
- ``Config``: a frozen dataclass with a ``seeds`` field (a tuple of ints);
- ``PRESETS: dict[str, Config]`` with keys ``smoke``, ``standard`` and ``paper``;
- ``PROTOCOL: str``: the markdown protocol card stored with every run;
- ``plan(config) -> list[UnitSpec]``: the run's units of work in order (it validates ``config``,
  raising ``ValueError``), each with a key, plain-data parameters, the units it depends on and a
  progress weight (:class:`nodebench.units.UnitSpec`);
- ``execute(spec, unit) -> None``: runs one unit, reading ``unit.config``, ``unit.device`` and the
  artifacts of the units it depends on (``unit.inputs``), recording rows (``unit.record``) and
  artifacts (``unit.save``) into the :class:`nodebench.units.UnitContext`; never touches the store,
  never prints tables. It seeds what it draws at its start, so a unit gives the same rows wherever
  and whenever it runs. :mod:`nodebench.runner` runs the plan and journals the results;
- optionally ``preflight(config, device) -> str | None``: why the workload cannot run now (e.g. its
  data is missing), or ``None``; ``nodebench reproduce`` skips the workload with that message.
- optionally ``RAY_PLACEMENT``: ``"parallel"`` (the default: under ``--executor ray`` units run side
  by side) or ``"serial"`` (one at a time on one node holding all its CPUs, for workloads whose
  timings are compared across units); see :mod:`nodebench.ray_executor`.

Modules are imported lazily by :func:`load`, so a missing or broken workload does not break the CLI.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

from nodebench.schema import PRESET_NAMES

BUILTIN = ("spiral", "memory", "tolerance", "nfe", "solvers", "mnist", "latent", "figure3c", "compat")
REQUIRED = ("NAME", "Config", "PRESETS", "PROTOCOL", "plan", "execute")

_modules: dict[str, str] = {name: f"{__name__}.{name}" for name in BUILTIN}


class WorkloadNotAvailable(LookupError):
    """The workload is unknown, not written yet, fails to import, or lacks part of the interface."""


def register(name: str, module: str) -> None:
    """Register (or re-point) workload ``name`` to the importable module path ``module``."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"workload name must match [a-z][a-z0-9_]*, got {name!r}")
    _modules[name] = module


def unregister(name: str) -> None:
    """Remove workload ``name`` from the registry (restoring nothing)."""
    _modules.pop(name, None)


def names() -> list[str]:
    """Registered workload names, built-ins first in their fixed order."""
    return list(_modules)


def load(name: str) -> ModuleType:
    """Import workload ``name`` and check its interface.

    Raises:
        WorkloadNotAvailable: with the reason (unknown, module missing, import error, missing attribute).
    """
    if name not in _modules:
        raise WorkloadNotAvailable(f"unknown workload {name!r}; registered: {', '.join(_modules)}")
    path = _modules[name]
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as exc:
        if exc.name == path or path.startswith(f"{exc.name}."):
            raise WorkloadNotAvailable(
                f"workload {name!r} is not available: module {path} does not exist"
            ) from None
        raise WorkloadNotAvailable(
            f"workload {name!r} is not available: importing {path} failed: {exc}"
        ) from exc
    except Exception as exc:
        raise WorkloadNotAvailable(
            f"workload {name!r} is not available: importing {path} failed: {exc}"
        ) from exc
    missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
    if missing:
        raise WorkloadNotAvailable(f"workload {name!r} ({path}) lacks {', '.join(missing)}")
    absent = [preset for preset in PRESET_NAMES if preset not in module.PRESETS]
    if absent:
        raise WorkloadNotAvailable(f"workload {name!r} ({path}) has no preset {', '.join(absent)} in PRESETS")
    return module
