"""A seeded fuzz of the public API: random shapes, dtypes, devices, times, methods, tolerances and options.

Every valid call must return finite values of the input's kind that agree with the analytic solution of
``y' = λ y`` (λ per entry, complex for complex states; computed in float64); every call made invalid on
purpose must raise ``TypeError`` or ``ValueError`` (nodebench's documented errors for bad input) before
solving, and never anything else. A seeded generator (no new dependency) keeps the cases reproducible;
``FUZZ_CASES`` cases run in the default suite in seconds.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pytest
import torch

from nodebench import SolverError, odeint, odeint_adjoint
from nodebench.solvers import ALL_SOLVERS

FUZZ_CASES = 120
SEED = 2024
METHODS = [*sorted(ALL_SOLVERS), "explicit_adams", "implicit_adams", "scipy_solver"]
DTYPES = [torch.float64, torch.float32, torch.bfloat16, torch.float16, torch.complex128, torch.complex64]


@dataclass
class Case:
    method: str
    dtype: torch.dtype
    shapes: list[tuple[int, ...]]
    is_tuple: bool
    t: list[float]
    rtol: float
    atol: float
    options: dict = field(default_factory=dict)
    adjoint: bool = False
    invalid: str | None = None  # what was broken on purpose


def _real(dtype: torch.dtype) -> torch.dtype:
    return {torch.complex128: torch.float64, torch.complex64: torch.float32}.get(dtype, dtype)


def _order(method: str) -> int:
    return ALL_SOLVERS[method].order if method in ALL_SOLVERS else 4


def make_case(rng: random.Random) -> Case:
    method = rng.choice(METHODS)
    dtype = rng.choice(DTYPES)
    if method == "scipy_solver" and dtype in (torch.bfloat16, torch.float16):
        dtype = torch.float32
    is_tuple = rng.random() < 0.25
    n_parts = 2 if is_tuple else 1
    shapes = [tuple(rng.randint(1, 3) for _ in range(rng.randint(0, 3))) for _ in range(n_parts)]
    t0 = rng.uniform(-2, 2)
    span = rng.uniform(0.2, 1.5) * rng.choice([1, -1])
    k = rng.randint(1, 4)
    t = [t0 + span * i / k for i in range(k + 1)] if rng.random() < 0.95 else [t0]
    eps = torch.finfo(_real(dtype)).eps
    if dtype in (torch.bfloat16, torch.float16):
        rtol = atol = eps * rng.choice([1, 4])
    else:
        low = _order(method) <= 2
        rtol = rng.choice([1e-3, 1e-4] if low else [1e-4, 1e-6, 1e-8])
        rtol = max(rtol, 10 * eps)
        atol = rtol * rng.choice([1e-2, 1.0])
    if rng.random() < 0.1 and dtype not in (torch.bfloat16, torch.float16):
        rtol = 0.0  # pure absolute control (low precision refuses any rtol below its eps)
    options: dict = {}
    fixed = method not in ALL_SOLVERS or not ALL_SOLVERS[method].adaptive
    if method == "scipy_solver":
        fixed = False
        options["solver"] = rng.choice(["LSODA", "RK45", "DOP853"])
    elif fixed:
        options["step_size"] = abs(span) / rng.choice([40, 80])
        if rng.random() < 0.2:
            options["perturb"] = True
        if method == "explicit_adams":  # high-order Bashforth is unstable even here (torchdiffeq's too)
            options["max_order"] = rng.choice([4, 5])
    else:
        if rng.random() < 0.2:
            options["step_t"] = [t0 + span / 3]
        if rng.random() < 0.2:
            options["max_step"] = abs(span) / 5
        if rng.random() < 0.1:
            options["controller"] = "PI"
    adjoint = rng.random() < 0.3 and method != "scipy_solver"
    case = Case(method, dtype, shapes, is_tuple, t, rtol, atol, options, adjoint)
    if rng.random() < 0.3:
        case.invalid = rng.choice(
            [
                "meta",
                "t_not_monotone",
                "negative_rtol",
                "unknown_option",
                "int_state",
                "both_zero",
                "low_tight",
            ]
        )
    return case


def _lambdas(shape: tuple[int, ...], dtype: torch.dtype, gen: torch.Generator) -> torch.Tensor:
    lam = -torch.rand(shape, generator=gen, dtype=torch.float64) * 1.5 + 0.3  # in [-1.2, 0.3]
    if dtype.is_complex:
        lam = torch.complex(lam, torch.randn(shape, generator=gen, dtype=torch.float64))
    return lam


def run_case(case: Case, index: int) -> str:
    """Run one case; return ``"ok"`` or ``"refused"`` (or fail the test)."""
    gen = torch.Generator().manual_seed(index)
    lams = [_lambdas(s, case.dtype, gen) for s in case.shapes]
    y0s64 = [torch.randn(s, generator=gen, dtype=torch.float64) for s in case.shapes]
    if case.dtype.is_complex:
        y0s64 = [torch.complex(y, torch.randn(y.shape, generator=gen, dtype=torch.float64)) for y in y0s64]
    else:
        lams = [lam.real if lam.is_complex() else lam for lam in lams]
    device = "cpu"
    t = torch.tensor(case.t, dtype=torch.float64 if _real(case.dtype) == torch.float64 else torch.float32)
    rtol, atol, options, dtype = case.rtol, case.atol, dict(case.options), case.dtype
    bad = case.invalid
    if bad == "meta":
        device = "meta"
    elif bad == "t_not_monotone" and len(case.t) > 2:
        t = torch.tensor([case.t[0], case.t[2], case.t[1], *case.t[3:]], dtype=t.dtype)
    elif bad == "negative_rtol":
        rtol = -1e-3
    elif bad == "unknown_option":
        options["stepsize"] = 0.1
    elif bad == "int_state":
        dtype = torch.int64
    elif bad == "both_zero":
        rtol, atol = 0.0, 0.0
    elif bad == "low_tight":
        if case.dtype in (torch.bfloat16, torch.float16) and case.method in ALL_SOLVERS:
            rtol = 1e-7 if ALL_SOLVERS[case.method].adaptive else rtol
        bad = bad if rtol == 1e-7 else None
    else:
        bad = None
    if bad == "both_zero" and not (case.method in ALL_SOLVERS and ALL_SOLVERS[case.method].adaptive):
        bad = None if case.method != "scipy_solver" else bad  # fixed grids ignore tolerances
        if bad is None:
            rtol, atol = case.rtol, case.atol
    if bad == "t_not_monotone" and len(case.t) <= 2:
        bad = None
    parts = [y.to(dtype) if dtype != torch.int64 else y.real.round().to(dtype) for y in y0s64]
    parts = [p.to(device) for p in parts]
    lam_t = [lam.to(case.dtype if case.dtype.is_complex else torch.float64) for lam in lams]

    def func(tt, y):
        ys = y if case.is_tuple else (y,)
        out = tuple((lam.to(device) * yi.to(lam.dtype)).to(yi.dtype) for lam, yi in zip(lam_t, ys))
        return out if case.is_tuple else out[0]

    y0 = tuple(parts) if case.is_tuple else parts[0]
    t = t.to(device)
    if case.adjoint and dtype != torch.int64:
        for p in parts:
            p.requires_grad_(device != "meta")
    kwargs = dict(method=case.method, rtol=rtol, atol=atol, options=options or None)
    solve = odeint_adjoint if case.adjoint else odeint
    if case.adjoint:
        kwargs["adjoint_params"] = ()
    if bad is not None:
        with pytest.raises((TypeError, ValueError)):
            solve(func, y0, t, **kwargs)
        return "refused"
    try:
        out = solve(func, y0, t, **kwargs)
    except SolverError as exc:  # documented, but these problems are benign: it must not happen
        pytest.fail(f"case {index} {case}: {exc}")
    outs = out if case.is_tuple else (out,)
    tt = torch.tensor(case.t, dtype=torch.float64) - case.t[0]
    eps = torch.finfo(_real(case.dtype)).eps
    fixed = case.method != "scipy_solver" and not (
        case.method in ALL_SOLVERS and ALL_SOLVERS[case.method].adaptive
    )
    for o, y, lam in zip(outs, y0s64, lams):
        assert o.dtype == case.dtype and o.shape == (len(case.t), *y.shape), (index, case)
        assert bool(torch.isfinite(torch.view_as_real(o) if o.is_complex() else o).all()), (index, case)
        exact = y.to(lam.dtype) * torch.exp(lam[None] * tt.reshape(-1, *([1] * y.ndim)))
        exact = exact.to(torch.complex128 if exact.is_complex() else torch.float64)
        got = o.detach().to(exact.dtype)
        scale = max(1.0, exact.abs().max().item())
        if fixed:  # global error of an order-p method: about T L (h L)^p, L = max |λ|
            h, p = case.options["step_size"], min(_order(case.method), 4)
            L, T = max(1.0, lam.abs().max().item()), abs(case.t[-1] - case.t[0])
            bound = 2.0 * T * L * (h * L) ** p + 1e-9
        else:
            bound = 300 * max(case.rtol, case.atol) + 1e-6 * (case.method == "scipy_solver")
            if case.method == "dopri8" and "step_t" not in case.options:
                bound += 1e-4  # outputs from its quartic interpolant over long steps (as torchdiffeq's)
        bound = max(bound, 64 * eps)
        err = (got - exact).abs().max().item() / scale
        assert err <= bound, (index, case, err, bound)
    if case.adjoint:
        sum(o[-1].abs().pow(2).sum() if o.is_complex() else o[-1].sum() for o in outs).backward()
        for p in parts:
            g = torch.view_as_real(p.grad) if p.grad.is_complex() else p.grad
            assert p.grad.dtype == p.dtype and bool(torch.isfinite(g.float()).all()), (index, case)
    return "ok"


def test_fuzz_api(record_property):
    rng = random.Random(SEED)
    outcomes = {"ok": 0, "refused": 0}
    for i in range(FUZZ_CASES):
        case = make_case(rng)
        outcomes[run_case(case, i)] += 1
    record_property("fuzz_cases", outcomes)
    print(f"fuzz: {FUZZ_CASES} cases, {outcomes['ok']} solved and checked, {outcomes['refused']} refused")
    assert outcomes["ok"] > FUZZ_CASES // 2 and outcomes["refused"] > FUZZ_CASES // 10
    assert math.isfinite(outcomes["ok"])
