"""Helpers shared by workloads: config (de)serialisation, seeding and thread pinning."""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections.abc import Iterator
from typing import Any, TypeVar

import numpy as np
import torch

from nodebench.solvers import ADAPTIVE_METHODS

C = TypeVar("C")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return value


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: _tuples(item) for key, item in value.items()}
    return value


def config_to_dict(config: Any) -> dict[str, Any]:
    """A workload config (a dataclass instance) as a JSON-serialisable dict (tuples become lists)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    return _jsonable(dataclasses.asdict(config))


def config_from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Rebuild a config of dataclass type ``cls`` from :func:`config_to_dict` output (lists become tuples).

    Raises:
        ValueError: ``data`` names fields ``cls`` lacks or lacks fields without a default.
    """
    names = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"stored config has fields {unknown} that {cls.__qualname__} does not have")
    try:
        return cls(**{key: _tuples(value) for key, value in data.items()})
    except TypeError as exc:
        raise ValueError(f"stored config does not fit {cls.__qualname__}: {exc}") from exc


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) random generators with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - code that uses the global generator is seeded too
    torch.manual_seed(seed)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads, then restore the caller's count.

    Workloads pin one thread by default: on a shared 2-core machine a second thread beside another job
    made training steps 2.5-45x slower.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def dtype_of(name: str) -> torch.dtype:
    """``"float32"`` / ``"float64"`` -> the torch dtype; ValueError otherwise."""
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {name!r}")
    return getattr(torch, name)


def check_adaptive_methods(methods: tuple[str, ...]) -> None:
    """Raise :class:`ValueError` naming the config's ``methods`` unless they are adaptive methods."""
    if not methods or set(methods) - set(ADAPTIVE_METHODS):
        raise ValueError(f"methods must be among the adaptive methods {ADAPTIVE_METHODS}, got {methods}")
