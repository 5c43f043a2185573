import dataclasses
import math

import pytest

import monosem_lib as ml
from monosem_lib.core.config import PRESETS, Config, ConfigError, preset


def test_book_preset_matches_the_issue():
    c = preset("book")
    assert (c.N, c.m, c.k, c.eps, c.batch, c.steps, c.optimizer, c.schedule, c.lr) == (
        64,
        32,
        256,
        1 / 16,
        256,
        8000,
        "lamb",
        "cosine",
        0.01,
    )


def test_paper_preset_is_the_papers_scale():
    c = preset("paper")
    assert (c.N, c.m, c.k, c.eps, c.batch, c.steps, c.optimizer, c.schedule) == (
        512,
        64,
        1024,
        1 / 64,
        8192,
        2**17,
        "lamb",
        "paper",
    )


@pytest.mark.parametrize(
    "field,value,fragment",
    [
        ("N", 0, "integer >= 1"),
        ("k", -3, "integer >= 1"),
        ("batch", 2.5, "integer"),
        ("steps", True, "integer"),
        ("eps", 0.0, "(0, 1]"),
        ("eps", 1.5, "(0, 1]"),
        ("eps", math.nan, "(0, 1]"),
        ("lr", math.inf, "finite"),
        ("lr", -0.1, "> 0"),
        ("bias_decay", -1.0, ">= 0"),
        ("l1", math.nan, ">= 0"),
        ("task", "classify", "decoder, reprojector, abs"),
        ("nonlinearity", "tanh", "relu, gelu, solu"),
        ("feature_dist", "zipf", "uniform, power_law"),
        ("optimizer", "sgd", "lamb, adam"),
        ("schedule", "linear", "cosine, paper, constant"),
        ("device", "tpu", "cpu, cuda"),
        ("seed", -1, ">= 0"),
    ],
)
def test_bad_values_name_the_field_and_what_is_allowed(field, value, fragment):
    with pytest.raises(ConfigError) as err:
        Config().replace(**{field: value})
    assert err.value.field == field
    assert fragment in str(err.value), f"message should say what is allowed: {err.value}"
    assert field in str(err.value)


def test_m_larger_than_N_is_refused():
    with pytest.raises(ConfigError, match="at most N"):
        Config(N=8, m=16)


def test_decay_times_lr_must_stay_below_one():
    with pytest.raises(ConfigError, match="bias_decay"):
        Config(lr=0.5, bias_decay=2.0)


def test_unknown_field_and_preset():
    with pytest.raises(ConfigError, match="not a Config field"):
        Config().replace(width=3)
    with pytest.raises(ConfigError, match="book, paper"):
        preset("huge")


def test_config_is_frozen_and_round_trips():
    c = preset("tiny", seed=4, lr=0.02)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.lr = 1.0
    assert Config.from_dict(c.to_dict()) == c


def test_expand_gives_consecutive_seeds():
    seeds = [c.seed for c in preset("tiny", seed=5, instances=3).expand()]
    assert seeds == [5, 6, 7]
    assert all(c.instances == 1 for c in preset("tiny", instances=3).expand())


def test_flops_per_sample_counts_five_matmuls():
    c = Config(N=10, m=4, k=6)
    # forward 2(mk + kN), backward dh and dW2 (2kN each) and dW1 (2mk)
    assert c.flops_per_sample == 2 * (24 + 60) + 4 * 60 + 2 * 24


def test_scale_setting(monkeypatch):
    monkeypatch.delenv("MONOSEM_SCALE", raising=False)
    assert ml.scale() == "book"
    monkeypatch.setenv("MONOSEM_SCALE", "paper")
    assert ml.scale() == "paper"
    monkeypatch.setenv("MONOSEM_SCALE", "giant")
    with pytest.raises(ConfigError, match="book, paper"):
        ml.scale()


def test_presets_are_valid_and_named():
    assert {"book", "paper", "live", "tiny"} <= set(PRESETS)
