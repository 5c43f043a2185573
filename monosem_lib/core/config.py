"""Run configuration: one frozen, validated dataclass and named presets.

Every knob of a run lives in :class:`Config`. A config is validated when it is built, so a
bad value fails at once with a message that names the field and what is allowed, never deep
inside training.

Fields split into two kinds. *Structural* fields fix tensor shapes and the training loop
(``N, m, k, task, nonlinearity, batch, steps, optimizer, schedule, decay_schedule, device,
dtype``) and must
agree for runs that train together in one batched pass. *Per-instance* fields (``eps,
feature_dist, lr, init_bias, bias_decay, l1, seed``) may differ between the instances of one
pass, which is how a whole sweep trains at once.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Config",
    "ConfigError",
    "PRESETS",
    "preset",
    "scale",
    "STRUCTURAL_FIELDS",
    "INSTANCE_FIELDS",
    "FEATURE_DISTS",
    "TASKS",
    "NONLINEARITIES",
    "OPTIMIZERS",
    "SCHEDULES",
    "DECAY_SCHEDULES",
    "DTYPES",
    "SCALES",
    "Scale",
    "check_int",
    "check_float",
    "check_choice",
    "check_device",
]

FEATURE_DISTS = ("uniform", "power_law")
TASKS = ("decoder", "reprojector", "abs")
NONLINEARITIES = ("relu", "gelu", "solu")
OPTIMIZERS = ("lamb", "adam")
SCHEDULES = ("cosine", "paper", "constant")
# How bias decay acts over the first half: ``flat`` by 1 - bias_decay * lr at every step,
# ``rate`` by 1 - bias_decay * lr * m_t, m_t the schedule's multiplier at step t (decay
# follows the scheduled rate, so it never acts alone in the troughs of a periodic schedule).
DECAY_SCHEDULES = ("flat", "rate")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Scale:
    """A named scale of the book: its preset (same name), how the text names it, where it
    runs, whether a chapter can run at it (``MONOSEM_SCALE``) and its colour in figures that
    compare scales."""

    name: str
    label: str
    device: str
    chapters: bool
    color: str


# The scales, in the order the book compares them.
SCALES: dict[str, Scale] = {
    s.name: s
    for s in (
        Scale("book", "book scale", "CPU", True, "#f0ad4e"),
        Scale("paper-cpu", "the paper's shape on a CPU", "CPU", False, "#2a7ab9"),
        Scale("paper", "the paper's scale", "GPU", True, "#5cb85c"),
    )
}

STRUCTURAL_FIELDS = (
    "N",
    "m",
    "k",
    "task",
    "nonlinearity",
    "batch",
    "steps",
    "optimizer",
    "schedule",
    "decay_schedule",
    "device",
    "dtype",
)
INSTANCE_FIELDS = ("eps", "feature_dist", "lr", "init_bias", "bias_decay", "l1", "seed")


class ConfigError(ValueError):
    """A config value is not allowed. ``field`` names it, ``allowed`` says what would be."""

    def __init__(self, field: str, value: Any, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}={value!r} is not allowed: {allowed}")


def check_int(name: str, value: Any, minimum: int = 1) -> None:
    """``value`` is an integer (not a bool) of at least ``minimum``, else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, value, f"must be an integer >= {minimum}")
    if value < minimum:
        raise ConfigError(name, value, f"must be an integer >= {minimum}")


def check_float(name: str, value: Any, allowed: str, ok: Callable[[float], bool]) -> None:
    """``value`` is a finite number (not a bool) for which ``ok`` holds, else ConfigError
    saying ``allowed``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, value, allowed)
    if not math.isfinite(value) or not ok(value):
        raise ConfigError(name, value, allowed)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    """``value`` is one of ``choices``, else ConfigError listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(name, value, "must be one of " + ", ".join(choices))


def check_device(value: Any, name: str = "device") -> None:
    """A device a config may name: ``cpu``, ``cuda``, ``cuda:<n>`` or ``auto``."""
    if not isinstance(value, str) or not (
        value in ("cpu", "cuda", "auto")
        or (value.startswith("cuda:") and value[5:].isascii() and value[5:].isdigit())
    ):
        raise ConfigError(name, value, "must be cpu, cuda, cuda:<n> or auto")


@dataclass(frozen=True)
class Config:
    """Everything that defines a run. Defaults are the ``book`` preset's, but for the
    device: the preset's ``auto`` uses a GPU when there is one, a bare Config the CPU.

    Attributes:
        N: number of sparse features.
        m: input dimension of the model (the features are projected into it, ``m <= N``).
        k: neurons in the hidden layer.
        eps: mean probability that a feature is active.
        feature_dist: ``uniform`` (every feature at ``eps``) or ``power_law`` (feature i at a
            probability proportional to i^-1.1, normalised to mean ``eps``, capped at 1).
        task: ``decoder`` (y ~ f), ``reprojector`` (y ~ Q f) or ``abs`` (y ~ abs(f), f signed).
        nonlinearity: ``relu``, ``gelu`` or ``solu`` (x * exp(x), as in the paper's code).
        batch: samples per step.
        steps: optimizer steps.
        lr: base learning rate.
        optimizer: ``lamb`` (the paper's) or ``adam``.
        schedule: ``cosine`` (one half-cosine to 0 over the run), ``paper`` (the reference
            code's periodic CosineAnnealingLR with T_max=512) or ``constant``.
        init_bias: added to the default (``nn.Linear``) bias init.
        bias_decay: during the first half of training, ``b <- b * (1 - bias_decay * lr)``
            after every step (``decay_schedule`` flat).
        decay_schedule: ``flat`` (the above) or ``rate``: ``b <- b * (1 - bias_decay * lr *
            m_t)``, m_t the schedule's multiplier at step t (``DECAY_SCHEDULES``).
        l1: penalty on the activations, ``l1 * sum|h| / batch`` added to the loss.
        seed: fixes the projection P (and Q), the initial weights and the data stream.
        instances: train this many copies with seeds ``seed .. seed + instances - 1``.
        device: ``cpu``, ``cuda``, ``cuda:<n>`` or ``auto`` (cuda when available).
        dtype: ``float32`` or ``float64``.
    """

    N: int = 64
    m: int = 32
    k: int = 256
    eps: float = 1 / 16
    feature_dist: str = "uniform"
    task: str = "decoder"
    nonlinearity: str = "relu"
    batch: int = 256
    steps: int = 8000
    lr: float = 0.01
    optimizer: str = "lamb"
    schedule: str = "cosine"
    decay_schedule: str = "flat"
    init_bias: float = 0.0
    bias_decay: float = 0.0
    l1: float = 0.0
    seed: int = 0
    instances: int = 1
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("N", "m", "k", "batch", "steps", "instances"):
            check_int(name, getattr(self, name))
        check_int("seed", self.seed, minimum=0)
        if self.m > self.N:
            raise ConfigError(
                "m", self.m, f"must be at most N={self.N} (features are projected down)"
            )
        check_float("eps", self.eps, "must be a number in (0, 1]", lambda v: 0 < v <= 1)
        check_float("lr", self.lr, "must be a finite number > 0", lambda v: v > 0)
        check_float("init_bias", self.init_bias, "must be a finite number", lambda v: True)
        check_float("bias_decay", self.bias_decay, "must be a finite number >= 0", lambda v: v >= 0)
        check_float("l1", self.l1, "must be a finite number >= 0", lambda v: v >= 0)
        if self.bias_decay * self.lr >= 1:
            raise ConfigError(
                "bias_decay",
                self.bias_decay,
                f"bias_decay * lr must be below 1 (here lr={self.lr}), or the bias would flip "
                "sign each step",
            )
        check_choice("feature_dist", self.feature_dist, FEATURE_DISTS)
        check_choice("task", self.task, TASKS)
        check_choice("nonlinearity", self.nonlinearity, NONLINEARITIES)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("decay_schedule", self.decay_schedule, DECAY_SCHEDULES)
        check_choice("dtype", self.dtype, DTYPES)
        check_device(self.device)

    # -- derived ---------------------------------------------------------------------------
    @property
    def out_dim(self) -> int:
        """The model's output width (N for decoder and abs, m for the re-projector)."""
        return self.m if self.task == "reprojector" else self.N

    @property
    def flops_per_sample(self) -> int:
        """Training FLOPs per sample, forward (2 matmuls) plus backward (3 matmuls)."""
        fwd = 2 * (self.m * self.k + self.k * self.out_dim)
        return fwd + 2 * self.k * self.out_dim * 2 + 2 * self.m * self.k

    @property
    def structure(self) -> tuple:
        """The structural fields; configs with equal structure can train in one pass."""
        return tuple(getattr(self, f) for f in STRUCTURAL_FIELDS)

    # -- building --------------------------------------------------------------------------
    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied (and validated). Unknown names raise ConfigError."""
        names = {f.name for f in dataclasses.fields(self)}
        for key in changes:
            if key not in names:
                raise ConfigError(
                    key,
                    changes[key],
                    "is not a Config field; fields are " + ", ".join(sorted(names)),
                )
        return dataclasses.replace(self, **changes)

    def expand(self) -> list[Config]:
        """One single-instance config per instance, seeds ``seed .. seed + instances - 1``."""
        return [
            dataclasses.replace(self, seed=self.seed + i, instances=1)
            for i in range(self.instances)
        ]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        return cls().replace(**data)


# The paper's own scale (Jermyn et al. 2022), for a GPU.
_PAPER = Config(
    N=512,
    m=64,
    k=1024,
    eps=1 / 64,
    batch=8192,
    steps=2**17,
    lr=0.003,
    schedule="paper",
    device="auto",
)

PRESETS: dict[str, Config] = {
    # CPU scale: every chapter runs in about a minute (on a GPU when there is one: auto).
    "book": Config(device="auto"),
    "paper": _PAPER,
    # The paper's shape (N, m, k, eps, LAMB, periodic cosine) at 1/256 of its samples, for a
    # CPU: batch 1024 for 2^12 steps (2^22 samples), about 2 minutes a model on two cores.
    # Chapter 7's budget study (data/paper-cpu/budget) shows what the cut costs.
    "paper-cpu": _PAPER.replace(batch=1024, steps=2**12),
    # Smaller than book, for sliders that retrain while the reader watches.
    # Shows the bias effect (mono/N 0.06 -> 0.6 with init bias -1 and B1's shrink of 5.9)
    # and retrains in about 3.5 s on two CPU cores; the book preset takes about 8 s.
    "live": Config(N=32, m=16, k=128, eps=1 / 16, batch=256, steps=5000, device="auto"),
    # Seconds-long runs for unit tests and doc examples.
    "tiny": Config(N=16, m=8, k=32, eps=1 / 8, batch=64, steps=200),
}


def preset(name: str, **overrides: Any) -> Config:
    """The named preset (``book``, ``paper``, ``paper-cpu``, ``live``, ``tiny``) with
    ``overrides`` applied."""
    if name not in PRESETS:
        raise ConfigError("preset", name, "must be one of " + ", ".join(PRESETS))
    return PRESETS[name].replace(**overrides)


def scale() -> str:
    """The book's scale setting: ``book`` unless the environment sets ``MONOSEM_SCALE=paper``.

    Chapters read this one setting, so the same notebook runs at CPU scale in the book and at
    the paper's scale on a GPU.
    """
    value = os.environ.get("MONOSEM_SCALE", "book").strip() or "book"
    allowed = [name for name, sc in SCALES.items() if sc.chapters]
    if value not in allowed:
        raise ConfigError("MONOSEM_SCALE", value, "must be one of " + ", ".join(allowed))
    return value
