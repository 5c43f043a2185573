"""Batched optimizers (LAMB, Adam) over a flat parameter buffer, and learning-rate schedules.

LAMB follows the widely used torch-optimizer ``Lamb`` (You et al. 2019, as the paper used
it): Adam moments without bias correction, eps 1e-6, and a trust ratio ||w|| / ||update||
computed per tensor (here also per instance), with ||w|| clamped at 10. Every instance may
have its own learning rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["BatchedLamb", "BatchedAdam", "make_optimizer", "schedule_multipliers"]

PAPER_T_MAX = 512


def schedule_multipliers(schedule: str, steps: int) -> Tensor:
    """Learning-rate multiplier applied at each step 0..steps-1, shape [steps], float64.

    ``cosine``: 0.5 (1 + cos(pi t / steps)), one half-cosine from 1 to 0 over the run.
    ``paper``: 0.5 (1 + cos(pi t / 512)), what the reference code's
    ``CosineAnnealingLR(T_max=512)`` stepped once per step gives: periodic, period 1024.
    ``constant``: 1.
    """
    t = torch.arange(steps, dtype=torch.float64, device="cpu")
    if schedule == "cosine":
        return 0.5 * (1 + torch.cos(math.pi * t / steps))
    if schedule == "paper":
        return 0.5 * (1 + torch.cos(math.pi * t / PAPER_T_MAX))
    if schedule == "constant":
        return torch.ones(steps, dtype=torch.float64, device="cpu")
    raise ValueError(f"schedule={schedule!r} is not allowed: must be cosine, paper or constant")


class _Batched:
    """State shared by the batched optimizers.

    Args:
        flat: parameter buffer, updated in place.
        blocks: (offset, numel) of each tensor block in ``flat``; each block is [I, ...].
        instances: I.
    """

    def __init__(self, flat: Tensor, blocks: Sequence[tuple[int, int]], instances: int):
        self.flat, self.blocks, self.I = flat, list(blocks), instances
        self.exp_avg = torch.zeros_like(flat)
        self.exp_avg_sq = torch.zeros_like(flat)
        self._update = torch.empty_like(flat)
        self.step_count = 0
        # Views stay valid because every buffer is updated in place.
        self._w_views = self._views(flat)
        self._u_views = self._views(self._update)

    def _views(self, t: Tensor) -> list[Tensor]:
        return [t[o : o + n].view(self.I, -1) for o, n in self.blocks]

    def _moments(self, grad: Tensor, beta1: float, beta2: float) -> None:
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)


class BatchedLamb(_Batched):
    """LAMB with per-(instance, tensor) trust ratios. ``step(grad, lr)`` with lr of shape [I]."""

    def __init__(
        self,
        flat: Tensor,
        blocks: Sequence[tuple[int, int]],
        instances: int,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        clamp_value: float = 10.0,
    ):
        super().__init__(flat, blocks, instances)
        self.beta1, self.beta2 = betas
        self.eps, self.clamp_value = eps, clamp_value

    @torch.no_grad()
    def step(self, grad: Tensor, lr: Tensor) -> None:
        """Update ``flat`` in place from ``grad`` (same layout) with learning rates lr [I]."""
        self.step_count += 1
        self._moments(grad, self.beta1, self.beta2)
        u = self._update
        torch.sqrt(self.exp_avg_sq, out=u)
        u.add_(self.eps)
        torch.div(self.exp_avg, u, out=u)
        views_w, views_u = self._w_views, self._u_views
        w_norm = torch.stack([torch.linalg.vector_norm(w, dim=1) for w in views_w]).clamp_(
            max=self.clamp_value
        )
        u_norm = torch.stack([torch.linalg.vector_norm(v, dim=1) for v in views_u])
        # trust = ||w|| / ||u|| per (tensor, instance), 1 where either norm is 0 (as
        # torch-optimizer does): ||u|| = 0 gives inf or nan, mapped to 1 (u is 0 there anyway).
        trust = torch.where(w_norm > 0, w_norm / u_norm, 1.0).nan_to_num_(nan=1.0, posinf=1.0)
        coef = trust.mul_(-lr).unsqueeze(2)  # [3, I, 1]
        for j, (w, upd) in enumerate(zip(views_w, views_u)):
            w.addcmul_(upd, coef[j])


class BatchedAdam(_Batched):
    """Adam (with bias correction, eps 1e-8, as ``torch.optim.Adam``), lr of shape [I]."""

    def __init__(
        self,
        flat: Tensor,
        blocks: Sequence[tuple[int, int]],
        instances: int,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        super().__init__(flat, blocks, instances)
        self.beta1, self.beta2 = betas
        self.eps = eps

    @torch.no_grad()
    def step(self, grad: Tensor, lr: Tensor) -> None:
        """Update ``flat`` in place from ``grad`` (same layout) with learning rates lr [I]."""
        self.step_count += 1
        self._moments(grad, self.beta1, self.beta2)
        bc1 = 1 - self.beta1**self.step_count
        bc2 = 1 - self.beta2**self.step_count
        u = self._update
        torch.sqrt(self.exp_avg_sq, out=u)
        u.div_(math.sqrt(bc2)).add_(self.eps)
        torch.div(self.exp_avg, u, out=u)
        neg_lr = (-lr / bc1).unsqueeze(1)
        for w, upd in zip(self._w_views, self._u_views):
            w.addcmul_(upd, neg_lr)


def make_optimizer(
    name: str, flat: Tensor, blocks: Sequence[tuple[int, int]], instances: int
) -> BatchedLamb | BatchedAdam:
    """The batched optimizer called ``name`` (``lamb`` or ``adam``) over ``flat`` [P], whose
    ``blocks`` are (offset, numel) of each [I, ...] tensor."""
    if name == "lamb":
        return BatchedLamb(flat, blocks, instances)
    if name == "adam":
        return BatchedAdam(flat, blocks, instances)
    raise ValueError(f"optimizer={name!r} is not allowed: must be lamb or adam")
