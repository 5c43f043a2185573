"""One scoring for every contender of the SAE comparison, and TopK scored two ways.

``score_sae`` puts together what ``dictionary`` measures for one SAE instance: the paper's
criterion on single-feature activations (monosemantic latents, features covered at 0.999),
MMCS and recovery of its decoder atoms, and on fresh data L0, FVU, dead latents and (on h) the
spliced loss. ``score_neurons`` does the same for a toy model's neurons, their axes in h being
their atoms (``dictionary.neuron_units(axes=True)``).

A TopK SAE keeps k latents for every input, single-feature probes included, so the 0.999
criterion finds few monosemantic latents by construction: the k - 1 weakest latents of a
probe are kept however small they are. BatchTopK and JumpReLU SAEs are used after training
with one threshold instead; ``score_topk_both_ways`` scores a TopK SAE as trained and with the
threshold ``core.sae.calibrate_threshold`` finds on its training activations, so that the
criterion judges the dictionary rather than the top-k rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..core.sae import SAE, calibrate_threshold
from ..core.sae_training import activation_source
from ..core.training import Run
from . import dictionary as gt

__all__ = [
    "CALIBRATION_SAMPLES",
    "score_sae",
    "score_neurons",
    "topk_threshold",
    "score_topk_both_ways",
]

CALIBRATION_SAMPLES = 2**13


def score_sae(
    sae: SAE, index: int, run: Run, instance: int, on: str, samples: int = gt.EVAL_SAMPLES
) -> dict:
    """Every ground-truth and data metric of SAE instance ``index`` reading run instance
    ``instance``'s ``on`` (x or h): ``unit_metrics`` then ``sae_data_metrics`` in one dict."""
    units = gt.sae_units(sae, index, run, instance, on)
    return {
        **gt.unit_metrics(units),
        **gt.sae_data_metrics(sae, index, run, instance, on, samples),
    }


def score_neurons(run: Run, instance: int, samples: int = gt.EVAL_SAMPLES) -> dict:
    """The same for a toy model's neurons: the criterion, MMCS of their axes in h against the
    true directions in h, and L0, FVU of the output, dead neurons and the loss on data."""
    units = gt.neuron_units(run, instance, axes=True)
    return {**gt.unit_metrics(units), **gt.neuron_data_metrics(run, instance, samples)}


@torch.no_grad()
def topk_threshold(
    sae: SAE,
    run: Run,
    instances: Sequence[int],
    on: str,
    samples: int = CALIBRATION_SAMPLES,
    batch: int = 1024,
) -> Tensor:
    """Thresholds [I] of a TopK SAE whose instance i read run instance ``instances[i]``,
    calibrated (``calibrate_threshold``) on ``samples`` of its training activations (the
    SAEs' own data stream, redrawn from its start)."""
    if len(instances) != sae.I:
        raise ValueError(
            f"instances={list(instances)!r} is not allowed: needs one per SAE ({sae.I})"
        )
    source = activation_source(run, on, batch, instances)
    return calibrate_threshold(sae, (source() for _ in range(max(1, samples // batch))))


def score_topk_both_ways(
    sae: SAE,
    index: int,
    run: Run,
    instance: int,
    on: str,
    threshold: float | None = None,
    samples: int = gt.EVAL_SAMPLES,
) -> dict[str, dict]:
    """A TopK SAE instance scored as trained (``"topk"``) and with an inference-time threshold
    (``"threshold"``, its row also holding ``threshold``): calibrated on the training
    activations unless ``threshold`` is given."""
    one = sae.select([index])
    if one.kind != "topk":
        raise ValueError(f"kind={one.kind!r} is not allowed: scoring both ways needs a topk SAE")
    theta = threshold
    if theta is None:
        theta = float(topk_threshold(one, run, [instance], on)[0])
    row = score_sae(one.thresholded(theta), 0, run, instance, on, samples)
    return {
        "topk": score_sae(one, 0, run, instance, on, samples),
        "threshold": {**row, "threshold": theta},
    }
