"""nodebench: a benchmark and reproducibility suite for Neural ODEs."""

from nodebench.solvers import SolverError, odeint, odeint_adjoint, odeint_event, solver_stats

__all__ = ["odeint", "odeint_adjoint", "odeint_event", "solver_stats", "SolverError"]
__version__ = "0.1.0"
