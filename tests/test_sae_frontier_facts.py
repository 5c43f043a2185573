"""The frontier study's named facts (paper.sae_frontier_facts) on small, hand-made rows."""

from __future__ import annotations

import pytest

from monosem_lib.paper.sae_frontier_facts import frontier_facts, rate_facts, regime_tag


def _row(contender, kind, grid, seed, samples, covered, *, l0, loss, thr=None, lr=1e-3):
    row = {
        "m": 32,
        "eps": 1 / 16,
        "samples": samples,
        "seed": seed,
        "contender": contender,
        "kind": kind,
        "grid": grid,
        "l0": l0,
        "loss": loss,
        "fvu": loss,
        "features_covered": covered,
        "mmcs": 0.5 if kind is None else 0.99,
        "dead": 0,
        "flops": samples * 10.0,
        "seconds": 1.0,
        "lr": lr,
    }
    if thr is not None:
        row["thr_features_covered"] = thr
    if kind is not None:  # an SAE on h: the model's own loss and the zero predictor's
        row.update(model_loss=0.1, zero_loss=1.0)
    return row


def _rows(topk_cov=0.1, thr=0.9, samples=(1024, 4096)):
    rows = []
    for n in samples:
        for seed in (0, 1):
            rows.append(_row("baseline", None, None, seed, n, 0.3 + 0.01 * seed, l0=100, loss=0.1))
            for g, cov in ((0.5, 0.5), (1.0, 0.6 + 0.02 * seed), (2.0, 0.4)):
                # the middle point is the knee (far below the chord), and the most covered
                rows.append(
                    _row("engineered", None, g, seed, n, cov, l0=50 * g, loss=0.2 - 0.15 * (g == 1))
                )
            for g, l0 in ((0.5, 2), (1.0, 4), (2.0, 8)):
                cov = topk_cov + (0.3 if g == 0.5 else 0)
                loss = {2: 0.3, 4: 0.05, 8: 0.04}[l0]
                rows.append(_row("sae-hb", "topk", g, seed, n, cov, l0=l0, loss=loss, thr=thr))
    return rows


def test_frontier_facts_reads_the_knee_the_oracle_and_the_seed_range():
    facts = frontier_facts(_rows())
    tag = regime_tag(32, 1 / 16)
    assert tag == "m32e16"
    assert facts["fr_seeds"] == 2 and facts["fr_samples_max"] == 4096
    assert facts[f"fr_{tag}_eng_cov"] == pytest.approx(0.61)
    assert (facts[f"fr_{tag}_eng_cov_lo"], facts[f"fr_{tag}_eng_cov_hi"]) == (0.6, 0.62)
    assert facts[f"fr_{tag}_base_cov"] == pytest.approx(0.305)
    one_seed = [r for r in _rows() if r["seed"] == 0 or r["kind"] is None]
    assert frontier_facts(one_seed)[f"fr_{tag}_hb_topk_seeds"] == 1, "the seeds a point holds"
    assert facts[f"fr_{tag}_hb_topk_seeds"] == facts[f"fr_{tag}_eng_g1_seeds"] == 2
    # TopK: the knee (k at grid 1.0) covers 0.1, the oracle (grid 0.5) 0.4; with the
    # threshold both cover 0.9, so the knee-oracle gap on the fairer score is 0.
    assert facts[f"fr_{tag}_hb_topk_cov"] == pytest.approx(0.1)
    assert facts[f"fr_{tag}_hb_topk_oracle_cov"] == pytest.approx(0.4)
    assert facts[f"fr_{tag}_hb_topk_thr_cov"] == pytest.approx(0.9)
    assert facts[f"fr_{tag}_neuron_mmcs_max"] == 0.5
    assert facts[f"fr_{tag}_sae_h_mmcs_min"] == 0.99
    # The SAEs on h at the shortest length only: the lowest seed's (thresholded) coverage.
    short = [r for r in _rows(thr=0.97) if r["samples"] == 1024 and r["kind"]]
    for r in short:
        r["thr_features_covered"] = 0.5 if r["seed"] == 1 else 0.97
    assert frontier_facts(_rows(thr=0.97))[f"fr_{tag}_sae_h_short_cov_min"] == 0.97
    long = [r for r in _rows(thr=0.97) if r["samples"] == 4096]
    assert frontier_facts(short + long)[f"fr_{tag}_sae_h_short_cov_min"] == 0.5
    assert facts[f"fr_{tag}_eng_gflop"] == pytest.approx(3 * 4096 * 10 / 1e9)
    # The cheapest SAE point whose every seed covers nearly_all (0.95): none at 0.9; with
    # 0.97 the shortest length.
    assert f"fr_{tag}_sae_h_cheapest_gflop" not in facts
    assert frontier_facts(_rows(thr=0.97))[f"fr_{tag}_sae_h_cheapest_samples"] == 1024


def test_grid_facts_at_the_shortest_length_and_dominance_per_seed():
    from monosem_lib.paper.sae_frontier_facts import dominance_facts

    rows = _rows()
    for r in rows:  # the shortest runs' grid points get their own coverage
        if r["samples"] == 1024 and r["contender"] == "engineered":
            r["features_covered"] = r["grid"] / 10
    facts = frontier_facts(rows)
    assert facts["fr_m32e16_eng_short_g2_cov"] == pytest.approx(0.2)
    assert facts["fr_m32e16_eng_g2_cov"] == pytest.approx(0.4)  # the longest, unchanged
    # grid 1 beats grid 2 on both axes (L0 50 < 100, loss 0.05 < 0.2) in both seeds; grid 0.5
    # has the lower L0 but the higher loss, so it beats grid 1 in none.
    fact = dominance_facts(rows, "engineered", 4096, 1.0, 2.0)
    name = "fr_m32e16_eng_g1_over_g2"
    assert (fact[f"{name}_seeds"], fact[f"{name}_dominated"]) == (2, 2)
    assert fact[f"{name}_loss_gap_min"] == pytest.approx(0.75)
    fact = dominance_facts(rows, "engineered", 4096, 0.5, 1.0)
    assert fact["fr_m32e16_eng_g0.5_over_g1_dominated"] == 0
    assert dominance_facts(rows, "engineered", 2048, 1.0, 2.0) == {}


def test_rate_facts_compare_the_points_both_studies_hold():
    fixed, swept = _rows(thr=0.5), _rows(thr=0.8, samples=(4096,))
    facts = rate_facts(fixed, [r for r in swept if r["seed"] == 0])
    assert facts["rate_m32e16_hb_topk_n12_gain"] == pytest.approx(0.3)
    assert facts["rate_m32e16_hb_topk_n12_fixed_cov"] == pytest.approx(0.5)
    # Every grid point kept the fixed rate here (3 grid points, one seed, one length).
    assert (facts["rate_points"], facts["rate_kept_fixed"]) == (3, 1.0)
    assert rate_facts(fixed, []) == {}


def test_frontier_facts_refuse_no_rows():
    with pytest.raises(ValueError, match="no frontier rows"):
        frontier_facts([])


def test_the_frontier_and_rate_tables_show_the_chosen_points():
    pytest.importorskip("pandas")
    from monosem_lib import book
    from monosem_lib.paper.sae_frontier_facts import rate_comparison
    from monosem_lib.paper.sae_frontier_report import frontier_points

    rows = _rows()
    chosen, oracle = frontier_points(rows, "chosen"), frontier_points(rows, "oracle")
    frame = book.frontier_frame(chosen, oracle, 32, 1 / 16, 4096)
    assert list(frame.index) == ["baseline neurons", "engineered neurons", "TopK SAE on baseline h"]
    eng = frame.loc["engineered neurons"]
    assert (eng["covered (knee)"], eng["seeds' range"], eng["with threshold"]) == (
        "0.61",
        "0.60\u20130.62",
        "\u2014",
    )
    assert frame.loc["TopK SAE on baseline h", "oracle"] == "0.90"  # with its threshold
    # (zero loss - spliced) / (zero loss - own) = (1 - 0.05) / (1 - 0.1) at the knee.
    assert frame.loc["TopK SAE on baseline h", "loss recovered"] == "1.06"
    assert frame.loc["engineered neurons", "loss recovered"] == "\u2014"
    assert "Coverage at 0.999" in book.frontier_table(chosen, oracle, 32, 1 / 16, 4096).data
    swept = [dict(r, lr=3e-3, thr_features_covered=1.0) for r in rows if r["seed"] == 0]
    table = book.rate_table(rate_comparison(rows, swept))
    row = table.loc[("m = 32, eps = 1/16", "TopK SAE on baseline h")]
    assert (row[("2^12 samples", "lr 1e-3")], row[("2^12 samples", "swept")]) == ("0.90", "1.00")
    assert row[("2^12 samples", "rates kept")] == "0.003, 0.003, 0.003"


def test_shape_facts_keep_the_regime_names_and_prefix_the_rest():
    from monosem_lib.paper.sae_frontier_facts import shape_facts

    rows = _rows()
    facts = shape_facts(rows, "frp")
    tag = regime_tag(32, 1 / 16)
    assert facts[f"fr_{tag}_eng_cov"] == frontier_facts(rows)[f"fr_{tag}_eng_cov"]
    assert facts["frp_seeds"] == 2 and "fr_seeds" not in facts
    assert facts["frp_rows"] == len(rows)
    assert facts["frp_tflop"] == pytest.approx(sum(r["flops"] for r in rows) / 1e12)
    assert facts["frp_hours"] == pytest.approx(len(rows) / 3600)


def test_shape_facts_give_the_plan_beside_what_is_stored():
    from monosem_lib.paper.sae_frontier_facts import shape_facts
    from monosem_lib.paper.sae_frontier_report import frontier_bill

    rows = [{**r, "part": r["contender"] + (r["kind"] or "")} for r in _rows()]
    facts = shape_facts(rows, "frp", shape="book")
    assert facts["frp_plan_cells"] == frontier_bill("book")["cells"] == 252
    assert facts["frp_cells"] == 2 * 2 * 3  # two lengths, two seeds, three parts
    rate = facts["frp_tflop"] / facts["frp_hours"]  # the plan's hours at the stored rows' rate
    assert facts["frp_plan_hours"] == pytest.approx(facts["frp_plan_tflop"] / rate)
    left = facts["frp_plan_tflop"] - facts["frp_tflop"]  # what is left, at the same rate
    assert facts["frp_left_tflop"] == pytest.approx(left) and left > 0
    assert facts["frp_left_hours"] == pytest.approx(left / rate)
    assert facts["frp_left_hours"] < facts["frp_plan_hours"]
