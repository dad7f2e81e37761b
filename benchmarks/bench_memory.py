"""asv: memory of direct backprop (O(L)) against the adjoint (O(1)) on a fixed rk4 grid of L steps.

``track_rss_growth`` runs one forward + backward in a fresh process and reports how far its peak RSS
rose above the process's RSS after its imports (``nodebench.measure.run_in_fresh_process``; the median
of three such processes): the torch import (~400 MB) is not counted, so direct at 5 steps reads below
the adjoint's fixed cost and grows with L, the adjoint does not. ``track_saved_bytes`` counts what
autograd saves for backward (exact).
"""

from __future__ import annotations

from benchmarks import metrics

STEPS = [5, 20, 80]


class DirectVsAdjoint(metrics.TrackSettings):
    params = [["direct", "adjoint"], STEPS]
    param_names = ["mode", "steps"]
    timeout = 300

    def track_rss_growth(self, mode, steps):
        """Median over fresh processes (:data:`metrics.FRESH_PROCESSES`) of the RSS growth of the call."""
        kwargs = {"mode": mode, "steps": steps}
        return metrics.median_of_fresh_processes(
            "benchmarks.metrics:direct_vs_adjoint_memory", kwargs, lambda run: run.rss_growth_bytes
        )

    track_rss_growth.unit = "bytes"

    def track_saved_bytes(self, mode, steps):
        return metrics.saved_bytes(mode, steps)

    track_saved_bytes.unit = "bytes"
