"""Per-sample step control (``options={"batch": "independent"}``): a vectorised loop over the batch.

Each element of the leading dimension of ``y0`` is its own initial value problem with its own step
size, accept/reject decision, error norm and (optionally) output times: ``t`` of shape ``(T,)`` is
shared, ``t`` of shape ``(batch, T)`` gives each sample its own. ``func`` is still called on the whole
batch (one call per stage), with ``t`` of shape ``(batch, 1, ..., 1)`` (broadcastable against ``y``),
so it must treat samples independently (no batch norm, no coupling). A sample that has reached its
last output time is frozen (masked) while the others go on; the solve ends when every sample is done.

The decisions stay on the device: per attempted step the host reads back one small tensor (whether
any sample is still going, how many output times the step passed, the step counts), so a solve
costs one host synchronisation per attempted step. Checks of ``t``'s values ride on the first read.

The controller is :class:`~nodebench.solvers.controller.Controller`'s rule, vectorised
(:func:`next_step`); the step, error estimate and dense output are the Runge–Kutta tableau's, as in
:mod:`~nodebench.solvers.rk`. A batch of one is shared control by definition: the API runs the
shared loop for it, so its results are those of shared control exactly.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from nodebench.solvers.errors import SolverError
from nodebench.solvers.rk import RungeKutta, stage_matrices
from nodebench.solvers.validate import check_func_output

_EPS = 2.220446049250313e-16


@dataclass
class PerSampleCounts:
    """Counts of one per-sample solve.

    Attributes:
        nfe: calls of ``func`` (each on the whole batch).
        attempts: steps the batch attempted together (the loop's iterations).
        accepted, rejected: steps summed over the samples.
        nfe_per_sample, accepted_per_sample, rejected_per_sample: ``(batch,)`` int64 tensors on the
            state's device (not read back during the solve): evaluations while each sample was going,
            and its own steps.
    """

    nfe: int = 0
    attempts: int = 0
    accepted: int = 0
    rejected: int = 0
    nfe_per_sample: torch.Tensor | None = None
    accepted_per_sample: torch.Tensor | None = None
    rejected_per_sample: torch.Tensor | None = None

    def per_sample(self) -> dict[str, torch.Tensor]:
        return {
            "nfe": self.nfe_per_sample,
            "accepted": self.accepted_per_sample,
            "rejected": self.rejected_per_sample,
        }


def next_step(
    h: torch.Tensor, ratio: torch.Tensor, order: int, safety: float, ifactor: float, dfactor: float,
    prev: torch.Tensor | None = None,
) -> torch.Tensor:  # fmt: skip
    """:meth:`Controller.next_step <nodebench.solvers.controller.Controller.next_step>` per sample.

    ``ratio ** (-1/k)`` is ``inf`` at ``ratio = 0`` (capped at ``ifactor``) and ``0`` at ``inf``
    (raised to ``dfactor``); a NaN ratio gives ``dfactor``, as the scalar rule. ``prev`` (PI control):
    the last accepted ratio per sample, updated in place where ``ratio <= 1``.
    """
    k = order
    if prev is None:
        factor = ratio.pow(-1.0 / k).mul_(safety)
    else:
        factor = ratio.pow(-0.7 / k).mul_(prev.pow(0.4 / k)).mul_(safety)
        torch.where(ratio <= 1, torch.clamp(ratio, min=1e-4), prev, out=prev)
    lower = torch.where(ratio < 1, 1.0, dfactor)
    factor = torch.maximum(factor, lower).clamp_(max=ifactor).nan_to_num_(nan=dfactor)
    return factor.mul_(h)


def solve_per_sample(
    func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y0: torch.Tensor,
    t: torch.Tensor,
    method: RungeKutta,
    rtol: float | torch.Tensor,
    atol: float | torch.Tensor,
    opts,
    counts: PerSampleCounts,
    hooks: Hooks | None = None,
    blocks: int = 1,
) -> torch.Tensor:
    """Solve a batch with per-sample step control.

    Arguments:
        func: ``func(t, y)`` on the caller's batch (``t`` of shape ``(batch, 1, ...)``).
        y0: ``(batch, ...)`` real floating initial states.
        t: ``(T,)`` or ``(batch, T)`` output times, each row strictly monotone (checked on the first
            read-back), on ``y0``'s device.
        method: an adaptive Runge–Kutta method.
        rtol, atol: floats, or flat tensors over ``y0``'s entries.
        opts: validated options (``first_step``, ``max_num_steps``, ``safety``, ``ifactor``,
            ``dfactor``, ``controller``, ``min_step``, ``max_step``, ``dtype``).
        counts: filled in place.
        hooks: the adjoint's backward solve (see :class:`Hooks`): land on every output time, jump
            there, evaluate the first stage afresh each step, integrate quadrature channels.
        blocks: the error norm is the largest RMS over this many equal blocks of each sample (the
            adjoint's seminorm over the state and its adjoint: 2).
    Returns:
        ``(T, batch, ...)``: ``y`` at each sample's output times (with ``hooks``, before each jump).
    """
    tab = method.tableau
    B, shape = y0.shape[0], y0.shape
    m = y0[0].numel()
    dtype, device = y0.dtype, y0.device
    t_dtype = opts.t_dtype
    T = t.shape[-1]
    grad = torch.is_grad_enabled()
    W = stage_matrices(tab, dtype, device)
    s, nvec = tab.stages, len(tab.dense)
    fsal = tab.fsal
    a_rows = [W["a"][i, :i] for i in range(s)]
    b, b_err, dense = W["b"][:s], W["b_err"][:s], W["dense"].t().double()
    powers = torch.arange(1, dense.shape[0] + 1, device=device, dtype=torch.float64)
    c_col = torch.tensor(tab.c, dtype=torch.float64, device=device)[:, None]
    end_stages = [i for i in range(1, s) if tab.c[i] == 1.0]
    time_shape = (s, B, *([1] * (len(shape) - 1)))

    T_out = t.detach().to(torch.float64).expand(B, T).contiguous()  # (B, T)
    Y = y0.reshape(B, m) if grad else y0.reshape(B, m).clone()  # (B, m): one row per sample
    outs = torch.cat([Y.view(1, B, m), torch.zeros(T, B, m, dtype=dtype, device=device)])  # spare last row
    if T == 1:
        return outs[:1].view(1, *shape)
    d = torch.sign(T_out[:, -1] - T_out[:, 0])
    diffs = (T_out[:, 1:] - T_out[:, :-1]) * d[:, None]
    t_ok = (torch.isfinite(T_out).all() & (diffs > 0).all()).long()
    T_d = T_out * d[:, None]  # in the direction of integration: increasing
    rt = rtol.view(B, m) if isinstance(rtol, torch.Tensor) else rtol
    at = atol.view(B, m) if isinstance(atol, torch.Tensor) else atol
    sqrt_m = math.sqrt(m)
    nograd = torch.no_grad if grad else contextlib.nullcontext

    same_shape = shape == (B, m)

    def f(tt: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``func`` at per-sample times ``tt`` on states ``y`` of shape ``(B, m)``: the caller's shape out."""
        counts.nfe += 1
        y = y if same_shape else y.view(shape)
        out = func(tt if tt.dtype == t_dtype else tt.to(t_dtype), y)
        if not isinstance(out, torch.Tensor) or out.shape != shape or out.dtype != dtype:
            check_func_output(out, y)
            out = out.to(dtype)  # another floating dtype: computed on in the state's (as torchdiffeq)
        return out

    land = hooks is not None
    stages = _Stages(nvec, B, m, shape, dtype, device, grad)
    t_now = T_out[:, 0].clone()
    stages.set(0, f(t_now.view(time_shape[1:]), Y))
    if land and hooks.first_stage_fresh:
        evals = s  # every step evaluates its first stage (after a jump the carried one is stale)
    nfe_init = 1
    # The initial step (Hairer, Nørsett & Wanner II.4), per sample, on the device, as the shared one.
    with torch.no_grad():
        Yd, f0 = Y.detach(), stages.get(0).detach()
        scale = Yd.abs().mul_(rt).add_(at)
        d0 = torch.linalg.vector_norm(Yd / scale, dim=1).double() / sqrt_m
        d1 = torch.linalg.vector_norm(f0 / scale, dim=1).double() / sqrt_m
        if opts.first_step is not None:
            h_abs = torch.full((B,), opts.first_step, dtype=torch.float64, device=device)
        else:
            h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1)
            y1 = Yd + f0 * (d * h0).to(dtype)[:, None]
            f1 = f((t_now + d * h0).view(time_shape[1:]), y1).reshape(B, m)
            nfe_init += 1
            d2 = torch.linalg.vector_norm((f1 - f0) / scale, dim=1).double() / sqrt_m / h0
            dm = torch.maximum(d1, d2)
            h1 = torch.where(dm <= 1e-15, torch.clamp(h0 * 1e-3, min=1e-6), (0.01 / dm) ** (1.0 / tab.order))
            h_abs = torch.minimum(100 * h0, h1)
        f0_ok = torch.isfinite(f0).all().long()
        prev = torch.ones(B, dtype=torch.float64, device=device) if opts.controller == "PI" else None
        abs_y = Yd.abs()
        j = torch.ones(B, dtype=torch.int64, device=device)  # the next output index per sample
        active = torch.ones(B, dtype=torch.bool, device=device)
        d_active = d.clone()  # the direction where going, 0 where done
        acc_n = torch.zeros(B, dtype=torch.int64, device=device)  # accepted steps per sample
        att_n = torch.zeros(B, dtype=torch.int64, device=device)  # attempted steps per sample
        end_n = torch.zeros(B, dtype=torch.int64, device=device)  # f(t1, y1) evaluations (not FSAL)
        rows = torch.arange(B, device=device)
        clamp = opts.min_step > 0 or math.isfinite(opts.max_step)
    attempts = 0
    if not (land and hooks.first_stage_fresh):
        evals = s - 1
    mb = m // blocks
    n_active = B
    while True:
        if attempts >= opts.max_num_steps:
            where = float(t_now[active].min())
            raise SolverError(
                where,
                "max_num_steps exceeded",
                f"{attempts} steps attempted, max_num_steps={opts.max_num_steps}",
            )
        attempts += 1
        with nograd():
            if clamp:
                h_abs = torch.clamp(h_abs, min=opts.min_step, max=opts.max_step)
            h = h_abs * d_active
            t1 = t_now + h
            if land:  # clip to end on the next output time
                nxt = T_out.gather(1, j.clamp(max=T - 1)[:, None])[:, 0]
                clipped = ((t1 - nxt) * d >= 0).logical_and_(active)
                t1 = torch.where(clipped, nxt, t1)
                h = t1 - t_now
            times = torch.addcmul(t_now, c_col, h).view(time_shape).unbind(0)
            if end_stages:  # as the shared loop: stages at the step's end see f just before t1
                t_end = torch.nextafter(t1, t_now).view(time_shape[1:])
            hcol = h.to(dtype)[:, None]
        if land:
            hooks.start_step()
            if hooks.first_stage_fresh:
                stages.set(0, f(times[0], Y))
        yi = Y
        for i in range(1, s):
            yi = torch.addcmul(Y, hcol, stages.comb(a_rows[i], i))
            stages.set(i, f(t_end if tab.c[i] == 1.0 else times[i], yi))
        y1 = yi if fsal else torch.addcmul(Y, hcol, stages.comb(b, s))
        with nograd():
            err = stages.comb(b_err, s, detach=True)
            abs_y1 = y1.detach().abs()
            tol = torch.maximum(abs_y, abs_y1).mul_(rt).add_(at)
            if blocks == 1:
                ratio = torch.linalg.vector_norm(err.div_(tol), dim=1).double().div_(sqrt_m)
            else:
                ratio = torch.linalg.vector_norm(err.div_(tol).view(B, blocks, mb), dim=2).amax(1)
                ratio = ratio.double().div_(math.sqrt(mb))
            h_used = h.abs()
            ratio.mul_(h_used)
            accept = (ratio <= 1).logical_and_(active)
            h_new = next_step(h_used, ratio, tab.order, opts.safety, opts.ifactor, opts.dfactor, prev)
            if land:  # after a landing, the proposal before the clip (or a larger one after it)
                landed = clipped.logical_and(accept)
                h_new = torch.where(landed, torch.maximum(h_abs, h_new), h_new)
            h_abs = torch.where(active, h_new, h_abs)
            passed = (T_d <= (t1 * d)[:, None]).sum(1)
            n_out = torch.where(accept, passed - j, 0)
            j_new = j + n_out
            still = (j_new < T).logical_and_(active)
            att_n.add_(active)
            if land:
                hooks.quadrature(accept, h, b)
            acc_n.add_(accept)
            underflow = (h_abs <= 4 * _EPS * t_now.abs()).logical_or_(t1 == t_now).logical_and_(active)
            flags = [still.sum(), n_out.max(), accept.sum(), underflow.sum()]
            if attempts == 1:
                flags += [t_ok, f0_ok]
            pack = torch.stack(flags).tolist()
        going, max_out, n_acc, under = pack[:4]
        n_rej, n_active = n_active - n_acc, going
        if attempts == 1:
            if not pack[4]:
                raise ValueError("t must be finite everywhere and strictly monotone in every row")
            if not pack[5]:
                raise SolverError(float(T_out[0, 0]), "non-finite derivative", "func(t0, y0) is not finite")
        if under:
            bad = float(t_now[underflow][0])
            raise SolverError(
                bad, "step size underflow", f"a sample's step is too small to advance from t={bad:.10g}"
            )
        counts.accepted += n_acc
        counts.rejected += n_rej
        if n_acc and not fsal and not land:
            stages.set(s, f(t1.view(time_shape[1:]), y1))  # f(t1, y1): dense output, next first stage
            end_n.add_(active)
        for k in range(max_out):
            with nograd():
                idx = j + k
                t_o = T_out.gather(1, idx.clamp(max=T - 1)[:, None])[:, 0]
                theta = (t_o - t_now) / torch.where(h == 0, 1.0, h)
                w = ((theta[:, None] ** powers) @ dense).to(dtype)  # (B, nvec)
                at_end = (t_o == t1)[:, None]
                target = torch.where(k < n_out, idx, T)  # masked writes go to the spare row
            y_o = y1 if land else torch.where(at_end, y1, torch.addcmul(Y, hcol, stages.dense(w)))
            if grad:
                outs = outs.index_put((target, rows), y_o)
            else:
                outs[target, rows] = y_o
        # Advance the accepted samples.
        acc_col = accept[:, None]
        Y = torch.where(acc_col, y1, Y)
        with nograd():
            t_now = torch.where(accept, t1, t_now)
            abs_y = torch.where(acc_col, abs_y1, abs_y)
            if land and n_acc:
                Y = hooks.jump(Y.reshape(-1), landed, j).view(B, m)  # at output j of the landed samples
                abs_y = torch.where(landed[:, None], Y.abs(), abs_y)
            if going < B:
                d_active = d * still
        j = j_new
        if land and hooks.first_stage_fresh:
            pass  # the next step evaluates its first stage
        elif fsal:
            stages.carry(s - 1, acc_col)
        elif n_acc:
            stages.carry(s, acc_col)
        active = still
        if not going:
            break
    counts.attempts = attempts
    counts.nfe_per_sample = att_n * evals + end_n + nfe_init
    counts.accepted_per_sample, counts.rejected_per_sample = acc_n, att_n - acc_n
    if land:
        hooks.final = Y.view(shape)
    return outs[:T].view(T, *shape)


class Hooks:
    """What the adjoint's backward solve adds to the per-sample loop (every method is a no-op here).

    Attributes:
        first_stage_fresh: evaluate each step's first stage instead of carrying ``f(t1, y1)``.
        final: set by the loop: the state after the last jump, ``(batch, ...)``.
    """

    first_stage_fresh = True
    final: torch.Tensor | None = None

    def start_step(self) -> None:
        """A step begins (its stages are about to be evaluated)."""

    def quadrature(self, accept: torch.Tensor, h: torch.Tensor, b: torch.Tensor) -> None:
        """After the decision: add ``h b_i``-weighted stage contributions of the accepted samples."""

    def jump(self, Y: torch.Tensor, landed: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The flat state after the jumps of the ``landed`` samples at their output ``index``."""
        return Y


class _Stages:
    """Stage derivatives of the whole batch, ``(nvec, B, m)``: in a buffer when no graph is recorded
    (one matrix-vector product per combination), else a list combined out of place."""

    def __init__(self, nvec: int, B: int, m: int, shape, dtype, device, grad: bool) -> None:
        self.grad, self.B, self.m = grad, B, m
        self.buf = None if grad else torch.empty(nvec, B, m, dtype=dtype, device=device)
        self.KT = None if grad else [self.buf[:i].view(i, B * m).t() for i in range(nvec + 1)]
        self.rows = None if grad else [r.view(shape) for r in self.buf.unbind(0)]  # func's output copies in
        self.ks: list[torch.Tensor | None] = [None] * nvec

    def set(self, i: int, k: torch.Tensor) -> None:
        """Store ``k`` (the caller's shape) as vector ``i``."""
        if self.grad:
            self.ks[i] = k.reshape(self.B, self.m)
        else:
            self.rows[i].copy_(k)

    def get(self, i: int) -> torch.Tensor:
        """Vector ``i``, ``(B, m)``."""
        return self.ks[i] if self.grad else self.buf[i]

    def comb(self, w: torch.Tensor, upto: int, detach: bool = False) -> torch.Tensor:
        """``sum_j w_j k_j`` over the first ``upto`` vectors, ``(B, m)``."""
        if not self.grad:
            return torch.mv(self.KT[upto], w).view(self.B, self.m)
        ks = torch.stack(self.ks[:upto])
        return torch.einsum("j,jbm->bm", w, ks.detach() if detach else ks)

    def dense(self, w: torch.Tensor) -> torch.Tensor:
        """``sum_j w_bj k_bj`` with per-sample weights ``w`` of shape ``(B, nvec)``: ``(B, m)``."""
        n = w.shape[1]
        ks = self.buf[:n] if not self.grad else torch.stack(self.ks[:n])
        return torch.bmm(w[:, None, :], ks.transpose(0, 1))[:, 0]

    def carry(self, i: int, where: torch.Tensor) -> None:
        """Vector ``i`` (``f(t1, y1)``) becomes the first stage where ``where`` (accepted samples)."""
        if self.grad:
            self.ks[0] = torch.where(where, self.ks[i], self.ks[0])
        else:
            torch.where(where, self.buf[i], self.buf[0], out=self.buf[0])
