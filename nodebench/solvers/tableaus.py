"""Runge–Kutta methods as data.

Each method is a :class:`Tableau`: Butcher coefficients, the embedded error weights for adaptive
methods, and the coefficients of its dense output. Dense output is written in the one form every
method shares: over the step ``[t0, t0 + h]`` and for ``theta`` in ``[0, 1]``,

    y(t0 + theta * h) = y0 + h * sum_j B_j(theta) * k_j,    B_j(theta) = sum_p dense[j][p] * theta**(p + 1),

where ``k_j`` are the stage derivatives (for methods without FSAL, ``k_s`` is an extra vector
``f(t1, y1)``, evaluated only when an output time falls strictly inside a step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tableau:
    """An explicit Runge–Kutta method.

    Arguments:
        name: registry name.
        order: order of the propagated solution.
        c: nodes, one per stage.
        a: lower-triangular coupling, ``a[i]`` has ``i`` entries.
        b: weights of the propagated solution.
        b_err: ``b - b_hat`` (embedded error weights, one per stage) or ``None`` for fixed-grid methods.
        fsal: whether the last stage is ``f(t1, y1)`` (first same as last).
        dense: ``(stages + (0 if fsal else 1)) x degree`` dense-output polynomial coefficients.
        dense_order: order of the dense output.
    """

    name: str
    order: int
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    b_err: tuple[float, ...] | None
    fsal: bool
    dense: tuple[tuple[float, ...], ...]
    dense_order: int

    @property
    def stages(self) -> int:
        return len(self.c)

    @property
    def adaptive(self) -> bool:
        return self.b_err is not None

    def dense_weights(self, theta: float) -> list[float]:
        """``B_j(theta)`` for every dense-output vector."""
        return [sum(cp * theta ** (p + 1) for p, cp in enumerate(row)) for row in self.dense]


def _fit_dense(
    nvec: int, degree: int, conditions: list[tuple[str, float, np.ndarray]]
) -> tuple[tuple[float, ...], ...]:
    """Solve for dense-output polynomials from value/derivative conditions.

    Each condition ``(kind, theta, target)`` asks ``B(theta) = target`` (kind ``"v"``) or
    ``B'(theta) = target`` (kind ``"d"``), with ``target`` a vector over the ``nvec`` dense vectors.
    """
    m = np.zeros((degree, degree))
    rhs = np.zeros((degree, nvec))
    for r, (kind, theta, target) in enumerate(conditions):
        for p in range(degree):
            m[r, p] = theta ** (p + 1) if kind == "v" else (p + 1) * theta**p
        rhs[r] = target
    coeffs = np.linalg.solve(m, rhs)  # degree x nvec
    return tuple(tuple(float(x) for x in coeffs[:, j]) for j in range(nvec))


def _unit(n: int, j: int) -> np.ndarray:
    e = np.zeros(n)
    e[j] = 1.0
    return e


def _hermite(b: tuple[float, ...], fsal: bool) -> tuple[tuple[float, ...], ...]:
    """Cubic Hermite dense output through y0, y1, f(t0, y0) and f(t1, y1)."""
    s = len(b)
    nvec = s if fsal else s + 1
    bb = np.zeros(nvec)
    bb[:s] = b
    return _fit_dense(
        nvec, 3, [("v", 1.0, bb), ("d", 0.0, _unit(nvec, 0)), ("d", 1.0, _unit(nvec, nvec - 1))]
    )


def _fixed(name: str, order: int, c, a, b) -> Tableau:
    return Tableau(
        name, order, tuple(c), tuple(tuple(r) for r in a), tuple(b), None, False, _hermite(b, False), 3
    )


EULER = _fixed("euler", 1, [0.0], [()], [1.0])
MIDPOINT = _fixed("midpoint", 2, [0.0, 0.5], [(), (0.5,)], [0.0, 1.0])
# Kutta's 3/8 rule, as torchdiffeq's "rk4" (smaller error than the classic rule at the same cost).
RK4 = _fixed(
    "rk4",
    4,
    [0.0, 1 / 3, 2 / 3, 1.0],
    [(), (1 / 3,), (-1 / 3, 1.0), (1.0, -1.0, 1.0)],
    [1 / 8, 3 / 8, 3 / 8, 1 / 8],
)

_BS_B = (2 / 9, 1 / 3, 4 / 9, 0.0)
BOSH3 = Tableau(
    "bosh3",
    3,
    (0.0, 1 / 2, 3 / 4, 1.0),
    ((), (1 / 2,), (0.0, 3 / 4), _BS_B[:3]),
    _BS_B,
    (2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8),
    True,
    _hermite(_BS_B, True),
    3,
)

_DP_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
# Shampine's midpoint weights: y(t0 + h/2) = y0 + h * sum_j mid_j k_j (as in torchdiffeq / Hairer).
_DP_MID = (
    np.array(
        [
            6025192743 / 30085553152,
            0.0,
            51252292925 / 65400821598,
            -2691868925 / 45128329728,
            187940372067 / 1594534317056,
            -1776094331 / 19743644256,
            11237099 / 235043384,
        ]
    )
    / 2
)
DOPRI5 = Tableau(
    "dopri5",
    5,
    (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    (
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        _DP_B[:6],
    ),
    _DP_B,
    (
        35 / 384 - 1951 / 21600,
        0.0,
        500 / 1113 - 22642 / 50085,
        125 / 192 - 451 / 720,
        -2187 / 6784 - -12231 / 42400,
        11 / 84 - 649 / 6300,
        -1.0 / 60.0,
    ),
    True,
    # Quartic through y0, y(1/2), y1, f0, f1: the interpolant torchdiffeq uses.
    _fit_dense(
        7,
        4,
        [("v", 1.0, np.array(_DP_B)), ("v", 0.5, _DP_MID), ("d", 0.0, _unit(7, 0)), ("d", 1.0, _unit(7, 6))],
    ),
    4,
)

# Tsitouras (2011) 5(4) pair, coefficients as published (and as in OrdinaryDiffEq.jl / diffrax).
_TS_B = (
    0.09646076681806523,
    0.01,
    0.4798896504144996,
    1.379008574103742,
    -3.290069515436081,
    2.324710524099774,
    0.0,
)
_TS_BHAT = (
    0.09468075576583945,
    0.009183565540343254,
    0.4877705284247616,
    1.234297566930479,
    -2.7077123499835256,
    1.866628418170587,
    1 / 66,
)


def _tsit5_dense() -> tuple[tuple[float, ...], ...]:
    """Tsitouras' order-4 interpolant, factored polynomials expanded to ``theta**1 .. theta**4``."""
    P = np.polynomial.polynomial
    th = [0.0, 1.0]  # theta
    polys = [
        -1.0530884977290216
        * P.polymul(
            P.polymul(th, [-1.3299890189751412, 1.0]), [0.7139816917074209, -1.4364028541716351, 1.0]
        ),
        0.1017 * P.polymul([0, 0, 1.0], [1.2949852507374631, -2.1966568338249754, 1.0]),
        2.490627285651252793 * P.polymul([0, 0, 1.0], [1.57803468208092486, -2.38535645472061657, 1.0]),
        -16.54810288924490272
        * P.polymul(P.polymul([-1.21712927295533244, 1.0], [-0.61620406037800089, 1.0]), [0, 0, 1.0]),
        47.37952196281928122
        * P.polymul(P.polymul([-1.203071208372362603, 1.0], [-0.658047292653547382, 1.0]), [0, 0, 1.0]),
        -34.87065786149660974 * P.polymul(P.polymul([-1.2, 1.0], [-0.666666666666666667, 1.0]), [0, 0, 1.0]),
        2.5 * P.polymul(P.polymul([-1.0, 1.0], [-0.6, 1.0]), [0, 0, 1.0]),
    ]
    out = []
    for p in polys:
        p = np.pad(np.asarray(p, dtype=float), (0, 5))[:5]
        out.append(tuple(float(x) for x in p[1:5]))
    return tuple(out)


TSIT5 = Tableau(
    "tsit5",
    5,
    (0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0),
    (
        (),
        (0.161,),
        (-0.008480655492356989, 0.335480655492357),
        (2.897153057105493, -6.359448489975075, 4.3622954328695815),
        (5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525),
        (5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401, -0.028269050394068383),
        _TS_B[:6],
    ),
    _TS_B,
    tuple(b - bh for b, bh in zip(_TS_B, _TS_BHAT)),
    True,
    _tsit5_dense(),
    4,
)

FIXED_SOLVERS: dict[str, Tableau] = {t.name: t for t in (EULER, MIDPOINT, RK4)}
ADAPTIVE_SOLVERS: dict[str, Tableau] = {t.name: t for t in (BOSH3, DOPRI5, TSIT5)}
ALL_SOLVERS: dict[str, Tableau] = {**FIXED_SOLVERS, **ADAPTIVE_SOLVERS}
