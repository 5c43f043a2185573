"""The paper's claims, reproduced at book scale with three seeds and asserted with margins.

These train real models (about two minutes on two cores) and fail if the recipe breaks: a
sampler, optimizer, schedule or bias-decay bug moves these numbers out of their margins.
Skip them while iterating with ``pytest -m "not science"``.
"""

import pytest

from monosem_lib import claims
from monosem_lib.analysis.metrics import summarize
from monosem_lib.core.config import preset
from monosem_lib.core.training import train
from monosem_lib.paper.table1 import ENGINEERED, sweep_configs
from monosem_lib.store.results import Results

pytestmark = pytest.mark.science

SEEDS = 3
# lr 0.001 is the paper's slowest rate; at book scale (8000 steps) it has not converged yet
# (loss about 0.12 against 0.09-0.10), so "same loss" is asserted over the others.
UNCONVERGED_LRS = (0.001,)


@pytest.fixture(scope="module")
def lr_sweep_and_engineered() -> tuple[Results, Results]:
    """LR1 (6 lrs x 3 seeds) and the engineered recipe (3 seeds) in one batched pass."""
    configs = sweep_configs("LR1", "book", seeds=SEEDS) + [
        preset("book", instances=SEEDS, **ENGINEERED)
    ]
    results = Results.from_run(train(configs, progress=False), scale="book")
    lr1, engineered = results.filter(init_bias=0.0), results.filter(**ENGINEERED)
    assert len(lr1) == 6 * SEEDS and len(engineered) == SEEDS
    return lr1, engineered


def test_claim1_same_loss_different_monosemanticity(lr_sweep_and_engineered):
    lr1, _ = lr_sweep_and_engineered
    claims.claim1(lr1, exclude_lrs=UNCONVERGED_LRS).check()


def test_claim2_monosemantic_neurons_have_moderate_negative_biases(lr_sweep_and_engineered):
    lr1, _ = lr_sweep_and_engineered
    claims.claim2(lr1.filter(lr=0.003)).check()  # not 0.001: too few monosemantic neurons
    c2 = claims.claim2(lr1).check()
    assert len(c2.numbers["mono"]) == 6


def test_claim3_negative_bias_and_decay_engineer_monosemanticity(lr_sweep_and_engineered):
    lr1, engineered = lr_sweep_and_engineered
    claims.claim3(lr1, engineered, rates=(preset("book").lr,)).check()
    dead = engineered.metric("dead_neurons")
    assert dead.max() <= 5, f"bias decay should rescue the neurons a -1 bias kills: {dead}"


def test_claim3_needs_the_decay():
    """Initial bias -1 without decay kills nearly every neuron: the decay does the work."""
    rows = summarize(train(preset("book", instances=1, init_bias=-1.0, steps=2000), progress=False))
    assert rows[0]["dead_neurons"] > 0.8 * preset("book").k, (
        f"only {rows[0]['dead_neurons']} dead neurons"
    )


def test_claim4_more_neurons_cover_more_features(lr_sweep_and_engineered):
    """The engineered recipe at k = N, 2N and 4N (the book preset's k)."""
    _, engineered = lr_sweep_and_engineered
    N = preset("book").N
    runs = [
        train(preset("book", k=k, instances=SEEDS, **ENGINEERED), progress=False)
        for k in (N, 2 * N)
    ]
    width = Results.concat([*(Results.from_run(r, scale="book") for r in runs), engineered])
    c4 = claims.claim4(width).check()
    assert max(c4.numbers["features_covered"].values()) > 0.5, c4.numbers
