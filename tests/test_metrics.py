"""Metrics on hand-built models whose answers are known."""

import pytest
import torch

from monosem_lib.analysis.metrics import (
    monosemanticity,
    single_feature_activations,
    summarize,
    training_curves,
)
from monosem_lib.core.config import preset
from monosem_lib.core.data import make_projection
from monosem_lib.core.model import ToyModel
from monosem_lib.core.training import Run, train


def test_monosemanticity_on_a_handmade_activation_table():
    sfa = torch.tensor(
        [
            [1.0, 0.0, 0.0, 0.0],  # mono on feature 0
            [0.5, 0.5, 0.0, 0.0],  # two features
            [0.0, 0.0, 0.0, 0.0],  # dead
            [0.0, 0.0, 0.999, 0.0005],  # share 0.9995 > 0.999: mono on feature 2
            [0.0, 0.0, 0.99, 0.01],  # share 0.99: not mono at 0.999, mono at 0.95
            [-0.1, 0.0, 0.3, -0.2],  # negative parts are clipped: mono on feature 2
        ]
    )
    share, top, mono, dead = monosemanticity(sfa)
    assert mono.tolist() == [True, False, False, True, False, True]
    assert dead.tolist() == [False, False, True, False, False, False]
    assert top[0] == 0 and top[3] == 2
    assert monosemanticity(sfa, threshold=0.95)[2][4]
    with pytest.raises(ValueError, match="threshold"):
        monosemanticity(sfa, threshold=1.0)


def _aligned_model(N=8, seed=0, dead_neuron=False):
    """With m = N, P is orthogonal, so W1 = P^T makes neuron j read exactly feature j."""
    P = make_projection(N, N, seed).float()
    W1 = P.T.clone()
    b = torch.zeros(N)
    if dead_neuron:
        b[0] = -5.0
    W2 = torch.eye(N)
    return ToyModel.from_weights(W1[None], b[None], W2[None]), P[None]


def test_single_feature_activations_of_an_aligned_model_are_the_identity():
    model, P = _aligned_model()
    sfa = single_feature_activations(model, P)
    torch.testing.assert_close(sfa[0], torch.eye(8), atol=1e-5, rtol=0)
    _, top, mono, _ = monosemanticity(sfa)
    assert mono.all() and top[0].tolist() == list(range(8))


def test_summary_counts_mono_dead_and_coverage():
    model, P = _aligned_model(dead_neuron=True)
    cfg = preset("tiny", N=8, m=8, k=8)
    run = Run((cfg,), model, P, None, torch.zeros(1, 1))
    row = summarize(run, eval_samples=512)[0]
    assert row["mono_neurons"] == 7 and row["dead_neurons"] == 1
    assert row["features_covered"] == 7 / 8 and row["mono_per_feature"] == 7 / 8
    assert row["mean_bias_poly"] is None, "no alive polysemantic neurons here"
    assert row["mean_bias_mono"] == 0.0
    # The aligned model with W2 = I decodes isolated features exactly; loss stays below the
    # zero predictor's.
    assert row["final_loss"] < row["zero_loss"]


def test_training_curves_have_one_row_per_checkpoint():
    run = train(preset("tiny", steps=64, instances=2), progress=False)
    curves = training_curves(run)
    assert curves["steps"].tolist() == [1, 2, 4, 8, 16, 32, 64]
    for key in ("mono_per_feature", "features_covered", "mean_bias", "dead_neurons", "loss"):
        assert curves[key].shape == (7, 2), key
    assert curves["loss"][-1].mean() < curves["loss"][0].mean(), "training should lower the loss"


def test_signed_features_probe_both_signs():
    """For the abs task a neuron detecting -f_j is monosemantic for feature j."""
    from monosem_lib.analysis.metrics import neuron_stats

    P = make_projection(8, 8, 0).float()
    W1 = torch.cat([P.T, -P.T])  # neurons 0..7 read +f_j, neurons 8..15 read -f_j
    model = ToyModel.from_weights(W1[None], torch.zeros(1, 16), torch.zeros(1, 8, 16))
    unsigned = neuron_stats(model, P[None])
    assert int(unsigned.mono[0].sum()) == 8 and int(unsigned.dead[0].sum()) == 8
    signed = neuron_stats(model, P[None], signed=True)
    assert int(signed.mono[0].sum()) == 16
    assert signed.feature[0].tolist() == list(range(8)) * 2
    assert signed.covered(0) == 8


def test_best_per_feature_and_sign_pairs():
    from monosem_lib.analysis.metrics import stats_from_sfa

    # 2 features probed at +1 and -1: columns (+0, +1, -0, -1).
    sfa = torch.tensor(
        [
            [
                [1.0, 0, 0, 0],  # mono on +f0
                [0, 0, 1.0, 0],  # mono on -f0: a pair with neuron 0
                [0, 0.6, 0, 0.4],  # prefers +f1, share 0.6
                [0, 0, 0, 0],
            ]
        ]
    )  # dead
    st = stats_from_sfa(sfa, torch.zeros(1, 4), N=2)
    assert st.sign_pairs(0) == {"positive": 1, "negative": 1, "pairs": 1}
    best, count = st.best_per_feature(0)
    assert count.tolist() == [2, 1]
    torch.testing.assert_close(best, torch.tensor([1.0, 0.6]))
