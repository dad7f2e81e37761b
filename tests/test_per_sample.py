"""Per-sample step control (``options={"batch": "independent"}``) and the host-sync counter."""

from __future__ import annotations

import pytest
import torch

from benchmarks.metrics import count_syncs, syncs_per_step
from nodebench import odeint, odeint_adjoint, solver_stats
from nodebench.reference.problems import VanDerPol, stacked_van_der_pol
from tests.problems import TimeMLP, rel_error

IND = {"batch": "independent"}


class Scaled(torch.nn.Module):
    """``y' = k_b (A y) + 0.1 cos(t)``: one rate ``k_b`` per sample, time-dependent, a parameter."""

    def __init__(self, k: list[float]) -> None:
        super().__init__()
        self.k = torch.nn.Parameter(torch.tensor(k))
        self.A = torch.tensor([[-0.1, -1.0], [1.0, -0.1]])

    def forward(self, t, y):
        return self.k.view(-1, 1) * (y @ self.A.T) + 0.1 * torch.cos(t)


class One(torch.nn.Module):
    """Sample ``b`` of :class:`Scaled` alone (its own parameter entry, the same arithmetic)."""

    def __init__(self, full: Scaled, b: int) -> None:
        super().__init__()
        self.full, self.b = full, b

    def forward(self, t, y):
        return self.full.k[self.b] * (y @ self.full.A.T) + 0.1 * torch.cos(t)


Y0 = [[1.0, 0.0], [0.5, 0.5], [0.0, 2.0]]
T_ROWS = [[0.0, 0.5, 1.0, 3.0], [0.0, 0.1, 0.2, 0.3], [1.0, 0.5, 0.25, -1.0]]  # the last decreasing


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "bosh3", "fehlberg2"])
def test_batch_of_one_is_shared_control_exactly(method):
    func, y0, t = stacked_van_der_pol(1, t_end=5.0)
    y0 = y0 + 0.1
    with solver_stats() as shared:
        a = odeint(func, y0, t, method=method, rtol=1e-6, atol=1e-8)
    with solver_stats() as per:
        b = odeint(func, y0, t, method=method, rtol=1e-6, atol=1e-8, options=IND)
    assert torch.equal(a, b)
    assert (shared.nfe_forward, shared.steps_accepted, shared.steps_rejected) == (
        per.nfe_forward,
        per.steps_accepted,
        per.steps_rejected,
    )


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "fehlberg2"])
def test_each_sample_is_its_own_solve(method):
    """A mixed batch with per-sample output times (one row decreasing): each sample within tolerance of
    its own single solve; its accepted and rejected steps are that solve's, and its NFE too (FSAL)."""
    func = Scaled([0.5, 1.0, 3.0])
    y0, t = torch.tensor(Y0), torch.tensor(T_ROWS)
    with torch.no_grad(), solver_stats() as s:
        y = odeint(func, y0, t, method=method, rtol=1e-8, atol=1e-10, options=IND)
    assert y.shape == (4, 3, 2) and torch.equal(y[0], y0)
    for b in range(3):
        with torch.no_grad(), solver_stats() as one:
            yb = odeint(One(func, b), y0[b : b + 1], t[b], method=method, rtol=1e-8, atol=1e-10)
        assert rel_error(y[:, b], yb[:, 0]) < 1e-12
        assert s.per_sample["accepted"][b].item() == one.steps_accepted
        assert s.per_sample["rejected"][b].item() == one.steps_rejected
        nfe_b = s.per_sample["nfe"][b].item()
        if method == "fehlberg2":  # not FSAL: f(t1, y1) is one batched call whenever any sample accepts
            assert one.nfe_forward <= nfe_b <= one.nfe_forward + one.steps_rejected
        else:
            assert nfe_b == one.nfe_forward
    assert s.steps_accepted == int(s.per_sample["accepted"].sum())
    assert s.nfe_forward == int(s.per_sample["nfe"].max())  # calls of func: the longest sample's


def test_stacked_van_der_pol_needs_far_fewer_calls():
    """Issue 25's problem: per-sample control calls func as often as its hardest sample alone needs."""
    func, y0, t = stacked_van_der_pol(64)
    with torch.no_grad():
        with solver_stats() as shared:
            ys = odeint(func, y0, t, rtol=1e-6, atol=1e-8)
        with solver_stats() as per:
            yp = odeint(func, y0, t, rtol=1e-6, atol=1e-8, options=IND)
        with solver_stats() as hardest:
            odeint(VanDerPol(func.mu[-1:]), y0[-1:], t, rtol=1e-6, atol=1e-8)
    assert per.nfe_forward <= 0.5 * shared.nfe_forward
    assert per.nfe_forward == hardest.nfe_forward
    assert (yp[-1] - ys[-1]).abs().max() < 1e-3  # both within tolerance of the truth (~1e-5)
    assert per.attempts < shared.attempts


@pytest.mark.parametrize("solve", [odeint, odeint_adjoint])
def test_gradients_equal_the_single_solves(solve):
    """Direct backpropagation and the adjoint through per-sample control: the gradients of the summed
    single solves (to round-off directly, to tolerance with the adjoint)."""
    func = Scaled([0.5, 1.0, 3.0])
    y0 = torch.tensor(Y0, requires_grad=True)
    t = torch.tensor(T_ROWS)
    w = torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(0))
    with solver_stats() as s:
        y = solve(func, y0, t, rtol=1e-9, atol=1e-11, options=IND)
        (y * w).sum().backward()
    got = torch.cat([y0.grad.reshape(-1), func.k.grad])
    y0.grad, func.k.grad = None, None
    total = sum(
        (odeint(One(func, b), y0[b : b + 1], t[b], rtol=1e-9, atol=1e-11)[:, 0] * w[:, b]).sum()
        for b in range(3)
    )
    total.backward()
    ref = torch.cat([y0.grad.reshape(-1), func.k.grad])
    assert rel_error(got, ref) < (1e-12 if solve is odeint else 1e-6)
    if solve is odeint_adjoint:
        assert s.per_sample_backward is not None and s.nfe_backward > 0


def test_time_dependent_func_sees_per_sample_times():
    func = TimeMLP()
    y0 = torch.randn(5, 2)
    t = torch.linspace(0.0, 1.0, 4)
    seen = []

    def f(tt, y):
        seen.append(tt.shape)
        return func(tt, y)

    with torch.no_grad():
        y = odeint(f, y0, t, options=IND)
        for b in range(5):
            assert rel_error(y[:, b], odeint(func, y0[b : b + 1], t)[:, 0]) < 1e-7
    assert set(seen) == {torch.Size([5, 1])}


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"method": "adams"}, ValueError, "method 'adams' has no per-sample step control"),
        ({"method": "rk4"}, ValueError, "method 'rk4' has no per-sample step control"),
        ({"t": torch.zeros(2, 3)}, ValueError, r"t must have shape \(T,\) or \(batch, T\)"),
        ({"t": torch.tensor([0.0, float("nan")])}, ValueError, "t must be finite"),
        ({"t": torch.tensor([0.0, 1.0, 0.5])}, ValueError, "strictly monotone"),
        ({"y0": (torch.ones(3, 2), torch.ones(3, 2))}, TypeError, "one real float32/float64 tensor"),
        ({"options": {"batch": "independent", "step_t": [0.5]}}, ValueError, "does not support"),
        ({"options": {"batch": "sometimes"}}, ValueError, r"options\['batch'\] must be one of"),
    ],
)
def test_bad_per_sample_input(kwargs, exc, match):
    args = {"func": lambda t, y: -y, "y0": torch.ones(3, 2), "t": torch.linspace(0, 1, 3), "options": IND}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        odeint(args.pop("func"), args.pop("y0"), args.pop("t"), **args)


def test_adjoint_full_norm_is_refused():
    func = Scaled([0.5, 1.0, 3.0])
    with pytest.raises(ValueError, match="seminorm"):
        odeint_adjoint(func, torch.tensor(Y0), torch.linspace(0, 1, 3), options=IND, adjoint_norm="full")


# ---- the sync counter ------------------------------------------------------------------------------


def test_sync_counter_on_a_hand_counted_loop():
    """Each read-back counts once, whatever form it takes; arithmetic and host-to-device copies do not."""
    x = torch.linspace(0.0, 1.0, 5)
    with count_syncs() as c:
        for _ in range(3):
            y = x * 2 + 1  # no sync
            _ = torch.tensor([1.0, 2.0])  # host to device: no sync
            _ = y.sum().item()  # 1
            _ = bool(y.max() > 0)  # 1
            _ = float(y[0])  # 1
            _ = y.tolist()  # 1
            _ = x[x > 0.5]  # 1: a boolean mask needs the count of its true entries
            _ = torch.nonzero(x)  # 1
    assert sum(c.values()) == 3 * 6, c
    assert c["aten._local_scalar_dense"] == 9 and c["Tensor.tolist"] == 3


def test_one_sync_per_attempted_step_on_the_spiral_demo():
    """Issue 25's budget, both modes: at most one host read-back per attempted step, setup included
    (the accelerator path; on the CPU path the output times and the first step size are two more)."""
    shared = syncs_per_step("nodebench")
    per = syncs_per_step("nodebench", options=IND)
    assert shared["syncs"] == shared["attempts"] and per["syncs"] == per["attempts"]
    assert syncs_per_step("torchdiffeq")["syncs_per_step"] > 10


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "bosh3", "dopri8", "fehlberg2"])
def test_folded_first_read_takes_the_same_steps(method, monkeypatch):
    """The accelerator path (times and first step size read with the first decision) against the CPU
    path: the same steps and counts, results equal to round-off; a bad t is still named."""
    from nodebench.solvers import integrate

    p_func, y0, t = TimeMLP(), torch.randn(3, 2), torch.linspace(0.0, 2.0, 7)
    out = {}
    for fold in (False, True):
        monkeypatch.setattr(integrate, "FOLD_FIRST_READ", fold)
        with torch.no_grad(), solver_stats() as s, count_syncs() as c:
            y = odeint(p_func, y0, t, method=method, rtol=1e-7, atol=1e-9)
        out[fold] = (y, s.nfe_forward, s.steps_accepted, s.steps_rejected, sum(c.values()), s.attempts)
    (y0_, *counts0, syncs0, attempts), (y1_, *counts1, syncs1, _) = out[False], out[True]
    assert counts0 == counts1 and rel_error(y1_, y0_) < 1e-12
    assert syncs1 == attempts and syncs0 == attempts + 2
    with pytest.raises(ValueError, match="strictly monotone"):
        odeint(p_func, y0, torch.tensor([0.0, 1.0, 0.5]), method=method)
