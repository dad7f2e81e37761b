"""Workload ``spiral``: fit the seed slides' Examples 1 and 2 and torchdiffeq's spiral demo.

Variants ``<problem>/<mode>/<solver>``: problem ``example1 | example2 | demo``, mode ``direct``
(:func:`nodebench.odeint`, backprop through the solver) or ``adjoint`` (:func:`nodebench.odeint_adjoint`),
solver ``euler | dopri5``. One unit of work per variant and seed, seeded at its start, plus one data
unit per problem and seed; see :data:`PROTOCOL` for the protocol and the record encoding.
"""

from __future__ import annotations

import copy
import functools
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from nodebench.data.demo_spirals import (
    BATCH_STREAM,
    Trajectory,
    demo_starts,
    example_segment,
    generator,
    make_trajectory,
)
from nodebench.measure.timing import Timer
from nodebench.models.demo_spirals import make_model
from nodebench.schema.spiral import MODES, PROBLEMS, SOLVERS, W_TRUE
from nodebench.schema.spiral import variant as variant_name
from nodebench.solvers import SolverError, odeint, odeint_adjoint, solver_stats
from nodebench.units import UnitContext, UnitSpec
from nodebench.workloads.base import seed_everything

NAME = "spiral"
DEMO_BATCH_TIME = 10
UNITS = {"loss": "", "nfe_forward": "evals", "nfe_backward": "evals", "time_step": "s"}


@dataclass(frozen=True)
class Config:
    """The spiral workload's settings (see :data:`PROTOCOL`).

    Attributes:
        seeds: one unit per variant and seed; the seed fixes noise, initial weights and batches.
        problems, modes, solvers: the variant axes (all variants are their product).
        example1_steps, example2_steps, demo_steps: training iterations per problem.
        euler_step: Euler step size for the examples (the demo steps on its own time grid).
        rtol, atol: dopri5 tolerances for training (forward and adjoint solves).
        eval_rtol, eval_atol: dopri5 tolerances of the float64 evaluation solve over the full span.
        eval_max_steps: step limit of the evaluation solve (a diverged model is recorded as ``inf``).
        evals: evaluation checkpoints per variant, evenly spaced in training steps (plus step 0).
        snapshots: fractions of training at which the predicted trajectory is stored for figures.
        figure_points: about this many points of each stored trajectory (every ``n // figure_points``-th).
        log_every: per-iteration metrics are recorded as means over windows of this many iterations.
        dtype: training dtype (the originals train in float32).
        threads: torch intra-op threads while the workload runs (restored afterwards).
    """

    seeds: tuple[int, ...] = (0,)
    problems: tuple[str, ...] = PROBLEMS
    modes: tuple[str, ...] = MODES
    solvers: tuple[str, ...] = SOLVERS
    example1_steps: int = 500
    example2_steps: int = 3000
    demo_steps: int = 2000
    euler_step: float = 0.05
    rtol: float = 1e-5
    atol: float = 1e-6
    eval_rtol: float = 1e-7
    eval_atol: float = 1e-9
    eval_max_steps: int = 20_000
    evals: int = 20
    snapshots: tuple[float, ...] = (0.0, 0.05, 0.25, 1.0)
    figure_points: int = 200
    log_every: int = 10
    dtype: str = "float32"
    threads: int = 1

    def steps(self, problem: str) -> int:
        """Training iterations of ``problem``."""
        return getattr(self, f"{problem}_steps")


PRESETS = {
    "smoke": Config(
        example1_steps=3,
        example2_steps=3,
        demo_steps=3,
        eval_rtol=1e-5,
        eval_atol=1e-7,
        evals=1,
        snapshots=(0.0, 1.0),
        figure_points=10,
        log_every=1,
    ),
    "standard": Config(seeds=(0, 1, 2), example2_steps=1000),
    "paper": Config(seeds=(0, 1, 2)),
}

PROTOCOL = """\
## spiral: seed Examples 1 and 2 and torchdiffeq's spiral demo

Variants `<problem>/<mode>/<solver>`: problems `example1`, `example2`, `demo`; mode `direct`
(backprop through the solver) or `adjoint` (Algorithm 1, O(1) memory); solver `euler` or `dopri5`.

**Examples 1 and 2 (seed slides).** One trajectory from z0 = [0.6, 0.3] on t = linspace(0, 31.45, 200);
truth by dopri5 (rtol 1e-10, atol 1e-12, float64, **ours**); observations = truth + N(0, 0.01^2).
Each step: t0 ~ U(0, t_max - 5), t1 = t0 + U(1, 5), up to 32 sorted random observation times with
t0 < t < t1; integrate from the (noisy) first observation of the segment; MSE loss over the segment's
points; Adam lr 0.01. Example 1: dz/dt = W z, W = [[-0.1, -1], [1, -0.1]], model bias-free
Linear(2, 2) initialised randn/2, 500 steps. Example 2: the slides' blended spirals
dx/dt = sigmoid(x.x0) A (x - x0) + sigmoid(-x.x0) B (x + x0), A = [[-0.1, -0.5], [0.5, -0.1]],
B = [[0.2, 1], [-1, 0.2]], x0 = [-1, 0] (docs/protocols.md), model
Linear(2,16)-ELU-Linear(16,16)-ELU-Linear(16,2), 3000 steps (`paper`; the `standard` preset trains
1000, see Presets).

**Demo (torchdiffeq `ode_demo.py`).** dy/dt = (y^3) A, A = [[-0.1, 2], [-2, -0.1]], y0 = [2, 0],
t = linspace(0, 25, 1000), truth by dopri5 at rtol 1e-7, atol 1e-9 (float64), no noise. Each
iteration: 20 distinct start indices, 10 consecutive points each, integrated over t[:10] from the
true states at the starts; L1 loss (mean absolute error); RMSprop lr 1e-3; 2000 iterations. Model
Linear(2,50)-Tanh-Linear(50,2) on y^3, weights N(0, 0.1), biases 0.

**Solvers.** `euler`: step 0.05 on the examples, as the original (our grid runs from the segment's
first time in steps of 0.05 with cubic Hermite output at off-grid times; the original split each
interval between outputs into equal steps of at most 0.05); on the demo Euler steps on the demo's
own output grid t[:10] (h = 25/999), as torchdiffeq's `--method euler`. `dopri5`: rtol 1e-5,
atol 1e-6 for forward and adjoint solves (**ours**): three orders of magnitude below the 0.01
observation noise, so the solver adds no visible error to the loss, while still loose enough for
float32 training (the demo's own 1e-7/1e-9 sits at float32 resolution). The adjoint uses the
forward solver's settings and the seminorm. Training runs in float32 with 1 torch thread.

**Evaluation (ours).** At 20 evenly spaced checkpoints (and step 0) the learned model is copied to
float64 and integrated from the true initial state over the whole t grid with dopri5 at rtol 1e-7,
atol 1e-9 (at most 20,000 steps; a diverged model is recorded as `inf`); `traj_mse` is the mean
squared error against the noise-free truth over all points and both coordinates. `traj_mse_solver`
is the same with the variant's own training solver (Euler step 0.05 or on the demo grid, dopri5
1e-5/1e-6), still in float64: the gap between the two shows how much of the training solver's
discretisation error the learned vector field has absorbed. Seeds: noise, initial weights and
batches all follow the unit's seed (noise and batches from separate local generators, initial
weights from torch's global generator seeded at the start of the unit).

**Records** (`value` float; `unit` "" unless named). Every row of a variant carries the variant label
and the unit's seed; `step` means:

- training metrics, `step` = first iteration of a window of `log_every` = 10 iterations (1 in smoke),
  value = mean over the window; an iteration's `step` is the number of optimizer updates made
  before it: `loss` (batch loss: MSE for the examples, L1 for the demo), `nfe_forward` and, for
  `adjoint` only, `nfe_backward` (evals per iteration, from `solver_stats`; `direct` has no
  backward solve, it backpropagates through the forward graph), `time_step` (s per iteration: batch,
  forward, backward, optimizer step; recording excluded);
- checkpoint metrics, `step` = updates made: `traj_mse`, `traj_mse_solver`; Example 1 also `W_11`,
  `W_12`, `W_21`, `W_22` (learned W, row-major) and `W_err_max` = max |W - W_true|;
- figure rows, `step` = index i into the problem's time grid (all 200 points of the examples, every
  5th of the demo's 1000): `traj_x@K`, `traj_y@K` = learned trajectory at t[i] after K updates,
  for K = 0 and 5%, 25%, 100% of training (`nan` if the solve diverged). The data unit of each problem
  and seed records, under variant `example1` | `example2` | `demo`, `t`, `truth_x`, `truth_y` and
  (examples only) `obs_x`, `obs_y` at the same indices.

**Presets.** `smoke`: 3 iterations of each of the 12 variants, checkpoints and snapshots at 0 and 3,
evaluation at rtol 1e-5, atol 1e-7, 10 figure points. `standard`: the protocol above with seeds
0, 1, 2, except Example 2 trains 1000 steps instead of the original 3000: the full protocol costs
about 1 h wall per seed on a shared 2-core CPU (measured: Example 2's adjoint dopri5 variant alone
needs 0.35-0.55 s per step, ~20-27 min for 3000); `standard` takes about 30 min per seed. `paper`: the full
protocol (Example 2 3000 steps) with seeds 0, 1, 2 (no published numbers exist for these problems).
"""


def _check(config: Config) -> None:
    """Raise ``ValueError`` naming the axis if ``config`` asks for an unknown problem, mode or solver."""
    for axis, allowed in (("problems", PROBLEMS), ("modes", MODES), ("solvers", SOLVERS)):
        bad = [value for value in getattr(config, axis) if value not in allowed]
        if bad:
            raise ValueError(f"config.{axis}: unknown {bad}; expected values from {allowed}")


def _checkpoints(config: Config, steps: int) -> tuple[set[int], set[int]]:
    """Evaluation steps and figure-snapshot steps of a variant trained for ``steps`` iterations."""
    evals = {round(k * steps / config.evals) for k in range(config.evals + 1)}
    snapshots = {round(f * steps) for f in config.snapshots}
    return evals | snapshots, snapshots


def _solver_kwargs(config: Config, problem: str, solver: str) -> dict[str, Any]:
    """The training solver's ``odeint`` keyword arguments (see the protocol's Solvers paragraph)."""
    if solver == "dopri5":
        return {"method": "dopri5", "rtol": config.rtol, "atol": config.atol}
    if problem == "demo":
        return {"method": "euler"}
    return {"method": "euler", "options": {"step_size": config.euler_step}}


def _stride(data: Trajectory, config: Config) -> int:
    """Every how many time points a stored figure trajectory keeps one."""
    return max(1, len(data.t) // config.figure_points)


def _record_data(recorder: UnitContext, data: Trajectory, seed: int, config: Config) -> None:
    """The data unit's figure rows: time grid, truth and observations of one problem and seed."""
    stride = _stride(data, config)
    columns = {"t": data.t, "truth_x": data.truth[:, 0], "truth_y": data.truth[:, 1]}
    if data.noise_std > 0:
        columns |= {"obs_x": data.obs[:, 0], "obs_y": data.obs[:, 1]}
    for metric, values in columns.items():
        for index in range(0, len(values), stride):
            recorder.record(data.problem, seed, index, metric, float(values[index]))


def _predict(
    model: nn.Module, data: Trajectory, solver_kwargs: dict[str, Any], max_steps: int
) -> Tensor | None:
    """The model's trajectory from the true ``z0`` over the grid in float64 (``None``: it diverged)."""
    model64 = copy.deepcopy(model).to(device="cpu", dtype=torch.float64)
    options = {**solver_kwargs.get("options", {}), "max_num_steps": max_steps}
    try:
        with torch.no_grad():
            return odeint(model64, data.z0, data.t, **{**solver_kwargs, "options": options})
    except SolverError:
        return None


def _mse(pred: Tensor | None, truth: Tensor) -> float:
    """Mean squared error over all points and coordinates; ``inf`` for a diverged solve."""
    return float("inf") if pred is None else float(((pred - truth) ** 2).mean())


def _evaluate(
    recorder: UnitContext,
    variant: str,
    seed: int,
    step: int,
    model: nn.Module,
    data: Trajectory,
    config: Config,
    train_kwargs: dict[str, Any],
    snapshot: bool,
) -> None:
    """Record the checkpoint metrics after ``step`` updates, and the figure rows if ``snapshot``."""
    tight = {"method": "dopri5", "rtol": config.eval_rtol, "atol": config.eval_atol}
    pred = _predict(model, data, tight, config.eval_max_steps)
    recorder.record(variant, seed, step, "traj_mse", _mse(pred, data.truth))
    own = _predict(model, data, train_kwargs, config.eval_max_steps)
    recorder.record(variant, seed, step, "traj_mse_solver", _mse(own, data.truth))
    if data.problem == "example1":
        weight = model.weight.detach().to("cpu", torch.float64)
        for (i, j), value in zip(((1, 1), (1, 2), (2, 1), (2, 2)), weight.flatten().tolist()):
            recorder.record(variant, seed, step, f"W_{i}{j}", value)
        error = (weight - torch.tensor(W_TRUE, dtype=torch.float64)).abs().max()
        recorder.record(variant, seed, step, "W_err_max", float(error))
    if snapshot:
        stride = _stride(data, config)
        for index in range(0, len(data.t), stride):
            for axis, name in enumerate("xy"):
                value = float("nan") if pred is None else float(pred[index, axis])
                recorder.record(variant, seed, index, f"traj_{name}@{step}", value)


Batch = tuple[Tensor, Tensor, Tensor]


def _sampler(
    problem: str, data: Trajectory, gen: torch.Generator, dtype: torch.dtype, device: torch.device
) -> Callable[[], Batch]:
    """A function drawing one training batch ``(y0, t, target)`` of ``problem`` from ``gen``."""
    t = data.t.to(device, dtype)
    obs = data.obs.to(device, dtype)
    if problem == "demo":
        offsets = torch.arange(DEMO_BATCH_TIME, device=device)[:, None]

        def demo_batch() -> Batch:
            starts = demo_starts(len(t), gen, batch_time=DEMO_BATCH_TIME).to(device)
            target = obs[starts[None, :] + offsets]
            return target[0], t[:DEMO_BATCH_TIME], target

        return demo_batch

    def segment_batch() -> Batch:
        index = example_segment(data.t, gen).to(device)
        target = obs[index]
        return target[0], t[index], target

    return segment_batch


def _train_variant(
    recorder: UnitContext,
    config: Config,
    problem: str,
    mode: str,
    solver: str,
    seed: int,
    data: Trajectory,
    device: torch.device,
) -> None:
    """One unit: train ``problem`` with ``mode`` and ``solver`` from ``seed``, recording as it goes."""
    seed_everything(seed)
    variant = variant_name(problem, mode, solver)
    dtype = getattr(torch, config.dtype)
    model = make_model(problem, dtype).to(device)
    if problem == "demo":
        optimizer: torch.optim.Optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    criterion = nn.functional.l1_loss if problem == "demo" else nn.functional.mse_loss
    solve = odeint_adjoint if mode == "adjoint" else odeint
    kwargs = _solver_kwargs(config, problem, solver)
    sample = _sampler(problem, data, generator(seed, BATCH_STREAM), dtype, device)
    steps = config.steps(problem)
    checkpoints, snapshots = _checkpoints(config, steps)
    window: dict[str, list[float]] = defaultdict(list)
    for step in range(steps + 1):
        if step in checkpoints:
            _evaluate(recorder, variant, seed, step, model, data, config, kwargs, step in snapshots)
        if step == steps:
            break
        with Timer(device) as timer, solver_stats() as stats:
            y0, t, target = sample()
            loss = criterion(solve(model, y0, t, **kwargs), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        window["loss"].append(float(loss.detach()))
        window["nfe_forward"].append(stats.nfe_forward)
        if mode == "adjoint":
            window["nfe_backward"].append(stats.nfe_backward)
        window["time_step"].append(timer.seconds)
        if (step + 1) % config.log_every == 0 or step + 1 == steps:
            first = step + 1 - len(window["loss"])
            for metric, values in window.items():
                recorder.record(variant, seed, first, metric, statistics.fmean(values), UNITS[metric])
            window.clear()
        recorder.tick()


@functools.lru_cache(maxsize=8)
def _trajectory(problem: str, seed: int) -> Trajectory:
    """The data of ``problem`` and ``seed`` (deterministic; built once per process)."""
    return make_trajectory(problem, seed)


def plan(config: Config) -> list[UnitSpec]:
    """Per seed: one data unit per problem, then one unit per variant (ticks: training iterations)."""
    _check(config)
    variants = [(p, m, s) for p in config.problems for m in config.modes for s in config.solvers]
    specs = []
    for seed in config.seeds:
        for problem in config.problems:
            specs.append(UnitSpec(f"data/{problem}/seed={seed}", {"problem": problem, "seed": seed}, ticks=0))
        for problem, mode, solver in variants:
            params = {"problem": problem, "mode": mode, "solver": solver, "seed": seed}
            key = f"{variant_name(problem, mode, solver)}/seed={seed}"
            specs.append(UnitSpec(key, params, ticks=config.steps(problem)))
    return specs


def execute(spec: UnitSpec, unit: UnitContext) -> None:
    """Run one unit of :func:`plan`: record a problem's data, or train and evaluate one variant."""
    p = spec.params
    data = _trajectory(p["problem"], p["seed"])
    if "mode" not in p:
        _record_data(unit, data, p["seed"], unit.config)
    else:
        _train_variant(unit, unit.config, p["problem"], p["mode"], p["solver"], p["seed"], data, unit.device)
