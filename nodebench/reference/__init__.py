"""References for nodebench's solvers: torchdiffeq adapters, reference problems, the correctness matrix.

``nodebench.reference.check`` (``nodebench check``) runs the matrix; it is not imported here.
"""

from nodebench.reference.problems import PROBLEMS, Problem
from nodebench.reference.torchdiffeq_adapter import (
    TORCHDIFFEQ_METHODS,
    CountingFunc,
    odeint,
    odeint_adjoint,
    solve,
    state_seminorm,
)

__all__ = [
    "PROBLEMS",
    "Problem",
    "TORCHDIFFEQ_METHODS",
    "CountingFunc",
    "odeint",
    "odeint_adjoint",
    "solve",
    "state_seminorm",
]
