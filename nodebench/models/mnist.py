"""MNIST classifiers of the Neural ODE paper (Table 1): ODE-Net, RK-Net, ResNet and a 1-layer MLP.

Architectures follow torchdiffeq's ``examples/odenet_mnist.py`` (the paper gives no more detail):
downsampling 1x28x28 -> 64x6x6, then either one ODE block or six residual blocks, then a head.
Parameter counts: ODE-Net and RK-Net 208,266; ResNet 576,778; MLP 238,510.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nodebench.schema.mnist import PAPER_TABLE1  # the paper's Table 1 lives with the records' schema

__all__ = [
    "MODELS",
    "PAPER_TABLE1",
    "PARAMETER_COUNTS",
    "ConcatConv2d",
    "ODEBlock",
    "ODEFunc",
    "ResBlock",
    "build_model",
    "count_parameters",
    "mlp",
    "ode_block_func",
    "odenet",
    "resnet",
    "rknet",
]


#: Exact parameter counts of the models built here (by arithmetic; checked by the tests).
PARAMETER_COUNTS: dict[str, int] = {"mlp": 238_510, "resnet": 576_778, "rknet": 208_266, "odenet": 208_266}


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm(min(32, C), C), as in torchdiffeq's example."""
    return nn.GroupNorm(min(32, channels), channels)


class ConcatConv2d(nn.Module):
    """A convolution whose input gets the time ``t`` appended as one extra, constant channel.

    Arguments:
        dim_in: input channels (the convolution sees ``dim_in + 1``).
        dim_out: output channels.
        kernel_size, stride, padding: as for ``nn.Conv2d``.
    """

    def __init__(self, dim_in: int, dim_out: int, kernel_size: int = 3, stride: int = 1, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(dim_in + 1, dim_out, kernel_size, stride=stride, padding=padding)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Returns: the convolution of ``[t, x]`` stacked along channels."""
        tt = torch.ones_like(x[:, :1]) * t
        return self.conv(torch.cat([tt, x], dim=1))


class ODEFunc(nn.Module):
    """The dynamics f(t, h): GroupNorm-ReLU-ConcatConv-GroupNorm-ReLU-ConcatConv-GroupNorm.

    Arguments:
        channels: channels of the state (64 for MNIST); any spatial size works (padding 1).
    """

    def __init__(self, channels: int = 64):
        super().__init__()
        self.norm1 = _norm(channels)
        self.conv1 = ConcatConv2d(channels, channels)
        self.norm2 = _norm(channels)
        self.conv2 = ConcatConv2d(channels, channels)
        self.norm3 = _norm(channels)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Returns: dh/dt at ``(t, x)``, same shape as ``x``."""
        out = self.conv1(t, torch.relu(self.norm1(x)))
        out = self.conv2(t, torch.relu(self.norm2(out)))
        return self.norm3(out)


def ode_block_func(channels: int = 64) -> ODEFunc:
    """The MNIST ODE function on its own, e.g. for memory benchmarks on a 64x7x7 state.

    Arguments:
        channels: state channels.

    Returns:
        A fresh ``ODEFunc``.
    """
    return ODEFunc(channels)


class ODEBlock(nn.Module):
    """Integrate ``func`` over t in [0, 1] and return the final state.

    Arguments:
        func: the dynamics, ``func(t, h) -> dh/dt``.
        mode: ``"adjoint"`` (``nodebench.odeint_adjoint``, O(1) memory) or ``"direct"``
            (``nodebench.odeint``, backpropagation through the solver's operations).
        method: solver name, e.g. ``"dopri5"`` or ``"rk4"``.
        rtol, atol: tolerances (the paper's classification tolerance is 1e-3).
        options: solver options, e.g. ``{"step_size": 0.1}`` for fixed-grid methods.
        adjoint_norm: the adjoint's backward error norm, ``"seminorm"`` or ``"full"`` (torchdiffeq's
            and the paper's default).
    """

    def __init__(
        self,
        func: nn.Module,
        mode: str = "adjoint",
        method: str = "dopri5",
        rtol: float = 1e-3,
        atol: float = 1e-3,
        options: dict[str, Any] | None = None,
        adjoint_norm: str = "seminorm",
    ):
        super().__init__()
        if mode not in ("adjoint", "direct"):
            raise ValueError(f"mode must be 'adjoint' or 'direct', got {mode!r}")
        self.func = func
        self.mode = mode
        self.method = method
        self.rtol = rtol
        self.atol = atol
        self.options = options
        self.adjoint_norm = adjoint_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns: the state at t = 1, same shape as ``x``."""
        from nodebench import odeint, odeint_adjoint

        t = torch.tensor([0.0, 1.0], dtype=x.dtype, device=x.device)
        kwargs = {"method": self.method, "rtol": self.rtol, "atol": self.atol, "options": self.options}
        if self.mode == "adjoint":
            params = tuple(self.func.parameters())
            return odeint_adjoint(
                self.func, x, t, adjoint_params=params, adjoint_norm=self.adjoint_norm, **kwargs
            )[-1]
        return odeint(self.func, x, t, **kwargs)[-1]

    def extra_repr(self) -> str:
        return (
            f"mode={self.mode!r}, method={self.method!r}, rtol={self.rtol}, atol={self.atol}, "
            f"options={self.options}, adjoint_norm={self.adjoint_norm!r}"
        )


class ResBlock(nn.Module):
    """torchdiffeq's residual block: x + conv(relu(_norm(conv(relu(_norm(x)))))), bias-free 3x3 convs.

    Arguments:
        channels: input and output channels.
    """

    def __init__(self, channels: int = 64):
        super().__init__()
        self.norm1 = _norm(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = _norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns: the block's output, same shape as ``x``."""
        out = self.conv1(torch.relu(self.norm1(x)))
        return x + self.conv2(torch.relu(self.norm2(out)))


def _downsampling(channels: int = 64) -> nn.Sequential:
    """1x28x28 -> Cx6x6: Conv3x3 - GN - ReLU - Conv4x4/2 - GN - ReLU - Conv4x4/2."""
    return nn.Sequential(
        nn.Conv2d(1, channels, 3),
        _norm(channels),
        nn.ReLU(),
        nn.Conv2d(channels, channels, 4, stride=2, padding=1),
        _norm(channels),
        nn.ReLU(),
        nn.Conv2d(channels, channels, 4, stride=2, padding=1),
    )


def _head(channels: int = 64, classes: int = 10) -> nn.Sequential:
    """GN - ReLU - global average pool - Flatten - Linear(C -> classes)."""
    return nn.Sequential(
        _norm(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes)
    )


def _classifier(features: nn.Module) -> nn.Sequential:
    """Downsampling, then ``features`` (reachable as ``model.features``), then the head."""
    return nn.Sequential(OrderedDict(downsampling=_downsampling(), features=features, head=_head()))


def odenet(
    method: str = "dopri5",
    rtol: float = 1e-3,
    atol: float = 1e-3,
    options: dict[str, Any] | None = None,
    mode: str = "adjoint",
    adjoint_norm: str = "seminorm",
) -> nn.Sequential:
    """ODE-Net: downsampling, one ODE block on t in [0, 1], head.

    Arguments:
        method, rtol, atol, options: the solver of the ODE block.
        mode: ``"adjoint"`` (the paper's ODE-Net) or ``"direct"``.
        adjoint_norm: the backward solve's error norm (:class:`ODEBlock`).

    Returns:
        The model; input [N, 1, 28, 28] float, output [N, 10] logits.
    """
    block = ODEBlock(
        ODEFunc(64),
        mode=mode,
        method=method,
        rtol=rtol,
        atol=atol,
        options=options,
        adjoint_norm=adjoint_norm,
    )
    return _classifier(block)


def rknet(steps: int = 6) -> nn.Sequential:
    """RK-Net: ODE-Net's architecture, solved by fixed-step RK4 and backpropagated directly.

    Arguments:
        steps: RK4 steps over [0, 1] (step size 1/steps). The paper does not give it; our default of 6
            matches the ResNet's 6 blocks.

    Returns:
        The model; input [N, 1, 28, 28] float, output [N, 10] logits.
    """
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return _classifier(ODEBlock(ODEFunc(64), mode="direct", method="rk4", options={"step_size": 1.0 / steps}))


def resnet(blocks: int = 6) -> nn.Sequential:
    """ResNet: downsampling, ``blocks`` residual blocks of 64 channels, head.

    Arguments:
        blocks: number of residual blocks (6 in the paper).

    Returns:
        The model; input [N, 1, 28, 28] float, output [N, 10] logits.
    """
    if not (isinstance(blocks, int) and blocks >= 1):
        raise ValueError(f"blocks must be a positive integer, got {blocks!r}")
    return _classifier(nn.Sequential(*(ResBlock(64) for _ in range(blocks))))


def mlp(hidden: int = 300) -> nn.Sequential:
    """1-layer MLP 784-hidden-10 with ReLU (LeCun et al. 1998).

    Arguments:
        hidden: hidden units.

    Returns:
        The model; input [N, 1, 28, 28] (or [N, 784]) float, output [N, 10] logits.
    """
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))


MODELS: dict[str, Callable[..., nn.Module]] = {"odenet": odenet, "rknet": rknet, "resnet": resnet, "mlp": mlp}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build an MNIST model by name.

    Arguments:
        name: ``"odenet"``, ``"rknet"``, ``"resnet"`` or ``"mlp"``.
        kwargs: passed to the builder of that name (e.g. ``rtol`` for odenet, ``steps`` for rknet).

    Returns:
        The model, in the default dtype.
    """
    if name not in MODELS:
        raise ValueError(f"model name must be one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name](**kwargs)


def count_parameters(model: nn.Module) -> int:
    """Returns: the number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
