"""The fair fight between engineered neurons and SAEs (issue 29): one yardstick for neuron axes
and SAE atoms, TopK scored with an inference-time threshold, SAEs trained with warm-up, decay
and resampling, an honest FLOP bill, and the frontier study's cells."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

import monosem_lib as ml
from monosem_lib.analysis import dictionary as gt
from monosem_lib.analysis.sae_scoring import score_neurons, score_topk_both_ways
from monosem_lib.apps.cli import main as cli_main
from monosem_lib.core.config import ConfigError
from monosem_lib.core.optim import BatchedAdam
from monosem_lib.core.sae import SAE_OPT_IN_FIELDS, calibrate_threshold
from monosem_lib.core.sae_reference import plain_train_sae
from monosem_lib.core.sae_resample import resample_dead_, resample_generators
from monosem_lib.core.sae_training import sweep_sae_lr
from monosem_lib.paper import sae_frontier, sae_study
from monosem_lib.paper import sae_frontier_report as report
from monosem_lib.paper.decay_cells import study_cells
from monosem_lib.store.sae_files import load_batch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_run():
    return ml.train(ml.preset("tiny", instances=1, steps=50))


def _one_feature_per_neuron(run: ml.Run) -> ml.Run:
    """A copy of ``run`` whose first N neurons read one feature each (W1's rows are P's
    columns, the bias cuts every other feature's overlap) and whose other neurons are silent."""
    out = copy.deepcopy(run)
    W1, b, _ = out.model.split()
    P = out.P[0]
    N = P.shape[1]
    overlap = (P.T @ P - torch.eye(N)).abs().max()
    assert overlap < 0.95, "the check needs distinct feature directions"
    W1[0].zero_()
    W1[0, :N] = P.T
    b[0] = -(overlap + 1) / 2
    return out


def test_neurons_that_answer_one_feature_each_have_mmcs_one(tiny_run):
    exact = _one_feature_per_neuron(tiny_run)
    best = gt.neuron_axis_cosines(exact, 0)
    assert gt.mmcs(best) == pytest.approx(1.0, abs=1e-6)
    out = gt.unit_metrics(gt.neuron_units(exact, 0, axes=True))
    assert out["mmcs"] == pytest.approx(1.0, abs=1e-6) and out["recovered"] == 1.0
    assert out["features_covered"] == 1.0
    # A random rotation of the neurons mixes the features into every neuron.
    rotated = copy.deepcopy(exact)
    W1 = rotated.model.split().W1
    q, _ = torch.linalg.qr(torch.randn(W1.shape[1], W1.shape[1], generator=torch.Generator()))
    W1[0] = q @ W1[0]
    assert gt.mmcs(gt.neuron_axis_cosines(rotated, 0)) < 0.8
    assert gt.mmcs(gt.neuron_axis_cosines(rotated, 0, absolute=True)) >= gt.mmcs(
        gt.neuron_axis_cosines(rotated, 0)
    )


def test_neuron_units_compare_no_directions_unless_asked(tiny_run):
    plain = gt.unit_metrics(gt.neuron_units(tiny_run, 0))
    assert plain["mmcs"] is None and plain["recovered"] is None
    axes = gt.unit_metrics(gt.neuron_units(tiny_run, 0, axes=True))
    assert 0 < axes["mmcs"] <= 1 and axes["mono_units"] == plain["mono_units"]
    assert axes["mmcs"] == pytest.approx(gt.mmcs(gt.neuron_axis_cosines(tiny_run, 0)))


# -- TopK with an inference-time threshold -------------------------------------------------------


def _planted(seed: int = 0, d: int = 16, n: int = 32, batch: int = 256):
    """A planted dictionary [d, n] and a source of its sparse codes' images (2 features active
    a sample on average, values U[0, 1))."""
    g = torch.Generator().manual_seed(seed)
    planted = torch.randn(d, n, generator=g)
    planted /= planted.norm(dim=0)

    def source():
        f = torch.rand(batch, n, generator=g) * (torch.rand(batch, n, generator=g) < 2 / n)
        return (f @ planted.T).unsqueeze(0)

    return planted, source


def test_a_thresholded_topk_sae_keeps_about_k_and_covers_no_less():
    planted, source = _planted()
    cfg = ml.SAEConfig(d=16, latents=64, topk=2, steps=1000, batch=256, lr=3e-3)
    sae = ml.train_sae(cfg, source).sae
    theta = calibrate_threshold(sae, [source() for _ in range(16)])
    assert theta.shape == (1,) and float(theta[0]) > 0
    cut = sae.thresholded(theta)
    data = torch.cat([source() for _ in range(16)], dim=1)
    l0 = float((cut.encode(data) > 0).sum(-1).double().mean())
    assert 1.5 < l0 < 3.0, l0  # near k = 2
    assert float((sae.encode(data) > 0).sum(-1).double().mean()) <= 2
    probes = planted.T  # one feature alone, value 1
    kept = gt.unit_metrics(gt.Units(sae.encode(probes)[0].T))
    cut_metrics = gt.unit_metrics(gt.Units(cut.encode(probes)[0].T))
    assert cut_metrics["features_covered"] >= kept["features_covered"]
    assert cut_metrics["features_covered"] > 0.9
    # The threshold travels with select, and None goes back to TopK.
    assert torch.equal(cut.select([0]).threshold, cut.threshold)
    assert torch.equal(cut.thresholded(None).encode(probes), sae.encode(probes))


def test_a_threshold_is_checked_and_needs_a_topk_sae():
    cfg = ml.SAEConfig(d=4, latents=8, batch=8, steps=2)
    sae = ml.train_sae(cfg, lambda: torch.rand(1, 8, 4)).sae
    with pytest.raises(ValueError, match=r"threshold=\[-1.0\] is not allowed"):
        sae.thresholded(-1.0)
    relu = ml.SAEConfig(d=4, latents=8, kind="relu", l1=0.1, batch=8, steps=2)
    relu_sae = ml.train_sae(relu, lambda: torch.rand(1, 8, 4)).sae
    with pytest.raises(ValueError, match="kind='relu' is not allowed"):
        calibrate_threshold(relu_sae, [torch.rand(1, 8, 4)])


def test_topk_is_scored_both_ways_on_a_toy_model(tiny_run):
    m, N = tiny_run.config.m, tiny_run.config.N
    cfg = ml.SAEConfig(d=m, latents=2 * N, topk=2, batch=64, steps=300, lr=3e-3)
    sae = ml.train_sae(cfg, ml.activation_source(tiny_run, "x", 64, [0])).sae
    both = score_topk_both_ways(sae, 0, tiny_run, 0, "x", samples=1024)
    topk, cut = both["topk"], both["threshold"]
    assert topk["mmcs"] == cut["mmcs"]  # the same atoms
    assert topk["l0"] <= 2 and cut["threshold"] > 0 and cut["l0"] > 0
    assert cut["units"] == topk["units"] == 2 * N
    again = score_topk_both_ways(sae, 0, tiny_run, 0, "x", threshold=cut["threshold"], samples=1024)
    assert again["threshold"]["l0"] == cut["l0"]
    neurons = score_neurons(tiny_run, 0, samples=1024)
    assert neurons["mmcs"] is not None and "loss" in neurons


# -- SAEs trained as practitioners train them ----------------------------------------------------


def test_the_opt_in_fields_leave_stored_specs_as_they_were():
    assert set(ml.SAEConfig().to_dict()) == {
        f for f in ml.SAEConfig.__dataclass_fields__ if f not in SAE_OPT_IN_FIELDS
    }
    set_up = ml.SAEConfig(warmup=0.05, cooldown=0.2, resample=2)
    assert set_up.to_dict()["resample"] == 2
    assert ml.SAEConfig.from_dict(set_up.to_dict()) == set_up
    stored = ROOT / "data" / "sae" / "book" / "x-topk-m32.json"
    if stored.is_file():  # the stored study's SAE spec is what the library still writes
        spec = json.loads(stored.read_text())["spec"]
        batch = next(b for b in sae_study.sae_batches("book") if b.name == "x-topk-m32")
        assert spec["sae"] == json.loads(json.dumps(batch.spec()["sae"]))


def test_warm_up_and_cool_down_shape_the_rate():
    c = ml.SAEConfig(steps=100, warmup=0.05, cooldown=0.2)
    mult = c.lr_multipliers()
    assert mult[0] == pytest.approx(1 / 5) and mult[4] == 1 and mult[50] == 1
    assert mult[80] == 1 and mult[99] == pytest.approx(1 / 20)
    assert torch.all(mult[80:].diff() < 0) and torch.all(mult[:5].diff() > 0)
    assert torch.equal(
        ml.SAEConfig(steps=100).lr_multipliers(), torch.ones(100, dtype=torch.float64)
    )
    assert ml.SAEConfig(steps=100, resample=4).resample_steps() == [20, 40, 60, 80]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"warmup": 1.0}, "warmup"),
        ({"cooldown": -0.1}, "cooldown"),
        ({"warmup": 0.6, "cooldown": 0.6}, "cooldown"),
        ({"resample": -1}, "resample"),
        ({"resample": 2000}, "resample"),
    ],
)
def test_bad_training_options_name_the_field(changes, field):
    with pytest.raises(ConfigError) as err:
        ml.SAEConfig().replace(**changes)
    assert err.value.field == field and "\n" not in str(err.value)


def test_warm_up_and_cool_down_match_the_plain_autograd_trainer():
    steps, batch, d = 30, 16, 5
    g = torch.Generator().manual_seed(3)
    batches = [torch.rand(batch, d, generator=g, dtype=torch.float64) for _ in range(steps)]
    common = dict(d=d, latents=8, batch=batch, steps=steps, dtype="float64", lr=1e-2)
    configs = [
        ml.SAEConfig(kind="relu", l1=0.05, warmup=0.1, cooldown=0.3, **common),
        ml.SAEConfig(kind="relu", l1=0.05, warmup=0.1, cooldown=0.3, seed=1, **common),
    ]
    it = iter(batches)
    run = ml.train_sae(configs, lambda: next(it).unsqueeze(0))
    for i, c in enumerate(configs):
        ref = plain_train_sae(c, batches)
        assert max(float((w[i] - r).abs().max()) for w, r in zip(run.sae.split(), ref)) < 1e-10
    plain = iter(batches)
    flat = ml.train_sae([c.replace(warmup=0.0) for c in configs], lambda: next(plain).unsqueeze(0))
    assert float((flat.sae.flat - run.sae.flat).abs().max()) > 1e-4  # the ramp mattered


def test_resampling_revives_dead_relu_latents():
    planted, source = _planted(seed=1)
    common = dict(d=16, latents=64, kind="relu", l1=0.3, steps=900, batch=256, lr=3e-2)
    common["dead_after"] = 100
    plain = ml.train_sae(ml.SAEConfig(**common), source)
    planted, source = _planted(seed=1)
    run = ml.train_sae(ml.SAEConfig(resample=2, **common), source)
    assert run.resampled is not None and run.resampled.shape == (2, 1)
    assert int(run.resampled.sum()) > 0, "the check needs dead latents to resample"
    assert run.dead_latents[0] < plain.dead_latents[0]
    W_dec = run.sae.split().W_dec[0]
    assert torch.allclose(W_dec.norm(dim=0), torch.ones(64), atol=1e-5)
    assert plain.resampled is None and len(plain.dead_latents) == 1


def test_resample_dead_moves_only_dead_latents_and_clears_their_moments():
    cfg = ml.SAEConfig(d=6, latents=8, batch=32, steps=3, kind="relu", l1=0.01)
    run = ml.train_sae(cfg, lambda: torch.rand(1, 32, 6))
    sae = run.sae
    opt = BatchedAdam(sae.flat, sae.blocks(), 1)
    opt.exp_avg.fill_(1.0)
    before = sae.flat.clone()
    dead = torch.zeros(1, 8, dtype=torch.bool)
    dead[0, [1, 5]] = True
    counts = resample_dead_(sae, opt, torch.rand(1, 32, 6), dead, resample_generators([cfg]))
    assert counts.tolist() == [2]
    W_enc, b_enc, W_dec, _ = sae.split()
    old = sae.split(before)
    assert torch.equal(W_dec[0][:, [0, 2, 3, 4, 6, 7]], old.W_dec[0][:, [0, 2, 3, 4, 6, 7]])
    assert not torch.equal(W_dec[0][:, 1], old.W_dec[0][:, 1])
    assert torch.allclose(W_dec[0][:, [1, 5]].norm(dim=0), torch.ones(2))
    assert b_enc[0, 1] == 0 and sae.split(opt.exp_avg).W_enc[0, 5].abs().sum() == 0
    assert sae.split(opt.exp_avg).W_enc[0, 0].abs().sum() > 0


def test_practitioners_settings_still_recover_a_planted_dictionary():
    planted, source = _planted(seed=2)
    cfg = ml.SAEConfig(
        d=16, latents=64, kind="relu", l1=0.3, steps=1500, batch=256, lr=1e-2,
        warmup=0.05, cooldown=0.2, resample=3,
    )  # fmt: skip
    run = ml.train_sae(cfg, source)
    found = gt.best_cosines(run.sae.split().W_dec[0].double(), planted.double())
    assert gt.mmcs(found) > 0.99 and gt.recovered(found) == 1.0


def test_the_rate_sweep_picks_the_lowest_end_loss():
    _, source = _planted(seed=4)
    cfg = ml.SAEConfig(d=16, latents=64, topk=2, steps=300, batch=256, instances=2)
    sweep = sweep_sae_lr(cfg, source, [1e-5, 3e-3])
    assert sweep.run.instances == 4 and sweep.end_loss.shape == (2,)
    assert sweep.best_lr == 3e-3 and sweep.end_loss[1] < sweep.end_loss[0]
    with pytest.raises(ValueError, match="tail=0 is not allowed"):
        sweep_sae_lr(cfg, source, [1e-3], tail=0)


# -- an honest FLOP bill ---------------------------------------------------------------------


def test_auxk_is_billed_over_the_dead_latents_it_uses():
    # Zero inputs: no latent ever fires, so all 8 are dead from step dead_after on.
    cfg = ml.SAEConfig(d=4, latents=8, topk=2, aux_k=3, dead_after=3, batch=16, steps=10)
    run = ml.train_sae(cfg, lambda: torch.zeros(1, 16, 4))
    assert run.aux_steps == 7 and run.dead_latents == [8]
    assert run.aux_latent_steps.tolist() == [7 * 3]
    base = 16 * 10 * cfg.flops_per_sample
    assert run.instance_flops == [base + 16 * 7 * 3 * 6 * 4]
    assert run.flops == base + 16 * 7 * 6 * 4 * 8  # the dense bill, kept as it was
    assert run.instance_flops[0] < run.flops


def test_few_dead_latents_cost_auxk_little():
    _, source = _planted(seed=5)
    cfg = ml.SAEConfig(d=16, latents=64, topk=2, steps=400, batch=256, lr=3e-3, dead_after=50)
    run = ml.train_sae(cfg, source)
    assert run.aux_steps > 0, "the check needs AuxK to run"
    assert int(run.aux_latent_steps[0]) <= run.aux_steps * cfg.aux_latents
    assert run.instance_flops[0] < run.flops


def test_the_bill_and_resampling_survive_saving(tmp_path):
    cfg = ml.SAEConfig(d=4, latents=8, topk=2, aux_k=3, dead_after=3, batch=16, steps=10)
    run = ml.train_sae(cfg.replace(resample=2), lambda: torch.zeros(1, 16, 4))
    ml.save_sae(run, tmp_path / "sae")
    back = ml.load_sae(tmp_path / "sae")
    assert torch.equal(back.aux_latent_steps, run.aux_latent_steps)
    assert torch.equal(back.resampled, run.resampled) and back.instance_flops == run.instance_flops
    assert back.configs[0].resample == 2


# -- the frontier study ------------------------------------------------------------------------


@pytest.fixture
def tiny_frontier(monkeypatch):
    shape = sae_frontier.FrontierShape(
        "tiny",
        ml.preset("tiny", device="cpu"),
        regimes=((8, 1 / 8),),
        samples=(2**11, 2**12),
        seeds=(0,),
        sae_batch=64,
        resample=1,
    )
    monkeypatch.setitem(sae_frontier.FRONTIER_SHAPES, "tiny", shape)
    return shape


def test_the_frontier_is_resumable_cell_by_cell(tmp_path, tiny_frontier):
    cells = sae_frontier.frontier_cells("tiny")
    assert len(cells) == 2 * len(sae_frontier.FRONTIER_PARTS)
    assert cells[0].name == "m8-e8-n11-seed0-models" and cells[0].samples == 2**11
    assert sae_frontier.run_frontier(tmp_path, "tiny", limit=2, progress=False) == [
        c.name for c in cells[:2]
    ]
    assert sae_frontier.stale_frontier_cells(tmp_path, "tiny") == [c.name for c in cells[2:]]
    written = sae_frontier.run_frontier(tmp_path, "tiny", progress=False)
    assert written == [c.name for c in cells[2:]]
    assert sae_frontier.run_frontier(tmp_path, "tiny", progress=False) == []
    rows = list(sae_frontier.frontier_rows(tmp_path, "tiny"))
    size = tiny_frontier.grid_size
    assert len(rows) == 2 * (1 + size + 6 * size)
    assert all(r["mmcs"] is not None and r["flops"] > 0 and "seconds" in r for r in rows)
    topk = [r for r in rows if r.get("kind") == "topk"]
    assert all(r["thr_l0"] > 0 and r["threshold"] > 0 for r in topk)
    on_h = [r for r in rows if r["contender"] in ("sae-hb", "sae-he")]
    assert all(r["model_flops"] > 0 and "loss" in r for r in on_h)
    # A changed grid makes every cell stale.
    monkeypatch_shape = sae_frontier.FrontierShape(
        **{**tiny_frontier.__dict__, "l1_grid": (0.1, 0.4, 0.8)}
    )
    sae_frontier.FRONTIER_SHAPES["tiny"] = monkeypatch_shape
    stale = sae_frontier.stale_frontier_cells(tmp_path, "tiny")
    assert stale and all(s.endswith("relu") for s in stale)
    with pytest.raises(ValueError, match="unknown cell 'nope'"):
        sae_frontier.run_frontier(tmp_path, "tiny", only=["nope"])


def test_the_frontier_configs_follow_the_rule_and_equal_grids(tiny_frontier):
    models = sae_frontier.frontier_model_configs("tiny", 8, 1 / 8, 2**12, 0)
    rule = ml.decay_for(64, models[0].lr, models[0].schedule, outside="allow")
    assert models[0].init_bias == 0 and models[0].bias_decay == 0 and models[0].steps == 64
    assert [c.bias_decay for c in models[1:]] == pytest.approx([rule / 2, rule, rule * 2])
    cell = sae_frontier.FrontierCell("tiny", 8, 1 / 8, 2**12, 0, "sae-he-topk")
    saes = sae_frontier.frontier_sae_configs(cell)
    assert [c.topk for c in saes] == [1, 2, 4] and saes[0].d == tiny_frontier.base.k
    assert saes[0].warmup == 0.05 and saes[0].steps == 64
    relu = sae_frontier.frontier_sae_configs(
        sae_frontier.FrontierCell("tiny", 8, 1 / 8, 2**12, 0, "sae-x-relu"), scale=2.0
    )
    assert [c.l1 for c in relu] == pytest.approx([0.4, 0.8, 1.6]) and relu[0].resample == 1
    with pytest.raises(ConfigError, match="grids"):
        sae_frontier.FrontierShape(**{**tiny_frontier.__dict__, "topk_grid": (1.0,)})
    with pytest.raises(ConfigError, match="samples=100"):
        sae_frontier.FrontierShape(**{**tiny_frontier.__dict__, "samples": (100,)})


def test_the_knee_needs_no_ground_truth():
    # Loss falls steeply to the second point and little after: the knee is the second.
    assert report.knee_index([1, 2, 4, 8], [1.0, 0.3, 0.25, 0.22]) == 1
    assert report.knee_index([1, 2], [0.5, 0.4]) == 1  # too few points: the lowest loss
    assert report.knee_index([1, 2, 4], [0.1, 0.5, 0.9]) == 0  # none below the chord
    # A point beaten on both axes is no candidate: the middle lies below the chord, but the
    # sparsest point has a lower L0 and a lower loss, so it wins.
    assert report.knee_index([100, 160, 210], [0.96, 0.99, 1.26]) == 0
    assert report.knee_index([1, 2, 4, 8, 16], [1.0, 0.3, 0.35, 0.25, 0.22]) == 1
    with pytest.raises(ValueError, match="equally long"):
        report.knee_index([1], [])


def test_choices_and_frontiers_come_from_stored_rows():
    def row(seed, grid, l0, fvu, covered):
        return dict(m=8, eps=0.125, samples=4096, seed=seed, contender="sae-x", kind="topk",
                    grid=grid, l0=l0, fvu=fvu, features_covered=covered, mmcs=0.9,
                    flops=10, seconds=1.0)  # fmt: skip

    grid = ((0.5, 1, 1.0, 0.2), (1.0, 2, 0.3, 0.5), (2.0, 4, 0.25, 0.9))
    rows = [row(s, *point) for s in (0, 1) for point in grid]
    choices = report.frontier_choices(rows)
    assert len(choices) == 2
    assert all(c["chosen"]["grid"] == 1.0 and c["oracle"]["grid"] == 2.0 for c in choices)
    (point,) = report.frontier_points(rows)
    assert point["seeds"] == 2 and point["features_covered"] == (0.5, 0.5, 0.5)
    assert point["flops"] == 30  # the whole grid is billed
    (oracle,) = report.frontier_points(rows, "oracle")
    assert oracle["features_covered"][0] == 0.9
    assert "sae-x" in report.format_frontier([point])
    curve = report.grid_points(rows)
    assert [p["grid"] for p in curve] == [0.5, 1.0, 2.0] and curve[2]["l0"] == (4.0, 4.0, 4.0)
    assert all(p["seeds"] == 2 for p in curve)


def test_the_decay_studys_bill_counts_its_models():
    bill = report.decay_study_bill("book")
    configs = [c for _, cs in study_cells("book") for c in cs]
    assert bill["models"] == len(configs) > 100
    assert bill["model_steps"] == sum(c.steps for c in configs)
    assert bill["flops"] == sum(c.flops_per_sample * c.batch * c.steps for c in configs)


def test_the_frontier_command_trains_a_limit_and_reports(tmp_path, tiny_frontier, capsys):
    out = str(tmp_path / "f")
    assert report.main(["--shape", "tiny", "--out", out, "--limit", "1"]) == 0
    assert "wrote 1 cells; 13 to go" in capsys.readouterr().out
    assert report.main(["--shape", "tiny", "--out", out, "--report", "--data", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "baseline" in text and "cells to go: 13" in text and "models" in text
    for bad in (["--limit", "-1"], ["--threads", "0"]):
        with pytest.raises(SystemExit):
            report.main(["--shape", "tiny", *bad])


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = cli_main(["sae-frontier", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_trains_a_limit_resumes_and_reports(tmp_path, tiny_frontier, monkeypatch, capsys):
    """``python -m monosem_lib sae-frontier``: --limit n trains the first n cells (the rest
    ``to do``), a rerun trains only what is left (the first ``current``, not retrained), and
    --report --json prints one object with the report's lines."""
    one_length = sae_frontier.FrontierShape(**{**tiny_frontier.__dict__, "samples": (2**11,)})
    monkeypatch.setitem(sae_frontier.FRONTIER_SHAPES, "tiny", one_length)
    names = [c.name for c in sae_frontier.frontier_cells("tiny")]
    root, folder = tmp_path / "f", tmp_path / "f" / "tiny"
    code, out, _ = _cli(["tiny", "--out", str(root), "--limit", "1", "--json"], capsys)
    result = json.loads(out)
    assert code == 0 and result["shape"] == "tiny" and result["folder"] == str(folder)
    assert result["cells"] == {n: "trained" if n == names[0] else "to do" for n in names}
    assert result["trained"] == 1 and (folder / f"{names[0]}.json").is_file()
    first = (folder / f"{names[0]}.json").stat().st_mtime_ns
    code, out, _ = _cli(["tiny", "--out", str(root), "--json"], capsys)
    result = json.loads(out)
    assert code == 0 and result["trained"] == len(names) - 1
    assert result["cells"] == {n: "current" if n == names[0] else "trained" for n in names}
    assert (folder / f"{names[0]}.json").stat().st_mtime_ns == first, "not retrained"
    code, out, _ = _cli(["tiny", "--out", str(root)], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0] == f"{names[0]}: current" and len(lines) == len(names) + 1
    assert lines[-1] == f"trained 0, 0 to do; stored in {folder}"
    code, out, _ = _cli(["tiny", "--out", str(root), "--report", "--json"], capsys)
    (line,) = out.splitlines()
    result = json.loads(line)
    assert code == 0 and set(result) == {"shape", "folder", "report"}
    report_lines = result["report"]
    assert report_lines == report.frontier_report(root, "tiny")
    assert report_lines[0].startswith("# chosen") and "# oracle (most covered)" in report_lines
    assert any("\tbaseline\t" in x for x in report_lines)
    assert any(x.startswith("# cells to go: 0;") for x in report_lines)
    code, out, _ = _cli(["tiny", "--out", str(root), "--report"], capsys)
    assert code == 0 and out.splitlines() == report_lines


@pytest.mark.parametrize(
    "args, named",
    [
        (["nope"], "'nope'"),
        (["book", "--limit", "-1"], "'-1'"),
        (["book", "--limit", "two"], "'two'"),
    ],
)
def test_the_cli_refuses_a_bad_shape_or_limit_in_one_line(args, named, capsys):
    code, out, err = _cli(args, capsys)
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert named in line and ("book-rates" in line or ">= 0" in line)


def test_the_papers_shape_is_planned_at_lr_001_with_the_rules_decay():
    models = sae_frontier.frontier_model_configs("paper-cpu", 64, 1 / 64, 2**21, 0)
    assert models[0].lr == 0.01 and models[0].steps == 2**11 and models[0].N == 512
    rule = ml.decay_for(2**11, 0.01, models[0].schedule)
    assert models[2].bias_decay == pytest.approx(rule)  # the middle of the grid
    book, paper = report.frontier_bill("book"), report.frontier_bill("paper-cpu")
    assert book["cells"] == 3 * 3 * 4 * 7 and paper["flops"] > book["flops"]


def test_an_opt_in_rate_sweep_keeps_the_lowest_end_loss_and_bills_every_rate(
    tmp_path, tiny_frontier
):
    name = "m8-e8-n12-seed0-sae-x-topk"
    sae_frontier.run_frontier(tmp_path / "one", "tiny", only=[name], progress=False)
    (plain,) = [load_batch(tmp_path / "one" / "tiny" / name).rows]
    swept_shape = sae_frontier.FrontierShape(**{**tiny_frontier.__dict__, "sae_lrs": (1e-4, 3e-3)})
    sae_frontier.FRONTIER_SHAPES["tiny"] = swept_shape
    assert name in sae_frontier.stale_frontier_cells(tmp_path / "one", "tiny")  # the spec says
    sae_frontier.run_frontier(tmp_path / "two", "tiny", only=[name], progress=False)
    swept = load_batch(tmp_path / "two" / "tiny" / name).rows
    assert [r["lr"] for r in plain] == [1e-3] * 3
    assert all(r["lr"] == 3e-3 for r in swept)  # 1e-4 is far too slow for 64 steps
    assert [r["flops"] for r in swept] == [2 * r["flops"] for r in plain]
    assert all(s["end_loss"] < p["end_loss"] for s, p in zip(swept, plain))


def test_the_sae_studys_rows_carry_the_honest_bill_beside_the_dense_one(tmp_path, monkeypatch):
    shape = sae_study.SAEShape(
        "tiny", ml.preset("tiny", steps=100), dict(ml.ENGINEERED), m_values=(8,),
        eps_values=(1 / 8,), main=(8, 1 / 8), sae_steps=300, sae_batch=32, l1_grid=(0.2,),
    )  # fmt: skip
    monkeypatch.setitem(sae_study.SAE_SHAPES, "tiny", shape)
    sae_study.run_sae_study(tmp_path, "tiny", only=["models-m8", "h-topk-m8"], progress=False)
    (row,) = load_batch(tmp_path / "tiny" / "h-topk-m8").rows
    # AuxK ran (some latents died), and it is billed over the few it used, not densely.
    assert row["dead_at_end"] > 0 and row["flops_auxk_used"] < row["flops"]


def test_the_frontier_figure_draws_a_curve_per_contender(tmp_path, tiny_frontier):
    from matplotlib.figure import Figure

    from monosem_lib.book.sae_frontier_plots import frontier_figure

    sae_frontier.run_frontier(tmp_path, "tiny", progress=False)
    rows = list(sae_frontier.frontier_rows(tmp_path, "tiny"))
    fig = frontier_figure(report.frontier_points(rows), report.grid_points(rows), 8, 1 / 8)
    assert isinstance(fig, Figure) and fig._repr_png_()[:4] == b"\x89PNG"
    left, right = fig.axes[:2]
    assert len(left.lines) >= 10  # 8 contenders, TopK's thresholded twins
    assert "$2^{12}$" in right.get_title()
    labels = {t.get_text() for t in fig.legends[0].get_texts()}
    assert {"engineered neurons", "TopK SAE on x", "TopK SAE on x (threshold)"} <= labels
    # The grid points of a length other than the longest, two metrics a row each.
    points, grid = report.frontier_points(rows), report.grid_points(rows)
    fig = frontier_figure(
        points, grid, 8, 1 / 8, metrics=("features_covered", "mmcs"), samples=2**11
    )
    _, covered, mmcs, _ = fig.axes  # rows: coverage, MMCS; columns: FLOPs, L0
    assert len(covered.lines) >= 10 and mmcs.get_ylabel() == "MMCS"
    assert "$2^{11}$" in covered.get_title() and fig._repr_png_()[:4] == b"\x89PNG"


def test_the_cli_trains_one_length_and_refuses_a_length_the_shape_lacks(
    tmp_path, tiny_frontier, capsys
):
    """``--samples N`` trains only the cells of that length (the others stay ``to do``); a
    length the shape does not train is refused in one line that names it and the allowed."""
    root = str(tmp_path / "f")
    code, out, _ = _cli(
        ["tiny", "--out", root, "--samples", "4096", "--limit", "2", "--json"], capsys
    )
    result = json.loads(out)
    trained = [n for n, what in result["cells"].items() if what == "trained"]
    assert code == 0 and trained == ["m8-e8-n12-seed0-models", "m8-e8-n12-seed0-sae-x-topk"]
    code, out, err = _cli(["tiny", "--out", root, "--samples", "1000"], capsys)
    (line,) = err.splitlines()
    assert code == 2 and out == "" and "1000" in line and "2048, 4096" in line
    # Lengths are taken in the order given (a GPU budget does the longest-needed first), and
    # a spent budget starts no cell.
    args = ["tiny", "--out", root, "--samples", "4096", "--samples", "2048", "--json"]
    code, out, _ = _cli([*args, "--budget-seconds", "0"], capsys)
    assert code == 0 and json.loads(out)["trained"] == 0
    code, out, _ = _cli([*args, "--limit", "6"], capsys)
    trained = [n for n, what in json.loads(out)["cells"].items() if what == "trained"]
    assert set(trained) == {f"m8-e8-n12-seed0-{p}" for p in sae_frontier.FRONTIER_PARTS[2:]} | {
        "m8-e8-n11-seed0-models"
    }
