"""Workload ``latent``: latent ODE against an RNN on irregularly observed spirals (paper Table 2, Fig. 8).

For every seed, observation count n and model: generate the spirals, train on the n observed points
of the training spirals, then record the predictive RMSE of the test spirals on the 100 extrapolation
points and on the observation window, against the noise-free truth and the noisy observations, with
NFE and times. A few test spirals' predicted trajectories are recorded too, for Figure-8-like plots.

Records (variant ``"<model>/n=<n>"``, ``model`` in :data:`MODELS`):

- per evaluation step (``step`` = training iteration): ``train_loss`` (mean over the interval),
  ``val_rmse_extrap`` (validation spirals, against the truth), ``nfe_train`` (latent ODE: mean forward
  NFE per iteration over the interval);
- final (``step = -1``): ``rmse_extrap_truth``, ``rmse_extrap_noisy``, ``rmse_interp_truth``,
  ``rmse_interp_noisy``, ``rmse_extrap_truth_ccw`` and ``_cw`` (test spirals of one orientation),
  ``selected_iteration`` (the validation-best evaluation), ``iterations_used`` (iterations trained:
  the cap ``iterations`` unless the patience rule stopped earlier), ``stopped_by_patience`` (1 or 0),
  ``train_time`` [s], ``time_per_iteration`` [s, over the iterations used; earlier runs divided by
  ``iterations``, the same there], ``eval_time`` [s], and for the latent ODE ``nfe_eval`` (forward
  NFE of the test prediction);
- trajectories (first seed only): ``pred_x``, ``pred_y`` at ``step = slot * TRAJ_STRIDE + i``, ``i``
  the index on the 200-point time grid (0-99 observation window, 100-199 extrapolation) and ``slot``
  the position of the spiral among the recorded ones; rows where a model makes no finite prediction
  (the RNN before its first observation) are absent.

Variant ``"data"`` (one unit per seed): ``train_std``, ``train_std_x``, ``train_std_y`` (the training
set's coordinate stds that normalise the RMSE, see :func:`train_scale`; runs before these existed lack
them, and a run with ``models=()`` on the same data config recomputes them), ``extrap_scale`` (RMS
distance of the test truth from its spiral centre over the extrapolation window, per coordinate),
``noise_rmse_extrap`` (RMSE of the noisy
observations against the truth there: what a perfect predictor scores against the noisy points);
first seed only: ``traj_spiral`` and ``traj_orient`` (``step = slot``), ``truth_x``/``truth_y`` on the
same step encoding; variant ``"data/n=<n>"``: ``obs_x``/``obs_y`` at the observed points.

Exploratory configurations are real runs too: ``nodebench run latent --preset study --set
noise_std=0.3`` applies ``--set`` overrides to a preset and records them in the run's preset label,
config and protocol card; ``nodebench run latent --resume RUN_DIR`` resumes such a run like any
other. Three presets beyond the standard three exist for this (``nodebench reproduce`` uses only the
standard ones): ``explore``, where the exploration started (torchdiffeq's spacing, GRU cells, 1000
iterations; seed 0, n = 30), ``study``, the first draft of protocol "ours" (vanilla RNN cells)
at seed 0 and n = 30, and ``sensitivity``, the card at seed 0 and n = 30 and 100 with the latent ODE
and the tanh RNN only, the base of the protocol study (geometry, noise, time grid); every run's
config says exactly what ran.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nodebench import solver_stats
from nodebench.data.latent_spirals import ObsBatch, SpiralConfig, SpiralData, make_spirals, observation_batch
from nodebench.models.latent import LatentODE, RNNBaseline
from nodebench.schema import latent as schema
from nodebench.schema.latent import TRAJ_STRIDE
from nodebench.units import NO_STEP, UnitContext, UnitSpec
from nodebench.workloads.base import seed_everything

NAME = "latent"
# Baselines: name -> (recurrent cell, time-gap input); "cell" means the config's cell. "rnn" is the
# name earlier runs used for the baseline with the config's cell (the report labels it by its cell).
BASELINES: dict[str, tuple[str, bool]] = {
    "rnn_tanh": ("rnn", True),
    "rnn_tanh_nodt": ("rnn", False),
    "gru": ("gru", True),
    "rnn": ("cell", True),
}
MODELS = ("latent_ode", *BASELINES)
DEFAULT_MODELS = ("latent_ode", "rnn_tanh", "rnn_tanh_nodt", "gru")
DTYPE = torch.float32

PROTOCOL = """\
## Latent ODE on spirals (paper Section 5.1, Table 2) -- protocol "ours"

**Paper**: 1000 two-dimensional spirals from different starting points, 100 equally spaced times, half
clockwise and half counter-clockwise, Gaussian noise; n = 30, 50, 100 points subsampled without
replacement; predictive RMSE on the 100 time points after the observed ones. Recognition RNN with 25
hidden units run backwards, latent dimension 4, dynamics and decoder one hidden layer of 20 units,
prior N(0, I), ELBO; baseline RNN with 25 hidden units, Gaussian NLL, and a variant with the time gap
to the next observation as an input; solver tolerance 1.5e-8 (implicit Adams). Table 2: RNN 0.3937 /
0.3202 / 0.1813, latent ODE 0.1642 / 0.1502 / 0.1346 (n = 30 / 50 / 100).

**Ours** (every value the paper leaves open; defaults of `Config`, overridden values in the run's
config):

- *Spirals*: torchdiffeq's `latent_ode.py` equations on the phase range [0, 6 pi]: counter-clockwise
  r = 0.3 tau centred at (+5, 0); clockwise r = 0.3 * 50 / (6 pi + 1 - tau) at angle 6 pi + 1 - tau,
  centred at (-5, 0). Half of each orientation.
- *Time grid and windows*: `n_grid = 1000` points on [0, 6 pi] (dt = 6 pi / 999 = 0.0189); a spiral
  is 200 consecutive points, the first 100 the observation window (t = 0 .. 1.87), the next 100 the
  extrapolation window. Start phase uniform on [200 dt, 800 dt] (continuous). Why: torchdiffeq's
  spirals are 100 points of a 500-point grid starting in [100, 400) -- arcs of 3.78 rad (0.6 turn) from
  the same phase range. Ours are exactly those arcs, their first half observed and their second half
  extrapolated. Observing a whole torchdiffeq arc and extrapolating another at its spacing
  (`n_grid = 500`) is the other reading; the study runs show what it does to the RMSE.
- *Noise*: i.i.d. Gaussian, std 0.1 per coordinate, on all 200 points; the latent ODE's likelihood
  std is the same 0.1. RMSE is reported against the noise-free truth and against the noisy points
  (whose floor is the noise, 0.1).
- *Split*: 1000 spirals per seed; 800 train and 200 test, stratified by orientation; 100 of the 800
  held out at random as validation, so 700 train. The test spirals are used once, after training.
- *Observations*: per spiral one random permutation of the 100 window indices; its first n entries,
  sorted (nested: the 30 lie inside the 50, inside the 100). Irregular times differ between spirals.
- *Models* (paper sizes): latent ODE with a GRU recognition network (25 units, run backwards over
  (x, gap to the previous observation)), latent 4, dynamics 4-20-4 (ELU), decoder 4-20-2 (ReLU),
  z0 at the start of the window; the GRU recognition cell against a vanilla tanh one (torchdiffeq's)
  was selected on the validation spirals (n = 30, seeds 0-2: 0.59 +- 0.08 against 0.77 +- 0.38).
  Baselines, 25 units each, output mean and log-std of x_{i+1}, extrapolation autoregressive on
  their own means: the paper's "RNN", a vanilla tanh RNN, with the input (x_i, t_{i+1} - t_i)
  (`rnn_tanh`) and with x_i alone (`rnn_tanh_nodt`, one step per query time); and ours, a GRU with
  the time-gap input (`gru`), a stronger baseline than the paper's.
- *Training*: Adam, learning rate 0.01 decaying exponentially to 0.001 at the iteration cap
  (`iterations`), minibatches of 100 spirals (shuffled epochs), one posterior sample per spiral, KL
  weight 1. Latent ODE: `nodebench.odeint` (direct backprop, not the adjoint) with the solver option
  `method`, `rtol`, `atol` of the config (the card: nodebench's adaptive Adams at 1.5e-8, the
  paper's implicit-Adams tolerance; the first card and the protocol study: dopri5, 1e-3, 1e-4), the
  same at evaluation. float32, one thread.
- *Patience and selection* (validation spirals only, never the test set): every 100 iterations the
  extrapolation RMSE of the validation spirals (against the truth) is recorded; from iteration
  `min_iterations` on, training stops when `patience` evaluations in a row have not brought it below
  99% (`min_improvement`) of the best so far, or at the cap; the parameters with the lowest are
  evaluated on the test spirals. Iterations used and whether the rule or the cap stopped training
  are recorded.
- *Scale-free figures*: `train_std`, the pooled coordinate std of the training spirals' noisy
  observation windows, is recorded per seed; the report divides RMSE by it and gives the latent-ODE
  / baseline RMSE ratio per seed.
- *Metrics*: RMSE = root of the mean squared error over test spirals, time points and both
  coordinates. Extrapolation: the 100 points after the window, from the n observations (latent ODE:
  posterior mean z0). Interpolation: the 100 times of the window (latent ODE: decoded from z0, all
  observations used; RNN: causal, each time predicted from the observations before it, none before
  the first observation). Also NFE of the test prediction and training times.
- *Seeds*: each seed draws its own data set (spirals, noise, observations, split) and initialisation;
  seeds 0, 1, 2.
"""


@dataclass(frozen=True)
class Config:
    """One configuration of the workload (the protocol card explains the defaults).

    Arguments:
        seeds: seeds; each gives its own data set (spirals, noise, subsampling, split) and model init.
        obs_counts: observation counts n.
        models: models to train, from :data:`MODELS`: ``latent_ode``; the baselines ``rnn_tanh``
            (vanilla tanh RNN with the time-gap input), ``rnn_tanh_nodt`` (without it), ``gru`` (GRU
            with it), and ``rnn`` (the baseline with ``cell``, the name of earlier runs). Empty: only
            the data units (data scale and noise floor), e.g. for the scale of an earlier run's data.
        n_spirals: spirals per data set (train, validation and test together).
        noise_std: std of the Gaussian observation noise.
        amplitude: radius scale ``b`` of the spirals (torchdiffeq: 0.3).
        geometry: ``"torchdiffeq"`` (hyperbolic clockwise, Archimedean counter-clockwise arm) or
            ``"archimedean"`` (two mirrored Archimedean spirals of equal size); see the data module.
        n_grid: points of the phase grid on ``[0, 6 pi]``; sets the time step (torchdiffeq: 500).
        start_min: earliest start on the grid, in steps (torchdiffeq: 100 of 500).
        start_max: latest start, in steps; None: the latest that keeps 200 points on the grid.
        val_spirals: training spirals held out for validation (model selection, never the test set).
        obs_std: std of the latent ODE's Gaussian likelihood, in data units.
        standardise: feed the models standardised coordinates (minus the mean of the training
            observations, divided by their RMS deviation), predictions mapped back to data units.
        cell: recurrent cell of the latent ODE's recognition network (and of the legacy baseline
            ``rnn``), ``"gru"`` or ``"rnn"``.
        iterations: Adam iterations; with ``patience`` the most that are run (the cap).
        batch_size: spirals per minibatch (epochs of a fixed random order); 0 for the full batch.
        lr: initial learning rate.
        lr_final: learning rate at iteration ``iterations`` (exponential decay from ``lr``; a run
            stopped early by ``patience`` ends at a higher rate).
        kl_warmup: iterations over which the KL weight of the latent ODE grows linearly to 1.
        method: ODE solver of the latent ODE (training and evaluation; direct backprop, ``odeint``).
            ``method``, ``rtol`` and ``atol`` are the solver option: any method the installed
            ``nodebench.odeint`` accepts (the paper's is implicit Adams at 1.5e-8); an unavailable
            method is refused when the config is built.
        rtol: relative tolerance.
        atol: absolute tolerance.
        eval_every: iterations between validation evaluations (and training records).
        select: evaluate the parameters with the lowest validation RMSE instead of the last ones.
        patience: stop training after this many validation evaluations in a row without an
            improvement (see ``min_improvement``) on the best so far; 0 trains all ``iterations``.
        min_improvement: relative decrease of the validation RMSE that counts as an improvement
            for ``patience`` (0.01: below 99% of the best so far).
        min_iterations: the patience rule stops nothing before this iteration. Early on an untrained
            model predicting the spiral centres scores about the data scale, so a count started there
            stopped models that were still learning.
        trajectory_spirals: test spirals whose trajectories are recorded (first seed only).
        threads: torch intra-op threads while running. 1 by default: on the shared 2-core machine a
            second thread beside another job made a latent-ODE iteration 6x slower (0.27 s vs 0.045 s).
    """

    seeds: tuple[int, ...] = (0, 1, 2)
    obs_counts: tuple[int, ...] = (30, 50, 100)
    models: tuple[str, ...] = DEFAULT_MODELS
    n_spirals: int = 1000
    noise_std: float = 0.1
    amplitude: float = 0.3
    geometry: str = "torchdiffeq"
    n_grid: int = 1000
    start_min: int = 200
    start_max: int | None = None
    val_spirals: int = 100
    obs_std: float = 0.1
    standardise: bool = False
    cell: str = "gru"
    iterations: int = 2000
    batch_size: int = 100
    lr: float = 0.01
    lr_final: float = 0.001
    kl_warmup: int = 0
    method: str = "dopri5"
    rtol: float = 1e-3
    atol: float = 1e-4
    eval_every: int = 100
    select: bool = True
    patience: int = 0
    min_improvement: float = 0.0
    min_iterations: int = 0
    trajectory_spirals: int = 4
    threads: int = 1

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("seeds must not be empty")
        unknown = sorted(set(self.models) - set(MODELS))
        if unknown or len(set(self.models)) != len(self.models):
            raise ValueError(f"models must be distinct names from {MODELS}, got {self.models}")
        if self.patience < 0 or not 0 <= self.min_improvement < 1 or self.min_iterations < 0:
            raise ValueError(
                "need patience >= 0, 0 <= min_improvement < 1 and min_iterations >= 0, got "
                f"{self.patience}, {self.min_improvement}, {self.min_iterations}"
            )
        if self.iterations < 1 or self.eval_every < 1 or self.batch_size < 0 or self.kl_warmup < 0:
            raise ValueError(
                "iterations and eval_every must be >= 1, batch_size and kl_warmup >= 0, got "
                f"{self.iterations}, {self.eval_every}, {self.batch_size}, {self.kl_warmup}"
            )
        if not 0 < self.lr_final <= self.lr:
            raise ValueError(f"need 0 < lr_final <= lr, got lr={self.lr}, lr_final={self.lr_final}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.val_spirals < 1 or self.trajectory_spirals < 0:
            raise ValueError(
                f"val_spirals must be >= 1 and trajectory_spirals >= 0, got {self.val_spirals}, "
                f"{self.trajectory_spirals}"
            )
        data = spiral_config(self, self.seeds[0])  # validates the data fields
        if "latent_ode" in self.models:
            _check_solver(self.method, self.rtol, self.atol)
        n_train = 2 * round(data.train_frac * self.n_spirals / 2)
        if self.val_spirals >= n_train:
            raise ValueError(f"val_spirals must be < {n_train} (the training split), got {self.val_spirals}")


def spiral_config(config: Config, seed: int) -> SpiralConfig:
    """The spiral data configuration of ``config`` for ``seed``."""
    return SpiralConfig(
        n_spirals=config.n_spirals,
        obs_counts=config.obs_counts,
        noise_std=config.noise_std,
        seed=seed,
        n_grid=config.n_grid,
        start_min_index=config.start_min,
        start_max=config.start_max,
        b=config.amplitude,
        geometry=config.geometry,
    )


def _check_solver(method: str, rtol: float, atol: float) -> None:
    """Raise ValueError unless ``nodebench.odeint`` solves a tiny problem with this solver option."""
    import nodebench

    try:
        nodebench.odeint(
            lambda t, y: -y, torch.ones(1), torch.tensor([0.0, 0.1]), method=method, rtol=rtol, atol=atol
        )
    except Exception as exc:  # the solver's own message says what is wrong
        raise ValueError(
            f"solver option method={method!r}, rtol={rtol}, atol={atol} is not usable with this "
            f"nodebench: {exc}"
        ) from exc


# The card: Table 2's models (the paper's RNN with and without the time gap, and our GRU baseline),
# the paper's solver (nodebench's adaptive Adams at rtol = atol = 1.5e-8), trained until the validation
# RMSE stops improving: from iteration 2000 on, 5 evaluations (500 iterations) in a row without a 1%
# improvement end training; 6000 iterations is the compute cap (the learning rate decays over it). The
# report gives the iterations used and whether the rule or the cap ended training.
STANDARD = Config(
    models=DEFAULT_MODELS,
    iterations=6000,
    patience=5,
    min_improvement=0.01,
    min_iterations=2000,
    method="adams",
    rtol=1.5e-8,
    atol=1.5e-8,
)

# The first card (dopri5 at 1e-3/1e-4, cap 1500, rule from iteration 1000): the reference of the protocol
# study, whose cells change one choice of it at a time (runs up to 2026-12-01).
CARD_DOPRI5 = dataclasses.replace(
    STANDARD,
    models=("latent_ode", "rnn_tanh", "rnn_tanh_nodt"),
    iterations=1500,
    min_iterations=1000,
    method="dopri5",
    rtol=1e-3,
    atol=1e-4,
)

PRESETS: dict[str, Config] = {
    "smoke": Config(
        seeds=(0,),
        n_spirals=100,
        val_spirals=10,
        iterations=20,
        batch_size=40,
        eval_every=10,
        trajectory_spirals=2,
    ),
    "standard": STANDARD,
    "paper": dataclasses.replace(STANDARD, seeds=(0, 1, 2, 3, 4), iterations=10000, patience=10),
    "explore": Config(
        seeds=(0,),
        obs_counts=(30,),
        n_grid=500,
        start_min=100,
        cell="gru",
        iterations=1000,
        trajectory_spirals=0,
    ),
    "study": Config(seeds=(0,), obs_counts=(30,), cell="rnn", trajectory_spirals=0),
    "sensitivity": dataclasses.replace(
        CARD_DOPRI5, seeds=(0,), obs_counts=(30, 100), models=("latent_ode", "rnn_tanh"), trajectory_spirals=0
    ),
}


@dataclass
class Patience:
    """The patience rule on validation RMSE (lower is better), fed one evaluation at a time.

    ``best`` and ``best_step`` track the lowest value seen (what selection evaluates); ``waited``
    counts evaluations since the last one below ``(1 - min_improvement) * best``. The rule is
    exhausted after ``patience`` such evaluations in a row (never when ``patience`` is 0).
    """

    patience: int
    min_improvement: float = 0.0
    best: float = math.inf
    best_step: int = 0
    waited: int = 0

    def update(self, value: float, step: int) -> bool:
        """Take the validation value at ``step``; returns whether it is the best so far."""
        threshold = (1.0 - self.min_improvement) * self.best if math.isfinite(self.best) else math.inf
        self.waited = 0 if math.isfinite(value) and value < threshold else self.waited + 1
        if value < self.best:
            self.best, self.best_step = value, step
            return True
        return False

    @property
    def exhausted(self) -> bool:
        """Whether training should stop."""
        return self.patience > 0 and self.waited >= self.patience


def _split(train_idx: Tensor, n_val: int, seed: int) -> tuple[Tensor, Tensor]:
    """Carve ``n_val`` validation spirals out of the training split; returns sorted (train, val)."""
    perm = torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(seed))
    shuffled = train_idx[perm]
    return shuffled[n_val:].sort().values, shuffled[:n_val].sort().values


def _rows(batch: ObsBatch, rows: Tensor) -> ObsBatch:
    """The sub-batch of ``rows``."""
    return ObsBatch(times=batch.times[rows], values=batch.values[rows], gaps=batch.gaps[rows])


def _rmse(pred: Tensor, target: Tensor) -> float:
    """Root of the mean squared error over spirals, times and both coordinates, ignoring NaN predictions."""
    return math.sqrt((pred - target).square().nanmean().item())


@dataclass(frozen=True, eq=False)
class _Affine:
    """Coordinates the models see: ``(x - shift) / scale``, and back."""

    shift: Tensor
    scale: float

    @classmethod
    def fit(cls, values: Tensor, standardise: bool) -> _Affine:
        """Standardising map of observed ``values`` ``(B, n, 2)``, or the identity."""
        if not standardise:
            return cls(values.new_zeros(values.shape[-1]), 1.0)
        shift = values.mean(dim=(0, 1))
        return cls(shift, (values - shift).square().mean().sqrt().item())

    def batch(self, batch: ObsBatch) -> ObsBatch:
        """``batch`` in model coordinates."""
        return ObsBatch(times=batch.times, values=(batch.values - self.shift) / self.scale, gaps=batch.gaps)

    def inverse(self, points: Tensor) -> Tensor:
        """Model coordinates back to data units."""
        return points * self.scale + self.shift


def _build(name: str, config: Config, scale: float, device: torch.device) -> nn.Module:
    """A fresh model (paper sizes: latent 4, recognition RNN 25, dynamics and decoder 20) on ``device``.

    ``scale``: data units per model unit; the likelihood std is ``config.obs_std / scale``.
    """
    if name == "latent_ode":
        model: nn.Module = LatentODE(
            obs_std=config.obs_std / scale,
            cell=config.cell,
            solver="odeint",
            method=config.method,
            rtol=config.rtol,
            atol=config.atol,
        )
    else:
        cell, time_input = BASELINES[name]
        model = RNNBaseline(hidden=25, cell=config.cell if cell == "cell" else cell, time_input=time_input)
    return model.to(device=device, dtype=DTYPE)


def _predict(model: nn.Module, obs: ObsBatch, data: SpiralData, affine: _Affine) -> tuple[Tensor, Tensor]:
    """Predictions on the observation and extrapolation windows, ``(B, 100, 2)`` each, in data units."""
    obs = affine.batch(obs)
    if isinstance(model, LatentODE):
        pred = model.predict(obs, data.t)
        interp, extrap = pred[:, : data.config.obs_points], pred[:, data.config.obs_points :]
    else:
        interp, extrap = model.predict_within(obs, data.t_obs), model.predict(obs, data.t_extrap)
    return affine.inverse(interp), affine.inverse(extrap)


def _encode(slot: int, index: int) -> int:
    """The step of trajectory point ``index`` of recorded spiral ``slot``."""
    return slot * TRAJ_STRIDE + index


def _trajectory_spirals(data: SpiralData, test_idx: Tensor, count: int) -> list[int]:
    """Positions in ``test_idx`` of ``count`` test spirals, alternating counter-clockwise and clockwise."""
    orient = data.orient[test_idx].tolist()
    ccw = [i for i, o in enumerate(orient) if o > 0]
    cw = [i for i, o in enumerate(orient) if o < 0]
    return [(ccw if slot % 2 == 0 else cw)[slot // 2] for slot in range(count)]


def _record_points(
    recorder: UnitContext, variant: str, seed: int, prefix: str, points: Tensor, slots: list[int]
) -> None:
    """Record ``points`` ``(B, T, 2)`` of the spirals at ``slots`` as ``<prefix>_x``/``<prefix>_y``."""
    for slot, row in enumerate(slots):
        for index, (x, y) in enumerate(points[row].tolist()):
            if math.isfinite(x) and math.isfinite(y):
                recorder.record(variant, seed, _encode(slot, index), f"{prefix}_x", x)
                recorder.record(variant, seed, _encode(slot, index), f"{prefix}_y", y)


def train_scale(data: SpiralData, train_idx: Tensor) -> dict[str, float]:
    """The training set's coordinate standard deviations, the scale of the normalised RMSE.

    Over the noisy points of the whole observation window (all 100 points, whichever n) of the
    training spirals ``train_idx`` (validation spirals excluded): ``train_std_x`` and ``train_std_y``
    are the population stds of each coordinate, ``train_std`` the pooled one, the root of the mean of
    the two variances (the RMS distance from the per-coordinate mean, per coordinate).
    """
    points = data.noisy[train_idx, : data.config.obs_points].to(torch.float64).reshape(-1, 2)
    var = points.var(dim=0, correction=0)
    return {
        "train_std": var.mean().sqrt().item(),
        "train_std_x": var[0].sqrt().item(),
        "train_std_y": var[1].sqrt().item(),
    }


def _record_data(
    recorder: UnitContext,
    config: Config,
    seed: int,
    data: SpiralData,
    split_idx: tuple[Tensor, Tensor, Tensor],
    slots: list[int],
) -> None:
    """The data set's scales and noise floor, and the recorded spirals' truth and observations."""
    train_idx, _, test_idx = split_idx
    for metric, value in train_scale(data, train_idx).items():
        recorder.record("data", seed, NO_STEP, metric, value)
    split = data.config.obs_points
    truth = data.truth[test_idx, split:]
    centre = data.config.centre * data.orient[test_idx].to(DTYPE)
    offset = truth - torch.stack((centre, torch.zeros_like(centre)), dim=-1).unsqueeze(1)
    recorder.record("data", seed, NO_STEP, "extrap_scale", offset.square().mean().sqrt())
    recorder.record("data", seed, NO_STEP, "noise_rmse_extrap", _rmse(data.noisy[test_idx, split:], truth))
    if not slots:
        return
    for slot, row in enumerate(slots):
        recorder.record("data", seed, slot, "traj_spiral", test_idx[row])
        recorder.record("data", seed, slot, "traj_orient", data.orient[test_idx[row]])
    _record_points(recorder, "data", seed, "truth", data.truth[test_idx], slots)
    for n in config.obs_counts:
        obs = data.obs_idx[n][test_idx]
        points = torch.full_like(data.noisy[test_idx, :split], math.nan)
        points.scatter_(1, obs.unsqueeze(-1).expand(-1, -1, 2), observation_batch(data, n, test_idx).values)
        _record_points(recorder, f"data/n={n}", seed, "obs", points, slots)


def _fit_and_evaluate(
    recorder: UnitContext,
    config: Config,
    name: str,
    n: int,
    seed: int,
    data: SpiralData,
    split: tuple[Tensor, Tensor, Tensor],
    slots: list[int],
) -> None:
    """Train model ``name`` on n observations per training spiral, select on validation, test, record."""
    variant = schema.variant(name, n)
    train_idx, val_idx, test_idx = split
    train_obs, val_obs = observation_batch(data, n, train_idx), observation_batch(data, n, val_idx)
    affine = _Affine.fit(train_obs.values, config.standardise)
    model = _build(name, config, affine.scale, data.t.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    gamma = (config.lr_final / config.lr) ** (1.0 / config.iterations)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)
    order = torch.Generator().manual_seed(seed)
    train_in = affine.batch(train_obs)
    val_truth = data.truth[val_idx, data.config.obs_points :]
    batch_size = config.batch_size or len(train_idx)
    perm, cursor = torch.randperm(len(train_idx), generator=order), 0
    rule = Patience(config.patience, config.min_improvement)
    best_state = copy.deepcopy(model.state_dict())
    train_time, loss_sum, nfe_sum, since, used = 0.0, 0.0, 0, 0, 0
    for it in range(1, config.iterations + 1):
        if cursor + batch_size > len(train_idx):
            perm, cursor = torch.randperm(len(train_idx), generator=order), 0
        batch = _rows(train_in, perm[cursor : cursor + batch_size])
        cursor += batch_size
        start = time.perf_counter()
        with solver_stats() as stats:
            if isinstance(model, LatentODE):
                kl_weight = min(1.0, it / config.kl_warmup) if config.kl_warmup else 1.0
                loss, _ = model.elbo(batch, kl_weight=kl_weight)
            else:
                loss = model.loss(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        train_time += time.perf_counter() - start
        loss_sum, nfe_sum, since, used = loss_sum + loss.item(), nfe_sum + stats.nfe_forward, since + 1, it
        if it % config.eval_every and it != config.iterations:
            continue
        with torch.no_grad():
            val_rmse = _rmse(_predict(model, val_obs, data, affine)[1], val_truth)
        recorder.record(variant, seed, it, "train_loss", loss_sum / since, "nats")
        recorder.record(variant, seed, it, "val_rmse_extrap", val_rmse)
        if isinstance(model, LatentODE):
            recorder.record(variant, seed, it, "nfe_train", nfe_sum / since)
        loss_sum, nfe_sum, since = 0.0, 0, 0
        if rule.update(val_rmse, it):
            best_state = copy.deepcopy(model.state_dict())
        if rule.exhausted and it >= config.min_iterations:
            break
    if config.select:
        model.load_state_dict(best_state)
    test_obs = observation_batch(data, n, test_idx)
    start = time.perf_counter()
    with torch.no_grad(), solver_stats() as stats:
        interp, extrap = _predict(model, test_obs, data, affine)
    eval_time = time.perf_counter() - start
    split_at = data.config.obs_points
    for window, pred in (("interp", interp), ("extrap", extrap)):
        part = slice(None, split_at) if window == "interp" else slice(split_at, None)
        for source, target in (("truth", data.truth), ("noisy", data.noisy)):
            rmse = _rmse(pred, target[test_idx, part])
            recorder.record(variant, seed, NO_STEP, f"rmse_{window}_{source}", rmse)
    for turn, sign in (("ccw", 1), ("cw", -1)):
        rows = data.orient[test_idx] == sign
        rmse = _rmse(extrap[rows], data.truth[test_idx[rows], split_at:])
        recorder.record(variant, seed, NO_STEP, f"rmse_extrap_truth_{turn}", rmse)
    selected = rule.best_step if config.select else used
    recorder.record(variant, seed, NO_STEP, "selected_iteration", selected)
    recorder.record(variant, seed, NO_STEP, "iterations_used", used)
    recorder.record(variant, seed, NO_STEP, "stopped_by_patience", float(used < config.iterations))
    recorder.record(variant, seed, NO_STEP, "train_time", train_time, "s")
    recorder.record(variant, seed, NO_STEP, "time_per_iteration", train_time / used, "s")
    recorder.record(variant, seed, NO_STEP, "eval_time", eval_time, "s")
    if isinstance(model, LatentODE):
        recorder.record(variant, seed, NO_STEP, "nfe_eval", stats.nfe_forward)
    _record_points(recorder, variant, seed, "pred", torch.cat((interp, extrap), dim=1), slots)


@functools.lru_cache(maxsize=4)
def _seed_data(
    config: Config, seed: int, device: torch.device
) -> tuple[SpiralData, tuple[Tensor, Tensor, Tensor], list[int]]:
    """Seed ``seed``'s spirals, (train, val, test) split and recorded test spirals (once per process)."""
    data = make_spirals(spiral_config(config, seed), dtype=DTYPE, device=device)
    train_idx, val_idx = _split(data.train_idx, config.val_spirals, seed)
    count = config.trajectory_spirals if seed == config.seeds[0] else 0
    return data, (train_idx, val_idx, data.test_idx), _trajectory_spirals(data, data.test_idx, count)


def plan(config: Config) -> list[UnitSpec]:
    """Per seed: the data unit, then one unit per (n, model)."""
    specs = []
    for seed in config.seeds:
        specs.append(UnitSpec(f"data/seed={seed}", {"seed": seed}))
        for n in config.obs_counts:
            for name in config.models:
                specs.append(UnitSpec(f"{name}/n={n}/seed={seed}", {"seed": seed, "n": n, "model": name}))
    return specs


def execute(spec: UnitSpec, unit: UnitContext) -> None:
    """Record a seed's data, or train, select and evaluate one model at one n."""
    config, seed = unit.config, spec.params["seed"]
    data, split, slots = _seed_data(config, seed, unit.device)
    if "model" not in spec.params:
        _record_data(unit, config, seed, data, split, slots)
    else:
        seed_everything(seed)
        _fit_and_evaluate(unit, config, spec.params["model"], spec.params["n"], seed, data, split, slots)
