"""Training: the paper's recipe for a whole batch of instances in one pass.

``train(configs)`` trains every instance of ``configs`` together: one forward and backward
pass through batched matmuls per step, gradients written by hand into a flat buffer (no
autograd), one batched optimizer step, then bias decay during the first half of training.
Checkpoints are kept after 1, 2, 4, 8 ... steps (and the last step), as in the paper.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from .config import INSTANCE_FIELDS, STRUCTURAL_FIELDS, Config, ConfigError
from .data import World, derive_seed, make_world, resolve_device
from .model import ToyModel, activation, activation_grad, init_params
from .optim import make_optimizer, schedule_multipliers

__all__ = [
    "Run",
    "TrainingDiverged",
    "train",
    "train_many",
    "as_instances",
    "group_by_structure",
    "loss_and_grad",
    "show_progress",
]

CHECK_EVERY = 256  # steps between divergence checks (each one syncs a GPU)


class TrainingDiverged(RuntimeError):
    """The loss became nan or inf. ``step``, ``instance`` and ``config`` say where."""

    def __init__(self, step: int, instance: int, config: Config, value: float):
        self.step, self.instance, self.config, self.value = step, instance, config, value
        knobs = ", ".join(f"{f}={getattr(config, f)!r}" for f in INSTANCE_FIELDS)
        super().__init__(
            f"training diverged: the loss became {value} at step {step} in instance {instance} "
            f"({knobs}; N={config.N}, m={config.m}, k={config.k}, batch={config.batch}, "
            f"optimizer={config.optimizer}). A smaller lr usually helps."
        )


@dataclass
class Run:
    """A trained batch of instances.

    Attributes:
        configs: one single-instance config per instance.
        model: final weights, W1 [I, k, m], b [I, k], W2 [I, out, k].
        P: [I, m, N] each instance's input projection.
        Q: [I, m, N] re-projector targets' projection, or None.
        loss_history: [steps_done, I] training loss (without the l1 term) at every step.
        checkpoints: step count -> flat weights (on the CPU), at powers of two and the end.
        train_seconds: wall-clock time of the training loop.
        stopped_at: the step count reached when a callback stopped training early, else None.
    """

    configs: tuple[Config, ...]
    model: ToyModel
    P: Tensor
    Q: Tensor | None
    loss_history: Tensor
    checkpoints: dict[int, Tensor] = field(default_factory=dict)
    train_seconds: float = 0.0
    stopped_at: int | None = None

    @property
    def config(self) -> Config:
        """The first instance's config (structure is shared by all)."""
        return self.configs[0]

    @property
    def instances(self) -> int:
        return len(self.configs)

    @property
    def steps_done(self) -> int:
        return self.loss_history.shape[0]

    def checkpoint_model(self, step: int) -> ToyModel:
        """The weights after ``step`` steps (one of ``checkpoints``)."""
        if step not in self.checkpoints:
            raise KeyError(f"no checkpoint at step {step}; have {sorted(self.checkpoints)}")
        m = self.model
        return ToyModel(
            self.checkpoints[step].to(m.flat.device), m.I, m.k, m.m, m.out, m.nonlinearity
        )

    def select(self, instances: Sequence[int]) -> Run:
        """A run holding only the given instances."""
        idx = list(instances)
        I = self.instances
        ckpts = {
            s: ToyModel(f, I, self.model.k, self.model.m, self.model.out).select(idx).flat
            for s, f in self.checkpoints.items()
        }
        return Run(
            tuple(self.configs[i] for i in idx),
            self.model.select(idx),
            self.P[idx],
            None if self.Q is None else self.Q[idx],
            self.loss_history[:, idx].clone(),
            ckpts,
            self.train_seconds,
            self.stopped_at,
        )

    def where(self, **values) -> list[int]:
        """Indices of the instances whose config matches all ``values`` (floats to 1e-12)."""

        def match(c):
            return all(
                math.isclose(getattr(c, k), v, rel_tol=1e-9, abs_tol=1e-12)
                if isinstance(v, float)
                else getattr(c, k) == v
                for k, v in values.items()
            )

        return [i for i, c in enumerate(self.configs) if match(c)]


def as_instances(configs: Config | Iterable[Config]) -> list[Config]:
    """Expand a config, or several, into one single-instance config per instance."""
    if isinstance(configs, Config):
        configs = [configs]
    out: list[Config] = []
    for c in configs:
        if not isinstance(c, Config):
            raise TypeError(f"expected Config objects, got {type(c).__name__}")
        out.extend(c.expand())
    if not out:
        raise ValueError("no configs to train")
    return out


def group_by_structure(configs: Config | Iterable[Config]) -> list[list[Config]]:
    """Instances grouped so that each group can train in one pass (order kept)."""
    groups: dict[tuple, list[Config]] = {}
    for c in as_instances(configs):
        groups.setdefault(c.structure, []).append(c)
    return list(groups.values())


def _check_same_structure(configs: list[Config]) -> None:
    first = configs[0]
    for c in configs[1:]:
        for f in STRUCTURAL_FIELDS:
            if getattr(c, f) != getattr(first, f):
                raise ConfigError(
                    f,
                    getattr(c, f),
                    f"instances trained in one pass must share {f} (got {getattr(first, f)!r} and "
                    f"{getattr(c, f)!r}); use train_many() to train each {f} separately",
                )


def show_progress(progress: bool | None) -> bool:
    """Whether to draw a progress bar: as asked, else only for a person watching (a
    terminal or a notebook), never under pytest or with MONOSEM_QUIET set."""
    if progress is not None:
        return bool(progress)
    if os.environ.get("MONOSEM_QUIET", "") not in ("", "0") or "PYTEST_CURRENT_TEST" in os.environ:
        return False
    if "ipykernel" in sys.modules:
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def loss_and_grad(
    model: ToyModel,
    x: Tensor,
    target: Tensor,
    grad: Tensor,
    l1: Tensor | None = None,
    buffers: dict | None = None,
) -> Tensor:
    """Loss per instance and its gradient, written into ``grad`` (same layout as model.flat).

    Loss of instance i: sum over outputs and batch of (y - target)^2, divided by the batch
    size (the paper's loss), plus ``l1[i] * sum |h| / batch`` when l1 is given.

    Args:
        x: inputs [I, B, m].
        target: [I, B, out], or [1, B, out] shared by all instances.
        grad: flat buffer receiving d loss / d weights.
        l1: [I, 1, 1] activation penalties, or None.
        buffers: reused scratch tensors (avoids reallocating large buffers every step).
    Returns:
        The reconstruction loss (without the l1 term) per instance, [I].
    """
    I, B = x.shape[0], x.shape[1]
    buf = {} if buffers is None else buffers
    key = (model.flat.data_ptr(), grad.data_ptr())
    if buf.get("views_of") != key:
        buf["views_of"], buf["views"] = key, (model.split(), model.split(grad))
    (W1, b, W2), (gW1, gb, gW2) = buf["views"]
    if buf.get("shape") != (I, B, model.k, model.out, x.dtype, x.device):
        buf.clear()
        buf["shape"] = (I, B, model.k, model.out, x.dtype, x.device)
        buf["H"] = x.new_empty(I, B, model.k)
        buf["DH"] = x.new_empty(I, B, model.k)
        buf["Y"] = x.new_empty(I, B, model.out)
    H, DH, Y = buf["H"], buf["DH"], buf["Y"]
    relu = model.nonlinearity == "relu"

    torch.baddbmm(b.unsqueeze(1), x, W1.transpose(1, 2), out=H)
    if relu:
        H.clamp_(min=0)  # H now holds h; h > 0 exactly where the preactivation is
        h = H
    else:
        pre = H
        h = activation(pre, model.nonlinearity)
    torch.bmm(h, W2.transpose(1, 2), out=Y)
    Y.sub_(target)
    loss = torch.linalg.vector_norm(Y, dim=(1, 2)).square_().div_(B)
    # d loss / d y = 2 (y - target) / B; the factor rides on the matmuls' alpha.
    torch.baddbmm(gW2, Y.transpose(1, 2), h, beta=0, alpha=2.0 / B, out=gW2)
    torch.baddbmm(DH, Y, W2, beta=0, alpha=2.0 / B, out=DH)
    if relu:
        if l1 is not None:
            DH.add_(l1 / B)  # sign(h) = 1 wherever the mask below keeps the gradient
        # Fused ReLU backward; a boolean mask (masked_fill_) is ~10x slower on CPU.
        torch.ops.aten.threshold_backward.grad_input(DH, H, 0.0, grad_input=DH)
    else:
        if l1 is not None:
            DH.add_(torch.sign(h) * (l1 / B))
        DH.mul_(activation_grad(pre, model.nonlinearity))
    torch.bmm(DH.transpose(1, 2), x, out=gW1)
    torch.sum(DH, dim=1, out=gb)
    return loss


def _init_model(configs: list[Config], device: torch.device, dtype: torch.dtype) -> ToyModel:
    first = configs[0]
    W1s, bs, W2s = [], [], []
    for c in configs:
        W1, b, W2 = init_params(
            c.k,
            c.m,
            c.out_dim,
            torch.Generator().manual_seed(derive_seed(c.seed, "init")),
            c.init_bias,
        )
        W1s.append(W1), bs.append(b), W2s.append(W2)
    model = ToyModel.from_weights(
        torch.stack(W1s), torch.stack(bs), torch.stack(W2s), first.nonlinearity
    )
    model.flat = model.flat.to(device, dtype)
    return model


def _world_key(c: Config) -> tuple:
    return (c.seed, c.eps, c.feature_dist)


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def train(
    configs: Config | Iterable[Config],
    *,
    progress: bool | None = None,
    callback: Callable[[int, ToyModel, Tensor], bool | None] | None = None,
    callback_every: int = 250,
    checkpoints: bool = True,
) -> Run:
    """Train every instance of ``configs`` in one batched pass.

    Args:
        configs: a Config (its ``instances`` copies get seeds seed, seed+1, ...) or several
            Configs sharing their structural fields; they may differ in eps, feature_dist,
            lr, init_bias, bias_decay, l1 and seed.
        progress: draw a tqdm bar; None decides by itself (see ``show_progress``).
        callback: called as ``callback(steps_done, model, loss_history_so_far)`` every
            ``callback_every`` steps and at the end; returning False stops training early.
        checkpoints: keep weights after 1, 2, 4, ... steps.
    Returns:
        A :class:`Run`.
    Raises:
        TrainingDiverged: the loss of some instance became nan or inf.
    """
    insts = as_instances(configs)
    _check_same_structure(insts)
    first = insts[0]
    device = resolve_device(first.device)
    dtype = getattr(torch, first.dtype)
    I, B, steps = len(insts), first.batch, first.steps

    # One world per distinct (seed, eps, feature_dist); instances index into them.
    keys: list[tuple] = []
    inst_world = []
    for c in insts:
        key = _world_key(c)
        if key not in keys:
            keys.append(key)
        inst_world.append(keys.index(key))
    worlds: list[World] = [
        make_world(next(c for c in insts if _world_key(c) == key)) for key in keys
    ]
    W = len(worlds)
    identity = inst_world == list(range(I))
    index = torch.tensor(inst_world, device=device)

    model = _init_model(insts, device, dtype)
    grad = torch.zeros_like(model.flat)
    n1, nb, n2 = ToyModel.sizes(I, model.k, model.m, model.out)
    blocks = [(0, n1), (n1, nb), (n1 + nb, n2)]
    opt = make_optimizer(first.optimizer, model.flat, blocks, I)
    b_view = model.split()[1]

    base_lr = torch.tensor([c.lr for c in insts], dtype=dtype, device=device)
    mult = schedule_multipliers(first.schedule, steps).tolist()
    decays = [c.bias_decay * c.lr for c in insts]
    decay_factor = (
        torch.tensor([1 - d for d in decays], dtype=dtype, device=device).unsqueeze(1)
        if any(decays)
        else None
    )
    decay_until = steps / 2
    l1 = (
        torch.tensor([c.l1 for c in insts], dtype=dtype, device=device).view(I, 1, 1)
        if any(c.l1 for c in insts)
        else None
    )

    history = torch.empty(steps, I, dtype=dtype, device=device)
    ckpts: dict[int, Tensor] = {}
    buffers: dict = {}
    stopped_at = None
    chunk = worlds[0].chunk  # the same for every world: it depends on batch and N only

    def next_chunk() -> tuple[Tensor, Tensor]:
        """Inputs [C, I, B, m] and targets [C, I or 1, B, out] for the next C steps."""
        parts = [w.sample_chunk() for w in worlds]
        if W == 1:
            return parts[0][1].unsqueeze(1).expand(chunk, I, B, first.m), parts[0][2].unsqueeze(1)
        x = torch.stack([p[1] for p in parts], 1)
        t = torch.stack([p[2] for p in parts], 1)
        if not identity:
            x, t = x.index_select(1, index), t.index_select(1, index)
        return x, t

    bar = None
    if show_progress(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, unit="step", desc=f"training {I} model{'s' * (I > 1)}", leave=False)

    def check(upto: int, since: int) -> None:
        window = history[since:upto]
        if not bool(torch.isfinite(window).all()):
            bad = (~torch.isfinite(window)).nonzero()[0].tolist()
            step, inst = since + bad[0], bad[1]
            raise TrainingDiverged(step, inst, insts[inst], float(window[bad[0], bad[1]]))

    start = time.perf_counter()
    checked = 0
    try:
        for t in range(steps):
            if t % chunk == 0:
                xs, ts = next_chunk()
            x, target = xs[t % chunk], ts[t % chunk]
            loss = loss_and_grad(model, x, target, grad, l1, buffers)
            opt.step(grad, base_lr * mult[t])
            if decay_factor is not None and t < decay_until:
                b_view.mul_(decay_factor)
            history[t] = loss
            done = t + 1
            if checkpoints and _is_power_of_two(done):
                ckpts[done] = model.flat.detach().to("cpu", copy=True)
            if done % CHECK_EVERY == 0:
                check(done, checked)
                checked = done
            if bar is not None and (done % 100 == 0 or done == steps):
                bar.update(done - bar.n)
                bar.set_postfix(loss=f"{float(loss.mean()):.4g}", refresh=False)
            if callback is not None and done % callback_every == 0 and done < steps:
                if callback(done, model, history[:done]) is False:
                    stopped_at = done
                    break
        end = stopped_at or steps
        check(end, checked)
    finally:
        if bar is not None:
            bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    end = stopped_at or steps
    if checkpoints and end not in ckpts:
        ckpts[end] = model.flat.detach().to("cpu", copy=True)
    if callback is not None and stopped_at is None:
        callback(end, model, history[:end])

    P = torch.stack([worlds[w].P for w in inst_world])
    Q = torch.stack([worlds[w].Q for w in inst_world]) if first.task == "reprojector" else None
    return Run(
        tuple(insts),
        model,
        P,
        Q,
        history[:end].detach().to("cpu", copy=True),
        ckpts,
        seconds,
        stopped_at,
    )


def train_many(configs: Config | Iterable[Config], **kwargs) -> list[Run]:
    """Train configs that may differ in structure (k, task...): one pass per structure."""
    return [train(group, **kwargs) for group in group_by_structure(configs)]
