"""Runge–Kutta methods as data.

Each method is a :class:`Tableau`: Butcher coefficients, the embedded error weights for adaptive
methods, and the coefficients of its dense output. Dense output is written in the one form every
method shares: over the step ``[t0, t0 + h]`` and for ``theta`` in ``[0, 1]``,

    y(t0 + theta * h) = y0 + h * sum_j B_j(theta) * k_j,    B_j(theta) = sum_p dense[j][p] * theta**(p + 1),

where ``k_j`` are the stage derivatives (for methods without FSAL, ``k_s`` is an extra vector
``f(t1, y1)``, evaluated only when an output time falls strictly inside a step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


class TableauError(ValueError):
    """A tableau whose coefficients contradict each other (raised on construction)."""


_TOL = 1e-9  # coefficients given as decimals or rational approximations agree to this


@dataclass(frozen=True, kw_only=True)
class Tableau:
    """An explicit Runge–Kutta method, checked on construction.

    Built with keyword arguments only, so the solution and error weights cannot be swapped silently.
    Construction raises :class:`TableauError` unless: ``a`` is lower-triangular with one row per node,
    each row of ``a`` sums to its node ``c[i]``, ``sum(b) == 1``, ``sum(b_err) == 0``, ``b`` meets the
    quadrature conditions ``sum(b_i c_i**(k-1)) == 1/k`` for ``k <= order``, and the dense output has one
    row per dense vector, reproduces ``b`` at ``theta = 1`` and its weights sum to ``theta``.

    Arguments:
        name: registry name.
        order: order of the propagated solution.
        c: nodes, one per stage.
        a: lower-triangular coupling, ``a[i]`` has ``i`` entries.
        b: weights of the propagated solution.
        b_err: ``b - b_hat`` (embedded error weights, one per stage) or ``None`` for fixed-grid methods.
        dense: ``(stages + (0 if fsal else 1)) x degree`` dense-output polynomial coefficients.
        dense_order: order of the dense output.

    ``fsal`` (first same as last: the last stage is ``f(t1, y1)``) is derived, never given: it holds when
    the last node is 1, the last row of ``a`` equals ``b`` and the last weight is 0.
    """

    name: str
    order: int
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    b_err: tuple[float, ...] | None
    dense: tuple[tuple[float, ...], ...]
    dense_order: int
    fsal: bool = field(init=False)

    def __post_init__(self) -> None:
        for key in ("c", "b", "b_err"):
            v = getattr(self, key)
            if v is not None:
                object.__setattr__(self, key, tuple(float(x) for x in v))
        object.__setattr__(self, "a", tuple(tuple(float(x) for x in row) for row in self.a))
        object.__setattr__(self, "dense", tuple(tuple(float(x) for x in row) for row in self.dense))
        s = len(self.c)
        c, a, b = self.c, self.a, self.b
        fsal = s > 1 and c[-1] == 1.0 and b[-1] == 0.0 and a[-1] == b[:-1]
        object.__setattr__(self, "fsal", fsal)
        self._validate()

    def _refuse(self, what: str) -> None:
        raise TableauError(f"tableau {self.name!r}: {what}")

    def _validate(self) -> None:
        s, c, a, b = len(self.c), self.c, self.a, self.b
        vals = [*c, *b, *(x for row in a for x in row), *(self.b_err or ())]
        vals += [x for row in self.dense for x in row]
        if not all(math.isfinite(x) for x in vals):
            self._refuse("coefficients must be finite")
        if s == 0 or c[0] != 0.0:
            self._refuse("needs at least one stage and c[0] == 0 (explicit method)")
        if len(a) != s or any(len(row) != i for i, row in enumerate(a)):
            self._refuse(f"a must be lower-triangular with rows of length 0..{s - 1}")
        if len(b) != s:
            self._refuse(f"b has {len(b)} weights for {s} stages")
        for i, row in enumerate(a):
            if abs(math.fsum(row) - c[i]) > _TOL:
                self._refuse(f"row {i} of a sums to {math.fsum(row)!r}, not c[{i}] = {c[i]!r}")
        if abs(math.fsum(b) - 1.0) > _TOL:
            self._refuse(f"sum(b) = {math.fsum(b)!r}, not 1 (b and b_err swapped?)")
        for k in range(1, self.order + 1):
            q = math.fsum(bi * ci ** (k - 1) for bi, ci in zip(b, c))
            if abs(q - 1.0 / k) > _TOL:
                self._refuse(f"sum(b_i c_i^{k - 1}) = {q!r}, not 1/{k}: b is not of order {self.order}")
        if self.b_err is not None:
            if len(self.b_err) != s:
                self._refuse(f"b_err has {len(self.b_err)} weights for {s} stages")
            if abs(math.fsum(self.b_err)) > _TOL:
                self._refuse(f"sum(b_err) = {math.fsum(self.b_err)!r}, not 0 (b and b_err swapped?)")
            if not any(self.b_err):
                self._refuse("b_err is all zeros: no error estimate")
        nvec = s if self.fsal else s + 1
        if len(self.dense) != nvec:
            extra = "" if self.fsal else " + f(t1, y1)"
            self._refuse(f"dense has {len(self.dense)} rows, needs {nvec} (stages{extra})")
        at_one = [math.fsum(row) for row in self.dense]
        want = list(b) + ([] if self.fsal else [0.0])
        if max(abs(x - y) for x, y in zip(at_one, want)) > _TOL:
            self._refuse("dense output at theta = 1 does not reproduce the solution weights b")
        degree = max(len(row) for row in self.dense)
        for p in range(degree):
            col = math.fsum(row[p] for row in self.dense if p < len(row))
            if abs(col - (1.0 if p == 0 else 0.0)) > _TOL:
                self._refuse("dense-output weights do not sum to theta (inconsistent interpolant)")

    @property
    def stages(self) -> int:
        return len(self.c)

    @property
    def adaptive(self) -> bool:
        return self.b_err is not None

    @property
    def stiffness_probe(self) -> bool:
        """Two stages at the step's end (the last two nodes are 1, FSAL): ``h |λ|`` can be estimated from
        them for free, as in Hairer's DOPRI5 (dopri5, tsit5, dopri8; see ``rk.STIFF_TESTED``)."""
        return self.adaptive and self.fsal and self.stages > 2 and self.c[-2] == 1.0

    def stability_boundary(self) -> float:
        """Where the stability region ends on the negative real axis: the smallest ``x > 0`` with
        ``|R(-x)| = 1`` for the stability function ``R(z) = 1 + z bᵀ (I - z A)⁻¹ 1`` (dopri5: 3.3067)."""
        s = self.stages
        A = np.zeros((s, s))
        for i, row in enumerate(self.a):
            A[i, : len(row)] = row
        b, one = np.array(self.b), np.ones(s)

        def gain(x: float) -> float:
            return abs(1 - x * b @ np.linalg.solve(np.eye(s) + x * A, one))

        lo, hi = 1e-3, 1e-3
        while gain(hi) <= 1.0 and hi < 100.0:
            lo, hi = hi, hi + 0.01
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if gain(mid) <= 1.0 else (lo, mid)
        return lo

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


def _is_fsal(c, a, b) -> bool:
    return len(c) > 1 and c[-1] == 1.0 and b[-1] == 0.0 and tuple(a[-1]) == tuple(b[:-1])


def _quartic(c, a, b, mid) -> tuple[tuple[float, ...], ...]:
    """Quartic dense output through y0, y(1/2), y1, f(t0, y0), f(t1, y1) (torchdiffeq's interpolant).

    ``mid`` are the weights of ``y(t0 + h/2) = y0 + h * sum_j mid_j k_j`` over the stages.
    """
    s = len(b)
    nvec = s if _is_fsal(c, a, b) else s + 1
    bb, mm = np.zeros(nvec), np.zeros(nvec)
    bb[:s], mm[:s] = b, mid
    return _fit_dense(
        nvec,
        4,
        [("v", 1.0, bb), ("v", 0.5, mm), ("d", 0.0, _unit(nvec, 0)), ("d", 1.0, _unit(nvec, nvec - 1))],
    )


def _fixed(name: str, order: int, c, a, b) -> Tableau:
    return Tableau(name=name, order=order, c=c, a=a, b=b, b_err=None, dense=_hermite(b, False), dense_order=3)


EULER = _fixed("euler", 1, [0.0], [()], [1.0])
MIDPOINT = _fixed("midpoint", 2, [0.0, 0.5], [(), (0.5,)], [0.0, 1.0])
# Heun's (trapezoidal) second-order method, torchdiffeq's "heun2".
HEUN2 = _fixed("heun2", 2, [0.0, 1.0], [(), (1.0,)], [0.5, 0.5])
# Heun's third-order method, torchdiffeq's "heun3" (torchdiffeq 0.2.5, _impl/fixed_grid.py, Heun3).
HEUN3 = _fixed("heun3", 3, [0.0, 1 / 3, 2 / 3], [(), (1 / 3,), (0.0, 2 / 3)], [1 / 4, 0.0, 3 / 4])
# Kutta's 3/8 rule, as torchdiffeq's "rk4" (smaller error than the classic rule at the same cost).
RK4 = _fixed(
    "rk4",
    4,
    [0.0, 1 / 3, 2 / 3, 1.0],
    [(), (1 / 3,), (-1 / 3, 1.0), (1.0, -1.0, 1.0)],
    [1 / 8, 3 / 8, 3 / 8, 1 / 8],
)

_BS_C = (0.0, 1 / 2, 3 / 4, 1.0)
_BS_A = ((), (1 / 2,), (0.0, 3 / 4), (2 / 9, 1 / 3, 4 / 9))
_BS_B = (2 / 9, 1 / 3, 4 / 9, 0.0)
BOSH3 = Tableau(
    name="bosh3",
    order=3,
    c=_BS_C,
    a=_BS_A,
    b=_BS_B,
    b_err=(2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8),
    dense=_hermite(_BS_B, True),
    dense_order=3,
)

# Heun's method with an Euler error estimate, torchdiffeq's "adaptive_heun" (torchdiffeq 0.2.5,
# _impl/adaptive_heun.py). Not FSAL: its last stage is f at the Euler point, not at y1.
_AH = dict(c=(0.0, 1.0), a=((), (1.0,)), b=(0.5, 0.5))
ADAPTIVE_HEUN = Tableau(
    name="adaptive_heun", order=2, **_AH, b_err=(0.5, -0.5), dense=_hermite(_AH["b"], False), dense_order=2
)

# Fehlberg's 2(1) pair, torchdiffeq's "fehlberg2" (torchdiffeq 0.2.5, _impl/fehlberg2.py): the
# second-order solution is propagated, so the last stage (at the first-order point) is not f(t1, y1).
_FE = dict(c=(0.0, 1 / 2, 1.0), a=((), (1 / 2,), (1 / 256, 255 / 256)), b=(1 / 512, 255 / 256, 1 / 512))
FEHLBERG2 = Tableau(
    name="fehlberg2",
    order=2,
    **_FE,
    b_err=(-1 / 512, 0.0, 1 / 512),
    dense=_hermite(_FE["b"], False),
    dense_order=2,
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
    name="dopri5",
    order=5,
    c=(0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    a=(
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        _DP_B[:6],
    ),
    b=_DP_B,
    b_err=(
        35 / 384 - 1951 / 21600,
        0.0,
        500 / 1113 - 22642 / 50085,
        125 / 192 - 451 / 720,
        -2187 / 6784 - -12231 / 42400,
        11 / 84 - 649 / 6300,
        -1.0 / 60.0,
    ),
    # Quartic through y0, y(1/2), y1, f0, f1: the interpolant torchdiffeq uses.
    dense=_fit_dense(
        7,
        4,
        [("v", 1.0, np.array(_DP_B)), ("v", 0.5, _DP_MID), ("d", 0.0, _unit(7, 0)), ("d", 1.0, _unit(7, 6))],
    ),
    dense_order=4,
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
    name="tsit5",
    order=5,
    c=(0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0),
    a=(
        (),
        (0.161,),
        (-0.008480655492356989, 0.335480655492357),
        (2.897153057105493, -6.359448489975075, 4.3622954328695815),
        (5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525),
        (5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401, -0.028269050394068383),
        _TS_B[:6],
    ),
    b=_TS_B,
    b_err=tuple(b - bh for b, bh in zip(_TS_B, _TS_BHAT)),
    dense=_tsit5_dense(),
    dense_order=4,
)

# Dormand & Prince 8(7) (Prince & Dormand 1981), torchdiffeq's "dopri8": coefficients and midpoint
# weights copied from torchdiffeq 0.2.5, _impl/dopri8.py (rational approximations, as published).
_D8_C = [
    1 / 18,
    1 / 12,
    1 / 8,
    5 / 16,
    3 / 8,
    59 / 400,
    93 / 200,
    5490023248 / 9719169821,
    13 / 20,
    1201146811 / 1299019798,
    1,
    1,
    1,
]
_D8_A = [
    [1 / 18],
    [1 / 48, 1 / 16],
    [1 / 32, 0, 3 / 32],
    [5 / 16, 0, -75 / 64, 75 / 64],
    [3 / 80, 0, 0, 3 / 16, 3 / 20],
    [29443841 / 614563906, 0, 0, 77736538 / 692538347, -28693883 / 1125000000, 23124283 / 1800000000],
    [
        16016141 / 946692911,
        0,
        0,
        61564180 / 158732637,
        22789713 / 633445777,
        545815736 / 2771057229,
        -180193667 / 1043307555,
    ],
    [
        39632708 / 573591083,
        0,
        0,
        -433636366 / 683701615,
        -421739975 / 2616292301,
        100302831 / 723423059,
        790204164 / 839813087,
        800635310 / 3783071287,
    ],
    [
        246121993 / 1340847787,
        0,
        0,
        -37695042795 / 15268766246,
        -309121744 / 1061227803,
        -12992083 / 490766935,
        6005943493 / 2108947869,
        393006217 / 1396673457,
        123872331 / 1001029789,
    ],
    [
        -1028468189 / 846180014,
        0,
        0,
        8478235783 / 508512852,
        1311729495 / 1432422823,
        -10304129995 / 1701304382,
        -48777925059 / 3047939560,
        15336726248 / 1032824649,
        -45442868181 / 3398467696,
        3065993473 / 597172653,
    ],
    [
        185892177 / 718116043,
        0,
        0,
        -3185094517 / 667107341,
        -477755414 / 1098053517,
        -703635378 / 230739211,
        5731566787 / 1027545527,
        5232866602 / 850066563,
        -4093664535 / 808688257,
        3962137247 / 1805957418,
        65686358 / 487910083,
    ],
    [
        403863854 / 491063109,
        0,
        0,
        -5068492393 / 434740067,
        -411421997 / 543043805,
        652783627 / 914296604,
        11173962825 / 925320556,
        -13158990841 / 6184727034,
        3936647629 / 1978049680,
        -160528059 / 685178525,
        248638103 / 1413531060,
        0,
    ],
    [
        14005451 / 335480064,
        0,
        0,
        0,
        0,
        -59238493 / 1068277825,
        181606767 / 758867731,
        561292985 / 797845732,
        -1041891430 / 1371343529,
        760417239 / 1151165299,
        118820643 / 751138087,
        -528747749 / 2220607170,
        1 / 4,
    ],
]
_D8_B = [
    14005451 / 335480064,
    0,
    0,
    0,
    0,
    -59238493 / 1068277825,
    181606767 / 758867731,
    561292985 / 797845732,
    -1041891430 / 1371343529,
    760417239 / 1151165299,
    118820643 / 751138087,
    -528747749 / 2220607170,
    1 / 4,
    0,
]
_D8_ERR = [
    14005451 / 335480064 - 13451932 / 455176623,
    0,
    0,
    0,
    0,
    -59238493 / 1068277825 - -808719846 / 976000145,
    181606767 / 758867731 - 1757004468 / 5645159321,
    561292985 / 797845732 - 656045339 / 265891186,
    -1041891430 / 1371343529 - -3867574721 / 1518517206,
    760417239 / 1151165299 - 465885868 / 322736535,
    118820643 / 751138087 - 53011238 / 667516719,
    -528747749 / 2220607170 - 2 / 45,
    1 / 4,
    0,
]
_H = 1 / 2
_D8_MID = [0.0] * 14
_D8_MID[0] = (
    -6.3448349392860401388 * (_H**5)
    + 22.1396504998094068976 * (_H**4)
    - 30.0610568289666450593 * (_H**3)
    + 19.9990069333683970610 * (_H**2)
    - 6.6910181737837595697 * _H
    + 1.0
) / (1 / _H)
_D8_MID[5] = (
    -39.6107919852202505218 * (_H**5)
    + 116.4422149550342161651 * (_H**4)
    - 121.4999627731334642623 * (_H**3)
    + 52.2273532792945524050 * (_H**2)
    - 7.6142658045872677172 * _H
) / (1 / _H)
_D8_MID[6] = (
    20.3761213808791436958 * (_H**5)
    - 67.1451318825957197185 * (_H**4)
    + 83.1721004639847717481 * (_H**3)
    - 46.8919164181093621583 * (_H**2)
    + 10.7281392630428866124 * _H
) / (1 / _H)
_D8_MID[7] = (
    7.3347098826795362023 * (_H**5)
    - 16.5672243527496524646 * (_H**4)
    + 9.5724507555993664382 * (_H**3)
    - 0.1890893225010595467 * (_H**2)
    + 0.5526637063753648783 * _H
) / (1 / _H)
_D8_MID[8] = (
    32.8801774352459155182 * (_H**5)
    - 89.9916014847245016028 * (_H**4)
    + 87.8406057677205645007 * (_H**3)
    - 35.7075975946222072821 * (_H**2)
    + 4.2186562625665153803 * _H
) / (1 / _H)
_D8_MID[9] = (
    -10.1588990526426760954 * (_H**5)
    + 22.6237489648532849093 * (_H**4)
    - 17.4152107770762969005 * (_H**3)
    + 6.2736448083240352160 * (_H**2)
    - 0.6627209125361597559 * _H
) / (1 / _H)
_D8_MID[10] = (
    -12.5401268098782561200 * (_H**5)
    + 32.2362340167355370113 * (_H**4)
    - 28.5903289514790976966 * (_H**3)
    + 10.3160881272450748458 * (_H**2)
    - 1.2636789001135462218 * _H
) / (1 / _H)
_D8_MID[11] = (
    29.5553001484516038033 * (_H**5)
    - 82.1020315488359848644 * (_H**4)
    + 81.6630950584341412934 * (_H**3)
    - 34.7650769866611817349 * (_H**2)
    + 5.4106037898590422230 * _H
) / (1 / _H)
_D8_MID[12] = (
    -41.7923486424390588923 * (_H**5)
    + 116.2662185791119533462 * (_H**4)
    - 114.9375291377009418170 * (_H**3)
    + 47.7457971078225540396 * (_H**2)
    - 7.0321379067945741781 * _H
) / (1 / _H)
_D8_MID[13] = (
    20.3006925822100825485 * (_H**5)
    - 53.9020777466385396792 * (_H**4)
    + 50.2558364226176017553 * (_H**3)
    - 19.0082099341608028453 * (_H**2)
    + 2.3537586759714983486 * _H
) / (1 / _H)
_D8_C = [0.0, *_D8_C]
DOPRI8 = Tableau(
    name="dopri8",
    order=8,
    c=_D8_C,
    a=[(), *_D8_A],
    b=_D8_B,
    b_err=_D8_ERR,
    dense=_quartic(_D8_C, [(), *_D8_A], _D8_B, _D8_MID),
    dense_order=4,
)

FIXED_SOLVERS: dict[str, Tableau] = {t.name: t for t in (EULER, MIDPOINT, HEUN2, HEUN3, RK4)}
ADAPTIVE_SOLVERS: dict[str, Tableau] = {
    t.name: t for t in (ADAPTIVE_HEUN, FEHLBERG2, BOSH3, DOPRI5, TSIT5, DOPRI8)
}
ALL_SOLVERS: dict[str, Tableau] = {**FIXED_SOLVERS, **ADAPTIVE_SOLVERS}
