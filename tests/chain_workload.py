"""A workload of chained units for the runner tests: each unit continues from the previous one's artifact.

``FAIL_AT`` makes the unit of that index raise after recording its first row.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from nodebench.units import UnitContext, UnitSpec

NAME = "chain"
PROTOCOL = "## Chain\n\nA running sum carried from unit to unit as an artifact."
FAIL_AT: int | None = None


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0,)
    links: int = 4


PRESETS = {"smoke": Config(), "standard": Config(links=6), "paper": Config(links=8)}


def _name(index: int) -> str:
    return f"sum-{index}.bin"


def plan(config: Config) -> list[UnitSpec]:
    return [
        UnitSpec(
            f"link={i}",
            {"index": i},
            depends_on=(f"link={i - 1}",) if i else (),
            ticks=2,
            releases_inputs=True,
        )
        for i in range(config.links)
    ]


def execute(spec: UnitSpec, unit: UnitContext) -> None:
    index = spec.params["index"]
    total = struct.unpack("<d", unit.input(_name(index - 1)))[0] if index else 0.0
    total += index + 0.5
    unit.record("chain", 0, index, "total", total)
    if FAIL_AT == index:
        raise RuntimeError(f"link {index} broke")
    unit.tick()
    unit.save(_name(index), struct.pack("<d", total))
