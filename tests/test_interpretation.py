import json

import pytest
import torch

from monosem_lib.analysis.classes import CLASSES, classify_neurons
from monosem_lib.analysis.probes import (
    ablation_loss,
    activity_fraction,
    linear_target,
    matrix_cosine,
    row_space_projector,
    subset_map,
    subspace_analysis,
)
from monosem_lib.analysis.report import interpret
from monosem_lib.analysis.report_text import format_verdict, report_dict
from monosem_lib.analysis.verdicts import (
    ABLATION_FACTOR,
    COSINE_THRESHOLD,
    FIT_RATIO,
    LINEAR_TOLERANCE,
    VERDICT_RULES,
    decide,
)
from monosem_lib.core.config import preset
from monosem_lib.core.training import train


@pytest.fixture(scope="module")
def run():
    return train(
        preset("tiny", steps=300, init_bias=-0.5, bias_decay=10.0, instances=2), progress=False
    )


def test_activity_fraction_is_a_fraction(run):
    a = activity_fraction(run, 0, samples=512)
    assert a.shape == (run.config.k,) and (a >= 0).all() and (a <= 1).all()


def test_ablating_nothing_is_the_loss_and_everything_is_the_zero_predictor(run):
    from monosem_lib.core.data import zero_loss

    base = ablation_loss(run, None, 0, samples=4096)
    everything = ablation_loss(run, torch.ones(run.config.k, dtype=torch.bool), 0, samples=4096)
    assert base < everything
    assert abs(everything - zero_loss(run.config)) / zero_loss(run.config) < 0.1


def test_linearizing_changes_only_the_chosen_neurons(run):
    none = ablation_loss(run, None, 0, samples=1024, linearize=[])
    assert none == ablation_loss(run, None, 0, samples=1024)


def test_subset_map_of_all_neurons_linearised_is_the_linear_model(run):
    W1, b, W2 = run.model.split()
    full = subset_map(run, torch.ones(run.config.k, dtype=torch.bool))
    expected = W2[0].double() @ W1[0].double() @ run.P[0].double()
    torch.testing.assert_close(full, expected)


def test_projector_and_cosine():
    P = torch.randn(3, 7, dtype=torch.float64)
    proj = row_space_projector(P)
    torch.testing.assert_close(proj @ proj, proj)
    assert abs(torch.trace(proj) - 3) < 1e-9
    assert matrix_cosine(proj, 2 * proj) == pytest.approx(1.0)


def test_classes_cover_every_neuron_and_report_names_them(run):
    classes = classify_neurons(run, 1, samples=512)
    assert sum(classes.counts().values()) == run.config.k
    assert set(classes.labels) <= set(CLASSES)
    report = interpret(run, 1, samples=512)
    for word in ("monosemantic", "always-on", "Ablations"):
        assert word in report.text
    assert report.to_dict()["counts"] == classes.counts()
    with pytest.raises(IndexError, match="out of range"):
        interpret(run, 5)
    with pytest.raises(ValueError, match="samples=0 is not allowed: must be a positive integer"):
        interpret(run, 0, samples=0)


def test_report_data_has_both_sets_stable_keys_and_every_verdict_with_its_threshold(run):
    report = interpret(run, 1, samples=512)
    data = json.loads(json.dumps(report_dict(report), allow_nan=False))
    assert list(data["sets"]) == ["residual_block", "always_on"]
    assert list(data["excluded"]) == ["near_monosemantic", "polysemantic"]
    counts = report.classes.counts()
    assert data["sets"]["residual_block"]["count"] == k_alive_not_mono(counts)
    assert data["sets"]["always_on"]["count"] == counts["always-on"]
    keys = [
        "none",
        "residual_block",
        "always_on",
        "random_monosemantic",
        "near_monosemantic",
        "polysemantic",
        "monosemantic",
    ]
    assert list(data["ablations"]) == keys and list(data["ablation_counts"]) == keys
    assert not any(ch.isdigit() for key in keys for ch in key), (
        "ablation keys must not embed counts"
    )
    assert data["ablation_counts"]["always_on"] == counts["always-on"]
    assert data["ablation_counts"]["monosemantic"] == counts["monosemantic"]
    verdicts = [data["fits_task"]] + [
        v
        for group in ("sets", "excluded")
        for s in data[group].values()
        for v in s["verdicts"].values()
    ]
    for v in verdicts:
        assert set(v) == {"holds", "value", "threshold", "comparison", "measure", "note"}
        assert v["holds"] in (True, False, None) and v["comparison"] in ("<=", ">=")
        assert (v["value"] is None) == (v["holds"] is None)
    assert data["fits_task"]["threshold"] == FIT_RATIO
    assert data["sets"]["always_on"]["verdicts"]["acts_linearly"]["threshold"] == LINEAR_TOLERANCE


def k_alive_not_mono(counts):
    return sum(counts[c] for c in ("near-monosemantic", "always-on", "polysemantic"))


def test_decide_compares_with_the_threshold_and_respects_its_precondition():
    assert decide("acts_linearly", LINEAR_TOLERANCE - 1e-9).holds is True
    assert decide("acts_linearly", LINEAR_TOLERANCE + 1e-9).holds is False
    assert decide("matches_target", COSINE_THRESHOLD + 1e-9).holds is True
    assert decide("matches_target", COSINE_THRESHOLD - 1e-9).holds is False
    unfit = decide("fits_task", 2 * FIT_RATIO)
    gated = decide("matches_target", 1.0, requires=unfit)
    assert (
        unfit.holds is False
        and gated.holds is False
        and gated.value == 1.0
        and "fits_task" in gated.note
    )
    assert decide("matches_target", 1.0, requires=decide("fits_task", 0.0)).holds is True
    na = decide("matches_target", None, note="no target")
    assert na.holds is None and na.note == "no target"
    with pytest.raises(ValueError, match="'looks_nice' is not allowed"):
        decide("looks_nice", 1.0)
    assert set(VERDICT_RULES) >= {
        "fits_task",
        "acts_linearly",
        "low_rank_identity",
        "matches_target",
        "ablation_matters",
        "outweighs_monosemantic",
        "global_correction",
    }


def test_the_text_affirms_a_verdict_only_when_it_holds():
    holds, fails = decide("ablation_matters", 3.0), decide("ablation_matters", 1.25)
    assert format_verdict(holds).split()[:2] == ["✓", "holds"]
    line = format_verdict(fails)
    assert (
        line.split()[:4] == ["✗", "does", "not", "hold"]
        and "1.25" in line
        and f"{ABLATION_FACTOR:g}" in line
    )
    assert format_verdict(decide("ablation_matters", None, note="empty")).split()[:3] == [
        "–",
        "not",
        "applicable",
    ]


def _tiny(task):
    return train(preset("tiny", task=task, steps=1), progress=False)


def test_linear_target_fits_the_task():
    dec, rp, ab = _tiny("decoder"), _tiny("reprojector"), _tiny("abs")
    target, _ = linear_target(dec)
    torch.testing.assert_close(target, row_space_projector(dec.P[0]))
    target, name = linear_target(rp)
    P, Q = rp.P[0].double(), rp.Q[0].double()
    assert target.shape == Q.shape and "Q P+ P" in name
    torch.testing.assert_close(target, Q @ torch.linalg.pinv(P) @ P)
    # the least-squares linear map from x = P f to Q f over an isotropic set of features (the
    # unit vectors, one sample each) is A = Q P^+, so the map from features is A P
    f = torch.eye(P.shape[1], dtype=torch.float64)
    A = torch.linalg.lstsq(f @ P.T, f @ Q.T).solution.T
    torch.testing.assert_close(A @ P, target, atol=1e-6, rtol=1e-6)
    assert linear_target(ab)[0] is None
    with pytest.raises(ValueError, match="task='abs' has no linear target"):
        subspace_analysis(ab, [0, 1])


def test_matrix_cosine_names_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(4, 4\)"):
        matrix_cosine(torch.zeros(3, 4), torch.zeros(4, 4))


def test_interference_excludes_the_neurons_own_feature(run):
    from monosem_lib.analysis.probes import interference

    values = interference(run, 3, 0, feature=2, samples=512)
    # Each eval sample leaves feature 2 off with probability 1 - eps.
    assert 0.7 * 512 < values.numel() < 512
    assert torch.isfinite(values).all()


def test_alignment_of_an_aligned_model_is_perfect():
    from monosem_lib.analysis.probes import neuron_alignment
    from monosem_lib.core.data import make_projection
    from monosem_lib.core.model import ToyModel
    from monosem_lib.core.training import Run

    P = make_projection(8, 8, 0).float()
    model = ToyModel.from_weights(P.T.clone()[None], torch.zeros(1, 8), torch.eye(8)[None])
    run = Run((preset("tiny", N=8, m=8, k=8),), model, P[None], None, torch.zeros(1, 1))
    a = neuron_alignment(run)
    assert a["feature"].tolist() == list(range(8))
    torch.testing.assert_close(a["input_cosine"], torch.ones(8, dtype=torch.float64))
    torch.testing.assert_close(a["output_share"], torch.ones(8, dtype=torch.float64))


def test_feature_response_sums_to_the_models_output(run):
    from monosem_lib.analysis.probes import feature_response

    values, contrib = feature_response(run, 3, list(range(run.config.k)), 0)
    model = run.model.select(0)
    x = values[:, None].float() * run.P[0, :, 3][None, :]
    y = model(x.unsqueeze(0))[0, :, 3].double()
    torch.testing.assert_close(contrib.sum(0), y, atol=1e-5, rtol=1e-5)


def test_report_is_data_and_formatting_is_separate():
    import dataclasses

    from monosem_lib.analysis.report import Report
    from monosem_lib.analysis.report_text import format_report

    fields = {f.name: f.type for f in dataclasses.fields(Report)}
    text_fields = [name for name, kind in fields.items() if kind == "str"]
    assert text_fields == ["target"], "interpret() stores data; format_report writes the text"
    assert Report.text.fget.__doc__ and "format_report" in Report.text.fget.__doc__
    assert callable(format_report)
