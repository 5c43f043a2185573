"""How monosemantic a model is, and how good.

The paper's measure (the authors' ``plot_helper``): feed each feature alone at value 1
(f = e_j) and record every neuron's activation, the *single-feature activations* A [k, N]. A
neuron's share is ``max_j A / (1e-10 + sum_j A)`` on the raw activations, and it is
monosemantic when the share exceeds ``threshold`` (0.999). This is the default everywhere
(``variant="paper"``) and every comparison with the paper uses it.

The book's variant (``variant="book"``) differs in two places, and only where the paper's
definition misreads a model: for the abs task it also probes with -e_j (a neuron that
answers -f_j alone is silent on +e_j, so the paper's probe sees half of each pair), and for
GeLU and SoLU it clips activations at 0 before summing (their small negative outputs can
cancel the sum and push the share above 1). For ReLU decoders the two are identical.

In both, a neuron whose largest single-feature activation is below ``DEAD_TOL`` (float32
round-off) counts as dead, never as monosemantic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from ..core.config import Config
from ..core.data import make_world, zero_loss
from ..core.model import ToyModel
from ..core.training import Run
from .defaults import EVAL_SAMPLES, LOSS_WINDOW

__all__ = [
    "MONO_THRESHOLD",
    "single_feature_activations",
    "monosemanticity",
    "Classification",
    "NeuronStats",
    "FeatureBest",
    "neuron_stats",
    "stats_from_sfa",
    "is_signed",
    "VARIANTS",
    "variant_options",
    "evaluate_loss",
    "summarize",
    "training_curves",
    "SUMMARY_KEYS",
    "METRICS",
    "Metric",
]

MONO_THRESHOLD = 0.999
DEAD_TOL = 1e-6  # float32 round-off leaves ~1e-7 where the exact value is 0
VARIANTS = ("paper", "book")


@dataclass(frozen=True)
class Metric:
    """One headline number of a run: its key in ``summarize``'s rows, its axis label, its
    short name (table columns, status lines) and its format spec."""

    key: str
    label: str
    short: str
    fmt: str


# Every headline number, in the order summaries list them: the one place their names live.
METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("final_loss", "loss", "loss", ".3g"),
        Metric("zero_loss", "zero-predictor loss", "zero loss", ".3g"),
        Metric("mono_neurons", "monosemantic neurons", "mono", "d"),
        Metric("mono_per_feature", "mono neurons / feature", "mono/N", ".2f"),
        Metric("mono_per_neuron", "mono neurons / neuron", "mono/k", ".2f"),
        Metric("features_covered", "features covered", "covered", ".2f"),
        Metric("dead_neurons", "dead neurons", "dead", "d"),
        Metric("mean_bias_mono", "mean bias, monosemantic neurons", "bias mono", ".2f"),
        Metric("mean_bias_poly", "mean bias, other live neurons", "bias others", ".2f"),
    )
}
SUMMARY_KEYS = tuple(METRICS)


@torch.no_grad()
def single_feature_activations(model: ToyModel, P: Tensor, signed: bool = False) -> Tensor:
    """Activation of every neuron for every feature alone at value 1.

    Args:
        model: I instances.
        P: [I, m, N] projections.
        signed: also feed every feature at value -1 (for the abs task, whose features are
            signed): columns N .. 2N-1 then hold feature j - N at -1.
    Returns:
        A tensor of shape [I, k, N] (or [I, k, 2N] when signed) whose entry (i, n, j) is
        neuron n's activation when only feature j is on.
    """
    x = P.to(model.flat.device, model.flat.dtype).transpose(1, 2)  # [I, N, m]: x_j = P e_j
    if signed:
        x = torch.cat([x, -x], dim=1)
    return model.hidden(x).transpose(1, 2)


class Classification(NamedTuple):
    """Per-neuron classification from single-feature activations, each [..., k]."""

    share: Tensor  # the top feature's share of the neuron's summed activation (0 if dead)
    top_feature: Tensor  # the index of that feature
    mono: Tensor  # share above the threshold and not dead
    dead: Tensor  # no feature alone lifts the neuron above DEAD_TOL


def monosemanticity(
    sfa: Tensor, threshold: float = MONO_THRESHOLD, clamp: bool = False
) -> Classification:
    """Classify neurons from single-feature activations.

    Args:
        sfa: [..., k, N] single-feature activations.
        threshold: share of a neuron's summed activation its top feature must carry.
        clamp: clip activations at 0 first (the book's variant for GeLU and SoLU); the
            default is the authors' raw ``max / (1e-10 + sum)``.
    Returns:
        A ``Classification`` of [..., k] tensors: ``share``, ``top_feature``, ``mono``, ``dead``.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold={threshold!r} is not allowed: must be in (0, 1)")
    acts = sfa.clamp(min=0) if clamp else sfa
    top, top_feature = acts.max(-1)
    dead = top <= DEAD_TOL
    share = torch.where(dead, torch.zeros_like(top), top / (1e-10 + acts.sum(-1)))
    mono = (share > threshold) & ~dead
    return Classification(share, top_feature, mono, dead)


class FeatureBest(NamedTuple):
    """Per feature [N]: the top share among the alive neurons preferring it (0 if none
    does), and how many alive neurons prefer it."""

    best: Tensor
    # A NamedTuple field may shadow tuple.count at runtime; the name is API (best.count).
    count: Tensor  # type: ignore[assignment]


@dataclass
class NeuronStats:
    """Per-neuron view of one batch of instances ([I, k] each; sfa is [I, k, N], or
    [I, k, 2N] for signed features, where ``top_feature`` counts the signed inputs and
    ``feature`` folds them back onto the N features)."""

    sfa: Tensor
    share: Tensor
    top_feature: Tensor
    mono: Tensor
    dead: Tensor
    bias: Tensor
    N: int

    @property
    def poly(self) -> Tensor:
        """[I, k] bool: alive neurons that are not monosemantic."""
        return ~self.mono & ~self.dead

    @property
    def feature(self) -> Tensor:
        """[I, k]: the feature each neuron responds to most, 0 .. N-1, whatever its sign."""
        return self.top_feature % self.N

    def covered(self, instance: int) -> int:
        """Number of features with at least one monosemantic neuron."""
        return int(torch.unique(self.feature[instance][self.mono[instance]]).numel())

    def best_per_feature(self, instance: int) -> FeatureBest:
        """For every feature: the top share among the alive neurons that prefer it (0 if
        none does) and how many alive neurons prefer it. Two [N] tensors."""
        feature, alive = self.feature[instance], ~self.dead[instance]
        best = torch.zeros(self.N, dtype=self.share.dtype)
        count = torch.bincount(feature[alive], minlength=self.N)
        best.scatter_reduce_(0, feature[alive], self.share[instance][alive], reduce="amax")
        return FeatureBest(best, count)

    def sign_pairs(self, instance: int) -> dict[str, int]:
        """Signed features only: how many features have a monosemantic neuron for +f_j, for
        -f_j, and for both (a pair that together computes abs(f_j))."""
        top = self.top_feature[instance][self.mono[instance]]
        pos, neg = set(top[top < self.N].tolist()), set((top[top >= self.N] - self.N).tolist())
        return {"positive": len(pos), "negative": len(neg), "pairs": len(pos & neg)}


def stats_from_sfa(
    sfa: Tensor, bias: Tensor, N: int, threshold: float = MONO_THRESHOLD, clamp: bool = False
) -> NeuronStats:
    """NeuronStats from single-feature activations [I, k, N or 2N] and biases [I, k]."""
    share, top, mono, dead = monosemanticity(sfa, threshold, clamp)
    return NeuronStats(
        sfa.cpu(), share.cpu(), top.cpu(), mono.cpu(), dead.cpu(), bias.detach().cpu(), N
    )


def neuron_stats(
    model: ToyModel,
    P: Tensor,
    threshold: float = MONO_THRESHOLD,
    signed: bool = False,
    clamp: bool = False,
) -> NeuronStats:
    """Single-feature activations and the classification of every neuron of every instance,
    for a model of I instances with projections P [I, m, N].

    The defaults are the paper's metric; ``variant_options(config, "book")`` gives the
    book's ``signed`` and ``clamp``."""
    return stats_from_sfa(
        single_feature_activations(model, P, signed), model.b, P.shape[-1], threshold, clamp
    )


def is_signed(config: Config) -> bool:
    """Whether a task's features are signed (abs), so neurons are probed with -e_j too."""
    return config.task == "abs"


def variant_options(config: Config, variant: str = "paper") -> dict[str, bool]:
    """``signed`` and ``clamp`` for ``neuron_stats`` under a metric variant.

    ``paper``: the authors' definition (+e_j only, raw activations). ``book``: -e_j too for
    the abs task, activations clipped at 0 for GeLU and SoLU."""
    if variant not in VARIANTS:
        raise ValueError(
            f"variant={variant!r} is not allowed: must be one of {', '.join(VARIANTS)}"
        )
    book = variant == "book"
    return {"signed": book and is_signed(config), "clamp": book and config.nonlinearity != "relu"}


@torch.no_grad()
def evaluate_loss(run: Run, samples: int = EVAL_SAMPLES, model: ToyModel | None = None) -> Tensor:
    """Loss per instance on ``samples`` fresh samples from an evaluation stream (not the
    training stream), averaged in chunks of the training batch size. Returns [I] (CPU)."""
    model = run.model if model is None else model
    out = torch.zeros(run.instances, dtype=torch.float64)
    by_world: dict[tuple, list[int]] = {}
    for i, c in enumerate(run.configs):
        by_world.setdefault((c.seed, c.eps, c.feature_dist), []).append(i)
    for idx in by_world.values():
        cfg = run.configs[idx[0]]
        chunk = max(1, min(cfg.batch, samples))
        world = make_world(cfg.replace(batch=chunk), stream="eval")
        sub = model.select(idx) if len(idx) < run.instances else model
        n = 0
        total = torch.zeros(len(idx), dtype=torch.float64, device=model.flat.device)
        while n < samples:
            _, x, target = world.sample()
            y = sub(x)
            total += ((y - target) ** 2).sum((1, 2)).double()
            n += chunk
        out[idx] = (total / n).cpu()
    return out


def mean_or_none(values: Tensor, mask: Tensor) -> float | None:
    """The mean of ``values`` over ``mask``, or None where the mask is empty."""
    return float(values[mask].double().mean()) if bool(mask.any()) else None


def summarize(
    run: Run,
    threshold: float = MONO_THRESHOLD,
    eval_samples: int = EVAL_SAMPLES,
    variant: str = "paper",
) -> list[dict]:
    """The headline numbers of every instance, as plain dicts (keys ``SUMMARY_KEYS``).

    ``final_loss`` is measured on fresh evaluation samples; ``zero_loss`` is the exact loss of
    always predicting 0, for scale; ``mono_per_feature`` is the paper's headline figure and
    ``mono_per_neuron`` its per-neuron twin; ``features_covered`` is the fraction of features
    that own at least one monosemantic neuron; the mean biases are None where a class is
    empty. Neurons are classified with the metric ``variant`` (default: the paper's).
    """
    stats = neuron_stats(run.model, run.P, threshold, **variant_options(run.config, variant))
    losses = evaluate_loss(run, eval_samples)
    rows = []
    for i, c in enumerate(run.configs):
        mono, dead, b = stats.mono[i], stats.dead[i], stats.bias[i]
        covered = stats.covered(i)
        rows.append(
            {
                "final_loss": float(losses[i]),
                "zero_loss": zero_loss(c, None if run.Q is None else run.Q[i]),
                "mono_neurons": int(mono.sum()),
                "mono_per_feature": float(mono.sum()) / c.N,
                "mono_per_neuron": float(mono.sum()) / c.k,
                "features_covered": covered / c.N,
                "dead_neurons": int(dead.sum()),
                "mean_bias_mono": mean_or_none(b, mono),
                "mean_bias_poly": mean_or_none(b, ~mono & ~dead),
            }
        )
    return rows


def training_curves(run: Run, threshold: float = MONO_THRESHOLD) -> dict[str, Tensor]:
    """Metrics at every checkpoint (log2-spaced steps), as in the paper's training plots.

    Returns a dict of ``steps`` [C] and [C, I] tensors ``mono_per_feature``,
    ``features_covered``, ``mean_bias``, ``dead_neurons`` and ``loss`` (the training loss
    averaged over the ``LOSS_WINDOW`` steps before each checkpoint).
    """
    steps = sorted(run.checkpoints)
    N = run.config.N
    mono, covered, bias, dead, loss = [], [], [], [], []
    hist = run.loss_history
    for s in steps:
        st = neuron_stats(run.checkpoint_model(s), run.P, threshold)
        mono.append(st.mono.sum(1).double() / N)
        covered.append(torch.tensor([st.covered(i) / N for i in range(run.instances)]))
        bias.append(st.bias.double().mean(1))
        dead.append(st.dead.sum(1))
        loss.append(hist[max(0, s - LOSS_WINDOW) : s].double().mean(0))
    return {
        "steps": torch.tensor(steps),
        "mono_per_feature": torch.stack(mono),
        "features_covered": torch.stack(covered).double(),
        "mean_bias": torch.stack(bias),
        "dead_neurons": torch.stack(dead),
        "loss": torch.stack(loss),
    }
