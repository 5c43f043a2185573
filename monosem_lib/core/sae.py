"""Sparse autoencoders (SAEs), batched like the toy model: configuration and weights.

An SAE rewrites an activation vector ``a`` (width ``d``) as a sparse code ``z`` over a
dictionary of ``latents`` unit-norm atoms (the decoder's columns)::

    z     = act(W_enc (a - b_dec) + b_enc)        # [latents]
    a_hat = W_dec z + b_dec                       # [d], W_dec [d, latents], unit columns

Two kinds, the two baselines of the SAE literature:

* ``relu``: ``act = ReLU`` and an L1 penalty ``l1 * sum(z)`` in the loss (Sharkey et al.
  2022; Bricken et al. 2023);
* ``topk``: ``act`` keeps the ``topk`` largest pre-activations (then a ReLU) and zeroes the
  rest, with no penalty; dead latents are revived by the auxiliary loss AuxK (Gao et al.
  2024): the ``aux_k`` largest dead latents reconstruct the residual, weighted ``aux_alpha``.

Both start with the encoder equal to the decoder's transpose, keep the decoder's columns at
unit norm (the gradient's component along each column is removed before the step, the
column renormalised after) and train with Adam. Training lives in ``sae_training``.

Like :class:`~monosem_lib.core.config.Config`, an :class:`SAEConfig` is frozen and validated
on construction; its *structural* fields must agree within one batched pass, its
*per-instance* fields (``topk, l1, lr, aux_alpha, seed``) may differ, so a sweep over
sparsity and seeds trains in one pass (different dictionary sizes are separate passes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .config import (
    DTYPES,
    SCHEDULES,
    ConfigError,
    check_choice,
    check_device,
    check_float,
    check_int,
)
from .data import derive_seed, resolve_device
from .optim import schedule_multipliers

__all__ = [
    "SAEConfig",
    "SAE",
    "SAEWeights",
    "SAE_KINDS",
    "SAE_STRUCTURAL_FIELDS",
    "SAE_INSTANCE_FIELDS",
    "SAE_OPT_IN_FIELDS",
    "activate",
    "init_sae",
    "calibrate_threshold",
]

SAE_KINDS = ("topk", "relu")
SAE_STRUCTURAL_FIELDS = (
    "d",
    "latents",
    "kind",
    "aux_k",
    "dead_after",
    "batch",
    "steps",
    "schedule",
    "device",
    "dtype",
    "warmup",
    "cooldown",
    "resample",
)
# Opt-in training fields and their defaults (today's training): ``to_dict`` leaves them out
# while they hold these values, so what the stored study recorded stays what it compares.
SAE_OPT_IN_FIELDS = {"warmup": 0.0, "cooldown": 0.0, "resample": 0}
SAE_INSTANCE_FIELDS = ("topk", "l1", "lr", "aux_alpha", "seed")


@dataclass(frozen=True)
class SAEConfig:
    """Everything that defines an SAE's training. Defaults: a TopK SAE on book-scale inputs.

    Attributes:
        d: width of the activations it reads (m for the inputs x, k for hidden layers h).
        latents: dictionary size (number of latents and of decoder atoms).
        kind: ``topk`` or ``relu`` (L1).
        topk: latents kept per sample, 1 .. latents (``topk`` only; ignored for ``relu``).
        l1: L1 coefficient on the latents (``relu`` only; must be 0 for ``topk``).
        lr: Adam learning rate.
        aux_alpha: weight of the AuxK loss (``topk`` only, 0 turns it off; ignored for
            ``relu``).
        aux_k: dead latents AuxK may use per sample; 0 means ``min(latents, max(1, d // 2))``.
        dead_after: steps without firing after which a latent counts as dead (for AuxK).
        batch: samples per step.
        steps: optimizer steps.
        schedule: learning-rate schedule (``cosine``, ``paper`` or ``constant``, as ``Config``).
        seed: fixes the initial weights (the data stream is the source's).
        instances: train this many copies with seeds ``seed .. seed + instances - 1``.
        device: ``cpu``, ``cuda``, ``cuda:<n>`` or ``auto``.
        dtype: ``float32`` or ``float64``.
        warmup: fraction of the steps over which the rate rises linearly from lr/W to lr
            (W = round(warmup * steps) steps; 0: none), times ``schedule``.
        cooldown: fraction of the last steps over which the rate falls linearly to lr/C
            (C = round(cooldown * steps); 0: none), times ``schedule``. Practitioners use
            about 0.05 and 0.2 with ``schedule="constant"``.
        resample: resample dead latents this many times (0: never), at steps
            ``resample_steps`` (evenly spaced over the run): a latent that
            did not fire since the previous point is re-initialised toward an input that the
            SAE reconstructs badly (Bricken et al. 2023; ``sae_resample``).
    """

    d: int = 32
    latents: int = 128
    kind: str = "topk"
    topk: int = 4
    l1: float = 0.0
    lr: float = 1e-3
    aux_alpha: float = 1 / 32
    aux_k: int = 0
    dead_after: int = 256
    batch: int = 1024
    steps: int = 2000
    schedule: str = "constant"
    seed: int = 0
    instances: int = 1
    device: str = "cpu"
    dtype: str = "float32"
    warmup: float = 0.0
    cooldown: float = 0.0
    resample: int = 0

    def __post_init__(self) -> None:
        for name in ("d", "latents", "dead_after", "batch", "steps", "instances"):
            check_int(name, getattr(self, name))
        check_int("seed", self.seed, minimum=0)
        check_int("aux_k", self.aux_k, minimum=0)
        check_choice("kind", self.kind, SAE_KINDS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("dtype", self.dtype, DTYPES)
        check_float("lr", self.lr, "must be a finite number > 0", lambda v: v > 0)
        check_float("l1", self.l1, "must be a finite number >= 0", lambda v: v >= 0)
        check_float("aux_alpha", self.aux_alpha, "must be a finite number >= 0", lambda v: v >= 0)
        self._check_opt_in()
        self._check_kind()
        check_device(self.device)

    def _check_kind(self) -> None:
        """The sparsity knob that belongs to the kind, and no other."""
        if self.kind == "topk":
            check_int("topk", self.topk)
            if self.topk > self.latents:
                raise ConfigError("topk", self.topk, f"must be at most latents={self.latents}")
            if self.l1 != 0:
                raise ConfigError("l1", self.l1, "must be 0 for kind='topk' (L1 is for 'relu')")
        if self.aux_k > self.latents:
            raise ConfigError("aux_k", self.aux_k, f"must be at most latents={self.latents}")

    def _check_opt_in(self) -> None:
        """Warm-up and cool-down fractions that fit in the run; resampling points that exist."""
        for name in ("warmup", "cooldown"):
            check_float(name, getattr(self, name), "must be in [0, 1)", lambda v: 0 <= v < 1)
        if self.warmup + self.cooldown > 1:
            raise ConfigError(
                "cooldown", self.cooldown, f"must be at most 1 - warmup = {1 - self.warmup:g}"
            )
        check_int("resample", self.resample, minimum=0)
        if self.resample and 2 * self.resample > self.steps:
            raise ConfigError(
                "resample", self.resample, f"must be at most steps/2 = {self.steps // 2}"
            )

    # -- derived ---------------------------------------------------------------------------
    @property
    def aux_latents(self) -> int:
        """The dead latents AuxK uses per sample, ``aux_k``, or ``min(latents, max(1, d // 2))``
        (Gao et al.'s d/2) when ``aux_k`` is 0."""
        return self.aux_k or min(self.latents, max(1, self.d // 2))

    @property
    def sparsity(self) -> float:
        """The kind's sparsity knob, ``topk`` for TopK and ``l1`` for ReLU."""
        return self.topk if self.kind == "topk" else self.l1

    @property
    def flops_per_sample(self) -> int:
        """Dense training FLOPs per sample without AuxK, that is the encoder and decoder products
        forward (2 x 2 d L) and three backward (the decoder's weight gradient, the latents'
        gradient, the encoder's weight gradient: 3 x 2 d L). AuxK adds ``aux_flops_per_sample``
        on the steps it runs."""
        return 10 * self.d * self.latents

    @property
    def aux_flops_per_sample(self) -> int:
        """AuxK's extra FLOPs per sample on a step with dead latents (its decoder product,
        the decoder's weight gradient and the latents' gradient: 3 x 2 d L)."""
        return 6 * self.d * self.latents

    @property
    def aux_flops_per_latent(self) -> int:
        """AuxK's FLOPs per sample for each dead latent it uses (its decoder product, the
        decoder's weight gradient and the latent's gradient, 3 x 2 d): the bill of a sparse
        AuxK, which touches only the ``aux_latents`` dead latents it picks."""
        return 6 * self.d

    def lr_multipliers(self) -> Tensor:
        """The rate's multiplier at each step [steps] (float64): ``schedule`` times the linear
        ``warmup`` and ``cooldown`` ramps."""
        mult = schedule_multipliers(self.schedule, self.steps)
        t = torch.arange(self.steps, dtype=torch.float64, device="cpu")
        warm, cool = round(self.warmup * self.steps), round(self.cooldown * self.steps)
        if warm:
            mult = mult * ((t + 1) / warm).clamp(max=1)
        if cool:
            mult = mult * ((self.steps - t) / cool).clamp(max=1)
        return mult

    def resample_steps(self) -> list[int]:
        """The steps before which dead latents are resampled: ``j * steps // (resample + 1)``
        for j = 1 .. resample, evenly spaced with as many steps after the last (none when
        ``resample`` is 0)."""
        return [j * self.steps // (self.resample + 1) for j in range(1, self.resample + 1)]

    @property
    def structure(self) -> tuple:
        """The structural fields; configs with equal structure train in one pass."""
        return tuple(getattr(self, f) for f in SAE_STRUCTURAL_FIELDS)

    # -- building --------------------------------------------------------------------------
    def replace(self, **changes: Any) -> SAEConfig:
        """A copy with ``changes`` applied (and validated); unknown names raise ConfigError."""
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in changes.items():
            if key not in names:
                allowed = "is not an SAEConfig field; fields are " + ", ".join(sorted(names))
                raise ConfigError(key, value, allowed)
        return dataclasses.replace(self, **changes)

    def expand(self) -> list[SAEConfig]:
        """One single-instance config per instance, seeds ``seed .. seed + instances - 1``."""
        return [
            dataclasses.replace(self, seed=self.seed + i, instances=1)
            for i in range(self.instances)
        ]

    def to_dict(self) -> dict[str, Any]:
        """Every field, but the opt-in ones (``SAE_OPT_IN_FIELDS``) only where they are set."""
        out = dataclasses.asdict(self)
        for name, default in SAE_OPT_IN_FIELDS.items():
            if out[name] == default:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SAEConfig:
        return cls().replace(**data)


class SAEWeights(NamedTuple):
    """An SAE's four tensors (or gradients in the same layout): W_enc [I, L, d], b_enc [I, L],
    W_dec [I, d, L] (unit columns), b_dec [I, d]."""

    W_enc: Tensor
    b_enc: Tensor
    W_dec: Tensor
    b_dec: Tensor


def activate(pre: Tensor, kind: str, topk: Tensor | None = None) -> Tensor:
    """Latents from pre-activations ``pre`` [I, B, L]: ReLU, or for ``topk`` the ``topk[i]``
    largest entries of each row of instance i (``topk``: [I] integers), then a ReLU."""
    if kind == "relu":
        return pre.clamp(min=0)
    if topk is None:
        raise ValueError("kind='topk' needs topk, the latents kept per instance, as [I]")
    kmax = int(topk.max())
    vals, idx = pre.topk(kmax, dim=-1)
    keep = torch.arange(kmax, device=pre.device) < topk.to(pre.device).view(-1, 1, 1)
    vals = vals.clamp(min=0) * keep
    return torch.zeros_like(pre).scatter_(-1, idx, vals)


@dataclass
class SAE:
    """Weights of I SAEs of one shape in one flat buffer ``[W_enc | b_enc | W_dec | b_dec]``.

    Attributes:
        flat: the parameter buffer.
        I, d, L: instances, input width, latents.
        kind: ``topk`` or ``relu``.
        topk: [I] latents kept per sample (TopK; ignored for ReLU).
        threshold: None (encode by ``kind``), or [I] inference-time thresholds: ``encode``
            then keeps every pre-activation above its instance's threshold, ``pre * 1[pre >
            theta]`` (JumpReLU's rule, as BatchTopK SAEs are used after training), with no
            top-k. Set by ``thresholded``; training never uses it.
    """

    flat: Tensor
    I: int
    d: int
    L: int
    kind: str
    topk: Tensor
    threshold: Tensor | None = None

    @staticmethod
    def sizes(I: int, d: int, L: int) -> tuple[int, int, int, int]:
        """Numbers in the four blocks of the flat buffer."""
        return (I * L * d, I * L, I * d * L, I * d)

    def blocks(self) -> list[tuple[int, int]]:
        """(offset, numel) of each block, for the batched optimizer."""
        out, offset = [], 0
        for n in self.sizes(self.I, self.d, self.L):
            out.append((offset, n))
            offset += n
        return out

    def split(self, flat: Tensor | None = None) -> SAEWeights:
        """Views W_enc [I, L, d], b_enc [I, L], W_dec [I, d, L], b_dec [I, d] into ``flat``
        (default: the weights; also used for gradients in the same layout)."""
        flat = self.flat if flat is None else flat
        (o1, n1), (o2, n2), (o3, n3), (o4, n4) = self.blocks()
        I, d, L = self.I, self.d, self.L
        return SAEWeights(
            flat[o1 : o1 + n1].view(I, L, d),
            flat[o2 : o2 + n2].view(I, L),
            flat[o3 : o3 + n3].view(I, d, L),
            flat[o4 : o4 + n4].view(I, d),
        )

    @classmethod
    def from_weights(cls, weights: SAEWeights, kind: str, topk: Tensor) -> SAE:
        """Build from stacked weights (copied)."""
        W_enc, b_enc, W_dec, b_dec = weights
        I, L, d = W_enc.shape
        if b_enc.shape != (I, L) or W_dec.shape != (I, d, L) or b_dec.shape != (I, d):
            shapes = ", ".join(str(tuple(t.shape)) for t in weights)
            raise ValueError(f"SAE weight shapes disagree: {shapes}")
        flat = torch.cat([t.reshape(-1) for t in weights])
        return cls(
            flat, I, d, L, kind, torch.as_tensor(topk, dtype=torch.long, device="cpu").reshape(I)
        )

    def _batched(self, a: Tensor) -> Tensor:
        return a.expand(self.I, *a.shape) if a.dim() == 2 else a

    def encode(self, a: Tensor) -> Tensor:
        """Latents z [I, B, L] of activations ``a`` [I, B, d] (or [B, d], shared)."""
        pre = self.pre_activations(a)
        if self.threshold is not None:
            theta = self.threshold.to(pre.device, pre.dtype).view(-1, 1, 1)
            return pre * (pre > theta)
        return activate(pre, self.kind, self.topk)

    def pre_activations(self, a: Tensor) -> Tensor:
        """Pre-activations [I, B, L] of activations ``a`` [I, B, d] (or [B, d], shared)."""
        W_enc, b_enc, _, b_dec = self.split()
        centred = self._batched(a) - b_dec.unsqueeze(1)
        return torch.baddbmm(b_enc.unsqueeze(1), centred, W_enc.transpose(1, 2))

    def thresholded(self, threshold: Tensor | float | None) -> SAE:
        """A copy (sharing the weights) that encodes with the inference-time ``threshold``
        ([I], or one number for every instance; None: back to the kind's own rule)."""
        if threshold is None:
            return dataclasses.replace(self, threshold=None)
        theta = (
            torch.as_tensor(threshold, dtype=torch.float64, device="cpu").reshape(-1).expand(self.I)
        )
        if not bool(torch.isfinite(theta).all()) or bool((theta < 0).any()):
            raise ValueError(
                f"threshold={theta.tolist()!r} is not allowed: must be finite and >= 0"
            )
        return dataclasses.replace(self, threshold=theta.clone())

    def decode(self, z: Tensor) -> Tensor:
        """Reconstructions [I, B, d] of latents z [I, B, L]."""
        _, _, W_dec, b_dec = self.split()
        return torch.baddbmm(b_dec.unsqueeze(1), z, W_dec.transpose(1, 2))

    def __call__(self, a: Tensor) -> Tensor:
        """Reconstructions [I, B, d] of ``a`` [I, B, d] (or [B, d])."""
        return self.decode(self.encode(a))

    def select(self, instances: list[int]) -> SAE:
        """An SAE holding only the given instances (copied)."""
        idx = list(instances)
        out = SAE.from_weights(
            SAEWeights(*(t[idx] for t in self.split())), self.kind, self.topk[idx]
        )
        return out if self.threshold is None else out.thresholded(self.threshold[idx])


def init_sae(configs: list[SAEConfig], first_batch: Tensor) -> SAE:
    """Initial weights: decoder columns random unit vectors (seeded per instance), the encoder
    their transpose, b_enc 0 and b_dec the mean of ``first_batch`` [I or 1, B, d] (as Bricken
    et al. start b_dec at a centre of the data), in the configs' dtype and device."""
    first = configs[0]
    decs = []
    for c in configs:
        gen = torch.Generator().manual_seed(derive_seed(c.seed, "sae-init"))
        W = torch.randn(c.d, c.latents, generator=gen, dtype=torch.float64, device="cpu")
        decs.append(W / W.norm(dim=0, keepdim=True))
    W_dec = torch.stack(decs)
    I = len(configs)
    b_dec = first_batch.to("cpu", torch.float64).mean(1).expand(I, first.d)
    weights = SAEWeights(
        W_dec.transpose(1, 2).contiguous(),
        torch.zeros(I, first.latents, dtype=torch.float64, device="cpu"),
        W_dec,
        b_dec.contiguous(),
    )
    topk = torch.tensor([c.topk for c in configs], device="cpu")
    sae = SAE.from_weights(weights, first.kind, topk)
    sae.flat = sae.flat.to(resolve_device(first.device), getattr(torch, first.dtype))
    return sae


@torch.no_grad()
def calibrate_threshold(sae: SAE, batches: Iterable[Tensor]) -> Tensor:
    """Each instance's inference-time threshold [I] for a TopK SAE: the mean, over the samples
    of ``batches`` ([I or 1, B, d] each, training activations), of the smallest activation
    that TopK keeps in the sample (samples where it keeps none are skipped). Encoding with
    ``sae.thresholded(theta)`` then keeps about ``topk`` latents a sample on such data. (A
    BatchTopK SAE averages each batch's smallest kept value instead, as its k is the batch's;
    for a per-sample TopK that minimum sits far below and keeps several times k.)"""
    if sae.kind != "topk":
        raise ValueError(f"kind={sae.kind!r} is not allowed: only a topk SAE has a threshold")
    total = torch.zeros(sae.I, dtype=torch.float64, device="cpu")
    count = torch.zeros(sae.I, dtype=torch.float64, device="cpu")
    for a in batches:
        z = activate(sae.pre_activations(a), "topk", sae.topk).double().cpu()
        smallest = z.masked_fill(z <= 0, float("inf")).min(-1).values  # [I, B]
        kept = torch.isfinite(smallest)
        total += smallest.where(kept, 0.0).sum(1)
        count += kept.sum(1)
    if bool((count == 0).any()):
        raise ValueError("no batch kept any latent: the threshold needs activations that fire")
    return total / count
