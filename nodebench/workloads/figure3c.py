"""Figure 3c under the paper's solver: which choice makes the adjoint's backward pass cheaper than its
forward pass? A study over solver, tolerance and backward error norm. See :data:`PROTOCOL`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nodebench import odeint_adjoint, solver_stats
from nodebench.models.mnist import ODEBlock, odenet
from nodebench.units import UnitContext, UnitSpec
from nodebench.workloads import _demo_training as demo
from nodebench.workloads import mnist as mnist_workload
from nodebench.workloads.base import seed_everything

NAME = "figure3c"
#: Each solver of the study: nodebench's method name and its options. ``lsoda`` is scipy's LSODA, whose
#: non-stiff mode is LSODE's implicit Adams, the paper's solver; a banded Jacobian of width 0 keeps its
#: stiff mode's work array O(N) (a full one is N x N, 1.3 TB for the MNIST block's 401,408 entries).
SOLVERS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "dopri5": ("dopri5", None),
    "adams": ("adams", None),
    "lsoda": ("scipy_solver", {"solver": "LSODA", "lband": 0, "uband": 0}),
}
NORMS = ("full", "seminorm")
MODELS = ("spiral", "mnist")

PROTOCOL = """\
## Figure 3c under the paper's solver (workload `figure3c`)

The paper: the adjoint's backward pass costs "roughly half" the forward pass's evaluations, measured
on its MNIST ODE-Net solved by LSODE's implicit Adams through scipy, at a tolerance it does not state.
This study varies what could make that so, one cell per combination, every cell trained from the same
seed (same initial weights, same batches):

- solver (`solvers`): `dopri5`; `adams` (nodebench's variable-order Adams); `lsoda` (scipy's LSODA via
  `method="scipy_solver"`, both directions of the adjoint; its non-stiff mode is LSODE's Adams; its
  Jacobian, used only if it switches to its stiff mode, declared banded of width 0 so that its work
  array stays O(N) on the MNIST block; under the seminorm the parameter channels are out of its error
  test);
- tolerance (`tolerances`): rtol = atol for the forward and the backward solve;
- error norm of the backward solve (`norms`): `full` (the adjoint state and the parameter-gradient
  channels, torchdiffeq's default and the paper's era) or `seminorm` (the state and adjoint only,
  Kidger, Chen & Lyons 2021);
- model (`model`): `spiral`, torchdiffeq's spiral-demo network on its demo data (RMSprop, lr 1e-3,
  batches of 20 windows of `spiral_span` data intervals, L1 loss on each window's last point: one
  output time, as in MNIST, so the backward solve has nothing to land on midway), or `mnist`, the
  paper's ODE-Net (SGD, lr 0.1, momentum 0.9, batch 128, random crops, the mnist workload's data order
  for the seed).

Each cell trains `iterations` iterations with `odeint_adjoint` and records, for every `nfe_every`-th
iteration, the counts of that iteration under each counting convention a library might use:
`nfe_forward` and `nfe_backward` (evaluations of the dynamics as nodebench's solver counts them: in the
backward pass one evaluation of the augmented dynamics, a call of the network and one vector-Jacobian
product through it), `f_forward` and `f_backward` (calls of the network's function), `vjp_backward`
(vector-Jacobian products through it), and `time_forward`, `time_backward` (wall seconds of the
iteration's forward and backward pass, one torch thread) and `loss`. Variants
`<model>/<solver>/<norm>/tol=<tol>`, step = iteration (from 0).
"""


@dataclass(frozen=True)
class Config:
    """A Figure 3c study.

    Attributes:
        seeds: one set of cells per seed (initial weights and batches).
        model: ``"spiral"`` (the spiral-demo network) or ``"mnist"`` (the paper's ODE-Net).
        solvers: names of :data:`SOLVERS`.
        tolerances: rtol = atol of both solves.
        norms: backward error norms, a subset of :data:`NORMS`.
        iterations: training iterations per cell (an MNIST epoch is 468).
        nfe_every: record the counts of every this many iterations (the others train all the same).
        spiral_span: the spiral cells' window, in data intervals (the demo's is 9): the loss sees the
            window's last point only.
        dtype: the model's dtype (``float32`` as in training).
        threads: torch intra-op threads.
    """

    seeds: tuple[int, ...] = (0,)
    model: str = "mnist"
    solvers: tuple[str, ...] = tuple(SOLVERS)
    tolerances: tuple[float, ...] = (1e-3, 1e-5, 1e-7)
    norms: tuple[str, ...] = NORMS
    iterations: int = 468
    nfe_every: int = 1
    spiral_span: int = 100
    dtype: str = "float32"
    threads: int = 1

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        unknown = sorted(set(self.solvers) - set(SOLVERS)) + sorted(set(self.norms) - set(NORMS))
        if unknown or not self.solvers or not self.norms or not self.tolerances:
            raise ValueError(
                f"solvers and norms must be non-empty subsets of {tuple(SOLVERS)} and {NORMS}, and "
                f"tolerances non-empty; got {self.solvers}, {self.norms}, {self.tolerances}"
            )
        if any(not tol > 0 for tol in self.tolerances):
            raise ValueError(f"tolerances must be positive, got {self.tolerances}")
        if min(self.iterations, self.nfe_every, self.threads, self.spiral_span) < 1:
            raise ValueError("iterations, nfe_every, threads and spiral_span must be positive")


#: The MNIST cells' tolerances. At 1e-7, float32's epsilon, a first iteration took LSODA 2,275 and adams
#: 1,409 forward evaluations against dopri5's 308 (float64: 2,325, 1,461 and 308; runs `...T225851Z`
#: and `...T231331Z`, preset labels `standard+...`): minutes per iteration, beyond this study's budget.
MNIST_TOLERANCES = (1e-3, 1e-4, 1e-5)

PRESETS: dict[str, Config] = {
    "smoke": Config(model="spiral", tolerances=(1e-3, 1e-5), iterations=3),
    # the spiral-demo model first: cheap, and it sizes the MNIST cells
    "spiral": Config(model="spiral", iterations=200, nfe_every=5),
    # the MNIST ODE-Net: the first 20 iterations of the first epoch per cell, every one recorded (18
    # cells; a first iteration at 1e-5 took dopri5 9 s, adams 19 s, LSODA 42 s beside other load)
    "standard": Config(tolerances=MNIST_TOLERANCES, iterations=20),
    # one whole epoch per cell, as the study was specified
    "paper": Config(tolerances=MNIST_TOLERANCES),
}


class _CountVJP(torch.autograd.Function):
    """Identity whose backward counts one vector-Jacobian product through the function it wraps."""

    @staticmethod
    def forward(ctx: Any, counts: dict[str, int], x: torch.Tensor) -> torch.Tensor:
        ctx.counts = counts
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        ctx.counts["vjp_backward"] += 1
        return None, grad


class Counted(nn.Module):
    """``func`` with its calls counted per phase and the vector-Jacobian products through it counted.

    Attributes:
        counts: ``f_forward``, ``f_backward``, ``vjp_backward``, reset by :meth:`reset`.
        phase: ``"forward"`` or ``"backward"``: which count a call goes to.
    """

    def __init__(self, func: nn.Module) -> None:
        super().__init__()
        self.func = func
        self.phase = "forward"
        self.counts = {"f_forward": 0, "f_backward": 0, "vjp_backward": 0}

    def reset(self) -> None:
        self.phase = "forward"
        self.counts.update(dict.fromkeys(self.counts, 0))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.counts[f"f_{self.phase}"] += 1
        out = self.func(t, y)
        return _CountVJP.apply(self.counts, out) if torch.is_grad_enabled() else out


def _solve(solver: str, tol: float, norm: str) -> dict[str, Any]:
    """``odeint_adjoint``'s solver arguments for one cell."""
    method, options = SOLVERS[solver]
    return {"method": method, "options": options, "rtol": tol, "atol": tol, "adjoint_norm": norm}


class _SpiralCell:
    """The spiral-demo network trained with the adjoint (its demo protocol otherwise)."""

    def __init__(self, config: Config, seed: int, kwargs: dict[str, Any], device: torch.device) -> None:
        dtype = getattr(torch, config.dtype)
        self.data = demo.make_data(dtype=dtype, device=device)
        seed_everything(seed)
        self.func = Counted(demo.DemoModel().to(device, dtype))
        self.optimizer = torch.optim.RMSprop(self.func.parameters(), lr=1e-3)
        self.generator = torch.Generator().manual_seed(seed)
        self.kwargs = kwargs
        self.span = config.spiral_span

    def forward(self) -> torch.Tensor:
        y0, t, y = demo.get_batch(self.data, 20, self.span + 1, self.generator)
        params = tuple(self.func.parameters())
        pred = odeint_adjoint(self.func, y0, t[[0, -1]], adjoint_params=params, **self.kwargs)
        return (pred[-1] - y[-1]).abs().mean()


class _MnistCell:
    """The paper's ODE-Net trained with the adjoint on the paper's protocol (SGD, lr 0.1, batch 128)."""

    def __init__(self, config: Config, seed: int, kwargs: dict[str, Any], device: torch.device) -> None:
        cfg = mnist_workload.PRESETS["paper"]
        data = mnist_workload.load_data(cfg, device)
        seed_everything(seed)
        self.dtype = getattr(torch, config.dtype)
        self.model = odenet(**kwargs).to(device, self.dtype)
        (block,) = (m for m in self.model.modules() if isinstance(m, ODEBlock))
        block.func = self.func = Counted(block.func)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        self.batches = mnist_workload.train_batches(
            *data["train"], cfg, mnist_workload.epoch_generator(seed, 0)
        )

    def forward(self) -> torch.Tensor:
        x, y = next(self.batches)
        self.model.train()
        return F.cross_entropy(self.model(x.to(self.dtype)), y)


def _cell(spec: UnitSpec, unit: UnitContext) -> None:
    config = unit.config
    p = spec.params
    kwargs = _solve(p["solver"], p["tol"], p["norm"])
    cell = (_SpiralCell if config.model == "spiral" else _MnistCell)(config, p["seed"], kwargs, unit.device)
    variant = f"{config.model}/{p['solver']}/{p['norm']}/tol={p['tol']:.0e}"
    for iteration in range(config.iterations):
        cell.func.reset()
        cell.optimizer.zero_grad(set_to_none=True)
        with solver_stats() as stats:
            started = time.perf_counter()
            loss = cell.forward()
            forward_s = time.perf_counter() - started
            cell.func.phase = "backward"
            started = time.perf_counter()
            loss.backward()
            backward_s = time.perf_counter() - started
        cell.optimizer.step()
        if iteration % config.nfe_every == 0:
            values = {
                "nfe_forward": stats.nfe_forward,
                "nfe_backward": stats.nfe_backward,
                **cell.func.counts,
                "time_forward": forward_s,
                "time_backward": backward_s,
                "loss": loss.item(),
            }
            for metric, value in values.items():
                unit.record(
                    variant, p["seed"], iteration, metric, value, "s" if metric.startswith("time") else ""
                )
        unit.tick()


def preflight(config: Config, device: torch.device) -> str | None:
    """MNIST cells need the data (the spiral cells do not)."""
    return mnist_workload.preflight(config, device) if config.model == "mnist" else None


def plan(config: Config) -> list[UnitSpec]:
    """One unit per (seed, solver, tolerance, norm): a cell trained from the seed."""
    return [
        UnitSpec(
            f"{solver}/{norm}/tol={tol:.0e}/seed={seed}",
            {"seed": seed, "solver": solver, "tol": tol, "norm": norm},
            ticks=config.iterations,
        )
        for seed in config.seeds
        for solver in config.solvers
        for tol in config.tolerances
        for norm in config.norms
    ]


def execute(spec: UnitSpec, unit: UnitContext) -> None:
    """Train one cell and record its counts."""
    _cell(spec, unit)
