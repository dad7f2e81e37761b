"""The numerical core: methods behind one interface, the loop, the controller, the adjoint, events.

Knows nothing of models, data, workloads or files. Modules: ``method`` (the interface), ``registry``
(every method by name), ``rk`` + ``tableaus`` (explicit Runge–Kutta), ``adams`` (adaptive Adams),
``fixed_adams``, ``scipy_solver``, the implicit ``radau``, ``bdf`` and ``implicit_rk`` +
``implicit_tableaus`` (sharing ``newton``), ``integrate`` (the loop), ``per_sample`` (the loop for
per-sample step control), ``controller`` (norms, initial step, I/PI control, landing times),
``adjoint``, ``event``, ``odeint`` (the API), ``boundary`` and ``validate`` (inputs), ``stats``,
``errors``.
"""

from nodebench.solvers.adjoint import odeint_adjoint
from nodebench.solvers.errors import SolverError, StiffnessWarning
from nodebench.solvers.event import odeint_event
from nodebench.solvers.odeint import odeint
from nodebench.solvers.registry import METHODS
from nodebench.solvers.stats import SolverStats, solver_stats
from nodebench.solvers.tableaus import ADAPTIVE_SOLVERS, ALL_SOLVERS, FIXED_SOLVERS, Tableau

#: Every adaptive method's name: the embedded Runge–Kutta pairs and the variable-order ``adams``.
ADAPTIVE_METHODS: tuple[str, ...] = (*ADAPTIVE_SOLVERS, "adams", "radau", "bdf", "ndf")

__all__ = [
    "odeint",
    "odeint_adjoint",
    "odeint_event",
    "solver_stats",
    "SolverStats",
    "SolverError",
    "StiffnessWarning",
    "Tableau",
    "METHODS",
    "ALL_SOLVERS",
    "FIXED_SOLVERS",
    "ADAPTIVE_SOLVERS",
    "ADAPTIVE_METHODS",
]
