"""A plain SAE trainer: one instance, autograd, ``torch.optim.Adam``, written the obvious way.

``plain_train_sae`` is what ``sae_training.train_sae`` must agree with step for step: the
same initial weights (``sae.init_sae``), the same batches, and the same rules (TopK or ReLU
with L1, AuxK on latents that have not fired for ``dead_after`` steps, the decoder's gradient
made orthogonal to its columns and the columns renormalised after each step), but with
autograd and per-instance ``nn.Parameter`` tensors instead of hand-written batched gradients.
The rate follows ``SAEConfig.lr_multipliers`` (schedule, warm-up, cool-down); resampling
(``sae_resample``) is not done here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .sae import SAEConfig, init_sae

__all__ = ["plain_train_sae"]


def _encode(params: Sequence[Tensor], a: Tensor, c: SAEConfig) -> tuple[Tensor, Tensor]:
    """Pre-activations and latents of one instance for a batch ``a`` [B, d]."""
    W_enc, b_enc, _, b_dec = params
    pre = (a - b_dec) @ W_enc.T + b_enc
    if c.kind == "relu":
        return pre, torch.relu(pre)
    vals, idx = pre.topk(c.topk, dim=-1)
    return pre, torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))


def _aux_loss(
    params: Sequence[Tensor], pre: Tensor, residual: Tensor, dead: Tensor, c: SAEConfig
) -> Tensor:
    """AuxK: the top ``aux_latents`` dead latents reconstruct the (constant) residual."""
    W_dec = params[2]
    masked = pre.masked_fill(~dead, float("-inf"))
    vals, idx = masked.topk(c.aux_latents, dim=-1)
    z_aux = torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))
    e_hat = z_aux @ W_dec.T
    return c.aux_alpha * ((e_hat - residual) ** 2).sum() / pre.shape[0]


def plain_train_sae(config: SAEConfig, batches: Sequence[Tensor]) -> list[Tensor]:
    """Train one SAE on ``batches`` ([B, d] each, ``config.steps`` of them) with autograd.

    Returns the final (W_enc [L, d], b_enc [L], W_dec [d, L], b_dec [d]). Float64 throughout;
    use a float64 config to compare with ``train_sae``.
    """
    c = config
    if c.instances != 1:
        raise ValueError("plain_train_sae trains one instance: pass a config with instances=1")
    if len(batches) < c.steps:
        raise ValueError(f"need {c.steps} batches, got {len(batches)}")
    init = init_sae([c], batches[0].double().unsqueeze(0)).split()
    params = [nn.Parameter(t[0].detach().clone().double()) for t in init]
    opt = torch.optim.Adam(params, lr=c.lr)
    mult = c.lr_multipliers()
    since = torch.zeros(c.latents, dtype=torch.long)
    for t in range(c.steps):
        for group in opt.param_groups:
            group["lr"] = c.lr * float(mult[t])
        a = batches[t].double()
        pre, z = _encode(params, a, c)
        a_hat = z @ params[2].T + params[3]
        loss = ((a_hat - a) ** 2).sum() / a.shape[0]
        if c.kind == "relu":
            loss = loss + c.l1 * z.sum() / a.shape[0]
        dead = since >= c.dead_after
        if c.kind == "topk" and c.aux_alpha and bool(dead.any()):
            loss = loss + _aux_loss(params, pre, (a - a_hat).detach(), dead, c)
        opt.zero_grad()
        loss.backward()
        with torch.no_grad():
            W_dec, g_dec = params[2], params[2].grad
            if g_dec is None:
                raise RuntimeError("backward left the decoder without a gradient")
            g_dec -= W_dec * (W_dec * g_dec).sum(0, keepdim=True)
            opt.step()
            W_dec.div_(W_dec.norm(dim=0, keepdim=True))
            since += 1
            since[(z > 0).any(0)] = 0
    return [p.detach() for p in params]
