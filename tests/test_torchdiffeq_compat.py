"""torchdiffeq code runs unchanged: each test names the torchdiffeq 0.2.5 call it mirrors.

"Same result" means within the tolerance of the solve (adaptive) or round-off (fixed grid, same grid
and tableau); "same gradients" means odeint_adjoint's gradients agree with torchdiffeq's.
"""

from __future__ import annotations

import pytest
import torch
import torchdiffeq

from nodebench import odeint, odeint_adjoint, odeint_event, solver_stats
from nodebench.solvers import ALL_SOLVERS
from tests.problems import Counted, rel_error, spiral_demo

# ---- methods ------------------------------------------------------------------------------------

NEW_FIXED = ["heun2", "heun3"]
NEW_ADAPTIVE = ["adaptive_heun", "fehlberg2", "dopri8"]
# torchdiffeq reuses these methods' last stage (taken at the embedded solution, not at y1) as the next
# step's first; nodebench evaluates f(t1, y1): one more evaluation per step (README, Differences).
EXTRA_EVAL = {"adaptive_heun", "fehlberg2"}
RTOL = {"adaptive_heun": 1e-4, "fehlberg2": 1e-5, "dopri8": 1e-7}  # second order: a few hundred steps


@pytest.mark.parametrize("method", NEW_FIXED)
def test_fixed_grid_method_matches(method):
    """Mirrors torchdiffeq.odeint(f, y0, t, method=method, options=dict(step_size=0.05))."""
    func = spiral_demo()
    y0 = torch.tensor([[2.0, 0.0], [0.5, -0.3]])
    t = torch.linspace(0.0, 1.0, 5)
    theirs_f, ours_f = Counted(func), Counted(func)
    with torch.no_grad():
        theirs = torchdiffeq.odeint(theirs_f, y0, t, method=method, options=dict(step_size=0.05))
        ours = odeint(ours_f, y0, t, method=method, options=dict(step_size=0.05))
    assert rel_error(ours, theirs) < 1e-13  # the same grid and tableau: round-off
    assert ours_f.n == theirs_f.n


@pytest.mark.parametrize("method", NEW_ADAPTIVE)
def test_adaptive_method_matches(method):
    """Mirrors torchdiffeq.odeint(f, y0, t, rtol=rtol, atol=atol, method=method)."""
    func = spiral_demo()
    y0 = torch.tensor([[2.0, 0.0], [0.5, -0.3]])
    t = torch.linspace(0.0, 2.0, 5)
    rtol, atol = RTOL[method], RTOL[method] * 1e-2
    theirs_f = Counted(func)
    with torch.no_grad():
        theirs = torchdiffeq.odeint(theirs_f, y0, t, rtol=rtol, atol=atol, method=method)
        truth = odeint(func, y0, t, rtol=1e-12, atol=1e-14)
        with solver_stats() as s:
            ours = odeint(func, y0, t, rtol=rtol, atol=atol, method=method)
    assert rel_error(ours, truth) <= 2 * rel_error(theirs, truth) + 10 * rtol
    assert rel_error(ours, theirs) < 1000 * rtol
    if method in EXTRA_EVAL:  # one more evaluation a step; adaptive_heun also takes ~2x the steps
        assert s.nfe_forward <= 3 * theirs_f.n
    else:
        assert abs(s.nfe_forward - theirs_f.n) <= 0.2 * theirs_f.n


@pytest.mark.parametrize("method", NEW_ADAPTIVE + NEW_FIXED)
def test_adjoint_gradients_match(method):
    """Mirrors torchdiffeq.odeint_adjoint(f, y0, t, method=method, ...).sum().backward()."""
    fixed = not ALL_SOLVERS[method].adaptive
    kw = dict(options=dict(step_size=0.05)) if fixed else dict(rtol=RTOL[method], atol=RTOL[method] * 1e-2)
    grads = []
    for lib in (torchdiffeq, None):
        func = spiral_demo()
        y0 = torch.tensor([[1.5, 0.0], [0.5, -0.3]], requires_grad=True)
        t = torch.linspace(0.0, 0.5, 3)
        solve = torchdiffeq.odeint_adjoint if lib else odeint_adjoint
        solve(func, y0, t, method=method, **kw).pow(2).sum().backward()
        grads.append(torch.cat([y0.grad.reshape(-1), func.A.grad.reshape(-1)]))
    assert rel_error(grads[1], grads[0]) < (1e-10 if fixed else 300 * RTOL[method])


# ---- states: tuples and complex -----------------------------------------------------------------


class TupleDyn(torch.nn.Module):
    """A CNF-like tuple state (z, logp): dz = z @ A, dlogp = -trace(A) per sample."""

    def __init__(self) -> None:
        super().__init__()
        self.A = torch.nn.Parameter(torch.tensor([[-0.3, 1.0], [-1.0, -0.2]]))

    def forward(self, t, state):
        z, logp = state
        return torch.tanh(z @ self.A) * (1 + 0.1 * t), -torch.trace(self.A).expand_as(logp) * z.pow(2).sum(-1)


def _tuple_case():
    z = torch.tensor([[1.0, 0.5], [-0.3, 0.8], [0.2, -0.1]], requires_grad=True)
    logp = torch.zeros(3, requires_grad=True)
    return TupleDyn(), (z, logp), torch.linspace(0.0, 1.0, 5)  # on rk4's grid: no interpolation


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_tuple_state(method):
    """Mirrors torchdiffeq.odeint(f, (z, logp), t, method=method)."""
    kw = dict(options=dict(step_size=0.05)) if method == "rk4" else {}
    func, y0, t = _tuple_case()
    with torch.no_grad():
        theirs = torchdiffeq.odeint(func, y0, t, method=method, **kw)
        ours = odeint(func, y0, t, method=method, **kw)
    assert isinstance(ours, tuple) and len(ours) == 2
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert rel_error(a, b) < (1e-12 if method == "rk4" else 1e-5)


def test_tuple_state_adjoint_gradients():
    """Mirrors torchdiffeq.odeint_adjoint(f, (z, logp), t, adjoint_params=...) then backward."""
    grads = []
    for solve in (torchdiffeq.odeint_adjoint, odeint_adjoint):
        func, (z, logp), t = _tuple_case()
        zs, lps = solve(func, (z, logp), t, rtol=1e-8, atol=1e-10, adjoint_params=tuple(func.parameters()))
        (zs[-1].pow(2).sum() + lps[-1].sum() + zs[1].sum()).backward()
        grads.append(torch.cat([z.grad.reshape(-1), logp.grad, func.A.grad.reshape(-1)]))
    assert rel_error(grads[1], grads[0]) < 1e-5


def test_tuple_state_direct_backprop_matches_adjoint():
    """odeint (backprop through the solver) and odeint_adjoint give one gradient for tuple states."""
    grads = []
    for solve in (odeint, odeint_adjoint):
        func, (z, logp), t = _tuple_case()
        zs, lps = solve(func, (z, logp), t, rtol=1e-9, atol=1e-11)
        (zs[-1].pow(2).sum() + lps[-1].sum()).backward()
        grads.append(torch.cat([z.grad.reshape(-1), logp.grad, func.A.grad.reshape(-1)]))
    assert rel_error(grads[1], grads[0]) < 1e-6


def test_complex_state():
    """Mirrors torchdiffeq.odeint(f, y0_complex, t): y' = i w y has the solution y0 exp(i w t)."""
    w = torch.tensor([1.0, 2.5])
    y0 = torch.tensor([1.0 + 0.5j, -0.3 + 1.0j], dtype=torch.complex128)
    t = torch.linspace(0.0, 2.0, 5)

    def f(t, y):
        return 1j * w * y

    with torch.no_grad():
        ours = odeint(f, y0, t, rtol=1e-9, atol=1e-11)
        theirs = torchdiffeq.odeint(f, y0, t, rtol=1e-9, atol=1e-11)
    exact = y0 * torch.exp(1j * w * t[:, None])
    assert ours.dtype == torch.complex128 and ours.shape == (5, 2)
    assert rel_error(ours, exact) < 1e-7 and rel_error(ours, theirs) < 1e-7


def test_complex_state_adjoint_gradients():
    """Mirrors torchdiffeq.odeint(f, y0_complex, t) backpropagated: torchdiffeq 0.2.5's odeint_adjoint
    raises on complex states, ours gives the gradients of torchdiffeq's direct backpropagation."""
    grads = []
    for solve in (torchdiffeq.odeint, odeint_adjoint, odeint):
        w = torch.tensor([1.0, 2.5], requires_grad=True)
        y0 = torch.tensor([1.0 + 0.5j, -0.3 + 1.0j], dtype=torch.complex128, requires_grad=True)
        kw = dict(adjoint_params=(w,)) if solve is odeint_adjoint else {}
        ys = solve(
            lambda t, y, w=w: 1j * w * y - 0.1 * y * w,
            y0,
            torch.linspace(0.0, 1.0, 3),
            rtol=1e-9,
            atol=1e-11,
            **kw,
        )
        (ys[-1].abs().pow(2).sum() + ys[1].real.sum()).backward()
        grads.append(torch.cat([torch.view_as_real(y0.grad).reshape(-1), w.grad]))
    assert rel_error(grads[1], grads[0]) < 1e-6 and rel_error(grads[2], grads[0]) < 1e-6


# ---- tolerances ----------------------------------------------------------------------------------


def test_per_component_tensor_tolerances():
    """Mirrors torchdiffeq.odeint(f, y0, t, rtol=tensor, atol=tensor): one tolerance per entry."""
    func = spiral_demo()
    y0 = torch.tensor([[2.0, 0.0], [0.5, -0.3]])
    t = torch.linspace(0.0, 2.0, 5)
    rtol = torch.tensor([[1e-8, 1e-4], [1e-8, 1e-4]])
    atol = torch.tensor([1e-10, 1e-6])  # broadcasts over the rows
    with torch.no_grad():
        ours = odeint(func, y0, t, rtol=rtol, atol=atol)
        theirs = torchdiffeq.odeint(func, y0, t, rtol=rtol, atol=atol)
        truth = odeint(func, y0, t, rtol=1e-12, atol=1e-14)
        loose = odeint(func, y0, t, rtol=1e-4, atol=1e-6)
    assert rel_error(ours, truth) <= 2 * rel_error(theirs, truth) + 1e-7
    assert rel_error(ours, truth) < rel_error(loose, truth)  # the tight entries are honoured


def test_tuple_tolerances():
    """Mirrors torchdiffeq.odeint(f, (z, logp), t, rtol=(1e-8, 1e-4), atol=(1e-10, 1e-6))."""
    func, y0, t = _tuple_case()
    with torch.no_grad():
        ours = odeint(func, y0, t, rtol=(1e-8, 1e-4), atol=(1e-10, 1e-6))
        theirs = torchdiffeq.odeint(func, y0, t, rtol=(1e-8, 1e-4), atol=(1e-10, 1e-6))
    for a, b in zip(ours, theirs):
        assert rel_error(a, b) < 1e-3


def test_rtol_zero_is_pure_absolute_control():
    """Mirrors torchdiffeq.odeint(f, y0, t, rtol=0, atol=1e-8)."""
    func = spiral_demo()
    y0 = torch.tensor([[2.0, 0.0], [0.5, -0.3]])
    t = torch.linspace(0.0, 2.0, 5)
    with torch.no_grad():
        ours = odeint(func, y0, t, rtol=0, atol=1e-8)
        theirs = torchdiffeq.odeint(func, y0, t, rtol=0, atol=1e-8)
        truth = odeint(func, y0, t, rtol=1e-12, atol=1e-14)
    assert (ours - truth).abs().max() < 1e-6
    assert rel_error(ours, theirs) < 1e-6


# ---- options -------------------------------------------------------------------------------------


def test_adjoint_options_seminorm():
    """Mirrors torchdiffeq.odeint_adjoint(..., adjoint_options=dict(norm="seminorm"))."""
    results = []
    for adjoint_options in (dict(norm="seminorm"), dict(norm="full")):
        func = spiral_demo()
        y0 = torch.tensor([[1.5, 0.0]], requires_grad=True)
        with solver_stats() as s:
            odeint_adjoint(
                func, y0, torch.linspace(0.0, 1.0, 3), adjoint_norm="full", adjoint_options=adjoint_options
            ).sum().backward()
        results.append((s.nfe_backward, func.A.grad.clone()))
    (n_semi, g_semi), (n_full, g_full) = results
    assert n_semi < n_full  # the seminorm skips the parameter channels: fewer backward steps
    assert rel_error(g_semi, g_full) < 1e-5


def test_jump_t_at_a_discontinuity():
    """Mirrors torchdiffeq.odeint(f, y0, t, options=dict(jump_t=...)): a forcing that switches at t = 1."""

    def f(t, y):
        return torch.where(t < 1.0, torch.ones_like(y), -2.0 * torch.ones_like(y))

    y0 = torch.zeros(1)
    t = torch.tensor([0.0, 2.0])
    with solver_stats() as s_jump:
        jumped = odeint(f, y0, t, options=dict(jump_t=torch.tensor([1.0])))
    with solver_stats() as s_free:
        free = odeint(f, y0, t)
    theirs = torchdiffeq.odeint(f, y0, t, options=dict(jump_t=torch.tensor([1.0])))
    assert abs(jumped[-1].item() - (-1.0)) < 1e-12  # exact: 1 - 2
    assert abs(theirs[-1].item() - (-1.0)) < 1e-12
    assert s_jump.steps_rejected < s_free.steps_rejected
    assert abs(free[-1].item() + 1.0) > 1e3 * abs(jumped[-1].item() + 1.0)


def test_step_t_forces_step_ends():
    """Mirrors torchdiffeq.odeint(f, y0, t, options=dict(step_t=...))."""
    seen = []

    def f(t, y):
        seen.append(float(t))
        return -y

    odeint(
        f, torch.ones(1), torch.tensor([0.0, 3.0]), rtol=1e-3, atol=1e-3, options=dict(step_t=[0.77, 1.91])
    )
    # A step ended on each: its last stages were evaluated there (one representable time before it).
    for stop in (0.77, 1.91):
        assert any(abs(x - stop) <= 1e-15 for x in seen), stop


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_perturb_on_a_fixed_grid(method):
    """Mirrors torchdiffeq.odeint(f, y0, t, method=method, options=dict(step_size=0.5, perturb=True))."""

    def f(t, y):  # a jump at every grid point: the side the solver looks from matters
        return torch.where(torch.frac(t * 2) == 0, torch.zeros_like(y), torch.ones_like(y))

    y0, t = torch.zeros(1), torch.tensor([0.0, 2.0])
    opts = dict(step_size=0.5, perturb=True)
    ours = odeint(f, y0, t, method=method, options=opts)
    theirs = torchdiffeq.odeint(f, y0, t, method=method, options=opts)
    plain = odeint(f, y0, t, method=method, options=dict(step_size=0.5))
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-12)
    assert abs(ours[-1].item() - 2.0) < 1e-12 and plain[-1].item() < 2.0


def test_norm_option():
    """Mirrors torchdiffeq.odeint(f, y0, t, options=dict(norm=max-norm)): the caller's error norm."""
    func = spiral_demo()
    y0 = torch.tensor([[2.0, 0.0], [0.5, -0.3]])
    t = torch.linspace(0.0, 2.0, 5)

    def linf(x):
        return x.abs().max()

    with torch.no_grad(), solver_stats() as s_inf:
        ours = odeint(func, y0, t, rtol=1e-6, atol=1e-8, options=dict(norm=linf))
    with torch.no_grad(), solver_stats() as s_rms:
        odeint(func, y0, t, rtol=1e-6, atol=1e-8)
    theirs = torchdiffeq.odeint(func, y0, t, rtol=1e-6, atol=1e-8, options=dict(norm=linf))
    assert s_inf.nfe_forward >= s_rms.nfe_forward  # the max norm is never smaller than RMS
    assert rel_error(ours, theirs) < 1e-4


# ---- odeint_event --------------------------------------------------------------------------------


class Ball(torch.nn.Module):
    """A ball thrown up from height x0 with speed v0 under gravity g (a parameter)."""

    def __init__(self) -> None:
        super().__init__()
        self.g = torch.nn.Parameter(torch.tensor(9.81))

    def forward(self, t, s):
        return torch.stack([s[..., 1], -self.g * torch.ones_like(s[..., 0])], -1)


def _height(t, s):
    return s[..., 0]


@pytest.mark.parametrize("interface", ["odeint", "odeint_adjoint"])
def test_event_time_and_gradients(interface):
    """Mirrors torchdiffeq.odeint_event(f, y0, t0, event_fn=..., odeint_interface=...) then backward."""
    ours_solve = {"odeint": odeint, "odeint_adjoint": odeint_adjoint}[interface]
    theirs_solve = {"odeint": torchdiffeq.odeint, "odeint_adjoint": torchdiffeq.odeint_adjoint}[interface]
    out = []
    for event, solve in ((torchdiffeq.odeint_event, theirs_solve), (odeint_event, ours_solve)):
        f = Ball()
        y0 = torch.tensor([10.0, 2.0], requires_grad=True)
        t0 = torch.tensor(0.0, requires_grad=True)
        te, sol = event(f, y0, t0, event_fn=_height, odeint_interface=solve, rtol=1e-10, atol=1e-12)
        (te + sol[-1][1]).backward()
        out.append((te.detach(), sol.detach(), torch.stack([*y0.grad, t0.grad, f.g.grad])))
    (te_t, sol_t, g_t), (te_o, sol_o, g_o) = out
    g, v, x = 9.81, 2.0, 10.0
    exact_t = (v + (v * v + 2 * g * x) ** 0.5) / g
    assert abs(te_o.item() - exact_t) < 1e-9 and abs(te_t.item() - exact_t) < 1e-9
    assert sol_o.shape == sol_t.shape == (2, 2) and abs(sol_o[-1, 0].item()) < 1e-9
    # d(t* + v(t*))/d(x0, v0, t0, g), analytic: v(t*) = v0 - g (t* - t0),
    # t* - t0 = (v0 + sqrt(v0^2 + 2 g x0)) / g
    # (autonomous: shifting t0 shifts t* alone)
    root = (v * v + 2 * g * x) ** 0.5
    dt_dx, dt_dv = 1 / root, (1 + v / root) / g
    dt_dg = -(v + root) / g**2 + x / (g * root)
    exact = torch.tensor([dt_dx - g * dt_dx, dt_dv + 1 - g * dt_dv, 1.0, dt_dg - exact_t - g * dt_dg])
    assert rel_error(g_o, exact) < 1e-7 and rel_error(g_o, g_t) < 1e-7


def test_event_reverse_time():
    """Mirrors torchdiffeq.odeint_event(f, y0, t0, event_fn=..., reverse_time=True)."""
    out = []
    for event in (torchdiffeq.odeint_event, odeint_event):
        f = Ball()
        y0 = torch.tensor([10.0, 2.0], requires_grad=True)
        te, sol = event(f, y0, torch.tensor(0.0), event_fn=_height, reverse_time=True, rtol=1e-10, atol=1e-12)
        te.backward()
        out.append((te.item(), y0.grad.clone()))
    (te_t, g_t), (te_o, g_o) = out
    g, v, x = 9.81, 2.0, 10.0
    exact_t = (v - (v * v + 2 * g * x) ** 0.5) / g  # the earlier root: before t0
    assert te_o < 0 and abs(te_o - exact_t) < 1e-9 and abs(te_t - exact_t) < 1e-9
    assert rel_error(g_o, g_t) < 1e-7


def test_event_tuple_state_and_fixed_grid():
    """Mirrors torchdiffeq.odeint_event(f, (x, v), t0, event_fn=..., method="rk4", options=...)."""

    def f(t, s):
        return s[1], -9.81 * torch.ones_like(s[0])

    def ev(t, s):
        return s[0]

    y0 = (torch.tensor([10.0]), torch.tensor([2.0]))
    kw = dict(method="rk4", options=dict(step_size=0.01))
    te_o, (x_o, v_o) = odeint_event(f, y0, torch.tensor(0.0), event_fn=ev, **kw)
    te_t, (x_t, v_t) = torchdiffeq.odeint_event(f, y0, torch.tensor(0.0), event_fn=ev, **kw)
    exact_t = (2.0 + (4.0 + 2 * 9.81 * 10.0) ** 0.5) / 9.81
    assert x_o.shape == (2, 1) and abs(te_o.item() - exact_t) < 1e-9
    assert abs(te_t.item() - exact_t) < 1e-3  # torchdiffeq interpolates linearly and bisects to atol
    with pytest.raises(ValueError, match="step_size"):
        odeint_event(f, y0, torch.tensor(0.0), event_fn=ev, method="rk4")


def test_event_never_reached_is_a_solver_error():
    from nodebench import SolverError

    with pytest.raises(SolverError, match="max_num_steps"):
        odeint_event(
            lambda t, y: -y,
            torch.ones(1),
            torch.tensor(0.0),
            event_fn=lambda t, y: y + 1.0,
            options=dict(max_num_steps=50),
        )


def test_max_step_bounds_every_step():
    """Mirrors torchdiffeq.odeint(f, y0, t, options=dict(max_step=0.1))."""
    with solver_stats() as s:
        odeint(lambda t, y: -y, torch.ones(1), torch.tensor([0.0, 2.0]), options=dict(max_step=0.1))
    assert s.steps_accepted >= 20


# ---- fixed-grid Adams --------------------------------------------------------------------------


def test_adams_coefficients_equal_torchdiffeqs_tables():
    """Our exactly computed weights against torchdiffeq 0.2.5's _impl/fixed_adams.py tables."""
    from torchdiffeq._impl.fixed_adams import _BASHFORTH_DIVISOR, _MOULTON_DIVISOR

    from nodebench.solvers.fixed_adams import bashforth, moulton

    for k in range(1, 13):
        assert max(abs(a - b) for a, b in zip(bashforth(k), _BASHFORTH_DIVISOR[k].tolist())) < 1e-15
    for k in range(2, 13):  # torchdiffeq's k = 1 Moulton row (1/11) is never used
        assert max(abs(a - b) for a, b in zip(moulton(k), _MOULTON_DIVISOR[k].tolist())) < 1e-15


@pytest.mark.parametrize("method", ["explicit_adams", "implicit_adams", "fixed_adams"])
def test_fixed_grid_adams(method):
    """Mirrors torchdiffeq.odeint(f, y0, t, method=method, options=dict(step_size=0.05, ...)) and its
    odeint_adjoint gradients (torchdiffeq's fixed-grid Adams; outputs on grid points)."""
    from tests.problems import PROBLEMS

    p = PROBLEMS["linear"]()
    t = torch.linspace(0.0, 2.0, 5)
    # Bashforth of order 11 (the default max_order 12) is unstable on this problem, in torchdiffeq too.
    opts = dict(step_size=0.05, max_order=5) if method == "explicit_adams" else dict(step_size=0.05)
    counts = []
    results = []
    for lib in ("torchdiffeq", "nodebench"):
        A = torch.tensor([[-0.1, -1.0, 0.3], [1.0, -0.1, 0.0], [0.2, 0.5, -0.4]], requires_grad=True)
        y0 = p.y0.clone().requires_grad_(True)
        f = Counted(lambda t, y, A=A: y @ A.T)
        if lib == "torchdiffeq":
            y = torchdiffeq.odeint(f, y0, t, method=method, options=opts)
            ya = torchdiffeq.odeint_adjoint(f, y0, t, method=method, options=opts, adjoint_params=(A,))
        else:
            y = odeint(f, y0, t, method=method, options=opts)
            ya = odeint_adjoint(f, y0, t, method=method, options=opts, adjoint_params=(A,))
        counts.append(f.n)
        ga = torch.autograd.grad(ya.pow(2).sum(), (y0, A))
        gd = torch.autograd.grad(y.pow(2).sum(), (y0, A))
        results.append(
            (y.detach(), torch.cat([g.reshape(-1) for g in ga]), torch.cat([g.reshape(-1) for g in gd]))
        )
    (y_t, ga_t, gd_t), (y_o, ga_o, gd_o) = results
    assert rel_error(y_o, y_t) < 1e-12  # the same grid and method: round-off
    assert rel_error(y_o, p.exact(t)) < (1e-5 if method == "explicit_adams" else 1e-6)
    assert rel_error(ga_o, ga_t) < 1e-9 and rel_error(gd_o, gd_t) < 1e-12
    assert counts[1] <= counts[0]


# ---- scipy_solver --------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["LSODA", "RK45"])
def test_scipy_solver(solver):
    """Mirrors torchdiffeq.odeint(f, y0, t, method="scipy_solver", options=dict(solver=solver)):
    the same solve_ivp call, so the same numbers; no autograd graph, as torchdiffeq."""
    func = spiral_demo()
    y0 = torch.tensor([[1.0, 0.0], [0.5, -0.3]], requires_grad=True)
    t = torch.linspace(0.0, 1.0, 5)
    ours = odeint(func, y0, t, method="scipy_solver", options=dict(solver=solver))
    theirs = torchdiffeq.odeint(func, y0, t, method="scipy_solver", options=dict(solver=solver))
    assert torch.equal(ours, theirs) and not ours.requires_grad
    back = odeint(func, ours[-1].detach(), t.flip(0), method="scipy_solver", rtol=1e-10, atol=1e-12)
    # decreasing times integrate backwards (as torchdiffeq's, which negates time)
    assert rel_error(back[-1], y0.detach()) < 1e-6


def test_scipy_solver_adjoint_gradients():
    """Mirrors torchdiffeq.odeint_adjoint(f, y0, t, method="scipy_solver") then backward."""
    grads = []
    for solve in (torchdiffeq.odeint_adjoint, odeint_adjoint):
        func = spiral_demo()
        y0 = torch.tensor([[1.0, 0.0], [0.5, -0.3]], requires_grad=True)
        solve(
            func, y0, torch.linspace(0.0, 1.0, 3), method="scipy_solver", rtol=1e-9, atol=1e-11
        ).sum().backward()
        grads.append(torch.cat([y0.grad.reshape(-1), func.A.grad.reshape(-1)]))
    assert rel_error(grads[1], grads[0]) < 1e-8
