"""The bias-decay recipe: how hard bias decay pulls, and how to set it for a run.

Bias decay multiplies every bias by ``1 - d * lr`` after each step of the first half of
training, whatever the scheduled rate at that step (with ``Config.decay_schedule = "rate"`` by
``1 - d * lr * m_t`` instead, m_t the schedule's multiplier: the decay study's test of whether
decay acting alone in the troughs of the periodic cosine is what moves its best decay).
Several quantities could be what a good recipe keeps fixed when the run length T, the rate or
the schedule changes (``CANDIDATES``):

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
import warnings
from dataclasses import dataclass

from ..core.config import Config, ConfigError
from ..core.optim import schedule_multipliers

__all__ = [
    "CANDIDATES",
    "PAPER_DECAY",
    "total_shrink",
    "decay_for_shrink",
    "mean_multiplier",
    "candidates",
    "DecayRule",
    "DecayRuleWarning",
    "RULES",
    "decay_for",
]

# The quantities a recipe could hold fixed, in the order the book reports them.
CANDIDATES = ("S", "d", "d_lr", "d_per_scheduled_lr")

# The paper's bias decay for its engineered rows (Table 1: LR3, K1, LR5...), at 2^17 steps.
PAPER_DECAY = 0.03


def total_shrink(config: Config) -> float:
    """decay * lr * (steps in the first half): how far bias decay pulls biases in total
    (the product of the per-step factors is about exp(-shrink)). Nominal for decay that
    follows the rate (``decay_schedule`` rate), which pulls about ``mean_multiplier`` times
    as far."""
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


# -- the rule the decay study supports -----------------------------------------------------------


class DecayRuleWarning(UserWarning):
    """``decay_for`` was asked for a rate outside the range its rule holds for."""


@dataclass(frozen=True)
class DecayRule:
    """The decay coefficient that engineers the most monosemantic neurons at no loss cost,
    for one schedule: d* = d0 (T / t0)^(b - 1) (lr / lr0)^(a - 1), for base rates in
    ``lr_range`` (inclusive; ``decay_for`` warns or refuses outside it).

    b = 1 keeps d fixed as the run grows (the total shrink S = d lr T/2 then grows like T);
    b = 0 would keep S fixed. a is the same for the rate: S* ~ lr^a, so a = 1 (the default)
    is no rate term, and a = 1.5 makes d* grow like the square root of the rate. ``d0``,
    ``b``, ``a`` and ``lr_range`` restate the decay study (``decay_study``, ``decay_fit``;
    ``tests/test_decay_study.py`` holds them to the stored study)."""

    d0: float
    b: float
    t0: int = 4000
    lr_range: tuple[float, float] = (0.01, 0.01)
    a: float = 1.0
    lr0: float = 0.01

    def decay(self, steps: int, lr: float | None = None) -> float:
        """d* for a run of ``steps`` steps at base rate ``lr`` (``lr0`` if None)."""
        rate = 1.0 if lr is None else (lr / self.lr0) ** (self.a - 1)
        return self.d0 * (steps / self.t0) ** (self.b - 1) * rate

    def holds_at(self, lr: float) -> bool:
        """Whether base rate ``lr`` lies in the range the rule holds for."""
        lo, hi = self.lr_range
        return lo * (1 - 1e-9) <= lr <= hi * (1 + 1e-9)


# At book scale (data/decay-study/book, lr 0.01): under one half-cosine and a constant rate the
# best decay barely moves with T; under the paper's periodic cosine it falls with T: the
# troughs of the rate leave the decay acting almost alone, so long runs need a weaker one. The
# fit is at lr 0.01. At T = 4000 under the half-cosine no decay engineers at lr 0.003 or 0.03,
# and at 0.03 only d >= 0.4 costs no loss: the rule's d is too weak at the largest rates
# (book-scale LR3 at lr 0.03 shows it, chapter 3).
RULES: dict[str, DecayRule] = {
    "cosine": DecayRule(d0=0.23, b=1.0),
    "constant": DecayRule(d0=0.31, b=0.8),
    "paper": DecayRule(d0=0.13, b=0.55),
}


def decay_for(steps: int, lr: float, schedule: str = "cosine", *, outside: str = "warn") -> float:
    """The bias decay to pair with an initial bias of -1 for a run of ``steps`` steps at base
    rate ``lr`` under ``schedule`` (``RULES``): the one rule the book uses wherever a decay is
    set for a run length. The rule holds for the base rates in its ``DecayRule.lr_range``
    (measured at T = 8000 under the half-cosine, ``decay_fit.rule_range``). Outside that range
    ``outside`` says what happens: ``warn`` (a ``DecayRuleWarning``, the decay still given),
    ``raise`` (ConfigError) or ``allow`` (for callers that show the rule failing on purpose).
    d is capped at 0.5 / lr (so that bias_decay * lr stays below 1)."""
    if schedule not in RULES:
        raise ConfigError("schedule", schedule, "must be one of " + ", ".join(RULES))
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError("steps", steps, "must be an integer >= 1")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ConfigError("lr", lr, "must be a finite number > 0")
    if outside not in ("warn", "raise", "allow"):
        raise ConfigError("outside", outside, "must be one of warn, raise, allow")
    rule = RULES[schedule]
    if not rule.holds_at(lr) and outside != "allow":
        lo, hi = rule.lr_range
        what = f"the {schedule} rule holds for base rates {lo:g} to {hi:g} (decay study)"
        if outside == "raise":
            raise ConfigError("lr", lr, what)
        warnings.warn(f"lr={lr:g} is outside the range {what}", DecayRuleWarning, stacklevel=2)
    return min(rule.decay(steps, lr), 0.5 / lr)
