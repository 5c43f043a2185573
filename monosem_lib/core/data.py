"""The data: sparse features, the fixed random projection and the task targets.

A *world* is everything a seed fixes about the data: the projection P (m x N), the
re-projector's Q, the feature probabilities and the stream of samples. Instances that share
a world see exactly the same inputs, so in a sweep over one seed the swept knob is the only
difference between instances.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from .config import Config

__all__ = [
    "derive_seed",
    "make_projection",
    "feature_probabilities",
    "SparseFeatureSampler",
    "World",
    "Batch",
    "make_world",
    "chunk_steps",
    "zero_loss",
    "resolve_device",
]

POWER_LAW_EXPONENT = 1.1


def derive_seed(seed: int, purpose: str) -> int:
    """An independent 63-bit seed for one use (``"projection"``, ``"data"``...) of a run seed."""
    digest = hashlib.sha256(f"monosem:{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _cpu_generator(seed: int, purpose: str) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, purpose))


def make_projection(N: int, m: int, seed: int, purpose: str = "projection") -> Tensor:
    """The paper's fixed embedding P, shape [m, N], with unit-norm columns.

    An N x m Gaussian matrix, its thin SVD U (N x m, orthonormal columns, nearly orthogonal
    rows), rows of U normalised to unit length, and P = U^T. Built in float64 on the CPU so
    the same seed gives the same P on every device.
    """
    if m > N:
        raise ValueError(f"m={m} must be at most N={N}")
    gen = _cpu_generator(seed, purpose)
    gauss = torch.randn(N, m, generator=gen, dtype=torch.float64, device="cpu")
    u, _, _ = torch.linalg.svd(gauss, full_matrices=False)
    u = u / u.norm(dim=1, keepdim=True)
    return u.T.contiguous()


def feature_probabilities(N: int, eps: float, dist: str) -> Tensor:
    """Probability that each feature is active, shape [N], float64.

    ``uniform``: all ``eps``. ``power_law``: proportional to i^-1.1 (i = 1..N), scaled to mean
    ``eps``, then capped at 1 (as in the paper's code, the cap lowers the mean a little).
    """
    if dist == "uniform":
        return torch.full((N,), float(eps), dtype=torch.float64, device="cpu")
    if dist == "power_law":
        p = torch.arange(1, N + 1, dtype=torch.float64, device="cpu") ** (-POWER_LAW_EXPONENT)
        p = p * (N * eps / p.sum())
        return p.clamp(max=1.0)
    raise ValueError(f"feature_dist={dist!r} is not allowed: must be uniform or power_law")


class SparseFeatureSampler:
    """Exact sampler of sparse features without a dense Bernoulli mask.

    Each entry f[b, j] is active with probability p_j and then uniform in [0, 1). Rather than
    drawing B x N coin flips, give every trial (b, j) a segment of length
    lam_j = -log(1 - p_j) on a line and drop a Poisson process of unit rate on it: a trial is
    active when its segment holds a point, which happens with probability
    1 - exp(-lam_j) = p_j, independently for every trial. Given their Poisson count the
    points are iid uniform on the line, so each point picks a sample b uniformly and a
    feature j with probability proportional to lam_j. About sum(p) * B random draws per
    batch instead of 2 * N * B. Features with p = 1 are simply always active.
    """

    def __init__(self, probs: Tensor, batch: int, generator: torch.Generator, dtype: torch.dtype):
        self.N, self.batch, self.gen, self.dtype = probs.numel(), batch, generator, dtype
        device = self.device = generator.device
        always = probs >= 1.0
        self.always = torch.nonzero(always).flatten().to(device)
        # Trials of an always-on feature take no room on the line.
        lam = torch.where(
            always, torch.zeros_like(probs), -torch.log1p(-probs.clamp(max=1 - 1e-12))
        )
        self.uniform = bool((lam == lam[0]).all())
        self.lam_sum = float(lam.sum())
        self.expected_points = torch.tensor(
            [self.lam_sum * batch], dtype=torch.float64, device=device
        )
        # Cumulative segment ends within one sample's stretch of the line, normalised to 1.
        self.cum = (torch.cumsum(lam, 0) / max(self.lam_sum, 1e-300)).to(device, torch.float32)

    def sample(self, out: Tensor | None = None) -> Tensor:
        """A batch of features, shape [batch, N], written into ``out`` (contiguous, [batch,
        N]) when given."""
        B, N, gen, dev = self.batch, self.N, self.gen, self.device
        f = torch.zeros(B, N, dtype=self.dtype, device=dev) if out is None else out.zero_()
        count = (
            int(torch.poisson(self.expected_points, generator=gen).item())
            if self.lam_sum > 0
            else 0
        )
        if count:
            if self.uniform:
                flat = torch.randint(B * N, (count,), generator=gen, device=dev)
            else:
                b = torch.randint(B, (count,), generator=gen, device=dev)
                u = torch.rand(count, generator=gen, device=dev)
                j = torch.searchsorted(self.cum, u, right=True).clamp_(max=N - 1)
                flat = b.mul_(N).add_(j)
            vals = torch.rand(count, dtype=self.dtype, generator=gen, device=dev)
            # A trial hit twice keeps one of its values, itself uniform.
            f.view(-1).scatter_(0, flat, vals)
        if self.always.numel():
            f[:, self.always] = torch.rand(
                B, self.always.numel(), dtype=self.dtype, generator=gen, device=dev
            )
        return f


# Batches drawn per refill: one draw of several steps' features costs little more than one
# step's, and per-call overhead dominates small models. Capped so a chunk stays a few MB.
CHUNK_STEPS = 32
CHUNK_ENTRIES = 2**21


def chunk_steps(batch: int, N: int) -> int:
    """How many steps of data a world draws at once (1 at the paper's scale)."""
    return max(1, min(CHUNK_STEPS, CHUNK_ENTRIES // (batch * N)))


class Batch(NamedTuple):
    """Features f [..., B, N], inputs x = f P^T [..., B, m] and targets [..., B, out]."""

    f: Tensor
    x: Tensor
    target: Tensor


@dataclass
class World:
    """The fixed data of one seed: projections, probabilities and a sample stream.

    Attributes:
        P: [m, N] input projection (unit columns).
        Q: [m, N] second projection for the re-projector task, else None.
        probs: [N] feature probabilities (float64, CPU).
        chunk: steps of data drawn at once; ``sample`` hands them out one batch at a time,
            so ``sample`` and ``sample_chunk`` read the same stream.
    """

    config: Config
    P: Tensor
    Q: Tensor | None
    probs: Tensor
    _samplers: tuple[SparseFeatureSampler, ...]

    def __post_init__(self) -> None:
        self._Pt = self.P.T.contiguous()
        self._Qt = None if self.Q is None else self.Q.T.contiguous()
        self.chunk = chunk_steps(self.config.batch, self.config.N)
        self._buffer: Batch | None = None
        self._next = 0

    def sample_chunk(self, out: Batch | None = None) -> Batch:
        """``chunk`` batches at once: f [chunk, B, N], x [chunk, B, m], target [chunk, B, out].

        With ``out`` (contiguous f [chunk * B, N], x [chunk * B, m] and target [chunk * B,
        out], where the decoder's target may be f itself) the chunk is written there, so a
        batch of worlds can fill one stacked buffer without copying.
        """
        n, B = self.chunk, self.config.batch
        f = self._samplers[0].sample(None if out is None else out.f)
        if self.config.task == "abs":
            f.sub_(self._samplers[1].sample())
        x = torch.mm(f, self._Pt, out=None if out is None else out.x)
        target = self.target(f, None if out is None else out.target)
        return Batch(f.view(n, B, -1), x.view(n, B, -1), target.view(n, B, -1))

    def sample(self) -> Batch:
        """One batch: features f [B, N], inputs x = f P^T [B, m] and targets [B, out]."""
        if self._buffer is None or self._next == self.chunk:
            self._buffer, self._next = self.sample_chunk(), 0
        i = self._next
        self._next += 1
        return Batch(*(t[i] for t in self._buffer))

    def target(self, f: Tensor, out: Tensor | None = None) -> Tensor:
        """What the model should output for features f [..., N] (written into ``out`` when
        given, except the decoder's, which is f itself)."""
        task = self.config.task
        if task == "decoder":
            return f
        if task == "abs":
            return torch.abs(f, out=out)
        Q, Qt = self.Q, self._Qt
        if Q is None or Qt is None:
            raise ValueError(f"task {task!r} needs the second projection Q; this world has none")
        return torch.matmul(f, Qt if f.dim() == 2 else Q.T, out=out)


def resolve_device(device: str) -> torch.device:
    """The torch device a config's ``device`` names (``auto``: CUDA when available)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} was asked for but CUDA is not available here; use cpu or auto"
        )
    return torch.device(device)


def make_world(config: Config, stream: str = "data") -> World:
    """The world of ``config``'s seed. ``stream`` names an independent sample stream
    (``"data"`` for training, ``"eval"`` for evaluation)."""
    device = resolve_device(config.device)
    dtype = getattr(torch, config.dtype)
    P = make_projection(config.N, config.m, config.seed).to(device, dtype)
    Q = None
    if config.task == "reprojector":
        Q = make_projection(config.N, config.m, config.seed, purpose="reprojection").to(
            device, dtype
        )
    probs = feature_probabilities(config.N, config.eps, config.feature_dist)
    parts = 2 if config.task == "abs" else 1
    # The abs task draws f = f1 - f2 with each half at p/2, as in the paper's code.
    part_probs = probs / parts
    samplers = []
    rows = config.batch * chunk_steps(config.batch, config.N)
    for i in range(parts):
        gen = torch.Generator(device=device).manual_seed(
            derive_seed(config.seed, f"{stream}:{config.eps}:{config.feature_dist}:{i}")
        )
        samplers.append(SparseFeatureSampler(part_probs, rows, gen, dtype))
    return World(config, P, Q, probs, tuple(samplers))


def zero_loss(config: Config, Q: Tensor | None = None) -> float:
    """Exact expected loss of the zero predictor, sum over outputs of E[target^2].

    Sets the scale against which a model's loss is read. For feature j active with
    probability p_j and uniform on [0, 1]: E[f_j^2] = p_j / 3 and E[f_j] = p_j / 2.
    """
    probs = feature_probabilities(config.N, config.eps, config.feature_dist)
    if config.task == "decoder":
        return float((probs / 3).sum())
    if config.task == "abs":
        h = probs / 2  # each half's probability; |f1 - f2|^2 = f1^2 + f2^2 - 2 f1 f2
        return float((2 * h / 3 - 2 * (h / 2) ** 2).sum())
    if Q is None:
        Q = make_projection(config.N, config.m, config.seed, purpose="reprojection")
    Q = Q.to("cpu", torch.float64)
    mean = probs / 2
    second = torch.outer(mean, mean)
    second.diagonal().copy_(probs / 3)
    return float(torch.einsum("ai,ij,aj->", Q, second, Q))
