"""The numerical core: tableaus, the Runge–Kutta loop, step-size control, the adjoint, statistics.

Knows nothing of models, data, workloads or files.
"""

from nodebench.solvers.adams import MULTISTEP_SOLVERS
from nodebench.solvers.adjoint import odeint_adjoint
from nodebench.solvers.errors import SolverError
from nodebench.solvers.event import odeint_event
from nodebench.solvers.odeint import odeint
from nodebench.solvers.stats import SolverStats, solver_stats
from nodebench.solvers.tableaus import ADAPTIVE_SOLVERS, ALL_SOLVERS, FIXED_SOLVERS, Tableau

#: Every adaptive method's name: the embedded Runge–Kutta pairs and the variable-order ``adams``.
ADAPTIVE_METHODS: tuple[str, ...] = (*ADAPTIVE_SOLVERS, *MULTISTEP_SOLVERS)

__all__ = [
    "odeint",
    "odeint_adjoint",
    "odeint_event",
    "solver_stats",
    "SolverStats",
    "SolverError",
    "Tableau",
    "ALL_SOLVERS",
    "FIXED_SOLVERS",
    "ADAPTIVE_SOLVERS",
    "ADAPTIVE_METHODS",
]
