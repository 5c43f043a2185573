"""``interpret`` draws its conclusions from its numbers: the verdicts on models where claim 5
should fail as well as hold. Each test asserts the booleans, not the wording.

The untrained model and the abs model are quick; the book-scale models (about 10 s each to
train on two free cores, cached under ``$MONOSEM_CACHE_DIR``) are science tests.
"""

import json

import pytest
import torch

from monosem_lib.analysis.probes import linear_target, matrix_cosine
from monosem_lib.analysis.report import interpret
from monosem_lib.analysis.report_text import report_dict
from monosem_lib.book.batches import other_tasks
from monosem_lib.core.config import preset
from monosem_lib.core.training import train
from monosem_lib.paper.table1 import ENGINEERED
from monosem_lib.store.cache import load_or_train
from monosem_lib.store.results import Results

SET_VERDICTS = (
    "acts_linearly",
    "ablation_matters",
    "outweighs_monosemantic",
    "matches_target",
    "low_rank_identity",
    "global_correction",
)


def _holds(report, key):
    """{verdict name: holds} for one of claim 5's sets."""
    return {name: v.holds for name, v in report.sets[key].verdicts.items()}


def test_an_untrained_model_gets_no_positive_verdict():
    run = train(preset("book", steps=1), progress=False)
    report = interpret(run)
    assert report.fit.holds is False and report.fit.value > 1, (
        "one step does not beat the zero predictor"
    )
    for key in ("residual_block", "always_on"):
        assert report.sets[key].count > 0
        verdicts = report.sets[key].verdicts
        assert list(verdicts) == list(SET_VERDICTS)
        assert not any(v.holds for v in verdicts.values()), f"{key}: {_holds(report, key)}"
        for name in (
            "acts_linearly",
            "ablation_matters",
            "matches_target",
            "low_rank_identity",
            "global_correction",
        ):
            assert verdicts[name].holds is False and verdicts[name].value is not None
    # the numbers themselves say "no low-rank identity" whatever the fit: a cosine near 0
    always = report.sets["always_on"].subspace
    assert always.cosine_target < 0.3 and always.near_one < report.config.m // 4
    assert not any(v.holds for s in report.excluded.values() for v in s.verdicts.values())


def test_an_abs_model_says_which_analyses_apply_and_prints_no_cosine():
    run = train(preset("tiny", task="abs", steps=300), progress=False)
    report = interpret(run, samples=4096)
    assert report.applicable == {
        "linearisation": True,
        "ablation": True,
        "linear_map": False,
        "low_rank_identity": False,
    }
    data = report_dict(report)
    for key, s in report.sets.items():
        assert s.subspace is None and data["sets"][key]["map"] is None
        for name in ("matches_target", "low_rank_identity", "global_correction"):
            assert s.verdicts[name].holds is None and s.verdicts[name].value is None
    residual = report.sets["residual_block"]
    assert residual.count > 0 and residual.verdicts["acts_linearly"].holds in (True, False)
    assert residual.verdicts["ablation_matters"].value is not None
    assert "cosine" not in report.text
    json.dumps(data, allow_nan=False)


@pytest.fixture(scope="module")
def engineered():
    return interpret(load_or_train(preset("book", **ENGINEERED), progress=False))


@pytest.mark.science
def test_the_engineered_model_shows_claim_5_on_its_always_on_neurons(engineered):
    assert engineered.fit.holds
    always = _holds(engineered, "always_on")
    assert always == dict.fromkeys(SET_VERDICTS, True), always
    # The whole residual block holds detectors: it does not act linearly, so claim 5 fails for it.
    residual = _holds(engineered, "residual_block")
    assert residual["acts_linearly"] is False and residual["global_correction"] is False
    assert residual["ablation_matters"] is True and residual["matches_target"] is False
    # and so do the neurons the cut leaves out
    assert engineered.excluded["near_monosemantic"].verdicts["acts_linearly"].holds is False


@pytest.mark.science
def test_a_baseline_at_lr_0_001_has_no_low_rank_identity():
    """At book scale lr 0.001 has not converged (loss ~0.12) and has no monosemantic neurons.
    Measured: the whole model (every neuron is residual) has a map close to the projector in
    direction (cosine ~0.92) but with singular values ~1.5, not 1, and it does not act
    linearly; its always-on neurons act linearly only to within ~15% of the loss."""
    report = interpret(load_or_train(preset("book", lr=0.001), progress=False))
    assert report.fit.holds and report.classes.counts()["monosemantic"] == 0
    residual, always = _holds(report, "residual_block"), _holds(report, "always_on")
    assert residual == {
        "acts_linearly": False,
        "ablation_matters": True,
        "outweighs_monosemantic": None,
        "matches_target": True,
        "low_rank_identity": False,
        "global_correction": False,
    }, residual
    assert always == {
        "acts_linearly": False,
        "ablation_matters": True,
        "outweighs_monosemantic": None,
        "matches_target": False,
        "low_rank_identity": False,
        "global_correction": False,
    }, always


@pytest.mark.science
def test_a_reprojector_is_compared_with_its_own_target():
    run = load_or_train(other_tasks("book")["reprojector"], progress=False)
    i = Results.from_run(run).where(init_bias=ENGINEERED["init_bias"])[0]
    report = interpret(run, i)
    target, _ = linear_target(run, i)
    P, Q = run.P[i].double(), run.Q[i].double()
    torch.testing.assert_close(target, Q @ torch.linalg.pinv(P) @ P)
    sub = report.sets["always_on"].subspace
    assert sub.map.shape == Q.shape and sub.cosine_identity is None
    assert sub.cosine_target == pytest.approx(matrix_cosine(sub.map, target))
    assert report.applicable["low_rank_identity"] is False
    always = _holds(report, "always_on")
    # Measured at book scale: the always-on neurons act linearly and matter, but their map
    # reaches a cosine of only ~0.81 with Q P+ P, below the 0.85 a match needs.
    assert always == {
        "acts_linearly": True,
        "ablation_matters": True,
        "outweighs_monosemantic": True,
        "matches_target": False,
        "low_rank_identity": None,
        "global_correction": False,
    }, always
    assert 0.7 < sub.cosine_target < 0.85
