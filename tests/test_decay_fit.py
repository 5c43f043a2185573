"""The decay study's analysis on small synthetic studies: per-seed tables of an incomplete
study, the loss reference, the cap on dead neurons, and the bootstrap over seeds."""

import math

import numpy as np
import pytest

from monosem_lib.core.config import preset
from monosem_lib.paper import decay_fit as df
from monosem_lib.paper import decay_study as ds
from monosem_lib.paper.recipe import DecayRule, decay_for_shrink
from monosem_lib.store.results import Results

GRID = ds.root2_grid(1.0, 50.0)


def _metrics(mono, loss, dead=0, covered=0.5):
    return {
        "mono_per_feature": mono,
        "final_loss": loss,
        "dead_neurons": dead,
        "features_covered": covered,
    }


def _results(steps, rows):
    """Results of one grid point from rows (shrink or None, seed, metrics)."""
    base = preset("tiny", steps=steps, lr=0.01)
    configs, metrics = [], []
    for shrink, seed, m in rows:
        c = base.replace(seed=seed)
        if shrink is not None:
            c = c.replace(init_bias=-1.0, bias_decay=decay_for_shrink(shrink, 0.01, steps))
        configs.append(c)
        metrics.append(m)
    return Results(tuple(configs), tuple(metrics))


def _bump(shrink, best, seed_shift=0.0):
    """A mono/N curve peaked at ``best`` (log-Gaussian, width one factor of 2)."""
    return 2.0 * math.exp(-((math.log2(shrink) - math.log2(best) - seed_shift) ** 2))


def _table(steps, schedule, best, seeds=(0, 1, 2), jitter=0.0, base_loss=1.0):
    """A grid point whose optimum is at ``best`` (seed s shifted by jitter * (s - 1) in log2),
    every shrink within the loss tolerance, dead neurons falling with the shrink."""
    rows = [(None, s, _metrics(0.2, base_loss)) for s in seeds]
    for s in seeds:
        for shrink in GRID:
            m = _bump(shrink, best, jitter * (s - 1))
            rows.append((shrink, s, _metrics(m, 0.9 * base_loss, dead=100 / shrink)))
    key = (steps, schedule, 0.01, "flat")
    return key, ds.table_of(key, _results(steps, rows), GRID)


def test_a_table_of_an_incomplete_grid_point_has_nan_where_nothing_is_stored():
    rows = [(None, 0, _metrics(0.2, 1.0)), (None, 1, _metrics(0.4, 1.2))]
    rows += [(3.0, 0, _metrics(1.0, 0.9, dead=5)), (6.0, 1, _metrics(0.8, 0.95))]
    rows += [(4.5, 0, _metrics(9.0, 0.5)), (0.0, 0, _metrics(0.0, 9.0, dead=250))]  # off grid
    key = (1000, "cosine", 0.01, "flat")
    t = ds.table_of(key, _results(1000, rows), GRID)
    assert t.shrinks == (3.0, 6.0) and t.seeds == (0, 1)
    assert np.isnan(t.values["mono"][1, 1]) and np.isnan(t.values["mono"][2, 0])
    base, points = t.points()
    assert base.loss == pytest.approx(1.1) and base.seeds == 2
    assert [(p.shrink, p.seeds, p.mono, p.dead) for p in points] == [
        (3.0, 1, 1.0, 5),
        (6.0, 1, 0.8, 0),
    ]
    assert t.points([0, 0])[1][0].mono == 1.0 and len(t.points([0, 0])[1]) == 1, "seed 0 only"
    assert ds.table_of(key, _results(1000, rows)).shrinks == (3.0, 4.5, 6.0), "no grid: all"


def test_the_reference_is_the_best_baseline_at_that_run_length_and_rate():
    tables = dict(
        [
            _table(1000, "cosine", 3.0, base_loss=1.0),
            _table(1000, "paper", 3.0, base_loss=1.2),
            _table(2000, "paper", 6.0, base_loss=1.1),
        ]
    )
    refs = ds.reference_losses(tables)
    assert refs[(1000, "paper", 0.01, "flat")] == pytest.approx(1.0)
    assert refs[(2000, "paper", 0.01, "flat")] == pytest.approx(1.1), "alone at its T"
    own = ds.reference_losses(tables, own=True)
    assert own[(1000, "paper", 0.01, "flat")] == pytest.approx(1.2)
    found = {o.schedule + str(o.steps): o for o in ds.optima_of(tables, reference="best")}
    # the paper schedule's recipe (loss 0.9 * 1.2 = 1.08) costs more than 2% over cosine's
    assert found["cosine1000"].shrink == pytest.approx(3.0) and found["paper1000"].shrink is None
    assert ds.optima_of(tables)[1].shrink == pytest.approx(3.0), "own baseline by default"
    with pytest.raises(ValueError, match="reference"):
        ds.optima_of(tables, reference="median")


def test_a_cap_on_dead_neurons_moves_the_optimum_to_stronger_decay():
    key, t = _table(4000, "cosine", 3.0)  # dead = 100 / S; k = 32 for tiny: cap 3.2
    free = ds.optimum_of(t)
    capped = ds.optimum_of(t, dead_cap=0.1)
    assert free.shrink == pytest.approx(3.0) and capped.dead_cap == pytest.approx(0.1 * t.k)
    assert capped.shrink > 100 / capped.dead_cap - 1e-9 and capped.best.dead <= capped.dead_cap
    assert all(p.dead <= capped.dead_cap for p in capped.points if capped.admissible(p))


def test_the_bootstrap_recovers_an_exponent_and_its_interval_covers_it():
    """S* = 3 (T / 1000)^1 under one schedule, S* = 3 fixed under another; seeds jitter the
    optimum by half a grid step either way."""
    tables = {}
    for steps in (1000, 2000, 4000, 8000):
        tables.update([_table(steps, "cosine", 3.0 * steps / 1000, jitter=0.5)])
        tables.update([_table(steps, "paper", 3.0, jitter=0.5)])
    found = ds.optima_of(tables)
    reps = df.bootstrap_optima(tables, replicates=200, seed=1)
    assert len(reps) == 200 and all(len(r) == len(tables) for r in reps)
    ex = df.exponent_intervals(found, reps, [("cosine", "flat"), ("paper", "flat")])
    assert ex["cosine"].value == pytest.approx(1.0, abs=0.1) and not ex["cosine"].excludes(1.0)
    assert ex["paper"].value == pytest.approx(0.0, abs=0.1) and ex["paper"].excludes(1.0)
    assert ex["cosine-paper"].lo > 0.5, "the two schedules' exponents differ"
    assert ex["cosine"].hi > ex["cosine"].lo, "the seeds' jitter shows"
    again = df.bootstrap_optima(tables, replicates=200, seed=1)
    assert [o.shrink for o in again[7]] == [o.shrink for o in reps[7]], "seeded"


def test_knife_edges_are_the_points_where_seeds_disagree():
    steady = _table(1000, "cosine", 3.0)
    torn = _table(2000, "cosine", 6.0, jitter=2.0)  # seeds' optima two factors of 2 apart
    tables = dict([steady, torn])
    found = ds.optima_of(tables)
    agree = df.decision_agreement(found, df.bootstrap_optima(tables, replicates=200))
    assert agree[steady[0]]["shrink"] == 1.0 and agree[steady[0]]["engineers"] == 1.0
    assert agree[torn[0]]["shrink"] < 0.8
    assert agree[torn[0]]["center_hi"] / agree[torn[0]]["center_lo"] >= 2
    assert df.knife_edges(agree) == [torn[0]]


def test_the_rates_exponent():
    """S* proportional to lr^2 at one run length (so d* proportional to lr)."""
    tables = {}
    for lr in (0.005, 0.01, 0.02):
        key, t = _table(8000, "cosine", 6.0 * (lr / 0.01) ** 2)
        key = (8000, "cosine", lr, "flat")
        tables[key] = ds.Table(key, t.shrinks, t.seeds, t.values, t.k)
    found = ds.optima_of(tables, reference="own")
    s0, a = df.fit_rate(found, 8000)
    assert a == pytest.approx(2.0, abs=0.2) and s0 == pytest.approx(6.0, rel=0.25)
    ci = df.rate_interval(found, df.bootstrap_optima(tables, 50, reference="own"), 8000)
    assert ci.lo <= ci.value <= ci.hi and ci.n == 50
    assert math.isnan(df.fit_rate(found[:1], 8000)[1]), "one rate fits nothing"
    assert str(ci).startswith(f"{ci.value:.2f} [")


def test_the_rules_range_is_the_run_of_rates_where_its_decay_is_on_the_plateau():
    """A fixed d = 0.15 at T = 8000 gives S = 600 lr: on the optimum at every rate up to 0.02;
    at 0.03 the optimum needs S = 40, more than twice the rule's 18."""
    tables = {}
    for lr, best in ((0.003, 1.8), (0.006, 3.6), (0.01, 6.0), (0.02, 12.0), (0.03, 40.0)):
        key, t = _table(8000, "cosine", best)
        key = (8000, "cosine", lr, "flat")
        tables[key] = ds.Table(key, t.shrinks, t.seeds, t.values, t.k)
    found = ds.optima_of(tables, reference="own")
    assert df.on_plateau(found[2], 6.0) and not df.on_plateau(found[2], 12.0)
    fixed = DecayRule(d0=0.15, b=1.0)
    assert df.rule_range(found, fixed) == (0.003, 0.02)
    assert df.rule_range(found, DecayRule(d0=0.6, b=1.0)) is None, "off the plateau at 0.01"
    assert df.rule_range(found, fixed, steps=4000) is None, "no such run length"
    # a rate term d ~ lr^0.5 (a = 1.5) where the optimum keeps d fixed: off at both ends
    grows = DecayRule(d0=0.15, b=1.0, a=1.5)
    assert grows.decay(8000, 0.04) == pytest.approx(0.3) and grows.decay(8000) == 0.15
    assert df.rule_range(found, grows) == (0.006, 0.01)


def test_the_studys_figures_show_the_intervals():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.container import ErrorbarContainer

    from monosem_lib.book.study_plots import optimum_figure, rate_figure

    tables = {}
    for steps in (1000, 2000, 4000, 8000):
        tables.update([_table(steps, "cosine", 3.0 * steps / 1000, jitter=0.5)])
    for lr in (0.005, 0.02):
        key, t = _table(8000, "cosine", 24.0 * lr / 0.01)
        tables[(8000, "cosine", lr, "flat")] = ds.Table(key, t.shrinks, t.seeds, t.values, t.k)
    found = ds.optima_of(tables)
    reps = df.bootstrap_optima(tables, replicates=50)
    agree = df.decision_agreement(found, reps)
    ex = df.exponent_intervals(found, reps, [("cosine", "flat")])
    fig = optimum_figure(found, intervals=agree, exponents=ex)
    ax = fig.axes[0]
    assert any(isinstance(c, ErrorbarContainer) for c in ax.containers)
    assert f"b = {ex['cosine']}" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
    fig = rate_figure(found, intervals=agree, rate=df.rate_interval(found, reps, 8000))
    bars = [c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 1 and len(bars[0].lines[2][0].get_segments()) == 3, "three rates"
    assert optimum_figure(found).axes[0].containers == [], "no intervals unless given"


def test_the_report_reads_a_stored_study(tmp_path, monkeypatch, capsys):
    from monosem_lib.apps.cli import main

    tiny = ds.DecayStudy(
        "tiny2", "tiny", (1.5, 3.0), (ds.Part(((100, "cosine", 0.01),), (1.5, 3.0), (0, 1)),)
    )
    monkeypatch.setitem(ds.STUDIES, "tiny2", tiny)
    monkeypatch.setitem(ds.STUDY_FOLDERS, "tiny2", "decay-study/tiny2")
    args = ["decay-study", "tiny2", "--data", str(tmp_path)]
    assert main([*args, "--report", "--replicates", "5"]) == 0, "nothing stored: still reports"
    assert "Rule: d* = d0 (T/4000)^(b-1)" in capsys.readouterr().out
    assert main(args) == 0 and main([*args, "--report", "--replicates", "5"]) == 0
    out = capsys.readouterr().out
    assert "T 100 cosine lr 0.01:" in out and "knife edges:" in out
    assert not list((tmp_path / "decay-study" / "tiny2").glob("*.tmp")), "nothing left aside"
