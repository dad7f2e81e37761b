"""torchdiffeq's newer call surface, behaviour by behaviour: each test names the test of torchdiffeq's own
suite (its repository's ``tests/``) that it mirrors, and where torchdiffeq 0.2.5 (installed) has the
behaviour the result is compared with it.

Step callbacks, fixed-grid ``perturb`` / ``grid_constructor`` / ``interp``, a ``func`` returning another
floating dtype, the shapes a user norm receives, the backward norm on ``grad_fn.adjoint_options``,
``odeint(..., event_fn=...)``, events and output grids in decreasing time, ``min_step``/``max_step``.
"""

from __future__ import annotations

import math
import warnings
from functools import partial

import pytest
import torch
import torchdiffeq

from nodebench import SolverError, odeint, odeint_adjoint, solver_stats
from nodebench.solvers import FIXED_SOLVERS, METHODS
from nodebench.solvers.adjoint import AdjointNorm
from nodebench.solvers.implicit_rk import FIXED_IMPLICIT_METHODS

FIXED = (*FIXED_SOLVERS, "explicit_adams", "implicit_adams")  # the explicit fixed-grid methods
FIXED_IMPLICIT = tuple(FIXED_IMPLICIT_METHODS)  # torchdiffeq HEAD's nine


class _NeuralF(torch.nn.Module):
    """torchdiffeq's tests' ``_NeuralF``: a small tanh network, optionally oscillating in t."""

    def __init__(self, width: int = 10, oscillate: bool = False, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w1 = torch.nn.Parameter(torch.randn(width, 2, generator=g, dtype=dtype) * 0.5)
        self.w2 = torch.nn.Parameter(torch.randn(2, width, generator=g, dtype=dtype) * 0.5)
        self.oscillate = oscillate
        self.nfe = 0

    def forward(self, t, x):
        self.nfe += 1
        out = torch.tanh(torch.tanh(x @ self.w1.T) @ self.w2.T)
        return out * t.mul(20).sin() if self.oscillate else out


def _recorder(func, names, log, tag=""):
    for name in names:

        def cb(t0, y0, dt, name=name):
            log.append((tag + name.removeprefix("callback_").removesuffix("_adjoint"), t0, y0, dt))

        setattr(func, name, cb)


def _as_rows(log):
    """Callback calls as comparable rows: (kind, t0, dt) floats and y0 as a flat float64 tensor."""
    rows = []
    for kind, t0, y0, dt in log:
        ys = y0 if isinstance(y0, tuple) else (y0,)
        flat = torch.cat([y.detach().reshape(-1).double() for y in ys])
        rows.append((kind, float(t0), float(dt), flat))
    return rows


def _sine_problem():
    """y' = 2 y / t + t^4 sin 2t - t^2 + 4 t^3 (torchdiffeq's tests' SineODE) and its exact solution."""

    def f(t, y):
        return 2 * y / t + t**4 * torch.sin(2 * t) - t**2 + 4 * t**3

    def exact(t):
        c, s = torch.cos(2 * t), torch.sin(2 * t)
        return -0.5 * t**4 * c + 0.5 * t**3 * s + 0.25 * t**2 * c - t**3 + 2 * t**4 + (math.pi - 0.25) * t**2

    return f, exact


STEP_NAMES = ("callback_step", "callback_accept_step", "callback_reject_step")


# ---- step callbacks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["euler", "rk4", "implicit_adams"])
@pytest.mark.parametrize("reverse", [False, True])
def test_fixed_grid_callbacks_match_torchdiffeq(method, reverse):
    """Mirrors tests/odeint_tests.py::TestCallbacks::test_steps (fixed grid): ``callback_step(t0, y0, dt)``
    before every grid step, with torchdiffeq 0.2.5's arguments (decreasing time included: ``t0`` the
    real time, ``dt`` the step's positive size)."""
    x0 = torch.tensor([1.0, 2.0])
    t = torch.tensor([1.0, 0.0]) if reverse else torch.tensor([0.0, 1.0])
    logs = []
    for solve in (odeint, torchdiffeq.odeint):
        f, log = _NeuralF(), []
        _recorder(f, ("callback_step",), log)
        with torch.no_grad():
            solve(f, x0, t, method=method, options=dict(step_size=0.1))
        logs.append(_as_rows(log))
    ours, theirs = logs
    assert len(ours) == len(theirs) == 10
    for a, b in zip(ours, theirs):
        assert a[0] == b[0] == "step"
        assert a[1] == pytest.approx(b[1], abs=1e-12) and a[2] == pytest.approx(b[2], abs=1e-12)
        assert torch.allclose(a[3], b[3], rtol=1e-12, atol=1e-12)
    assert all(row[2] > 0 for row in ours)


@pytest.mark.parametrize("method", ["dopri5", "bosh3", "tsit5", "adams"])
def test_adaptive_callbacks_order(method):
    """Mirrors tests/odeint_tests.py::TestCallbacks::test_steps (adaptive): every attempted step calls
    ``callback_step(t0, y0, dt)``, then exactly one of ``callback_accept_step`` /
    ``callback_reject_step`` with the same ``t0`` and ``y0``; accepted steps tile the interval."""
    f, log = _NeuralF(oscillate=True), []
    _recorder(f, STEP_NAMES, log)
    x0, t = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    with torch.no_grad(), solver_stats() as s:
        odeint(f, x0, t, method=method, rtol=1e-6, atol=1e-8)
    rows = _as_rows(log)
    assert len(rows) % 2 == 0 and len(rows) // 2 == s.steps_accepted + s.steps_rejected
    t_now = 0.0
    for (k1, t1, dt1, y1), (k2, t2, dt2, y2) in zip(rows[::2], rows[1::2]):
        assert k1 == "step" and k2 in ("accept_step", "reject_step")
        assert t1 == t2 and torch.equal(y1, y2) and dt2 <= dt1 * (1 + 1e-12)
        assert t1 == pytest.approx(t_now, abs=1e-12)
        if k2 == "accept_step":
            t_now = t1 + dt2
    assert t_now >= 1.0 - 1e-12
    assert sum(r[0] == "reject_step" for r in rows) == s.steps_rejected > 0  # the oscillation rejects


def test_adaptive_callbacks_match_torchdiffeq():
    """Mirrors tests/odeint_tests.py::TestCallbacks::test_steps: dopri5's callbacks, call by call, as
    torchdiffeq 0.2.5's (the same initial step and controller: the same steps within round-off)."""
    logs = []
    for solve in (odeint, torchdiffeq.odeint):
        f, log = _NeuralF(), []
        _recorder(f, STEP_NAMES, log)
        with torch.no_grad():
            solve(f, torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0]), rtol=1e-5, atol=1e-7)
        logs.append(_as_rows(log))
    ours, theirs = logs
    assert [r[0] for r in ours] == [r[0] for r in theirs]
    for a, b in zip(ours, theirs):
        assert a[1] == pytest.approx(b[1], rel=1e-9, abs=1e-12) and a[2] == pytest.approx(b[2], rel=1e-9)
        assert torch.allclose(a[3], b[3], rtol=1e-9, atol=1e-12)


def test_callbacks_on_tuple_states_and_decreasing_time():
    """Mirrors torchdiffeq's callback wrapping in ``_check_inputs`` (tests/odeint_tests.py::TestCallbacks):
    a tuple state reaches the callbacks as a tuple, decreasing time as the real ``t0``."""
    seen = []

    class TupleF(torch.nn.Module):
        def forward(self, t, y):
            return (-y[0], y[0].sum() * y[1])

        def callback_step(self, t0, y0, dt):
            seen.append((float(t0), tuple(y.shape for y in y0), float(dt)))

    y0 = (torch.tensor([1.0, 0.5]), torch.tensor(2.0))
    odeint(TupleF(), y0, torch.tensor([2.0, 1.0]), method="rk4", options=dict(step_size=0.25))
    assert [s[0] for s in seen] == pytest.approx([2.0, 1.75, 1.5, 1.25])
    assert all(s[1] == (torch.Size([2]), torch.Size([])) and s[2] == pytest.approx(0.25) for s in seen)


@pytest.mark.parametrize("forward, adjoint", [(False, True), (True, False), (True, True)])
@pytest.mark.parametrize("method", ["rk4", "implicit_adams", "dopri5", "adams"])
def test_adjoint_callbacks(forward, adjoint, method):
    """Mirrors tests/odeint_tests.py::TestCallbacks::test_steps: ``callback_*`` around the forward solve's
    steps, ``callback_*_adjoint`` around the backward solve's; on a fixed grid one call per step (10 on
    [0, 1] with step 0.1); adaptive: accepted + rejected = attempted. The backward callbacks receive
    torchdiffeq's tuple ``(vjp_t, y, adj_y, *adj_params)``."""
    f, log = _NeuralF(), []
    if forward:
        _recorder(f, STEP_NAMES, log)
    if adjoint:
        _recorder(f, [n + "_adjoint" for n in STEP_NAMES], log, tag="adj_")
    fixed = method in FIXED
    kw = dict(options=dict(step_size=0.1)) if fixed else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fixed grids warn that accept/reject are not called
        xs = odeint_adjoint(f, torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0]), method=method, **kw)
    kinds = [entry[0] for entry in log]
    if forward:
        if fixed:
            assert kinds.count("step") == 10 and "accept_step" not in kinds
        else:
            assert kinds.count("step") == kinds.count("accept_step") + kinds.count("reject_step") > 0
    log.clear()
    xs.sum().backward()
    kinds = [entry[0] for entry in log]
    assert not any(not k.startswith("adj_") for k in kinds)  # forward callbacks are not called backward
    if adjoint:
        if fixed:
            assert kinds.count("adj_step") == 10
        else:
            assert kinds.count("adj_step") == kinds.count("adj_accept_step") + kinds.count("adj_reject_step")
            assert kinds.count("adj_step") > 0
        _, t0, y0, _ = log[0]
        vjp_t, y, adj_y, *adj_params = y0
        assert float(t0) == 1.0 and vjp_t.shape == () and y.shape == adj_y.shape == (2,)
        assert [p.shape for p in adj_params] == [p.shape for p in f.parameters()]
    else:
        assert kinds == []


@pytest.mark.parametrize("method", [*FIXED, "scipy_solver"])
def test_callbacks_a_method_cannot_call_warn(method):
    """Mirrors tests/odeint_tests.py::TestCallbacks::test_wrong_callback: a fixed grid cannot call
    ``callback_accept_step``/``callback_reject_step`` (every step is taken), ``scipy_solver`` no callback
    (scipy chooses its steps); each warns, as torchdiffeq, and the callback is never called."""
    names = STEP_NAMES if method == "scipy_solver" else STEP_NAMES[1:]
    for name in names:
        f, log = _NeuralF(), []
        _recorder(f, (name,), log)
        with pytest.warns(UserWarning, match=f"Solver '{method}' does not support callbacks .*{name}"):
            odeint(f, torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0]), method=method)
        assert log == []
    f = _NeuralF()
    f.callback_step = 3
    with pytest.raises(TypeError, match="func.callback_step must be callable"):
        odeint(f, torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0]))


def test_callbacks_cost_no_read_back():
    """The loop's budget: a callback gets tensors, so defining one adds no host read per step."""
    from benchmarks.metrics import count_syncs  # the counter the sync budget is measured with

    f, log = _NeuralF(), []
    x0, t = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    with torch.no_grad(), solver_stats() as s:
        with count_syncs() as plain:
            odeint(f, x0, t)
        _recorder(f, STEP_NAMES, log)
        with count_syncs() as with_callbacks:
            odeint(f, x0, t)
    attempts = (s.steps_accepted + s.steps_rejected) // 2
    assert sum(plain.values()) == sum(with_callbacks.values()) <= attempts + 2
    assert len(log) == 2 * attempts


# ---- fixed-grid options --------------------------------------------------------------------------------


@pytest.mark.parametrize("adjoint", [False, True])
@pytest.mark.parametrize("method", FIXED + FIXED_IMPLICIT)
def test_perturb_every_fixed_method(method, adjoint):
    """Mirrors tests/odeint_tests.py::TestDiscontinuities::test_odeint_perturb: with ``perturb`` no
    evaluation happens at a grid point (forward: 0 and 0.5; backward: 1 and 0.5), without it some do.
    The implicit methods too: their Jacobians are taken where their evaluations are (just after the
    grid point with ``perturb``), and a non-stiff step starts its stage iteration from ``f`` at the
    step's start, as torchdiffeq's does."""
    for perturb in (True, False):
        seen = []

        def f(t, x, seen=seen):
            seen.append(t.item())
            return -x

        x0 = torch.tensor([1.0, 2.0], requires_grad=True)
        solve = partial(odeint_adjoint, adjoint_params=()) if adjoint else odeint
        xs = solve(
            f, x0, torch.tensor([0.0, 1.0]), method=method, options=dict(step_size=0.5, perturb=perturb)
        )
        for grid_point in (0.0, 0.5):
            assert (grid_point in seen) != perturb
        if adjoint:
            seen.clear()
            xs.sum().backward()
            for grid_point in (1.0, 0.5):
                assert (grid_point in seen) != perturb


@pytest.mark.parametrize("adjoint", [False, True])
def test_grid_constructor(adjoint):
    """Mirrors tests/odeint_tests.py::TestGridConstructor::test_grid_constructor: the caller's grid
    (forward from ``t``, and the adjoint's backward interval, decreasing), Euler's exact value on it."""
    calls = []

    def grid_constructor(func, y0, t):
        calls.append(t.tolist())
        return torch.linspace(float(t[0]), float(t[-1]), 11)

    x0 = torch.tensor(1.0, requires_grad=True)
    kwargs = {"adjoint_params": ()} if adjoint else {}
    solve = odeint_adjoint if adjoint else odeint
    xs = solve(lambda t, x: x, x0, torch.tensor([0.0, 1.0]), method="euler",
               options=dict(grid_constructor=grid_constructor), **kwargs)  # fmt: skip
    assert abs(xs[1].item() - 1.1**10) < 1e-12
    xs[1].backward()
    assert abs(x0.grad.item() - 1.1**10) < 1e-12
    assert calls == ([[0.0, 1.0], [1.0, 0.0]] if adjoint else [[0.0, 1.0]])


def test_grid_constructor_matches_torchdiffeq_and_checks_its_grid():
    """Mirrors tests/odeint_tests.py::TestGridConstructor (torchdiffeq 0.2.5 on an uneven grid, decreasing
    time included); a grid that misses ``t``'s ends, or ``step_size`` beside it, is refused by name."""

    def uneven(func, y0, t):
        s = torch.tensor([0.0, 0.1, 0.35, 0.5, 0.9, 1.0], dtype=t.dtype)
        return t[0] + (t[-1] - t[0]) * s

    f = _NeuralF()
    for t in (torch.tensor([0.0, 0.4, 2.0]), torch.tensor([2.0, 1.0, 0.0])):
        opts = dict(grid_constructor=uneven)
        with torch.no_grad():
            ours = odeint(f, torch.tensor([1.0, 2.0]), t, method="rk4", options={**opts, "interp": "linear"})
            theirs = torchdiffeq.odeint(f, torch.tensor([1.0, 2.0]), t, method="rk4", options=opts)
        assert torch.allclose(ours, theirs, rtol=1e-13, atol=1e-13)
    x0, t = torch.tensor([1.0]), torch.tensor([0.0, 1.0])
    with pytest.raises(ValueError, match=r"options\['grid_constructor'\] returned a grid from 0 to 0.5"):
        odeint(f, torch.ones(2), t, method="euler", options=dict(grid_constructor=lambda f, y, t: t / 2))
    with pytest.raises(ValueError, match="step_size and grid_constructor are mutually exclusive"):
        odeint(f, x0, t, method="euler", options=dict(step_size=0.1, grid_constructor=uneven))
    with pytest.raises(TypeError, match=r"options\['grid_constructor'\] must be callable"):
        odeint(f, x0, t, method="euler", options=dict(grid_constructor=[0.0, 1.0]))
    with pytest.raises(ValueError, match="unknown option"):
        odeint(f, x0, t, method="dopri5", options=dict(grid_constructor=uneven))


@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4", "explicit_adams"])
@pytest.mark.parametrize("interp", ["linear", "cubic"])
def test_interp_matches_torchdiffeq(method, interp):
    """Mirrors tests/event_tests.py::TestEventHandling (``options={"interp": "cubic"}``) and torchdiffeq's
    ``interp`` option: outputs between grid points as torchdiffeq 0.2.5's, linear or cubic Hermite."""
    f = _NeuralF()
    t = torch.tensor([0.0, 0.13, 0.5, 0.77, 1.0])
    opts = dict(step_size=0.1, interp=interp)
    with torch.no_grad():
        ours = odeint(f, torch.tensor([1.0, 2.0]), t, method=method, options=opts)
        theirs = torchdiffeq.odeint(f, torch.tensor([1.0, 2.0]), t, method=method, options=opts)
    assert torch.allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"options\['interp'\] must be one of \['cubic', 'linear'\]"):
        odeint(f, torch.ones(2), t, method=method, options=dict(step_size=0.1, interp="quadratic"))


# ---- dtypes and norms ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["dopri5", "rk4", "adams"])
def test_func_returning_float64_for_a_float32_state(method):
    """Mirrors tests/odeint_tests.py::TestSolverError::test_odeint (dtype=float32, ode='sine'): a 0-d
    float32 state with float64 times, and a ``func`` (torchdiffeq's tests' SineODE) whose arithmetic on
    0-d tensors then returns float64: torchdiffeq computes on in the state's dtype, so does nodebench."""
    f, exact = _sine_problem()
    t = torch.linspace(1.0, 8.0, 10, dtype=torch.float64)
    y0 = exact(t[:1])[0].float()
    assert f(t[0], y0).dtype == torch.float64
    kw = dict(options=dict(step_size=0.01)) if method == "rk4" else {}
    ours = odeint(f, y0, t, method=method, **kw)
    assert ours.dtype == torch.float32
    assert ((ours.double() - exact(t)) / exact(t)).abs().max() < 3e-4
    y0.requires_grad_()
    odeint_adjoint(f, y0, t, method=method, adjoint_params=(), **kw)[-1].backward()
    assert y0.grad.dtype == torch.float32 and torch.isfinite(y0.grad)


def test_func_returning_a_lower_precision_warns():
    """A ``func`` returning float32 for a float64 state: the solve goes on (as torchdiffeq), with a
    warning that the output carries only float32's precision; a non-floating output is refused."""
    t = torch.tensor([0.0, 1.0])
    with pytest.warns(
        UserWarning, match="func returned dtype torch.float32 for a state of dtype torch.float64"
    ):
        y = odeint(lambda t, y: -y.float(), torch.ones(2), t, rtol=1e-5)
    assert y.dtype == torch.float64 and abs(y[-1, 0].item() - torch.exp(torch.tensor(-1.0)).item()) < 1e-5
    with pytest.raises(TypeError, match="func returned dtype torch.int64"):
        odeint(lambda t, y: y.long(), torch.ones(2), t)
    with pytest.raises(TypeError, match=r"func's output\[1\] has dtype torch.bool"):
        odeint(lambda t, y: (y[0], y[1] > 0), (torch.ones(2), torch.ones(1)), t)


def test_norm_receives_the_callers_shapes():
    """Mirrors tests/norm_tests.py::TestNorms::test_norm: a 0-d state's norm receives shape (), a tuple
    state's the tuple of its components' shapes."""
    shapes = []

    def norm(state):
        shapes.append(tuple(s.shape for s in state) if isinstance(state, tuple) else state.shape)
        parts = state if isinstance(state, tuple) else (state,)
        return max(p.pow(2).mean().sqrt() for p in parts)

    t = torch.tensor([0.0, 1.0])
    for x0, want in (
        (torch.tensor(1.0), torch.Size([])),
        ((torch.tensor(1.0),), (torch.Size([]),)),
        ((torch.tensor(1.0), torch.tensor([[0.5, 0.5], [0.1, 0.1]])), (torch.Size([]), torch.Size([2, 2]))),
    ):
        shapes.clear()
        odeint(lambda t, x: x, x0, t, options=dict(norm=norm))
        assert shapes and set(shapes) == {want}


@pytest.mark.parametrize("shape", [(), (1,), (2, 2)])
@pytest.mark.parametrize("adjoint_options", [None, {}, {"norm": "seminorm"}, {"norm": "full"}])
def test_adjoint_norm_on_the_backward_node(shape, adjoint_options):
    """Mirrors tests/norm_tests.py::TestNorms::test_adjoint_norm (auto-constructed norms): the backward
    node holds the norm in ``grad_fn.adjoint_options["norm"]``, a callable on torchdiffeq's tuple
    ``(t, y, adj_y, *adj_params)``; a replacement put there is what the backward solve calls."""
    params = (torch.rand(7, requires_grad=True), torch.rand((), requires_grad=True))
    kw = {} if adjoint_options is None else {"adjoint_options": adjoint_options}
    xs = odeint_adjoint(lambda t, x: x, torch.full(shape, 1.0), torch.tensor([0.0, 1.0]),
                        adjoint_params=params, **kw)  # fmt: skip
    default = xs.grad_fn.adjoint_options["norm"]
    assert isinstance(default, AdjointNorm)
    assert default.kind == ((adjoint_options or {}).get("norm") or "seminorm")
    seen = []

    def spy(tensors):
        t, y, adj_y, p1, p2 = tensors
        seen.append((t.shape, y.shape, adj_y.shape, p1.shape, p2.shape))
        value = default(tensors)
        assert isinstance(value, torch.Tensor) and value.shape == ()
        expect = max(y.pow(2).mean().sqrt(), adj_y.pow(2).mean().sqrt())
        if default.kind == "full":
            expect = max(expect, t.abs(), p1.pow(2).mean().sqrt(), p2.abs())
        assert abs(value.item() - expect.item()) < 1e-12
        return value

    xs.grad_fn.adjoint_options["norm"] = spy
    xs.sum().backward()
    assert seen and set(seen) == {(torch.Size([]), torch.Size(shape), torch.Size(shape), (7,), ())}


def test_adjoint_norm_tuple_state_and_user_norms():
    """Mirrors tests/norm_tests.py::TestNorms::test_adjoint_norm (tuple state and user-passed norms): the
    default sees the flattened state (torchdiffeq's layout), a caller's norm the unpacked components;
    the time channel is the dL/dt integral, nonzero when ``t`` needs a gradient."""
    params = (torch.rand(7, requires_grad=True), torch.rand((), requires_grad=True))
    x0 = (torch.tensor(1.0), torch.tensor([[0.5, 0.5], [0.1, 0.1]]))
    t = torch.tensor([0.0, 1.0])
    xs = odeint_adjoint(lambda t, x: x, x0, t, adjoint_params=params)
    node = xs[0].grad_fn.next_functions[0][0].next_functions[0][0]  # where torchdiffeq's tests look
    seen = []
    default = node.adjoint_options["norm"]
    node.adjoint_options["norm"] = lambda tensors: (
        seen.append([x.shape for x in tensors]),
        default(tensors),
    )[1]
    xs[0].sum().backward()
    assert seen[0] == [(), (5,), (5,), (7,), ()]
    for state in (torch.tensor(1.0), x0):
        seen.clear()

        def mine(tensors):
            seen.append([x.shape for x in tensors])
            return max(x.abs().max() for x in tensors)

        t = torch.tensor([0.0, 1.0], requires_grad=True)
        xs = odeint_adjoint(lambda t, x: x if isinstance(x, torch.Tensor) else tuple(-t * xi for xi in x),
                            state, t, adjoint_params=params, adjoint_options=dict(norm=mine))  # fmt: skip
        (xs if isinstance(xs, torch.Tensor) else xs[0]).sum().backward()
        if isinstance(state, tuple):
            assert seen[0] == [(), (), (2, 2), (), (2, 2), (7,), ()]
        else:
            assert seen[0] == [(), (), (), (7,), ()]
        assert t.grad is not None
    with pytest.raises(
        TypeError, match=r"adjoint_options\['norm'\] must be 'seminorm', 'full' or a callable"
    ):
        odeint_adjoint(lambda t, x: x, torch.ones(1), t, adjoint_params=(), adjoint_options=dict(norm=3))


def test_user_adjoint_norm_steers_the_backward_solve():
    """A caller's backward norm is the one the backward solve's controller uses: ten times the default
    takes more backward steps (tests/norm_tests.py::TestNorms::test_large_norm, backward)."""
    f = _NeuralF(oscillate=True)
    x0, t = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    counts = []
    for scale in (1.0, 10.0):

        def norm(tensors, scale=scale):
            return scale * AdjointNorm("seminorm", [2])(tensors)

        xs = odeint_adjoint(f, x0, t, adjoint_options=dict(norm=norm))
        f.nfe = 0
        xs.sum().backward()
        counts.append(f.nfe)
    assert counts[0] < counts[1]


# ---- events and decreasing time ------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("method", [m for m in METHODS if m != "fixed_adams"])
def test_event_fn_in_odeint_every_method(method, reverse):
    """Mirrors tests/event_tests.py::TestEventHandling::test_odeint: ``odeint(..., event_fn=...)`` returns
    ``(event_t, solution)`` for every method, in increasing and decreasing time."""
    f, exact = _sine_problem()
    t_points = torch.linspace(1.0, 8.0, 10)
    if reverse:
        t_points = t_points.flip(0)
    sol = exact(t_points)
    y0 = sol[0].reshape(1)
    options = {} if METHODS[method].adaptive else {"step_size": 0.01, "interp": "cubic"}
    t, y = odeint(
        f, y0, t_points[:2], method=method, options=options, event_fn=lambda t, y: (y - sol[2]).sum()
    )
    tol = {"explicit_adams": 7e-2, "euler": 5e-3, "implicit_euler": 5e-3, "gl6": 2e-3}.get(method, 1e-4)
    assert y.shape == (2, 1)
    assert abs((y[-1] - sol[2]) / sol[2]).item() < tol
    assert abs((t - t_points[2]) / t_points[2]).item() < tol


def test_event_fn_in_odeint_adjoint():
    """Mirrors tests/event_tests.py::TestEventHandling::test_adjoint: ``odeint_adjoint(..., event_fn=...)``;
    the event time and the state both backpropagate (the event time by the implicit function theorem,
    as ``odeint_event``)."""
    a = torch.tensor(0.7, requires_grad=True)

    class Decay(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Parameter(torch.tensor(0.7))

        def forward(self, t, y):
            return -self.a * y

    f = Decay()
    y0 = torch.tensor([1.0], requires_grad=True)
    t, y = odeint_adjoint(f, y0, torch.tensor([0.0, 1.0]), event_fn=lambda t, y: y.sum() - 0.5)
    exact = torch.log(torch.tensor(2.0)) / 0.7  # y0 exp(-a t) = 1/2
    assert abs(t.item() - exact.item()) < 1e-6 and abs(y[-1].item() - 0.5) < 1e-7
    t.backward(retain_graph=True)
    assert abs(f.a.grad.item() + exact.item() / 0.7) < 1e-5  # dt*/da = -ln 2 / a^2
    assert abs(y0.grad.item() - 1 / 0.7) < 1e-5  # dt*/dy0 = 1 / (a y0)
    y.sum().backward()
    with pytest.raises(ValueError, match="t must hold exactly two times with event_fn"):
        odeint(f, y0, torch.tensor([0.0, 1.0, 2.0]), event_fn=lambda t, y: y.sum())
    del a


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method", [m for m in METHODS if m != "fixed_adams"])
def test_decreasing_time_every_method(method, dtype):
    """Mirrors tests/odeint_tests.py::TestSolverError::test_odeint (reverse=True) and
    tests/odeint_tests.py::TestScipySolvers: output grids in decreasing time, every method, both dtypes,
    with ``t`` in float64 (requiring grad) beside the state (torchdiffeq's tests' ``construct_problem``):
    adaptive methods on the sine problem, fixed grids (on the output times) on the constant one."""
    t_points = torch.linspace(1.0, 8.0, 10).flip(0).requires_grad_()
    if not METHODS[method].adaptive:
        a, b = 0.2, 3.0

        def f(t, y):
            return a + (y - (a * t + b)) ** 5

        sol = (a * t_points + b).to(dtype).detach()
    else:
        f, exact = _sine_problem()
        sol = exact(t_points).to(dtype).detach()
    kw = {}
    if method == "dopri8":
        kw = dict(rtol=1e-12, atol=1e-14) if dtype == torch.float64 else dict(rtol=1e-7, atol=1e-7)
    y = odeint(f, sol[0].clone(), t_points, method=method, **kw)
    assert y.dtype == dtype and y.shape == sol.shape
    # low-order pairs, and the multistep bdf/ndf in float32 (their rtol raised to 100 x epsilon, 1.2e-5,
    # with global error growing along the sine problem's decay): torchdiffeq's looser eps
    loose = method in ("adaptive_heun", "bosh3") or (method in ("bdf", "ndf") and dtype == torch.float32)
    eps = 4e-3 if loose else 3e-4
    assert ((sol - y) / sol).abs().max().item() < eps


# ---- min_step / max_step -------------------------------------------------------------------------------


def test_min_and_max_step():
    """Mirrors tests/odeint_tests.py::TestMinMaxStep::test_min_max_step (dopri5): a step at ``min_step`` is
    taken whatever its error (so few evaluations), no step exceeds ``max_step``."""

    class Linear:
        A = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]])

        def __init__(self):
            self.nfe, self.sizes = 0, []

        def __call__(self, t, y):
            self.nfe += 1
            return self.A @ y

        def callback_accept_step(self, t0, y0, dt):
            self.sizes.append(float(dt))

    y0, t = torch.tensor([1.0, 1.0]), torch.linspace(1.0, 8.0, 10)
    for min_step, max_step in ((0.0, float("inf")), (0.0, 5.0), (2.0, float("inf")), (2.0, 5.0)):
        f = Linear()
        odeint(f, y0, t, options=dict(min_step=min_step, max_step=max_step))
        sizes = f.sizes
        if min_step > 0:
            assert f.nfe < 50 and min(sizes[:-1]) >= min_step * (1 - 1e-12)
        else:
            assert f.nfe > 100
        assert max(sizes) <= max_step
    with pytest.raises(SolverError, match="a step of min_step=2 gives a non-finite state"):
        odeint(lambda t, y: -y if t < 2 else y * float("nan"), y0, t, options=dict(min_step=2.0))


def test_method_none_is_dopri5():
    """torchdiffeq's ``odeint(..., method=None)`` (its signature's default) is dopri5; so is nodebench's."""
    f = _NeuralF()
    x0, t = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    with torch.no_grad():
        assert torch.equal(odeint(f, x0, t, method=None), odeint(f, x0, t, method="dopri5"))
    xs = odeint_adjoint(f, x0.requires_grad_(), t, method=None)
    xs.sum().backward()
    assert x0.grad is not None


def test_per_sample_control_warns_that_callbacks_are_not_called():
    """Per-sample step control (nodebench's, not torchdiffeq's) has a step per sample: no callback
    is called, and a warning says so."""
    f, log = _NeuralF(), []
    _recorder(f, STEP_NAMES, log)
    with pytest.warns(UserWarning, match="step callbacks are not called"):
        odeint(f, torch.ones(3, 2), torch.tensor([0.0, 1.0]), options=dict(batch="independent"))
    assert log == []
