"""The data: projections, the exact sparse sampler (checked statistically), targets."""

import math

import pytest
import torch

from monosem_lib.core.config import preset
from monosem_lib.core.data import (
    SparseFeatureSampler,
    feature_probabilities,
    make_projection,
    make_world,
    zero_loss,
)


def test_projection_has_unit_columns_and_is_deterministic():
    P = make_projection(64, 32, seed=3)
    assert P.shape == (32, 64)
    torch.testing.assert_close(P.norm(dim=0), torch.ones(64, dtype=torch.float64))
    assert torch.equal(P, make_projection(64, 32, seed=3))
    assert not torch.equal(P, make_projection(64, 32, seed=4))
    # The re-projector's Q comes from an independent stream of the same seed.
    assert not torch.allclose(P, make_projection(64, 32, seed=3, purpose="reprojection"))


def test_projection_is_full_rank_with_random_interference():
    P = make_projection(256, 16, seed=0)
    assert torch.linalg.matrix_rank(P) == 16
    overlaps = (P.T @ P).fill_diagonal_(0).abs()
    # Random unit directions in R^m overlap by about 1/sqrt(m) = 0.25.
    assert 0.15 < overlaps.mean() < 0.3


def test_power_law_probabilities():
    p = feature_probabilities(512, 1 / 64, "power_law")
    assert p.max() <= 1
    assert (p[:-1] >= p[1:]).all(), "probabilities must fall with the feature index"
    # Normalised to mean eps before the cap at 1, so the mean is eps or a little less.
    assert 0.9 / 64 < p.mean() <= 1 / 64 + 1e-12
    assert torch.allclose(
        feature_probabilities(8, 0.25, "uniform"), torch.full((8,), 0.25, dtype=torch.float64)
    )
    with pytest.raises(ValueError, match="power_law"):
        feature_probabilities(8, 0.1, "zipf")


def _draw(probs, batch, n, seed=0):
    s = SparseFeatureSampler(probs, batch, torch.Generator().manual_seed(seed), torch.float64)
    return torch.stack([s.sample() for _ in range(n)])  # [n, B, N]


@pytest.mark.parametrize(
    "dist,N,eps", [("uniform", 64, 1 / 16), ("power_law", 128, 1 / 32), ("uniform", 32, 0.6)]
)
def test_sampler_density_per_feature(dist, N, eps):
    probs = feature_probabilities(N, eps, dist)
    f = _draw(probs, 128, 300)
    trials = f.shape[0] * f.shape[1]
    rate = (f > 0).double().mean((0, 1))
    se = (probs * (1 - probs) / trials).sqrt().clamp(min=1e-12)
    z = (rate - probs) / se
    assert z.abs().max() < 5, f"a feature's density is off by {z.abs().max():.1f} standard errors"
    total_z = (rate.sum() - probs.sum()) / se.pow(2).sum().sqrt()
    assert abs(total_z) < 4, f"overall density off by {total_z:.1f} standard errors"


def test_sampler_values_are_uniform_on_0_1():
    f = _draw(feature_probabilities(64, 1 / 8, "uniform"), 256, 100)
    v = f[f > 0]
    assert v.numel() > 10000
    assert v.max() < 1 and v.min() > 0
    # Kolmogorov-Smirnov distance to U[0, 1]; 1.63/sqrt(n) is the 1% critical value.
    v, _ = v.sort()
    n = v.numel()
    grid = torch.arange(1, n + 1, dtype=torch.float64) / n
    ks = (grid - v).abs().max()
    assert ks < 1.63 / math.sqrt(n), f"values are not uniform (KS distance {ks:.4f})"


def test_sampler_entries_are_independent():
    # For independent trials, P(two given features both on) = p^2.
    p = 0.25
    f = _draw(feature_probabilities(8, p, "uniform"), 512, 200)
    on = (f > 0).double()
    both = (on[..., 0] * on[..., 1]).mean()
    se = math.sqrt(p**2 * (1 - p**2) / (f.shape[0] * f.shape[1]))
    assert abs(both - p**2) < 5 * se


def test_always_on_features():
    probs = torch.tensor([1.0, 0.5, 0.01], dtype=torch.float64)
    f = _draw(probs, 64, 50)
    assert (f[..., 0] > 0).all(), "a feature with probability 1 must always be active"
    assert 0.4 < (f[..., 1] > 0).double().mean() < 0.6


def test_sampler_is_reproducible():
    probs = feature_probabilities(32, 0.1, "power_law")
    assert torch.equal(_draw(probs, 16, 5, seed=7), _draw(probs, 16, 5, seed=7))
    assert not torch.equal(_draw(probs, 16, 5, seed=7), _draw(probs, 16, 5, seed=8))


def test_world_inputs_are_the_projection_of_features():
    c = preset("tiny", dtype="float64")
    w = make_world(c)
    f, x, target = w.sample()
    torch.testing.assert_close(x, f @ w.P.T)
    torch.testing.assert_close(target, f)


def test_abs_task_draws_signed_features_with_the_same_density():
    c = preset("tiny", task="abs", batch=512, dtype="float64", eps=0.2)
    w = make_world(c)
    fs = torch.stack([w.sample()[0] for _ in range(100)])
    pos, neg = (fs > 0).double().mean(), (fs < 0).double().mean()
    assert abs(pos - neg) < 0.01, "positive and negative halves must be equally likely"
    # Each half is drawn at eps/2, so about eps of the entries are non-zero.
    assert abs((pos + neg) - 0.2) < 0.01
    f, _, target = w.sample()
    torch.testing.assert_close(target, f.abs())


def test_reprojector_target_uses_Q():
    c = preset("tiny", task="reprojector", dtype="float64")
    w = make_world(c)
    f, _, target = w.sample()
    assert target.shape == (c.batch, c.m)
    torch.testing.assert_close(target, f @ w.Q.T)


@pytest.mark.parametrize(
    "task,dist",
    [
        ("decoder", "uniform"),
        ("abs", "uniform"),
        ("reprojector", "uniform"),
        ("decoder", "power_law"),
    ],
)
def test_zero_loss_matches_monte_carlo(task, dist):
    c = preset("tiny", task=task, feature_dist=dist, batch=4096, dtype="float64", eps=0.2)
    w = make_world(c)
    est = torch.stack([(w.sample()[2] ** 2).sum(1).mean() for _ in range(40)])
    mean, se = est.mean(), est.std() / math.sqrt(len(est))
    exact = zero_loss(c)
    assert abs(mean - exact) < 5 * se + 1e-9, f"zero loss {exact:.4f} vs Monte Carlo {mean:.4f}"
