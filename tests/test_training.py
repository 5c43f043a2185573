"""Training: gradients, optimizers and the whole recipe against plain references."""

import math

import pytest
import torch
from torch import nn

from monosem_lib.config import preset
from monosem_lib.data import derive_seed, make_world
from monosem_lib.model import ToyModel, init_params
from monosem_lib.optim import BatchedAdam, BatchedLamb, schedule_multipliers
from monosem_lib.reference import ReferenceLamb
from monosem_lib.training import TrainingDiverged, loss_and_grad, train, train_many


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


def _plain_train(c):
    """The recipe written plainly: nn.Sequential, autograd, ReferenceLamb, same data."""
    world = make_world(c)
    W1, b, W2 = init_params(
        c.k, c.m, c.out_dim, torch.Generator().manual_seed(derive_seed(c.seed, "init")), c.init_bias
    )
    net = nn.Sequential(
        nn.Linear(c.m, c.k), nn.ReLU(), nn.Linear(c.k, c.out_dim, bias=False)
    ).double()
    with torch.no_grad():
        net[0].weight.copy_(W1), net[0].bias.copy_(b), net[2].weight.copy_(W2)
    opt = ReferenceLamb(net.parameters(), lr=c.lr)
    mult = schedule_multipliers(c.schedule, c.steps)
    for t in range(c.steps):
        for grp in opt.param_groups:
            grp["lr"] = c.lr * float(mult[t])
        _, x, target = world.sample()
        loss = ((net(x) - target) ** 2).sum() / c.batch + c.l1 * net[1](
            net[0](x)
        ).abs().sum() / c.batch
        opt.zero_grad()
        loss.backward()
        opt.step()
        if t < c.steps / 2:
            with torch.no_grad():
                net[0].bias.mul_(1 - c.bias_decay * c.lr)
    return net


@pytest.mark.parametrize("task", ["decoder", "reprojector", "abs"])
def test_train_matches_a_plain_implementation_of_the_recipe(task):
    base = preset("tiny", steps=60, dtype="float64", task=task, schedule="paper")
    configs = [
        base.replace(lr=0.01, init_bias=-0.5, bias_decay=3.0, seed=1),
        base.replace(lr=0.003, l1=0.01, seed=2),
    ]
    run = train(configs, progress=False)
    W1, b, W2 = run.model.split()
    for i, c in enumerate(configs):
        net = _plain_train(c)
        torch.testing.assert_close(
            W1[i],
            net[0].weight.detach(),
            msg=f"{task}: W1 of instance {i} differs from the plain recipe",
        )
        torch.testing.assert_close(
            b[i], net[0].bias.detach(), msg=f"{task}: bias (decay?) differs from the plain recipe"
        )
        torch.testing.assert_close(W2[i], net[2].weight.detach())


def test_an_instance_trains_the_same_alone_or_in_a_batch():
    c = preset("tiny", steps=80, dtype="float64")
    alone = train(c.replace(seed=3), progress=False)
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
    from monosem_lib.config import ConfigError

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


def test_where_and_select():
    run = train(
        [preset("tiny", steps=5, lr=lr) for lr in (0.01, 0.02)]
        + [preset("tiny", steps=5, lr=0.01, seed=1)],
        progress=False,
    )
    idx = run.where(lr=0.01)
    assert idx == [0, 2]
    sub = run.select(idx)
    assert sub.instances == 2 and sub.loss_history.shape == (5, 2)
    torch.testing.assert_close(sub.model.select(1).flat, run.model.select(2).flat)
