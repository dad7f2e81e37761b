"""Records of workload ``spiral`` (the slides' Examples 1 and 2 and torchdiffeq's spiral demo).

Variants ``"<problem>/<mode>/<solver>"`` (:func:`variant`) for a training run; ``"<problem>"`` for a
problem's data (time grid, truth, observations, with ``step`` the index into the time grid). Figure
snapshots ``traj_x@K``/``traj_y@K`` hold the learned trajectory after K updates (:data:`SNAPSHOT`).
"""

from __future__ import annotations

PROBLEMS = ("example1", "example2", "demo")
MODES = ("direct", "adjoint")
SOLVERS = ("euler", "dopri5")
#: Example 1's true matrix ``W`` (row-major in records ``W_11 .. W_22``).
W_TRUE = ((-0.1, -1.0), (1.0, -0.1))
W_METRICS = ("W_11", "W_12", "W_21", "W_22")
#: Trajectory snapshot metrics: ``traj_<axis>@<updates>``.
SNAPSHOT = r"traj_([xy])@(\d+)"
#: Figure data (the time grid, truth, observations, trajectory snapshots): plotted, not tabulated.
FIGURE_METRICS = (SNAPSHOT, r"t", r"truth_[xy]", r"obs_[xy]")


def variant(problem: str, mode: str, solver: str) -> str:
    """The variant label ``<problem>/<mode>/<solver>``."""
    return f"{problem}/{mode}/{solver}"
