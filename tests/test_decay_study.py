"""The decay study: its grid, its resumable files, and how it reads an optimum."""

import math

import pytest

from monosem_lib.apps.cli import main
from monosem_lib.paper import decay_study as ds
from monosem_lib.paper.recipe import candidates, decay_for_shrink, mean_multiplier, total_shrink


def test_the_book_study_spans_sixteen_fold_run_lengths_three_schedules_and_a_root2_grid():
    study = ds.STUDIES["book"]
    steps = sorted({t for t, _, _ in study.grid})
    assert steps[-1] / steps[0] >= 16
    assert {s for _, s, _ in study.grid} == {"cosine", "paper", "constant"}
    ratios = [b / a for a, b in zip(study.shrinks, study.shrinks[1:])]
    assert ratios == pytest.approx([math.sqrt(2)] * len(ratios)) and study.shrinks[-1] >= 24
    assert {3.0, 6.0, 12.0, 24.0} <= {round(s, 9) for s in study.shrinks}, "the old grid's"
    cover: dict[tuple, set] = {}
    for cell, configs in ds.study_cells("book"):
        base = [c for c in configs if c.init_bias == 0]
        assert all(c.bias_decay == 0 for c in base)
        assert len(base) == (len(cell.seeds) if cell.baseline else 0)
        shrinks = sorted({round(total_shrink(c), 6) for c in configs if c.init_bias == -1})
        assert shrinks == sorted(round(s, 6) for s in cell.shrinks)
        assert {c.decay_schedule for c in configs} == {cell.decay_schedule}
        key = (cell.steps, cell.schedule, cell.lr, cell.decay_schedule)
        for c in configs:
            cover.setdefault(key, set()).add((round(total_shrink(c), 6), c.seed, c.init_bias))
    trained = {round(s, 6) for c in study.cells() for s in c.shrinks}
    assert trained - {0.0, 1.0, 2.0, 4.5, 9.0, 18.0, 30.0} == {round(s, 6) for s in study.shrinks}
    grid = {round(s, 6) for s in ds.root2_grid(1.0, 34.0)}
    for t in steps:  # every schedule at lr 0.01: the whole grid and the baseline, 3 seeds
        for schedule in ("cosine", "paper", "constant"):
            have = cover[(t, schedule, 0.01, "flat")]
            for seed in range(3):
                assert {(s, seed, -1.0) for s in grid} | {(0.0, seed, 0.0)} <= have, (t, schedule)
    five = {k[:3] for k, have in cover.items() if {seed for _, seed, _ in have} == set(range(5))}
    assert five == {(8000, "cosine", 0.01), (8000, "paper", 0.01), (4000, "cosine", 0.01),
                    (2000, "paper", 0.01)}, "five seeds at the knife edges"  # fmt: skip
    for key in five:
        assert {(s, 4, -1.0) for s in grid} | {(0.0, 4, 0.0)} <= cover[(*key, "flat")]
    rates = sorted(lr for t, s, lr, d in cover if (t, s, d) == (8000, "cosine", "flat"))
    assert rates == [0.003, 0.006, 0.01, 0.02, 0.03], "the rate's share at T = 8000"
    troughs = sorted(t for t, s, _, d in cover if d == "rate")
    assert troughs == steps and {s for _, s, _, d in cover if d == "rate"} == {"paper"}


def test_the_paper_shape_study_runs_the_periodic_cosine_at_three_run_lengths():
    study = ds.STUDIES["paper-cpu"]
    assert [round(s, 2) for s in study.shrinks] == [1.5, 2.12, 3.0, 4.24, 6.0, 8.49, 12.0]
    cover: dict[tuple, set] = {}
    for cell, configs in ds.study_cells("paper-cpu"):
        assert configs[0].batch == 1024 and len(configs) <= 2 * max(1, len(cell.shrinks))
        for c in configs:
            cover.setdefault((c.steps, c.schedule, c.lr), set()).add((total_shrink(c), c.seed))
    for t in (2048, 4096, 8192):
        have = {(round(s, 6), seed) for s, seed in cover[(t, "paper", 0.01)]}
        want = {(round(s, 6), seed) for s in (0.0, *study.shrinks) for seed in (0, 1)}
        assert want <= have, t


def test_root2_grid_and_bad_bounds():
    assert [round(s, 3) for s in ds.root2_grid(1.5, 6.0)] == [1.5, 2.121, 3.0, 4.243, 6.0]
    assert ds.root2_grid(1.0, 1.1) == pytest.approx((1.5 / math.sqrt(2),))
    with pytest.raises(ValueError, match="grid"):
        ds.root2_grid(0.0, 3.0)


def test_candidates_and_the_scheduled_rate():
    assert mean_multiplier("constant", 1000) == 1.0
    assert mean_multiplier("cosine", 1000) == pytest.approx(0.5 + 1 / math.pi, abs=2e-3)
    assert mean_multiplier("paper", 4096) == pytest.approx(0.5, abs=0.02)
    c = candidates(6.0, 0.01, 4000, "constant")
    assert c["S"] == 6.0 and c["d"] == pytest.approx(0.3) and c["d_lr"] == pytest.approx(0.003)
    assert decay_for_shrink(6.0, 0.01, 4000) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="shrink"):
        decay_for_shrink(-1.0, 0.01, 4000)


def test_the_optimum_is_the_best_shrink_within_the_loss_tolerance():
    base = ds.Point(None, mono=0.2, loss=1.0, dead=0, seeds=3)
    pts = [
        ds.Point(2.0, mono=0.9, loss=1.03, dead=0, seeds=3),  # best mono, but 3% dearer
        ds.Point(4.0, mono=0.7, loss=1.01, dead=0, seeds=3),
        ds.Point(8.0, mono=0.4, loss=0.95, dead=0, seeds=3),
    ]
    assert ds.choose(base, pts, 0.02) == 4.0
    assert ds.choose(base, pts, 0.05) == 2.0
    assert ds.choose(base, pts[:1], 0.02) is None
    assert ds.choose(base, pts, 0.02, reference=0.96) == 8.0, "against a better baseline"
    assert ds.choose(base, pts, 0.05, reference=1.04) == 2.0
    dead = [ds.Point(2.0, mono=0.9, loss=1.0, dead=40, seeds=3), *pts[1:]]
    assert ds.choose(base, dead, 0.02) == 2.0 and ds.choose(base, dead, 0.02, dead_cap=25) == 4.0


def test_plateau_and_admissible_decays_of_one_grid_point():
    base = ds.Point(None, mono=0.2, loss=1.0, dead=0, seeds=3)
    pts = (
        ds.Point(2.0, mono=0.5, loss=1.05, dead=0, seeds=3),  # dearer than 2%
        ds.Point(4.0, mono=0.95, loss=1.01, dead=0, seeds=3),
        ds.Point(8.0, mono=1.0, loss=0.99, dead=0, seeds=3),
        ds.Point(16.0, mono=0.4, loss=0.98, dead=0, seeds=3),  # admissible, off the plateau
    )
    o = ds.Optimum(4000, "cosine", 0.01, base, pts, ds.choose(base, pts, 0.02), 0.02)
    assert o.shrink == 8.0 and ds.plateau_of([o], 4000, "cosine", 0.01) == (4.0, 8.0)
    assert ds.plateau_of([o], 8000, "cosine", 0.01) is None, "no such grid point"
    lo, hi = ds.admissible_decays([o], 4000, "cosine", 0.01)
    assert lo == pytest.approx(decay_for_shrink(4.0, 0.01, 4000)) and lo == pytest.approx(0.2)
    assert hi == pytest.approx(decay_for_shrink(16.0, 0.01, 4000))
    dear = ds.Optimum(4000, "paper", 0.01, base, pts[:1], None, 0.02)
    assert ds.admissible_decays([dear], 4000, "paper", 0.01) is None


def test_a_study_trains_once_resumes_and_reads_its_optima(tmp_path, monkeypatch):
    points = ((120, "cosine", 0.01), (120, "paper", 0.01))
    tiny = ds.DecayStudy(
        "tiny",
        "tiny",
        (1.5, 3.0),
        (
            ds.Part(points, (3.0,), (0,), tag="-a"),
            ds.Part(points[1:], (1.5,), (0,), baseline=False, tag="-b", split=True),
            ds.Part(points[1:], (3.0,), (0,), tag="-r", decay_schedule="rate"),
        ),
    )
    monkeypatch.setitem(ds.STUDIES, "tiny", tiny)
    monkeypatch.setitem(ds.STUDY_FOLDERS, "tiny", "decay-study/tiny")
    assert main(["decay-study", "tiny", "--data", str(tmp_path), "--limit", "1"]) == 0
    folder = tmp_path / "decay-study" / "tiny"
    assert [p.name for p in folder.glob("*.json")] == ["T120-cosine-lr0.01-a-seeds0-0.json"]
    assert main(["decay-study", "tiny", "--data", str(tmp_path)]) == 0
    assert sorted(p.name for p in folder.glob("*.json")) == [
        "T120-cosine-lr0.01-a-seeds0-0.json",
        "T120-paper-lr0.01-a-seeds0-0.json",
        "T120-paper-lr0.01-b-S1.5-seeds0-0.json",
        "T120-paper-lr0.01-r-seeds0-0.json",
    ]
    stamp = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")}
    assert main(["decay-study", "tiny", "--data", str(tmp_path)]) == 0
    assert stamp == {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")}, "resumed"
    assert ds.stale_cells("tiny", tmp_path) == []
    tables = ds.load_tables("tiny", folder)
    assert list(tables) == [(*p, "flat") for p in points] + [(120, "paper", 0.01, "rate")]
    assert tables[(120, "paper", 0.01, "flat")].shrinks == (1.5, 3.0), "two cells joined"
    found = ds.optima("tiny", folder, reference="best")
    assert [o.label for o in found] == ["cosine", "paper", "paper-rate"]
    for o in found:
        assert o.baseline.shrink is None and o.shrink in (None, 1.5, 3.0)
        assert o.ref_loss == min(x.baseline.loss for x in found), "the best baseline at T"


def test_the_rule_restates_the_stored_study():
    """recipe.RULES restates the book-scale study read against the best baseline at each run
    length and rate (``decay_fit``): each schedule's exponent b lies in the study's 95%
    bootstrap interval over seeds widened by 0.25 (one sqrt(2) step of S per two doublings of
    T; the periodic cosine's rule keeps 0.55 where the study now says 0.75, ``recipe.RULES``)
    and d0 within 25% of the fit; the
    half-cosine rule's range of rates is one where, at T = 8000, its decay lies on the study's
    plateau at every swept rate (``rule_range``), the other rules share it (the rate was swept
    under the half-cosine only), and a rule that leaves out a rate term the study's interval
    requires does not claim the whole sweep (refit after regenerating the cells)."""
    from pathlib import Path

    from monosem_lib.paper import decay_fit as df
    from monosem_lib.paper.recipe import RULES

    folder = Path(__file__).resolve().parents[1] / "data" / ds.STUDY_FOLDERS["book"]
    tables = ds.load_tables("book", folder)
    found = ds.optima_of(tables, reference="best")
    reps = df.bootstrap_optima(tables, 300)
    ex = df.exponent_intervals(found, reps, [(s, "flat") for s in RULES])
    for schedule, rule in RULES.items():
        b = ex[schedule]
        assert b.lo - 0.25 <= rule.b <= b.hi + 0.25, (schedule, rule.b, str(b))
        d0, _ = ds.fit_decay(found, schedule, 0.01, rule.t0)
        assert abs(rule.d0 - d0) <= 0.25 * d0, (schedule, rule.d0, d0)
        assert rule.lr_range == RULES["cosine"].lr_range and rule.a == RULES["cosine"].a
    cosine = RULES["cosine"]
    held = df.rule_range(found, cosine)
    assert held is not None and held[0] <= cosine.lr_range[0] <= cosine.lr_range[1] <= held[1]
    swept = sorted(o.lr for o in found if (o.steps, o.schedule) == (8000, "cosine"))
    assert swept == [0.003, 0.006, 0.01, 0.02, 0.03], "the rate's share at T = 8000"
    if df.rate_interval(found, reps, 8000).excludes(cosine.a):
        assert cosine.lr_range != (swept[0], swept[-1]), "a rate term the rule leaves out"


def test_decay_for_follows_the_rule_and_names_bad_input():
    from monosem_lib.core.config import ConfigError
    from monosem_lib.paper.recipe import RULES, DecayRuleWarning, decay_for

    assert decay_for(4000, 0.01, "cosine") == pytest.approx(RULES["cosine"].d0)
    assert decay_for(16000, 0.01, "paper") < decay_for(4000, 0.01, "paper"), "weaker if longer"
    lo, hi = RULES["cosine"].lr_range
    assert (
        lo <= 0.01 <= hi
        and RULES["cosine"].holds_at(lo)
        and not RULES["cosine"].holds_at(hi * 1.01)
    )
    with pytest.warns(DecayRuleWarning, match="outside the range"):
        outside = decay_for(4000, 2 * hi, "cosine")
    assert outside == decay_for(4000, 2 * hi, "cosine", outside="allow") == RULES["cosine"].d0
    with pytest.raises(ConfigError, match="lr=.*the cosine rule holds for base rates"):
        decay_for(4000, lo / 2, "cosine", outside="raise")
    for bad in ({"schedule": "linear"}, {"steps": 0}, {"lr": -1.0}, {"outside": "ignore"}):
        args = {"steps": 4000, "lr": 0.01, "schedule": "cosine", **bad}
        with pytest.raises(ConfigError, match=next(iter(bad))):
            decay_for(**args)


def test_a_lean_summary_keeps_what_the_study_reads(tmp_path):
    from monosem_lib.core.config import preset
    from monosem_lib.core.training import train
    from monosem_lib.store.files import load_summary
    from monosem_lib.store.results import load_results
    from monosem_lib.store.summaries import holds_configs, lean_summary, save_summary

    configs = [preset("tiny", steps=64, seed=s) for s in range(2)]
    path = save_summary(train(configs, progress=False), tmp_path, name="T", scale="tiny")
    full = load_results(path)
    lean_summary(path)
    lean = load_results(path)
    assert lean.metrics == full.metrics and holds_configs(path, configs)
    assert len(load_summary(path).meta["instances"][0]["loss_history"]["loss"]) <= 16
    with pytest.raises(ValueError, match="lean summary"):
        lean.stats(0)
