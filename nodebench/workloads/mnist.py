"""MNIST classification (paper Table 1, Figure 3c/3d): ODE-Net, RK-Net, ResNet and a 1-layer MLP.

Each model is trained with SGD and evaluated on the 10,000 test images after every epoch. One unit of
work is one (model, seed, epoch); every epoch ends with a checkpoint (model, optimizer, scheduler and
RNG states), so a stopped run resumes at the next epoch and reproduces an uninterrupted run exactly
(timings and memory aside): the data order and crop offsets of an epoch come from a generator seeded
by (seed, epoch) alone.

The training images stay in memory as uint8; each batch is indexed, randomly cropped and converted
to float on the fly: 3.6 ms per batch of 128 against 0.9 s for a ResNet step (one thread, shared
2-core machine), so DataLoader workers could save at most 0.4% of a conv model's epoch (the MLP's
whole epoch is seconds) while taking a core from the model; none are used.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nodebench import solver_stats
from nodebench.data.mnist import CHECKSUMS, data_root, load_mnist, verify_mnist
from nodebench.measure import Timer, cuda_peak_bytes, peak_rss_bytes, reset_cuda_peak, reset_peak_rss
from nodebench.models.mnist import build_model, count_parameters
from nodebench.schema.mnist import MODEL_NAMES
from nodebench.solvers import ADAPTIVE_METHODS
from nodebench.units import NO_STEP, UnitContext, UnitSpec
from nodebench.workloads.base import seed_everything

NAME = "mnist"
#: A unit's ``model`` is its records' variant (``odenet``, ``odenet/iterations``): one model's chain of
#: epochs is citable once finished, while other models of its seed still run (runner.finished_parts).
VARIANT_PARAM = "model"
MIB = 2.0**20
TRAIN_IMAGES = 60_000


@dataclass(frozen=True)
class Config:
    """One MNIST training protocol.

    Attributes:
        seeds: one training run per model and seed.
        models: names for :func:`nodebench.models.mnist.build_model`, trained in this order.
        epochs: training epochs.
        milestones: epochs at which the learning rate is multiplied by ``gamma``.
        gamma: learning-rate decay factor.
        lr: initial learning rate of SGD.
        momentum: SGD momentum.
        batch_size: training batch (incomplete last batches are dropped, as in torchdiffeq's example).
        test_batch_size: evaluation batch.
        crop_padding: zero padding of the random crop back to 28x28 (0: no augmentation).
        train_size: the first ``train_size`` training images (``None``: all 60,000).
        test_size: the first ``test_size`` test images (``None``: all 10,000).
        tol: rtol = atol of ODE-Net's solve.
        method: ODE-Net's adaptive method (forward and adjoint backward solve): ``dopri5`` as in
            torchdiffeq's example, or ``adams`` (variable-order Adams, the paper's solver family).
        nfe_every: also record ODE-Net's and RK-Net's forward and backward NFE of every this many
            training iterations (variant ``<model>/iterations``; 0: only the epoch means).
        rk_steps: RK4 steps of RK-Net over [0, 1].
        threads: torch intra-op threads while training. 1 by default: on the shared 2-core machine
            two threads made a ResNet step 2.6x and an ODE-Net step 2.5x slower than one (issue 6).
    """

    seeds: tuple[int, ...] = (0,)
    models: tuple[str, ...] = MODEL_NAMES
    epochs: int = 160
    milestones: tuple[int, ...] = (60, 100, 140)
    gamma: float = 0.1
    lr: float = 0.1
    momentum: float = 0.9
    batch_size: int = 128
    test_batch_size: int = 1000
    crop_padding: int = 4
    train_size: int | None = None
    test_size: int | None = None
    tol: float = 1e-3
    method: str = "dopri5"
    nfe_every: int = 0
    rk_steps: int = 6
    threads: int = 1

    def __post_init__(self) -> None:
        unknown = [name for name in self.models if name not in MODEL_NAMES]
        if unknown or not self.models:
            raise ValueError(f"models must be a non-empty subset of {MODEL_NAMES}, got {self.models}")
        if not self.seeds or any(seed < 0 for seed in self.seeds):
            raise ValueError(f"seeds must be non-negative integers, got {self.seeds}")
        if self.epochs < 1 or self.batch_size < 1 or self.test_batch_size < 1 or self.threads < 1:
            raise ValueError("epochs, batch_size, test_batch_size and threads must be positive")
        if self.method not in ADAPTIVE_METHODS:
            raise ValueError(f"method must be an adaptive method {ADAPTIVE_METHODS}, got {self.method!r}")
        if self.nfe_every < 0:
            raise ValueError(f"nfe_every must be >= 0, got {self.nfe_every}")
        if list(self.milestones) != sorted(set(self.milestones)) or any(m < 1 for m in self.milestones):
            raise ValueError(f"milestones must be strictly increasing positive epochs, got {self.milestones}")


#: The paper's schedule (torchdiffeq's examples/odenet_mnist.py): 160 epochs, decays at these epochs.
PAPER_EPOCHS = 160
PAPER_MILESTONES = (60, 100, 140)
#: Epochs of the ``budget`` preset: the three decays land on whole epochs (12, 20, 28), and the three
#: conv models' chains take about 8 CPU hours on this project's AMD EPYC (first epochs, one thread each,
#: two chains at once: ResNet ~200 s, RK-Net and ODE-Net ~250-330 s an epoch).
BUDGET_EPOCHS = 32


def budget_milestones(epochs: int) -> tuple[int, ...]:
    """The paper's decay epochs compressed to a budget of ``epochs`` (budget-aware training).

    Each decay keeps its fraction of training (60/160, 100/160, 140/160 of ``epochs``), rounded half up
    to a whole epoch, as in Li, Yumer & Ramanan (ICLR 2020): a schedule that decays within the budget
    recovers most of the full-budget accuracy, where the paper's early constant rate does not.

    Arguments:
        epochs: the budget, in epochs (at least 5, so that the three decays fall on distinct epochs
            before the last).

    Returns:
        The strictly increasing milestones, e.g. (6, 10, 14) for 16 and (3, 5, 7) for 8.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 5:
        raise ValueError(
            "epochs must be an integer >= 5 to place the paper's three decays within the budget, "
            f"got {epochs!r}"
        )
    fractions = (Fraction(m, PAPER_EPOCHS) for m in PAPER_MILESTONES)
    return tuple(int(f * epochs + Fraction(1, 2)) for f in fractions)


PRESETS: dict[str, Config] = {
    # a few hundred images, one short epoch per model: a plumbing check for tests and `make run`
    "smoke": Config(
        epochs=1, milestones=(), batch_size=64, train_size=256, test_size=256, test_batch_size=256
    ),
    # ours: 6 epochs, lr 0.1 for 3, 0.01 for 2, 0.001 for 1 (PROTOCOL). Measured on the shared 2-core
    # machine (1 thread, load ~5): ~64 min per epoch for all four models at ODE-Net's initial NFE,
    # ~72 min allowing its NFE to grow 20%; about 7 h in all
    "standard": Config(epochs=6, milestones=(3, 5)),
    # torchdiffeq's examples/odenet_mnist.py defaults
    "paper": Config(),
    # the paper's protocol for the 1-layer MLP alone (~4 s an epoch, ~11 min in all): its own run, so
    # that it does not wait behind the conv models' 80 CPU hours
    "paper-mlp": Config(models=("mlp",)),
    # the paper's protocol with its schedule compressed to BUDGET_EPOCHS epochs (decays at the same
    # fractions of training) for the three conv models: Table 1 on a CPU budget
    "budget": Config(
        models=("resnet", "rknet", "odenet"),
        epochs=BUDGET_EPOCHS,
        milestones=budget_milestones(BUDGET_EPOCHS),
    ),
    # Figure 3c/3d per training iteration: ODE-Net alone for one epoch (lr 0.1), NFE of every 4th
    # iteration, with dopri5 and with the paper's solver family (~15 min each on one core)
    "figure3": Config(models=("odenet",), epochs=1, milestones=(), nfe_every=4),
    "figure3-adams": Config(models=("odenet",), epochs=1, milestones=(), nfe_every=4, method="adams"),
}

PROTOCOL = """\
## MNIST (paper Table 1, Figure 3c/3d)

Models (architectures of torchdiffeq's `examples/odenet_mnist.py`): 1-layer MLP 784-300-10; ResNet
(downsampling, 6 residual blocks, head); RK-Net (the ODE block solved by fixed-step RK4, 6 steps,
backpropagated directly); ODE-Net (the ODE block on t in [0, 1], `method` dopri5 unless set, rtol = atol
= 1e-3, gradients by the adjoint method with nodebench's default seminorm for the backward error
control).

Training (all four models alike): SGD, momentum 0.9, cross-entropy; the learning rate `lr` is
multiplied by `gamma` at each of `milestones` (epochs); batches drawn without replacement in an order
seeded by (seed, epoch), incomplete last batch dropped; RandomCrop(28, padding `crop_padding`) on zero
padding; pixels scaled to [0, 1], no normalisation. Test error on the first `test_size` test images
(all 10,000 unless set), after every epoch, in eval mode.

Presets: `paper` is torchdiffeq's example protocol (160 epochs, lr 0.1 for batch 128, decay x0.1 at 60,
100, 140); `paper-mlp` is the same for the 1-layer MLP alone. `budget` keeps every choice of the paper's
protocol for ResNet, RK-Net and ODE-Net but compresses the schedule to 32 epochs, the three decays at
the same fractions of training (epochs 12, 20, 28): budget-aware training (Li, Yumer & Ramanan, ICLR
2020), which recovers most of a full schedule's accuracy where cutting the paper's schedule short (a
constant rate) does not. It is a budget run, not the paper's protocol. `standard` is ours, not the
paper's, to fit a few CPU hours: 6 epochs, lr 0.1 for 3 epochs, then 0.01 for 2 and 0.001 for 1 (the
paper's first two decays, moved to 50% and 83% of training; its third, to 1e-4, would get only part of
one epoch and is dropped). `smoke` trains on 256 images for one epoch and tests on 256: a plumbing
check, not a result. `figure3` trains ODE-Net alone for one epoch at lr 0.1 and records its NFE per
iteration (every `nfe_every`-th) for Figure 3c/3d; `figure3-adams` is the same with `method` adams, the
paper's solver family, beside dopri5.

Records per (model, seed, epoch): `train_loss` (mean over the epoch's batches), `test_error` (%),
`lr`, `epoch_time` (training only, s), `eval_time` (s), `test_time_per_image` (`eval_time` over the
test images, s), `peak_rss` (process peak RSS during the epoch's
training, MiB), `cuda_peak` (on CUDA, MiB), and for RK-Net and ODE-Net `nfe_forward` and `nfe_backward`
(function evaluations of the ODE block per training iteration, averaged over the epoch; direct
backpropagation makes no backward solve, so RK-Net's `nfe_backward` is 0); with `nfe_every` set, the
same two counts of single iterations under variant `<model>/iterations`, step = iteration counted from
the start of training. Per model and seed:
`params` (trainable parameters) and `final_test_error` (%, after the last epoch).
"""


def preflight(config: Config, device: torch.device) -> str | None:
    """Why the workload cannot run now (MNIST missing or corrupt, with the command to fix it), or None."""
    try:
        verify_mnist()
    except (OSError, ValueError) as exc:  # missing, corrupt, unreadable, or a cache root that is a file
        return str(exc)
    return None


# --------------------------------------------------------------------------------------------------
# Data


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The CPU generator behind one epoch's batch order and crops, seeded by ``(seed, epoch)`` only."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """RandomCrop(size, padding) of a batch: zero-pad each side, then cut a window at a random offset.

    Arguments:
        images: [B, H, W] (any dtype, any device).
        padding: pixels of zero padding on each side; 0 returns ``images``.
        generator: CPU generator for the offsets (uniform in 0..2*padding, as torchvision).

    Returns:
        [B, H, W], same dtype and device.
    """
    if padding == 0:
        return images
    batch, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (batch, 2), generator=generator).to(images.device)
    rows = offsets[:, :1] + torch.arange(height, device=images.device)
    cols = offsets[:, 1:] + torch.arange(width, device=images.device)
    index = torch.arange(batch, device=images.device)[:, None, None]
    return padded[index, rows[:, :, None], cols[:, None, :]]


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 28, 28] -> float32 [B, 1, 28, 28] in [0, 1] (as torchvision's ToTensor)."""
    return images.unsqueeze(1).to(torch.float32).div_(255.0)


def train_batches(
    images: torch.Tensor, labels: torch.Tensor, config: Config, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of shuffled, cropped training batches (float inputs, labels) on the data's device."""
    order = torch.randperm(len(images), generator=generator).to(images.device)
    for start in range(0, len(images) - config.batch_size + 1, config.batch_size):
        index = order[start : start + config.batch_size]
        yield to_input(random_crop(images[index], config.crop_padding, generator)), labels[index]


# --------------------------------------------------------------------------------------------------
# Training


def make_model(name: str, config: Config, device: torch.device) -> nn.Module:
    """The named model in float32 on ``device``, with the solver settings of ``config``."""
    kwargs: dict[str, Any] = {
        "odenet": {"method": config.method, "rtol": config.tol, "atol": config.tol},
        "rknet": {"steps": config.rk_steps},
    }.get(name, {})
    return build_model(name, **kwargs).to(device=device, dtype=torch.float32)


def make_optimizer(
    model: nn.Module, config: Config
) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.MultiStepLR]:
    """SGD with momentum and its step-decay schedule (stepped once per epoch)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(config.milestones), config.gamma)
    return optimizer, scheduler


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    """One SGD step on cross-entropy. Returns: the batch loss before the step."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> float:
    """Misclassified fraction of ``images`` in percent (eval mode, no gradients)."""
    model.eval()
    wrong = 0
    for start in range(0, len(images), batch_size):
        logits = model(to_input(images[start : start + batch_size]))
        wrong += int((logits.argmax(dim=1) != labels[start : start + batch_size]).sum())
    return 100.0 * wrong / len(images)


@dataclass
class _Trainer:
    """A model in training with its optimizer and schedule; the epochs it has completed."""

    model: nn.Module
    optimizer: torch.optim.SGD
    scheduler: torch.optim.lr_scheduler.MultiStepLR
    epochs_done: int


def _checkpoint_name(model: str, seed: int, epochs_done: int) -> str:
    """The checkpoint taken after ``epochs_done`` epochs."""
    return f"{model}-seed{seed}-epochs{epochs_done:03d}.pt"


def _new_trainer(name: str, seed: int, config: Config, device: torch.device) -> _Trainer:
    seed_everything(seed)
    model = make_model(name, config, device)
    return _Trainer(model, *make_optimizer(model, config), epochs_done=0)


def _save(trainer: _Trainer, device: torch.device) -> bytes:
    """The trainer's checkpoint (model, optimizer, schedule, RNG states) as bytes."""
    state = {
        "epochs_done": trainer.epochs_done,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _restore(name: str, data: bytes, config: Config, device: torch.device) -> _Trainer:
    """The trainer saved by :func:`_save`, RNG states restored."""
    state = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
    model = make_model(name, config, device)
    model.load_state_dict(state["model"])
    optimizer, scheduler = make_optimizer(model, config)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"].cpu())
    if state["cuda_rng"] is not None:
        torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
    return _Trainer(model, optimizer, scheduler, epochs_done=state["epochs_done"])


def _train_epoch(
    trainer: _Trainer,
    name: str,
    seed: int,
    data: dict[str, tuple[torch.Tensor, torch.Tensor]],
    config: Config,
    recorder: UnitContext,
    device: torch.device,
) -> None:
    """Train one epoch, evaluate, record the epoch's metrics (inside the caller's unit)."""
    epoch = trainer.epochs_done
    lr = trainer.optimizer.param_groups[0]["lr"]
    generator = epoch_generator(seed, epoch)
    reset_peak_rss()
    reset_cuda_peak(device)
    losses = []
    per_iteration = config.nfe_every > 0 and name in ("rknet", "odenet")
    with solver_stats() as stats, Timer(device) as train_timer:
        for x, y in train_batches(*data["train"], config, generator):
            before = (stats.nfe_forward, stats.nfe_backward)
            losses.append(train_step(trainer.model, trainer.optimizer, x, y))
            iteration = len(losses) - 1
            if per_iteration and iteration % config.nfe_every == 0:
                step = epoch * (len(data["train"][0]) // config.batch_size) + iteration
                forward, backward = stats.nfe_forward - before[0], stats.nfe_backward - before[1]
                recorder.record(f"{name}/iterations", seed, step, "nfe_forward", forward)
                recorder.record(f"{name}/iterations", seed, step, "nfe_backward", backward)
            recorder.tick()
    peak_rss, cuda_peak = peak_rss_bytes(), cuda_peak_bytes(device)
    trainer.scheduler.step()
    with Timer(device) as eval_timer:
        error = evaluate(trainer.model, *data["test"], config.test_batch_size)

    def record(metric: str, value: float, unit: str = "") -> None:
        recorder.record(name, seed, epoch, metric, value, unit)

    record("train_loss", sum(losses) / len(losses))
    record("test_error", error, "%")
    record("lr", lr)
    record("epoch_time", train_timer.seconds, "s")
    record("eval_time", eval_timer.seconds, "s")
    record("test_time_per_image", eval_timer.seconds / len(data["test"][0]), "s")
    record("peak_rss", peak_rss / MIB, "MiB")
    if cuda_peak is not None:
        record("cuda_peak", cuda_peak / MIB, "MiB")
    if name in ("rknet", "odenet"):
        record("nfe_forward", stats.nfe_forward / len(losses), "evals/iter")
        record("nfe_backward", stats.nfe_backward / len(losses), "evals/iter")
    trainer.epochs_done += 1
    if trainer.epochs_done == config.epochs:
        recorder.record(name, seed, NO_STEP, "final_test_error", error, "%")


def data_provenance(config: Config) -> dict[str, Any]:
    """The data's entry in ``meta.json``: the dataset's ``checksums.json`` (sha256 of the four IDX files,
    where they came from, when), which every load checks the files' bytes against."""
    path = data_root() / "mnist" / CHECKSUMS
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return {"dataset": "mnist", "checksums": str(path), "error": f"unreadable: {exc}"}
    return {"dataset": "mnist", "checksums": str(path), **record}


def load_data(config: Config, device: torch.device) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Train and test split (uint8 images, int64 labels), cut to the configured sizes, on ``device``.

    On CUDA the whole uint8 set is copied once through pinned memory; batches are then cut on the GPU.
    Loaded once per process (per data folder, sizes and device) and shared by the units run there;
    nothing writes to it.
    """
    return _load_data(data_root(), config.train_size, config.test_size, device)


@functools.lru_cache(maxsize=2)
def _load_data(
    root: Path, train_size: int | None, test_size: int | None, device: torch.device
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    data = {}
    for split, size in (("train", train_size), ("test", test_size)):
        images, labels = load_mnist(root, split=split)
        images, labels = images[:size], labels[:size]
        if device.type == "cuda":
            images, labels = (t.pin_memory().to(device, non_blocking=True) for t in (images, labels))
        data[split] = (images, labels)
    return data


def _batches(config: Config) -> int:
    """Training batches per epoch (the progress weight of an epoch)."""
    images = TRAIN_IMAGES if config.train_size is None else min(config.train_size, TRAIN_IMAGES)
    return images // config.batch_size


def plan(config: Config) -> list[UnitSpec]:
    """One unit per (model, seed, epoch); each epoch after the first takes the previous one's checkpoint."""
    if config.train_size is not None and config.train_size < config.batch_size:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {config.train_size} training images")
    specs = []
    for name in config.models:
        for seed in config.seeds:
            for epoch in range(config.epochs):
                key = f"{name}/seed={seed}/epoch={epoch}"
                previous = (f"{name}/seed={seed}/epoch={epoch - 1}",) if epoch > 0 else ()
                params = {"model": name, "seed": seed, "epoch": epoch}
                specs.append(
                    UnitSpec(key, params, previous, ticks=_batches(config), releases_inputs=epoch > 0)
                )
    return specs


def execute(spec: UnitSpec, unit: UnitContext) -> None:
    """Train and evaluate one epoch of one model and seed, from the previous epoch's checkpoint."""
    config, device = unit.config, unit.device
    name, seed, epoch = spec.params["model"], spec.params["seed"], spec.params["epoch"]
    data = load_data(config, device)
    if len(data["train"][0]) < config.batch_size:
        raise ValueError(
            f"batch_size {config.batch_size} exceeds the {len(data['train'][0])} training images"
        )
    if epoch == 0:
        trainer = _new_trainer(name, seed, config, device)
        unit.record(name, seed, NO_STEP, "params", count_parameters(trainer.model), "")
    else:
        trainer = _restore(name, unit.input(_checkpoint_name(name, seed, epoch)), config, device)
    _train_epoch(trainer, name, seed, data, config, unit, device)
    unit.save(_checkpoint_name(name, seed, trainer.epochs_done), _save(trainer, device))
