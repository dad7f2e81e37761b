"""``odeint_adjoint``: Algorithm 1 of Chen et al. (2018), O(1) memory in the number of solver steps.

The forward solve builds no graph and keeps only the outputs. The backward solve integrates the
augmented state ``[z, a, dL/dθ, dL/dt]`` from the last output time to the first, interval by
interval: on each interval ``z`` follows ``f``, the adjoint ``a = dL/dz`` follows ``-a ∂f/∂z``, and the
parameter and time channels accumulate ``-a ∂f/∂θ`` and ``-a ∂f/∂t``. At every output time ``z`` is reset
to the stored forward value and ``∂L/∂z(t_i)`` is added to ``a``.

Adaptive methods make the backward pass one solve that lands on every output time: the first step is
chosen once, a step that would pass an output time is clipped to end on it, the jump is applied there
and the integration continues with the step the controller proposed (torchdiffeq instead restarts in
every interval, with a new initial-step selection and small first steps each time). Adams restarts
at order 1 after each jump, since the jump invalidates its history.

An implicit backward method (``radau``, ``bdf``, ``ndf``, the fixed-grid implicit Runge–Kutta methods:
the backward solve of a stiff problem is stiff too) builds its Newton matrices from ``J = ∂f/∂z`` alone
(:class:`~nodebench.solvers.newton.AdjointLinearization`): two ``n x n`` factorisations, not one of
the augmented size.

The jump costs no evaluation of ``f`` where the method has the augmented derivative at the landing
already (dopri5's, bosh3's and tsit5's FSAL stage, Adams's corrector evaluation, radau's
``f(t1, y1)``): the augmented dynamics are linear in ``a``, so after ``a += g`` the derivative is the
old one plus the vector-Jacobian product of ``-g`` through the graph of that last evaluation, kept
for this. There ``z`` is not reset
(resetting it would need ``f`` at the new ``z``): it continues as the backward solve carried it, within
the solver's tolerance of the stored value. Elsewhere (methods without FSAL, fixed grids) ``z`` is
reset and ``f`` evaluated as before.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from nodebench.solvers import callbacks
from nodebench.solvers import stats as _stats
from nodebench.solvers.boundary import UserNorm, check_low_precision, describe
from nodebench.solvers.controller import BlockNorm
from nodebench.solvers.integrate import make_rhs, solve
from nodebench.solvers.method import Config, Counts, Method
from nodebench.solvers.newton import AdjointLinearization, autograd_jacobian, user_jacobian
from nodebench.solvers.odeint import _shared_options, batch_mode, check_per_sample, check_tolerances, prepare
from nodebench.solvers.per_sample import Hooks, PerSampleCounts, solve_per_sample
from nodebench.solvers.validate import Options, as_state_dtype, bind_grid, check_method, check_options


@dataclass
class _Config:
    func: Callable
    ts: list[float]
    method: Method
    rtol: float | torch.Tensor
    atol: float | torch.Tensor
    opts: Options
    adj_method: Method
    adj_rtol: float | torch.Tensor
    adj_atol: float | torch.Tensor
    adj_opts: Options
    adjoint_norm: str
    t_dtype: torch.dtype
    collectors: tuple
    norm: Any = None  # the forward error norm (None: RMS)
    state: Any = None  # the caller's state (boundary.State): views for the backward norm and callbacks
    callbacks: Any = None  # the forward solve's step callbacks (callbacks.Callbacks) or None
    adj_callbacks: dict = field(default_factory=dict)  # the backward solve's (callbacks.select)
    adjoint_options: dict = field(default_factory=dict)  # exposed on the backward node (see below)
    default_norm: Any = None  # the AdjointNorm in adjoint_options["norm"] unless the caller gave one
    raw_adj_rtol: Any = None  # the backward tolerances before they are laid over the backward state
    raw_adj_atol: Any = None


class AdjointNorm:
    """nodebench's backward error norm, as torchdiffeq exposes its own: a callable on the tuple
    ``(t, y, adj_y, *adj_params)`` of the backward state (``t`` the dL/dt channel, 0-d).

    The maximum of RMS norms over blocks: ``y`` and ``adj_y`` each by the state's components (one block
    for a tensor state, one per component of a tuple state, torchdiffeq's mixed norm), and with
    ``"full"`` also each parameter and ``|t|``; ``"seminorm"`` leaves the parameter and time channels
    out. The backward pass computes the same on the device (a
    :class:`~nodebench.solvers.controller.BlockNorm` over :meth:`blocks`) unless the caller replaced
    this object, in ``adjoint_options["norm"]`` or on the backward node (``grad_fn.adjoint_options``),
    by a callable of their own, which is then called on the tuple.

    Arguments:
        kind: ``"seminorm"`` or ``"full"``.
        sizes: flat entries of each component of the state (one entry for a tensor state).
    """

    def __init__(self, kind: str, sizes: list[int]) -> None:
        self.kind, self.sizes = kind, list(sizes)

    def blocks(self, n: int, param_sizes: list[int], t_channel: bool) -> list[int]:
        """The block sizes over the flat backward state ``[y, adj_y, params..., t]``."""
        state = self.sizes if sum(self.sizes) == n else [n]
        if self.kind == "seminorm":
            return [*state, *state]
        return [*state, *state, *param_sizes] + ([1] if t_channel else [])

    def _state(self, x: torch.Tensor) -> list[torch.Tensor]:
        flat = x.reshape(-1)
        parts = torch.split(flat, self.sizes) if flat.numel() == sum(self.sizes) else (flat,)
        return [_rms(p) for p in parts]

    def __call__(self, tensors: tuple[torch.Tensor, ...]) -> torch.Tensor:
        t, y, adj_y, *adj_params = tensors
        parts = self._state(y) + self._state(adj_y)
        if self.kind == "full":
            parts += [_rms(p) for p in adj_params] + [t.detach().abs().reshape(()).double()]
        return torch.stack(parts).max()


def _rms(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(x.detach()).double() / math.sqrt(max(x.numel(), 1))


def _aug_view(
    state: Any, shape: torch.Size, n: int, pars: list[torch.Tensor], t_req: bool, like: torch.Tensor
):
    """``flat -> (t, y, adj_y, *adj_params)``: torchdiffeq's view of the backward state, for a caller's
    backward norm and the ``_adjoint`` callbacks. ``y``, ``adj_y`` have the state's shape for a plain
    tensor state, else (tuple, complex, low precision) they are the flat real vectors the core
    integrates (torchdiffeq also hands its norm the flattened tuple); ``t`` is zero when ``t`` needs
    no gradient (the channel is then not integrated)."""
    plain = state is None or state.plain
    zero = torch.zeros((), dtype=like.dtype, device=like.device)
    sizes = [p.numel() for p in pars]
    shapes = [p.shape for p in pars]

    def view(s: torch.Tensor) -> tuple[torch.Tensor, ...]:
        z, a = s[:n], s[n : 2 * n]
        if plain:
            z, a = z.view(shape), a.view(shape)
        out, off = [], 2 * n
        for size, p_shape in zip(sizes, shapes):
            out.append(s[off : off + size].view(p_shape))
            off += size
        t_chan = s[off].view(()) if t_req else zero
        return (t_chan, z, a, *out)

    return view


def _unpacking_norm(norm: Callable, state: Any) -> Callable:
    """A caller's backward norm for a tuple state: torchdiffeq hands it ``(t, *y, *adj_y, *adj_params)``
    with ``y`` and ``adj_y`` unpacked into the caller's components."""

    def unpacked(tensors: tuple[torch.Tensor, ...]) -> Any:
        t, y, adj_y, *adj_params = tensors
        return norm((t, *state.restore(y), *state.restore(adj_y), *adj_params))

    return unpacked


class _Adjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cfg: _Config, y0: torch.Tensor, t: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        shape = y0.shape
        counts = Counts()
        f = make_rhs(cfg.func, shape, cfg.t_dtype, y0.device, counts, check=True)
        try:
            with torch.no_grad():
                d = 1.0 if len(cfg.ts) < 2 or cfg.ts[-1] > cfg.ts[0] else -1.0
                config = Config(
                    cfg.rtol, cfg.atol, cfg.opts, counts, cfg.norm, shape, d, cfg.ts[-1], cfg.callbacks
                )
                ys = solve(f, y0.reshape(-1), cfg.ts, cfg.method, config)
        finally:
            _stats.report(
                cfg.collectors,
                counts.nfe,
                counts.accepted,
                counts.rejected,
                False,
                cfg.method.name,
                linear=counts.linear() if cfg.method.implicit else None,
            )
        y = torch.stack(ys).view(len(cfg.ts), *shape)
        ctx.cfg = cfg
        # torchdiffeq keeps the backward solve's options on its backward node, where its tests replace
        # the norm; the backward pass reads the norm from here.
        ctx.adjoint_options = cfg.adjoint_options
        ctx.save_for_backward(t, y, *params)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: torch.Tensor):
        cfg: _Config = ctx.cfg
        t, y, *params = ctx.saved_tensors
        shape = y.shape[1:]
        n = y[0].numel()
        t_req = ctx.needs_input_grad[2]
        want = [p.requires_grad for p in params]
        pars = [p for p, w in zip(params, want) if w]
        sizes = [p.numel() for p in pars]
        counts = Counts()
        func = cfg.func
        scalar = torch.scalar_tensor

        last: list[Any] = [None, None, None]  # (state, f(z), inputs) of the latest evaluation

        def flat_vjps(fz: torch.Tensor, inputs: tuple[torch.Tensor, ...], cot: torch.Tensor) -> list:
            if not fz.requires_grad:  # func depends on neither the state, nor the parameters, nor t
                vjps = [None] * len(inputs)
            else:
                with torch.enable_grad():
                    vjps = torch.autograd.grad(fz, inputs, cot, allow_unused=True, retain_graph=True)
            return [
                torch.zeros(inp.numel(), dtype=y.dtype, device=y.device) if v is None else v.reshape(-1)
                for v, inp in zip(vjps, inputs)
            ]

        def aug(tt: float, s: torch.Tensor) -> torch.Tensor:
            counts.nfe += 1
            z = s[:n].view(shape)
            a = s[n : 2 * n].view(shape)
            with torch.enable_grad():
                z_ = z.detach().requires_grad_(True)
                t_ = scalar(tt, dtype=cfg.t_dtype, device=y.device)
                if t_req:
                    t_.requires_grad_(True)
                fz = as_state_dtype(func(t_, z_), z_)
            inputs = (z_, *pars, t_) if t_req else (z_, *pars)
            last[:] = s, fz, inputs  # the graph is kept until the next evaluation, for a jump there
            return torch.cat([fz.detach().reshape(-1), *flat_vjps(fz, inputs, -a)])

        P = sum(sizes)
        width = 2 * n + P + (1 if t_req else 0)
        view = _aug_view(cfg.state, shape, n, pars, t_req, y)
        chosen = ctx.adjoint_options.get("norm", cfg.default_norm)
        adj_rtol, adj_atol = cfg.adj_rtol, cfg.adj_atol
        if not cfg.adj_method.adaptive:
            norm = None
        elif chosen is cfg.default_norm:  # nodebench's own norm, on the device
            norm = BlockNorm(cfg.default_norm.blocks(n, sizes, t_req), y.device)
        else:  # a caller's norm on torchdiffeq's tuple (t, y, adj_y, *adj_params): it sees every channel
            norm = UserNorm(chosen, view, width)
            rest = width - 2 * n
            adj_rtol = _adjoint_tol(cfg.raw_adj_rtol, n, rest, seminorm=False)
            adj_atol = _adjoint_tol(cfg.raw_adj_atol, n, rest, seminorm=False)
        adj_callbacks = callbacks.make(cfg.adj_callbacks, view, cfg.adj_opts.t_dtype, y.device)
        s = torch.zeros(width, dtype=y.dtype, device=y.device)
        s[:n] = y[-1].reshape(-1)
        s[n : 2 * n] = grad_y[-1].reshape(-1)
        time_vjps = torch.zeros(len(cfg.ts), dtype=t.dtype, device=t.device) if t_req else None
        ts = cfg.ts

        def time_vjp(i: int) -> None:
            """``dL/dt_i`` from the output's derivative; it also enters the ``t`` channel of the state."""
            counts.nfe += 1
            fi = func(scalar(ts[i], dtype=cfg.t_dtype, device=y.device), y[i])
            dl_dti = (fi.reshape(-1) * grad_y[i].reshape(-1)).sum()
            time_vjps[i] = dl_dti
            s[-1] -= dl_dti

        def jump(j: int, s_new: torch.Tensor, f_s: torch.Tensor | None = None):
            """At the ``j``-th time of the backward solve: add ``dL/dz(t_i)`` to the adjoint.

            Returns the new state and, when ``f_s`` is the derivative at ``s_new`` from the latest
            evaluation (whose graph is kept), the derivative at the new state without evaluating ``f``
            (``z`` is then kept); else ``None``, with ``z`` reset to the stored forward value.
            """
            nonlocal s
            i = len(ts) - 1 - j
            g = grad_y[i].reshape(-1)
            s = s_new.clone()
            s[n : 2 * n] += g
            f_new = None
            if f_s is not None and last[0] is s_new:
                _, fz, inputs = last
                f_new = f_s.clone()
                f_new[n:] += torch.cat(flat_vjps(fz, inputs, -g.view(shape)))
            else:
                s[:n] = y[i].reshape(-1)
            if t_req and i > 0:
                time_vjp(i)  # moves the t channel, on which no derivative depends: f_new holds
            return s, f_new

        linear = None
        if cfg.adj_method.implicit:  # Newton matrices of the augmented state from J = df/dz alone
            user = cfg.adj_opts.jacobian

            def jac_f(tt: float, z: torch.Tensor) -> torch.Tensor:
                if user is not None:
                    return user_jacobian(user, tt, z, shape, cfg.t_dtype)
                t_ = scalar(tt, dtype=cfg.t_dtype, device=y.device)
                return autograd_jacobian(lambda x: func(t_, x.view(shape)).reshape(-1), z)

            linear = AdjointLinearization(jac_f, n, counts)

        def backward_solve(times: list[float], on_jump=None) -> torch.Tensor:
            """The augmented state at the last of ``times``, starting from ``s`` at the first."""
            d = 1.0 if times[-1] > times[0] else -1.0
            config = Config(
                adj_rtol, adj_atol, cfg.adj_opts, counts, norm, s.shape, d, times[-1], adj_callbacks, linear
            )
            return solve(aug, s, times, cfg.adj_method, config, None, on_jump)[-1]

        with torch.no_grad():
            try:
                if t_req:
                    time_vjp(len(ts) - 1)
                if cfg.adj_method.adaptive and not cfg.adj_method.self_stepping:
                    # One backward solve through every output time: the first step is chosen once and
                    # the controller's proposal carries across the jumps of the adjoint.
                    s_end = backward_solve(ts[::-1], jump)
                    jump(len(ts) - 1, s_end)  # dL/dz(t_0)
                else:  # a fixed grid (or a method that steps itself) restarts in every interval
                    for i in range(len(ts) - 1, 0, -1):
                        s_end = backward_solve([ts[i], ts[i - 1]])
                        jump(len(ts) - i, s_end)
            finally:
                _stats.report(
                    cfg.collectors,
                    counts.nfe,
                    counts.accepted,
                    counts.rejected,
                    True,
                    cfg.adj_method.name,
                    linear=counts.linear() if cfg.adj_method.implicit else None,
                )
        grad_y0 = s[n : 2 * n].view(shape)
        grads = []
        off = 2 * n
        for p, w in zip(params, want):
            if w:
                grads.append(s[off : off + p.numel()].view_as(p).clone())
                off += p.numel()
            else:
                grads.append(None)
        if t_req:
            time_vjps[0] = s[-1]
        return (None, grad_y0.clone(), time_vjps, *grads)


class _PerSampleHooks(Hooks):
    """The backward solve of the per-sample adjoint: jumps of the adjoint at every output time and the
    parameter gradients as a quadrature over each sample's own accepted steps.

    The augmented state of a sample is ``[z_b, a_b]``. The parameter channel ``-a df/dθ`` is shared by
    all samples, so it cannot ride along with per-sample steps; instead each step keeps the graphs of its
    stage evaluations, and after the accept/reject decision one vector-Jacobian product through all of
    them, with the cotangents ``-a_i b_i h_b`` of the accepted samples (zero for the others), adds
    exactly what the shared adjoint's parameter channel would for those steps.
    """

    def __init__(
        self, y: torch.Tensor, grad_y: torch.Tensor, pars: list[torch.Tensor], b: list[float]
    ) -> None:
        T, B = y.shape[:2]
        self.y = y.reshape(T, B, -1)
        self.g = grad_y.reshape(T, B, -1)
        self.T, self.B = T, B
        self.pars = pars
        self.b = b
        self.records: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.grads = [torch.zeros_like(p) for p in pars]
        self.rows = torch.arange(B, device=y.device)

    def start_step(self) -> None:
        self.records.clear()

    def quadrature(self, accept: torch.Tensor, h: torch.Tensor, b: torch.Tensor) -> None:
        if not self.pars:
            return
        w = (h * accept).to(self.y.dtype)
        outs, cots = [], []
        for (fz, a), bi in zip(self.records, self.b):
            if bi != 0.0:
                outs.append(fz)
                cots.append(a * (w * -bi).view(-1, *([1] * (a.ndim - 1))))
        with torch.enable_grad():
            gs = torch.autograd.grad(outs, self.pars, cots, allow_unused=True)
        for acc, g in zip(self.grads, gs):
            if g is not None:
                acc.add_(g)
        self.records.clear()

    def jump(self, Y: torch.Tensor, landed: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        i = (self.T - 1 - index).clamp(min=0)  # the backward solve's index j is output T - 1 - j
        S = Y.view(self.B, 2, -1)
        col = landed[:, None]
        z = torch.where(col, self.y[i, self.rows], S[:, 0])
        a = S[:, 1] + torch.where(col, self.g[i, self.rows], 0.0)
        return torch.stack([z, a], 1).reshape(-1)


class _PerSampleAdjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cfg: _Config, y0: torch.Tensor, t: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        counts = PerSampleCounts()
        try:
            with torch.no_grad():
                y = solve_per_sample(cfg.func, y0, t, cfg.method, cfg.rtol, cfg.atol, cfg.opts, counts)
        finally:
            _report_per_sample(cfg.collectors, counts, False, cfg.method.name)
        ctx.cfg = cfg
        ctx.save_for_backward(t, y, *params)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: torch.Tensor):
        cfg: _Config = ctx.cfg
        t, y, *params = ctx.saved_tensors
        T, B = y.shape[:2]
        shape = y.shape[1:]
        m = y[0, 0].numel()
        want = [p.requires_grad for p in params]
        pars = [p for p, w in zip(params, want) if w]
        tab = cfg.adj_method.tableau
        hooks = _PerSampleHooks(y, grad_y, pars, list(tab.b))
        func = cfg.func

        def aug(tt: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
            z, a = S[:, 0].reshape(shape), S[:, 1].reshape(shape)
            with torch.enable_grad():
                z_ = z.detach().requires_grad_(True)
                fz = as_state_dtype(func(tt.view(B, *([1] * (len(shape) - 1))), z_), z_)
                (vz,) = torch.autograd.grad(fz, z_, -a, retain_graph=bool(pars))
            hooks.records.append((fz, a))
            return torch.stack([fz.detach().reshape(B, m), vz.reshape(B, m)], 1)

        s0 = torch.stack([y[-1].reshape(B, m), grad_y[-1].reshape(B, m)], 1)
        t_back = t.detach().expand(B, T).flip(-1)
        counts = PerSampleCounts()
        try:
            with torch.no_grad():
                solve_per_sample(
                    aug,
                    s0,
                    t_back,
                    cfg.adj_method,
                    cfg.adj_rtol,
                    cfg.adj_atol,
                    cfg.adj_opts,
                    counts,
                    hooks,
                    blocks=2,
                )
        finally:
            _report_per_sample(cfg.collectors, counts, True, cfg.adj_method.name)
        grad_y0 = hooks.final[:, 1].reshape(shape)
        grads, k = [], 0
        for w in want:
            grads.append(hooks.grads[k] if w else None)
            k += int(w)
        return (None, grad_y0.clone(), None, *grads)


def _report_per_sample(collectors, counts: PerSampleCounts, backward: bool, name: str) -> None:
    _stats.report(
        collectors,
        counts.nfe,
        counts.accepted,
        counts.rejected,
        backward,
        name,
        counts.attempts,
        counts.per_sample(),
    )


def _aug_tol(tol: float | torch.Tensor, B: int) -> float | torch.Tensor:
    """A per-component tolerance over the state as one over each sample's ``[z_b, a_b]``."""
    if not isinstance(tol, torch.Tensor):
        return tol
    v = tol.view(B, -1)
    return torch.stack([v, v], 1).reshape(-1)


def _odeint_adjoint_per_sample(func, y0, t, method, rtol, atol, options, adjoint_method, adjoint_rtol,
                               adjoint_atol, adjoint_params, adjoint_norm, adjoint_options):  # fmt: skip
    m, opts, B = check_per_sample(func, y0, t, method, options)
    params = _find_params(func, adjoint_params)
    if adjoint_norm != "seminorm" or (adjoint_options or {}).get("norm", "seminorm") != "seminorm":
        raise ValueError(
            "odeint_adjoint with options['batch']='independent' needs adjoint_norm='seminorm': the "
            "parameter gradients are shared by the batch and cannot enter a per-sample error norm"
        )
    adj_options = dict(options if adjoint_options is None else adjoint_options)
    adj_options.pop("norm", None)
    adj_options["batch"] = "independent"
    adj_m, adj_opts, _ = check_per_sample(
        func, y0, t, method if adjoint_method is None else adjoint_method, adj_options
    )
    state = describe(y0)
    rtol_t = state.tolerance("rtol", rtol, y0.device)
    atol_t = state.tolerance("atol", atol, y0.device)
    check_tolerances(rtol_t, atol_t)
    adj_rtol = rtol_t if adjoint_rtol is None else state.tolerance("adjoint_rtol", adjoint_rtol, y0.device)
    adj_atol = atol_t if adjoint_atol is None else state.tolerance("adjoint_atol", adjoint_atol, y0.device)
    check_tolerances(adj_rtol, adj_atol)
    cfg = _Config(
        func=func,
        ts=[],
        method=m,
        rtol=rtol_t,
        atol=atol_t,
        opts=opts,
        adj_method=adj_m,
        adj_rtol=_aug_tol(adj_rtol, B),
        adj_atol=_aug_tol(adj_atol, B),
        adj_opts=adj_opts,
        adjoint_norm="seminorm",
        t_dtype=opts.t_dtype,
        collectors=_stats.active_stats(),
    )
    if B == 1:  # a batch of one is shared control, exactly
        shared = None if adjoint_options is None else _shared_options(adjoint_options)
        return odeint_adjoint(
            func, y0, t.reshape(-1), method, rtol, atol, _shared_options(options), adjoint_method,
            adjoint_rtol, adjoint_atol, adjoint_params, adjoint_norm, shared,
        )  # fmt: skip
    return _PerSampleAdjoint.apply(cfg, y0, t, *params)


#: Options of one family that forward options carry to a backward method of another only where it has them.
_METHOD_SPECIFIC = ("jacobian", "max_iters", "max_order", "stiffness_check")


def _find_params(func: Any, adjoint_params: Any) -> tuple[torch.Tensor, ...]:
    if adjoint_params is None:
        if not isinstance(func, torch.nn.Module):
            raise TypeError(
                "adjoint_params: func is not an nn.Module, so its parameters cannot be found; pass "
                "adjoint_params=(the tensors func uses that need gradients,), or () if there are none"
            )
        return tuple(p for p in func.parameters() if p.requires_grad)
    if isinstance(adjoint_params, torch.Tensor) or not isinstance(adjoint_params, Sequence):
        raise TypeError("adjoint_params must be a sequence (tuple or list) of tensors")
    for i, p in enumerate(adjoint_params):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"adjoint_params[{i}] is a {type(p).__name__}, not a torch.Tensor")
    # The same tensor twice would get its gradient twice.
    seen: dict[int, torch.Tensor] = {}
    for p in adjoint_params:
        seen.setdefault(id(p), p)
    return tuple(seen.values())


def _adjoint_tol(tol: float | torch.Tensor, n: int, rest: int, seminorm: bool) -> float | torch.Tensor:
    """A per-component tolerance over the backward state: the same for ``z`` and ``a``, its smallest
    value for the parameter (and time) channels the full norm looks at."""
    if not isinstance(tol, torch.Tensor):
        return tol
    parts = [tol, tol] if seminorm else [tol, tol, tol.min().expand(rest)]
    return torch.cat(parts)


def odeint_adjoint(
    func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y0: torch.Tensor | tuple[torch.Tensor, ...],
    t: torch.Tensor,
    method: str = "dopri5",
    rtol: float | torch.Tensor | tuple = 1e-7,
    atol: float | torch.Tensor | tuple = 1e-9,
    options: dict[str, Any] | None = None,
    adjoint_method: str | None = None,
    adjoint_rtol: float | torch.Tensor | tuple | None = None,
    adjoint_atol: float | torch.Tensor | tuple | None = None,
    adjoint_params: Sequence[torch.Tensor] | None = None,
    adjoint_norm: str = "seminorm",
    adjoint_options: dict[str, Any] | None = None,
    event_fn: Callable[[torch.Tensor, Any], torch.Tensor] | None = None,
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Solve like :func:`odeint`, but differentiate with the adjoint method in O(1) memory.

    Arguments:
        func, y0, t, method, rtol, atol, options, event_fn: as :func:`odeint` (tuple, complex and
            low-precision states included; with ``event_fn`` it returns ``(event_t, solution)``).
        adjoint_method, adjoint_rtol, adjoint_atol, adjoint_options: the backward solve's settings
            (default: the forward ones, less a forward ``norm``; fixed-grid options such as ``step_size``
            carry over). ``adjoint_options["norm"]`` may be ``"seminorm"`` or ``"full"`` (torchdiffeq's
            way of choosing; it overrides ``adjoint_norm``) or, as in torchdiffeq, a callable on the
            tuple ``(t, y, adj_y, *adj_params)`` of the backward state (``t`` the dL/dt channel; for a
            tuple state ``(t, *y, *adj_y, *adj_params)``) returning a scalar. The backward node keeps
            the norm in ``grad_fn.adjoint_options["norm"]`` (an :class:`AdjointNorm` unless given).
            ``func.callback_step_adjoint`` and friends are called around the backward solve's steps
            (see :mod:`~nodebench.solvers.callbacks`).
        adjoint_params: the tensors to differentiate (default: ``func.parameters()``; required when
            ``func`` is not an ``nn.Module`` — pass ``()`` when it uses none). Tensors ``func`` does not
            use get a zero gradient; tensors that do not require grad get none.
        adjoint_norm: ``"seminorm"`` leaves the parameter-gradient channels out of the backward error
            norm (Kidger, Chen & Lyons 2021); ``"full"`` includes them. Both take the maximum of the
            blocks' RMS norms, as torchdiffeq does.
    Returns:
        tensor of shape ``(len(t), *y0.shape)`` (a tuple of them for tuple states); gradients reach
        ``y0``, the parameters and ``t``.
    """
    if event_fn is not None:
        from nodebench.solvers.event import event_call

        kw = dict(method=method, rtol=rtol, atol=atol, options=options, adjoint_norm=adjoint_norm)
        extra = dict(adjoint_method=adjoint_method, adjoint_rtol=adjoint_rtol, adjoint_atol=adjoint_atol,
                     adjoint_params=adjoint_params, adjoint_options=adjoint_options)  # fmt: skip
        kw.update({k: v for k, v in extra.items() if v is not None})
        return event_call(odeint_adjoint, func, y0, t, event_fn, kw)
    if batch_mode(options) == "independent":
        return _odeint_adjoint_per_sample(
            func, y0, t, method, rtol, atol, options, adjoint_method, adjoint_rtol, adjoint_atol,
            adjoint_params, adjoint_norm, adjoint_options,
        )  # fmt: skip
    p = prepare(func, y0, t, method, rtol, atol, options)
    params = _find_params(func, adjoint_params)
    m = p.method
    user_norm = None
    if adjoint_options is None:
        same_kind = check_method(method if adjoint_method is None else adjoint_method).adaptive == m.adaptive
        adjoint_options = dict(options or {}) if same_kind else {}
        adjoint_options.pop("norm", None)  # a norm on the state does not apply to the backward state
        backward = check_method(method if adjoint_method is None else adjoint_method)
        for key in _METHOD_SPECIFIC:  # e.g. radau's forward, dopri5's backward: no Newton options
            if key not in backward.option_names:
                adjoint_options.pop(key, None)
    elif not isinstance(adjoint_options, dict):
        raise TypeError(f"adjoint_options must be a dict or None, got {type(adjoint_options).__name__}")
    else:
        adjoint_options = dict(adjoint_options)
        if "norm" in adjoint_options:
            choice = adjoint_options.pop("norm")
            if isinstance(choice, str):
                adjoint_norm = choice
            elif callable(choice):
                user_norm = choice
            else:
                raise TypeError(
                    "adjoint_options['norm'] must be 'seminorm', 'full' or a callable on the tuple "
                    f"(t, y, adj_y, *adj_params), got {type(choice).__name__}"
                )
    if adjoint_norm not in ("seminorm", "full"):
        raise ValueError(f"adjoint_norm must be 'seminorm' or 'full', got {adjoint_norm!r}")
    adj_method = check_method(method if adjoint_method is None else adjoint_method)
    adj_opts = check_options(adjoint_options, adj_method, t.dtype)
    state, first = p.state, (y0[0] if isinstance(y0, tuple) else y0)
    # the backward solve's grid_constructor gets the flat backward state [y, adj_y, params..., t] as y0
    adj_opts = bind_grid(adj_opts, func, lambda s: s, t.dtype, first.device)
    adj_rtol = p.rtol if adjoint_rtol is None else state.tolerance("adjoint_rtol", adjoint_rtol, first.device)
    adj_atol = p.atol if adjoint_atol is None else state.tolerance("adjoint_atol", adjoint_atol, first.device)
    check_tolerances(adj_rtol, adj_atol)
    check_low_precision(state, adj_rtol, adj_method.adaptive)
    seminorm = adjoint_norm == "seminorm"
    rest = sum(q.numel() for q in params if q.requires_grad) + (1 if t.requires_grad else 0)
    if user_norm is not None and any(not q.requires_grad for q in params):
        warnings.warn(
            "adjoint_params: a tensor that does not require grad is left out of the backward solve, "
            "so it does not appear in the tuple the adjoint norm receives",
            stacklevel=2,
        )
    default_norm = AdjointNorm(adjoint_norm, state.sizes if state.is_tuple else [state.n])
    if user_norm is None:
        chosen_norm = default_norm
    else:
        chosen_norm = _unpacking_norm(user_norm, state) if state.is_tuple else user_norm
    cfg = _Config(
        func=p.func,
        ts=p.ts,
        method=m,
        rtol=p.rtol,
        atol=p.atol,
        opts=p.opts,
        adj_method=adj_method,
        adj_rtol=_adjoint_tol(adj_rtol, state.n, rest, seminorm),
        adj_atol=_adjoint_tol(adj_atol, state.n, rest, seminorm),
        adj_opts=adj_opts,
        adjoint_norm=adjoint_norm,
        t_dtype=p.opts.t_dtype,
        collectors=_stats.active_stats(),
        norm=p.norm,
        state=state,
        callbacks=p.callbacks,
        adj_callbacks=callbacks.select(func, adj_method, adjoint=True),
        adjoint_options={**adjoint_options, "norm": chosen_norm},
        default_norm=default_norm,
        raw_adj_rtol=adj_rtol,
        raw_adj_atol=adj_atol,
    )
    out = _Adjoint.apply(cfg, p.y0, t, *params)
    return out if state.plain else state.restore(out, (len(p.ts),))
