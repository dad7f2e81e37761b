"""nodebench: a benchmark and reproducibility suite for Neural ODEs."""

from nodebench.solvers import (
    SolverError,
    StiffnessWarning,
    odeint,
    odeint_adjoint,
    odeint_event,
    solver_stats,
)

__all__ = ["odeint", "odeint_adjoint", "odeint_event", "solver_stats", "SolverError", "StiffnessWarning"]
__version__ = "0.1.0"
