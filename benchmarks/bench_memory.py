"""asv: memory of direct backprop (O(L)) against the adjoint (O(1)) on a fixed rk4 grid of L steps.

``track_rss_growth`` runs one forward + backward in a fresh process and reports how far its peak RSS
rose above the process's RSS after its imports (``nodebench.measure.run_in_fresh_process``): the torch
import (~400 MB) is not counted, so direct at 5 steps reads below the adjoint's fixed cost and grows
with L, the adjoint does not. ``track_saved_bytes`` counts what autograd saves for backward (exact).
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks import metrics
from nodebench.measure import run_in_fresh_process

STEPS = [5, 20, 80]


class DirectVsAdjoint(metrics.TrackSettings):
    params = [["direct", "adjoint"], STEPS]
    param_names = ["mode", "steps"]
    timeout = 300

    def track_rss_growth(self, mode, steps):
        root = str(Path(__file__).resolve().parents[1])
        if (
            root not in sys.path
        ):  # the fresh child takes this sys.path; asv does not put the suite's root on it
            sys.path.insert(0, root)
        kwargs = {"mode": mode, "steps": steps}
        run = run_in_fresh_process("benchmarks.metrics:direct_vs_adjoint_memory", kwargs, timeout=240)
        return run.rss_growth_bytes

    track_rss_growth.unit = "bytes"

    def track_saved_bytes(self, mode, steps):
        return metrics.saved_bytes(mode, steps)

    track_saved_bytes.unit = "bytes"
