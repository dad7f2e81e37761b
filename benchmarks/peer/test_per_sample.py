"""Per-sample step control (issue 25): stacked Van der Pol, shared vs per-sample vs torchode vs torchdiffeq.

Counts (func calls, steps, host synchronisations per attempted step) are deterministic; times are CPU
times of interleaved calls in this one process, compared only as ratios. Targets: per-sample calls of
``func`` at most 0.5x shared control's, time at most 1.0x torchode's (at equal error: both errors are
reported beside), at most one host synchronisation per attempted step in either mode.
"""

from __future__ import annotations

import pytest

from benchmarks.metrics import STACKED_SOLVERS, stacked_vdp


@pytest.mark.parametrize("batch", [64, 256])
def test_stacked_van_der_pol(benchmark, report_ratio, batch):
    pytest.importorskip("torchode")
    rows = stacked_vdp(batch=batch, repeats=5)
    shared, per, ode = rows["shared"], rows["per_sample"], rows["torchode"]
    calls_ratio = per["nfe"] / shared["nfe"]
    time_ratio = per["time_s"] / ode["time_s"]
    benchmark.extra_info.update(rows=rows, calls_ratio=calls_ratio, time_ratio_vs_torchode=time_ratio)
    benchmark.pedantic(lambda: None, rounds=1)
    report_ratio(
        f"stacked van der Pol, batch {batch}, dopri5 rtol 1e-6 atol 1e-8 (float64, CPU time, 1 thread):"
    )
    for name in STACKED_SOLVERS:
        r = rows[name]
        report_ratio(
            f"  {name:<11} calls {r['nfe']:>5}  per-sample NFE mean {r['nfe_sample_mean']:>7.1f}  "
            f"steps {r['attempts']:>5}  syncs/step {r['syncs_per_step']:5.2f}  error {r['error']:.2e}  "
            f"time {r['time_s'] * 1e3:7.1f} ms"
        )
    report_ratio(
        f"  per-sample / shared calls {calls_ratio:.2f}; per-sample / torchode time {time_ratio:.2f}"
    )
    assert per["syncs_per_step"] <= 1.0 and shared["syncs_per_step"] <= 1.01
