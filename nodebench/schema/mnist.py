"""Records of workload ``mnist`` (paper Table 1, Figure 3c/3d).

Variants are model names (:data:`MODEL_NAMES`); ``step`` is the epoch (``-1`` for per-run values such
as ``params`` and ``final_test_error``).
"""

from __future__ import annotations

MODEL_NAMES = ("mlp", "resnet", "rknet", "odenet")

#: The paper's Table 1 (Chen et al., NeurIPS 2018), as published: not measured by nodebench.
PAPER_TABLE1: dict[str, dict[str, float]] = {
    "mlp": {"test_error_pct": 1.60, "params_millions": 0.24},
    "resnet": {"test_error_pct": 0.41, "params_millions": 0.60},
    "rknet": {"test_error_pct": 0.47, "params_millions": 0.22},
    "odenet": {"test_error_pct": 0.42, "params_millions": 0.22},
}
