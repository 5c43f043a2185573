"""Training: the paper's recipe for a whole batch of instances in one pass.

``train(configs)`` trains every instance of ``configs`` together: one forward and backward
pass through batched matmuls per step, gradients written by hand into a flat buffer (no
autograd), one batched optimizer step, then bias decay during the first half of training.
Checkpoints are kept after 1, 2, 4, 8 ... steps (and the last step), as in the paper.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .config import INSTANCE_FIELDS, STRUCTURAL_FIELDS, Config, ConfigError
from .data import Batch, World, derive_seed, make_world, resolve_device
from .model import ToyModel, init_params
from .optim import BatchedAdam, BatchedLamb, make_optimizer, schedule_multipliers
from .resources import check_memory
from .step import loss_and_grad

__all__ = [
    "Run",
    "TrainingDiverged",
    "train",
    "train_many",
    "as_instances",
    "group_by_structure",
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
        """The weights after ``step`` steps (one of ``checkpoints``), as a ToyModel of I
        instances (W1 [I, k, m], b [I, k], W2 [I, out, k])."""
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


def init_model(configs: list[Config], device: torch.device, dtype: torch.dtype) -> ToyModel:
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
        W1s.append(W1)
        bs.append(b)
        W2s.append(W2)
    model = ToyModel.from_weights(
        torch.stack(W1s), torch.stack(bs), torch.stack(W2s), first.nonlinearity
    )
    model.flat = model.flat.to(device, dtype)
    return model


def _world_key(c: Config) -> tuple:
    return (c.seed, c.eps, c.feature_dist)


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


@dataclass
class _Data:
    """The worlds one pass draws from: one per distinct (seed, eps, feature_dist), and the
    world each instance reads (``inst_world``, [I])."""

    worlds: list[World]
    inst_world: list[int]
    index: Tensor
    batch: int
    m: int
    slots: Batch | None = None

    @classmethod
    def build(cls, insts: list[Config], device: torch.device) -> _Data:
        keys: list[tuple] = []
        inst_world = []
        for c in insts:
            key = _world_key(c)
            if key not in keys:
                keys.append(key)
            inst_world.append(keys.index(key))
        worlds = [make_world(next(c for c in insts if _world_key(c) == key)) for key in keys]
        index = torch.tensor(inst_world, device=device)
        return cls(worlds, inst_world, index, insts[0].batch, insts[0].m)

    @property
    def chunk(self) -> int:
        """Steps of data drawn at once (the same for every world: it depends on batch, N)."""
        return self.worlds[0].chunk

    def next_chunk(self) -> tuple[Tensor, Tensor]:
        """Inputs [C, I, B, m] and targets [C, I or 1, B, out] for the next C steps."""
        I, C, B = len(self.inst_world), self.chunk, self.batch
        if len(self.worlds) == 1:
            _, x, t = self.worlds[0].sample_chunk()
            return x.unsqueeze(1).expand(C, I, B, self.m), t.unsqueeze(1)
        # Each world writes its chunk into its slot of one buffer: no stacking copy.
        slots = self._slots()
        for w, world in enumerate(self.worlds):
            world.sample_chunk(Batch(*(s[w] for s in slots)))
        x, t = (s.view(len(self.worlds), C, B, -1).transpose(0, 1) for s in slots[1:])
        if self.inst_world != list(range(I)):
            x, t = x.index_select(1, self.index), t.index_select(1, self.index)
        return x, t

    def _slots(self) -> Batch:
        """f [W, C*B, N], x [W, C*B, m] and target [W, C*B, out] (the decoder's is f),
        allocated at the first chunk and refilled in place after."""
        if self.slots is None:
            cfg, P = self.worlds[0].config, self.worlds[0].P
            rows = (len(self.worlds), self.chunk * self.batch)
            f = P.new_empty(*rows, cfg.N)
            target = f if cfg.task == "decoder" else P.new_empty(*rows, cfg.out_dim)
            self.slots = Batch(f, P.new_empty(*rows, cfg.m), target)
        return self.slots

    def projections(self, task: str) -> tuple[Tensor, Tensor | None]:
        """Each instance's P [I, m, N] and, for the re-projector, Q [I, m, N]."""
        P = torch.stack([self.worlds[w].P for w in self.inst_world])
        if task != "reprojector":
            return P, None
        Qs = [self.worlds[w].Q for w in self.inst_world]
        present = [Q for Q in Qs if Q is not None]
        if len(present) != len(Qs):
            raise ValueError("the re-projector task needs every world's second projection Q")
        return P, torch.stack(present)


@dataclass
class _Hyper:
    """Per-instance knobs as tensors: ``base_lr`` [I], the schedule's multiplier per step
    ``mult`` [steps], ``decay_factor`` [I, 1] (None without bias decay), applied while
    step < ``decay_until`` (``decay_lr`` [I, 1], bias_decay * lr, when the decay follows the
    scheduled rate: the factor at step t is then 1 - decay_lr * mult[t]), and ``l1`` [I, 1, 1]
    (None without a penalty)."""

    base_lr: Tensor
    mult: list[float]
    decay_factor: Tensor | None
    decay_until: float
    l1: Tensor | None
    decay_lr: Tensor | None = None

    @classmethod
    def build(cls, insts: list[Config], dtype: torch.dtype, device: torch.device) -> _Hyper:
        first, I = insts[0], len(insts)
        decays = [c.bias_decay * c.lr for c in insts]
        decay_factor = (
            torch.tensor([1 - d for d in decays], dtype=dtype, device=device).unsqueeze(1)
            if any(decays)
            else None
        )
        l1 = (
            torch.tensor([c.l1 for c in insts], dtype=dtype, device=device).view(I, 1, 1)
            if any(c.l1 for c in insts)
            else None
        )
        follows = decay_factor is not None and first.decay_schedule == "rate"
        return cls(
            torch.tensor([c.lr for c in insts], dtype=dtype, device=device),
            schedule_multipliers(first.schedule, first.steps).tolist(),
            decay_factor,
            first.steps / 2,
            l1,
            1 - decay_factor if follows and decay_factor is not None else None,
        )


@dataclass
class _State:
    """What the step loop updates: weights, gradient buffer, optimizer, loss history [steps,
    I], checkpoints and scratch buffers."""

    model: ToyModel
    grad: Tensor
    opt: BatchedLamb | BatchedAdam
    b_view: Tensor
    history: Tensor
    ckpts: dict[int, Tensor] = field(default_factory=dict)
    buffers: dict = field(default_factory=dict)

    @classmethod
    def build(cls, insts: list[Config], dtype: torch.dtype, device: torch.device) -> _State:
        first, I = insts[0], len(insts)
        model = init_model(insts, device, dtype)
        n1, nb, n2 = ToyModel.sizes(I, model.k, model.m, model.out)
        blocks = [(0, n1), (n1, nb), (n1 + nb, n2)]
        opt = make_optimizer(first.optimizer, model.flat, blocks, I)
        history = torch.empty(first.steps, I, dtype=dtype, device=device)
        return cls(model, torch.zeros_like(model.flat), opt, model.split()[1], history)

    def step(self, t: int, x: Tensor, target: Tensor, hyper: _Hyper) -> Tensor:
        """One optimizer step (and bias decay in the first half); returns the loss [I]."""
        loss = loss_and_grad(self.model, x, target, self.grad, hyper.l1, self.buffers)
        self.opt.step(self.grad, hyper.base_lr * hyper.mult[t])
        if hyper.decay_factor is not None and t < hyper.decay_until:
            if hyper.decay_lr is None:
                self.b_view.mul_(hyper.decay_factor)
            else:
                self.b_view.mul_(1 - hyper.decay_lr * hyper.mult[t])
        self.history[t] = loss
        return loss

    def checkpoint(self, done: int) -> None:
        self.ckpts[done] = self.model.flat.detach().to("cpu", copy=True)


def _check_finite(history: Tensor, upto: int, since: int, insts: list[Config]) -> None:
    """Raise TrainingDiverged at the first nan or inf in history[since:upto] ([steps, I])."""
    window = history[since:upto]
    if not bool(torch.isfinite(window).all()):
        bad = (~torch.isfinite(window)).nonzero()[0].tolist()
        step, inst = since + bad[0], bad[1]
        raise TrainingDiverged(step, inst, insts[inst], float(window[bad[0], bad[1]]))


def _progress_bar(progress: bool | None, steps: int, I: int):
    """A tqdm bar over ``steps`` steps, or None when none should be drawn or tqdm (part of
    the ``[book]`` extra, not of the core) is not installed."""
    if not show_progress(progress):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # training runs the same without a bar
        return None

    return tqdm(total=steps, unit="step", desc=f"training {I} model{'s' * (I > 1)}", leave=False)


def _step_loop(
    state: _State,
    data: _Data,
    hyper: _Hyper,
    insts: list[Config],
    bar,
    callback: Callable[[int, ToyModel, Tensor], bool | None] | None,
    callback_every: int,
    checkpoints: bool,
) -> int | None:
    """Every training step, with checkpoints, divergence checks every CHECK_EVERY steps, the
    progress bar and the callback. Returns the step a callback stopped at, else None."""
    steps, chunk = len(hyper.mult), data.chunk
    checked, stopped_at = 0, None
    for t in range(steps):
        if t % chunk == 0:
            xs, ts = data.next_chunk()
        loss = state.step(t, xs[t % chunk], ts[t % chunk], hyper)
        done = t + 1
        if checkpoints and _is_power_of_two(done):
            state.checkpoint(done)
        if done % CHECK_EVERY == 0:
            _check_finite(state.history, done, checked, insts)
            checked = done
        if bar is not None and (done % 100 == 0 or done == steps):
            bar.update(done - bar.n)
            bar.set_postfix(loss=f"{float(loss.mean()):.4g}", refresh=False)
        if callback is not None and done % callback_every == 0 and done < steps:
            if callback(done, state.model, state.history[:done]) is False:
                stopped_at = done
                break
    _check_finite(state.history, stopped_at or steps, checked, insts)
    return stopped_at


def _finish(
    state: _State,
    data: _Data,
    insts: list[Config],
    stopped_at: int | None,
    seconds: float,
    checkpoints: bool,
) -> Run:
    """The Run: a final checkpoint if none was kept at the last step, history on the CPU."""
    end = stopped_at or insts[0].steps
    if checkpoints and end not in state.ckpts:
        state.checkpoint(end)
    P, Q = data.projections(insts[0].task)
    return Run(
        tuple(insts),
        state.model,
        P,
        Q,
        state.history[:end].detach().to("cpu", copy=True),
        state.ckpts,
        seconds,
        stopped_at,
    )


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
        callback: called as ``callback(steps_done, model, loss_history_so_far)`` (the history
            [steps_done, I]) every ``callback_every`` steps and at the end; returning False
            stops training early.
        checkpoints: keep weights after 1, 2, 4, ... steps.
    Returns:
        A :class:`Run`.
    Raises:
        TrainingDiverged: the loss of some instance became nan or inf.
        ~monosem_lib.core.resources.InsufficientMemory: the pass would need more memory
            than the machine has (``resources.check_memory``), raised before anything is
            allocated.
    """
    insts = as_instances(configs)
    _check_same_structure(insts)
    device = resolve_device(insts[0].device)
    check_memory(insts, device, checkpoints)
    dtype = getattr(torch, insts[0].dtype)
    data = _Data.build(insts, device)
    state = _State.build(insts, dtype, device)
    hyper = _Hyper.build(insts, dtype, device)

    bar = _progress_bar(progress, insts[0].steps, len(insts))
    start = time.perf_counter()
    try:
        stopped_at = _step_loop(
            state, data, hyper, insts, bar, callback, callback_every, checkpoints
        )
    finally:
        if bar is not None:
            bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    run = _finish(state, data, insts, stopped_at, seconds, checkpoints)
    if callback is not None and stopped_at is None:
        callback(run.steps_done, state.model, state.history[: run.steps_done])
    return run


def train_many(configs: Config | Iterable[Config], **kwargs: Any) -> list[Run]:
    """Train configs that may differ in structure (k, task...): one pass per structure."""
    return [train(group, **kwargs) for group in group_by_structure(configs)]
