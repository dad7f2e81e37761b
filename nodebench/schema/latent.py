"""Records of workload ``latent`` (latent ODE vs RNN baselines on the spirals, paper Table 2 and Figure 8).

Variants: ``"<model>/n=<n>"`` for a model trained on ``n`` observations per spiral (:func:`variant`,
:data:`VARIANT_PATTERN`); ``"data"`` for a seed's data set; ``"data/n=<n>"`` for its observed points.
Trajectory series (``truth_*``, ``obs_*``, ``pred_*``) encode the point as ``step = slot * TRAJ_STRIDE
+ i``: ``slot`` the recorded test spiral, ``i`` its time index (the first :data:`OBS_POINTS` are the
observation window, the rest extrapolated).
"""

from __future__ import annotations

#: Step encoding of trajectory points: ``slot * TRAJ_STRIDE + i``.
TRAJ_STRIDE = 1000
#: Points in a spiral's observation window; the points after it are extrapolated.
OBS_POINTS = 100
#: Model variants ``"<model>/n=<n>"``.
VARIANT_PATTERN = r"^(?P<model>[a-z_]+)/n=(?P<n>\d+)$"
#: Figure data (Figure 8 trajectories and which test spirals they are): plotted, not tabulated.
FIGURE_METRICS = (r"pred_[xy]", r"truth_[xy]", r"obs_[xy]", r"traj_spiral", r"traj_orient")
#: The paper's Table 2 (Chen et al. 2018): extrapolation RMSE by model and observations per spiral.
PAPER_TABLE2 = {
    "rnn": {30: 0.3937, 50: 0.3202, 100: 0.1813},
    "latent_ode": {30: 0.1642, 50: 0.1502, 100: 0.1346},
}


def variant(model: str, n: int) -> str:
    """The variant of ``model`` trained on ``n`` observations per spiral."""
    return f"{model}/n={n}"
