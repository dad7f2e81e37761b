"""Memory against depth: the adjoint's O(1) against O(L) for direct backpropagation and a ResNet.

One forward and backward pass per (mode, L), each in a fresh process (:func:`run_in_fresh_process`),
so that peak RSS belongs to that pass alone. See :data:`PROTOCOL`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import psutil
import torch
from torch import nn

from nodebench.measure import (
    SavedTensorsMeter,
    Timer,
    cuda_peak_bytes,
    reset_cuda_peak,
    run_in_fresh_process,
)
from nodebench.reference.torchdiffeq_adapter import CountingFunc, integrate
from nodebench.units import UnitContext, UnitSpec
from nodebench.workloads.base import seed_everything

NAME = "memory"
#: Under ``--executor ray`` the units run one at a time on one node holding all its CPUs: their
#: timings are compared across units, so they must come from one machine with nothing beside them.
RAY_PLACEMENT = "serial"
MODES = ("nodebench-direct", "nodebench-adjoint", "torchdiffeq-direct", "torchdiffeq-adjoint", "resnet")
#: Bytes saved for backward per rk4 step of direct backpropagation, in units of the state's bytes
#: (measured: about 28.4 at 64x7x7, both libraries); the preflight uses a margin above it.
_STATES_PER_STEP = 40

PROTOCOL = """\
## Memory against depth (paper Table 1: ODE-Net O(1), RK-Net O(L~), ResNet O(L))

- State: the MNIST ODE block's 64-channel 7x7 feature map (`nodebench.models.mnist.ode_block_func`),
  a batch of N(0, 1) inputs (no data needed); loss = sum of the final state; gradients to the parameters.
- Modes: `nodebench-direct` (`nodebench.odeint`, backprop through rk4 = RK-Net), `nodebench-adjoint`
  (`nodebench.odeint_adjoint`, Algorithm 1, seminorm), `torchdiffeq-direct`, `torchdiffeq-adjoint`
  (torchdiffeq 0.2.5, seminorm), and `resnet` (L residual blocks `ResBlock(64)`, plain backprop).
- ODE modes: fixed-grid rk4 on t in [0, 1], step 1/L, so L steps and 4L evaluations.
- Each (mode, L) runs in a fresh Python process (**ours**): the first forward+backward pass is metered
  (saved-for-backward bytes with `SavedTensorsMeter` around the forward, CUDA peak on GPU), then
  `repeats` more passes are timed and the median recorded. Peak RSS growth is the process's high-water
  mark over the call minus its RSS before the call (allocator caching included).
- On CUDA the RSS growth includes the CUDA context, created inside the call; use the CUDA peak there.
- The CUDA peak counts cuBLAS's workspace, which torch takes from its caching allocator once per
  thread's handle (its size set by `CUBLAS_WORKSPACE_CONFIG`). nodebench's
  adjoint sums fixed-grid stages with `torch.mv` (cuBLAS) outside autograd, in the forward thread and
  in autograd's backward thread: a constant in L that direct backprop (elementwise sums, convolutions
  only) and torchdiffeq's adjoint do not pay. `python -m benchmarks.cuda_memory_probe` measures the
  peak with that workspace turned off and lists the blocks alive at the peak.
- Records: variant = mode, step = L; metrics `saved_bytes`, `saved_tensors`, `rss_growth`,
  `cuda_peak` (GPU only), `time_fwd_bwd`, `nfe_forward`, `nfe_backward` (ODE modes).
"""


@dataclass(frozen=True)
class Config:
    """Memory-against-depth settings.

    Attributes:
        seeds: seeds of the model and input (one fresh process per seed, mode and L).
        modes: subset of :data:`MODES`.
        steps: the depths L (rk4 steps over [0, 1], or residual blocks).
        batch: batch size.
        channels: channels of the state.
        size: spatial size of the state (7 for MNIST after downsampling).
        repeats: timed passes after the metered one (the median is recorded).
        timeout_s: seconds allowed for one fresh process.
    """

    seeds: tuple[int, ...] = (0,)
    modes: tuple[str, ...] = MODES
    steps: tuple[int, ...] = (5, 10, 20, 40, 80, 160)
    batch: int = 32
    channels: int = 64
    size: int = 7
    repeats: int = 2
    timeout_s: float = 1800.0


PRESETS = {
    # two modes only: every (mode, L) pays a fresh interpreter's start (~3 s here)
    "smoke": Config(modes=("nodebench-direct", "nodebench-adjoint"), steps=(2, 4, 8), batch=2, repeats=1),
    "standard": Config(),
    "paper": Config(steps=(5, 10, 20, 40, 80, 160, 320), batch=128, repeats=5),
}


def _estimated_peak_bytes(config: Config) -> int:
    """A generous estimate of the largest pass's memory (direct modes at the largest L)."""
    state = config.batch * config.channels * config.size**2 * 4
    return _STATES_PER_STEP * state * max(config.steps)


def preflight(config: Config, device: torch.device) -> str | None:
    """Why the largest direct pass would not fit in memory now, or ``None``."""
    unknown = sorted(set(config.modes) - set(MODES))
    if unknown:
        return f"unknown modes {unknown}; known: {MODES}"
    need = _estimated_peak_bytes(config)
    if torch.device(device).type == "cuda":
        have = torch.cuda.mem_get_info(device)[0] if torch.cuda.is_available() else 0
    else:
        have = psutil.virtual_memory().available
    if need > have:
        return f"the largest direct pass needs about {need / 2**30:.1f} GiB; {have / 2**30:.1f} GiB is free"
    return None


def _model(mode: str, steps: int, channels: int, device: torch.device) -> nn.Module:
    from nodebench.models.mnist import ResBlock, ode_block_func

    if mode == "resnet":
        return nn.Sequential(*(ResBlock(channels) for _ in range(steps))).to(device, torch.float32)
    return CountingFunc(ode_block_func(channels)).to(device, torch.float32)


def measure(
    mode: str, steps: int, batch: int, channels: int, size: int, seed: int, device: str, repeats: int
) -> dict[str, float]:
    """One metered forward+backward pass, then ``repeats`` timed ones (run in a fresh process).

    Returns:
        ``saved_bytes``, ``saved_tensors``, ``time_fwd_bwd`` (median of the timed passes), and where they
        apply ``cuda_peak``, ``nfe_forward``, ``nfe_backward`` (of the metered pass).
    """
    dev = torch.device(device)
    seed_everything(seed)
    model = _model(mode, steps, channels, dev)
    x = torch.randn(batch, channels, size, size, device=dev, dtype=torch.float32)
    library, _, kind = mode.partition("-")
    t = torch.tensor([0.0, 1.0], device=dev, dtype=torch.float32)

    def forward() -> torch.Tensor:
        if mode == "resnet":
            return model(x).sum()
        options = {"step_size": 1.0 / steps}
        return integrate(library, model, x, t, "rk4", options=options, adjoint=kind == "adjoint")[-1].sum()

    def step() -> None:
        model.zero_grad(set_to_none=True)
        forward().backward()

    reset_cuda_peak(dev)
    with SavedTensorsMeter() as meter:
        loss = forward()
    if isinstance(model, CountingFunc):
        model.phase = "backward"
    loss.backward()
    result: dict[str, float] = {"saved_bytes": meter.bytes, "saved_tensors": meter.count}
    peak = cuda_peak_bytes(dev)
    if peak is not None:
        result["cuda_peak"] = peak
    if isinstance(model, CountingFunc):
        result.update(model.counts)
        model.phase = "forward"
    del loss
    times = []
    for _ in range(repeats):
        with Timer(dev) as timer:
            step()
        times.append(timer.seconds)
    result["time_fwd_bwd"] = statistics.median(times)
    return result


_UNITS = {
    "saved_bytes": "bytes",
    "saved_tensors": "",
    "cuda_peak": "bytes",
    "time_fwd_bwd": "s",
    "nfe_forward": "",
    "nfe_backward": "",
}


def plan(config: Config) -> list[UnitSpec]:
    """One unit per (seed, mode, L), each measured in its own fresh process."""
    unknown = sorted(set(config.modes) - set(MODES))
    if unknown:
        raise ValueError(f"unknown modes {unknown}; known: {MODES}")
    if config.repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {config.repeats}")
    return [
        UnitSpec(f"{mode}/L={steps}/seed={seed}", {"seed": seed, "mode": mode, "steps": steps})
        for seed in config.seeds
        for mode in config.modes
        for steps in config.steps
    ]


def execute(spec: UnitSpec, unit: UnitContext) -> None:
    """Measure one (seed, mode, L) in a fresh process and record it."""
    config, device = unit.config, unit.device
    reason = preflight(config, device)
    if reason is not None:
        raise RuntimeError(f"memory: {reason}")
    seed, mode, steps = spec.params["seed"], spec.params["mode"], spec.params["steps"]
    kwargs = {
        "mode": mode,
        "steps": steps,
        "batch": config.batch,
        "channels": config.channels,
        "size": config.size,
        "seed": seed,
        "device": str(device),
        "repeats": config.repeats,
    }
    fresh = run_in_fresh_process(f"{__name__}:measure", kwargs, timeout=config.timeout_s)
    for metric, value in fresh.result.items():
        unit.record(mode, seed, steps, metric, value, _UNITS[metric])
    unit.record(mode, seed, steps, "rss_growth", fresh.rss_growth_bytes, "bytes")
    unit.record(mode, seed, steps, "peak_rss", fresh.peak_rss_bytes, "bytes")
