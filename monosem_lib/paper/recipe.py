"""The bias-decay recipe: how hard bias decay pulls, and how to set it for a run.

Bias decay multiplies every bias by ``1 - d * lr`` after each step of the first half of
training, whatever the scheduled rate at that step. Several quantities could be what a good
recipe keeps fixed when the run length T, the rate or the schedule changes (``CANDIDATES``):

- ``S = d * lr * ceil(T/2)``, the total shrink (``total_shrink``): biases are pulled in by
  about ``exp(-S)`` over the first half;
- ``d`` itself, the shrink per unit of base learning rate;
- ``d * lr``, the shrink per step;
- ``d / <m>``, the shrink per unit of *scheduled* learning rate, where ``<m>`` is the mean
  schedule multiplier over the first half (1 for a constant rate, about 0.82 for one
  half-cosine, about 0.5 for the paper's periodic cosine).

``decay_study`` measures which of them stays fixed at the best decay.
"""

from __future__ import annotations

import math

from ..core.config import Config, ConfigError
from ..core.optim import schedule_multipliers

__all__ = [
    "CANDIDATES",
    "total_shrink",
    "decay_for_shrink",
    "mean_multiplier",
    "candidates",
]

# The quantities a recipe could hold fixed, in the order the book reports them.
CANDIDATES = ("S", "d", "d_lr", "d_per_scheduled_lr")


def total_shrink(config: Config) -> float:
    """decay * lr * (steps in the first half): how far bias decay pulls biases in total
    (the product of the per-step factors is about exp(-shrink))."""
    return config.bias_decay * config.lr * math.ceil(config.steps / 2)


def decay_for_shrink(shrink: float, lr: float, steps: int) -> float:
    """The bias_decay giving total ``shrink`` at this lr and run length."""
    if isinstance(shrink, bool) or not math.isfinite(shrink) or shrink < 0:
        raise ConfigError("shrink", shrink, "must be a finite number >= 0")
    return shrink / (lr * math.ceil(steps / 2))


def mean_multiplier(schedule: str, steps: int) -> float:
    """The mean learning-rate multiplier over the first half of a run (where decay acts)."""
    return float(schedule_multipliers(schedule, steps)[: math.ceil(steps / 2)].mean())


def candidates(shrink: float, lr: float, steps: int, schedule: str) -> dict[str, float]:
    """Every candidate invariant (``CANDIDATES``) of the decay that gives total ``shrink``."""
    d = decay_for_shrink(shrink, lr, steps)
    return {
        "S": shrink,
        "d": d,
        "d_lr": d * lr,
        "d_per_scheduled_lr": d / mean_multiplier(schedule, steps),
    }
