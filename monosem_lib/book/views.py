"""What the chapters look at: small computed views of runs and stored results (a sample of
the world, interference, coverage, the anatomy of monosemantic neurons...), as dataclasses
the figures and tables read. Computing only; ``tables`` formats, ``plots`` draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..analysis.metrics import NeuronStats
from ..analysis.probes import feature_response, interference, neuron_alignment
from ..analysis.report import Report
from ..core.config import Config, preset
from ..core.data import feature_probabilities, make_world
from ..core.training import Run
from ..paper.recipe import decay_for_shrink
from ..store.results import Results
from .batches import B1_SHRINK, LIVE_BIASES, LIVE_EPSES, LIVE_L1S, LIVE_SHRINKS

__all__ = [
    "WorldSample",
    "world_sample",
    "example_neurons",
    "frequency_quarters",
    "live_views",
    "InterferenceView",
    "neuron_interference",
    "density_study",
    "Coverage",
    "coverage",
    "MonoAnatomy",
    "mono_anatomy",
    "PairResponse",
    "pair_response",
    "anatomy_facts",
    "PowerLawView",
    "power_law_view",
]


# -- chapter 1: the world and one pair of models ------------------------------------------------


@dataclass
class WorldSample:
    """One batch of the world and what chapter 1 reads from it.

    Attributes:
        f: [B, N] features; active: [B] active features per sample.
        binomial: [15] the Binomial(N, eps) probabilities of 0..14 active features.
        overlap: [N, N] P^T P with a zero diagonal.
        signal, interference: the readouts P_j . x where f_j > 0 and where f_j = 0 (flat).
        random_overlap: mean ``|u . v|`` of random unit vectors in R^m, sqrt(2 / (pi m)).
    """

    f: Tensor
    active: np.ndarray
    binomial: np.ndarray
    overlap: Tensor
    signal: np.ndarray
    interference: np.ndarray
    random_overlap: float
    N: int
    m: int
    eps: float


def world_sample(config: Config) -> WorldSample:
    """Sample one batch of ``config``'s world (``data.make_world``) and read it."""
    world = make_world(config)
    f, x, _ = world.sample()
    P = world.P.double()
    readout = x.double() @ P  # [B, N]: P_j . x for every feature j
    binom = torch.distributions.Binomial(config.N, probs=torch.tensor(config.eps))
    return WorldSample(
        f=f,
        active=(f > 0).sum(1).cpu().numpy(),
        binomial=binom.log_prob(torch.arange(15.0)).exp().numpy(),
        overlap=(P.T @ P).fill_diagonal_(0),
        signal=readout[f > 0].cpu().numpy(),
        interference=readout[f == 0].cpu().numpy(),
        random_overlap=math.sqrt(2 / (math.pi * config.m)),
        N=config.N,
        m=config.m,
        eps=config.eps,
    )


def example_neurons(stats: NeuronStats) -> list[tuple[int, str, int | None]]:
    """(instance, kind, neuron) of chapter 1's three examples: the most concentrated
    monosemantic and the least concentrated alive neuron of instance 0, and the first dead
    neuron of instance 1 (None where there is none). ``stats`` is ``metrics.NeuronStats``."""
    share = stats.share[0]
    mono = int(torch.argmax(torch.where(stats.mono[0], share, -1.0)))
    poly = int(torch.argmin(torch.where(~stats.dead[0], share, 2.0)))
    dead = stats.dead[1].nonzero().flatten()
    return [
        (0, "monosemantic", mono),
        (0, "polysemantic", poly),
        (1, "dead", int(dead[0]) if len(dead) else None),
    ]


def frequency_quarters(results: Results, instance: int) -> dict[str, int]:
    """Monosemantic neurons on the most frequent and on the rarest quarter of the features
    (power-law features are numbered from the most frequent)."""
    owned = results.features(instance).mono
    quarter = len(owned) // 4
    return {"frequent": int(owned[:quarter].sum()), "rare": int(owned[-quarter:].sum())}


def live_views(live: Results) -> dict:
    """Indices into the live grid's Results (``live_grid``): ``grid`` (the slider's frames,
    one per ``LIVE_BIASES``), ``start`` (no lever), ``l1`` (one per ``LIVE_L1S``), ``eps``
    ({density: index} at initial bias -1 with B1's shrink), ``shrink`` ({S: index})."""
    cfg = preset("live")
    one = lambda **values: live.where(**values)[0]
    shrinks = sorted(set(LIVE_SHRINKS) | {B1_SHRINK})
    decay = lambda S: decay_for_shrink(S, cfg.lr, cfg.steps)
    b1 = decay(B1_SHRINK)
    return {
        "grid": [one(init_bias=b, bias_decay=b1, eps=cfg.eps) for b in LIVE_BIASES],
        "start": one(init_bias=0.0, bias_decay=0.0, eps=cfg.eps, l1=0.0),
        "l1": [one(l1=v) for v in LIVE_L1S],
        "eps": {
            e: one(init_bias=-1.0, bias_decay=b1, eps=e)
            for e in sorted(set(LIVE_EPSES) | {cfg.eps})
        },
        "shrink": {S: one(init_bias=-1.0, eps=cfg.eps, bias_decay=decay(S)) for S in shrinks},
    }


@dataclass
class InterferenceView:
    """What one monosemantic neuron receives with its own feature off.

    Attributes:
        neuron, feature: the neuron and its feature; bias: its bias b.
        values: [samples] its input w . x on samples where the feature is off.
        above: the share of those samples on which the input alone exceeds -b (it would fire).
    """

    neuron: int
    feature: int
    bias: float
    values: Tensor
    above: float


def neuron_interference(
    results: Results, run: Run, instance: int, count: int = 4, samples: int = 4096
) -> list[InterferenceView]:
    """``InterferenceView`` of the first ``count`` monosemantic neurons of one instance
    (``results`` and ``run`` hold the same instances)."""
    st = results.stats(instance)
    views = []
    for n in st.mono[0].nonzero().flatten()[:count].tolist():
        values, b = interference(run, n, instance, samples=samples), float(st.bias[0, n])
        above = float((values > -b).double().mean())
        views.append(InterferenceView(n, int(st.top_feature[0, n]), b, values, above))
    return views


def density_study(
    live: Results, run: Run, views: dict, neurons: int = 6, samples: int = 2048
) -> dict:
    """Chapter 3's sparsity experiment on the live grid: per density, the mean bias of the
    monosemantic neurons and the spread of the interference on up to ``neurons`` of them,
    with the exponents of log-log fits against the density (``slope_bias``, ``slope_noise``).
    """
    eps = np.array(list(views["eps"]), float)
    idx = list(views["eps"].values())
    bias = np.array([live.metrics[i]["mean_bias_mono"] for i in idx], dtype=float)  # None: nan
    spreads = []
    for i in idx:
        views_i = neuron_interference(live, run, i, neurons, samples)
        spread = [float(v.values.std()) for v in views_i]
        spreads.append(np.mean(spread) if spread else np.nan)
    noise = np.array(spreads)
    ok = ~np.isnan(bias) & (bias < 0)
    return {
        "eps": eps,
        "mono_bias": bias,
        "noise": noise,
        "slope_bias": float(np.polyfit(np.log(eps[ok]), np.log(-bias[ok]), 1)[0]),
        "slope_noise": float(np.polyfit(np.log(eps), np.log(noise), 1)[0]),
    }


@dataclass
class Coverage:
    """Which features one instance covers, and why not the others.

    Attributes:
        features: ``results.FeatureStats`` of the instance.
        overlap: [N] each feature's largest ``|P_i . P_j|`` with another feature.
        uncovered: the features without a monosemantic neuron.
    """

    features: Any
    overlap: Tensor
    uncovered: list

    def summary(self) -> pd.Series:
        """The numbers chapter 4 states, as a pandas Series."""
        f, cov = self.features, self.features.mono > 0
        return pd.Series(
            {
                "monosemantic neurons": int(f.mono.sum()),
                "features covered": int(cov.sum()),
                "features with duplicates": f.duplicated,
                "uncovered": len(self.uncovered),
                "largest overlap, covered": float(self.overlap[cov].mean()),
                "largest overlap, uncovered": float(self.overlap[~cov].mean()),
            }
        )

    def uncovered_table(self) -> pd.DataFrame:
        """Every uncovered feature: the alive neurons preferring it and the best one's share."""
        f, idx = self.features, self.uncovered
        rows = {"neurons preferring it": f.preferring[idx].tolist()}
        rows["best share"] = f.best_share[idx].tolist()
        return pd.DataFrame(rows, index=pd.Index(idx, name="uncovered feature"))


def coverage(results: Results, instance: int) -> Coverage:
    """``Coverage`` of one instance of ``results`` (its weights must be reachable)."""
    features = results.features(instance)
    P = results.run(instance).P[0].double()
    overlap = (P.T @ P).fill_diagonal_(0).abs().max(0).values
    uncovered = (features.mono == 0).nonzero().flatten().tolist()
    return Coverage(features, overlap, uncovered)


# -- chapter 5: anatomy of one engineered model ---------------------------------------------------


@dataclass
class MonoAnatomy:
    """How the monosemantic neurons of one instance line up with their features.

    Attributes:
        align: ``probes.neuron_alignment`` ([k] each: feature, input_cosine,
            output_share); mono: [k] bool.
        neurons, feature, own: [n] the monosemantic neurons, their features and their output
            weight W2[j, n] on their own feature.
        largest_is_own: share of them whose largest ``|output weight|`` is on their own feature.
        paired: features with a negative and a positive monosemantic neuron;
        negative_features: how many features have a negative one.
    """

    align: dict
    mono: Tensor
    neurons: Tensor
    feature: Tensor
    own: Tensor
    largest_is_own: float
    paired: list
    negative_features: int

    def summary(self) -> pd.Series:
        """The numbers chapter 5 states about them, as a pandas Series."""
        return pd.Series(
            {
                "mean input cosine": self.input_cosine,
                "mean output share": float(self.align["output_share"][self.mono].mean()),
                "largest output weight on own feature": self.largest_is_own,
                "negative own weight": self.negative,
                "features with a negative neuron": self.negative_features,
                "... that also have a positive one": len(self.paired),
                "features with a monosemantic neuron": len(set(self.feature.tolist())),
            }
        )

    @property
    def input_cosine(self) -> float:
        """Mean cosine between a monosemantic neuron's input weights and its feature's P_j."""
        return float(self.align["input_cosine"][self.mono].mean())

    @property
    def negative(self) -> float:
        """Share of monosemantic neurons that subtract from their own output."""
        return float((self.own < 0).double().mean())


def mono_anatomy(run: Run, report: Report) -> MonoAnatomy:
    """``MonoAnatomy`` of a one-instance ``run`` classified by ``report`` (``interpret``)."""
    align = neuron_alignment(run)
    mono = report.classes.mask("monosemantic")
    W2 = run.model.W2[0].detach().double().cpu()
    neurons = mono.nonzero().flatten()
    feature = align["feature"][neurons]
    own = W2[feature, neurons]
    largest = float((W2[:, neurons].abs().argmax(0) == feature).double().mean())
    neg, pos = set(feature[own < 0].tolist()), set(feature[own >= 0].tolist())
    return MonoAnatomy(align, mono, neurons, feature, own, largest, sorted(neg & pos), len(neg))


@dataclass
class PairResponse:
    """Output j as feature j alone goes from 0 to 1: values [V]; contributions [n, V] of the
    feature's monosemantic ``neurons``; total [V] of all neurons; gap: max ``|total - value|``."""

    feature: int
    neurons: list
    values: Tensor
    contributions: Tensor
    total: Tensor
    gap: float


def pair_response(run: Run, anatomy: MonoAnatomy) -> PairResponse:
    """``PairResponse`` of the first feature with a negative and a positive neuron."""
    j = anatomy.paired[0]
    neurons = [int(n) for n in anatomy.neurons[anatomy.feature == j]]
    values, contrib = feature_response(run, j, neurons)
    _, everything = feature_response(run, j, list(range(run.config.k)))
    total = everything.sum(0)
    return PairResponse(j, neurons, values, contrib, total, float((total - values).abs().max()))


def anatomy_facts(report: Report, anatomy: MonoAnatomy, pair: PairResponse) -> dict[str, float]:
    """The numbers chapter 5's sentences state, by name (``book.glue_facts`` glues them):
    the monosemantic neurons' alignment and signs, the pair's gap to its target, and per set of
    claim 5 (``residual``, ``always``) the loss factor with its nonlinearity removed, its
    singular values near 1 and its cosine with the target; then the ablation ratio and eps."""
    facts = {
        "input_cosine": anatomy.input_cosine,
        "own_output": anatomy.largest_is_own,
        "negative": anatomy.negative,
        "negative_features": anatomy.negative_features,
        "paired": len(anatomy.paired),
        "pair_gap": pair.gap,
        "m": report.config.m,
        "outweighs": report.sets["always_on"].verdicts["outweighs_monosemantic"].value,
        "eps": report.config.eps,
    }
    for key, name in (("residual_block", "residual"), ("always_on", "always")):
        s = report.sets[key]
        lin = s.verdicts["acts_linearly"].value
        if lin is not None:
            facts[f"{name}_linear_x"] = lin + 1
        if s.subspace is not None:
            facts[f"{name}_near_one"] = s.subspace.near_one
            facts[f"{name}_cosine"] = s.subspace.cosine_target
    return {k: float(v) for k, v in facts.items() if v is not None}


@dataclass
class PowerLawView:
    """Where one power-law instance puts its monosemantic neurons: ``features``
    (``results.FeatureStats``) and ``probs`` [N], each feature's probability."""

    features: Any
    probs: Tensor

    def summary(self) -> pd.Series:
        """Neurons on the frequent and rare halves, best shares of the quarters, and how
        many features are always on (probability capped at 1), as a pandas Series."""
        mono, best = self.features.mono, self.features.best_share
        half, quarter = len(mono) // 2, len(mono) // 4
        return pd.Series(
            {
                f"mono neurons, {half} most frequent features": int(mono[:half].sum()),
                f"mono neurons, {half} rarest features": int(mono[half:].sum()),
                f"best share, {quarter} most frequent": float(best[:quarter].mean()),
                f"best share, {quarter} rarest": float(best[-quarter:].mean()),
                "features with probability 1": int((self.probs >= 1).sum()),
            }
        )

    @property
    def rare_minus_frequent(self) -> float:
        """Mean best share of the rarest quarter minus that of the most frequent quarter."""
        best, quarter = self.features.best_share, len(self.probs) // 4
        return float(best[-quarter:].mean() - best[:quarter].mean())


def power_law_view(results: Results, instance: int) -> PowerLawView:
    """``PowerLawView`` of one instance with power-law features."""
    c = results.configs[instance]
    return PowerLawView(results.features(instance), feature_probabilities(c.N, c.eps, "power_law"))
