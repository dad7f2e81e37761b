"""A chained workload, a random walk, for the executor tests (registered by fixtures only).

Per seed, ``steps`` units; unit ``seed=S/step=K`` continues the state that unit ``K - 1`` saved as an
artifact, so the records depend on every unit having received its predecessor's output. A unit can
SIGKILL its own worker process mid-unit (after its first row): for the keys in ``kill_keys`` the
first ``kill_times`` attempts die, counted by marker files in ``kill_dir``. Only run that under an
executor whose units live in other processes.
"""

from __future__ import annotations

import io
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from nodebench.units import UnitContext, UnitSpec

NAME = "walk"
PROTOCOL = "## Walk protocol\n\nA random walk per seed, one unit per step, each continuing the last."


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1)
    steps: int = 3
    kill_dir: str = ""
    kill_keys: tuple[str, ...] = ()
    kill_times: int = 1
    sleep: float = 0.0
    threads: int = 1


PRESETS = {"smoke": Config(), "standard": Config(steps=5), "paper": Config(seeds=(0, 1, 2), steps=8)}


def key(seed: int, step: int) -> str:
    return f"seed={seed}/step={step}"


def artifact(seed: int, step: int) -> str:
    return f"state-seed{seed}-step{step}.pt"


def plan(config: Config) -> list[UnitSpec]:
    return [
        UnitSpec(
            key(seed, step),
            {"seed": seed, "step": step},
            depends_on=(key(seed, step - 1),) if step else (),
            releases_inputs=step > 0,
        )
        for seed in config.seeds
        for step in range(config.steps)
    ]


def _maybe_die(config: Config, unit_key: str) -> None:
    if unit_key not in config.kill_keys:
        return
    folder = Path(config.kill_dir)
    stem = unit_key.replace("/", "_")
    attempts = len(list(folder.glob(f"{stem}.*")))
    if attempts < config.kill_times:
        (folder / f"{stem}.{attempts}").write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)


def execute(spec: UnitSpec, unit: UnitContext) -> None:
    seed, step = spec.params["seed"], spec.params["step"]
    config: Config = unit.config
    generator = torch.Generator().manual_seed(1000 * seed + step)
    if step == 0:
        state = torch.zeros(4, dtype=torch.float64)
    else:
        state = torch.load(io.BytesIO(unit.input(artifact(seed, step - 1))))
    unit.record("walk", seed, step, "start", state.sum().item())
    _maybe_die(config, spec.key)
    time.sleep(config.sleep)
    state = 0.5 * state + torch.randn(4, generator=generator, dtype=torch.float64)
    unit.record("walk", seed, step, "value", state.sum().item())
    unit.record("walk", seed, step, "threads", torch.get_num_threads())
    buffer = io.BytesIO()
    torch.save(state, buffer)
    unit.save(artifact(seed, step), buffer.getvalue())
