"""The toy model h = act(W1 x + b), y = W2 h, with a leading instance dimension.

All weights of all instances live in one flat buffer ``[W1 | b | W2]`` whose three blocks are
each contiguous with shape ``[I, ...]``. The optimizer then updates every instance with a few
large kernels, and per-instance, per-tensor norms (for LAMB) are reductions over block views.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = [
    "ToyModel",
    "Nonlinearity",
    "ACTIVATIONS",
    "get_nonlinearity",
    "activation",
    "activation_grad",
    "init_params",
    "Weights",
    "BlockSizes",
]

_SQRT_HALF = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


class _SoLU(nn.Module):
    """x * exp(x), the paper code's SoLU without its normalisation."""

    def forward(self, x: Tensor) -> Tensor:
        return _solu(x)


def _relu_grad(pre: Tensor) -> Tensor:
    return (pre > 0).to(pre.dtype)


def _gelu_grad(pre: Tensor) -> Tensor:
    cdf = 0.5 * (1 + torch.erf(pre * _SQRT_HALF))
    return cdf + pre * torch.exp(-0.5 * pre * pre) * _INV_SQRT_2PI


def _solu(pre: Tensor) -> Tensor:
    return pre * torch.exp(pre)


def _solu_grad(pre: Tensor) -> Tensor:
    return torch.exp(pre) * (1 + pre)


@dataclass(frozen=True)
class Nonlinearity:
    """One activation function, defined once for every trainer.

    Attributes:
        name: ``relu``, ``gelu`` or ``solu``.
        forward: act(pre), elementwise, any shape.
        derivative: d act / d pre, elementwise (the hand-written backward uses it).
        module: a fresh ``nn.Module`` computing ``forward`` (for ``nn.Sequential`` models).
    """

    name: str
    forward: Callable[[Tensor], Tensor]
    derivative: Callable[[Tensor], Tensor]
    module: Callable[[], nn.Module]


ACTIVATIONS: dict[str, Nonlinearity] = {
    "relu": Nonlinearity("relu", torch.relu, _relu_grad, nn.ReLU),
    # exact GeLU, the erf form
    "gelu": Nonlinearity("gelu", torch.nn.functional.gelu, _gelu_grad, nn.GELU),
    # x * exp(x), as in the paper's code
    "solu": Nonlinearity("solu", _solu, _solu_grad, _SoLU),
}


def get_nonlinearity(name: str) -> Nonlinearity:
    """The registered nonlinearity called ``name``; a ValueError names the allowed ones."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        allowed = ", ".join(ACTIVATIONS)
        msg = f"nonlinearity={name!r} is not allowed: must be one of {allowed}"
        raise ValueError(msg) from None


def activation(pre: Tensor, nonlinearity: str) -> Tensor:
    """act(pre) for ``relu``, ``gelu`` (exact, erf form) or ``solu`` (x * exp(x)).

    ``pre`` has any shape (e.g. preactivations [I, B, k]); the result has the same."""
    return get_nonlinearity(nonlinearity).forward(pre)


def activation_grad(pre: Tensor, nonlinearity: str) -> Tensor:
    """d act / d pre, elementwise: ``pre`` of any shape [...], the result of the same."""
    return get_nonlinearity(nonlinearity).derivative(pre)


class Weights(NamedTuple):
    """A model's three weight tensors (or gradients in the same layout): W1 [..., k, m],
    b [..., k], W2 [..., out, k]; unpacks as ``W1, b, W2``."""

    W1: Tensor
    b: Tensor
    W2: Tensor


class BlockSizes(NamedTuple):
    """How many numbers each block of the flat buffer holds: I*k*m, I*k, I*out*k."""

    W1: int
    b: int
    W2: int


def init_params(
    k: int, m: int, out: int, generator: torch.Generator, init_bias: float = 0.0
) -> Weights:
    """One instance's initial (W1 [k, m], b [k], W2 [out, k]) in float64, as ``nn.Linear``
    initialises them (uniform in +-1/sqrt(fan_in)), with ``init_bias`` added to b."""
    a1, a2 = 1 / math.sqrt(m), 1 / math.sqrt(k)

    def uniform(*shape: int) -> Tensor:  # in [-1, 1), on the generator's device
        u = torch.rand(*shape, generator=generator, dtype=torch.float64, device=generator.device)
        return u * 2 - 1

    W1 = uniform(k, m) * a1
    b = uniform(k) * a1 + init_bias
    W2 = uniform(out, k) * a2
    return Weights(W1, b, W2)


@dataclass
class ToyModel:
    """Weights of I toy models sharing one shape.

    Attributes:
        flat: the parameter buffer, shape [I*k*m + I*k + I*out*k].
        I, k, m, out: instance count, neurons, input and output width.
        nonlinearity: ``relu``, ``gelu`` or ``solu``.

    ``W1`` [I, k, m], ``b`` [I, k] and ``W2`` [I, out, k] are views into ``flat``.
    """

    flat: Tensor
    I: int
    k: int
    m: int
    out: int
    nonlinearity: str = "relu"

    @staticmethod
    def sizes(I: int, k: int, m: int, out: int) -> BlockSizes:
        """Numbers in the W1, b and W2 blocks of the flat buffer."""
        return BlockSizes(I * k * m, I * k, I * out * k)

    @classmethod
    def from_weights(
        cls, W1: Tensor, b: Tensor, W2: Tensor, nonlinearity: str = "relu"
    ) -> ToyModel:
        """Build from stacked weights W1 [I, k, m], b [I, k], W2 [I, out, k] (copied)."""
        if W1.dim() != 3 or b.dim() != 2 or W2.dim() != 3:
            raise ValueError("expected W1 [I, k, m], b [I, k], W2 [I, out, k]")
        I, k, m = W1.shape
        out = W2.shape[1]
        if b.shape != (I, k) or W2.shape != (I, out, k):
            raise ValueError(
                f"shapes disagree: W1 {tuple(W1.shape)}, b {tuple(b.shape)}, W2 {tuple(W2.shape)}"
            )
        flat = torch.cat([W1.reshape(-1), b.reshape(-1), W2.reshape(-1)])
        return cls(flat, I, k, m, out, nonlinearity)

    def split(self, flat: Tensor | None = None) -> Weights:
        """Views W1 [I, k, m], b [I, k], W2 [I, out, k] into ``flat`` (default: the weights;
        also used for gradients in the same layout)."""
        flat = self.flat if flat is None else flat
        n1, nb, n2 = self.sizes(self.I, self.k, self.m, self.out)
        W1 = flat[:n1].view(self.I, self.k, self.m)
        b = flat[n1 : n1 + nb].view(self.I, self.k)
        W2 = flat[n1 + nb :].view(self.I, self.out, self.k)
        return Weights(W1, b, W2)

    @property
    def W1(self) -> Tensor:
        """[I, k, m], a view into ``flat``."""
        return self.split()[0]

    @property
    def b(self) -> Tensor:
        """[I, k], a view into ``flat``."""
        return self.split()[1]

    @property
    def W2(self) -> Tensor:
        """[I, out, k], a view into ``flat``."""
        return self.split()[2]

    def preactivations(self, x: Tensor) -> Tensor:
        """W1 x + b for inputs x [I, B, m] (or [B, m], shared by all instances) -> [I, B, k]."""
        W1, b, _ = self.split()
        if x.dim() == 2:
            x = x.expand(self.I, *x.shape)
        return torch.baddbmm(b.unsqueeze(1), x, W1.transpose(1, 2))

    def hidden(self, x: Tensor) -> Tensor:
        """Activations h [I, B, k]."""
        return activation(self.preactivations(x), self.nonlinearity)

    def forward(self, x: Tensor) -> Tensor:
        """Outputs y [I, B, out]."""
        return torch.bmm(self.hidden(x), self.W2.transpose(1, 2))

    __call__ = forward

    def clone(self) -> ToyModel:
        """A copy with its own ``flat`` [I*k*m + I*k + I*out*k]."""
        return ToyModel(self.flat.clone(), self.I, self.k, self.m, self.out, self.nonlinearity)

    def select(self, instances: list[int] | int) -> ToyModel:
        """A model holding only the given instances (copied): weights [len(instances), ...]."""
        idx = [instances] if isinstance(instances, int) else list(instances)
        W1, b, W2 = self.split()
        return ToyModel.from_weights(W1[idx], b[idx], W2[idx], self.nonlinearity)

    def to_sequential(self, instance: int = 0) -> nn.Sequential:
        """One instance as a plain ``nn.Sequential`` (Linear, act, Linear without bias), the
        layout of the paper's code, for readers who want to poke at it with autograd."""
        act = get_nonlinearity(self.nonlinearity).module()
        hidden = nn.Linear(self.m, self.k)
        readout = nn.Linear(self.k, self.out, bias=False)
        W1, b, W2 = self.split()
        with torch.no_grad():
            hidden.weight.copy_(W1[instance])
            hidden.bias.copy_(b[instance])
            readout.weight.copy_(W2[instance])
        return nn.Sequential(hidden, act, readout).to(self.flat.device, self.flat.dtype)
