"""Implicit Runge–Kutta methods as data: torchdiffeq's nine fixed-grid methods and Radau IIA of order 5.

An :class:`ImplicitTableau` is a full Butcher tableau ``(c, A, b)``, checked on construction. What the
Newton solve needs is derived from it once:

- a first stage with ``c = 0`` and a zero row of ``A`` (trapezoid, TR-BDF2) is explicit: ``k0 = f(t0, y0)``;
  the implicit stages are the rest, with coupling ``A'`` (invertible);
- ``A'`` lower triangular (SDIRK2, TR-BDF2, implicit Euler, implicit midpoint): the stages are solved one
  after another, each with the matrix ``I/(h a_ii) - J``;
- otherwise (Gauss–Legendre, Radau IIA, trapezoid's one implicit stage) the stages are solved together,
  and ``A'⁻¹ = V Λ V⁻¹`` decouples the Newton system into one ``n x n`` solve per eigenvalue ``λ`` of
  ``A'⁻¹`` (matrix ``λ/h I - J``; a complex-conjugate pair needs one complex solve), as in Hairer's RADAU5;
- the new state is ``y1 = y0 + h b0 k0 + dᵀ (Z' - E)`` with ``dᵀ = b'ᵀ A'⁻¹``, from the stage increments
  ``Z`` without evaluating ``f`` at the stages again (for stiffly accurate tableaus: ``y1 = y0 + Z_s``).

torchdiffeq's coefficients are at ``torchdiffeq/_impl/fixed_grid_implicit.py`` (repository HEAD); the
tableaus here are written from the literature and agree with them, except that torchdiffeq gives gl4
the nodes ``(1/2 - √3/6, 1/2 - √3/6)`` where Gauss–Legendre has ``1/2 ± √3/6`` (the rows of its ``A``
sum to the right nodes, so the two agree for autonomous ``f``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nodebench.solvers.tableaus import TableauError

_TOL = 1e-12


@dataclass(frozen=True, kw_only=True)
class ImplicitTableau:
    """An implicit Runge–Kutta method.

    Arguments:
        name: registry name.
        order: order of the solution.
        c: nodes.
        a: the full ``s x s`` coupling matrix.
        b: weights.
        stability: a short note (A- or L-stable), for the docs.

    Derived: ``explicit_first``, ``diagonal`` (lower triangular ``A'``), ``d`` (see the module docstring)
    and, for fully implicit tableaus, the eigen-decomposition of ``A'⁻¹``.
    """

    name: str
    order: int
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    stability: str = ""
    explicit_first: bool = field(init=False)
    diagonal: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "c", tuple(float(x) for x in self.c))
        object.__setattr__(self, "b", tuple(float(x) for x in self.b))
        object.__setattr__(self, "a", tuple(tuple(float(x) for x in row) for row in self.a))
        s = len(self.c)
        if len(self.a) != s or any(len(row) != s for row in self.a) or len(self.b) != s:
            raise TableauError(f"tableau {self.name!r}: a must be {s}x{s} and b of length {s}")
        for i, row in enumerate(self.a):
            if abs(math.fsum(row) - self.c[i]) > _TOL:
                raise TableauError(f"tableau {self.name!r}: row {i} of a does not sum to c[{i}]")
        for k in range(1, self.order + 1):
            q = math.fsum(bi * ci ** (k - 1) for bi, ci in zip(self.b, self.c))
            if abs(q - 1.0 / k) > _TOL:
                raise TableauError(f"tableau {self.name!r}: b is not of order {self.order} (k = {k})")
        explicit = s > 1 and self.c[0] == 0.0 and not any(self.a[0])
        object.__setattr__(self, "explicit_first", explicit)
        ap = self.implicit_a
        object.__setattr__(self, "diagonal", bool(np.allclose(np.triu(ap, 1), 0.0)))
        if abs(np.linalg.det(ap)) < 1e-12:
            raise TableauError(f"tableau {self.name!r}: the implicit stages' coupling is singular")

    @property
    def stages(self) -> int:
        return len(self.c)

    @property
    def first(self) -> int:
        """Index of the first implicit stage (1 after an explicit first stage, else 0)."""
        return 1 if self.explicit_first else 0

    @property
    def implicit_a(self) -> np.ndarray:
        """``A'``: the coupling of the implicit stages among themselves."""
        k = self.first
        return np.array(self.a, dtype=float)[k:, k:]

    @property
    def explicit_a(self) -> np.ndarray:
        """The implicit stages' weights of the explicit first stage (zeros when there is none)."""
        a = np.array(self.a, dtype=float)
        return a[self.first :, 0] if self.explicit_first else np.zeros(len(self.c))

    @property
    def d(self) -> np.ndarray:
        """``dᵀ = b'ᵀ A'⁻¹``: ``y1 = y0 + h b0 k0 + dᵀ (Z' - E)``."""
        return np.linalg.solve(self.implicit_a.T, np.array(self.b[self.first :]))

    def eigen(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int], dict[int, int]]:
        """``(lam, V, Vinv, solved, partner)`` with ``A'⁻¹ = V diag(lam) V⁻¹``: real eigenvalues first
        (real eigenvectors), then each complex pair as ``(v, conj v)``; ``solved`` are the rows solved
        (the real ones and the first of each pair), ``partner[j] = i`` where row ``j`` is row ``i``'s
        conjugate."""
        lam, vecs = np.linalg.eig(np.linalg.inv(self.implicit_a))
        real = [i for i in range(len(lam)) if abs(lam[i].imag) <= 1e-12 * abs(lam[i])]
        upper = [i for i in range(len(lam)) if lam[i].imag > 1e-12 * abs(lam[i])]
        cols, lams, solved, partner = [], [], [], {}
        for i in real:
            v = vecs[:, i].real
            cols.append(v / v[np.argmax(np.abs(v))])
            lams.append(complex(lam[i].real))
            solved.append(len(cols) - 1)
        for i in upper:
            v = vecs[:, i] / vecs[-1, i]  # the last component 1, as in Hairer's transformation
            cols += [v, v.conj()]
            lams += [complex(lam[i]), complex(lam[i]).conjugate()]
            solved.append(len(cols) - 2)
            partner[len(cols) - 1] = len(cols) - 2
        V = np.array(cols, dtype=complex).T
        return np.array(lams), V, np.linalg.inv(V), solved, partner


_S2, _S3, _S6, _S15 = math.sqrt(2), math.sqrt(3), math.sqrt(6), math.sqrt(15)

IMPLICIT_EULER = ImplicitTableau(
    name="implicit_euler", order=1, c=(1.0,), a=((1.0,),), b=(1.0,), stability="L-stable"
)
IMPLICIT_MIDPOINT = ImplicitTableau(
    name="implicit_midpoint", order=2, c=(0.5,), a=((0.5,),), b=(1.0,), stability="A-stable, symplectic"
)
TRAPEZOID = ImplicitTableau(
    name="trapezoid",
    order=2,
    c=(0.0, 1.0),
    a=((0.0, 0.0), (0.5, 0.5)),
    b=(0.5, 0.5),
    stability="A-stable",
)
GL4 = ImplicitTableau(
    name="gl4",
    order=4,
    c=(0.5 - _S3 / 6, 0.5 + _S3 / 6),
    a=((0.25, 0.25 - _S3 / 6), (0.25 + _S3 / 6, 0.25)),
    b=(0.5, 0.5),
    stability="A-stable, symplectic (Gauss–Legendre)",
)
GL6 = ImplicitTableau(
    name="gl6",
    order=6,
    c=(0.5 - _S15 / 10, 0.5, 0.5 + _S15 / 10),
    a=(
        (5 / 36, 2 / 9 - _S15 / 15, 5 / 36 - _S15 / 30),
        (5 / 36 + _S15 / 24, 2 / 9, 5 / 36 - _S15 / 24),
        (5 / 36 + _S15 / 30, 2 / 9 + _S15 / 15, 5 / 36),
    ),
    b=(5 / 18, 4 / 9, 5 / 18),
    stability="A-stable, symplectic (Gauss–Legendre)",
)
RADAU_IIA3 = ImplicitTableau(
    name="radauIIA3",
    order=3,
    c=(1 / 3, 1.0),
    a=((5 / 12, -1 / 12), (3 / 4, 1 / 4)),
    b=(3 / 4, 1 / 4),
    stability="L-stable",
)
RADAU_IIA5 = ImplicitTableau(
    name="radauIIA5",
    order=5,
    c=((4 - _S6) / 10, (4 + _S6) / 10, 1.0),
    a=(
        (11 / 45 - 7 * _S6 / 360, 37 / 225 - 169 * _S6 / 1800, -2 / 225 + _S6 / 75),
        (37 / 225 + 169 * _S6 / 1800, 11 / 45 + 7 * _S6 / 360, -2 / 225 - _S6 / 75),
        (4 / 9 - _S6 / 36, 4 / 9 + _S6 / 36, 1 / 9),
    ),
    b=(4 / 9 - _S6 / 36, 4 / 9 + _S6 / 36, 1 / 9),
    stability="L-stable",
)
_G2 = (2 - _S2) / 2
SDIRK2 = ImplicitTableau(
    name="sdirk2",
    order=2,
    c=(_G2, 1.0),
    a=((_G2, 0.0), (1 - _G2, _G2)),
    b=(1 - _G2, _G2),
    stability="L-stable",
)
_GT, _BT = 1 - _S2 / 2, _S2 / 4
TRBDF2 = ImplicitTableau(
    name="trbdf2",
    order=2,
    c=(0.0, 2 * _GT, 1.0),
    a=((0.0, 0.0, 0.0), (_GT, _GT, 0.0), (_BT, _BT, _GT)),
    b=(_BT, _BT, _GT),
    stability="L-stable",
)

#: torchdiffeq HEAD's fixed-grid implicit methods (PR #265), by name.
FIXED_IMPLICIT: dict[str, ImplicitTableau] = {
    t.name: t
    for t in (IMPLICIT_EULER, IMPLICIT_MIDPOINT, TRAPEZOID, GL4, GL6, RADAU_IIA3, RADAU_IIA5, SDIRK2, TRBDF2)
}
