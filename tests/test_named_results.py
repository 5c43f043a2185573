"""Public functions that return several values return NamedTuples: fields by name, and
still unpack and index as before."""

import torch

from monosem_lib.analysis.metrics import monosemanticity, neuron_stats
from monosem_lib.analysis.probes import feature_response, linear_target
from monosem_lib.core.config import preset
from monosem_lib.core.data import make_world
from monosem_lib.core.model import ToyModel, init_params
from monosem_lib.core.training import train


def test_model_weights_and_sizes_are_named():
    W1, b, W2 = init_params(4, 3, 5, torch.Generator().manual_seed(0))
    model = ToyModel.from_weights(W1[None], b[None], W2[None])
    w = model.split()
    assert w.W1.shape == (1, 4, 3) and w.b.shape == (1, 4) and w.W2.shape == (1, 5, 4)
    assert w[1] is w.b
    sizes = ToyModel.sizes(2, 4, 3, 5)
    assert (sizes.W1, sizes.b, sizes.W2) == (24, 8, 40) == tuple(sizes)


def test_batches_are_named():
    world = make_world(preset("tiny"))
    f, x, target = world.sample()
    batch = world.sample()
    assert batch.f.shape == (64, 16) and batch.x.shape == (64, 8) and batch.target.shape == (64, 16)
    chunk = world.sample_chunk()
    assert chunk.x.shape[1:] == (64, 8)


def test_metric_and_interpretation_results_are_named():
    run = train(preset("tiny", steps=20), progress=False)
    stats = neuron_stats(run.model, run.P)
    best = stats.best_per_feature(0)
    assert best.best.shape == best.count.shape == (16,)
    cls = monosemanticity(stats.sfa)
    assert cls.mono is cls[2]
    target = linear_target(run)
    assert target.matrix.shape == (16, 16) and "projector" in target.name
    response = feature_response(run, 0, [0, 1])
    values, contributions = response
    assert response.contributions.shape == (2, values.numel())
