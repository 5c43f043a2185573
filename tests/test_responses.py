"""Responses to several features at once, and the decoder's end-to-end linear map."""

import pytest
import torch

from monosem_lib.analysis.responses import linear_map, linear_map_stats, multi_feature_response
from monosem_lib.core.config import preset
from monosem_lib.core.model import ToyModel
from monosem_lib.core.training import train


@pytest.fixture(scope="module")
def run():
    return train(preset("tiny", steps=200, instances=2), progress=False)


def test_one_feature_at_a_time_is_exactly_additive(run):
    r = multi_feature_response(run.model, run.P, active=1, instance=1)
    assert r.actual.shape == (256, 32) and float(r.error.max()) < 1e-9


def test_always_active_neurons_are_additive_and_others_are_not(run):
    W1, b, W2 = run.model.split()
    linear = ToyModel.from_weights(
        W1[:1], torch.full_like(b[:1], 10.0), W2[:1]
    )  # every neuron always on
    assert float(multi_feature_response(linear, run.P, active=4).error.max()) < 1e-9
    assert float(multi_feature_response(run.model, run.P, active=4).error.max()) > 1e-3


def test_linear_map_of_an_identity_model():
    eye = torch.eye(6)[None]
    model = ToyModel.from_weights(eye, torch.zeros(1, 6), eye)
    M = linear_map(model, eye)
    torch.testing.assert_close(M, torch.eye(6, dtype=torch.float64))
    stats = linear_map_stats(M)
    assert stats.diagonal == 1 and stats.off_diagonal == 0 and stats.ratio > 1e6


def test_bad_inputs_name_the_value(run):
    with pytest.raises(ValueError, match="active=0"):
        multi_feature_response(run.model, run.P, active=0)
    with pytest.raises(ValueError, match="square"):
        linear_map_stats(torch.zeros(3, 4))


def test_own_feature_view_of_a_monosemantic_neuron():
    # Neuron 0 reads feature 0 alone; neuron 1 reads every feature: on a mixture the first is
    # exactly additive and silent without its feature, the second is not.
    P = torch.eye(4)[None]
    W1 = torch.tensor([[[1.0, 0, 0, 0], [1.0, 1.0, 1.0, 1.0]]])
    model = ToyModel.from_weights(W1, torch.tensor([[0.0, -0.5]]), torch.ones(1, 4, 2))
    r = multi_feature_response(model, P, active=2, samples=64)
    view = r.own_feature_view(torch.tensor([0, 0]), torch.tensor([True, False]))
    assert view["deviation_on"] == 0 and view["share_off"] == 0 and view["fires_off"] == 0
    other = r.own_feature_view(torch.tensor([0, 0]), torch.tensor([False, True]))
    assert other["share_off"] > 0.2 and other["fires_off"] > 0.2
