"""Work-precision diagrams of adaptive solvers, nodebench against its peers. See :data:`PROTOCOL`."""

from __future__ import annotations

import functools
import importlib.util
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nodebench.data.demo_spirals import DEMO_T_MAX, DEMO_Y0
from nodebench.measure import Timer, run_in_fresh_process
from nodebench.models.demo_spirals import DemoTrue
from nodebench.reference.problems import STIFF_PROBLEMS, VanDerPol, stacked_van_der_pol
from nodebench.reference.scipy_peer import solve_scipy, solve_scipy_stiff
from nodebench.reference.torchdiffeq_adapter import CountingFunc, integrate
from nodebench.units import NO_STEP, UnitContext, UnitSpec

NAME = "solvers"
#: Under ``--executor ray`` the units run one at a time on one node holding all its CPUs: their
#: timings are compared across units, so they must come from one machine with nothing beside them.
RAY_PLACEMENT = "serial"
#: Adaptive methods per library (Runge-Kutta; nodebench's and scipy's Adams codes).
METHODS = {
    "nodebench": ("bosh3", "dopri5", "tsit5", "adams"),
    # nodebench with per-sample step control (options={"batch": "independent"}), as torchode's
    "nodebench_independent": ("dopri5", "tsit5"),
    "torchdiffeq": ("bosh3", "dopri5", "dopri8", "fehlberg2", "adaptive_heun"),
    "torchode": ("dopri5", "tsit5"),
    "scipy": ("lsoda", "vode"),
    # Stiff problems (issue 26): nodebench's adaptive implicit methods against scipy's stiff solvers.
    "nodebench_stiff": ("radau", "bdf", "ndf"),
    "scipy_stiff": ("Radau", "BDF", "LSODA"),
}
#: The libraries that count Jacobians, factorisations (and, nodebench, Newton iterations) apart.
STIFF_LIBRARIES = ("nodebench_stiff", "scipy_stiff")
REFERENCE_RTOL, REFERENCE_ATOL = 1e-13, 1e-15
VDP_MU, VDP_PERIOD = 2.0, 7.6297
#: Stacked Van der Pol (issue 25): batch size per problem name; mu log-spaced on [0.1, 20], T = 20.
STACKED = {"stacked_vdp": 64, "stacked_vdp_256": 256}
PROBLEMS = ("linear", "vdp", "spiral", *STACKED, *STIFF_PROBLEMS)
#: scipy's Radau for the stiff references (DOP853 would need millions of steps).
STIFF_REFERENCE_RTOL, STIFF_REFERENCE_ATOL = 1e-12, 1e-16

PROTOCOL = """\
## Work-precision diagrams (as in SciMLBenchmarks)

- Problems, all in float64, solved from t = 0 to T with the output at T only:
  - `linear`: y' = A y, A = [[-0.2, 1.5, 2.0], [-1.0, -0.3, 0.5], [0, 0, -0.5]] (non-normal),
    a batch of 16 N(0, 1) states from the seed, T = 10; truth exp(A T) y0 (`torch.linalg.matrix_exp`).
  - `vdp`: Van der Pol x'' = mu (1 - x^2) x' - x, mu = 2, over one cycle (T = 7.6297), a batch of 256
    states uniform on [-2, 2]^2 from the seed.
  - `spiral`: torchdiffeq's spiral demo dynamics y' = (y**3) A, A = [[-0.1, 2], [-2, -0.1]], y0 = [2, 0],
    T = 25.
  - `stacked_vdp` (`stacked_vdp_256`): 64 (256) independent Van der Pol oscillators, mu log-spaced
    over [0.1, 20], all from y0 = (2, 0), T = 20 (torchode's stacked problem, issue 25): one step size
    for the batch is the hardest sample's; per-sample control lets each take its own.
  - Stiff problems (preset `stiff`, issue 26), float64, output at T only: `robertson` (Robertson's
    kinetics, k = (0.04, 3e7, 1e4), y0 = (1, 0, 0), T = 1e5), `vdp_stiff` (Van der Pol, mu = 1000,
    y0 = (2, 0), T = 3000), `stiff_linear` (y' = A (y - cos t) - sin t with A = -V diag(1e4, 1e2, 1) V^-1,
    V = I + 0.5 strict upper ones, two states, T = 10; truth by its closed form
    cos(t) + exp(A t) (y0 - 1)) and `hires` (HIRES, T = 321.8122). Definitions in
    `nodebench/reference/problems.py` (`STIFF_PROBLEMS`). Reference for `robertson`, `vdp_stiff` and
    `hires`: scipy's Radau at rtol 1e-12, atol 1e-16 with the exact Jacobian (autograd); `reference_gap`
    as below.
  - Reference for `vdp`, `spiral` and the stacked problems: scipy's DOP853 at rtol 1e-13, atol 1e-15
    on the flattened batch (independent of every library measured); `reference_gap` is its difference
    from the same solve at 100 times looser tolerances, an upper estimate of the reference's own error.
- Methods: every adaptive Runge-Kutta method of each library: nodebench bosh3, dopri5, tsit5;
  torchdiffeq 0.2.5 bosh3, dopri5, dopri8, fehlberg2, adaptive_heun; torchode (if installed) Dopri5,
  Tsit5 with its integral controller, eager mode, no compilation. torchode controls the step of every
  batch member separately; its NFE counts calls of the batched function, as for the others.
  `nodebench_independent`: nodebench's dopri5 and tsit5 with per-sample step control
  (`options={"batch": "independent"}`).
  Multistep: nodebench's `adams` (variable-step, variable-order Adams PECE) and, as the reference
  peer, scipy's Fortran Adams codes `lsoda` (LSODA via `solve_ivp`) and `vode` (VODE, Adams mode) on
  the flattened batch — the LSODE family the paper used. scipy's times include converting the state
  between numpy and torch at every evaluation.
- Stiff methods: nodebench's `radau` (Radau IIA order 5, RADAU5), `bdf` (variable order 1-5, LSODE's
  formulas) and `ndf` (Klopfenstein-Shampine, scipy's BDF) against scipy's `Radau`, `BDF` and `LSODA`
  (library `scipy_stiff`), every one given the exact Jacobian by autograd (scipy's `jac=`), so that no
  library spends evaluations on finite-difference Jacobians. Counted apart: `nfe` (evaluations of f,
  not counting the one call autograd makes per Jacobian), `jacobians`, `factorizations` (LU; a complex
  one counts once) and, for nodebench, `newton_iterations` (scipy does not report them; LSODA reports
  no factorisations).
- Tolerances: rtol from `rtols`, atol = rtol * `atol_factor`; methods listed in `tightest_rtol` stop
  at that rtol (low orders would take minutes per solve at the tightest).
- Error: RMS over the batch and components of y(T) minus the truth (`error`).
- NFE: evaluations in one solve (counted by wrapping the function, alike for every library: calls of
  the batched function). `nfe_sample_mean`: evaluations each sample took part in while it was still
  being solved, averaged over the batch (per-sample control and torchode; shared control: NFE).
- Time: per (problem, library) one fresh process; per (method, rtol) one untimed warm-up solve (which
  also gives NFE and error), then up to `repeats` timed solves, stopping early (after at least one)
  once `time_budget_s` seconds of timed solving have passed; the median is recorded (`time`).
- Records: variant `<problem>/<library>/<method>`, step = index into `rtols`; metrics `rtol`, `atol`,
  `nfe`, `error`, `time` (s); stiff libraries also `jacobians`, `factorizations`, `newton_iterations`.
  Reference: variant `<problem>/reference`, metric `reference_gap`.
"""


@dataclass(frozen=True)
class Config:
    """Work-precision settings.

    Attributes:
        seeds: seeds of the problems' initial states.
        problems: subset of :data:`PROBLEMS`.
        libraries: subset of :data:`METHODS`' keys; torchode is skipped where it is not installed.
            ``scipy``: LSODA and VODE (Adams); ``nodebench_independent``: per-sample step control.
        rtols: relative tolerances, loosest first.
        atol_factor: atol = rtol * atol_factor.
        tightest_rtol: ``(method, rtol)`` pairs: the tightest rtol run for that method.
        repeats: at most this many timed solves per point (median recorded).
        time_budget_s: stop timing a point once this many seconds have been spent on it.
        timeout_s: seconds allowed for one fresh process.
    """

    seeds: tuple[int, ...] = (0,)
    problems: tuple[str, ...] = ("linear", "vdp", "spiral")
    libraries: tuple[str, ...] = ("nodebench", "torchdiffeq", "torchode", "scipy")
    rtols: tuple[float, ...] = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10)
    atol_factor: float = 1e-3
    tightest_rtol: tuple[tuple[str, float], ...] = (
        ("bosh3", 1e-7),
        ("fehlberg2", 1e-4),
        ("adaptive_heun", 1e-4),
    )
    repeats: int = 5
    time_budget_s: float = 1.0
    timeout_s: float = 3600.0


PRESETS = {
    "smoke": Config(
        problems=("linear",),
        libraries=("nodebench", "torchdiffeq"),
        rtols=(1e-2, 1e-3),
        repeats=1,
        time_budget_s=0.5,
    ),
    "standard": Config(),
    "paper": Config(seeds=(0, 1, 2), repeats=7, time_budget_s=10.0),
    # Issue 25: shared against per-sample step control against torchode on stacked Van der Pol.
    # Issue 26: stiff problems, nodebench's implicit methods against scipy's stiff solvers.
    "stiff": Config(
        problems=tuple(STIFF_PROBLEMS),
        libraries=STIFF_LIBRARIES,
        rtols=(1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8),
        atol_factor=1e-4,
        tightest_rtol=(),
        time_budget_s=2.0,
    ),
    "batch": Config(
        problems=("stacked_vdp", "stacked_vdp_256"),
        libraries=("nodebench", "nodebench_independent", "torchode"),
        rtols=(1e-4, 1e-5, 1e-6, 1e-7, 1e-8),
        atol_factor=1e-2,
        tightest_rtol=(("bosh3", 1e-7),),
        time_budget_s=2.0,
    ),
}


class LinearODE(nn.Module):
    """``y' = A y`` for row states of shape ``(batch, d)``."""

    def __init__(self, A: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("A", A)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y @ self.A.T


def make_problem(
    name: str, seed: int, device: str | torch.device = "cpu"
) -> tuple[nn.Module, torch.Tensor, float]:
    """``(func, y0, T)`` of problem ``name`` in float64 on ``device``; ``y0`` has shape ``(batch, d)``."""
    generator = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    if name == "linear":
        A = torch.tensor([[-0.2, 1.5, 2.0], [-1.0, -0.3, 0.5], [0.0, 0.0, -0.5]], dtype=f64)
        func, y0, T = LinearODE(A), torch.randn(16, 3, generator=generator, dtype=f64), 10.0
    elif name == "vdp":
        func, y0, T = (
            VanDerPol(VDP_MU),
            torch.rand(256, 2, generator=generator, dtype=f64) * 4 - 2,
            VDP_PERIOD,
        )
    elif name == "spiral":
        func, y0, T = DemoTrue(f64), torch.tensor([DEMO_Y0], dtype=f64), DEMO_T_MAX
    elif name in STIFF_PROBLEMS:
        func, y0, t = STIFF_PROBLEMS[name].make(f64, torch.device("cpu"))
        T = float(t[-1])
    elif name in STACKED:
        func, y0, t = stacked_van_der_pol(STACKED[name])
        T = float(t[-1])
    else:
        raise ValueError(f"unknown problem {name!r}; known: {', '.join(PROBLEMS)}")
    return func.to(device), y0.to(device), T


@functools.lru_cache(maxsize=16)
def reference(name: str, seed: int) -> tuple[tuple[float, ...], float]:
    """The final state of problem ``name`` (flattened) and an upper estimate of its error.

    ``linear``: the matrix exponential (error 0 by convention). Others: scipy's DOP853 at rtol 1e-13,
    atol 1e-15; the error estimate is the difference from the same solve at 100 times looser tolerances.
    """
    func, y0, T = make_problem(name, seed)
    if name == "linear":
        exact = y0 @ torch.linalg.matrix_exp(func.A * T).T
        return tuple(exact.reshape(-1).tolist()), 0.0
    if name in STIFF_PROBLEMS:
        return _stiff_reference(name, func, y0, T)
    from scipy.integrate import solve_ivp

    shape = y0.shape

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            state = torch.as_tensor(y, dtype=torch.float64).reshape(shape)
            return func(torch.tensor(t), state).reshape(-1).numpy()

    def final(scale: float) -> torch.Tensor:
        sol = solve_ivp(
            rhs,
            (0.0, T),
            y0.reshape(-1).numpy(),
            "DOP853",
            rtol=REFERENCE_RTOL * scale,
            atol=REFERENCE_ATOL * scale,
        )
        if not sol.success:
            raise RuntimeError(f"reference solve of {name} failed: {sol.message}")
        return torch.as_tensor(sol.y[:, -1])

    tight = final(1.0)
    return tuple(tight.tolist()), float((tight - final(100.0)).abs().max())


def _stiff_reference(
    name: str, func: nn.Module, y0: torch.Tensor, T: float
) -> tuple[tuple[float, ...], float]:
    """The closed form (``stiff_linear``) or scipy's Radau at :data:`STIFF_REFERENCE_RTOL`, and the
    difference from the same solve at 100 times looser tolerances."""
    problem = STIFF_PROBLEMS[name]
    if problem.exact is not None:
        with torch.no_grad():
            exact = problem.exact(func, y0, torch.tensor([0.0, T], dtype=y0.dtype))[-1]
        return tuple(exact.reshape(-1).tolist()), 0.0

    def final(scale: float) -> torch.Tensor:
        t = torch.tensor([0.0, T], dtype=torch.float64)
        y, _ = solve_scipy_stiff(
            func, y0, t, "Radau", STIFF_REFERENCE_RTOL * scale, STIFF_REFERENCE_ATOL * scale
        )
        return y[-1].reshape(-1)

    tight = final(1.0)
    return tuple(tight.tolist()), float((tight - final(100.0)).abs().max())


def _stiff_solve(library: str, func: nn.Module, method: str, rtol: float, atol: float, y0, T) -> tuple:
    """``(y(T), counts)`` of one solve by a stiff library (counts: nfe, jacobians, factorizations and,
    for nodebench, newton_iterations)."""
    t = torch.tensor([0.0, T], dtype=y0.dtype, device=y0.device)
    if library == "scipy_stiff":
        y, counts = solve_scipy_stiff(func, y0, t, method, rtol, atol)
        return y[-1].to(y0), counts
    from nodebench import odeint, solver_stats

    with torch.no_grad(), solver_stats() as s:  # no graph: its extra evaluations would count
        y = odeint(func, y0, t, method, rtol, atol)[-1]
    counts = {"nfe": s.nfe_forward, "jacobians": s.jacobians, "factorizations": s.factorizations,
              "newton_iterations": s.newton_iterations}  # fmt: skip
    return y, counts


def _torchode_solver(func: nn.Module, method: str, rtol: float, atol: float) -> Callable[..., torch.Tensor]:
    """A function ``(y0, T) -> y(T)`` solving with torchode's ``method`` (eager, integral controller)."""
    import torchode

    term = torchode.ODETerm(func)
    step = {"dopri5": torchode.Dopri5, "tsit5": torchode.Tsit5}[method](term=term)
    controller = torchode.IntegralController(atol=atol, rtol=rtol, term=term)
    solver = torchode.AutoDiffAdjoint(step, controller)

    def run(y0: torch.Tensor, T: float) -> torch.Tensor:
        batch = y0.shape[0]
        problem = torchode.InitialValueProblem(
            y0=y0,
            t_start=torch.zeros(batch, dtype=y0.dtype, device=y0.device),
            t_end=torch.full((batch,), T, dtype=y0.dtype, device=y0.device),
        )
        return solver.solve(problem).ys[:, -1]

    return run


def _solver(
    library: str, func: nn.Module, method: str, rtol: float, atol: float
) -> Callable[..., torch.Tensor]:
    """A function ``(y0, T) -> y(T)`` solving with ``library``'s ``method``."""
    if library == "torchode":
        return _torchode_solver(func, method, rtol, atol)
    if library == "nodebench_independent":
        from nodebench import odeint

        def run_independent(y0: torch.Tensor, T: float) -> torch.Tensor:
            t = torch.tensor([0.0, T], dtype=y0.dtype, device=y0.device)
            return odeint(func, y0, t, method, rtol, atol, options={"batch": "independent"})[-1]

        return run_independent
    if library == "scipy":

        def run_scipy(y0: torch.Tensor, T: float) -> torch.Tensor:
            t = torch.tensor([0.0, T], dtype=y0.dtype, device=y0.device)
            return solve_scipy(func, y0, t, method, rtol, atol)[0][-1]

        return run_scipy

    def run(y0: torch.Tensor, T: float) -> torch.Tensor:
        t = torch.tensor([0.0, T], dtype=y0.dtype, device=y0.device)
        return integrate(library, func, y0, t, method, rtol, atol)[-1]

    return run


def _nfe_sample_mean(library: str, func: nn.Module, method: str, rtol: float, atol: float, y0, T) -> float:
    """Evaluations each sample took part in while still being solved, averaged over the batch."""
    if library == "torchode":
        import torchode

        term = torchode.ODETerm(func)
        step = {"dopri5": torchode.Dopri5, "tsit5": torchode.Tsit5}[method](term=term)
        solver = torchode.AutoDiffAdjoint(step, torchode.IntegralController(atol=atol, rtol=rtol, term=term))
        batch = y0.shape[0]
        problem = torchode.InitialValueProblem(
            y0=y0,
            t_start=torch.zeros(batch, dtype=y0.dtype, device=y0.device),
            t_end=torch.full((batch,), T, dtype=y0.dtype, device=y0.device),
        )
        return solver.solve(problem).stats["n_f_evals"].double().mean().item()
    from nodebench import odeint, solver_stats

    opts = {"batch": "independent"} if library == "nodebench_independent" else None
    t = torch.tensor([0.0, T], dtype=y0.dtype, device=y0.device)
    with solver_stats() as s:
        odeint(func, y0, t, method, rtol, atol, options=opts)
    return s.per_sample["nfe"].double().mean().item() if s.per_sample is not None else float(s.nfe_forward)


def measure(
    library: str,
    problem: str,
    seed: int,
    device: str,
    points: list[list],
    truth: list[float],
    repeats: int,
    time_budget_s: float,
) -> dict[str, list[dict[str, float]]]:
    """Solve ``problem`` with ``library`` at each ``[method, rtol, atol]`` of ``points`` (in a fresh process).

    Returns:
        ``{"points": [{"nfe", "error", "time"}, ...]}`` in the order of ``points``.
    """
    dev = torch.device(device)
    func, y0, T = make_problem(problem, seed, dev)
    exact = torch.tensor(truth, dtype=torch.float64, device=dev).view_as(y0)
    if library in STIFF_LIBRARIES:
        return _measure_stiff(library, func, y0, T, exact, points, repeats, time_budget_s)
    counted = CountingFunc(func)
    out = []
    with torch.no_grad():
        for method, rtol, atol in points:
            counted.counts["nfe_forward"] = 0
            y = _solver(library, counted, method, rtol, atol)(y0, T)  # the warm-up
            nfe = counted.counts["nfe_forward"]
            timed = _solver(library, func, method, rtol, atol)
            times: list[float] = []
            while len(times) < repeats and (not times or sum(times) < time_budget_s):
                with Timer(dev) as timer:
                    timed(y0, T)
                times.append(timer.seconds)
            error = (y - exact).pow(2).mean().sqrt().item()
            point = {"nfe": nfe, "error": error, "time": statistics.median(times)}
            if library in ("nodebench", "nodebench_independent", "torchode") and y0.shape[0] > 1:
                point["nfe_sample_mean"] = _nfe_sample_mean(library, func, method, rtol, atol, y0, T)
            out.append(point)
    return {"points": out}


def _measure_stiff(library, func, y0, T, exact, points, repeats, time_budget_s) -> dict:
    """:func:`measure` for the stiff libraries: counts from the solvers' own counters."""
    out = []
    for method, rtol, atol in points:
        y, counts = _stiff_solve(library, func, method, rtol, atol, y0, T)  # the warm-up
        times: list[float] = []
        while len(times) < repeats and (not times or sum(times) < time_budget_s):
            with Timer(y0.device) as timer:
                _stiff_solve(library, func, method, rtol, atol, y0, T)
            times.append(timer.seconds)
        error = (y.double() - exact).pow(2).mean().sqrt().item()
        out.append({**counts, "error": error, "time": statistics.median(times)})
    return {"points": out}


def _points(config: Config, library: str) -> list[tuple[int, str, float, float]]:
    """``(step, method, rtol, atol)`` for every method of ``library`` and every rtol it runs at."""
    tightest = dict(config.tightest_rtol)
    return [
        (step, method, rtol, rtol * config.atol_factor)
        for method in METHODS[library]
        for step, rtol in enumerate(config.rtols)
        if rtol >= tightest.get(method, 0.0) * (1 - 1e-9)
    ]


def _reference_unit(recorder: UnitContext, problem: str, seed: int) -> None:
    recorder.record(f"{problem}/reference", seed, NO_STEP, "reference_gap", reference(problem, seed)[1])


def _library_unit(
    config: Config, recorder: UnitContext, problem: str, library: str, seed: int, device: torch.device
) -> None:
    points = _points(config, library)
    kwargs = {
        "library": library,
        "problem": problem,
        "seed": seed,
        "device": str(device),
        "points": [[method, rtol, atol] for _, method, rtol, atol in points],
        "truth": list(reference(problem, seed)[0]),
        "repeats": config.repeats,
        "time_budget_s": config.time_budget_s,
    }
    fresh = run_in_fresh_process(f"{__name__}:measure", kwargs, timeout=config.timeout_s)
    for (step, method, rtol, atol), result in zip(points, fresh.result["points"], strict=True):
        variant = f"{problem}/{library}/{method}"
        recorder.record(variant, seed, step, "rtol", rtol)
        recorder.record(variant, seed, step, "atol", atol)
        recorder.record(variant, seed, step, "nfe", result["nfe"])
        recorder.record(variant, seed, step, "error", result["error"])
        recorder.record(variant, seed, step, "time", result["time"], "s")
        if "nfe_sample_mean" in result:
            recorder.record(variant, seed, step, "nfe_sample_mean", result["nfe_sample_mean"])
        for key in ("jacobians", "factorizations", "newton_iterations"):
            if key in result:
                recorder.record(variant, seed, step, key, result[key])


def available_libraries(config: Config) -> list[str]:
    """The configured libraries that can run here (torchode only where it is installed)."""
    return [lib for lib in config.libraries if lib != "torchode" or importlib.util.find_spec("torchode")]


def plan(config: Config) -> list[UnitSpec]:
    """Per seed and problem: the reference, then one unit (a fresh process) per available library."""
    unknown = sorted(set(config.libraries) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown libraries {unknown}; known: {sorted(METHODS)}")
    bad = sorted(set(config.problems) - set(PROBLEMS))
    if bad:
        raise ValueError(f"unknown problems {bad}; known: {list(PROBLEMS)}")
    if not all(math.isfinite(r) and r > 0 for r in config.rtols):
        raise ValueError(f"rtols must be positive, got {config.rtols}")
    libraries = available_libraries(config)
    specs = []
    for seed in config.seeds:
        for problem in config.problems:
            specs.append(UnitSpec(f"{problem}/reference/seed={seed}", {"problem": problem, "seed": seed}))
            for library in libraries:
                params = {"problem": problem, "seed": seed, "library": library}
                specs.append(UnitSpec(f"{problem}/{library}/seed={seed}", params))
    return specs


def execute(spec: UnitSpec, unit: UnitContext) -> None:
    """Run one unit of :func:`plan`."""
    p = spec.params
    if "library" not in p:
        _reference_unit(unit, p["problem"], p["seed"])
    else:
        _library_unit(unit.config, unit, p["problem"], p["library"], p["seed"], unit.device)
