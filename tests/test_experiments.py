"""The chapters' batches: sized for a minute of CPU at book scale, valid at paper scale."""

import pytest
import torch

from monosem_lib import book as ex
from monosem_lib.core.config import preset
from monosem_lib.core.training import as_instances, group_by_structure, train
from monosem_lib.paper.recipe import total_shrink
from monosem_lib.store.cache import run_key

BUILDERS = [ex.lr_sweep, ex.bias_factorial, ex.width_sweep]


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("scale", ["book", "paper"])
def test_batches_are_valid_at_both_scales(build, scale):
    configs = build(scale)
    assert configs and all(c.steps == preset(scale).steps for c in configs)


def test_book_batches_stay_within_a_chapters_budget():
    # Instance counts (book-scale models) behind the one-minute chapters.
    assert sum(c.instances for c in ex.lr_sweep()) == 10
    assert sum(c.instances for c in ex.bias_factorial()) == 4
    assert sum(c.instances for c in ex.recipe_baseline()) == 4, "what chapters 3, 4, 6 read"
    assert len(group_by_structure(ex.lr_sweep())) == 1, "chapter 2's sweep trains in one pass"
    assert len(group_by_structure(ex.bias_factorial())) == 1
    assert len(group_by_structure(ex.live_grid())) == 1
    assert len(group_by_structure(ex.width_sweep())) == len({c.k for c in ex.width_sweep()}) == 4
    assert sum(c.instances for c in ex.width_sweep()) == 8


def test_chapters_share_batches_through_identical_configs():
    assert run_key(ex.lr_sweep()) == run_key(ex.lr_sweep("book"))
    engineered = ex.engineered_model()
    assert total_shrink(engineered) == pytest.approx(12.0)
    assert engineered in [c.replace(instances=1) for c in ex.bias_factorial()]


def test_a_subset_of_a_batch_trains_to_the_same_bits():
    """``recipe_baseline`` trains apart from chapter 2's ``lr_sweep`` and must give chapter 2's
    numbers: each instance has its own seeded data and weights, and on a CPU the batched
    products do not depend on how many instances share them."""
    full = [c.replace(steps=200) for c in ex.lr_sweep()]
    part = [c.replace(steps=200) for c in ex.recipe_baseline()]
    a, b = train(full, progress=False), train(part, progress=False)
    index = {(c.lr, c.feature_dist, c.seed): i for i, c in enumerate(a.configs)}
    for j, c in enumerate(b.configs):
        i = index[(c.lr, c.feature_dist, c.seed)]
        for wa, wb in zip(a.model.split(), b.model.split()):
            assert torch.equal(wa[i], wb[j]), f"{c.lr}, {c.feature_dist}, seed {c.seed}"
        assert torch.equal(a.loss_history[:, i], b.loss_history[:, j])


def test_live_grid_covers_the_sliders_settings():
    configs = as_instances(ex.live_grid())
    live = preset("live")
    assert live in configs, "the slider's starting point (bias 0, no decay) is precomputed"
    biases = {c.init_bias for c in configs if c.eps == live.eps and c.l1 == 0 and c.bias_decay > 0}
    assert set(ex.LIVE_BIASES) <= biases
