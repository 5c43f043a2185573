"""The decay study's statements as named numbers, for the appendix's prose and checks.

``summary_facts`` reads ``decay_fit.study_summary``: each schedule's exponent b and the
differences between schedules with their 95% intervals, the rate's exponent a, the range of
rates the rule holds for (and the range a rate term would give), the book recipe against the
plateau at its run length, where decay that follows the rate puts its best shrink once the
schedule's mean multiplier is counted, and where the dead-neuron cap moves an optimum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from .budget import STUDY_STEPS
from .decay_fit import Interval, on_plateau, rule_range
from .decay_study import Optimum, fit_shrink, log_log_fit
from .recipe import RULES, DecayRule, decay_for_shrink, mean_multiplier

__all__ = ["summary_facts", "RATE_TERM_RULE", "cap_moves", "paper_shape_facts", "periodic_factor"]

# The rule with a rate term that the rate sweep suggests (d* ~ lr^(a - 1), a = 1.5): the
# appendix reports the range of rates it would hold for; the book keeps the rule without it.
RATE_TERM_RULE = DecayRule(d0=0.23, b=1.0, a=1.5)

_NAMES = ("cosine", "paper", "constant", "paper-rate", "cosine-paper", "cosine-constant",
          "paper-constant", "cosine-paper-rate")  # fmt: skip


def _interval_facts(prefix: str, iv: Interval) -> dict[str, float]:
    return {prefix: iv.value, f"{prefix}_lo": iv.lo, f"{prefix}_hi": iv.hi}


def cap_moves(summary: dict) -> list[tuple[Optimum, Optimum]]:
    """The grid points whose best shrink moves under the dead-neuron cap: (uncapped, capped)."""
    capped = {o.key: o for o in summary["capped"]}
    return [
        (o, capped[o.key])
        for o in summary["found"]
        if o.key in capped and o.center is not None and capped[o.key].center != o.center
    ]


def _at(summary: dict, steps: int, schedule: str, lr: float, decay: str = "flat") -> Optimum:
    return next(o for o in summary["found"] if o.key == (steps, schedule, lr, decay))


def summary_facts(summary: dict, recipe_d: float = 0.3) -> dict[str, float]:
    """The appendix's numbers by name (see the module's docstring)."""
    out: dict[str, float] = {}
    for name in _NAMES:
        if name in summary["exponents"]:
            out.update(_interval_facts(f"b_{name}", summary["exponents"][name]))
    for name in ("cosine", "constant"):
        out.update(_interval_facts(f"bcap_{name}", summary["exponents_capped"][name]))
    pc = summary["exponents"]["paper-constant"]  # negative: the periodic's b is the lower
    out["b_paper-constant_neg_lo"], out["b_paper-constant_neg_hi"] = -pc.hi, -pc.lo
    out.update(_interval_facts("rate_a", summary["rate"]))
    out["rule_lr_lo"], out["rule_lr_hi"] = RULES["cosine"].lr_range
    alt = rule_range(summary["found"], RATE_TERM_RULE) or (math.nan, math.nan)
    out["alt_lr_lo"], out["alt_lr_hi"] = alt
    book = _at(summary, 8000, "cosine", 0.01)
    out["recipe_S"] = recipe_d * 0.01 * 4000
    out["recipe_on_plateau"] = float(on_plateau(book, out["recipe_S"]))
    out["rule_S"] = RULES["cosine"].decay(8000) * 0.01 * 4000
    out["rule_on_plateau"] = float(on_plateau(book, out["rule_S"]))
    out["book_S_star"] = book.center or math.nan
    out["book_best_mono"] = book.best.mono if book.best else math.nan
    out["recipe_mono"] = next(p.mono for p in book.points if p.shrink == out["recipe_S"])
    for lr in (0.003, 0.03):
        o = _at(summary, 8000, "cosine", lr)
        out[f"d_star_{lr:g}"] = decay_for_shrink(o.center or math.nan, lr, 8000)
        out[f"dead_{lr:g}"] = o.best.dead if o.best else math.nan
    for steps in (8000, 16000):
        flat, rate = _at(summary, steps, "paper", 0.01), _at(summary, steps, "paper", 0.01, "rate")
        half = _at(summary, steps, "cosine", 0.01)
        out[f"paper_S_{steps}"] = flat.center or math.nan
        out[f"cosine_S_{steps}"] = half.center or math.nan
        out[f"rate_S_{steps}"] = rate.center or math.nan
        out[f"rate_eff_S_{steps}"] = out[f"rate_S_{steps}"] * mean_multiplier("paper", steps)
    out["paper_mean_multiplier"] = mean_multiplier("paper", 8000)
    nan = math.nan
    moves = {a.key: (a.center or nan, b.center or nan) for a, b in cap_moves(summary)}
    out["cap_moves"] = len(moves)
    for tag, key in (
        ("short", (2000, "cosine", 0.01, "flat")),
        ("fast", (8000, "cosine", 0.03, "flat")),
    ):
        out[f"cap_{tag}_from"], out[f"cap_{tag}_to"] = moves.get(key, (nan, nan))
    for schedule, rule in RULES.items():
        out[f"rule_{schedule}_d0"], out[f"rule_{schedule}_b"] = rule.d0, rule.b
    out["periodic_factor"] = periodic_factor(summary["exponents"]["paper"].value)
    return out


def periodic_factor(b: float, steps: Sequence[int] = STUDY_STEPS) -> float:
    """How far apart (a factor of at least 1) the periodic rule's decay and the same rule with
    exponent ``b`` fall over the run lengths ``steps`` (the budget study's by default)."""
    rule = RULES["paper"]
    other = replace(rule, b=b)
    return max(max(r, 1 / r) for r in (other.decay(t) / rule.decay(t) for t in steps))


def paper_shape_facts(
    found: Sequence[Optimum], capped: Sequence[Optimum], schedule: str = "paper", lr: float = 0.01
) -> dict[str, float]:
    """Chapter 7's run-length study at the paper's shape, by name: at every run length T of
    ``schedule`` at ``lr``, the baseline's and the best shrink's mono/N (``T<T>_base``,
    ``T<T>_mono``), the plateau's middle S* and ends, the dead neurons at the best, whether
    the recipe engineers, S* under the dead cap (``capped``) and the seeds; then the fitted
    exponent b of S* ~ T^b over the run lengths where it engineers (``b``, ``b_points``), the
    same through the best shrinks rather than the plateaus' middles (``b_peak``) and under the
    cap (``b_capped``), the rule's b (``rule_b``), and at each T the rule's shrink and whether
    it lies on the plateau (``T<T>_rule_S``, ``T<T>_rule_on``)."""
    out: dict[str, float] = {}
    caps = {o.key: o for o in capped}
    series = sorted(
        (o for o in found if (o.schedule, o.lr) == (schedule, lr)), key=lambda o: o.steps
    )
    for o in series:
        key, best, cap = f"T{o.steps}", o.best, caps.get(o.key)
        out[f"{key}_base"] = o.baseline.mono
        out[f"{key}_mono"] = best.mono if best else math.nan
        out[f"{key}_dead"] = best.dead if best else math.nan
        out[f"{key}_S"] = o.center or math.nan
        out[f"{key}_lo"], out[f"{key}_hi"] = o.plateau or (math.nan, math.nan)
        out[f"{key}_engineers"] = float(o.engineers)
        out[f"{key}_S_capped"] = (cap.center if cap else None) or math.nan
        out[f"{key}_seeds"] = min(p.seeds for p in o.points) if o.points else 0
        out[f"{key}_best_S"] = o.shrink or math.nan
        rule_s = RULES[schedule].decay(o.steps, lr) * lr * math.ceil(o.steps / 2)
        out[f"{key}_rule_S"], out[f"{key}_rule_on"] = rule_s, float(on_plateau(o, rule_s))
    out["b"] = fit_shrink(series, schedule, lr, 4096)[1]
    peaks = [(math.log(o.steps), math.log(o.shrink)) for o in series if o.engineers and o.shrink]
    out["b_peak"] = log_log_fit(peaks)[1]
    out["b_points"] = sum(o.engineers for o in series)
    out["b_capped"] = fit_shrink(list(caps.values()), schedule, lr, 4096)[1]
    out["rule_b"] = RULES[schedule].b
    return out
