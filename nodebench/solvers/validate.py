"""Input validation shared by odeint and odeint_adjoint: every message names the argument."""

from __future__ import annotations

import math
from typing import Any

import torch

from nodebench.solvers.tableaus import ALL_SOLVERS, Tableau

FIXED_OPTIONS = {"step_size", "max_num_steps", "dtype"}
ADAPTIVE_OPTIONS = {
    "first_step",
    "max_num_steps",
    "dtype",
    "safety",
    "ifactor",
    "dfactor",
    "controller",
}
DEFAULT_MAX_NUM_STEPS = 1_000_000


def check_method(method: Any) -> Tableau:
    if not isinstance(method, str) or method not in ALL_SOLVERS:
        raise ValueError(f"method: unknown method {method!r}; valid methods are {sorted(ALL_SOLVERS)}")
    return ALL_SOLVERS[method]


def check_y0(y0: Any, name: str = "y0") -> None:
    if not isinstance(y0, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(y0).__name__}")
    if not torch.is_floating_point(y0):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {y0.dtype}")
    if y0.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(y0.shape)}")


def check_t(t: Any, y0: torch.Tensor) -> list[float]:
    """Validate ``t`` and return its values as Python floats."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be a 1-D torch.Tensor, got {type(t).__name__}")
    if t.ndim != 1:
        raise ValueError(f"t must be 1-D, got shape {tuple(t.shape)}")
    if not torch.is_floating_point(t):
        raise TypeError(f"t must be a floating-point tensor, got dtype {t.dtype}")
    if len(t) == 0:
        raise ValueError("t must hold at least one time")
    if t.device != y0.device:
        raise ValueError(f"t is on {t.device} but y0 is on {y0.device}; put both on one device")
    ts = t.detach().cpu().double().tolist()
    if not all(math.isfinite(x) for x in ts):
        raise ValueError("t must be finite everywhere")
    if len(ts) > 1:
        diffs = [b - a for a, b in zip(ts[:-1], ts[1:])]
        if not (all(d > 0 for d in diffs) or all(d < 0 for d in diffs)):
            raise ValueError("t must be strictly monotone (strictly increasing or strictly decreasing)")
    return ts


def check_tol(name: str, value: Any) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive float, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be positive and finite, got {value}")
    return value


def check_options(options: Any, tableau: Tableau) -> dict[str, Any]:
    """Validate options by name and fill defaults."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict or None, got {type(options).__name__}")
    allowed = ADAPTIVE_OPTIONS if tableau.adaptive else FIXED_OPTIONS
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"options: unknown option(s) {unknown} for method {tableau.name!r}; "
            f"valid options are {sorted(allowed)}"
        )
    out: dict[str, Any] = dict(options)
    mns = out.get("max_num_steps", DEFAULT_MAX_NUM_STEPS)
    if isinstance(mns, bool) or not isinstance(mns, int) or mns <= 0:
        raise ValueError(f"options['max_num_steps'] must be a positive int, got {mns!r}")
    out["max_num_steps"] = mns
    dtype = out.get("dtype")
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise TypeError(f"options['dtype'] must be a floating torch.dtype, got {dtype!r}")
    if tableau.adaptive:
        if out.get("first_step") is not None:
            out["first_step"] = check_tol("options['first_step']", out["first_step"])
        for key, default in (("safety", 0.9), ("ifactor", 10.0), ("dfactor", 0.2)):
            out[key] = check_tol(f"options[{key!r}]", out.get(key, default))
        if not out["dfactor"] < 1 < out["ifactor"] or not out["safety"] <= 1:
            raise ValueError("options: need dfactor < 1 < ifactor and safety <= 1")
        ctrl = out.get("controller", "I")
        if ctrl not in ("I", "PI"):
            raise ValueError(f"options['controller'] must be 'I' or 'PI', got {ctrl!r}")
        out["controller"] = ctrl
    elif "step_size" in out and out["step_size"] is not None:
        out["step_size"] = check_tol("options['step_size']", out["step_size"])
    return out


def check_func_output(f: Any, y: torch.Tensor) -> None:
    """Check the first evaluation of ``func``: same shape and dtype as the state."""
    if not isinstance(f, torch.Tensor):
        raise TypeError(f"func must return a torch.Tensor, got {type(f).__name__}")
    if f.shape != y.shape:
        raise ValueError(f"func returned shape {tuple(f.shape)} but the state y has shape {tuple(y.shape)}")
    if f.dtype != y.dtype:
        raise TypeError(f"func returned dtype {f.dtype} but the state y has dtype {y.dtype}")
