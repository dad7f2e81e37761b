"""The one error a solve raises when it cannot go on."""

from __future__ import annotations


class SolverError(RuntimeError):
    """A solve that could not finish.

    Attributes:
        t: the time the solver had reached (the start of the step that failed).
        reason: a short machine-readable reason: ``"step size underflow"``, ``"max_num_steps exceeded"``,
            ``"non-finite state"`` or ``"non-finite derivative"``.
        detail: a sentence for humans.
    """

    def __init__(self, t: float, reason: str, detail: str = "") -> None:
        self.t = float(t)
        self.reason = reason
        self.detail = detail
        msg = f"solve failed at t={self.t:.10g}: {reason}"
        super().__init__(f"{msg} ({detail})" if detail else msg)
