"""Sparse autoencoders: the batched trainer against a plain autograd one, recovery of a planted
dictionary, the config's errors, storage, the ground-truth metrics and the stored study."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

import monosem_lib as ml
from monosem_lib.analysis import dictionary as gt
from monosem_lib.core.config import ConfigError
from monosem_lib.core.sae import SAE, SAEConfig, SAEWeights, activate, init_sae
from monosem_lib.core.sae_reference import plain_train_sae
from monosem_lib.core.sae_training import activation_source, train_sae
from monosem_lib.paper import sae_study
from monosem_lib.store.atomic import StoredFileError
from monosem_lib.store.locks import TargetLocked, holding
from monosem_lib.store.sae_files import load_batch, load_sae, save_sae, write_batch


def _sparse_batches(steps: int, batch: int, d: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [
        torch.rand(batch, d, generator=g, dtype=torch.float64)
        * (torch.rand(batch, d, generator=g, dtype=torch.float64) < 0.3)
        for _ in range(steps)
    ]


def _replay(batches: list[torch.Tensor]):
    """A source handing out ``batches`` in order, shared by every instance ([1, B, d])."""
    it = iter(batches)
    return lambda: next(it).unsqueeze(0)


def _max_diff(run, i: int, reference: list[torch.Tensor]) -> float:
    return max(float((w[i] - r).abs().max()) for w, r in zip(run.sae.split(), reference))


def test_topk_with_auxk_matches_the_plain_autograd_trainer_step_for_step():
    steps, batch, d = 40, 32, 6
    batches = _sparse_batches(steps, batch, d)
    common = dict(d=d, latents=10, batch=batch, steps=steps, dead_after=3, aux_k=4, dtype="float64")
    configs = [
        SAEConfig(topk=1, lr=1e-2, seed=0, **common),
        SAEConfig(topk=3, lr=3e-3, seed=1, **common),
        SAEConfig(topk=2, lr=1e-2, seed=2, aux_alpha=0.1, **common),
    ]
    run = train_sae(configs, _replay(batches))
    assert run.aux_steps > 0, "the test must exercise AuxK"
    for i, c in enumerate(configs):
        assert _max_diff(run, i, plain_train_sae(c, batches)) < 1e-8, f"instance {i}"
    # AuxK matters here: without it the weights differ, so the comparison above can fail.
    no_aux = train_sae([c.replace(aux_alpha=0.0) for c in configs], _replay(batches))
    assert float((no_aux.sae.flat - run.sae.flat).abs().max()) > 1e-4


def test_relu_l1_matches_the_plain_autograd_trainer_step_for_step():
    steps, batch, d = 30, 32, 6
    batches = _sparse_batches(steps, batch, d, seed=1)
    common = dict(d=d, latents=9, kind="relu", batch=batch, steps=steps, dtype="float64")
    configs = [
        SAEConfig(l1=0.1, lr=1e-2, seed=0, schedule="cosine", **common),
        SAEConfig(l1=0.01, lr=3e-3, seed=4, schedule="cosine", **common),
    ]
    run = train_sae(configs, _replay(batches))
    for i, c in enumerate(configs):
        assert _max_diff(run, i, plain_train_sae(c, batches)) < 1e-10, f"instance {i}"
    W_dec = run.sae.split().W_dec
    assert torch.allclose(W_dec.norm(dim=1), torch.ones(2, 9, dtype=torch.float64))


@pytest.mark.parametrize("kind", ["topk", "relu"])
def test_a_planted_dictionary_is_recovered(kind):
    g = torch.Generator().manual_seed(0)
    d, n, batch = 16, 32, 256
    planted = torch.randn(d, n, generator=g)
    planted /= planted.norm(dim=0)

    def source():
        f = torch.rand(batch, n, generator=g) * (torch.rand(batch, n, generator=g) < 2 / n)
        return (f @ planted.T).unsqueeze(0)

    knob = {"topk": 2} if kind == "topk" else {"l1": 0.3}
    cfg = SAEConfig(d=d, latents=2 * n, kind=kind, steps=1500, batch=batch, lr=3e-3, **knob)
    start = init_sae([cfg], source()).split().W_dec[0]
    assert gt.mmcs(gt.best_cosines(start.double(), planted.double())) < 0.9  # not by chance
    run = train_sae(cfg, source)
    found = gt.best_cosines(run.sae.split().W_dec[0].double(), planted.double())
    assert gt.mmcs(found) > 0.99
    assert gt.recovered(found) == 1.0


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"kind": "gated"}, "kind"),
        ({"topk": 200}, "topk"),
        ({"topk": 0}, "topk"),
        ({"l1": 0.1}, "l1"),
        ({"kind": "relu", "l1": -1.0}, "l1"),
        ({"lr": 0.0}, "lr"),
        ({"latents": 2.5}, "latents"),
        ({"aux_k": 500}, "aux_k"),
        ({"schedule": "linear"}, "schedule"),
        ({"device": "tpu"}, "device"),
        ({"sparsity": 3}, "sparsity"),
    ],
)
def test_bad_hyperparameters_name_the_field_and_what_is_allowed(changes, field):
    with pytest.raises(ConfigError) as err:
        SAEConfig().replace(**changes)
    assert err.value.field == field
    message = str(err.value)
    assert message.startswith(f"{field}=") and "\n" not in message
    assert any(w in message for w in ("must", "is not"))


def test_a_relu_sae_ignores_topk_and_auxk():
    c = SAEConfig(kind="relu", l1=0.2, latents=2)  # topk 4 > latents is fine for relu
    assert c.sparsity == 0.2


def test_one_pass_needs_one_structure_and_the_right_batches():
    with pytest.raises(ConfigError, match="latents"):
        train_sae([SAEConfig(), SAEConfig(latents=64)], lambda: torch.zeros(1, 1024, 32))
    with pytest.raises(ValueError, match=r"expected \[1, 16, 8\]"):
        train_sae(SAEConfig(d=8, latents=8, batch=16, steps=2), lambda: torch.zeros(1, 16, 9))


def test_topk_keeps_each_instances_own_k():
    pre = torch.tensor([[[3.0, -1.0, 2.0, 1.0]], [[3.0, -1.0, 2.0, 1.0]]])
    z = activate(pre, "topk", torch.tensor([1, 3]))
    assert z.tolist() == [[[3.0, 0.0, 0.0, 0.0]], [[3.0, 0.0, 2.0, 1.0]]]
    assert activate(pre, "relu").tolist()[0] == [[3.0, 0.0, 2.0, 1.0]]


@pytest.mark.oldest
def test_save_and_load_round_trip_without_pickles(tmp_path):
    cfg = SAEConfig(d=8, latents=12, batch=16, steps=5, instances=2)
    run = train_sae(cfg, lambda: torch.rand(1, 16, 8))
    save_sae(run, tmp_path / "sae")
    back = load_sae(tmp_path / "sae")
    assert back.configs == run.configs and back.aux_steps == run.aux_steps
    assert torch.equal(back.sae.flat, run.sae.flat)
    assert torch.equal(back.sae.encode(torch.ones(3, 8)), run.sae.encode(torch.ones(3, 8)))
    with np.load(tmp_path / "sae" / "weights.npz", allow_pickle=False) as data:
        assert set(SAEWeights._fields) <= set(data.files)
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        save_sae(run, tmp_path / "sae")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sae"]  # no lock or temp left
    (tmp_path / "sae" / "sae.json").write_text("{")
    with pytest.raises(ValueError, match="sae.json is not a readable SAE"):
        load_sae(tmp_path / "sae")


def test_a_saved_sae_is_sealed_locked_and_verified(tmp_path):
    run = train_sae(SAEConfig(d=8, latents=12, batch=16, steps=5), lambda: torch.rand(1, 16, 8))
    target = tmp_path / "sae"
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            save_sae(run, target)
        except BaseException as err:  # noqa: BLE001 - the test looks at it
            errors.append(err)

    with holding(target):  # another writer holds the SAE's lock
        worker = threading.Thread(target=writer)
        worker.start()
        worker.join()
    assert len(errors) == 1 and isinstance(errors[0], TargetLocked) and not target.exists()
    save_sae(run, target)
    assert json.loads((target / "sae.json").read_text())["integrity"]["parts"]["weights.npz"]
    save_sae(run, target, overwrite=True)  # replaced whole
    data = bytearray((target / "weights.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (target / "weights.npz").write_bytes(bytes(data))
    with pytest.raises(StoredFileError, match="weights.npz does not match"):
        load_sae(target)


@pytest.mark.oldest
def test_a_study_batch_is_committed_as_a_sealed_pair(tmp_path):
    rows = [{"contender": "baseline", "l0": 1.0}, {"contender": "engineered", "l0": 2.0}]
    arrays = {"sfa_000": np.ones((3, 2), np.float16), "sfa_001": np.zeros((3, 2), np.float16)}
    write_batch(tmp_path, "models-m8", {"rows": rows, "instances": 2}, arrays)
    batch = load_batch(tmp_path / "models-m8")
    assert batch.rows == rows and np.array_equal(batch.array("sfa_000"), arrays["sfa_000"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models-m8.json", "models-m8.npz"]
    write_batch(tmp_path, "models-m8", {"rows": rows[:1], "instances": 1}, {})  # replaced
    assert load_batch(tmp_path / "models-m8.json").rows == rows[:1]
    with pytest.raises(ValueError, match="batch name '../x' is not allowed"):
        write_batch(tmp_path, "../x", {"rows": rows}, {})
    with pytest.raises(ValueError, match="nan or inf"):
        write_batch(tmp_path, "bad", {"rows": rows}, {"sfa_000": np.array([np.nan])})
    # A pair from two different writes is refused, naming the file.
    write_batch(tmp_path, "other", {"rows": rows, "instances": 2}, arrays)
    (tmp_path / "other.npz").write_bytes((tmp_path / "models-m8.npz").read_bytes())
    with pytest.raises(StoredFileError, match="other.npz does not match"):
        load_batch(tmp_path / "other")
    with pytest.raises(StoredFileError, match="no such SAE study batch"):
        load_batch(tmp_path / "absent")


# -- ground-truth metrics -----------------------------------------------------------------------


def test_mmcs_and_recovery_on_known_directions():
    truth = torch.eye(3, dtype=torch.float64)
    atoms = torch.tensor([[1.0, 0.0], [0.0, 0.6], [0.0, 0.8]], dtype=torch.float64)
    best = gt.best_cosines(atoms, truth)
    assert torch.allclose(best, torch.tensor([1.0, 0.6, 0.8], dtype=torch.float64))
    assert gt.mmcs(best) == pytest.approx(0.8)
    assert gt.recovered(best) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="threshold"):
        gt.recovered(best, 1.5)


def test_unit_metrics_use_the_papers_criterion():
    sfa = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0005, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
    out = gt.unit_metrics(gt.Units(sfa))
    assert out["mono_units"] == 2  # the third shares, the fourth is dead
    assert out["features_covered"] == pytest.approx(1 / 3)
    assert out["mmcs"] is None and out["recovered"] is None


@pytest.fixture(scope="module")
def tiny_run():
    return ml.train(ml.preset("tiny", instances=2))


def test_an_exact_sae_on_h_splices_in_at_the_models_own_loss(tiny_run):
    k = tiny_run.config.k
    eye = torch.eye(k).unsqueeze(0)
    weights = SAEWeights(eye, torch.zeros(1, k), eye.clone(), torch.zeros(1, k))
    sae = SAE.from_weights(weights, "relu", torch.tensor([1]))
    out = gt.sae_data_metrics(sae, 0, tiny_run, 1, "h", samples=512)
    assert out["loss"] == pytest.approx(out["model_loss"], rel=1e-5)
    assert out["fvu"] < 1e-10 and out["loss"] < out["zero_loss"]
    own = gt.neuron_data_metrics(tiny_run, 1, samples=512)
    assert out["dead"] == own["dead"] and out["l0"] == pytest.approx(own["l0"])


def test_sae_units_read_the_right_probes(tiny_run):
    P = tiny_run.P[0]
    k, (m, N) = tiny_run.config.k, P.shape
    dirs = gt.h_directions(tiny_run, 0)
    assert dirs.shape == (k, N)
    W1, b, _ = tiny_run.model.split()
    expected = torch.relu(W1[0] @ P[:, 3] + b[0]) - torch.relu(b[0])
    assert torch.allclose(dirs[:, 3], expected, atol=1e-6)
    cfg = SAEConfig(d=m, latents=2 * N, topk=2, batch=32, steps=3)
    run = train_sae(cfg, activation_source(tiny_run, "x", 32, [0]))
    units = gt.sae_units(run.sae, 0, tiny_run, 0, "x")
    assert units.sfa.shape == (2 * N, N) and torch.equal(units.truth, P)
    assert torch.allclose(units.sfa[:, 5], run.sae.encode(P[:, 5].unsqueeze(0))[0, 0])
    with pytest.raises(ValueError, match="on='y'"):
        gt.sae_units(run.sae, 0, tiny_run, 0, "y")


def test_activation_source_gives_h_of_each_chosen_model(tiny_run):
    source = activation_source(tiny_run, "h", 16, [1, 0, 1])
    a = source()
    assert a.shape == (3, 16, tiny_run.config.k)
    xs = activation_source(tiny_run, "x", 16, [1, 0, 1])()
    assert xs.shape == (3, 16, tiny_run.config.m)
    assert torch.allclose(a[1], tiny_run.model.select([0]).hidden(xs[1])[0], atol=1e-6)
    with pytest.raises(ValueError, match="on='z'"):
        activation_source(tiny_run, "z", 16)


# -- the stored study ------------------------------------------------------------------------


@pytest.fixture
def tiny_shape(monkeypatch):
    shape = sae_study.SAEShape(
        "tiny",
        ml.preset("tiny", steps=100),
        dict(ml.ENGINEERED),
        m_values=(8, 4),
        eps_values=(1 / 8, 1 / 4),
        main=(8, 1 / 8),
        sae_steps=20,
        sae_batch=32,
        l1_grid=(0.2, 0.4),
        slider_latents=(16, 32),
        slider_topk=(1, 2),
        slider_l1=(0.2, 0.4),
    )
    monkeypatch.setitem(sae_study.SAE_SHAPES, "tiny", shape)
    return shape


def test_the_study_is_resumable_and_knows_what_is_stale(tmp_path, tiny_shape):
    names = sae_study.sae_batch_names("tiny")
    assert sae_study.stale_sae_batches(tmp_path, ["tiny"]) == [f"tiny/{n}" for n in names]
    written = sae_study.run_sae_study(tmp_path, "tiny", progress=False)
    assert written == names
    assert sae_study.run_sae_study(tmp_path, "tiny", progress=False) == []
    assert sae_study.stale_sae_batches(tmp_path, ["tiny"]) == []
    batch = load_batch(tmp_path / "tiny" / "x-relu-m4")
    assert [(r["eps"], r["sparsity"]) for r in batch.rows] == [
        (e, c) for e in (1 / 8, 1 / 4) for c in (0.2, 0.4)
    ]
    assert batch.rows[0]["l0"] >= 0 and "timing" in batch.meta
    # A changed grid makes exactly the batches it touches stale.
    sae_study.SAE_SHAPES["tiny"] = sae_study.SAEShape(**{**tiny_shape.__dict__, "l1_grid": (0.4,)})
    stale = sae_study.stale_sae_batches(tmp_path, ["tiny"])
    assert stale and all("relu-m" in s for s in stale)
    with pytest.raises(ValueError, match="unknown batch 'nope'"):
        sae_study.run_sae_study(tmp_path, "tiny", only=["nope"])


def test_the_main_regimes_h_saes_come_from_the_slider(tiny_shape):
    specs = {b.name: b for b in sae_study.sae_batches("tiny")}
    assert specs["h-topk-m8"].cells == (1 / 4,)
    assert specs["h-topk-m4"].cells == (1 / 8, 1 / 4)
    assert specs["slider-topk-L32"].cells == (1 / 8,)
    plan = specs["x-topk-m8"].plan()
    assert plan == [(1 / 8, 2), (1 / 4, 4)]  # k = eps N
    json.dumps(specs["h-relu-m4"].spec())  # storable
    # A slider without 2N latents leaves the main regime to the grid.
    sae_study.SAE_SHAPES["tiny"] = sae_study.SAEShape(
        **{**tiny_shape.__dict__, "slider_latents": (16,)}
    )
    specs = {b.name: b for b in sae_study.sae_batches("tiny")}
    assert specs["h-topk-m8"].cells == (1 / 8, 1 / 4)


# -- the chapter's tables, figures and slider ----------------------------------------------------


@pytest.fixture
def tiny_study(tmp_path, tiny_shape):
    sae_study.run_sae_study(tmp_path, "tiny", progress=False)
    return sae_study.load_sae_study(tmp_path)


def test_the_main_regime_has_every_contender_and_the_paths_compute(tiny_study):
    from monosem_lib.book import sae_compare

    assert "h-topk-m8" in sae_study.sae_batch_names("tiny")
    entries = sae_compare.sae_contenders(tiny_study, "tiny")
    assert list(entries) == list(sae_compare.SAE_CONTENDER_LABELS.values())
    base, sae_h = entries["baseline neurons"].row, entries["TopK SAE on h"].row
    assert sae_h["latents"] == 32 and sae_h["sparsity"] == 2  # 2N latents, k = eps N
    assert sae_h["flops_total"] == base["flops"] + sae_h["h_flops"] + sae_h["flops"]
    sae_x = entries["TopK SAE on x"].row
    assert sae_x["flops_total"] == sae_x["flops"] < sae_h["flops_total"]
    relu = [
        r
        for _, _, r in tiny_study.rows("tiny")
        if r.get("kind") == "relu"
        and r["contender"] == "sae-x"
        and r["m"] == 8
        and r["eps"] == 1 / 8
    ]
    best = min(relu, key=lambda r: abs(r["l0"] - 2))
    assert entries["ReLU SAE on x"].row["sparsity"] == best["sparsity"]
    frame = sae_compare.sae_comparison_frame(tiny_study, ["tiny"])
    assert frame.shape[0] == 6 and np.isnan(frame.loc[("tiny", "baseline neurons"), "MMCS"])
    assert np.isnan(frame.loc[("tiny", "TopK SAE on x"), "task loss"])
    hard = sae_compare.sae_hardness_frame(tiny_study, "tiny")
    assert len(hard) == 6 * 4  # every contender in the 2 x 2 regimes
    numbers = sae_compare._regime_numbers(tiny_study, "tiny", "tiny")
    engineered, relu_h = entries["engineered neurons"].row, entries["ReLU SAE on h"].row
    assert numbers["tiny_engineered_covered"] == engineered["features_covered"]
    assert numbers["tiny_relu_h_covered_n"] == round(16 * relu_h["features_covered"])
    assert "tiny_baseline_mmcs" not in numbers and numbers["tiny_zero_loss"] > 0


def test_the_chapters_figures_and_both_sliders_draw(tiny_study):
    from matplotlib.figure import Figure

    from monosem_lib.book import sae_chapter, sae_compare, sae_explorer

    frame = sae_compare.sae_comparison_frame(tiny_study, ["tiny"])
    html = sae_chapter.sae_comparison_table(frame).data
    assert "\u2014" in html and "TopK SAE on h" in html
    assert html.index("TopK SAE on h") < html.index("training GFLOP"), "a contender a column"
    for fig in (
        sae_chapter.sae_heatmaps(sae_compare.sae_contenders(tiny_study, "tiny")),
        sae_chapter.sae_compute_figure(frame),
        sae_chapter.sae_hardness_figure(sae_compare.sae_hardness_frame(tiny_study, "tiny"), "tiny"),
    ):
        assert isinstance(fig, Figure) and fig._repr_png_()[:4] == b"\x89PNG"
    static = sae_explorer.sae_slider_explorer(tiny_study, live=False, shape="tiny")
    assert static.frames == 2 * 2 and "anim" in static.html
    pytest.importorskip("ipywidgets")
    live = sae_explorer.sae_slider_explorer(tiny_study, live=True, shape="tiny")
    assert live.redraws == 1 and "32 latents" in live.status.value
    live.controls["latents"].value = 16
    assert live.redraws == 2 and "16 latents" in live.status.value
    assert (
        sae_explorer.sae_slider_explorer(sae_study.SAEStudy(tiny_study.root), shape="tiny") is None
    )


def test_without_stored_data_the_chapter_says_how_to_get_it(tmp_path):
    from monosem_lib.book import sae_chapter, sae_compare, sae_explorer

    empty = sae_study.load_sae_study(tmp_path)
    line = sae_chapter.sae_data_status(tmp_path, empty)
    assert "missing" in line and "make data-sae" in line
    frame = sae_compare.sae_comparison_frame(empty)
    assert frame.empty and sae_chapter.sae_comparison_table(frame).data
    for fig in (
        sae_chapter.sae_heatmaps(sae_compare.sae_contenders(empty, "book")),
        sae_chapter.sae_compute_figure(frame),
        sae_chapter.sae_hardness_figure(sae_compare.sae_hardness_frame(empty)),
    ):
        assert "make data-sae" in fig.texts[0].get_text() and fig._repr_png_()
    assert sae_explorer.sae_slider_explorer(empty, live=False) is None


def test_the_chapters_findings_follow_from_its_numbers():
    from monosem_lib.book import sae_compare

    s = sae_study.SAE_SHAPES["book"]
    cells = [f"m{m}_e{round(1 / e)}" for m in s.m_values for e in s.eps_values]
    numbers = {"book_engineered_covered": 0.6, "book_baseline_covered": 0.3}
    for i, c in enumerate(cells):  # TopK below L1 in all but the first regime
        numbers[f"hard_{c}_topk_h_loss"], numbers[f"hard_{c}_relu_h_loss"] = 1.0, 1.0 + (i > 0)
    found = sae_compare.sae_findings(numbers)
    assert found["book_engineered_gain"] == pytest.approx(2.0)
    assert (
        found["hard_cells"] == len(cells) and found["hard_topk_lower_loss_cells"] == len(cells) - 1
    )
    # What the numbers do not hold is left out, not guessed.
    assert "slider_enough_latents_weak_l1_covered_min" not in found
    assert "hard_m32_engineered_covered_min" not in found


def test_a_config_field_added_at_its_default_keeps_stored_batches_current():
    # A batch stored before Config gained a field (here decay_schedule) holds configs without
    # it; read back through Config.from_dict they equal today's, and any other value differs.
    configs = [c.to_dict() for c in sae_study.sae_model_configs("book", 32)]
    old = {"models": [{k: v for k, v in c.items() if k != "decay_schedule"} for c in configs]}
    assert sae_study._with_defaults(old) == {"models": configs}
    changed = {"models": [{**c, "bias_decay": 0.5} for c in old["models"]]}
    assert sae_study._with_defaults(changed) != {"models": configs}
