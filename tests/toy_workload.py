"""A tiny workload for the run-machinery tests (registered by fixtures, never by the package).

``CRASH`` injects a failure: set it to ``(unit_key, step, exception)`` and the run raises that
exception just before recording ``step`` of that unit; an ``int`` instead of an exception sends
that signal to the process (as ``kill`` would).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

from nodebench.units import NO_STEP, UnitContext, UnitSpec
from nodebench.workloads.base import seed_everything

NAME = "toy"
PROTOCOL = "## Toy protocol\n\nRandom numbers per variant and seed; nothing is trained."
CRASH: tuple[str, int, BaseException | int] | None = None


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1)
    variants: tuple[str, ...] = ("alpha", "beta")
    steps: int = 4


PRESETS = {
    "smoke": Config(),
    "standard": Config(steps=6),
    "paper": Config(seeds=(0, 1, 2), steps=8),
}


def plan(config: Config) -> list[UnitSpec]:
    return [
        UnitSpec(f"{variant}/seed={seed}", {"variant": variant, "seed": seed})
        for seed in config.seeds
        for variant in config.variants
    ]


def execute(spec: UnitSpec, unit: UnitContext) -> None:
    variant, seed = spec.params["variant"], spec.params["seed"]
    seed_everything(seed)
    total = 0.0
    for step in range(unit.config.steps):
        if CRASH is not None and CRASH[:2] == (spec.key, step):
            if isinstance(CRASH[2], int):
                os.kill(os.getpid(), CRASH[2])
            else:
                raise CRASH[2]
        start = time.perf_counter()
        value = float(torch.randn((), device=unit.device))
        total += value
        unit.record(variant, seed, step, "loss", value, "")
        unit.record(variant, seed, step, "time", time.perf_counter() - start, "s")
    unit.record(variant, seed, NO_STEP, "total", total, "")
