"""Side-by-side speed of nodebench and torchdiffeq on the workloads named in issues 2 and 3."""

from __future__ import annotations

import torch
import torchdiffeq

from benchmarks.metrics import syncs_per_step
from benchmarks.peer.conftest import interleaved_medians
from nodebench import odeint, odeint_adjoint, solver_stats
from nodebench.models.demo_spirals import DemoModel
from nodebench.models.mnist import ode_block_func


def _spiral_setup():
    torch.manual_seed(0)
    func = DemoModel()  # torchdiffeq's demo network, float32
    y0 = torch.randn(20, 1, 2)
    t = torch.linspace(0.0, 1.0, 10)
    return func, y0, t


def _count_td(fn, func):
    n = [0]
    handle = func.register_forward_hook(lambda *a: n.__setitem__(0, n[0] + 1))
    fn()
    handle.remove()
    return n[0]


def test_solve_spiral_demo_no_grad(benchmark, report_ratio):
    """Issue 2: dopri5 at rtol 1e-7, atol 1e-9 on the spiral demo dynamics, batch 20, no grad."""
    func, y0, t = _spiral_setup()
    with torch.no_grad():
        ours = lambda: odeint(func, y0, t)  # noqa: E731
        theirs = lambda: torchdiffeq.odeint(func, y0, t)  # noqa: E731
        with solver_stats() as s:
            ours()
        nfe_td = _count_td(theirs, func)
        med = interleaved_medians(
            {"ours": ours, "theirs": theirs, "eval": lambda: func(t[0], y0)}, repeats=30
        )
        benchmark(ours)
    ratio = med["ours"] / med["theirs"]
    per_nfe_ours, per_nfe_td = med["ours"] / s.nfe_forward, med["theirs"] / nfe_td
    overhead = 1 - med["eval"] / per_nfe_ours
    syncs = {lib: syncs_per_step(lib)["syncs_per_step"] for lib in ("nodebench", "torchdiffeq")}
    syncs["per_sample"] = syncs_per_step("nodebench", options={"batch": "independent"})["syncs_per_step"]
    benchmark.extra_info.update(
        ratio=ratio,
        nfe=s.nfe_forward,
        nfe_torchdiffeq=nfe_td,
        us_per_nfe=per_nfe_ours * 1e6,
        us_per_nfe_torchdiffeq=per_nfe_td * 1e6,
        eval_us=med["eval"] * 1e6,
        overhead_fraction=overhead,
        syncs_per_step=syncs,
    )
    report_ratio(
        f"spiral solve (no grad): ratio {ratio:.3f}  NFE {s.nfe_forward} vs {nfe_td}  "
        f"per NFE {per_nfe_ours * 1e6:.0f} us vs {per_nfe_td * 1e6:.0f} us  "
        f"(func alone {med['eval'] * 1e6:.0f} us; "
        f"nodebench overhead {overhead:.0%}, torchdiffeq overhead {1 - med['eval'] / per_nfe_td:.0%}); "
        f"host syncs per attempted step {syncs['nodebench']:.2f} (per-sample {syncs['per_sample']:.2f}) "
        f"vs {syncs['torchdiffeq']:.2f}"
    )
    assert s.nfe_forward == nfe_td


def test_spiral_training_iteration_adjoint(benchmark, report_ratio):
    """Issue 3: one training iteration (forward + adjoint backward), batch 20, 10 output times."""
    func, y0, t = _spiral_setup()
    target = torch.randn(10, 20, 1, 2)

    def step(solve, **kw):
        func.zero_grad()
        loss = (solve(func, y0, t, **kw) - target).abs().mean()
        loss.backward()
        return [p.grad.clone() for p in func.parameters()]

    ours = lambda: step(odeint_adjoint)  # noqa: E731
    theirs = lambda: step(torchdiffeq.odeint_adjoint, adjoint_options={"norm": "seminorm"})  # noqa: E731
    g_ours, g_td = ours(), theirs()
    err = max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(g_ours, g_td))
    with solver_stats() as s:
        ours()
    med = interleaved_medians({"ours": ours, "theirs": theirs}, repeats=10)
    benchmark.pedantic(ours, rounds=5, warmup_rounds=1)
    ratio = med["ours"] / med["theirs"]
    benchmark.extra_info.update(
        ratio=ratio, grad_rel_err=err, nfe_forward=s.nfe_forward, nfe_backward=s.nfe_backward
    )
    report_ratio(
        f"spiral adjoint iteration: ratio {ratio:.3f}  "
        f"({med['ours'] * 1e3:.1f} ms vs {med['theirs'] * 1e3:.1f} ms)  "
        f"NFE fwd/bwd {s.nfe_forward}/{s.nfe_backward}  grad rel. diff {err:.1e}"
    )
    assert err < 1e-3


def test_mnist_ode_block_forward_backward(benchmark, report_ratio):
    """Issue 3: the MNIST ODE block (64 x 7 x 7, batch 128, tol 1e-3), forward and adjoint backward."""
    torch.manual_seed(0)
    func = ode_block_func(64).float()
    x = torch.randn(128, 64, 7, 7)
    t = torch.tensor([0.0, 1.0])
    tol = {"rtol": 1e-3, "atol": 1e-3}
    lines = []
    results = {}
    for norm in ("seminorm", "full"):
        td_opts = {"norm": "seminorm"} if norm == "seminorm" else None
        with solver_stats() as s:
            odeint_adjoint(func, x, t, adjoint_norm=norm, **tol)[-1].sum().backward()
        n = [0, 0]

        def hook(*a, n=n):
            n[0] += 1

        h = func.register_forward_hook(hook)
        y = torchdiffeq.odeint_adjoint(func, x, t, adjoint_options=td_opts, **tol)
        fwd_td = n[0]
        y[-1].sum().backward()
        h.remove()
        bwd_td = n[0] - fwd_td
        results[norm] = (s.nfe_forward, s.nfe_backward, fwd_td, bwd_td)
        lines.append(
            f"{norm}: nodebench NFE fwd/bwd {s.nfe_forward}/{s.nfe_backward} "
            f"(bwd/fwd {s.nfe_backward / s.nfe_forward:.2f}); torchdiffeq {fwd_td}/{bwd_td} "
            f"(bwd/fwd {bwd_td / fwd_td:.2f})"
        )

    def run(solve, **kw):
        func.zero_grad()
        solve(func, x, t, **tol, **kw)[-1].sum().backward()

    ours = lambda: run(odeint_adjoint)  # noqa: E731
    theirs = lambda: run(torchdiffeq.odeint_adjoint, adjoint_options={"norm": "seminorm"})  # noqa: E731
    med = interleaved_medians({"ours": ours, "theirs": theirs}, repeats=3, warmup=1)
    benchmark.pedantic(ours, rounds=2, warmup_rounds=0)
    nf, nb, tf, tb = results["seminorm"]
    per_nfe = (med["ours"] / (nf + nb)) / (med["theirs"] / (tf + tb))
    benchmark.extra_info.update(per_nfe_ratio=per_nfe, nfe=results)
    report_ratio(
        f"MNIST ODE block fwd+bwd (seminorm): {med['ours']:.2f} s vs {med['theirs']:.2f} s, "
        f"time per NFE ratio {per_nfe:.3f}"
    )
    for line in lines:
        report_ratio("  " + line)
