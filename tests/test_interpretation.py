import pytest
import torch

from monosem_lib.config import preset
from monosem_lib.interpretation import (
    CLASSES, ablation_loss, activity_fraction, classify_neurons, interpret, matrix_cosine, row_space_projector,
    subset_map,
)
from monosem_lib.training import train


@pytest.fixture(scope="module")
def run():
    return train(preset("tiny", steps=300, init_bias=-0.5, bias_decay=10.0, instances=2), progress=False)


def test_activity_fraction_is_a_fraction(run):
    a = activity_fraction(run, 0, samples=512)
    assert a.shape == (run.config.k,) and (a >= 0).all() and (a <= 1).all()


def test_ablating_nothing_is_the_loss_and_everything_is_the_zero_predictor(run):
    from monosem_lib.data import zero_loss
    base = ablation_loss(run, None, 0, samples=4096)
    everything = ablation_loss(run, torch.ones(run.config.k, dtype=torch.bool), 0, samples=4096)
    assert base < everything
    assert abs(everything - zero_loss(run.config)) / zero_loss(run.config) < 0.1


def test_linearizing_changes_only_the_chosen_neurons(run):
    none = ablation_loss(run, None, 0, samples=1024, linearize=[])
    assert none == ablation_loss(run, None, 0, samples=1024)


def test_subset_map_of_all_neurons_linearised_is_the_linear_model(run):
    W1, b, W2 = run.model.split()
    full = subset_map(run, torch.ones(run.config.k, dtype=torch.bool))
    expected = W2[0].double() @ W1[0].double() @ run.P[0].double()
    torch.testing.assert_close(full, expected)


def test_projector_and_cosine():
    P = torch.randn(3, 7, dtype=torch.float64)
    proj = row_space_projector(P)
    torch.testing.assert_close(proj @ proj, proj)
    assert abs(torch.trace(proj) - 3) < 1e-9
    assert matrix_cosine(proj, 2 * proj) == pytest.approx(1.0)


def test_classes_cover_every_neuron_and_report_names_them(run):
    classes = classify_neurons(run, 1, samples=512)
    assert sum(classes.counts().values()) == run.config.k
    assert set(classes.labels) <= set(CLASSES)
    report = interpret(run, 1, samples=512)
    for word in ("monosemantic", "always-on", "Ablations"):
        assert word in report.text
    assert report.to_dict()["counts"] == classes.counts()
    with pytest.raises(IndexError, match="out of range"):
        interpret(run, 5)


def test_interference_excludes_the_neurons_own_feature(run):
    from monosem_lib.interpretation import interference
    values = interference(run, 3, 0, feature=2, samples=512)
    # Each eval sample leaves feature 2 off with probability 1 - eps.
    assert 0.7 * 512 < values.numel() < 512
    assert torch.isfinite(values).all()


def test_alignment_of_an_aligned_model_is_perfect():
    from monosem_lib.data import make_projection
    from monosem_lib.interpretation import neuron_alignment
    from monosem_lib.model import ToyModel
    from monosem_lib.training import Run

    P = make_projection(8, 8, 0).float()
    model = ToyModel.from_weights(P.T.clone()[None], torch.zeros(1, 8), torch.eye(8)[None])
    run = Run((preset("tiny", N=8, m=8, k=8),), model, P[None], None, torch.zeros(1, 1))
    a = neuron_alignment(run)
    assert a["feature"].tolist() == list(range(8))
    torch.testing.assert_close(a["input_cosine"], torch.ones(8, dtype=torch.float64))
    torch.testing.assert_close(a["output_share"], torch.ones(8, dtype=torch.float64))


def test_feature_response_sums_to_the_models_output(run):
    from monosem_lib.interpretation import feature_response
    values, contrib = feature_response(run, 3, list(range(run.config.k)), 0)
    model = run.model.select(0)
    x = values[:, None].float() * run.P[0, :, 3][None, :]
    y = model(x.unsqueeze(0))[0, :, 3].double()
    torch.testing.assert_close(contrib.sum(0), y, atol=1e-5, rtol=1e-5)
