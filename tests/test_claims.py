"""The results layer and the claims over it, on synthetic numbers with known answers: each
claim holds where it should, fails where it should, and says why."""

import pytest

from monosem_lib import claims
from monosem_lib.core.config import preset
from monosem_lib.store.results import FLOAT_TOL, Results, matches

BASE = preset("tiny")


def _results(rows: list[tuple[dict, dict]], scale: str = "book") -> Results:
    """Results from (config overrides, metrics) pairs; metrics default to harmless values."""
    default = {
        "final_loss": 0.1,
        "mono_per_feature": 0.5,
        "features_covered": 0.5,
        "dead_neurons": 0,
        "mean_bias_mono": -0.3,
        "mean_bias_poly": 0.05,
    }
    configs = tuple(BASE.replace(**c) for c, _ in rows)
    metrics = tuple({**default, **m} for _, m in rows)
    return Results(configs, metrics, scale=scale)


def _lr_sweep(mono: dict, loss: dict, seeds: int = 2, **fixed) -> Results:
    return _results(
        [
            ({"lr": lr, "seed": s, **fixed}, {"mono_per_feature": mono[lr], "final_loss": loss[lr]})
            for lr in mono
            for s in range(seeds)
        ]
    )


def test_selection_uses_one_float_tolerance():
    r = _lr_sweep({0.003: 0.1, 0.01: 0.4}, {0.003: 0.1, 0.01: 0.1})
    assert r.where(lr=0.003) == [0, 1] and r.where(lr=0.003 * (1 + FLOAT_TOL / 2)) == [0, 1]
    assert r.where(lr=0.003 * (1 + 10 * FLOAT_TOL)) == []
    assert r.by_value("lr", "mono_per_feature") == {0.003: [0.1, 0.1], 0.01: [0.4, 0.4]}
    assert r.seeds == [0, 1] and len(r.filter(seed=1)) == 2
    assert matches(BASE, lr=BASE.lr, k=BASE.k) and not matches(BASE, k=BASE.k + 1)
    with pytest.raises(ValueError, match="no instance has"):
        r.mean("final_loss", lr=0.5)
    with pytest.raises(ValueError, match="no single-feature activations"):
        r.stats(0)


def test_claim1_holds_and_fails_with_its_numbers():
    same = {0.003: 0.100, 0.01: 0.104}
    good = claims.claim1(_lr_sweep({0.003: 0.1, 0.01: 0.6}, same)).check()
    assert good.holds and good.numbers["mono_span"] == pytest.approx(0.5)
    bad = claims.claim1(_lr_sweep({0.003: 0.1, 0.01: 0.2}, {0.003: 0.1, 0.01: 0.2}))
    assert [c.what for c in bad.failed] == ["losses agree within 10%", "mono/N spans more than 0.3"]
    with pytest.raises(AssertionError, match="spread 100.0%"):
        bad.check()
    excluded = claims.claim1(_lr_sweep({0.003: 0.1, 0.01: 0.6}, same), exclude_lrs=(0.003,))
    assert list(excluded.numbers["loss"]) == [0.01]


def test_claim2_needs_moderately_negative_mono_biases_below_poly():
    ok = _results([({"lr": 0.01}, {"mean_bias_mono": -0.3, "mean_bias_poly": 0.05})])
    assert claims.claim2(ok).holds
    too_deep = _results([({"lr": 0.01}, {"mean_bias_mono": -1.5, "mean_bias_poly": 0.0})])
    assert not claims.claim2(too_deep).holds
    no_mono = _results([({"lr": 0.01}, {"mean_bias_mono": None})])
    assert claims.claim2(no_mono).failed[0].what == "some rate has monosemantic neurons"


def test_claim3_compares_seeds_means_and_loss_at_the_asked_rates():
    base = _lr_sweep({0.01: 0.3}, {0.01: 0.100})
    eng = _lr_sweep({0.01: 0.7}, {0.01: 0.102}, init_bias=-1.0)
    assert claims.claim3(base, eng).check().numbers["mono_per_feature"] == {0.01: (0.3, 0.7)}
    costly = _lr_sweep({0.01: 0.7}, {0.01: 0.2}, init_bias=-1.0)
    assert [c.what for c in claims.claim3(base, costly).failed] == ["lr 0.01: loss within x1.05"]
    weak = _lr_sweep({0.01: 0.4}, {0.01: 0.1}, init_bias=-1.0)
    assert not claims.claim3(base, weak).holds
    with pytest.raises(KeyError, match="lr 0.03"):
        claims.claim3(base, eng, rates=(0.03,))


def test_claim4_wants_coverage_rising_from_N_to_4N():
    N = BASE.N

    def widths(cov):
        return _results([({"k": k}, {"features_covered": c}) for k, c in cov.items()])

    assert claims.claim4(widths({N: 0.0, 2 * N: 0.1, 4 * N: 0.3, 8 * N: 0.2})).check()
    flat = claims.claim4(widths({N: 0.2, 2 * N: 0.25, 4 * N: 0.3}))
    assert [c.what for c in flat.failed] == ["coverage rises by more than 0.15"]
    assert not claims.claim4(widths({N: 0.0, 2 * N: 0.4})).holds, "4N is missing"


def test_claims_read_their_margins_from_the_one_table(monkeypatch):
    r = _lr_sweep({0.003: 0.1, 0.01: 0.45}, {0.003: 0.1, 0.01: 0.1})
    assert claims.claim1(r).holds
    monkeypatch.setitem(claims.MARGINS, "claim1_mono_span", 0.3)
    assert claims.claim1(r).holds
    monkeypatch.setitem(claims.MARGINS, "claim1_mono_span", 0.4)
    assert [c.what for c in claims.claim1(r).failed] == ["mono/N spans more than 0.4"]
