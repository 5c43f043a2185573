"""The paper's claims, reproduced at book scale with three seeds and asserted with margins.

These train real models (about two minutes on two cores) and fail if the recipe breaks: a
sampler, optimizer, schedule or bias-decay bug moves these numbers out of their margins.
Skip them while iterating with ``pytest -m "not science"``.
"""

import pytest
import torch

from monosem_lib.config import preset
from monosem_lib.metrics import summarize
from monosem_lib.reproduction import MARGINS
from monosem_lib.sweeps import ENGINEERED, sweep_configs
from monosem_lib.training import train

pytestmark = pytest.mark.science

SEEDS = 3
# lr 0.001 is the paper's slowest rate; at book scale (8000 steps) it has not converged yet
# (loss about 0.12 against 0.09-0.10), so "same loss" is asserted over the others.
CONVERGED_LRS = (0.003, 0.005, 0.007, 0.01, 0.03)


def _mean(rows, key):
    return sum(r[key] for r in rows) / len(rows)


@pytest.fixture(scope="module")
def lr_sweep_and_engineered():
    """LR1 (6 lrs x 3 seeds) and the engineered recipe (3 seeds) in one batched pass."""
    configs = sweep_configs("LR1", "book", seeds=SEEDS) + [
        preset("book", instances=SEEDS, **ENGINEERED)
    ]
    run = train(configs, progress=False)
    rows = summarize(run)
    by_lr = {
        lr: [rows[i] for i in run.where(lr=lr, init_bias=0.0)] for lr in CONVERGED_LRS + (0.001,)
    }
    engineered = [rows[i] for i in run.where(init_bias=ENGINEERED["init_bias"])]
    assert all(len(v) == SEEDS for v in by_lr.values()) and len(engineered) == SEEDS
    return by_lr, engineered


def test_claim1_same_loss_different_monosemanticity(lr_sweep_and_engineered):
    by_lr, _ = lr_sweep_and_engineered
    losses = {lr: _mean(by_lr[lr], "final_loss") for lr in CONVERGED_LRS}
    mono = {lr: _mean(by_lr[lr], "mono_per_feature") for lr in CONVERGED_LRS}
    spread = max(losses.values()) / min(losses.values()) - 1
    limit, floor = MARGINS["claim1_loss_spread"], MARGINS["claim1_mono_span"]
    assert spread < limit, (
        f"losses should agree within {limit:.0%} across learning rates, spread {spread:.1%}: {losses}"
    )
    span = max(mono.values()) - min(mono.values())
    assert span > floor, (
        f"mono neurons per feature should differ by more than {floor} across lrs, span {span:.2f}: {mono}"
    )


def test_claim2_monosemantic_neurons_have_moderate_negative_biases(lr_sweep_and_engineered):
    by_lr, _ = lr_sweep_and_engineered
    for lr in CONVERGED_LRS:
        rows = [r for r in by_lr[lr] if r["mean_bias_mono"] is not None]
        assert rows, f"lr={lr}: no monosemantic neurons at all"
        mono_bias = _mean(rows, "mean_bias_mono")
        poly_bias = _mean(rows, "mean_bias_poly")
        assert -1.0 < mono_bias < -0.1, (
            f"lr={lr}: mean bias of mono neurons {mono_bias:.3f} is not moderately negative"
        )
        assert mono_bias < poly_bias - 0.05, (
            f"lr={lr}: mono bias {mono_bias:.3f} should sit below poly bias {poly_bias:.3f}"
        )


def test_claim3_negative_bias_and_decay_engineer_monosemanticity(lr_sweep_and_engineered):
    by_lr, engineered = lr_sweep_and_engineered
    baseline = by_lr[preset("book").lr]
    base_mono, eng_mono = _mean(baseline, "mono_per_feature"), _mean(engineered, "mono_per_feature")
    base_loss, eng_loss = _mean(baseline, "final_loss"), _mean(engineered, "final_loss")
    assert eng_mono >= 2 * base_mono, (
        f"engineered mono/N {eng_mono:.2f} should be at least twice the baseline {base_mono:.2f}"
    )
    assert eng_mono >= base_mono + 0.5, (
        f"engineered mono/N {eng_mono:.2f} should exceed the baseline {base_mono:.2f} by 0.5"
    )
    assert eng_loss <= 1.05 * base_loss, (
        f"engineered loss {eng_loss:.4f} should not exceed the baseline {base_loss:.4f} by 5%"
    )
    assert max(r["dead_neurons"] for r in engineered) <= 5, (
        "bias decay should rescue the neurons a -1 bias kills"
    )


def test_claim3_needs_the_decay():
    """Initial bias -1 without decay kills nearly every neuron: the decay does the work."""
    rows = summarize(train(preset("book", instances=1, init_bias=-1.0, steps=2000), progress=False))
    assert rows[0]["dead_neurons"] > 0.8 * preset("book").k, (
        f"only {rows[0]['dead_neurons']} dead neurons"
    )


def test_claim4_more_neurons_cover_more_features(lr_sweep_and_engineered):
    _, engineered = lr_sweep_and_engineered
    N = preset("book").N
    covered = {}
    for k in (N, 2 * N):
        rows = summarize(train(preset("book", k=k, instances=SEEDS, **ENGINEERED), progress=False))
        covered[k] = _mean(rows, "features_covered")
    covered[4 * N] = _mean(engineered, "features_covered")  # the book preset's k = 4N
    values = [covered[k] for k in sorted(covered)]
    assert all(b > a + 0.1 for a, b in zip(values, values[1:])), (
        f"features covered should rise with k: {covered}"
    )
    assert torch.tensor(values).max() > 0.5
