"""The demo spirals: the seed slides' Examples 1 and 2 and torchdiffeq's spiral demo (``ode_demo.py``).

The one home of these vector fields and of the networks that fit them; the ``spiral`` workload, the
cost workloads (tolerance, nfe, solvers), the correctness matrix, the tests and the benchmarks all
import them from here. (Not to be confused with the latent ODE's spiral *data set*,
:mod:`nodebench.data.latent_spirals`.)

Three problems (``PROBLEMS``), each with a true dynamics module and a model to fit it; every module
is called as ``f(t, z) -> dz/dt`` on states of shape ``(..., 2)`` (row vectors), autonomous in ``t``.

- ``example1`` (seed slides, Example 1): ``dz/dt = W z``, ``W = [[-0.1, -1.0], [1.0, -0.1]]``; model a
  bias-free ``Linear(2, 2)`` initialised ``randn(2, 2) / 2``.
- ``example2`` (seed slides, Example 2): ``dx/dt = sigmoid(x.x0) A (x - x0) + sigmoid(-x.x0) B (x + x0)``
  with ``A = [[-0.1, -0.5], [0.5, -0.1]]``, ``B = [[0.2, 1.0], [-1.0, 0.2]]``, ``x0 = [-1, 0]``; model
  ``Linear(2,16)-ELU-Linear(16,16)-ELU-Linear(16,2)`` with PyTorch's default initialisation. The slides'
  code sums ``x * x0`` over the batch axis without ``keepdim`` (it only broadcasts for one state);
  here ``x.x0`` is taken per state.
- ``demo`` (torchdiffeq's ``ode_demo.py``): ``dy/dt = (y**3) A`` for the row vector ``y``,
  ``A = [[-0.1, 2.0], [-2.0, -0.1]]``; model ``Linear(2,50)-Tanh-Linear(50,2)`` applied to ``y**3``,
  weights ``N(0, 0.1)``, biases 0.

Every module takes an explicit ``dtype`` (default float32) so that its values do not depend on
torch's default dtype; models draw their initial weights from torch's global generator (seed it first)
unless given a generator. True dynamics hold their coefficients as buffers, or as parameters with
``learnable=True`` (what gradient checks differentiate).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nodebench.schema.spiral import PROBLEMS, W_TRUE

EX2_A = ((-0.1, -0.5), (0.5, -0.1))
EX2_B = ((0.2, 1.0), (-1.0, 0.2))
EX2_X0 = (-1.0, 0.0)
DEMO_A = ((-0.1, 2.0), (-2.0, -0.1))


def _coefficient(module: nn.Module, name: str, value: Tensor, learnable: bool) -> None:
    """``value`` as ``module.<name>``: a parameter if ``learnable``, else a buffer."""
    if learnable:
        setattr(module, name, nn.Parameter(value))
    else:
        module.register_buffer(name, value)


class Example1True(nn.Module):
    """``dz/dt = W z`` with the fixed matrix :data:`W_TRUE`."""

    def __init__(self, dtype: torch.dtype = torch.float32, learnable: bool = False) -> None:
        super().__init__()
        _coefficient(self, "W", torch.tensor(W_TRUE, dtype=dtype), learnable)

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return z @ self.W.T


class Example2True(nn.Module):
    """The slides' Example 2: two linear spirals around ``x0`` and ``-x0`` blended by a sigmoid.

    The gate is taken per state (``keepdim``); the slides' code broadcasts a ``(batch,)`` gate against
    ``(batch, 2)``, which is only right for one state.
    """

    def __init__(self, dtype: torch.dtype = torch.float32, learnable: bool = False) -> None:
        super().__init__()
        for name, value in (("A", EX2_A), ("B", EX2_B), ("x0", EX2_X0)):
            _coefficient(self, name, torch.tensor(value, dtype=dtype), learnable)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        s = (x * self.x0).sum(dim=-1, keepdim=True)
        return torch.sigmoid(s) * ((x - self.x0) @ self.A.T) + torch.sigmoid(-s) * ((x + self.x0) @ self.B.T)


class DemoTrue(nn.Module):
    """torchdiffeq's demo: ``dy/dt = (y**3) A`` with ``y`` a row vector."""

    def __init__(self, dtype: torch.dtype = torch.float32, learnable: bool = False) -> None:
        super().__init__()
        _coefficient(self, "A", torch.tensor(DEMO_A, dtype=dtype), learnable)

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        return y**3 @ self.A


class Example1Model(nn.Module):
    """Bias-free ``Linear(2, 2)``, weight ``randn(2, 2) / 2``; ``weight`` is the learned ``W``."""

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2, bias=False, dtype=dtype)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(2, 2, dtype=dtype) / 2)

    @property
    def weight(self) -> Tensor:
        return self.lin.weight

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return self.lin(z)


class Example2Model(nn.Module):
    """``Linear(2,16)-ELU-Linear(16,16)-ELU-Linear(16,2)``, autonomous (the slides' ``NNODEF(2, 16)``)."""

    def __init__(self, dtype: torch.dtype = torch.float32, hidden: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, hidden, dtype=dtype),
            nn.ELU(),
            nn.Linear(hidden, hidden, dtype=dtype),
            nn.ELU(),
            nn.Linear(hidden, 2, dtype=dtype),
        )

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return self.net(z)


class DemoModel(nn.Module):
    """torchdiffeq's ``ODEFunc``: ``Linear(2,50)-Tanh-Linear(50,2)`` on ``y**3``, N(0, 0.1) weights.

    Arguments:
        dtype: parameter dtype.
        hidden: hidden width.
        generator: draw the weights as ``0.1 * randn`` from this generator (first layer first) instead
            of ``normal_(std=0.1)`` from torch's global one.
    """

    def __init__(
        self, dtype: torch.dtype = torch.float32, hidden: int = 50, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, hidden, dtype=dtype), nn.Tanh(), nn.Linear(hidden, 2, dtype=dtype)
        )
        with torch.no_grad():
            for module in self.net:
                if isinstance(module, nn.Linear):
                    if generator is None:
                        nn.init.normal_(module.weight, mean=0.0, std=0.1)
                    else:
                        module.weight.copy_(
                            torch.randn(module.weight.shape, generator=generator, dtype=dtype) * 0.1
                        )
                    nn.init.zeros_(module.bias)

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        return self.net(y**3)


TRUE_DYNAMICS: dict[str, type[nn.Module]] = {
    "example1": Example1True,
    "example2": Example2True,
    "demo": DemoTrue,
}
MODELS: dict[str, type[nn.Module]] = {
    "example1": Example1Model,
    "example2": Example2Model,
    "demo": DemoModel,
}


def true_dynamics(problem: str, dtype: torch.dtype = torch.float32, learnable: bool = False) -> nn.Module:
    """The true vector field of ``problem`` in ``dtype`` (coefficients as parameters if ``learnable``)."""
    return TRUE_DYNAMICS[_check(problem)](dtype, learnable)


def make_model(problem: str, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A freshly initialised model for ``problem`` in ``dtype``, drawing from torch's global generator."""
    return MODELS[_check(problem)](dtype)


def _check(problem: str) -> str:
    if problem not in PROBLEMS:
        raise ValueError(f"problem must be one of {PROBLEMS}, got {problem!r}")
    return problem
