"""Solver statistics: counted by the solver itself, collected by a context manager."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class SolverStats:
    """Counts over every solve started inside a :func:`solver_stats` block.

    ``nfe_backward`` and the ``*_backward`` step counts come from adjoint backward solves; they are
    credited to the block that was active when the forward solve ran, even when ``backward()`` is
    called after the block has closed.
    """

    nfe_forward: int = 0
    nfe_backward: int = 0
    steps_accepted: int = 0
    steps_rejected: int = 0
    steps_accepted_backward: int = 0
    steps_rejected_backward: int = 0
    solves: int = 0
    backward_solves: int = 0
    per_solve: list[dict] = field(default_factory=list, repr=False)

    def add(self, nfe: int, accepted: int, rejected: int, backward: bool, method: str) -> None:
        if backward:
            self.nfe_backward += nfe
            self.steps_accepted_backward += accepted
            self.steps_rejected_backward += rejected
            self.backward_solves += 1
        else:
            self.nfe_forward += nfe
            self.steps_accepted += accepted
            self.steps_rejected += rejected
            self.solves += 1
        self.per_solve.append(
            {"backward": backward, "method": method, "nfe": nfe, "accepted": accepted, "rejected": rejected}
        )

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "per_solve"}


_ACTIVE: contextvars.ContextVar[tuple[SolverStats, ...]] = contextvars.ContextVar(
    "nodebench_stats", default=()
)


def active_stats() -> tuple[SolverStats, ...]:
    """The collectors open in this context (innermost last)."""
    return _ACTIVE.get()


def report(
    collectors: tuple[SolverStats, ...], nfe: int, accepted: int, rejected: int, backward: bool, method: str
) -> None:
    for s in collectors:
        s.add(nfe, accepted, rejected, backward, method)


@contextlib.contextmanager
def solver_stats() -> Iterator[SolverStats]:
    """Count NFE and steps of every solve inside the block, without wrapping ``func``.

    Returns:
        a :class:`SolverStats` that fills as solves run (nested blocks each count everything inside).
    """
    stats = SolverStats()
    token = _ACTIVE.set(_ACTIVE.get() + (stats,))
    try:
        yield stats
    finally:
        _ACTIVE.reset(token)
