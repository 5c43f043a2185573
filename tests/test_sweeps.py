import math

import pytest

from monosem_lib.core.config import ConfigError, preset
from monosem_lib.paper.recipe import decay_for, decay_for_shrink, total_shrink
from monosem_lib.paper.table1 import (
    ENGINEERED,
    TABLE1,
    sweep_configs,
    sweep_values,
)

ALL = [
    "LR1",
    "LR2",
    "LR3",
    "B1",
    "B2",
    "B3",
    "B4",
    "B5",
    "LR4",
    "G1",
    "E1",
    "E2",
    "E3",
    "E4",
    "K0",
    "K1",
    "K2",
    "RG1",
    "RP1",
    "LR5",
    "D1",
]


def test_every_table1_batch_is_defined_at_both_scales():
    assert list(TABLE1) == ALL
    for name in ALL:
        for scale in ("book", "paper"):
            configs = sweep_configs(name, scale)
            assert len(configs) >= len(sweep_values(name, scale)) >= 6, name
            base = preset(scale)
            assert all(c.N == base.N and c.steps == base.steps for c in configs)


def test_paper_scale_uses_the_papers_values():
    lr3 = sweep_configs("LR3", "paper")
    assert [c.lr for c in lr3] == [0.001, 0.003, 0.005, 0.007, 0.01, 0.03]
    assert all(c.init_bias == -1 and c.bias_decay == 0.03 and c.instances == 1 for c in lr3)
    b2 = sweep_configs("B2", "paper")
    assert b2[0].init_bias == -2 and b2[-1].init_bias == 1 and all(c.eps == 2**-5 for c in b2)
    assert [c.k for c in sweep_configs("K1", "paper")] == [16, 32, 64, 128, 256, 512, 1024]
    assert all(c.task == "abs" and c.k == 2048 for c in sweep_configs("LR5", "paper"))


def test_book_scale_sets_the_decay_by_the_rule():
    """Book scale: every row's decay is the rule's for the book's run length, rate and
    half-cosine (``decay_for``), times the row's decay over the paper's 0.03; zero stays zero."""
    book = preset("book")
    for name in ("B1", "B3", "E1", "E4", "LR3", "G1", "RG1", "RP1", "LR5", "D1", "K1"):
        for b, p in zip(sweep_configs(name, "book"), sweep_configs(name, "paper")):
            rule = decay_for(book.steps, b.lr, book.schedule, outside="allow") * p.bias_decay / 0.03
            assert math.isclose(b.bias_decay, rule, rel_tol=1e-12), name
    # LR3: about 0.23 at every rate, so the total shrink grows with the rate.
    lr3 = sweep_configs("LR3")
    assert all(0.2 < c.bias_decay < 0.26 for c in lr3)
    assert total_shrink(lr3[0]) < 1 < 20 < total_shrink(lr3[-1])
    assert {c.bias_decay for c in sweep_configs("LR1")} == {0.0}
    # B2's weaker paper decay (0.003) stays ten times weaker than B1's.
    assert math.isclose(sweep_configs("B2")[0].bias_decay * 10, sweep_configs("B1")[0].bias_decay)
    # The book's own recipe (shrink 12 at lr 0.01 over 8000 steps) is a fixed point, not a row.
    assert math.isclose(decay_for_shrink(12.0, 0.01, 8000), ENGINEERED["bias_decay"])


def test_book_scale_widths_and_seeds():
    assert [c.k for c in sweep_configs("K0")] == [16, 32, 64, 128, 256, 512]
    assert all(c.instances == 3 for c in sweep_configs("K0"))
    assert all(c.instances == 2 for c in sweep_configs("K0", seeds=2))
    assert all(c.k == 512 for c in sweep_configs("LR5"))


def test_overrides_and_bad_names():
    assert all(c.steps == 2000 for c in sweep_configs("LR1", steps=2000))
    short = sweep_configs("LR3", steps=2000)[0]
    assert math.isclose(short.bias_decay, decay_for(2000, short.lr, "cosine"))
    with pytest.raises(ConfigError, match="LR1"):
        sweep_configs("LR9")
    with pytest.raises(ConfigError, match="book, paper-cpu, paper"):
        sweep_configs("LR1", "huge")


def test_paper_cpu_scale_keeps_the_paper_row_and_sets_the_decay_by_the_rule():
    """paper-cpu: the paper's N, m, k, eps, lr and schedule, the preset's batch and steps, and
    the decay of ``decay_for`` for the shorter run (times the row's decay over the paper's 0.03;
    zero stays zero)."""
    cpu = preset("paper-cpu")
    for name in ("LR1", "LR3", "K1", "LR5", "B2", "D1"):
        paper, reduced = sweep_configs(name, "paper"), sweep_configs(name, "paper-cpu")
        assert len(paper) == len(reduced), name
        for p, r in zip(paper, reduced):
            assert (r.batch, r.steps) == (cpu.batch, cpu.steps)
            assert r.replace(batch=p.batch, steps=p.steps, bias_decay=p.bias_decay) == p, name
            rule = decay_for(cpu.steps, p.lr, "paper", outside="allow") * p.bias_decay / 0.03
            assert math.isclose(r.bias_decay, rule), name
    assert {c.bias_decay for c in sweep_configs("LR1", "paper-cpu")} == {0.0}
    # LR3 at 2^12 steps: about 0.13 under the periodic cosine, whatever the rate.
    lr3 = sweep_configs("LR3", "paper-cpu")
    assert all(0.12 < c.bias_decay < 0.14 for c in lr3)
    study = sweep_configs("LR3", "paper-cpu", steps=1024, values=(0.003, 0.01))
    assert [c.lr for c in study] == [0.003, 0.01] and all(c.steps == 1024 for c in study)
    assert study[0].bias_decay == study[1].bias_decay > lr3[0].bias_decay, "shorter: stronger"


def test_values_pick_points_of_the_swept_knob():
    assert [c.k for c in sweep_configs("K1", "paper-cpu", values=(256, 2048))] == [256, 2048]
    g1 = sweep_configs("G1", "book", values=(-1.0,))  # G1 sweeps lr and bias: one per rate
    assert [(c.lr, c.init_bias) for c in g1] == [(0.001, -1.0), (0.005, -1.0), (0.01, -1.0)]
    with pytest.raises(ConfigError, match="distinct values of lr"):
        sweep_configs("LR1", values=(0.01, 0.01))
    with pytest.raises(ConfigError, match="k"):
        sweep_configs("K1", values=(0,))


def test_an_explicit_decay_is_kept_at_every_scale_with_a_budget():
    """--bias-decay: the paper's own coefficient at the CPU budget, not rescaled."""
    configs = sweep_configs("LR3", "paper-cpu", values=(0.01,), bias_decay=0.03)
    assert [c.bias_decay for c in configs] == [0.03]
    by_rule = sweep_configs("LR3", "paper-cpu", values=(0.01,))[0]
    assert math.isclose(by_rule.bias_decay, decay_for(2**12, 0.01, "paper"))
