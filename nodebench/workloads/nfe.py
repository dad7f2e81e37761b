"""Forward and backward NFE of the adjoint, seminorm and full norm (paper Fig. 3c). See :data:`PROTOCOL`."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from dataclasses import dataclass

import torch

from nodebench.reference.torchdiffeq_adapter import LIBRARIES, NORMS, CountingFunc, has_method, integrate
from nodebench.units import UnitContext, UnitSpec
from nodebench.workloads import _demo_training as demo
from nodebench.workloads.base import check_adaptive_methods, dtype_of, seed_everything

NAME = "nfe"
#: Under ``--executor ray`` the units run one at a time on one node holding all its CPUs: their
#: timings are compared across units, so they must come from one machine with nothing beside them.
RAY_PLACEMENT = "serial"

PROTOCOL = """\
## Adjoint NFE, forward against backward (paper Fig. 3c: backward roughly half of forward)

- Spiral (**ours**; the paper used MNIST): torchdiffeq's spiral demo network trained from the seed
  (RMSprop lr 1e-3, batches of 20 x 10 points, L1 loss, `nodebench.odeint` dopri5 at rtol 1e-7,
  atol 1e-9, float32) with its weights kept at iterations 0, k, 2k, ... (`checkpoint_every`).
- At every checkpoint, each library's `odeint_adjoint` with each of `methods` (dopri5 by default;
  `adams`, nodebench's variable-order Adams, only in nodebench: torchdiffeq has no adaptive Adams),
  rtol = atol = tol, adjoint tolerances equal, with `adjoint_norm` seminorm and full solves a fixed
  batch (from the seed) of `eval_batch` points of the truth over `eval_span` data intervals
  (t in [0, eval_span * 25/999]) in `eval_dtype`; loss = L1 error of the final states; one backward
  pass. torchdiffeq's seminorm is `adjoint_options={"norm": "seminorm"}`, which keeps the dL/dt
  channel in the norm (nodebench's does not); the spiral model is autonomous, so the two coincide there.
- MNIST ODE block at initialisation (`ode_block_func(64)` from the seed, float32, input N(0, 1) of shape
  `mnist_batch` x 64 x 7 x 7, t in [0, 1], loss = sum of the final state), each of `methods` at
  `mnist_tol`, both libraries (where they have the method) and norms. Its function depends on t, so
  there torchdiffeq's seminorm controls one more channel than nodebench's.
- NFE are counted by wrapping the function for both libraries alike.
- Records: variant `<library>/<norm>/tol=<tol>` (spiral; step = training iteration) and
  `mnist_block/<library>/<norm>/tol=<tol>` (step 0) for dopri5; other methods insert their name after
  the library (`nodebench/adams/seminorm/tol=1e-05`); metrics `nfe_forward`, `nfe_backward`,
  `nfe_ratio` (backward / forward). Training: variant `train`, metric `loss_l1`.
"""


@dataclass(frozen=True)
class Config:
    """Adjoint-NFE settings.

    Attributes:
        seeds: one training run (and MNIST block) per seed.
        tolerances: rtol = atol values for the spiral.
        norms: subset of ``("seminorm", "full")``.
        libraries: subset of ``("nodebench", "torchdiffeq")``.
        methods: adaptive methods of the adjoint's forward and backward solves; a library that lacks
            one (torchdiffeq: ``adams``) is left out for it.
        train_iterations: RMSprop steps; checkpoints every ``checkpoint_every`` from 0.
        checkpoint_every: iterations between checkpoints.
        log_every: record the training loss every this many iterations.
        eval_batch: spiral evaluation batch size.
        eval_span: data intervals from a batch point to its target.
        eval_dtype: ``"float64"`` or ``"float32"`` for the spiral evaluation.
        mnist_batch: batch of the MNIST ODE block (0 leaves it out).
        mnist_tol: rtol = atol of the MNIST ODE block.
    """

    seeds: tuple[int, ...] = (0,)
    tolerances: tuple[float, ...] = (1e-3, 1e-5, 1e-7)
    norms: tuple[str, ...] = NORMS
    libraries: tuple[str, ...] = LIBRARIES
    methods: tuple[str, ...] = ("dopri5",)
    train_iterations: int = 500
    checkpoint_every: int = 100
    log_every: int = 10
    eval_batch: int = 20
    eval_span: int = 100
    eval_dtype: str = "float64"
    mnist_batch: int = 128
    mnist_tol: float = 1e-3


PRESETS = {
    "smoke": Config(
        tolerances=(1e-3, 1e-5),
        methods=("dopri5", "adams"),
        train_iterations=10,
        checkpoint_every=5,
        mnist_batch=2,
    ),
    # the paper's solver family (nodebench's adams) beside both libraries' dopri5
    "standard": Config(methods=("dopri5", "adams")),
    "paper": Config(
        seeds=(0, 1, 2),
        tolerances=(1e-3, 1e-4, 1e-5, 1e-6, 1e-7),
        train_iterations=2000,
        checkpoint_every=250,
    ),
}


def _tag(tol: float) -> str:
    return f"tol={tol:.0e}"


def variant_name(library: str, method: str, norm: str, tol: float, problem: str = "") -> str:
    """``[mnist_block/]<library>[/<method>]/<norm>/tol=<tol>``; dopri5 (the first protocol) unnamed."""
    parts = [problem] if problem else []
    parts += [library] + ([method] if method != "dopri5" else []) + [norm, _tag(tol)]
    return "/".join(parts)


def _checkpoints_name(seed: int) -> str:
    return f"spiral-checkpoints-seed{seed}.pt"


def _train(config: Config, recorder: UnitContext, seed: int, data: demo.DemoData) -> None:
    """Train one model and save its weights at every checkpoint iteration."""
    seed_everything(seed)
    model = demo.DemoModel().to(data.y.device, data.y.dtype)
    generator = torch.Generator().manual_seed(seed)
    states = {0: {k: v.clone() for k, v in model.state_dict().items()}}

    def on_iteration(i: int, loss: float) -> None:
        if i % config.log_every == 0 or i == config.train_iterations:
            recorder.record("train", seed, i, "loss_l1", loss)
        if i % config.checkpoint_every == 0:
            states[i] = {k: v.clone() for k, v in model.state_dict().items()}

    demo.train(model, data, config.train_iterations, generator, on_iteration=on_iteration)
    buffer = io.BytesIO()
    torch.save(states, buffer)
    recorder.save(_checkpoints_name(seed), buffer.getvalue())


def _adjoint_nfe(
    library: str,
    func: torch.nn.Module,
    y0: torch.Tensor,
    t: torch.Tensor,
    tol: float,
    norm: str,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    method: str = "dopri5",
) -> tuple[int, int]:
    """One adjoint forward and backward pass; returns ``(nfe_forward, nfe_backward)``."""
    counted = CountingFunc(func)
    y = integrate(library, counted, y0, t, method, tol, tol, adjoint=True, adjoint_norm=norm)
    loss = loss_fn(y[-1])
    counted.phase = "backward"
    loss.backward()
    func.zero_grad(set_to_none=True)
    return counted.counts["nfe_forward"], counted.counts["nfe_backward"]


def _record(recorder: UnitContext, variant: str, seed: int, step: int, nfe: tuple[int, int]) -> None:
    forward, backward = nfe
    recorder.record(variant, seed, step, "nfe_forward", forward)
    recorder.record(variant, seed, step, "nfe_backward", backward)
    recorder.record(variant, seed, step, "nfe_ratio", backward / forward)


def _spiral(config: Config, recorder: UnitContext, seed: int, library: str, data: demo.DemoData) -> None:
    """Adjoint NFE at every checkpoint, tolerance and norm for one library."""
    seed_everything(seed)
    dtype = dtype_of(config.eval_dtype)
    device = data.y.device
    saved = recorder.input(_checkpoints_name(seed))
    states = torch.load(io.BytesIO(saved), map_location=device, weights_only=True)
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randperm(len(data.t) - config.eval_span, generator=generator)[: config.eval_batch]
    starts = starts.to(device)
    y0, target = data.y[starts].to(dtype), data.y[starts + config.eval_span].to(dtype)
    t = data.t[[0, config.eval_span]].to(dtype)
    model = demo.DemoModel().to(device=device, dtype=dtype)
    methods = [m for m in config.methods if has_method(library, m)]
    for iteration, state in sorted(states.items()):
        model.load_state_dict(state)
        for method in methods:
            for tol in config.tolerances:
                for norm in config.norms:
                    nfe = _adjoint_nfe(
                        library,
                        model,
                        y0,
                        t,
                        tol,
                        norm,
                        lambda y, target=target: (y - target).abs().mean(),
                        method,
                    )
                    _record(recorder, variant_name(library, method, norm, tol), seed, iteration, nfe)


def _mnist_block(
    config: Config, recorder: UnitContext, seed: int, library: str, device: torch.device
) -> None:
    """Adjoint NFE of the MNIST ODE block at initialisation for one library, both norms."""
    from nodebench.models.mnist import ode_block_func

    seed_everything(seed)
    func = ode_block_func(64).to(device, torch.float32)
    x = torch.randn(config.mnist_batch, 64, 7, 7, device=device, dtype=torch.float32)
    t = torch.tensor([0.0, 1.0], device=device, dtype=torch.float32)
    for method in [m for m in config.methods if has_method(library, m)]:
        for norm in config.norms:
            nfe = _adjoint_nfe(library, func, x, t, config.mnist_tol, norm, torch.sum, method)
            name = variant_name(library, method, norm, config.mnist_tol, problem="mnist_block")
            _record(recorder, name, seed, 0, nfe)


@functools.lru_cache(maxsize=2)
def _data(device: torch.device) -> demo.DemoData:
    """The demo's true trajectory on ``device`` (deterministic; built once per process)."""
    return demo.make_data(device=device)


def plan(config: Config) -> list[UnitSpec]:
    """Per seed: train, then per library the spiral counts (from the training's checkpoints), MNIST block."""
    unknown = sorted(set(config.libraries) - set(LIBRARIES)) + sorted(set(config.norms) - set(NORMS))
    if unknown:
        raise ValueError(f"unknown libraries or norms {unknown}; known: {LIBRARIES}, {NORMS}")
    check_adaptive_methods(config.methods)
    if config.checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be positive, got {config.checkpoint_every}")
    specs = []
    for seed in config.seeds:
        train = f"train/seed={seed}"
        specs.append(UnitSpec(train, {"part": "train", "seed": seed}))
        for library in config.libraries:
            params = {"part": "spiral", "seed": seed, "library": library}
            specs.append(UnitSpec(f"spiral/{library}/seed={seed}", params, depends_on=(train,)))
            if config.mnist_batch > 0:
                params = {"part": "mnist_block", "seed": seed, "library": library}
                specs.append(UnitSpec(f"mnist_block/{library}/seed={seed}", params))
    return specs


def execute(spec: UnitSpec, unit: UnitContext) -> None:
    """Run one unit of :func:`plan`."""
    p, config = spec.params, unit.config
    if p["part"] == "train":
        _train(config, unit, p["seed"], _data(unit.device))
    elif p["part"] == "spiral":
        _spiral(config, unit, p["seed"], p["library"], _data(unit.device))
    else:
        _mnist_block(config, unit, p["seed"], p["library"], unit.device)
