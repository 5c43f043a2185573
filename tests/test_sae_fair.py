"""The fair fight between engineered neurons and SAEs (issue 29): one yardstick for neuron axes
and SAE atoms, TopK scored with an inference-time threshold, SAEs trained with warm-up, decay
and resampling, an honest FLOP bill, and the frontier study's cells."""

from __future__ import annotations

import copy

import pytest
import torch

import monosem_lib as ml
from monosem_lib.analysis import dictionary as gt
from monosem_lib.analysis.sae_scoring import score_neurons, score_topk_both_ways
from monosem_lib.core.sae import calibrate_threshold


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


# -- TopK with an inference-time threshold -------------------------------------------------------


def _planted(seed: int = 0, d: int = 16, n: int = 32, batch: int = 256):
    """A planted dictionary [d, n] and a source of its sparse codes' images (2 features active
    a sample on average, values U[0, 1))."""
    g = torch.Generator().manual_seed(seed)
    planted = torch.randn(d, n, generator=g)
    planted /= planted.norm(dim=0)

    def source():
        f = torch.rand(batch, n, generator=g) * (torch.rand(batch, n, generator=g) < 2 / n)
        return (f @ planted.T).unsqueeze(0)

    return planted, source


def test_a_thresholded_topk_sae_keeps_about_k_and_covers_no_less():
    planted, source = _planted()
    cfg = ml.SAEConfig(d=16, latents=64, topk=2, steps=1000, batch=256, lr=3e-3)
    sae = ml.train_sae(cfg, source).sae
    theta = calibrate_threshold(sae, [source() for _ in range(16)])
    assert theta.shape == (1,) and float(theta[0]) > 0
    cut = sae.thresholded(theta)
    data = torch.cat([source() for _ in range(16)], dim=1)
    l0 = float((cut.encode(data) > 0).sum(-1).double().mean())
    assert 1.5 < l0 < 3.0, l0  # near k = 2
    assert float((sae.encode(data) > 0).sum(-1).double().mean()) <= 2
    probes = planted.T  # one feature alone, value 1
    kept = gt.unit_metrics(gt.Units(sae.encode(probes)[0].T))
    cut_metrics = gt.unit_metrics(gt.Units(cut.encode(probes)[0].T))
    assert cut_metrics["features_covered"] >= kept["features_covered"]
    assert cut_metrics["features_covered"] > 0.9
    # The threshold travels with select, and None goes back to TopK.
    assert torch.equal(cut.select([0]).threshold, cut.threshold)
    assert torch.equal(cut.thresholded(None).encode(probes), sae.encode(probes))


def test_a_threshold_is_checked_and_needs_a_topk_sae():
    cfg = ml.SAEConfig(d=4, latents=8, batch=8, steps=2)
    sae = ml.train_sae(cfg, lambda: torch.rand(1, 8, 4)).sae
    with pytest.raises(ValueError, match=r"threshold=\[-1.0\] is not allowed"):
        sae.thresholded(-1.0)
    relu = ml.SAEConfig(d=4, latents=8, kind="relu", l1=0.1, batch=8, steps=2)
    relu_sae = ml.train_sae(relu, lambda: torch.rand(1, 8, 4)).sae
    with pytest.raises(ValueError, match="kind='relu' is not allowed"):
        calibrate_threshold(relu_sae, [torch.rand(1, 8, 4)])


def test_topk_is_scored_both_ways_on_a_toy_model(tiny_run):
    m, N = tiny_run.config.m, tiny_run.config.N
    cfg = ml.SAEConfig(d=m, latents=2 * N, topk=2, batch=64, steps=300, lr=3e-3)
    sae = ml.train_sae(cfg, ml.activation_source(tiny_run, "x", 64, [0])).sae
    both = score_topk_both_ways(sae, 0, tiny_run, 0, "x", samples=1024)
    topk, cut = both["topk"], both["threshold"]
    assert topk["mmcs"] == cut["mmcs"]  # the same atoms
    assert topk["l0"] <= 2 and cut["threshold"] > 0 and cut["l0"] > 0
    assert cut["units"] == topk["units"] == 2 * N
    again = score_topk_both_ways(sae, 0, tiny_run, 0, "x", threshold=cut["threshold"], samples=1024)
    assert again["threshold"]["l0"] == cut["l0"]
    neurons = score_neurons(tiny_run, 0, samples=1024)
    assert neurons["mmcs"] is not None and "loss" in neurons
