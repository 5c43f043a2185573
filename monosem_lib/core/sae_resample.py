"""Dead-latent resampling, as Bricken et al. (2023, "Towards Monosemanticity") train ReLU SAEs.

At each of the config's ``resample_steps``, before that step's update, every latent that has
not fired since the previous point (``window`` steps) is re-initialised from the current
batch:

* each sample's reconstruction error ``|a_hat - a|^2`` is computed, and for each dead latent
  one sample is drawn with probability proportional to its error squared;
* the latent's decoder column becomes that sample's centred input ``a - b_dec``, normalised;
* its encoder row becomes the same vector scaled to 0.2 times the mean norm of the live
  latents' encoder rows, and its encoder bias 0;
* Adam's moments of those weights are zeroed, and the latent counts as just fired.

Bricken et al. draw from a large pool of inputs; here the pool is the step's batch (the same
rule, a smaller pool). Draws are seeded per instance (``derive_seed(seed, "sae-resample")``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .data import derive_seed
from .optim import BatchedAdam
from .sae import SAE, SAEConfig

__all__ = ["ENCODER_SCALE", "resample_generators", "resample_dead_"]

ENCODER_SCALE = 0.2


def resample_generators(configs: Sequence[SAEConfig]) -> list[torch.Generator]:
    """One seeded generator per instance for the draws of resampling."""
    return [torch.Generator().manual_seed(derive_seed(c.seed, "sae-resample")) for c in configs]


def _draw(errors: Tensor, n: int, gen: torch.Generator) -> Tensor:
    """``n`` sample indices drawn with probability proportional to ``errors**2`` (uniform
    when every error is 0)."""
    weights = errors.double().square().cpu()
    if not bool(weights.sum() > 0):
        weights = torch.ones_like(weights)
    return torch.multinomial(weights, n, replacement=True, generator=gen)


@torch.no_grad()
def resample_dead_(
    sae: SAE, opt: BatchedAdam, a: Tensor, dead: Tensor, gens: Sequence[torch.Generator]
) -> Tensor:
    """Re-initialise the ``dead`` [I, L] latents of ``sae`` from the batch ``a`` [I or 1, B, d]
    and zero their Adam moments, in place. Returns the number resampled per instance [I]."""
    W_enc, b_enc, W_dec, b_dec = sae.split()
    a = a.expand(sae.I, -1, -1) if a.shape[0] == 1 else a
    errors = (sae(a) - a).square().sum(-1)  # [I, B]
    centred = a - b_dec.unsqueeze(1)
    moments = [sae.split(opt.exp_avg), sae.split(opt.exp_avg_sq)]
    counts = dead.sum(1).cpu()
    for i in range(sae.I):
        lat = dead[i].nonzero().flatten()
        if lat.numel() == 0:
            continue
        picks = _draw(errors[i], lat.numel(), gens[i]).to(a.device)
        v = centred[i, picks]  # [n, d]
        v = v / v.norm(dim=1, keepdim=True).clamp(min=1e-12)
        alive = ~dead[i]
        norm = W_enc[i, alive].norm(dim=1).mean() if bool(alive.any()) else W_enc.new_ones(())
        W_dec[i][:, lat] = v.T.to(W_dec.dtype)
        W_enc[i][lat] = (v * ENCODER_SCALE * norm).to(W_enc.dtype)
        b_enc[i, lat] = 0
        for m in moments:
            m.W_enc[i][lat] = 0
            m.b_enc[i, lat] = 0
            m.W_dec[i][:, lat] = 0
    return counts
