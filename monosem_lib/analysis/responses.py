"""How a trained model responds to whole inputs, not one feature at a time.

The paper reads neurons through single-feature activations. These views check what that
table leaves out: inputs with several features on at once (does a monosemantic neuron still
answer its own feature alone?) and the end-to-end linear map ``W2 W1 P`` of a decoder, the
map the model would compute if every neuron were active.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.model import ToyModel, activation

__all__ = [
    "MultiFeatureResponse",
    "multi_feature_response",
    "linear_map",
    "LinearMapStats",
    "linear_map_stats",
]


@dataclass
class MultiFeatureResponse:
    """Activations of one instance on inputs with several features on.

    Attributes:
        features: [B, N] the inputs' features.
        actual: [B, k] the activations the model gives.
        additive: [B, k] what additive neurons would give: ``act(b)`` plus, for every active
            feature j, the change that feature alone makes, ``act(f_j w.P_j + b) - act(b)``.
        error: [k] each neuron's relative deviation ``|actual - additive| / |actual|`` over the
            batch (0 where the neuron never fires).
    """

    features: Tensor
    actual: Tensor
    additive: Tensor
    error: Tensor

    def own_feature_view(self, feature: Tensor, neurons: Tensor) -> dict[str, float]:
        """How the chosen neurons behave relative to their own feature.

        Args:
            feature: [k] each neuron's own (top) feature.
            neurons: [k] bool, the neurons to look at.
        Returns:
            ``deviation_on``: median relative deviation from the additive prediction over the
            inputs where a neuron's own feature is on; ``share_off``: the share of the
            neurons' summed activation that arrives on inputs where their own feature is off;
            ``fires_off``: how often they fire on those inputs.
        """
        a, p = self.actual[:, neurons], self.additive[:, neurons]
        own = self.features[:, feature[neurons]] > 0  # [B, n]
        dev = (a - p).abs()[own] / p[own].clamp(min=1e-9)
        return {
            "deviation_on": float(dev.median()) if dev.numel() else float("nan"),
            "share_off": float(a[~own].sum() / a.sum().clamp(min=1e-12)),
            "fires_off": float((a[~own] > 0).double().mean()) if (~own).any() else 0.0,
        }


def _sparse_inputs(samples: int, N: int, active: int, seed: int) -> Tensor:
    """[samples, N]: exactly ``active`` features on per row, values uniform in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.rand(samples, N, generator=g).argsort(1)[:, :active]
    return torch.zeros(samples, N).scatter_(1, idx, torch.rand(samples, active, generator=g))


@torch.no_grad()
def multi_feature_response(
    model: ToyModel,
    P: Tensor,
    active: int = 3,
    samples: int = 256,
    instance: int = 0,
    seed: int = 0,
) -> MultiFeatureResponse:
    """Feed ``samples`` inputs with exactly ``active`` features on to instance ``instance`` and
    compare each neuron with its additive prediction from single features.

    Args:
        model: I instances; P: [I, m, N] projections.
    """
    N = P.shape[-1]
    if not 1 <= active <= N:
        raise ValueError(f"active={active!r} is not allowed: must be between 1 and N={N}")
    W1, b = model.W1[instance].cpu().double(), model.b[instance].cpu().double()  # [k, m], [k]
    Pi = P[instance].cpu().double()  # [m, N]
    f = _sparse_inputs(samples, N, active, seed).double()
    act = lambda pre: activation(pre, model.nonlinearity)  # noqa: E731
    actual = act(f @ Pi.T @ W1.T + b)
    alone = act(f[:, :, None] * (W1 @ Pi).T[None] + b) - act(
        b
    )  # [B, N, k]: each feature's own change
    additive = act(b) + (alone * (f > 0)[:, :, None]).sum(1)
    norm = actual.norm(dim=0)
    error = torch.where(
        norm > 0, (actual - additive).norm(dim=0) / norm.clamp(min=1e-12), torch.zeros_like(norm)
    )
    return MultiFeatureResponse(f, actual, additive, error)


@torch.no_grad()
def linear_map(model: ToyModel, P: Tensor, instance: int = 0) -> Tensor:
    """``W2 W1 P`` of one instance, [out, N]: the model's map from features to outputs if every
    neuron were active (for the decoder, to be compared with the identity)."""
    return (model.W2[instance] @ model.W1[instance] @ P[instance].to(model.flat)).cpu().double()


@dataclass
class LinearMapStats:
    """Diagonal mean, off-diagonal RMS and their ratio of a square map."""

    diagonal: float
    off_diagonal: float

    @property
    def ratio(self) -> float:
        return self.diagonal / max(self.off_diagonal, 1e-12)


def linear_map_stats(M: Tensor) -> LinearMapStats:
    """Summary of a square [N, N] map such as a decoder's ``W2 W1 P``."""
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"M has shape {tuple(M.shape)}: must be square [N, N] (the decoder's map)")
    off = M - torch.diag(torch.diag(M))
    n = M.shape[0]
    return LinearMapStats(
        float(torch.diag(M).mean()), float((off.pow(2).sum() / (n * n - n)).sqrt())
    )
