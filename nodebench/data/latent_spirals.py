"""Two-dimensional spirals for the latent-ODE experiment (paper Section 5.1, Table 2).

Protocol card (**ours** where the paper is silent; every value is a default of `SpiralConfig`)
---------------------------------------------------------------------------------------------
Paper: 1000 two-dimensional spirals, each from a different starting point, sampled at 100 equally
spaced times, half clockwise and half counter-clockwise, Gaussian noise; n in {30, 50, 100} points
subsampled without replacement; RMSE on the 100 time points that follow the observed ones.

- Geometry (torchdiffeq's ``latent_ode.py`` example, the community stand-in). With phase ``tau`` on
  ``[0, t_max]``, ``t_max = 6 pi``: counter-clockwise ``r = a + b tau`` at angle ``tau`` centred at
  ``(+5, 0)``; clockwise ``r = a + 50 b / (t_max + 1 - tau)`` at angle ``t_max + 1 - tau`` centred at
  ``(-5, 0)``; ``a = 0``, ``b = 0.3``. Both radii grow with ``tau``. The clockwise arm is hyperbolic
  and reaches radius ~15 near the end of the grid, the counter-clockwise one at most ~5.7, so the
  clockwise half dominates any pooled RMSE. ``geometry="archimedean"`` is the alternative reading of
  "half clockwise and half counter-clockwise": two spirals of equal size, the clockwise one the
  counter-clockwise one mirrored in the x axis (``r = a + b tau`` at angle ``-tau``), centred at
  ``(-5, 0)``.
- Time grid: torchdiffeq's spacing ``dt = t_max / (n_grid - 1)`` with ``n_grid = 500``
  (``dt`` ~ 0.0378). A spiral is ``obs_points + extrap_points = 100 + 100`` consecutive points of
  this spacing; the model's time axis is ``t = k dt``, ``k = 0..199``, the same for every spiral, so
  the observation window is ``t[:100]`` and the extrapolation window ``t[100:]``. The latent state
  ``z0`` lives at ``t = 0``, the start of the observation window.
- Starting points: torchdiffeq draws a start *index* in ``[100, 399]`` for 100 points (it avoids
  the tight centre of the counter-clockwise spiral). With 200 points the same rule gives indices
  ``[100, 300]``; we draw the start *continuously*, uniform on ``[100 dt, 300 dt]``, so that every
  spiral really has a different starting point (1000 spirals on 201 indices would repeat).
- Orientation: exactly ``n_spirals / 2`` of each (``n_spirals`` must be even), randomly permuted;
  ``orient`` is +1 counter-clockwise and -1 clockwise.
- Noise: i.i.d. Gaussian, std ``noise_std = 0.1`` per coordinate, on all 200 points (torchdiffeq
  uses 0.3; the paper gives none, so it is a parameter and every report must state it). ``truth``
  keeps the noise-free points so that RMSE can be reported against both.
- Split: ``train_frac = 0.8`` of the spirals train, the rest test, stratified by orientation so that
  both halves stay balanced. (torchdiffeq has no test split.)
- Subsampling: for every spiral one random permutation of the 100 observation indices; the n
  observations are its first n entries, sorted. Draws are without replacement and *nested* (the 30
  are inside the 50, inside the 100), so the comparison across n uses common random numbers.
- Determinism: everything comes from one local ``torch.Generator`` seeded with ``seed``, in a fixed
  order of draws; the global RNG is never touched. Values are computed in float64 and cast to the
  requested dtype at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from nodebench.schema.latent import OBS_POINTS

__all__ = ["GEOMETRIES", "SpiralConfig", "SpiralData", "ObsBatch", "make_spirals", "observation_batch"]

GEOMETRIES = ("torchdiffeq", "archimedean")


@dataclass(frozen=True)
class SpiralConfig:
    """Every choice of the spiral data set (see the module docstring for the reasons).

    Arguments:
        n_spirals: number of spirals, even (half of each orientation).
        obs_points: points in the observation window.
        extrap_points: points in the extrapolation window that follows it.
        obs_counts: the observation counts n subsampled from the observation window.
        noise_std: std of the Gaussian observation noise, per coordinate.
        train_frac: fraction of spirals in the training split (stratified by orientation).
        seed: seed of the local generator.
        t_max: end of the spiral phase range (torchdiffeq: 6 pi).
        n_grid: points of torchdiffeq's phase grid on ``[0, t_max]``; fixes the spacing.
        start_min_index: earliest start, in grid steps (torchdiffeq: 100).
        start_max: latest start, in grid steps; None for the latest that keeps the whole spiral on the
            grid (``n_grid - total_points``). Lowering it keeps the clockwise arm away from its
            ``1 / angle`` growth near the end of the grid.
        a: radius offset.
        b: radius scale.
        centre: x-offset of the spiral centres (+centre counter-clockwise, -centre clockwise).
        geometry: ``"torchdiffeq"`` (hyperbolic clockwise arm, Archimedean counter-clockwise arm) or
            ``"archimedean"`` (both Archimedean and of equal size, the clockwise one mirrored).
    """

    n_spirals: int = 1000
    obs_points: int = OBS_POINTS
    extrap_points: int = 100
    obs_counts: tuple[int, ...] = (30, 50, 100)
    noise_std: float = 0.1
    train_frac: float = 0.8
    seed: int = 0
    t_max: float = 6 * math.pi
    n_grid: int = 500
    start_min_index: int = 100
    start_max: int | None = None
    a: float = 0.0
    b: float = 0.3
    centre: float = 5.0
    geometry: str = "torchdiffeq"

    def __post_init__(self) -> None:
        if self.geometry not in GEOMETRIES:
            raise ValueError(f"geometry must be one of {GEOMETRIES}, got {self.geometry!r}")
        if self.n_spirals < 2 or self.n_spirals % 2:
            raise ValueError(f"n_spirals must be a positive even number, got {self.n_spirals}")
        if self.obs_points < 1 or self.extrap_points < 0:
            raise ValueError(
                f"obs_points must be >= 1 and extrap_points >= 0, got {self.obs_points}, {self.extrap_points}"
            )
        if not self.obs_counts or any(not 1 <= n <= self.obs_points for n in self.obs_counts):
            raise ValueError(
                f"obs_counts must be non-empty with every n in [1, obs_points={self.obs_points}], "
                f"got {self.obs_counts}"
            )
        if self.noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {self.noise_std}")
        n_train_half = round(self.train_frac * self.n_spirals / 2)
        if not 0 < n_train_half < self.n_spirals // 2:
            raise ValueError(
                f"train_frac={self.train_frac} leaves an empty train or test split for "
                f"n_spirals={self.n_spirals}"
            )
        if self.t_max <= 0 or self.n_grid < 2:
            raise ValueError(f"t_max must be > 0 and n_grid >= 2, got {self.t_max}, {self.n_grid}")
        last = self.n_grid - self.total_points
        if self.start_max is not None and not 0 <= self.start_max <= last:
            raise ValueError(
                f"start_max must be in [0, {last}] so that {self.total_points} points fit on the grid "
                f"of n_grid={self.n_grid}, got {self.start_max}"
            )
        if not 0 <= self.start_min_index <= self.start_max_index:
            raise ValueError(
                f"start_min_index must be in [0, {self.start_max_index}] so that "
                f"{self.total_points} points fit on the grid of n_grid={self.n_grid} (and start_max), "
                f"got {self.start_min_index}"
            )

    @property
    def total_points(self) -> int:
        """Points per spiral: observation plus extrapolation window."""
        return self.obs_points + self.extrap_points

    @property
    def dt(self) -> float:
        """Spacing of the time grid."""
        return self.t_max / (self.n_grid - 1)

    @property
    def start_max_index(self) -> int:
        """Latest start, in grid steps: ``start_max``, or the latest that keeps the spiral on the grid."""
        return self.n_grid - self.total_points if self.start_max is None else self.start_max


@dataclass(frozen=True, eq=False)
class SpiralData:
    """A generated spiral data set.

    Attributes:
        config: the configuration that produced it.
        t: ``(T,)`` time grid, ``T = obs_points + extrap_points``, starting at 0.
        truth: ``(N, T, 2)`` noise-free points.
        noisy: ``(N, T, 2)`` points with observation noise.
        orient: ``(N,)`` +1 counter-clockwise, -1 clockwise.
        phase0: ``(N,)`` starting phase of each spiral on ``[0, t_max]``.
        obs_idx: for each n in ``config.obs_counts``, ``(N, n)`` sorted indices into the observation
            window ``t[:obs_points]``.
        train_idx: ``(N_train,)`` sorted indices of the training spirals.
        test_idx: ``(N_test,)`` sorted indices of the test spirals.
    """

    config: SpiralConfig
    t: Tensor
    truth: Tensor
    noisy: Tensor
    orient: Tensor
    phase0: Tensor
    obs_idx: dict[int, Tensor]
    train_idx: Tensor
    test_idx: Tensor

    @property
    def t_obs(self) -> Tensor:
        """Times of the observation window."""
        return self.t[: self.config.obs_points]

    @property
    def t_extrap(self) -> Tensor:
        """Times of the extrapolation window."""
        return self.t[self.config.obs_points :]


@dataclass(frozen=True, eq=False)
class ObsBatch:
    """Irregularly observed spirals, n observations each (times differ between spirals).

    Attributes:
        times: ``(B, n)`` increasing observation times, measured from the start of the window.
        values: ``(B, n, 2)`` observed values.
        gaps: ``(B, n)`` time since the previous observation; ``gaps[:, 0] = times[:, 0]`` is the
            time since the start of the window (t = 0).
    """

    times: Tensor
    values: Tensor
    gaps: Tensor


def _spiral_points(cfg: SpiralConfig, phase: Tensor, orient: Tensor) -> Tensor:
    """Noise-free points at ``phase`` ``(N, T)`` for orientations ``orient`` ``(N,)``; ``(N, T, 2)``."""
    ccw = (orient > 0).unsqueeze(-1)
    centre = cfg.centre * orient.to(phase.dtype).unsqueeze(-1)
    if cfg.geometry == "archimedean":  # the clockwise spiral: the counter-clockwise one mirrored
        radius = cfg.a + cfg.b * phase
        sign = torch.where(ccw, 1.0, -1.0).to(phase.dtype)
        return torch.stack((radius * torch.cos(phase) + centre, sign * radius * torch.sin(phase)), dim=-1)
    angle = torch.where(ccw, phase, cfg.t_max + 1.0 - phase)
    radius = torch.where(ccw, cfg.a + cfg.b * angle, cfg.a + 50.0 * cfg.b / angle)
    return torch.stack((radius * torch.cos(angle) + centre, radius * torch.sin(angle)), dim=-1)


def make_spirals(
    config: SpiralConfig | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> SpiralData:
    """Generate the spiral data set of ``config``, deterministically from ``config.seed``.

    The values are drawn on the CPU, so they do not depend on ``device``.

    Arguments:
        config: the data configuration; ``SpiralConfig()`` if None.
        dtype: floating dtype of the returned floating tensors; the default dtype if None.
        device: device of the returned tensors; the CPU if None.

    Returns:
        The data set (see `SpiralData`).
    """
    cfg = SpiralConfig() if config is None else config
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    gen = torch.Generator().manual_seed(cfg.seed)
    f64 = torch.float64
    n, half, steps = cfg.n_spirals, cfg.n_spirals // 2, cfg.total_points

    orient = torch.ones(n, dtype=torch.long)
    orient[half:] = -1
    orient = orient[torch.randperm(n, generator=gen)]

    span = cfg.start_max_index - cfg.start_min_index
    start = cfg.start_min_index + span * torch.rand(n, generator=gen, dtype=f64)
    k = torch.arange(steps, dtype=f64)
    phase0 = start * cfg.dt
    truth = _spiral_points(cfg, phase0.unsqueeze(-1) + k * cfg.dt, orient)
    noisy = truth + cfg.noise_std * torch.randn(n, steps, 2, generator=gen, dtype=f64)

    perm = torch.rand(n, cfg.obs_points, generator=gen, dtype=f64).argsort(dim=1)
    obs_idx = {m: perm[:, :m].sort(dim=1).values for m in cfg.obs_counts}

    n_train_half = round(cfg.train_frac * half)
    train, test = [], []
    for sign in (1, -1):
        members = torch.nonzero(orient == sign).squeeze(1)
        members = members[torch.randperm(half, generator=gen)]
        train.append(members[:n_train_half])
        test.append(members[n_train_half:])

    return SpiralData(
        config=cfg,
        t=(k * cfg.dt).to(device, dtype),
        truth=truth.to(device, dtype),
        noisy=noisy.to(device, dtype),
        orient=orient.to(device),
        phase0=phase0.to(device, dtype),
        obs_idx={m: idx.to(device) for m, idx in obs_idx.items()},
        train_idx=torch.cat(train).sort().values.to(device),
        test_idx=torch.cat(test).sort().values.to(device),
    )


def observation_batch(
    data: SpiralData, n: int, spirals: Tensor | None = None, *, noisy: bool = True
) -> ObsBatch:
    """The irregular observation batch of ``spirals`` with ``n`` observations each.

    Arguments:
        data: the data set.
        n: observations per spiral, one of ``data.config.obs_counts``.
        spirals: ``(B,)`` indices of the spirals (e.g. ``data.train_idx`` or a minibatch of it);
            all spirals if None.
        noisy: observe the noisy points (True) or the noise-free truth (False).

    Returns:
        The batch: per-spiral times, values and time gaps (see `ObsBatch`).
    """
    if n not in data.obs_idx:
        raise ValueError(f"n must be one of obs_counts={tuple(data.obs_idx)}, got {n}")
    device = data.t.device
    spirals = (
        torch.arange(data.config.n_spirals, device=device)
        if spirals is None
        else torch.as_tensor(spirals, device=device)
    )
    if spirals.ndim != 1:
        raise ValueError(f"spirals must be a 1-D index tensor, got shape {tuple(spirals.shape)}")
    idx = data.obs_idx[n][spirals]
    source = data.noisy if noisy else data.truth
    times = data.t[idx]
    values = torch.gather(source[spirals], 1, idx.unsqueeze(-1).expand(-1, -1, 2))
    gaps = torch.diff(times, dim=1, prepend=torch.zeros_like(times[:, :1]))
    return ObsBatch(times=times, values=values, gaps=gaps)
