"""Deterministic figures of merit shared by the CI gate (``benchmarks/gate.py``) and asv's ``track_*``.

Each function returns plain numbers that depend only on the code (and the floating-point library),
never on the machine's speed: NFE, step counts, saved-for-backward bytes, numerical errors.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torchdiffeq
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from nodebench import odeint, odeint_adjoint, solver_stats
from nodebench.measure import SavedTensorsMeter
from nodebench.solvers import controller, integrate

ADAPTIVE = ("bosh3", "dopri5", "tsit5")


class TimeSettings:
    """asv settings shared by every ``time_*`` benchmark, for a noisy, shared 2-core machine.

    - ``timer``: CPU time of the benchmark process (``time.process_time``), not wall time: with one torch
      thread it is the solve's own work, and time spent waiting while other jobs hold the cores does
      not count. (A slowdown that is only waiting, e.g. I/O or sleeping, would not show; the solvers do
      none.)
    - ``sample_time`` 0.1 s: asv repeats a short call (a 1-ms euler solve) in each sample until it lasts
      0.1 s, so one sample averages about a hundred calls and short-lived load.
    - ``warmup_time`` 0.5 s before the first sample of each round (allocator, caches, lazy init).
    - ``repeat`` (5, 10, 10.0): 5 to 10 samples per round, stopping after 10 s.
    - ``rounds`` 4: each benchmark is run in 4 separate processes; ``asv continuous`` and ``asv run``
      with ``--interleave-rounds`` alternate the rounds of the commits compared, so drift in the
      machine's load falls on both.
    """

    timer = staticmethod(time.process_time)
    sample_time = 0.1
    warmup_time = 0.5
    repeat = (5, 10, 10.0)
    rounds = 4


class TrackSettings:
    """asv settings for ``track_*`` benchmarks: one round (their values do not need repeating)."""

    rounds = 1


class _OlderDemo(nn.Module):
    """The same network, for commits from before it had a home in nodebench (asv runs old commits)."""

    def __init__(self, generator: torch.Generator) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(2, 50), nn.Linear(50, 2)
        with torch.no_grad():
            for lin in (self.l1, self.l2):
                lin.weight.copy_(torch.randn(lin.weight.shape, generator=generator) * 0.1)
                lin.bias.zero_()

    def forward(self, t, y):
        return self.l2(torch.tanh(self.l1(y**3)))


def _demo_model(generator: torch.Generator) -> nn.Module:
    try:
        from nodebench.models.demo_spirals import DemoModel
    except ImportError:
        return _OlderDemo(generator)
    return DemoModel(generator=generator)


def spiral_setup(dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(1)
    func = _demo_model(torch.Generator().manual_seed(0)).to(dtype)  # torchdiffeq's demo network
    y0 = torch.randn(20, 2, generator=g, dtype=dtype) * 1.5
    t = torch.linspace(0.0, 1.0, 10, dtype=dtype)
    return func, y0, t


def linear_problem():
    A = torch.tensor([[-0.1, -1.0, 0.3], [1.0, -0.1, 0.0], [0.2, 0.5, -0.4]], dtype=torch.float64)
    y0 = torch.tensor([[1.0, 0.5, -0.3], [0.2, -1.0, 0.8]], dtype=torch.float64)
    t = torch.tensor([0.0, 0.5, 1.3, 2.0, 3.7], dtype=torch.float64)
    exact = torch.stack([y0 @ torch.linalg.matrix_exp(A * ti).T for ti in t])
    return (lambda t, y: y @ A.T), y0, t, exact


def _scale(compared: torch.Tensor, reference: torch.Tensor, evaluations: int) -> dict[str, float | str]:
    """Round-off scale of a relative error ``max|compared - reference| / max|reference|``.

    ``magnitude`` is the largest value compared (units of the quantity), ``reference`` the normaliser,
    ``evaluations`` the right-hand-side evaluations whose rounding accumulates into the two sides.
    """
    return {
        "magnitude": max(compared.abs().max().item(), reference.abs().max().item()),
        "reference": reference.abs().max().item(),
        "evaluations": float(evaluations),
        "dtype": str(reference.dtype).removeprefix("torch."),
    }


class _Counted(nn.Module):
    def __init__(self, func) -> None:
        super().__init__()
        self.func = func
        self.nfe = 0

    def forward(self, t, y):
        self.nfe += 1
        return self.func(t, y)


def solve_stats(method: str, problem: str = "linear", rtol: float = 1e-6) -> dict:
    """NFE, steps and max relative error against the truth for one forward solve.

    ``scales["error"]`` is the error's round-off scale (see :func:`_scale`), used by the CI gate.
    """
    ref_nfe = 0
    if problem == "linear":
        func, y0, t, exact = linear_problem()
    else:
        func, y0, t = spiral_setup()
        with torch.no_grad(), solver_stats() as r:
            exact = odeint(func, y0, t, rtol=1e-12, atol=1e-14)
        ref_nfe = r.nfe_forward
    with torch.no_grad(), solver_stats() as s:
        y = odeint(func, y0, t, method=method, rtol=rtol, atol=rtol * 1e-2)
    err = ((y - exact).abs().max() / exact.abs().max()).item()
    return {
        "nfe": s.nfe_forward,
        "accepted": s.steps_accepted,
        "rejected": s.steps_rejected,
        "error": err,
        "scales": {"error": _scale(y, exact, s.nfe_forward + ref_nfe)},
    }


class _OpCounter(TorchDispatchMode):
    """Counts the aten operators dispatched inside it (every tensor operation, views included)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def ops_per_nfe(
    solve: Callable[[], Any], func: Callable, t0: torch.Tensor, y0: torch.Tensor
) -> dict[str, float]:
    """Tensor operations ``solve()`` dispatches per evaluation of ``func`` beyond ``func``'s own, no grad.

    The machine-independent part of a solver's overhead: on small states each operation costs a
    roughly fixed dispatch time, so operations per NFE predict solver time per NFE (the peer benchmark
    ``benchmarks/peer/test_adams_overhead.py`` times it). Counted at the aten level, so it depends on
    the torch version but not on the machine.
    """
    with torch.no_grad():
        with solver_stats() as s:
            solve()
        whole, one = _OpCounter(), _OpCounter()
        with whole:
            solve()
        with one:
            func(t0, y0)
    nfe = s.nfe_forward
    return {"ops_per_nfe": (whole.ops - nfe * one.ops) / nfe, "nfe": nfe}


#: aten operators that make the host wait for the device: a scalar read (``.item()``, ``bool()``,
#: ``float()``, ``int()`` and Python comparisons of tensors all end in ``_local_scalar_dense``), and the
#: operators whose output shape depends on values (``nonzero`` and its users), plus ``equal``.
SYNC_OPS = frozenset(
    {
        "aten._local_scalar_dense",
        "aten.nonzero",
        "aten.nonzero_static",
        "aten.masked_select",
        "aten.unique_dim",
        "aten._unique2",
        "aten.unique_consecutive",
        "aten.equal",
        "aten.is_nonzero",
    }
)
#: Tensor methods that copy values to the host without reaching the dispatcher on a CPU tensor (on a
#: GPU each is a device-to-host copy that waits for the device).
SYNC_METHODS = frozenset({"tolist", "numpy", "__array__"})


class _SyncDispatch(TorchDispatchMode):
    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__()
        self.counts = counts

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket)
        bool_index = name == "aten.index" and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] if len(args) > 1 else ())
        )
        if name in SYNC_OPS or bool_index:
            key = "aten.index (bool mask)" if bool_index else name
            self.counts[key] = self.counts.get(key, 0) + 1
        return func(*args, **(kwargs or {}))


class _SyncFunction(TorchFunctionMode):
    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__()
        self.counts = counts

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in SYNC_METHODS:
            key = f"Tensor.{name}"
            self.counts[key] = self.counts.get(key, 0) + 1
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def count_syncs() -> Iterator[dict[str, int]]:
    """Count the host synchronisations inside the block, by kind (CPU is enough: counted, not timed).

    A synchronisation is an operation that, on a GPU, makes the host wait for the device: the aten
    operators in :data:`SYNC_OPS` (every scalar read-back dispatches ``aten._local_scalar_dense`` once;
    indexing by a boolean mask counts as a ``nonzero``) and the Tensor methods in :data:`SYNC_METHODS`
    (``tolist``/``numpy`` copy to the host). Creating a tensor from Python numbers (a host-to-device
    copy) does not wait for the device and is not counted.

    Yields:
        a dict ``{kind: count}`` filled as the block runs; ``sum(d.values())`` is the total.
    """
    counts: dict[str, int] = {}
    with _SyncFunction(counts), _SyncDispatch(counts):
        yield counts


def _torchdiffeq_attempts() -> tuple[Callable[[], int], Callable[[], None]]:
    """Count the steps torchdiffeq's adaptive Runge-Kutta solvers attempt (``(read, restore)``)."""
    from torchdiffeq._impl import rk_common

    cls = rk_common.RKAdaptiveStepsizeODESolver
    original = cls._adaptive_step
    n = [0]

    def counted(self, rk_state):
        n[0] += 1
        return original(self, rk_state)

    cls._adaptive_step = counted

    def restore() -> None:
        cls._adaptive_step = original

    return (lambda: n[0]), restore


def syncs_per_step(
    library: str = "nodebench",
    method: str = "dopri5",
    options: dict | None = None,
    setup: Callable | None = None,
    accelerator_path: bool = True,
) -> dict[str, Any]:
    """Host synchronisations per attempted step of one solve, no grad (``library`` nodebench or torchdiffeq).

    ``setup() -> (func, y0, t)`` defaults to the spiral demo of issue 2 (batch 20, 10 output times,
    float32, default tolerances). Attempted steps are the solver's own count (nodebench:
    ``solver_stats().attempts``, the steps the batch attempted together; torchdiffeq: calls of its
    ``_adaptive_step``). Deterministic: counts only.

    ``accelerator_path``: count nodebench's reads as it makes them on a GPU (it folds the reads of the
    output times and the first step size into the first step's read there, see
    ``nodebench.solvers.integrate.FOLD_FIRST_READ``; on a CPU, where a read waits for nothing, it reads
    them first, two reads more per solve); False counts the CPU path.

    Returns:
        ``{"syncs_per_step", "syncs", "attempts", "by_kind"}``.
    """
    func, y0, t = (setup or _peer_spiral_setup)()
    with torch.no_grad():
        if library == "nodebench":
            previous = integrate.FOLD_FIRST_READ
            integrate.FOLD_FIRST_READ = accelerator_path
            try:
                with solver_stats() as s, count_syncs() as c:
                    odeint(func, y0, t, method=method, options=options)
            finally:
                integrate.FOLD_FIRST_READ = previous
            attempts = s.attempts
        else:
            read, restore = _torchdiffeq_attempts()
            try:
                with count_syncs() as c:
                    torchdiffeq.odeint(func, y0, t, method=method, options=options)
            finally:
                restore()
            attempts = read()
    total = sum(c.values())
    return {"syncs_per_step": total / attempts, "syncs": total, "attempts": attempts, "by_kind": dict(c)}


def _peer_spiral_setup():
    """The peer benchmark's spiral demo (issue 2): torchdiffeq's demo network, batch 20, float32."""
    from nodebench.models.demo_spirals import DemoModel

    torch.manual_seed(0)
    func = DemoModel().float()
    f32 = torch.float32
    return func, torch.randn(20, 1, 2, dtype=f32), torch.linspace(0.0, 1.0, 10, dtype=f32)


def solver_ops_per_nfe(method: str, problem: str = "linear", rtol: float = 1e-6) -> dict[str, float]:
    """:func:`ops_per_nfe` of one solve of ``problem`` (as in :func:`solve_stats`)."""
    func, y0, t = linear_problem()[:3] if problem == "linear" else spiral_setup()
    return ops_per_nfe(
        lambda: odeint(func, y0, t, method=method, rtol=rtol, atol=rtol * 1e-2), func, t[0], y0
    )


def adjoint_stats(norm: str, rtol: float = 1e-6, times: int = 10) -> dict:
    """Forward/backward NFE of an adjoint solve on the spiral demo, and its gradient error vs torchdiffeq.

    ``times``: output times, evenly spaced on [0, 1] (many of them exercise the backward pass's landing
    on every output time without restarts).
    """
    func, y0, t = spiral_setup()
    t = torch.linspace(float(t[0]), float(t[-1]), times, dtype=t.dtype)
    with solver_stats() as s:
        y = odeint_adjoint(func, y0, t, rtol=rtol, atol=rtol * 1e-2, adjoint_norm=norm)
        y.sin().sum().backward()
    ours = torch.cat([p.grad.flatten() for p in func.parameters()])
    func.zero_grad()
    opts = {"norm": "seminorm"} if norm == "seminorm" else None
    counted = _Counted(func)
    y = torchdiffeq.odeint_adjoint(counted, y0, t, rtol=rtol, atol=rtol * 1e-2, adjoint_options=opts)
    y.sin().sum().backward()
    theirs = torch.cat([p.grad.flatten() for p in func.parameters()])
    err = ((ours - theirs).abs().max() / theirs.abs().max()).item()
    evaluations = s.nfe_forward + s.nfe_backward + counted.nfe
    # On the rk4 grid of the output times both libraries restart the backward solve in every interval
    # and take the same steps, so their gradients agree to round-off (the adaptive ones differ at
    # tolerance level, since nodebench's backward pass does not restart at the output times).
    fixed = {}
    for lib, solve in (("ours", odeint_adjoint), ("theirs", torchdiffeq.odeint_adjoint)):
        func.zero_grad()
        counted.nfe = 0
        solve(counted, y0, t, method="rk4").sin().sum().backward()  # one step per interval
        fixed[lib] = (torch.cat([p.grad.flatten() for p in func.parameters()]), counted.nfe)
    (g_ours, n_ours), (g_theirs, n_theirs) = fixed["ours"], fixed["theirs"]
    err_rk4 = ((g_ours - g_theirs).abs().max() / g_theirs.abs().max()).item()
    return {
        "nfe_forward": s.nfe_forward,
        "nfe_backward": s.nfe_backward,
        "grad_error_vs_torchdiffeq": err,
        "grad_error_vs_torchdiffeq_rk4": err_rk4,
        "scales": {
            "grad_error_vs_torchdiffeq": _scale(ours, theirs, evaluations),
            "grad_error_vs_torchdiffeq_rk4": _scale(g_ours, g_theirs, n_ours + n_theirs),
        },
    }


@contextlib.contextmanager
def decision_margins() -> Iterator[dict[str, float]]:
    """Record how far every discrete decision of the adaptive solves inside the block is from flipping.

    A count (NFE, accepted, rejected) can differ between CPUs only if round-off moves a decision across
    its threshold: an error ratio across 1 at accept/reject (adams: also its order and step-size
    comparisons), or a step's end across an output or landing time (which decides whether a step is
    clipped, or one more step is taken). The solver reports each through
    ``nodebench.solvers.controller.DECISION_HOOK``. Yields ``{"ratio": min relative margin,
    "time": min |t_step - t_out| / h, "decisions": n}``; both margins are relative, so they compare
    directly with round-off (~1e-16 .. 1e-10 here).
    """
    out = {"ratio": math.inf, "time": math.inf, "decisions": 0}

    def hook(kind: str, margin: float) -> None:
        out["decisions"] += 1
        out[kind] = min(out[kind], margin)

    previous = controller.DECISION_HOOK
    controller.DECISION_HOOK = hook
    try:
        yield out
    finally:
        controller.DECISION_HOOK = previous


def saved_bytes(mode: str, steps: int) -> int:
    """Bytes autograd saves for backward: a small MLP block on a fixed rk4 grid of ``steps`` steps."""
    torch.manual_seed(0)
    func = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 4)).double()
    y0 = torch.randn(16, 4, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    solve = odeint if mode == "direct" else odeint_adjoint
    f = _Autonomous(func)
    with SavedTensorsMeter() as meter:
        y = solve(f, y0, t, method="rk4", options={"step_size": 1.0 / steps})
    y[-1].sum().backward()
    return meter.bytes


class _Autonomous(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, t, y):
        return self.net(y)


FIXED_STEP = {"rk4", "midpoint", "euler"}


def solver_options(method: str) -> dict | None:
    """Options of the spiral speed benchmarks: fixed-grid methods take steps of 0.05."""
    return {"step_size": 0.05} if method in FIXED_STEP else None


def same_run_ratio(
    ours: Callable[[], object], theirs: Callable[[], object], repeats: int = 21
) -> dict[str, float]:
    """ours / theirs CPU time (``time.process_time``), interleaved call by call, medians of ``repeats``.

    Interleaving puts both under the same load; the ratio, not either time, is what carries across
    machines. CPU time rather than wall time: on a shared machine, waiting for a core is not the code's.
    """
    runs = {"ours": ours, "theirs": theirs}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(3):
        for fn in runs.values():
            fn()
    for _ in range(repeats):
        for k, fn in runs.items():
            t0 = time.process_time()
            fn()
            times[k].append(time.process_time() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"ratio": med["ours"] / med["theirs"], "ours_s": med["ours"], "torchdiffeq_s": med["theirs"]}


#: Fresh processes a noisy ``track_`` figure (a same-run ratio, an RSS growth) is measured in; asv
#: keeps no statistics for ``track_`` values, so the benchmark reports their median. One process is
#: not enough: in one unchanged pair of commits, ratios moved by 1.13x and an RSS growth by 1.14x from
#: one process to the next (memory layout, allocator state), beyond asv's default 1.1 factor.
FRESH_PROCESSES = 3


def median_of_fresh_processes(
    fn_path: str, kwargs: dict[str, Any], value: Callable[[Any], float], processes: int = FRESH_PROCESSES
) -> float:
    """The median over ``processes`` fresh processes of ``value(run)``, ``run`` a
    :class:`nodebench.measure.FreshProcessResult` of ``fn_path(**kwargs)``."""
    from nodebench.measure import run_in_fresh_process

    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        # The child takes this sys.path and must import the suite (asv does not put its root on it)
        # but measure the nodebench of the commit under test, installed in asv's environment: so the
        # root goes last, after the environment's site-packages.
        sys.path.append(root)
    return statistics.median(
        value(run_in_fresh_process(fn_path, kwargs, timeout=240)) for _ in range(processes)
    )


def speed_ratio_vs_torchdiffeq(method: str = "dopri5", repeats: int = 21) -> dict[str, float]:
    """nodebench / torchdiffeq time for the spiral solve (float32, no grad), see :func:`same_run_ratio`."""
    torch.set_num_threads(1)
    func, y0, t = spiral_setup(torch.float32)
    opts = solver_options(method)
    with torch.no_grad():
        return same_run_ratio(
            lambda: odeint(func, y0, t, method=method, options=opts),
            lambda: torchdiffeq.odeint(func, y0, t, method=method, options=opts),
            repeats,
        )


def adjoint_backward_ratio_vs_torchdiffeq(norm: str, repeats: int = 7) -> dict[str, float]:
    """nodebench / torchdiffeq time of the adjoint backward pass on the spiral demo (float32)."""
    torch.set_num_threads(1)
    func, y0, t = spiral_setup(torch.float32)
    params = tuple(func.parameters())
    ours = odeint_adjoint(func, y0, t, adjoint_norm=norm).sin().sum()
    opts = {"norm": "seminorm"} if norm == "seminorm" else None
    theirs = torchdiffeq.odeint_adjoint(func, y0, t, adjoint_options=opts).sin().sum()
    return same_run_ratio(
        lambda: torch.autograd.grad(ours, params, retain_graph=True),
        lambda: torch.autograd.grad(theirs, params, retain_graph=True),
        repeats,
    )


def direct_vs_adjoint_memory(mode: str, steps: int) -> dict[str, float]:
    """One forward + backward of an MNIST ODE block (64 channels, 7x7, batch 8) on an rk4 grid of ``steps``.

    Meant for :func:`nodebench.measure.run_in_fresh_process`, which measures the RSS growth of the call
    over the process after its imports (torch alone is ~400 MB, more than what is measured).
    """
    from nodebench.models.mnist import ode_block_func

    torch.set_num_threads(1)
    torch.manual_seed(0)
    func = ode_block_func(64)
    x = torch.randn(8, 64, 7, 7, requires_grad=True)
    solve = odeint if mode == "direct" else odeint_adjoint
    y = solve(func, x, torch.tensor([0.0, 1.0]), method="rk4", options={"step_size": 1.0 / steps})
    y[-1].sum().backward()
    return {"steps": steps}


STACKED_SOLVERS = ("shared", "per_sample", "torchode", "torchdiffeq")


def _stacked_solver(name: str, func: Callable, y0: torch.Tensor, t: torch.Tensor, rtol: float, atol: float,
                    method: str = "dopri5") -> Callable[[], torch.Tensor]:  # fmt: skip
    """``() -> y(T)`` (shape ``(batch, 2)``): the stacked problem solved by one of :data:`STACKED_SOLVERS`."""
    if name == "shared":
        return lambda: odeint(func, y0, t, method, rtol, atol)[-1]
    if name == "per_sample":
        return lambda: odeint(func, y0, t, method, rtol, atol, options={"batch": "independent"})[-1]
    if name == "torchdiffeq":
        return lambda: torchdiffeq.odeint(func, y0, t, rtol=rtol, atol=atol, method=method)[-1]
    import torchode

    term = torchode.ODETerm(func)
    step = {"dopri5": torchode.Dopri5, "tsit5": torchode.Tsit5}[method](term=term)
    solver = torchode.AutoDiffAdjoint(step, torchode.IntegralController(atol=atol, rtol=rtol, term=term))
    batch = y0.shape[0]
    problem = torchode.InitialValueProblem(
        y0=y0, t_start=t[0].expand(batch).contiguous(), t_end=t[-1].expand(batch).contiguous()
    )
    return lambda: solver.solve(problem).ys[:, -1]


def stacked_vdp(
    batch: int = 64, rtol: float = 1e-6, atol: float = 1e-8, repeats: int = 7, solvers=STACKED_SOLVERS
) -> dict[str, dict[str, float]]:
    """Shared vs per-sample step control vs torchode vs torchdiffeq on stacked Van der Pol (issue 25).

    The problem: ``batch`` oscillators, mu log-spaced on [0.1, 20], y0 = (2, 0), t in [0, 20], float64,
    dopri5 at ``rtol``/``atol``, no grad, one thread. Per solver: ``nfe`` (calls of the batched func),
    ``nfe_sample_mean`` (evaluations each sample took part in while being solved, mean over the batch),
    ``attempts`` (steps the batch attempted together), ``syncs`` and ``syncs_per_step`` (see
    :func:`count_syncs`), ``error`` (RMS of y(T) against scipy's DOP853 at rtol 1e-13) and ``time_s``
    (CPU time, median of ``repeats`` interleaved calls, so every solver sees the same load). Counts are
    deterministic; times are same-run ratios' ingredients, never compared with stored values.
    """
    from nodebench.reference.problems import stacked_van_der_pol
    from nodebench.workloads.solvers import reference

    torch.set_num_threads(1)
    name = "stacked_vdp" if batch == 64 else "stacked_vdp_256" if batch == 256 else None
    func, y0, t = stacked_van_der_pol(batch)
    truth = torch.tensor(reference(name, 0)[0], dtype=torch.float64).view_as(y0) if name else None
    calls = [0]

    def counted(tt, yy):
        calls[0] += 1
        return func(tt, yy)

    out: dict[str, dict[str, float]] = {}
    runs = {}
    with torch.no_grad():
        for s in solvers:
            calls[0] = 0
            if s == "torchdiffeq":
                read, restore = _torchdiffeq_attempts()
            with solver_stats() as st, count_syncs() as c:
                y = _stacked_solver(s, counted, y0, t, rtol, atol)()
            row = {"nfe": calls[0], "syncs": sum(c.values())}
            if s == "torchdiffeq":
                row["attempts"] = read()
                restore()
                row["nfe_sample_mean"] = calls[0]
            elif s == "torchode":
                import torchode  # noqa: F401  (the solve above imported it)

                stats = _torchode_stats(counted, y0, t, rtol, atol)
                row["attempts"] = stats["n_steps"].max().item()
                row["nfe_sample_mean"] = stats["n_f_evals"].double().mean().item()
            else:
                row["attempts"] = st.attempts
                per = st.per_sample
                row["nfe_sample_mean"] = per["nfe"].double().mean().item() if per else calls[0]
            row["syncs_per_step"] = row["syncs"] / row["attempts"]
            if truth is not None:
                row["error"] = (y - truth).pow(2).mean().sqrt().item()
            out[s] = row
            runs[s] = _stacked_solver(s, func, y0, t, rtol, atol)
        times = _interleaved_cpu_medians(runs, repeats)
    for s in solvers:
        out[s]["time_s"] = times[s]
    return out


def _torchode_stats(func, y0, t, rtol, atol) -> dict[str, torch.Tensor]:
    import torchode

    term = torchode.ODETerm(func)
    solver = torchode.AutoDiffAdjoint(
        torchode.Dopri5(term=term), torchode.IntegralController(atol=atol, rtol=rtol, term=term)
    )
    batch = y0.shape[0]
    problem = torchode.InitialValueProblem(
        y0=y0, t_start=t[0].expand(batch).contiguous(), t_end=t[-1].expand(batch).contiguous()
    )
    return solver.solve(problem).stats


def _interleaved_cpu_medians(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median CPU time (``time.process_time``) of each callable, called in turn, after one warm-up each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.process_time()
            fn()
            times[k].append(time.process_time() - t0)
    return {k: statistics.median(v) for k, v in times.items()}
