"""The one error a solve raises when it cannot go on."""

from __future__ import annotations


class SolverError(RuntimeError):
    """A solve that could not finish.

    Attributes:
        t: the time the solver had reached (the start of the step that failed).
        reason: a short machine-readable reason: ``"step size underflow"``, ``"max_num_steps exceeded"``,
            ``"non-finite state"``, ``"non-finite derivative"`` or ``"problem is stiff"``.
        detail: a sentence for humans.
    """

    def __init__(self, t: float, reason: str, detail: str = "") -> None:
        self.t = float(t)
        self.reason = reason
        self.detail = detail
        msg = f"solve failed at t={self.t:.10g}: {reason}"
        super().__init__(f"{msg} ({detail})" if detail else msg)


class StiffnessWarning(UserWarning):
    """An explicit method's steps are limited by stability, not accuracy: the problem looks stiff.

    Raised as a warning when the stiffness test of dopri5, tsit5 and dopri8 first fires; the solve
    goes on, and stops with :class:`SolverError` (reason ``"problem is stiff"``) if it stays stiff.
    """
