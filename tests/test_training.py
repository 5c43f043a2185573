"""Training: gradients, optimizers and the whole recipe against plain references."""

import math

import pytest
import torch
from torch import nn

from monosem_lib.core.config import NONLINEARITIES, ConfigError, preset
from monosem_lib.core.model import ACTIVATIONS, ToyModel, activation
from monosem_lib.core.optim import BatchedAdam, BatchedLamb, schedule_multipliers
from monosem_lib.core.reference import ReferenceLamb, naive_train, plain_train
from monosem_lib.core.step import fused_backward, loss_and_grad, set_fused_backward
from monosem_lib.core.training import TrainingDiverged, train, train_many
from monosem_lib.store.results import Results


def _random_model(I, k, m, out, nl, seed=0):
    g = torch.Generator().manual_seed(seed)
    W1 = torch.randn(I, k, m, generator=g, dtype=torch.float64)
    b = torch.randn(I, k, generator=g, dtype=torch.float64) * 0.3
    W2 = torch.randn(I, out, k, generator=g, dtype=torch.float64) / math.sqrt(k)
    return ToyModel.from_weights(W1, b, W2, nl)


@pytest.mark.parametrize("nl", ["relu", "gelu", "solu"])
@pytest.mark.parametrize("use_l1", [False, True])
def test_hand_written_gradient_matches_autograd(nl, use_l1):
    I, B, k, m, out = 3, 17, 11, 5, 7
    model = _random_model(I, k, m, out, nl)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(I, B, m, generator=g, dtype=torch.float64)
    target = torch.rand(I, B, out, generator=g, dtype=torch.float64)
    l1 = torch.tensor([0.0, 0.1, 0.3], dtype=torch.float64).view(I, 1, 1) if use_l1 else None

    grad = torch.zeros_like(model.flat)
    loss = loss_and_grad(model, x, target, grad, l1)

    flat = model.flat.clone().requires_grad_(True)
    ref = ToyModel(flat, I, k, m, out, nl)
    h = ref.hidden(x)
    y = torch.bmm(h, ref.W2.transpose(1, 2))
    rec = ((y - target) ** 2).sum((1, 2)) / B
    total = rec + ((l1 * h.abs()).sum((1, 2)) / B if use_l1 else 0)
    total.sum().backward()
    torch.testing.assert_close(
        loss, rec.detach(), msg="loss should be sum of squares / batch, without the l1 term"
    )
    torch.testing.assert_close(grad, flat.grad, msg=f"gradient of the {nl} model is wrong")


def test_shared_target_broadcasts_over_instances():
    model = _random_model(2, 6, 4, 5, "relu")
    x = torch.randn(2, 9, 4, dtype=torch.float64)
    t = torch.rand(1, 9, 5, dtype=torch.float64)
    g1, g2 = torch.zeros_like(model.flat), torch.zeros_like(model.flat)
    l1 = loss_and_grad(model, x, t, g1)
    l2 = loss_and_grad(model, x, t.expand(2, 9, 5).contiguous(), g2)
    torch.testing.assert_close(l1, l2)
    torch.testing.assert_close(g1, g2)


def _blocks(model):
    n1, nb, n2 = ToyModel.sizes(model.I, model.k, model.m, model.out)
    return [(0, n1), (n1, nb), (n1 + nb, n2)]


def _per_instance_params(model, i):
    W1, b, W2 = model.split()
    return [nn.Parameter(W1[i].clone()), nn.Parameter(b[i].clone()), nn.Parameter(W2[i].clone())]


@pytest.mark.parametrize("kind", ["lamb", "adam"])
def test_batched_optimizer_matches_plain_reference_step_by_step(kind):
    I = 3
    model = _random_model(I, 8, 4, 6, "relu")
    lrs = torch.tensor([0.01, 0.003, 0.03], dtype=torch.float64)
    opt = (BatchedLamb if kind == "lamb" else BatchedAdam)(model.flat, _blocks(model), I)
    refs = []
    for i in range(I):
        params = _per_instance_params(model, i)
        ref = (
            ReferenceLamb(params, lr=float(lrs[i]))
            if kind == "lamb"
            else torch.optim.Adam(params, lr=float(lrs[i]))
        )
        refs.append((params, ref))
    g = torch.Generator().manual_seed(0)
    for step in range(25):
        grad = torch.randn(model.flat.shape, generator=g, dtype=torch.float64) * (1 + step % 3)
        opt.step(grad, lrs)
        gW1, gb, gW2 = model.split(grad)
        for i, (params, ref) in enumerate(refs):
            for p, gr in zip(params, (gW1[i], gb[i], gW2[i])):
                p.grad = gr.clone()
            ref.step()
        W1, b, W2 = model.split()
        for i, (params, _) in enumerate(refs):
            for name, mine, theirs in zip(("W1", "b", "W2"), (W1[i], b[i], W2[i]), params):
                torch.testing.assert_close(
                    mine,
                    theirs.detach(),
                    msg=f"{kind}: {name} of instance {i} differs at step {step}",
                )


def test_lamb_trust_ratio_is_one_where_a_norm_is_zero():
    # W1 starts at zero weights (||w|| = 0), b never gets a gradient (||u|| = 0): both take
    # trust 1, as torch-optimizer's Lamb does, for 2 instances side by side.
    I = 2
    model = _random_model(I, 4, 3, 5, "relu", seed=1)
    model.split()[0].zero_()
    lrs = torch.tensor([0.1, 0.02], dtype=torch.float64)
    opt = BatchedLamb(model.flat, _blocks(model), I)
    refs = [_per_instance_params(model, i) for i in range(I)]
    ref_opts = [ReferenceLamb(ps, lr=float(lrs[i])) for i, ps in enumerate(refs)]
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        grad = torch.randn(model.flat.shape, generator=g, dtype=torch.float64)
        model.split(grad)[1].zero_()
        opt.step(grad, lrs)
        for ps, ro, i in zip(refs, ref_opts, range(I)):
            for p, gr in zip(ps, model.split(grad)):
                p.grad = gr[i].clone()
            ro.step()
    for i in range(I):
        for name, mine, theirs in zip(("W1", "b", "W2"), model.split(), refs[i]):
            torch.testing.assert_close(
                mine[i], theirs.detach(), msg=f"{name} of instance {i} differs"
            )


def test_lamb_trust_ratio_clamps_weight_norm_at_10():
    # A tensor with norm 100 moves by lr * 10 (the clamp), not lr * 100.
    flat = torch.full((4,), 50.0, dtype=torch.float64)  # norm 100
    opt = BatchedLamb(flat, [(0, 4)], 1)
    before = flat.clone()
    opt.step(torch.ones(4, dtype=torch.float64), torch.tensor([0.1], dtype=torch.float64))
    assert math.isclose(float((flat - before).norm()), 0.1 * 10, rel_tol=1e-6)


def test_schedules():
    cos = schedule_multipliers("cosine", 100)
    assert cos[0] == 1 and abs(cos[50] - 0.5) < 1e-12 and cos[-1] < 0.001
    paper = schedule_multipliers("paper", 2048)
    assert paper[0] == 1 and paper[512] < 1e-12 and abs(paper[1024] - 1) < 1e-12, (
        "paper schedule has period 1024"
    )
    # Same as torch's CosineAnnealingLR(T_max=512) stepped once per step.
    p = nn.Parameter(torch.zeros(1))
    o = torch.optim.SGD([p], lr=1.0)
    s = torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=512)
    ref = []
    for _ in range(1500):
        ref.append(o.param_groups[0]["lr"])
        o.step()
        s.step()
    torch.testing.assert_close(
        paper[:1500], torch.tensor(ref, dtype=torch.float64), atol=1e-9, rtol=0
    )
    assert (schedule_multipliers("constant", 5) == 1).all()


def _assert_matches_plain_recipe(configs, label):
    run = train(configs, progress=False)
    W1, b, W2 = run.model.split()
    for i, c in enumerate(configs):
        net = plain_train(c)
        torch.testing.assert_close(
            W1[i],
            net[0].weight.detach(),
            msg=f"{label}: W1 of instance {i} differs from the plain recipe",
        )
        torch.testing.assert_close(
            b[i], net[0].bias.detach(), msg=f"{label}: bias (decay?) differs from the plain recipe"
        )
        torch.testing.assert_close(
            W2[i], net[2].weight.detach(), msg=f"{label}: W2 of instance {i} differs"
        )


@pytest.mark.parametrize("task", ["decoder", "reprojector", "abs"])
def test_train_matches_a_plain_implementation_of_the_recipe(task):
    base = preset("tiny", steps=60, dtype="float64", task=task, schedule="paper")
    configs = [
        base.replace(lr=0.01, init_bias=-0.5, bias_decay=3.0, seed=1),
        base.replace(lr=0.003, l1=0.01, seed=2),
    ]
    _assert_matches_plain_recipe(configs, task)


@pytest.mark.parametrize("nl", ["relu", "gelu", "solu"])
def test_every_nonlinearity_trains_as_the_plain_reference_does(nl):
    base = preset("tiny", steps=60, dtype="float64", nonlinearity=nl)
    configs = [
        base.replace(lr=0.01, init_bias=-0.5, bias_decay=3.0, seed=1),
        base.replace(lr=0.003, l1=0.01, seed=2),
    ]
    _assert_matches_plain_recipe(configs, nl)


def test_adam_trains_as_the_plain_reference_does():
    base = preset("tiny", steps=40, dtype="float64", optimizer="adam", nonlinearity="gelu")
    _assert_matches_plain_recipe([base.replace(seed=4, l1=0.01)], "adam")


@pytest.mark.parametrize("nl", ["relu", "gelu", "solu"])
def test_naive_trainer_runs_every_nonlinearity(nl):
    model, losses, seconds = naive_train(preset("tiny", nonlinearity=nl), steps=5)
    assert len(losses) == 5 and all(math.isfinite(v) for v in losses) and seconds >= 0
    x = torch.rand(3, 8)
    assert torch.equal(model[1](x), activation(x, nl)), "naive_train's act is not the registry's"


def test_naive_trainer_times_only_the_steps_after_warmup(monkeypatch):
    import monosem_lib.core.reference as reference

    ticks = iter(range(10**6))
    monkeypatch.setattr(reference.time, "perf_counter", lambda: float(next(ticks)))
    real_step = reference.ReferenceLamb.step

    def counting_step(self, closure=None):
        next(ticks)  # each optimizer step advances the fake clock by one tick
        return real_step(self, closure)

    monkeypatch.setattr(reference.ReferenceLamb, "step", counting_step)
    cfg = preset("tiny")
    whole = naive_train(cfg, steps=6).seconds
    after = naive_train(cfg, steps=6, warmup=4).seconds
    assert whole - after == 4, f"warmup=4 should leave 4 steps' ticks out ({whole} vs {after})"
    for bad in (-1, 6):
        with pytest.raises(ValueError, match=f"warmup={bad}"):
            naive_train(cfg, steps=6, warmup=bad)


def test_nonlinearity_registry_is_the_config_list():
    assert tuple(ACTIVATIONS) == NONLINEARITIES
    with pytest.raises(ValueError, match="must be one of relu, gelu, solu"):
        activation(torch.zeros(1), "tanh")


def _train_with_fused_backward(enabled, config):
    previous = set_fused_backward(enabled)
    try:
        return train(config, progress=False)
    finally:
        set_fused_backward(previous)


@pytest.mark.parametrize("l1", [0.0, 0.01])
def test_portable_relu_backward_trains_the_same(l1):
    c = preset("tiny", steps=120, instances=2, l1=l1, init_bias=-0.3)
    fused = _train_with_fused_backward(True, c)
    portable = _train_with_fused_backward(False, c)
    # The fallback computes the same numbers, not just close ones.
    torch.testing.assert_close(portable.model.flat, fused.model.flat, rtol=0, atol=0)
    torch.testing.assert_close(portable.loss_history, fused.loss_history, rtol=0, atol=0)


def test_environment_variable_starts_with_the_portable_backward():
    import os
    import subprocess
    import sys

    code = "from monosem_lib.core.step import fused_backward; print(fused_backward())"
    env = {**os.environ, "MONOSEM_PORTABLE_BACKWARD": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_a_missing_fused_op_falls_back_by_itself(monkeypatch):
    import monosem_lib.core.step as training

    c = preset("tiny", steps=30)
    want = _train_with_fused_backward(True, c)

    def missing():
        raise AttributeError("'_OpNamespace' 'aten' object has no attribute 'threshold_backward'")

    previous = set_fused_backward(True)
    monkeypatch.setattr(training, "_fused_relu_op", missing)
    try:
        with pytest.warns(RuntimeWarning, match="portable"):
            got = train(c, progress=False)
        assert not fused_backward(), "the fallback should stay on once the op failed"
    finally:
        set_fused_backward(previous)
    torch.testing.assert_close(got.model.flat, want.model.flat, rtol=0, atol=1e-6)


@pytest.mark.parametrize("task", ["decoder", "abs", "reprojector"])
def test_an_instance_trains_the_same_alone_or_in_a_batch(task):
    c = preset("tiny", steps=80, dtype="float64", task=task)
    alone = train(c.replace(seed=3), progress=False)
    # Worlds in instance order (each world writes its own slot) and shared by two instances.
    pair = train([c.replace(seed=1), c.replace(seed=3)], progress=False)
    torch.testing.assert_close(pair.model.select(1).flat, alone.model.flat)
    batch = train(
        [c.replace(seed=1), c.replace(seed=3, lr=0.02), c.replace(seed=3)], progress=False
    )
    torch.testing.assert_close(batch.model.select(2).flat, alone.model.flat)
    assert not torch.allclose(batch.model.select(1).flat, alone.model.flat), "lr should matter"


def test_instances_sharing_a_seed_share_projection_and_data():
    run = train(
        [preset("tiny", steps=5, lr=0.01), preset("tiny", steps=5, lr=0.001)], progress=False
    )
    assert torch.equal(run.P[0], run.P[1])
    assert not torch.equal(run.model.flat[:10], torch.zeros(10))


def test_checkpoints_at_powers_of_two_and_the_end():
    run = train(preset("tiny", steps=100), progress=False)
    assert sorted(run.checkpoints) == [1, 2, 4, 8, 16, 32, 64, 100]
    torch.testing.assert_close(run.checkpoint_model(100).flat, run.model.flat)
    assert run.loss_history.shape == (100, 1)
    with pytest.raises(KeyError, match="no checkpoint"):
        run.checkpoint_model(3)


def test_divergence_names_step_instance_and_config():
    good = preset("tiny", steps=50)
    bad = good.replace(init_bias=1e30, seed=9)
    with pytest.raises(TrainingDiverged) as err:
        train([good, bad], progress=False)
    e = err.value
    assert e.instance == 1 and e.step == 0
    msg = str(e)
    assert "step 0" in msg and "instance 1" in msg and "seed=9" in msg and "init_bias=1e+30" in msg


def test_structure_must_match_in_one_pass_and_train_many_splits():
    from monosem_lib.core.config import ConfigError

    with pytest.raises(ConfigError, match="share k"):
        train([preset("tiny"), preset("tiny", k=64)], progress=False)
    runs = train_many(
        [
            preset("tiny", steps=10),
            preset("tiny", steps=10, k=64),
            preset("tiny", steps=10, seed=2),
        ],
        progress=False,
    )
    assert [r.instances for r in runs] == [2, 1]
    assert runs[1].config.k == 64


def test_callback_sees_progress_and_can_stop():
    seen = []

    def cb(step, model, losses):
        seen.append((step, losses.shape[0]))
        return step < 40

    run = train(preset("tiny", steps=100), progress=False, callback=cb, callback_every=20)
    assert seen == [(20, 20), (40, 40)]
    assert run.stopped_at == 40 and run.steps_done == 40 and 40 in run.checkpoints


def test_bias_decay_pulls_bias_to_zero_in_first_half_only():
    c = preset("tiny", steps=200, init_bias=-1.0, bias_decay=50.0, lr=0.01)
    run = train(c, progress=False)
    mid = run.checkpoint_model(64).b.abs().mean()
    none = train(c.replace(bias_decay=0.0), progress=False).checkpoint_model(64).b.abs().mean()
    assert mid < 0.5 * none, "bias decay should shrink biases during the first half"


def test_select():
    run = train(
        [preset("tiny", steps=5, lr=lr) for lr in (0.01, 0.02)]
        + [preset("tiny", steps=5, lr=0.01, seed=1)],
        progress=False,
    )
    idx = Results.from_run(run).where(lr=0.01)  # selection lives in the results layer
    assert idx == [0, 2]
    sub = run.select(idx)
    assert sub.instances == 2 and sub.loss_history.shape == (5, 2)
    torch.testing.assert_close(sub.model.select(1).flat, run.model.select(2).flat)


def test_results_read_weights_through_select_and_concat():
    run = train([preset("tiny", steps=5, lr=lr) for lr in (0.01, 0.02, 0.03)], progress=False)
    res = Results.from_run(run)
    picked = res.select([2, 0])
    torch.testing.assert_close(picked.run(0).model.flat, run.model.select(2).flat)
    both = Results.concat([picked, res])
    torch.testing.assert_close(both.run(1).model.flat, run.model.select(0).flat)
    torch.testing.assert_close(both.run(3).model.flat, run.model.select(1).flat)
    torch.testing.assert_close(both.stats(3).sfa, res.stats(1).sfa)
    with pytest.raises(ValueError, match="no weights"):
        Results(res.configs, res.metrics).run(0)


def test_decay_that_follows_the_rate_trains_as_the_plain_reference_does():
    """decay_schedule rate scales each step's decay by the schedule's multiplier; in the
    troughs of the periodic cosine it then all but stops, unlike the flat decay."""
    base = preset("tiny", steps=1100, dtype="float64", schedule="paper")
    rate = base.replace(decay_schedule="rate")
    configs = [rate.replace(lr=0.01, init_bias=-0.5, bias_decay=3.0, seed=1)]
    _assert_matches_plain_recipe(configs, "rate decay")
    flat = train([configs[0].replace(decay_schedule="flat")], progress=False).model.split()[1]
    follows = train(configs, progress=False).model.split()[1]
    assert not torch.allclose(flat, follows), "the decay's schedule changed nothing"
    with pytest.raises(ConfigError, match="decay_schedule"):
        base.replace(decay_schedule="troughs")
