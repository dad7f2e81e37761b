"""Every method by name: the one place that knows which families exist.

Adding a method means adding it here (a :class:`~nodebench.solvers.method.Method` instance); the loop,
the controller, the adjoint, events and validation reach it only through that interface.
"""

from __future__ import annotations

from typing import Any

from nodebench.solvers.adams import ADAMS
from nodebench.solvers.bdf import BDF_METHODS
from nodebench.solvers.fixed_adams import FIXED_ADAMS_METHODS
from nodebench.solvers.implicit_rk import FIXED_IMPLICIT_METHODS
from nodebench.solvers.method import Method
from nodebench.solvers.radau import RADAU
from nodebench.solvers.rk import RK_METHODS
from nodebench.solvers.scipy_solver import SCIPY

METHODS: dict[str, Method] = {
    **RK_METHODS,
    **FIXED_ADAMS_METHODS,
    **FIXED_IMPLICIT_METHODS,
    SCIPY.name: SCIPY,
    ADAMS.name: ADAMS,
    RADAU.name: RADAU,
    **BDF_METHODS,
}


def get_method(name: Any) -> Method:
    """The method called ``name``; a clear error naming the valid ones otherwise."""
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(f"method: unknown method {name!r}; valid methods are {sorted(METHODS)}")
    return METHODS[name]
