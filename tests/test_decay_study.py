"""The decay study: its grid, its resumable files, and how it reads an optimum."""

import math

import pytest

from monosem_lib.apps.cli import main
from monosem_lib.paper import decay_study as ds
from monosem_lib.paper.recipe import candidates, decay_for_shrink, mean_multiplier, total_shrink


def test_the_book_study_spans_sixteen_fold_run_lengths_and_three_schedules():
    study = ds.STUDIES["book"]
    steps = sorted({t for t, _, _ in study.grid})
    assert steps[-1] / steps[0] >= 16
    assert {s for _, s, _ in study.grid} == {"cosine", "paper", "constant"}
    for cell, configs in ds.study_cells("book"):
        base = [c for c in configs if c.init_bias == 0]
        assert all(c.bias_decay == 0 for c in base) and len(base) == len(cell.seeds)
        shrinks = sorted({round(total_shrink(c), 6) for c in configs if c.init_bias == -1})
        assert shrinks == sorted(cell.shrinks) and max(cell.shrinks) >= 24


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
    tiny = ds.DecayStudy(
        "tiny", "tiny", (0.0, 3.0), 1, ((120, "cosine", 0.01), (120, "paper", 0.01))
    )
    monkeypatch.setitem(ds.STUDIES, "tiny", tiny)
    monkeypatch.setitem(ds.STUDY_FOLDERS, "tiny", "decay-study/tiny")
    assert main(["decay-study", "tiny", "--data", str(tmp_path)]) == 0
    folder = tmp_path / "decay-study" / "tiny"
    assert sorted(p.name for p in folder.glob("*.json")) == [
        "T120-cosine-lr0.01.json",
        "T120-paper-lr0.01.json",
    ]
    stamp = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")}
    assert main(["decay-study", "tiny", "--data", str(tmp_path)]) == 0
    assert stamp == {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")}, "resumed"
    assert ds.stale_cells("tiny", tmp_path) == []
    found = ds.optima("tiny", folder)
    assert [(o.steps, o.schedule) for o in found] == [(120, "cosine"), (120, "paper")]
    for o in found:
        assert o.baseline.shrink is None and [p.shrink for p in o.points] == [0.0, 3.0]
        assert o.shrink in (None, 0.0, 3.0)


def test_the_rule_is_the_stored_studys_fit():
    """recipe.RULES restates the book-scale study's fit for each schedule: d0 within 25% and
    the exponent within 0.25 of what the stored cells give (refit after regenerating them)."""
    from pathlib import Path

    from monosem_lib.paper.recipe import RULES

    folder = Path(__file__).resolve().parents[1] / "data" / ds.STUDY_FOLDERS["book"]
    found = ds.optima("book", folder)
    for schedule, rule in RULES.items():
        d0, b = ds.fit_decay(found, schedule, 0.01, rule.t0)
        assert abs(rule.d0 - d0) <= 0.25 * d0, (schedule, rule.d0, d0)
        assert abs(rule.b - b) <= 0.25, (schedule, rule.b, b)


def test_decay_for_follows_the_rule_and_names_bad_input():
    from monosem_lib.core.config import ConfigError
    from monosem_lib.paper.recipe import RULES, decay_for

    assert decay_for(4000, 0.01, "cosine") == pytest.approx(RULES["cosine"].d0)
    assert decay_for(16000, 0.03, "paper") < decay_for(4000, 0.03, "paper"), "weaker if longer"
    for bad in ({"schedule": "linear"}, {"steps": 0}, {"lr": -1.0}):
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
