"""Input validation shared by odeint and odeint_adjoint: every message names the argument."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from nodebench.solvers.method import Method
from nodebench.solvers.registry import get_method
from nodebench.solvers.scipy_solver import SCIPY_METHODS

DEFAULT_MAX_NUM_STEPS = 1_000_000
DEFAULT_STIFFNESS_CHECK = 1000  # Hairer's NSTIFF: test every 1000 accepted steps (then every step)
MAX_ORDER = 12  # adams and the fixed-grid Adams family
BATCH_MODES = ("shared", "independent")
INTERPOLATIONS = ("cubic", "linear")  # fixed-grid outputs between grid points (options["interp"])


@dataclass(frozen=True)
class Options:
    """Validated solver options (built by :func:`check_options`; the API sets ``t_dtype``/``t_eps``).

    Attributes:
        max_num_steps: most steps (attempted, for adaptive methods) before :class:`SolverError`.
        dtype: the dtype ``func`` receives ``t`` in (None: that of ``t``).
        step_size, perturb: fixed grid: the step (None: the output times are the grid), and whether
            stages at a step's ends are evaluated one representable time inside it (torchdiffeq's
            ``perturb``, for functions with jumps at grid points).
        grid_constructor: fixed grid: the caller's ``grid_constructor(func, y0, t) -> grid`` (exclusive
            with ``step_size``); once the API binds it (:func:`bind_grid`), ``(times, y0_flat) -> times``.
        interp: fixed grid: outputs between grid points, ``"cubic"`` (Hermite, nodebench's default) or
            ``"linear"`` (torchdiffeq's default).
        first_step, safety, ifactor, dfactor, controller: adaptive step-size control.
        solver: ``scipy_solver``: the ``solve_ivp`` method.
        lband, uband: ``scipy_solver`` with LSODA: the Jacobian's lower and upper bandwidths for its
            stiff mode (None: a full Jacobian, whose N x N work array LSODA allocates up front; 0 and 0
            keep a large state's memory O(N), a diagonal approximation should LSODA turn stiff).
        max_order, max_iters: fixed-grid Adams: the largest order (Bashforth order ``max_order - 1``)
            and corrector iterations per step (torchdiffeq's names and defaults); ``bdf``/``ndf``:
            the largest order (1 to 5). ``max_iters`` of the implicit methods: Newton iterations per
            stage solve (default per method, :attr:`Method.option_defaults`).
        jacobian: implicit methods: ``jacobian(t, y) -> ∂f/∂y`` of shape ``(*y.shape, *y.shape)`` (or
            ``(n, n)``), instead of autograd.
        stiffness_check: dopri5 and tsit5 test for stiffness every this many accepted steps (Hairer's
            NSTIFF; 0 turns it off; other adaptive Runge–Kutta methods accept it and do not test).
        min_step, max_step: adaptive: bounds on the size of every attempted step (torchdiffeq's names).
        step_t, jump_t: adaptive: times a step must end on; at ``jump_t`` the derivative is also
            re-evaluated just past the time (a discontinuity), as in torchdiffeq.
        norm: adaptive: the caller's error norm on the state (the API adapts it to flat states).
        batch: ``"shared"`` (one step size for the whole state) or ``"independent"`` (per-sample step
            control over the leading dimension; see :mod:`~nodebench.solvers.per_sample`).
        t_dtype: dtype of times handed to ``func``.
        t_eps: machine epsilon of the caller's time dtype (fixed-grid rounding).
    """

    max_num_steps: int = DEFAULT_MAX_NUM_STEPS
    dtype: torch.dtype | None = None
    step_size: float | None = None
    perturb: bool = False
    grid_constructor: Callable[..., Any] | None = None
    interp: str = "cubic"
    first_step: float | None = None
    safety: float = 0.9
    ifactor: float = 10.0
    dfactor: float = 0.2
    controller: str = "I"
    solver: str = "LSODA"
    lband: int | None = None
    uband: int | None = None
    max_order: int = MAX_ORDER
    max_iters: int = 4
    jacobian: Callable[[Any, Any], Any] | None = None
    stiffness_check: int = 1000
    min_step: float = 0.0
    max_step: float = math.inf
    step_t: tuple[float, ...] = ()
    jump_t: tuple[float, ...] = ()
    norm: Callable[[Any], Any] | None = None
    batch: str = "shared"
    t_dtype: torch.dtype = torch.float64
    t_eps: float = 2.220446049250313e-16


def check_method(method: Any) -> Method:
    """The registered method called ``method`` (None: ``"dopri5"``, torchdiffeq's default; a clear error
    naming the valid ones otherwise)."""
    return get_method("dopri5" if method is None else method)


def check_y0(y0: Any, name: str = "y0") -> None:
    if not isinstance(y0, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(y0).__name__}")
    if not torch.is_floating_point(y0):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {y0.dtype}")
    if y0.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(y0.shape)}")


def check_t(t: Any, y0: torch.Tensor, read: bool = True) -> list[float] | torch.Tensor:
    """Validate ``t`` and return its values as Python floats (``read=False``: check all but the values,
    which :func:`check_t_values` checks once they are read, and return ``t``)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be a 1-D torch.Tensor, got {type(t).__name__}")
    if t.ndim != 1:
        raise ValueError(f"t must be 1-D, got shape {tuple(t.shape)}")
    if not torch.is_floating_point(t):
        raise TypeError(f"t must be a floating-point tensor, got dtype {t.dtype}")
    if len(t) == 0:
        raise ValueError("t must hold at least one time")
    if t.is_meta:
        raise ValueError("t is on the meta device, which holds shapes but no values; give t on cpu or cuda")
    if t.device != y0.device:
        raise ValueError(f"t is on {t.device} but y0 is on {y0.device}; put both on one device")
    if not read:
        return t
    return check_t_values(t.detach().cpu().double().tolist())


def check_t_values(ts: list[float]) -> list[float]:
    """The checks of ``t``'s values: finite and strictly monotone."""
    if not all(math.isfinite(x) for x in ts):
        raise ValueError("t must be finite everywhere")
    if len(ts) > 1:
        diffs = [b - a for a, b in zip(ts[:-1], ts[1:])]
        if not (all(d > 0 for d in diffs) or all(d < 0 for d in diffs)):
            raise ValueError("t must be strictly monotone (strictly increasing or strictly decreasing)")
    return ts


def check_tol(name: str, value: Any, allow_zero: bool = False) -> float:
    """A positive (or, with ``allow_zero``, non-negative) finite scalar, as a float."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive float, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be {kind} and finite, got {value}")
    return value


def _times(name: str, value: Any) -> tuple[float, ...]:
    if value is None:
        return ()
    if isinstance(value, torch.Tensor):
        if value.ndim > 1:
            raise ValueError(f"options[{name!r}] must be 1-D, got shape {tuple(value.shape)}")
        value = value.detach().cpu().double().reshape(-1).tolist()
    try:
        out = tuple(float(x) for x in value)
    except (TypeError, ValueError):
        raise TypeError(f"options[{name!r}] must be a 1-D tensor or sequence of times") from None
    if not all(math.isfinite(x) for x in out):
        raise ValueError(f"options[{name!r}] must be finite")
    return out


def _int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"options[{name!r}] must be an int in {bound}, got {value!r}")
    return value


def check_options(options: Any, method: Method, t_dtype: torch.dtype = torch.float64) -> Options:
    """Validate options by name (torchdiffeq's names) and return them as :class:`Options`.

    Which names a method accepts is its ``option_names``; each name has one meaning (and one check)
    whatever the method.
    """
    if options is None:
        options = {}
    if isinstance(options, Options):
        return options
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict or None, got {type(options).__name__}")
    allowed = method.option_names
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"options: unknown option(s) {unknown} for method {method.name!r}; "
            f"valid options are {sorted(allowed)}"
        )
    kw: dict[str, Any] = {}
    mns = options.get("max_num_steps", DEFAULT_MAX_NUM_STEPS)
    if isinstance(mns, bool) or not isinstance(mns, int) or mns <= 0:
        raise ValueError(f"options['max_num_steps'] must be a positive int, got {mns!r}")
    kw["max_num_steps"] = mns
    dtype = options.get("dtype")
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise TypeError(f"options['dtype'] must be a floating torch.dtype, got {dtype!r}")
    kw["dtype"] = dtype
    kw["t_dtype"] = dtype or t_dtype
    kw["t_eps"] = torch.finfo(t_dtype).eps  # the resolution the caller's times were given in
    if options.get("first_step") is not None:
        kw["first_step"] = check_tol("options['first_step']", options["first_step"])
    for key, default in (("safety", 0.9), ("ifactor", 10.0), ("dfactor", 0.2)):
        if key in allowed:
            kw[key] = check_tol(f"options[{key!r}]", options.get(key, default))
    if "safety" in allowed and (not kw["dfactor"] < 1 < kw["ifactor"] or not kw["safety"] <= 1):
        raise ValueError("options: need dfactor < 1 < ifactor and safety <= 1")
    ctrl = options.get("controller", "I")
    if ctrl not in ("I", "PI"):
        raise ValueError(f"options['controller'] must be 'I' or 'PI', got {ctrl!r}")
    kw["controller"] = ctrl
    solver = options.get("solver", "LSODA")
    if solver not in SCIPY_METHODS:
        raise ValueError(f"options['solver'] must be one of {list(SCIPY_METHODS)}, got {solver!r}")
    kw["solver"] = solver
    for key in ("lband", "uband"):
        if options.get(key) is not None:
            kw[key] = _int(key, options[key], 0)
    kw["min_step"] = check_tol("options['min_step']", options.get("min_step", 0.0), allow_zero=True)
    max_step = options.get("max_step", math.inf)
    if max_step != math.inf:
        max_step = check_tol("options['max_step']", max_step)
    if kw["min_step"] > max_step:
        raise ValueError("options: need min_step <= max_step")
    kw["max_step"] = max_step
    kw["step_t"] = _times("step_t", options.get("step_t"))
    kw["jump_t"] = _times("jump_t", options.get("jump_t"))
    norm = options.get("norm")
    if norm is not None and not callable(norm):
        raise TypeError(f"options['norm'] must be callable (state -> scalar), got {type(norm).__name__}")
    kw["norm"] = norm
    if options.get("step_size") is not None:
        kw["step_size"] = check_tol("options['step_size']", options["step_size"])
    perturb = options.get("perturb", False)
    if not isinstance(perturb, bool):
        raise TypeError(f"options['perturb'] must be a bool, got {type(perturb).__name__}")
    kw["perturb"] = perturb
    grid = options.get("grid_constructor")
    if grid is not None:
        if not callable(grid):
            raise TypeError(
                "options['grid_constructor'] must be callable as grid_constructor(func, y0, t) -> grid, "
                f"got {type(grid).__name__}"
            )
        if kw.get("step_size") is not None:
            raise ValueError("options: step_size and grid_constructor are mutually exclusive; give one")
    kw["grid_constructor"] = grid
    interp = options.get("interp", "cubic")
    if interp not in INTERPOLATIONS:
        raise ValueError(f"options['interp'] must be one of {list(INTERPOLATIONS)}, got {interp!r}")
    kw["interp"] = interp
    defaults = method.option_defaults
    top = defaults.get("max_order", MAX_ORDER)  # bdf/ndf: 5
    kw["max_order"] = _int("max_order", options.get("max_order", top), 1, top)
    kw["max_iters"] = _int("max_iters", options.get("max_iters", defaults.get("max_iters", 4)), 1)
    jac = options.get("jacobian")
    if jac is not None and not callable(jac):
        raise TypeError(
            f"options['jacobian'] must be callable as jacobian(t, y) -> df/dy, got {type(jac).__name__}"
        )
    kw["jacobian"] = jac
    stiff = options.get("stiffness_check", DEFAULT_STIFFNESS_CHECK)
    if stiff is True:
        stiff = DEFAULT_STIFFNESS_CHECK
    elif stiff is False or stiff is None:
        stiff = 0
    kw["stiffness_check"] = _int("stiffness_check", stiff, 0)
    batch = options.get("batch", "shared")
    if batch not in BATCH_MODES:
        raise ValueError(f"options['batch'] must be one of {list(BATCH_MODES)}, got {batch!r}")
    kw["batch"] = batch
    return Options(**kw)


def check_func_output(f: Any, y: torch.Tensor) -> None:
    """Check the first evaluation of ``func``: a tensor of the state's shape, of a floating dtype that
    can be cast to the state's (a float64 output for a float32 state, say: as torchdiffeq, the solve
    computes on in the state's dtype; see :func:`as_state_dtype`)."""
    if not isinstance(f, torch.Tensor):
        raise TypeError(f"func must return a torch.Tensor, got {type(f).__name__}")
    if f.shape != y.shape:
        raise ValueError(f"func returned shape {tuple(f.shape)} but the state y has shape {tuple(y.shape)}")
    if f.dtype != y.dtype and not (
        (f.dtype.is_floating_point and y.dtype.is_floating_point) or (f.is_complex() and y.is_complex())
    ):
        raise TypeError(f"func returned dtype {f.dtype} but the state y has dtype {y.dtype}")
    if f.dtype != y.dtype and torch.finfo(f.dtype).eps > torch.finfo(y.dtype).eps:
        warnings.warn(
            f"func returned dtype {f.dtype} for a state of dtype {y.dtype}: the solve goes on in {y.dtype}, "
            f"but func's output is only as precise as {f.dtype}",
            stacklevel=4,
        )


def as_state_dtype(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``func``'s output ``f`` in the state ``y``'s dtype (a no-op when they agree; differentiable).

    torchdiffeq computes on when ``func`` returns another floating dtype than the state's (it hands
    ``func`` times in the state's dtype, nodebench in ``t``'s, so a float32 state with float64 times
    meets this often); nodebench casts the output to the state's dtype.
    """
    return f if f.dtype == y.dtype else f.to(y.dtype)


def bind_grid(
    opts: Options,
    func: Callable,
    view: Callable[[torch.Tensor], Any],
    t_dtype: torch.dtype,
    device: torch.device,
) -> Options:
    """``opts`` with a caller's ``grid_constructor(func, y0, t)`` bound to ``func`` and the state's view,
    as the loop calls it: ``(times, y0_flat) -> grid times`` (Python floats), checked.

    The caller's function receives ``t`` as a tensor of ``t_dtype`` on ``device`` (the solve's first and
    last time: the output times, or one interval of the adjoint's backward solve, decreasing then) and
    must return a 1-D tensor from ``t[0]`` to ``t[-1]``, strictly monotone in the same direction.
    """
    user = opts.grid_constructor
    if user is None or getattr(user, "bound", False):
        return opts
    eps = opts.t_eps

    def grid(ts: list[float], y0: torch.Tensor) -> list[float]:
        out = user(func, view(y0), torch.tensor(ts, dtype=t_dtype, device=device))
        if not isinstance(out, torch.Tensor) or out.ndim != 1 or len(out) < 2:
            raise ValueError("options['grid_constructor'] must return a 1-D tensor of at least two times")
        values = out.detach().cpu().double().tolist()
        for k, want in ((0, ts[0]), (-1, ts[-1])):
            if values[k] != want:
                if abs(values[k] - want) > 8 * eps * max(1.0, abs(want)):
                    raise ValueError(
                        f"options['grid_constructor'] returned a grid from {values[0]:.10g} to "
                        f"{values[-1]:.10g}; it must start at t[0]={ts[0]:.10g} and end at "
                        f"t[-1]={ts[-1]:.10g}"
                    )
                values[k] = want  # the same time, rounded in another dtype
        d = 1.0 if ts[-1] > ts[0] else -1.0
        if not all((b - a) * d > 0 for a, b in zip(values[:-1], values[1:])):
            raise ValueError(
                "options['grid_constructor'] must return strictly monotone times, in t's direction"
            )
        return values

    grid.bound = True  # type: ignore[attr-defined]
    return dataclasses.replace(opts, grid_constructor=grid)
