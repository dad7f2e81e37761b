"""``odeint_event`` with every registered method: forward, reverse time, gradients of the event time."""

from __future__ import annotations

import math

import pytest
import torch

from nodebench import SolverError, odeint, odeint_adjoint, odeint_event
from nodebench.solvers import METHODS
from tests.problems import rel_error

FIXED_STEP = 1e-2
# Error of the event time on y' = -y, y(0) = 1, y = 1/2 (t* = ln 2), per method: adaptive at rtol 1e-8,
# fixed grid at h = 1e-2 (its global error, ~C h^order; explicit_adams is capped at order 5, as its
# default order-11 Bashforth is unstable here in torchdiffeq too).
TIME_TOL = {"euler": 5e-3, "midpoint": 1e-4, "heun2": 1e-4, "dopri8": 1e-5}  # dopri8: its quartic interpolant
# The fixed-grid implicit methods of order 1 and 2 (torchdiffeq HEAD's), like euler and midpoint.
TIME_TOL |= {"implicit_euler": 5e-3} | dict.fromkeys(
    ("implicit_midpoint", "trapezoid", "sdirk2", "trbdf2"), 1e-4
)
DEFAULT_TIME_TOL = 1e-6


def _kwargs(name: str) -> dict:
    m = METHODS[name]
    kw: dict = {"method": name, "rtol": 1e-8, "atol": 1e-10}
    if not m.adaptive:
        kw["options"] = {"step_size": FIXED_STEP}
        if name == "explicit_adams":
            kw["options"]["max_order"] = 5
    return kw


@pytest.mark.parametrize("name", sorted(METHODS))
def test_event_forward_and_reverse(name):
    kw = _kwargs(name)
    tol = TIME_TOL.get(name, DEFAULT_TIME_TOL)
    te, sol = odeint_event(
        lambda t, y: -y, torch.ones(1), torch.tensor(0.0), event_fn=lambda t, y: y - 0.5, **kw
    )
    assert abs(te.item() - math.log(2)) < tol
    assert sol.shape == (2, 1) and abs(sol[-1].item() - 0.5) < 10 * tol
    te, sol = odeint_event(
        lambda t, y: -y,
        torch.ones(1),
        torch.tensor(0.0),
        event_fn=lambda t, y: y - 2.0,
        reverse_time=True,
        **kw,
    )
    assert abs(te.item() + math.log(2)) < tol and abs(sol[-1].item() - 2.0) < 10 * tol


def test_adams_stops_at_the_event():
    """The issue's report: adams used to integrate past the event until max_num_steps."""
    calls = []

    def f(t, y):
        calls.append(float(t))
        return -y

    te, _ = odeint_event(f, torch.ones(1), torch.tensor(0.0), event_fn=lambda t, y: y - 0.5, method="adams")
    assert abs(te.item() - math.log(2)) < 1e-6 and max(calls) < 2.0


class Ball(torch.nn.Module):
    """x'' = -g from height x0 with speed v0: the event x = 0 at t* = (v0 + sqrt(v0^2 + 2 g x0)) / g."""

    def __init__(self) -> None:
        super().__init__()
        self.g = torch.nn.Parameter(torch.tensor(9.81))

    def forward(self, t, s):
        return torch.stack([s[..., 1], -self.g * torch.ones_like(s[..., 0])], -1)


def _ball_exact() -> torch.Tensor:
    """d(t* + v(t*)) / d(x0, v0, t0, g), analytic."""
    g, v, x = 9.81, 2.0, 10.0
    root = (v * v + 2 * g * x) ** 0.5
    t_star = (v + root) / g
    dt_dx, dt_dv = 1 / root, (1 + v / root) / g
    dt_dg = -(v + root) / g**2 + x / (g * root)
    return torch.tensor([dt_dx - g * dt_dx, dt_dv + 1 - g * dt_dv, 1.0, dt_dg - t_star - g * dt_dg])


@pytest.mark.parametrize("interface", ["odeint", "odeint_adjoint"])
@pytest.mark.parametrize("name", sorted(METHODS))
def test_event_time_gradients(name, interface):
    """The ball's event time and its gradients (implicit function theorem) against the closed form.

    The ball's state is a polynomial in t of degree 2, so every method of order >= 2 is exact up to
    round-off and tolerance; euler and implicit_euler are first order and get a looser bound."""
    solve = {"odeint": odeint, "odeint_adjoint": odeint_adjoint}[interface]
    kw = _kwargs(name)
    f = Ball()
    y0 = torch.tensor([10.0, 2.0], requires_grad=True)
    t0 = torch.tensor(0.0, requires_grad=True)
    if not METHODS[name].differentiable and interface == "odeint":
        with pytest.raises(ValueError, match=f"method '{name}' records no graph"):
            odeint_event(f, y0, t0, event_fn=lambda t, s: s[..., 0], odeint_interface=solve, **kw)
        return
    te, sol = odeint_event(f, y0, t0, event_fn=lambda t, s: s[..., 0], odeint_interface=solve, **kw)
    (te + sol[-1][1]).backward()
    grads = torch.stack([*y0.grad, t0.grad, f.g.grad])
    tol = 0.05 if name in ("euler", "implicit_euler") else 1e-5
    assert rel_error(grads, _ball_exact()) < tol, grads


def test_event_per_sample_batch_is_refused():
    with pytest.raises(ValueError, match="batch"):
        odeint_event(
            lambda t, y: -y,
            torch.ones(2, 1),
            torch.tensor(0.0),
            event_fn=lambda t, y: y.min() - 0.5,
            options={"batch": "independent"},
        )


@pytest.mark.parametrize("name", ["adams", "scipy_solver", "implicit_adams"])
def test_event_never_reached_is_a_solver_error(name):
    kw = _kwargs(name)
    kw.setdefault("options", {})["max_num_steps"] = 50
    with pytest.raises(SolverError, match="max_num_steps"):
        odeint_event(lambda t, y: -y, torch.ones(1), torch.tensor(0.0), event_fn=lambda t, y: y + 1.0, **kw)
