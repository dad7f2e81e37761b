"""Low-precision states (float16, bfloat16): integrated in float32, returned in their dtype; tolerances
finer than the dtype's epsilon refused at once. Never a silent wrong answer."""

from __future__ import annotations

import math

import pytest
import torch
import torchdiffeq

from nodebench import odeint, odeint_adjoint

LOW = [torch.bfloat16, torch.float16]


def _decay(t, y):
    return -y


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("solve", [odeint, odeint_adjoint])
def test_default_tolerance_is_refused_naming_dtype_and_eps(dtype, solve):
    y0 = torch.ones(3, dtype=dtype)
    eps = torch.finfo(dtype).eps
    kw = {"adjoint_params": ()} if solve is odeint_adjoint else {}
    with pytest.raises(ValueError, match=rf"finer than {dtype} can resolve \(eps = {eps:g}\)"):
        solve(_decay, y0, torch.tensor([0.0, 1.0]), **kw)


@pytest.mark.parametrize("dtype", LOW)
def test_a_meetable_tolerance_gives_the_right_answer_in_the_input_dtype(dtype):
    y0 = torch.ones(3, dtype=dtype)
    t = torch.tensor([0.0, 0.5, 2.0])
    eps = torch.finfo(dtype).eps
    y = odeint(_decay, y0, t, rtol=eps, atol=eps)
    assert y.dtype == dtype
    exact = torch.exp(-t)[:, None].expand(3, 3)
    assert (y.double() - exact).abs().max() < 8 * eps


def test_torchdiffeq_default_tolerance_in_bfloat16_is_silently_wrong():
    """The issue's case: torchdiffeq.odeint(f, y0_bf16, t) returns about y0 (e^-2 = 0.135 expected);
    nodebench refuses the call instead (test above)."""
    y = torchdiffeq.odeint(_decay, torch.ones(3, dtype=torch.bfloat16), torch.tensor([0.0, 0.5, 2.0]))
    assert y[-1, 0].item() > 0.9


@pytest.mark.parametrize("dtype", LOW)
def test_fixed_grid_does_not_stall(dtype):
    """Steps whose increment is below the dtype's resolution would leave y unchanged in pure bfloat16."""
    y0 = torch.ones(2, dtype=dtype)
    y = odeint(_decay, y0, torch.tensor([0.0, 1.0]), method="euler", options={"step_size": 1e-3})
    assert y.dtype == dtype
    assert abs(y[-1, 0].item() - math.exp(-1)) < 4 * torch.finfo(dtype).eps + 1e-3  # Euler's own error


def test_adjoint_in_float16_matches_float64():
    w = torch.tensor([0.7, -0.4], dtype=torch.float16, requires_grad=True)
    y0 = torch.tensor([1.0, 2.0], dtype=torch.float16, requires_grad=True)
    t = torch.tensor([0.0, 1.0])
    eps = torch.finfo(torch.float16).eps
    y = odeint_adjoint(lambda t, y: w * y, y0, t, rtol=eps, atol=eps, adjoint_params=(w,))
    y[-1].sum().backward()
    assert y.dtype == torch.float16 and w.grad.dtype == torch.float16
    exact_dw = (y0.double() * torch.exp(w.double())).detach()  # d/dw of y0 exp(w t) at t = 1
    assert (w.grad.double() - exact_dw).abs().max() < 20 * eps * exact_dw.abs().max()
