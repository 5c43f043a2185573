"""The fair fight between engineered neurons and SAEs (issue 29): one yardstick for neuron axes
and SAE atoms, TopK scored with an inference-time threshold, SAEs trained with warm-up, decay
and resampling, an honest FLOP bill, and the frontier study's cells."""

from __future__ import annotations

import copy

import pytest
import torch

import monosem_lib as ml
from monosem_lib.analysis import dictionary as gt


@pytest.fixture(scope="module")
def tiny_run():
    return ml.train(ml.preset("tiny", instances=1, steps=50))


def _one_feature_per_neuron(run: ml.Run) -> ml.Run:
    """A copy of ``run`` whose first N neurons read one feature each (W1's rows are P's
    columns, the bias cuts every other feature's overlap) and whose other neurons are silent."""
    out = copy.deepcopy(run)
    W1, b, _ = out.model.split()
    P = out.P[0]
    N = P.shape[1]
    overlap = (P.T @ P - torch.eye(N)).abs().max()
    assert overlap < 0.95, "the check needs distinct feature directions"
    W1[0].zero_()
    W1[0, :N] = P.T
    b[0] = -(overlap + 1) / 2
    return out


def test_neurons_that_answer_one_feature_each_have_mmcs_one(tiny_run):
    exact = _one_feature_per_neuron(tiny_run)
    best = gt.neuron_axis_cosines(exact, 0)
    assert gt.mmcs(best) == pytest.approx(1.0, abs=1e-6)
    out = gt.unit_metrics(gt.neuron_units(exact, 0, axes=True))
    assert out["mmcs"] == pytest.approx(1.0, abs=1e-6) and out["recovered"] == 1.0
    assert out["features_covered"] == 1.0
    # A random rotation of the neurons mixes the features into every neuron.
    rotated = copy.deepcopy(exact)
    W1 = rotated.model.split().W1
    q, _ = torch.linalg.qr(torch.randn(W1.shape[1], W1.shape[1], generator=torch.Generator()))
    W1[0] = q @ W1[0]
    assert gt.mmcs(gt.neuron_axis_cosines(rotated, 0)) < 0.8
    assert gt.mmcs(gt.neuron_axis_cosines(rotated, 0, absolute=True)) >= gt.mmcs(
        gt.neuron_axis_cosines(rotated, 0)
    )


def test_neuron_units_compare_no_directions_unless_asked(tiny_run):
    plain = gt.unit_metrics(gt.neuron_units(tiny_run, 0))
    assert plain["mmcs"] is None and plain["recovered"] is None
    axes = gt.unit_metrics(gt.neuron_units(tiny_run, 0, axes=True))
    assert 0 < axes["mmcs"] <= 1 and axes["mono_units"] == plain["mono_units"]
    assert axes["mmcs"] == pytest.approx(gt.mmcs(gt.neuron_axis_cosines(tiny_run, 0)))
