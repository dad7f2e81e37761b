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

    NFE counts calls of ``func`` (on the whole batch). Implicit methods (``radau``, ``bdf``, ``ndf``, the
    fixed-grid implicit Runge–Kutta methods) also count ``jacobians`` (evaluations of ``∂f/∂y``; the one
    call of ``func`` autograd makes for each is counted there, not in NFE), ``factorizations`` (LU
    factorisations of Newton matrices) and ``newton_iterations``, forward and ``*_backward``.

    Under per-sample step control
    (``options={"batch": "independent"}``) the step counts are summed over the samples,
    ``attempts`` counts the steps the batch attempted together (the loop's iterations; otherwise
    accepted + rejected), and :attr:`per_sample` holds the latest such solve's counts per sample.
    """

    nfe_forward: int = 0
    nfe_backward: int = 0
    steps_accepted: int = 0
    steps_rejected: int = 0
    steps_accepted_backward: int = 0
    steps_rejected_backward: int = 0
    solves: int = 0
    backward_solves: int = 0
    attempts: int = 0
    attempts_backward: int = 0
    jacobians: int = 0
    factorizations: int = 0
    newton_iterations: int = 0
    jacobians_backward: int = 0
    factorizations_backward: int = 0
    newton_iterations_backward: int = 0
    per_solve: list[dict] = field(default_factory=list, repr=False)
    per_sample: dict[str, list[int]] | None = field(default=None, repr=False)
    per_sample_backward: dict[str, list[int]] | None = field(default=None, repr=False)

    def add(
        self,
        nfe: int,
        accepted: int,
        rejected: int,
        backward: bool,
        method: str,
        attempts: int | None = None,
        per_sample: dict[str, list[int]] | None = None,
        linear: tuple[int, int, int] | None = None,
    ) -> None:
        attempts = accepted + rejected if attempts is None else attempts
        jac, lu, newton = linear or (0, 0, 0)
        suffix = "_backward" if backward else ""
        for key, value in (("jacobians", jac), ("factorizations", lu), ("newton_iterations", newton)):
            setattr(self, key + suffix, getattr(self, key + suffix) + value)
        if backward:
            self.attempts_backward += attempts
            if per_sample is not None:
                self.per_sample_backward = per_sample
        else:
            self.attempts += attempts
            if per_sample is not None:
                self.per_sample = per_sample
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
        entry = {
            "backward": backward,
            "method": method,
            "nfe": nfe,
            "accepted": accepted,
            "rejected": rejected,
        }
        entry["attempts"] = attempts
        if linear is not None:
            entry.update(jacobians=jac, factorizations=lu, newton_iterations=newton)
        if per_sample is not None:
            entry["per_sample"] = per_sample
        self.per_solve.append(entry)

    def as_dict(self) -> dict[str, int]:
        return {
            k: v
            for k, v in self.__dict__.items()
            if k not in ("per_solve", "per_sample", "per_sample_backward")
        }


_ACTIVE: contextvars.ContextVar[tuple[SolverStats, ...]] = contextvars.ContextVar(
    "nodebench_stats", default=()
)


def active_stats() -> tuple[SolverStats, ...]:
    """The collectors open in this context (innermost last)."""
    return _ACTIVE.get()


def report(
    collectors: tuple[SolverStats, ...],
    nfe: int,
    accepted: int,
    rejected: int,
    backward: bool,
    method: str,
    attempts: int | None = None,
    per_sample: dict[str, list[int]] | None = None,
    linear: tuple[int, int, int] | None = None,
) -> None:
    for s in collectors:
        s.add(nfe, accepted, rejected, backward, method, attempts, per_sample, linear)


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
