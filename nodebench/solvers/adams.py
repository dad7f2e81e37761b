"""``method="adams"``: variable-step, variable-order (1 to 12) Adams–Bashforth–Moulton, PECE.

This is the integrator of Shampine & Gordon's DE/STEP ("Computer Solution of Ordinary Differential
Equations", 1975; Hairer, Nørsett & Wanner I, Sec. III.5), transcribed onto flat torch states:

- **Modified divided differences** ``phi_i`` of ``f`` carry the history. On a step of size ``h`` and
  order ``k`` the predictor is ``p = y + h sum_i g_i phi*_i`` (Adams–Bashforth of order ``k``), ``f`` is
  evaluated at ``p`` (P, E), the corrector is ``y1 = p + h g_{k+1} (f(p) - phi_1)`` (Adams–Moulton of
  order ``k + 1``, C) and ``f`` is evaluated again at ``y1`` (E): two evaluations per step. The
  coefficients ``g, alpha, beta, sigma, psi`` are recomputed only for the parts the last step change
  made stale, as in STEP (none at all after ``k`` steps of one size).
- **Local error estimates** at orders ``k - 2, k - 1, k`` (and ``k + 1`` after constant steps) come
  from the same differences; they choose the order, accept or reject the step (the corrector's error
  in the weighted RMS norm with weights ``rtol * max(|y0|, |p|) + atol``, the norm of the Runge–Kutta
  methods, must be at most 1) and size the next one: double when the error is far below tolerance,
  keep the size when below it, else shrink by a factor in ``[0.5, 0.9]``. Keeping the size constant
  keeps the coefficients fixed and the estimates reliable — which is why this scheme needs so few
  evaluations on smooth problems.
- **Start** at order 1 with ``h = 0.25 / sqrt(||f0 / w||)`` (STEP's rule, no extra evaluation), then a
  start phase that doubles the step and raises the order each step until an estimate says stop.
- **Dense output** is STEP's companion INTRP: the interpolating polynomial through the last ``k + 1``
  points, evaluated at the requested times inside the last step. The solver lands exactly on the final
  time (the last step is clipped), so ``func`` is never evaluated beyond ``t[-1]``.

Why this form and not LSODE's Nordsieck array: the divided-difference form is exact for variable
steps (the Nordsieck form interpolates the history to the new step size, which is only approximately
the variable-step method and needs a step-size-change restriction), its error estimates at
neighbouring orders fall out of the differences without extra work, and every update is a short linear
combination of stored vectors — here one matrix product per step, out of place, so autograd can
backpropagate through the solve (``odeint``) exactly as through the Runge–Kutta loop.

After a discontinuity of the state (the adjoint's jump at an output time) the history is invalid and
the method restarts at order 1 (:meth:`_Adams.start`).
"""

from __future__ import annotations

import math

import torch

from nodebench.solvers.controller import record
from nodebench.solvers.errors import SolverError
from nodebench.solvers.method import Config, Method, Step

_EPS = 2.220446049250313e-16
_FOURU = 4 * _EPS
MAX_ORDER = 12
# |gamma*_k|: the error constants of the constant-step Adams–Moulton formulas (STEP's GSTR), 1-based.
_GSTR = (0.0, 0.5, 0.0833, 0.0417, 0.0264, 0.0188, 0.0143, 0.0114, 0.00936, 0.00789, 0.00679, 0.00592,
         0.00524, 0.00468)  # fmt: skip
_P5EPS = 0.5  # half the tolerance of the weighted norm (errors are measured in units of the tolerance)


def _le(a: float, b: float) -> bool:
    if math.isfinite(a) and math.isfinite(b):
        record("ratio", abs(a - b) / max(abs(a), abs(b), 1e-300))
    return a <= b


class _Adams:
    """The state of one STEP integration: coefficients (Python floats, 1-based lists) and differences."""

    def __init__(
        self, f, rtol: float, atol: float, max_order: int, norm, counts, direction: float, first_step=None
    ) -> None:
        self.f = f
        self.first_step = first_step
        self.rtol = rtol
        self.atol = atol
        self.max_order = max_order
        self.norm = norm
        self.m = None if norm is None else norm.prefix
        self.counts = counts
        self.d = direction
        n = MAX_ORDER + 3
        self.alpha = [0.0] * n
        self.beta = [0.0] * n
        self.psi = [0.0] * n
        self.sigma = [0.0] * n
        self.g = [0.0] * n
        self.v = [0.0] * n
        self.w = [0.0] * n
        self.iv = [0] * n
        self.g[1], self.g[2], self.sigma[1] = 1.0, 0.5, 1.0
        self.x_target: float | None = None  # the exact end of a step clipped to land on a time
        self.version = 0  # bumped whenever block 1 recomputes coefficients
        self.cache: tuple = (None, None)  # (key, M) of the step's matrix product

    # -- helpers -----------------------------------------------------------------------------------
    def _eval(self, t: float, y: torch.Tensor) -> torch.Tensor:
        return self.f(t, y).reshape(-1)

    def _weights(self, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """``rtol * max(|y|, |p|) + atol`` over the normed entries (call under ``torch.no_grad``)."""
        m = self.m
        if m is not None:
            y, p = y[:m], p[:m]
        return torch.maximum(y.abs(), p.abs()).mul_(self.rtol).add_(self.atol)

    def _norms(self, vecs: torch.Tensor, wt: torch.Tensor) -> list[float]:
        """Weighted RMS norms of the rows of ``vecs``, with one host synchronisation (default norm;
        call under ``torch.no_grad``)."""
        if self.norm is None:
            scale = math.sqrt(wt.numel())
            return [x / scale for x in torch.linalg.vector_norm(vecs / wt, dim=1).tolist()]
        return [self.norm(v / wt) for v in vecs]

    # -- start / restart ---------------------------------------------------------------------------
    def start(self, x: float, y: torch.Tensor, yp: torch.Tensor, h_abs: float | None, span: float) -> None:
        """Begin (or, after a jump of the state, restart) at order 1 from ``(x, y)`` with ``yp = f(x, y)``.

        ``h_abs`` is the caller's first step (``options['first_step']``); without it STEP's rule
        ``0.25 / sqrt(||yp / w||)``, at most ``span``.
        """
        self.x, self.y, self.yp = x, y, yp
        if h_abs is None:
            with torch.no_grad():
                ypd = yp if self.m is None else yp[: self.m]
                wt = self._weights(y, y)
                s = self._norms(ypd[None], wt)[0]
            h_abs = span if s == 0.0 or not math.isfinite(s) else min(span, 0.25 / math.sqrt(s))
        h_abs = max(h_abs, _FOURU * abs(x))
        self.h = self.d * h_abs
        self.phi = torch.stack([yp, torch.zeros_like(yp)])
        self.hold = 0.0
        self.k = 1
        self.kold = 0
        self.kprev = 0
        self.ns = 0
        self.ivc = 0
        self.phase1 = True
        self.ifail = 0

    # -- one step (STEP, blocks 1 to 4) ------------------------------------------------------------
    def _coefficients(self) -> None:
        """Block 1: the coefficients ``alpha, beta, psi, sigma, g`` stale after a change of step or order."""
        k, h = self.k, self.h
        kp1, kp2 = k + 1, k + 2
        alpha, beta, psi, sigma, g, v, w, iv = (
            self.alpha, self.beta, self.psi, self.sigma, self.g, self.v, self.w, self.iv)  # fmt: skip
        if h != self.hold:
            self.ns = 0
        if self.ns <= self.kold:
            self.ns += 1
        ns = self.ns
        nsp1 = ns + 1
        if k < ns:
            return
        self.version += 1
        beta[ns] = 1.0
        alpha[ns] = 1.0 / ns
        temp1 = h * ns
        sigma[nsp1] = 1.0
        for i in range(nsp1, k + 1):
            temp2 = psi[i - 1]
            psi[i - 1] = temp1
            beta[i] = beta[i - 1] * psi[i - 1] / temp2
            temp1 = temp2 + h
            alpha[i] = h / temp1
            sigma[i + 1] = i * alpha[i] * sigma[i]
        psi[k] = temp1
        if ns <= 1:
            for iq in range(1, k + 1):
                v[iq] = 1.0 / (iq * (iq + 1))
                w[iq] = v[iq]
            self.ivc = 0
        else:
            if k > self.kprev:
                if self.ivc != 0:
                    jv = kp1 - iv[self.ivc]
                    self.ivc -= 1
                else:
                    jv = 1
                    v[k] = 1.0 / (k * kp1)
                    w[k] = v[k]
                for j in range(jv, ns - 1):
                    i = k - j
                    v[i] = v[i] - alpha[j + 1] * v[i + 1]
                    w[i] = v[i]
            limit1 = kp1 - ns
            temp5 = alpha[ns]
            for iq in range(1, limit1 + 1):
                v[iq] = v[iq] - temp5 * v[iq + 1]
                w[iq] = v[iq]
            g[nsp1] = w[1]
            w[limit1 + 1] = v[limit1 + 1]
            if k < self.kold:
                self.ivc += 1
                iv[self.ivc] = limit1 + 2
        self.kprev = k
        for i in range(ns + 2, kp1 + 1):
            limit2 = kp2 - i
            temp6 = alpha[i - 1]
            for iq in range(1, limit2 + 1):
                w[iq] = w[iq] - temp6 * w[iq + 1]
            g[i] = w[1]

    def step(self) -> bool:
        """Attempt one step of size ``self.h``; True when it was accepted (the state then advanced)."""
        k, h = self.k, self.h
        kp1, km1, km2 = k + 1, k - 1, k - 2
        psi_saved = self.psi[:]
        self._coefficients()
        ns, g, beta, sigma = self.ns, self.g, self.beta, self.sigma
        # Block 2: predict. phi*_i = beta_i phi_i (i > ns), p = y + h sum g_i phi*_i, and the predicted
        # differences pred_i = sum_{j >= i} phi*_j. Everything the step needs from the history is one
        # matrix product out = M @ phi (M cached while k, the coefficients and phi's row count stay; its
        # columns beyond k are zero, so phi is used unsliced): row 0 is
        # (p - y) / h, rows 1.. are ``base``, the new differences less the corrector's derivative yp1:
        # pred_i - pred_0 (i < k), -pred_0 and -pred_0 - phi_k, so that phi_new = base + yp1 (its rows
        # pred_i + e, e, e - phi_k with e = yp1 - pred_0), and base + yp holds the error estimates'
        # vectors (yp - pred_0, pred_{k-1} + yp - pred_0, pred_{k-2} + yp - pred_0) in rows k, k-1, k-2.
        phi, y, x = self.phi, self.y, self.x
        rows_phi = phi.shape[0]  # k + 1 or more
        key = (k, self.version, min(ns, k + 1), phi.dtype, rows_phi)
        if self.cache[0] == key:
            mat = self.cache[1]
        else:
            b = [beta[i] if i >= ns + 1 else 1.0 for i in range(1, k + 1)] + [0.0]
            pad = [0.0] * (rows_phi - k - 1)
            rows = [[g[j + 1] * b[j] for j in range(k)] + [0.0] + pad]  # (p - y) / h
            rows += [
                [-b[j] if j < i else 0.0 for j in range(k + 1)] + pad for i in range(k)
            ]  # pred_i - pred_0
            rows.append([-b[j] for j in range(k + 1)] + pad)  # -pred_0 (b[k] = 0)
            rows.append([-b[j] for j in range(k)] + [-1.0] + pad)  # -pred_0 - phi_k
            mat = torch.tensor(rows, dtype=phi.dtype, device=phi.device)
            self.cache = (key, mat)
        out = torch.mm(mat, phi)
        p = torch.add(y, out[0], alpha=h)
        x1 = self.x_target if self.x_target is not None else x + h
        yp = self._eval(x1, p)
        absh = abs(h)
        lo = max(k - 2, 1)  # base rows lo..k: the estimates' vectors at orders k-2, k-1 (from k >= 2), k
        vecs = out[lo + 1 : k + 2] + yp  # with autograd: its last row, yp - pred_0, enters the corrector
        m = self.m
        with torch.no_grad():
            wt = self._weights(y, p)
            norms = self._norms(vecs if m is None else vecs[:, :m], wt)
        erk_raw = norms[-1]
        erkm1 = absh * sigma[k] * _GSTR[km1] * norms[-2] if km2 >= 0 else 0.0
        erkm2 = absh * sigma[km1] * _GSTR[km2] * norms[-3] if km2 > 0 else 0.0
        temp5 = absh * erk_raw
        err = temp5 * (g[k] - g[kp1])
        erk = temp5 * sigma[kp1] * _GSTR[k]
        knew = k
        if km2 > 0:
            if _le(max(erkm1, erkm2), erk):
                knew = km1
        elif km2 == 0:
            if _le(erkm1, 0.5 * erk):
                knew = km1
        if not _le(err, 1.0):  # also catches NaN
            # Block 3: failure. Restore psi (phi and x were never overwritten); halve, then order 1.
            self.phase1 = False
            self.psi = psi_saved
            self.ifail += 1
            temp2 = 0.5
            if self.ifail > 3 and math.isfinite(erk) and _P5EPS < 0.25 * erk:
                temp2 = math.sqrt(_P5EPS / erk)
            if self.ifail >= 3 or not math.isfinite(err):
                knew = 1
            self.h = temp2 * h
            self.k = knew
            self.ns = 0
            return False
        # Block 4: success. Correct, evaluate, update the differences.
        self.ifail = 0
        self.kold = k
        self.hold = h
        y1 = torch.add(p, vecs[-1], alpha=h * g[kp1])
        yp1 = self._eval(x1, y1)
        self.phi = out[1:] + yp1  # base + yp1
        self.x, self.y, self.yp = x1, y1, yp1
        erkp1 = 0.0
        if knew == km1 or k == self.max_order:
            self.phase1 = False
        if self.phase1:
            k, erk = kp1, erkp1
        elif knew == km1:
            k, erk = km1, erkm1
        elif kp1 <= ns:
            with torch.no_grad():
                last = self.phi[kp1 : kp1 + 1]
                erkp1 = absh * _GSTR[kp1] * self._norms(last if m is None else last[:, :m], wt)[0]
            if k > 1:
                if _le(erkm1, min(erk, erkp1)):
                    k, erk = km1, erkm1
                elif not (_le(erk, erkp1) or k == self.max_order):
                    k, erk = kp1, erkp1
            elif not _le(0.5 * erk, erkp1):
                k, erk = kp1, erkp1
        # With the new order, the next step size.
        hnew = h + h
        if not self.phase1 and not _le(erk * 2.0 ** (k + 1), _P5EPS):
            hnew = h
            if not _le(erk, _P5EPS):
                r = (_P5EPS / erk) ** (1.0 / (k + 1))
                hnew = self.d * max(absh * max(0.5, min(0.9, r)), _FOURU * abs(x1))
        self.k = min(k, self.max_order)
        self.h = hnew
        return True

    def interpolate(self, t: float) -> torch.Tensor:
        """INTRP: the state at ``t`` (inside the last step) from the polynomial of the last step's order."""
        hi = t - self.x
        ki = self.kold + 1
        w = [0.0] + [1.0 / i for i in range(1, ki + 1)] + [0.0]
        gi = [0.0, 1.0] + [0.0] * ki
        term = 0.0
        for j in range(2, ki + 1):
            psijm1 = self.psi[j - 1]
            gamma = (hi + term) / psijm1
            eta = hi / psijm1
            for i in range(1, ki + 2 - j):
                w[i] = gamma * w[i] - eta * w[i + 1]
            gi[j] = w[1]
            term = psijm1
        coef = torch.tensor(gi[1 : ki + 1], dtype=self.phi.dtype, device=self.phi.device)
        return torch.addmv(self.y, self.phi[:ki].t(), coef, alpha=hi)


# step_t: the loop clips steps to land there. Not jump_t: the corrector evaluates f at the step's end
# itself, which at a discontinuity of f is its far side (the Runge–Kutta stages there are nudged).
ADAMS_OPTIONS = frozenset({"first_step", "max_num_steps", "dtype", "max_order", "step_t"})


class Adams(Method):
    """``method="adams"``: the :class:`_Adams` integrator behind the :class:`~nodebench.solvers.method.Method`
    interface.

    It judges its own steps and chooses its own step size and order (the controller passes its verdict
    and proposal through), lands exactly on the final time, and restarts at order 1 after a jump of the
    state (the history of ``f`` is no longer that of the solution).
    """

    name = "adams"
    order = MAX_ORDER
    adaptive = True
    option_names = ADAMS_OPTIONS
    lands_on_end = True

    def init(self, f, t0, y0, cfg: Config) -> _Adams:
        opts = cfg.opts
        a = _Adams(
            f, cfg.rtol, cfg.atol, opts.max_order, cfg.norm, cfg.counts, cfg.direction, opts.first_step
        )
        a.x, a.y, a.yp = t0, y0, self._derivative(a, t0, y0, None)
        return a

    @staticmethod
    def _derivative(a: _Adams, t: float, y: torch.Tensor, yp: torch.Tensor | None) -> torch.Tensor:
        if yp is None:
            yp = a._eval(t, y)
        if not bool(torch.isfinite(yp).all()):
            raise SolverError(t, "non-finite derivative", f"func(t, y) is not finite at t={t:.10g}")
        return yp

    def initial_step(self, a: _Adams, direction: float, span: float) -> float:
        if not math.isfinite(span):  # an event search: no landing ahead
            span = max(1.0, abs(a.x))
        a.start(a.x, a.y, a.yp, a.first_step, span)
        return abs(a.h)

    def step(self, a: _Adams, t: float, h: float, t1: float) -> Step:
        y0 = a.y
        a.h, a.x_target = h, t1
        accepted = a.step()  # a non-finite predictor or derivative gives a non-finite error: rejected
        return Step(t, t1, h, y0, a.y, accepted=accepted, proposal=abs(a.h))

    def dense(self, a: _Adams, step: Step, t: float) -> torch.Tensor:
        return a.interpolate(t)

    def snap(self, a: _Adams, t: float) -> torch.Tensor | None:
        a.x = t
        return a.yp

    def jump(self, a: _Adams, t, y, fy, after, span=math.inf):
        yp = self._derivative(a, after, y, fy)
        a.start(t, y, yp, a.first_step, span if math.isfinite(span) else max(1.0, abs(t)))
        return abs(a.h)

    def derivative_at_end(self, a: _Adams, step: Step) -> torch.Tensor | None:
        return a.yp


ADAMS = Adams()
