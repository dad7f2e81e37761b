"""Ground truth, observations and training batches of the spiral problems (docs/protocols.md).

- ``example1``, ``example2`` (seed slides): one trajectory from ``z0 = [0.6, 0.3]`` on
  ``t = linspace(0, 31.45, 200)`` (the slides' ``6.29 * 5``); truth by dopri5 at rtol 1e-10, atol 1e-12
  in float64 (**ours**: "tight", far below the noise); observations = truth + i.i.d. ``N(0, 0.01^2)``
  per coordinate.
- ``demo`` (torchdiffeq's ``ode_demo.py``): ``y0 = [2, 0]`` on ``t = linspace(0, 25, 1000)``; truth by
  dopri5 at rtol 1e-7, atol 1e-9 (the demo's) in float64. The demo trains on the truth itself, so its
  observations are the truth (no noise).

Batches follow the original code: :func:`example_segment` (a random segment of up to 32 sorted
observation times) and :func:`demo_starts` (20 distinct start indices of 10 consecutive points).

Determinism: all randomness comes from local generators made by :func:`generator` from a seed and a
stream number (noise and batches draw from different streams); the global generators are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from nodebench.models.demo_spirals import true_dynamics
from nodebench.solvers import odeint

NOISE_STREAM = 0
BATCH_STREAM = 1

EXAMPLE_Z0 = (0.6, 0.3)
EXAMPLE_T_MAX = 6.29 * 5
EXAMPLE_POINTS = 200
EXAMPLE_NOISE_STD = 0.01
EXAMPLE_TOL = (1e-10, 1e-12)
DEMO_Y0 = (2.0, 0.0)
DEMO_T_MAX = 25.0
DEMO_POINTS = 1000
DEMO_TOL = (1e-7, 1e-9)


@dataclass(frozen=True)
class Trajectory:
    """One problem's data, float64.

    Attributes:
        problem: ``example1``, ``example2`` or ``demo``.
        t: ``(n,)`` observation times.
        truth: ``(n, 2)`` the true solution at ``t``.
        obs: ``(n, 2)`` the observations the model is trained on.
        noise_std: std of the observation noise (0 for the demo).
    """

    problem: str
    t: Tensor
    truth: Tensor
    obs: Tensor
    noise_std: float

    @property
    def z0(self) -> Tensor:
        """The true initial state ``truth[0]``."""
        return self.truth[0]


def generator(seed: int, stream: int) -> torch.Generator:
    """A CPU generator for ``(seed, stream)``; different streams of one seed are independent."""
    state = np.random.SeedSequence([seed, stream]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def make_trajectory(problem: str, seed: int = 0) -> Trajectory:
    """The truth and observations of ``problem``; the noise is drawn from stream :data:`NOISE_STREAM`.

    Arguments:
        problem: ``example1``, ``example2`` or ``demo``.
        seed: seed of the observation noise (the demo has none, so it ignores it).

    Returns:
        A :class:`Trajectory` in float64.
    """
    f64 = torch.float64
    dynamics = true_dynamics(problem, f64)
    if problem == "demo":
        t = torch.linspace(0.0, DEMO_T_MAX, DEMO_POINTS, dtype=f64)
        y0, (rtol, atol), std = torch.tensor(DEMO_Y0, dtype=f64), DEMO_TOL, 0.0
    else:
        t = torch.linspace(0.0, EXAMPLE_T_MAX, EXAMPLE_POINTS, dtype=f64)
        y0, (rtol, atol), std = torch.tensor(EXAMPLE_Z0, dtype=f64), EXAMPLE_TOL, EXAMPLE_NOISE_STD
    with torch.no_grad():
        truth = odeint(dynamics, y0, t, method="dopri5", rtol=rtol, atol=atol)
    obs = truth
    if std > 0:
        noise = torch.randn(truth.shape, generator=generator(seed, NOISE_STREAM), dtype=f64)
        obs = truth + std * noise
    return Trajectory(problem, t, truth, obs, std)


def example_segment(
    t: Tensor,
    gen: torch.Generator,
    min_span: float = 1.0,
    max_span: float = 5.0,
    max_points: int = 32,
) -> Tensor:
    """Indices of one training segment of the seed examples (the slides' ``create_batch``).

    ``t0 ~ U(0, t_max - max_span)``, ``t1 = t0 + U(min_span, max_span)``; of the indices with
    ``t0 < t < t1``, a random permutation's first ``max_points``, sorted.

    Returns:
        A sorted int64 index tensor (at least two indices on the examples' grid).
    """
    t_max = float(t[-1])
    u = torch.rand(2, generator=gen, dtype=torch.float64).tolist()
    t0 = u[0] * (t_max - max_span)
    t1 = t0 + min_span + u[1] * (max_span - min_span)
    inside = torch.nonzero((t > t0) & (t < t1)).flatten()
    chosen = inside[torch.randperm(len(inside), generator=gen)[:max_points]]
    return chosen.sort().values


def demo_starts(n_points: int, gen: torch.Generator, batch_size: int = 20, batch_time: int = 10) -> Tensor:
    """``batch_size`` distinct start indices in ``[0, n_points - batch_time)`` (torchdiffeq's get_batch)."""
    return torch.randperm(n_points - batch_time, generator=gen)[:batch_size]
