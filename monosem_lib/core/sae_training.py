"""Training sparse autoencoders: every instance of a sweep in one batched pass.

``train_sae(configs, source)`` trains I SAEs together, like ``training.train`` trains toy
models: batched matrix products, gradients written by hand into a flat buffer (checked step
by step against the plain autograd trainer in ``sae_reference``), one batched Adam step, then
the decoder's columns renormalised. ``source()`` hands out the next batch of activations,
[I, B, d] (one stream per instance) or [1, B, d] (shared); ``activation_source`` builds one
from a toy-model run, for its inputs x or its hidden activations h.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .config import ConfigError
from .data import make_world
from .model import activation
from .optim import BatchedAdam
from .sae import SAE, SAE_STRUCTURAL_FIELDS, SAEConfig, SAEWeights, activate, init_sae
from .sae_resample import resample_dead_, resample_generators
from .training import Run, show_progress

__all__ = [
    "SAERun",
    "train_sae",
    "sae_instances",
    "activation_source",
    "sae_loss_and_grad",
    "SOURCE_STREAM",
    "SAERateSweep",
    "sweep_sae_lr",
]

SOURCE_STREAM = "sae"  # the data stream SAEs train on: independent of the model's own


@dataclass
class SAERun:
    """A trained batch of SAEs.

    Attributes:
        configs: one single-instance config per instance.
        sae: the final weights.
        loss_history: [steps, I] reconstruction loss (sum of squared errors per sample).
        train_seconds: wall-clock time of the training loop.
        aux_steps: steps on which AuxK ran (some latent was dead).
        since_fired: [I, L] steps since each latent last fired, at the end.
        aux_latent_steps: [I] the dead latents AuxK used, summed over steps (a step uses
            min(aux_k, dead) of them per sample), or None (a run stored before it was kept).
        resampled: [R, I] latents resampled at each of the R ``resample_steps``, or None.
    """

    configs: tuple[SAEConfig, ...]
    sae: SAE
    loss_history: Tensor
    train_seconds: float
    aux_steps: int
    since_fired: Tensor
    aux_latent_steps: Tensor | None = None
    resampled: Tensor | None = None

    @property
    def config(self) -> SAEConfig:
        return self.configs[0]

    @property
    def instances(self) -> int:
        return len(self.configs)

    @property
    def flops(self) -> int:
        """Training FLOPs of one instance (dense products, AuxK where it ran)."""
        c = self.config
        return c.batch * (c.steps * c.flops_per_sample + self.aux_steps * c.aux_flops_per_sample)

    @property
    def dead_latents(self) -> list[int]:
        """Latents of each instance that had not fired for ``dead_after`` steps at the end."""
        return [int(n) for n in (self.since_fired >= self.config.dead_after).sum(1)]

    @property
    def instance_flops(self) -> list[int]:
        """The training FLOPs of each instance, counted as a sparse AuxK would spend them.
        They are the dense products every step, AuxK only over the dead latents it used
        (``aux_latent_steps`` times ``aux_flops_per_latent``), not the dense product that
        ``flops`` bills (and the code runs), and resampling's forward pass (4 d L a sample) at
        each resampling point. Without ``aux_latent_steps`` (an older stored run), AuxK is
        billed as in ``flops``."""
        c = self.config
        base = c.batch * c.steps * c.flops_per_sample
        resample = (
            c.batch * 4 * c.d * c.latents * (0 if self.resampled is None else len(self.resampled))
        )
        if self.aux_latent_steps is None:
            return [self.flops + resample] * self.instances
        aux = [c.batch * int(n) * c.aux_flops_per_latent for n in self.aux_latent_steps]
        return [base + a + resample for a in aux]


def sae_instances(configs: SAEConfig | Iterable[SAEConfig]) -> list[SAEConfig]:
    """One single-instance config per instance, all with one structure (else ConfigError)."""
    configs = [configs] if isinstance(configs, SAEConfig) else list(configs)
    out = [c for cfg in configs for c in cfg.expand()]
    if not out:
        raise ValueError("no SAE configs to train")
    for c in out[1:]:
        for f in SAE_STRUCTURAL_FIELDS:
            if getattr(c, f) != getattr(out[0], f):
                raise ConfigError(
                    f,
                    getattr(c, f),
                    f"SAEs trained in one pass must share {f} (got {getattr(out[0], f)!r} too); "
                    "train each value in its own pass",
                )
    return out


def activation_source(
    run: Run, on: str, batch: int, index: Sequence[int] | None = None, stream: str = SOURCE_STREAM
) -> Callable[[], Tensor]:
    """Batches of a toy-model run's activations for SAEs to train on.

    Args:
        run: the trained toy models; each instance's world (seed, eps, features) is redrawn
            on the independent stream ``stream``.
        on: ``x`` (the inputs P f, width m) or ``h`` (the hidden activations, width k).
        batch: samples per call.
        index: the run instance each SAE instance reads (default: one SAE per run instance).
    Returns:
        A function giving the next batch, [len(index), batch, d] ([1, batch, m] when every
        SAE reads the inputs of one world).
    """
    if on not in ("x", "h"):
        raise ValueError(f"on={on!r} is not allowed: must be x (inputs) or h (hidden layer)")
    index = list(range(run.instances)) if index is None else list(index)
    keys = [(c.seed, c.eps, c.feature_dist) for c in run.configs]
    order = list(dict.fromkeys(keys))  # the distinct worlds, in order
    worlds = [make_world(run.configs[keys.index(k)].replace(batch=batch), stream) for k in order]
    device, dtype = run.model.flat.device, run.model.flat.dtype
    world_of = torch.tensor([order.index(keys[i]) for i in index], device=device)
    W1, b, _ = run.model.split()
    W1, b = W1[index], b[index]  # each SAE instance's model (copies)

    def next_batch() -> Tensor:
        xs = torch.stack([w.sample().x for w in worlds]).to(device, dtype)  # [W, B, m]
        if on == "x" and len(worlds) == 1:
            return xs
        xs = xs.index_select(0, world_of) if len(worlds) > 1 else xs.expand(len(index), -1, -1)
        if on == "x":
            return xs
        pre = torch.baddbmm(b.unsqueeze(1), xs, W1.transpose(1, 2))
        return activation(pre, run.model.nonlinearity)

    return next_batch


def _aux_grad(
    pre: Tensor, r: Tensor, dead: Tensor, sae: SAE, grads: SAEWeights, alpha: Tensor, k: int
) -> Tensor:
    """AuxK: the ``k`` largest dead latents reconstruct the residual ``-r`` (held constant);
    adds ``alpha * |e_hat + r|^2 / B`` to the gradients (decoder and ``grads.pre``)."""
    _, _, W_dec, _ = sae.split()
    B = pre.shape[1]
    masked = pre.masked_fill(~dead.unsqueeze(1), float("-inf"))
    vals, idx = masked.topk(k, dim=-1)
    z_aux = torch.zeros_like(pre).scatter_(-1, idx, vals.clamp(min=0))
    diff = torch.baddbmm(r, z_aux, W_dec.transpose(1, 2))  # e_hat - e, with e = -r
    d_aux = diff * (2 * alpha / B)
    grads.W_dec.baddbmm_(d_aux.transpose(1, 2), z_aux)
    return torch.bmm(d_aux, W_dec).mul_(z_aux > 0)


def sae_loss_and_grad(
    sae: SAE,
    a: Tensor,
    grad: Tensor,
    l1: Tensor | None = None,
    aux: tuple[Tensor, Tensor, int] | None = None,
) -> tuple[Tensor, Tensor]:
    """Reconstruction loss per instance and its gradient, written into ``grad``.

    Loss of instance i: ``sum (a_hat - a)^2 / B``, plus ``l1[i] * sum z / B`` (ReLU kind) and,
    with ``aux = (dead [I, L], alpha [I, 1, 1], k)``, AuxK's ``alpha * |e_hat - e|^2 / B``.

    Args:
        a: activations [I, B, d] or [1, B, d].
        grad: flat buffer (the layout of ``sae.flat``) receiving d loss / d weights.
    Returns:
        (the reconstruction loss [I], which latents fired in the batch [I, L]).
    """
    W_enc, b_enc, W_dec, b_dec = sae.split()
    g = sae.split(grad)
    B = a.shape[1]
    centred = a - b_dec.unsqueeze(1)
    pre = torch.baddbmm(b_enc.unsqueeze(1), centred, W_enc.transpose(1, 2))
    z = activate(pre, sae.kind, sae.topk)
    r = torch.baddbmm(b_dec.unsqueeze(1) - a, z, W_dec.transpose(1, 2))  # a_hat - a
    loss = r.square().sum((1, 2)) / B
    dr = r * (2.0 / B)
    torch.bmm(dr.transpose(1, 2), z, out=g.W_dec)
    torch.sum(dr, dim=1, out=g.b_dec)
    dz = torch.bmm(dr, W_dec)
    if l1 is not None:
        dz.add_(l1 / B)
    fired = z > 0
    dpre = dz.mul_(fired)
    if aux is not None and bool(aux[0].any()):
        dpre.add_(_aux_grad(pre, r, aux[0], sae, g, aux[1], aux[2]))
    torch.bmm(dpre.transpose(1, 2), centred, out=g.W_enc)
    torch.sum(dpre, dim=1, out=g.b_enc)
    g.b_dec.sub_(torch.bmm(g.b_enc.unsqueeze(1), W_enc).squeeze(1))
    return loss, fired.any(1)


def _unit_columns_(W_dec: Tensor, gW_dec: Tensor | None = None) -> None:
    """With ``gW_dec``: remove each column's gradient component along the column. Without:
    renormalise the columns of ``W_dec`` [I, d, L] to unit length. In place."""
    if gW_dec is not None:
        gW_dec.sub_(W_dec * (W_dec * gW_dec).sum(1, keepdim=True))
    else:
        W_dec.div_(W_dec.norm(dim=1, keepdim=True).clamp_(min=1e-12))


@dataclass
class _SAEState:
    """What the step loop updates: weights, gradient buffer, Adam, the per-instance knobs
    and the steps since each latent fired."""

    sae: SAE
    grad: Tensor
    opt: BatchedAdam
    lr: Tensor
    mult: list[float]
    l1: Tensor | None
    alpha: Tensor | None
    since: Tensor
    aux_used: Tensor
    resample_at: dict[int, int]
    gens: list[torch.Generator]
    resampled: list[Tensor]

    @classmethod
    def build(cls, insts: list[SAEConfig], first_batch: Tensor) -> _SAEState:
        first, I = insts[0], len(insts)
        sae = init_sae(insts, first_batch)
        dtype, device = sae.flat.dtype, sae.flat.device
        knob = lambda name: torch.tensor(  # noqa: E731
            [getattr(c, name) for c in insts], dtype=dtype, device=device
        ).view(I, 1, 1)
        use_l1 = first.kind == "relu" and any(c.l1 for c in insts)
        use_aux = first.kind == "topk" and any(c.aux_alpha for c in insts)
        return cls(
            sae,
            torch.zeros_like(sae.flat),
            BatchedAdam(sae.flat, sae.blocks(), I),
            knob("lr").view(I),
            first.lr_multipliers().tolist(),
            knob("l1") if use_l1 else None,
            knob("aux_alpha") if use_aux else None,
            torch.zeros(I, first.latents, dtype=torch.long, device=device),
            torch.zeros(I, dtype=torch.long, device="cpu"),
            _resample_windows(first),
            resample_generators(insts),
            [],
        )

    def step(self, t: int, a: Tensor, config: SAEConfig) -> tuple[Tensor, bool]:
        """One training step on batch ``a``; returns (loss [I], whether AuxK ran)."""
        if t in self.resample_at:
            stale = self.since >= self.resample_at[t]
            self.resampled.append(resample_dead_(self.sae, self.opt, a, stale, self.gens))
            self.since.masked_fill_(stale, 0)
        dead = self.since >= config.dead_after
        aux = None
        if self.alpha is not None and bool(dead.any()):
            aux = (dead, self.alpha, config.aux_latents)
            used = dead.sum(1).clamp(max=config.aux_latents) * (self.alpha.view(-1) > 0)
            self.aux_used += used.cpu()
        loss, fired = sae_loss_and_grad(self.sae, a, self.grad, self.l1, aux)
        W_dec, g_dec = self.sae.split().W_dec, self.sae.split(self.grad).W_dec
        _unit_columns_(W_dec, g_dec)
        self.opt.step(self.grad, self.lr * self.mult[t])
        _unit_columns_(W_dec)
        self.since.add_(1).masked_fill_(fired, 0)
        return loss, aux is not None


def train_sae(
    configs: SAEConfig | Iterable[SAEConfig],
    source: Callable[[], Tensor],
    *,
    progress: bool | None = None,
) -> SAERun:
    """Train every instance of ``configs`` (one structure) in one batched pass.

    Args:
        configs: an SAEConfig (``instances`` copies, seeds seed, seed+1, ...) or several
            sharing their structural fields; they may differ in topk, l1, lr, aux_alpha, seed.
        source: gives the next batch of activations, [I, batch, d] or [1, batch, d].
        progress: draw a tqdm bar; None decides by itself (quiet under MONOSEM_QUIET).
    Returns:
        An :class:`SAERun`.
    """
    insts = sae_instances(configs)
    first = insts[0]
    batch = _check_batch(source(), insts)
    state = _SAEState.build(insts, batch)
    history = torch.empty(first.steps, len(insts), dtype=batch.dtype, device=batch.device)
    bar = _bar(progress, first.steps, len(insts))
    aux_steps, start = 0, time.perf_counter()
    for t in range(first.steps):
        if t:
            batch = _check_batch(source(), insts)
        history[t], ran = state.step(t, batch, first)
        aux_steps += ran
        if bar is not None and ((t + 1) % 100 == 0 or t + 1 == first.steps):
            bar.update(t + 1 - bar.n)
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    if not bool(torch.isfinite(history).all()):
        raise FloatingPointError("SAE training diverged (nan or inf loss); a smaller lr helps")
    resampled = torch.stack(state.resampled) if state.resampled else None
    return SAERun(
        tuple(insts),
        state.sae,
        history.cpu(),
        seconds,
        aux_steps,
        state.since.cpu(),
        state.aux_used,
        resampled,
    )


def _resample_windows(config: SAEConfig) -> dict[int, int]:
    """Each resampling step and its window: the steps since the previous point (or the start)
    over which a latent must not have fired to be resampled."""
    steps = config.resample_steps()
    return {t: t - prev for prev, t in zip([0, *steps], steps)}


def _check_batch(a: Tensor, insts: list[SAEConfig]) -> Tensor:
    """``a`` if it is [I or 1, batch, d] in the configs' dtype and device, else a ValueError."""
    c, I = insts[0], len(insts)
    if a.dim() != 3 or a.shape[0] not in (1, I) or tuple(a.shape[1:]) != (c.batch, c.d):
        shared = f" or [1, {c.batch}, {c.d}]" if I > 1 else ""
        raise ValueError(
            f"the source gave a batch of shape {tuple(a.shape)}; expected [{I}, {c.batch}, "
            f"{c.d}]{shared} (instances, batch, d)"
        )
    return a.to(getattr(torch, c.dtype))


def _bar(progress: bool | None, steps: int, I: int) -> Any:
    """A tqdm bar over ``steps`` steps, or None when none should be drawn or tqdm (part of
    the ``[book]`` extra, not of the core) is not installed."""
    if not show_progress(progress):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # training runs the same without a bar
        return None

    return tqdm(total=steps, unit="step", desc=f"training {I} SAE{'s' * (I > 1)}", leave=False)


@dataclass
class SAERateSweep:
    """SAEs of one config trained at several learning rates, and the rate a rule that uses no
    ground truth picks: the lowest reconstruction loss at the end of training.

    Attributes:
        lrs: the rates, in the order given.
        end_loss: [len(lrs)] each rate's mean reconstruction loss over the last ``tail`` of the
            steps, averaged over the config's instances (seeds).
        best_lr: the rate with the lowest ``end_loss``.
        run: the trained SAEs, instance ``r * instances + s`` at rate r and seed s.
    """

    lrs: tuple[float, ...]
    end_loss: Tensor
    best_lr: float
    run: SAERun


def sweep_sae_lr(
    config: SAEConfig,
    source: Callable[[], Tensor],
    lrs: Sequence[float],
    *,
    tail: float = 0.05,
    progress: bool | None = None,
) -> SAERateSweep:
    """Train ``config`` at every rate of ``lrs`` in one batched pass (the rate is per
    instance) and pick the rate whose reconstruction loss over the last ``tail`` of the steps
    is lowest. ``source`` gives [1, batch, d] (shared) or one stream per instance."""
    if not lrs:
        raise ValueError("lrs=() is not allowed: give at least one learning rate")
    if not 0 < tail <= 1:
        raise ValueError(f"tail={tail!r} is not allowed: must be in (0, 1]")
    seeds = config.expand()
    run = train_sae([c.replace(lr=lr) for lr in lrs for c in seeds], source, progress=progress)
    last = max(1, round(tail * config.steps))
    per = run.loss_history[-last:].double().mean(0).view(len(lrs), len(seeds)).mean(1)
    best = int(torch.argmin(per))
    return SAERateSweep(tuple(float(v) for v in lrs), per, float(lrs[best]), run)
