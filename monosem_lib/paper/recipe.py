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


# The book-scale study (data/decay-study/book; ``python -m monosem_lib decay-study book
# --report``), read against the best baseline at each run length and rate, three seeds (five at
# its knife edges), S on a sqrt(2) grid, 95% bootstrap intervals over seeds: the best total
# shrink grows like T^b with b = 1.00 [0.93, 1.08] under one half-cosine, 0.85 [0.80, 0.85]
# under a constant rate and 0.75 under the paper's periodic cosine, whose recipe comes within
# 2% of the half-cosine's baseline loss only from T = 8000 (two run lengths; against its own
# baseline, four run lengths give 0.78 [0.75, 0.78]). The half-cosine differs from the other two
# (by 0.25 [0.18, 0.33] and 0.15 [0.08, 0.23]); the periodic cosine and the constant rate barely
# do. Decay that follows the scheduled rate (so never acts alone in the troughs) does not give
# the periodic cosine the half-cosine's b (0.67 [0.60, 0.75] over four run lengths against the
# own baseline): the troughs do not explain it. The rate: at T = 8000 under the half-cosine the
# best S grows like lr^1.52 [1.28, 1.62] (d* like lr^0.5), so a rule without a rate term holds
# only from lr 0.006 to 0.01 (``lr_range``, ``decay_fit.rule_range``); DecayRule(d0=0.26, b=1.0,
# a=1.5) would hold from 0.003 to 0.03, but changes the stored batches' decays at every other
# rate. The paper rule keeps b = 0.55, within 0.25 of the study's 0.75 (one sqrt(2) step of S
# per two doublings of T): DecayRule(d0=0.1286199604842215, b=0.75, t0=4096) restates the study
# and keeps the decay of the stored paper-cpu batches at 2^12 steps, but changes the budget
# study's (data/paper-cpu/budget, LR3 at other run lengths), which would need training again.
# The rate was swept under the half-cosine only; the other rules are stated for the same range.
_RATES = (0.006, 0.01)
RULES: dict[str, DecayRule] = {
    "cosine": DecayRule(d0=0.23, b=1.0, lr_range=_RATES),
    "constant": DecayRule(d0=0.31, b=0.8, lr_range=_RATES),
    "paper": DecayRule(d0=0.13, b=0.55, lr_range=_RATES),
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
