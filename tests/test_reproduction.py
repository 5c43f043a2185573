"""Stored summaries (chapter 7): loading by scale, staleness, the appendix's views, and the
claims computed from them, on tiny sweeps with known structure."""

import json
from pathlib import Path

import numpy as np
import pytest

from monosem_lib import claims
from monosem_lib import reproduction as rp
from monosem_lib.analysis.report import interpret
from monosem_lib.core.config import preset
from monosem_lib.core.training import train
from monosem_lib.paper import budget, facts, series
from monosem_lib.paper.recipe import decay_for
from monosem_lib.paper.table1 import sweep_configs
from monosem_lib.store.summaries import save_summary

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    base = preset("tiny", steps=120, instances=2)
    lr1 = train([base.replace(lr=lr) for lr in (0.003, 0.03)], progress=False)
    lr3 = train(
        [base.replace(lr=lr, init_bias=-0.5, bias_decay=5.0) for lr in (0.003, 0.03)],
        progress=False,
    )
    k1 = [train(base.replace(k=k), progress=False) for k in (16, 32)]
    lr5 = train(preset("tiny", steps=60, task="abs", k=48), progress=False)
    save_summary(lr1, root / "book", name="LR1", scale="book")
    save_summary(lr3, root / "book", name="LR3", scale="book", representative=[0])
    save_summary(k1, root / "book", name="K1", scale="book")
    save_summary(lr5, root / "book", name="LR5", scale="book")
    return rp.load_data(root)


def test_load_data_finds_what_exists(data):
    assert set(data["book"]) == {"LR1", "LR3", "K1", "LR5"} and data["paper"] == {}


def test_claims_have_one_entry_per_swept_value(data):
    c1 = claims.claim1(data["book"]["LR1"])
    n = c1.numbers
    assert set(n["loss"]) == {0.003, 0.03} and n["loss_spread"] >= 0 and n["mono_span"] >= 0
    assert set(claims.claim1(data["book"]["LR1"], exclude_lrs=(0.003,)).numbers["loss"]) == {0.03}
    c2 = claims.claim2(data["book"]["LR1"]).numbers
    assert set(c2["mono"]) == set(c2["poly"]) == {0.003, 0.03}
    c3 = claims.claim3(data["book"]["LR1"], data["book"]["LR3"]).numbers
    assert set(c3["mono_per_feature"]) == {0.003, 0.03}
    assert set(claims.claim4(data["book"]["K1"]).numbers["features_covered"]) == {16, 32}
    pairs = rp.abs_pairs(data["book"]["LR5"])
    assert len(pairs) == 1 and pairs[0]["pairs"] <= min(pairs[0]["positive"], pairs[0]["negative"])


def test_facts_name_the_numbers_a_chapter_states(data):
    """``facts``: seed means by value under ``<name>_<value>_<metric>``, claim 3's ratio and
    loss ratio per rate, claim 5's counts per set, the budget study's by steps."""

    lr1, lr3 = data["book"]["LR1"], data["book"]["LR3"]
    f = facts.batch_facts("LR1", lr1)
    for lr in (0.003, 0.03):
        assert f[f"LR1_{lr:g}_mono"] == pytest.approx(lr1.mean("mono_per_feature", lr=lr))
        assert f[f"LR1_{lr:g}_loss"] == pytest.approx(lr1.mean("final_loss", lr=lr))
    k = facts.batch_facts("K1", data["book"]["K1"], "k")
    assert {"K1_16_covered", "K1_32_covered"} <= set(k)
    c3 = claims.claim3(lr1, lr3)
    f3 = facts.claim3_facts(c3)
    base, eng = c3.numbers["mono_per_feature"][0.03]
    assert (f3["claim3_0.03_base"], f3["claim3_0.03_eng"]) == (base, eng)
    loss = lr3.mean("final_loss", lr=0.03) / lr1.mean("final_loss", lr=0.03)
    assert f3["claim3_0.03_loss_ratio"] == pytest.approx(loss)
    f5 = facts.claim5_facts(claims.claim5(interpret(lr3.run(0)), "book"))
    assert f5["claim5_always_on_neurons"] + f5["claim5_residual_block_neurons"] > 0
    fb = facts.budget_facts({120: {"LR1": lr1, "LR3": lr3}})
    assert fb["LR3_120_0.03_mono"] == pytest.approx(lr3.mean("mono_per_feature", lr=0.03))


def test_rule_facts_state_the_decay_rule_as_the_book_applies_it():
    f = facts.rule_facts()
    assert f["rule_book_d"] == decay_for(8000, 0.01, "cosine")
    lr3 = sweep_configs("LR3", "book")
    assert f["book_LR3_S_min"] == pytest.approx(f["rule_book_d"] * 0.001 * 4000)
    assert f["book_LR3_S_max"] == pytest.approx(f["rule_book_d"] * 0.03 * 4000)
    assert all(c.bias_decay == f["rule_book_d"] for c in lr3)
    # The paper's rows: E4 (decay 0.001 at lr 0.003) to LR3 at lr 0.03; D1 sweeps the decay.
    assert f["table1_S_min"] == pytest.approx(0.001 * 0.003 * 2**16)
    assert f["table1_S_max"] == pytest.approx(0.03 * 0.03 * 2**16)
    assert (f["recipe_d"], f["recipe_S"]) == (0.3, pytest.approx(12.0))


def test_setting_facts_state_chapter_8s_setting_from_the_stored_runs():
    from monosem_lib.book.stored import data_dir
    from monosem_lib.paper import facts

    data = rp.load_data(data_dir("paper-cpu/LR1", "book/K0"))
    cpu, k0 = data["paper-cpu"]["LR1"], data["book"]["K0"]
    f = facts.setting_facts(cpu, k0)
    assert f["paper_pflop"] == pytest.approx(3_407_872 * 2**30 / 1e15)  # 3.66: m 64, k 1024, N 512
    assert f["zero_loss"] == pytest.approx(cpu.metric("zero_loss").mean())
    assert f["cpu_minutes"] * 60 * len(cpu) == pytest.approx(cpu.meta["train_seconds"])
    assert f["book_K0_8N_covered"] == pytest.approx(k0.mean("features_covered", k=512))


def test_the_front_page_status_table_and_departures(data):
    """The intro's table: one row per claim, each scale's verdict in the book's vocabulary,
    links to the chapters; the departures paragraph states the presets' ratios."""
    from monosem_lib.book import intro

    lr1, lr3 = data["book"]["LR1"], data["book"]["LR3"]
    found = {
        1: claims.claim1(lr1),
        2: claims.claim2(lr1),
        3: claims.claim3(lr1, lr3),
        4: claims.claim4(data["book"]["K1"]),
        5: claims.claim5(interpret(lr3.run(0)), "book"),
    }
    rows = intro.status_rows({"book": found})
    assert [r["book"] for r in rows] == [claims.verdict_mark(found[n].holds) for n in range(1, 6)]
    table = intro.status_table({"book": found}, {"book": "Book scale"}).data
    assert table.count("<tr>") == 6 and 'href="book/03_negative_bias.html"' in table
    assert "<th>Book scale</th>" in table and table.count("✓ holds") == sum(
        f.holds for f in found.values()
    )
    text = intro.departures_paragraph()
    assert "m/N = 1/2" in text and "m/N = 1/8" in text and "1/256 of its samples" in text


def test_claim5_interprets_stored_weights(data):
    lr3 = data["book"]["LR3"]
    report = interpret(lr3.run(0))
    c5 = claims.claim5(report, "book")
    assert list(c5.numbers) == ["residual_block", "always_on"]
    assert c5.numbers["residual_block"]["neurons"] >= c5.numbers["always_on"]["neurons"]
    with pytest.raises(ValueError, match="no stored weights"):
        lr3.run(1)


def test_the_books_stored_data_have_provenance_and_stay_small():
    files = list((ROOT / "data").rglob("*"))
    size = sum(f.stat().st_size for f in files if f.is_file())
    budget = claims.CHECK_MARGINS["data_megabytes"]
    assert size < budget * 2**20, f"data/ holds {size / 2**20:.1f} MiB; the budget is {budget} MiB"
    for path in (ROOT / "data").rglob("*.json"):
        meta = json.loads(path.read_text())
        if meta.get("format") != "monosem-summary":
            continue  # the SAE study's batches and the GPU plan have formats of their own
        for key in (
            "library_version",
            "source_digest",
            "device",
            "created",
            "torch_version",
            "instances",
        ):
            assert meta.get(key), f"{path.name} lacks {key}"
        assert all("config" in i and "metrics" in i for i in meta["instances"])


def test_at_scale_leaves_missing_batches_empty(data):
    assert rp.at_scale(data["paper"], "LR1", claims.claim1) is None
    both = rp.at_scale(data["book"], ("LR1", "LR3"), claims.claim3)
    assert both.numbers == claims.claim3(data["book"]["LR1"], data["book"]["LR3"]).numbers
    c1 = rp.at_scale(data["book"], "LR1", claims.claim1, exclude_lrs=(0.003,))
    assert c1.numbers["loss"].keys() == {0.03}


def test_every_stored_batch_is_current():
    """A change to Table 1, to the scales' rules or to the numbers (RESULTS_VERSION) makes a
    stored batch stale: rerun make data / make data-paper-cpu."""
    from monosem_lib.store.results import load_results

    paths = rp.batch_files(ROOT / "data")
    assert len(paths) >= 21, "the book-scale batches are missing"
    assert all(load_results(p).name in rp.BATCHES for p in paths)
    assert rp.stale_files(ROOT / "data") == [], "stale data: rerun make data / data-paper-cpu"


def test_stored_data_show_what_the_book_states():
    """Every scale's claims have the verdicts chapter 7 states (reproduction.EXPECTED_VERDICTS),
    and the budget study's too: a damaged or regenerated file that changes a verdict fails."""
    data = rp.load_data(ROOT / "data")
    by_scale = {s: rp.scale_claims(ROOT / "data", data, s) for s in rp.EXPECTED_VERDICTS}
    assert not rp.verdict_mismatches(by_scale, rp.EXPECTED_VERDICTS)
    study = budget.load_budget_study(ROOT / "data")
    assert sorted(study) == list(budget.STUDY_STEPS), "a budget of the study is missing"
    budgets = budget.budget_claims(study)
    assert not rp.verdict_mismatches(budgets, budget.EXPECTED_BUDGET_VERDICTS)


def test_a_changed_config_makes_a_batch_stale(tmp_path):
    from monosem_lib.paper.table1 import sweep_configs

    configs = sweep_configs("K0", "book", seeds=1, steps=8)
    run = train(configs[0:1], progress=False)
    save_summary(run, tmp_path, name="K0", scale="book")
    from monosem_lib.store.results import load_results

    assert not rp.is_current(load_results(tmp_path / "K0.json")), (
        "one width of six is not the batch"
    )


def test_sweep_series_sentence_and_departures(data):
    s = series.sweep_series(data["book"]["LR1"])
    assert s.var == "lr" and s.x == [0.003, 0.03]
    m = s.series["LR1"]
    assert tuple(m) == series.SERIES_METRICS and m["final_loss"].shape == (2, 2)
    sentence = series.batch_sentence(s)
    assert sentence.startswith("LR1: mono/N") and "lr 0.003" in sentence and "lr 0.03" in sentence
    d = series.departures("B3")
    assert d["N"] == ("512", "64") and d["eps N"] == ("8", "4") and d["lr"] == ("0.003", "0.01")
    # B3's decay: the paper's 0.003 at 2^17 steps; at book scale the rule's d (decay_for)
    # scaled by 0.003 / 0.03, so the total shrink differs between the scales.
    assert d["bias decay"] == ("0.003", f"{decay_for(8000, 0.01) / 10:.3g}")
    assert d["total shrink"][0] != d["total shrink"][1]
    assert series.departures("LR3")["lr"] == ("0.001-0.03", "0.001-0.03")


@pytest.mark.parametrize(
    "mono, expected",
    [
        (
            [0.0, 0.23, 0.12],
            "rises from 0.00 (k 16) to a peak of 0.23 (k 32), then falls to 0.12 (k 64)",
        ),
        ([0.0, 0.64, 0.02], "to a peak of 0.64 (k 32), then falls to 0.02 (k 64)"),
        ([0.0, 0.05, 0.02], "stays level, between 0.00 and 0.05"),
        ([0.1, 0.3, 0.38], "rises from 0.10 (k 16) to 0.38 (k 64)"),
        ([0.58, 0.5, 0.19], "falls from 0.58 (k 16) to 0.19 (k 64)"),
    ],
)
def test_a_batch_sentence_says_where_a_sweep_peaks(mono, expected):
    m = {"mono_per_feature": np.array(mono)[:, None], "final_loss": np.ones((3, 1))}
    s = series.SweepSeries("K1", "k", [16, 32, 64], {"K1": m})
    sentence = series.batch_sentence(s)
    assert expected in sentence and "peaking" not in sentence, sentence


def test_metric_variants_differ_only_where_the_book_says(data):
    from monosem_lib.analysis.metrics import monosemanticity

    lr5 = data["book"]["LR5"]
    sfa = lr5.stats(0, "book").sfa[0]  # [k, 2N]: +e_j, then -e_j
    N = lr5.configs[0].N
    v = rp.metric_variants(lr5, 0)
    assert v["paper"] == float(monosemanticity(sfa[:, :N]).mono.sum()) / N, (
        "the paper probes +e_j only"
    )
    assert v["book"] == float(monosemanticity(sfa).mono.sum()) / N, (
        "the book's variant probes both signs"
    )
    rows = rp.metric_variant_rows(data["book"]["LR1"])
    assert all(r["paper"] == r["book"] for r in rows), "for a ReLU decoder the two are identical"


def test_budget_views_and_overlays(data):
    import matplotlib

    matplotlib.use("Agg")
    from monosem_lib import book as plots

    study = {120: {"LR1": data["book"]["LR1"], "LR3": data["book"]["LR3"]}}
    rows = budget.budget_rows(study)
    assert {(r["batch"], r["lr"]) for r in rows} == {
        (b, lr) for b in ("LR1", "LR3") for lr in (0.003, 0.03)
    }
    assert all(r["samples"] == 120 * 64 and r["seeds"] == 2 for r in rows)
    verdicts = budget.budget_verdicts(budget.budget_claims(study, (0.03,)), batch=64)
    assert list(verdicts.columns) == ["steps", "claim 1", "claim 2", "claim 3"]
    fig = plots.budget_figure(rows)
    assert len(fig.axes) == 4 and all(len(ax.lines) == 4 for ax in fig.axes)
    by_scale = {
        "book": {
            1: claims.claim1(data["book"]["LR1"]),
            3: claims.claim3(data["book"]["LR1"], data["book"]["LR3"]),
        }
    }
    for n in (1, 3):
        assert all(ax.lines for ax in plots.claim_overlay(n, by_scale).axes[:2])


def test_compact_summaries_keep_every_per_neuron_statistic(tmp_path):
    """Per-neuron tables instead of activations: the same stats under both metric variants,
    the same abs pairs, at a fraction of the size."""
    import shutil

    from monosem_lib.store.results import load_results
    from monosem_lib.store.summaries import compact_summary

    run = train(preset("tiny", steps=60, task="abs", k=48, instances=2), progress=False)
    save_summary(run, tmp_path / "full", name="LR5", scale="book", representative=[1])
    shutil.copytree(tmp_path / "full", tmp_path / "compact")
    compact_summary(tmp_path / "compact" / "LR5.json")
    full, small = (load_results(tmp_path / d / "LR5.json") for d in ("full", "compact"))
    assert small.meta["neurons"] == "tables" and small._sfa is None
    for i in range(2):
        for variant in ("paper", "book"):
            a, b = full.stats(i, variant), small.stats(i, variant)
            for key in ("share", "top_feature", "mono", "dead"):
                assert (getattr(a, key) == getattr(b, key)).all(), (i, variant, key)
            assert full.features(i, variant).covered == small.features(i, variant).covered
    assert rp.abs_pairs(full) == rp.abs_pairs(small)
    assert small.run(1).model.k == 48, "representative weights are kept"
    sizes = [(tmp_path / d / "LR5.npz").stat().st_size for d in ("full", "compact")]
    assert sizes[1] < sizes[0]
