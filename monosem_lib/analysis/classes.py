"""The classes of neurons the paper found: monosemantic, near-monosemantic, always-on,
polysemantic and dead, decided per neuron of one instance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.training import Run
from .defaults import EVAL_SAMPLES
from .metrics import (
    MONO_THRESHOLD,
    is_signed,
    neuron_stats,
)
from .probes import activity_fraction, instance_model

__all__ = [
    "CLASSES",
    "LIVE_CLASSES",
    "NEURON_CLASSES",
    "NeuronClass",
    "NeuronClasses",
    "classify_neurons",
    "ALWAYS_ON_ACTIVITY",
    "NEAR_MAX_FEATURES",
]

ALWAYS_ON_ACTIVITY = 0.9  # always-on: active on at least this fraction of real inputs
NEAR_MAX_FEATURES = 5  # near-monosemantic: at most this many features carry the threshold


@dataclass(frozen=True)
class NeuronClass:
    """One class of neurons: its name, the rule that puts a neuron in it (in the order
    ``classify_neurons`` applies them) and its colour in every figure."""

    name: str
    rule: str
    color: str


# The classes of neurons, in the order the book lists them: the one place they are defined.
NEURON_CLASSES: dict[str, NeuronClass] = {
    c.name: c
    for c in (
        NeuronClass(
            "monosemantic",
            "one feature carries more than the threshold of its single-feature activations",
            "#2a7ab9",
        ),
        NeuronClass(
            "near-monosemantic",
            f"2 to {NEAR_MAX_FEATURES} features carry the threshold of it",
            "#7fb8e0",
        ),
        NeuronClass(
            "always-on", f"active on at least {ALWAYS_ON_ACTIVITY:.0%} of real inputs", "#d9534f"
        ),
        NeuronClass("polysemantic", "every other live neuron", "#f0ad4e"),
        NeuronClass("dead", "no feature alone activates it", "#9a9a9a"),
    )
}
CLASSES = tuple(NEURON_CLASSES)
LIVE_CLASSES = tuple(c for c in CLASSES if c != "dead")


@dataclass
class NeuronClasses:
    """Per-neuron classification of one instance (all tensors have shape [k])."""

    labels: list[str]
    share: Tensor
    n_features: Tensor
    activity: Tensor
    bias: Tensor
    top_feature: Tensor

    def mask(self, label: str) -> Tensor:
        """[k] bool: the neurons of class ``label`` (one of ``CLASSES``)."""
        if label not in CLASSES:
            raise ValueError(f"label={label!r} is not allowed: must be one of {', '.join(CLASSES)}")
        return torch.tensor([lab == label for lab in self.labels])

    def counts(self) -> dict[str, int]:
        return {c: sum(lab == c for lab in self.labels) for c in CLASSES}

    def mean_bias(self) -> dict[str, float | None]:
        out = {}
        for c in CLASSES:
            m = self.mask(c)
            out[c] = float(self.bias[m].mean()) if bool(m.any()) else None
        return out


def classify_neurons(
    run: Run,
    instance: int = 0,
    threshold: float = MONO_THRESHOLD,
    always_on: float = ALWAYS_ON_ACTIVITY,
    near_max_features: int = NEAR_MAX_FEATURES,
    samples: int = EVAL_SAMPLES,
) -> NeuronClasses:
    """Sort the neurons of one instance into ``CLASSES``.

    * dead: no feature alone activates it;
    * monosemantic: one feature carries more than ``threshold`` of its single-feature
      activations (the paper's criterion);
    * always-on: active on at least ``always_on`` of real inputs;
    * near-monosemantic: 2 to ``near_max_features`` features carry ``threshold`` of it;
    * polysemantic: the rest.
    """
    model, P = instance_model(run, instance)
    st = neuron_stats(model, P.unsqueeze(0), threshold, signed=is_signed(run.configs[instance]))
    sfa = st.sfa[0].clamp(min=0).double()
    total = sfa.sum(1, keepdim=True).clamp(min=1e-30)
    cum = (sfa.sort(1, descending=True).values / total).cumsum(1)
    n_features = (cum < threshold).sum(1) + 1  # features needed to carry `threshold`
    activity = activity_fraction(run, instance, samples)
    labels = []
    for n in range(model.k):
        if st.dead[0, n]:
            labels.append("dead")
        elif st.mono[0, n]:
            labels.append("monosemantic")
        elif activity[n] >= always_on:
            labels.append("always-on")
        elif n_features[n] <= near_max_features:
            labels.append("near-monosemantic")
        else:
            labels.append("polysemantic")
    return NeuronClasses(labels, st.share[0], n_features, activity, st.bias[0], st.feature[0])
