"""The decay study's numbers with their uncertainty: a bootstrap over seeds.

Each replicate draws, independently at every grid point, as many seeds as the point has, with
replacement, and applies the same draw to its baseline and every shrink (a point's models share
seeds). From the replicate's seed means it finds every optimum (``decay_study.optimum_of``,
against the full data's reference losses) and fits what the study fits: the exponent b of
S* ~ T^b per schedule (``fit_shrink``), the rate's exponent a of S* ~ lr^a at one run length
(``fit_rate``), and how often each grid point's decisions (does the recipe engineer, which
shrink is best) agree with the full data's (``decision_agreement``). Intervals are percentile
intervals over the replicates. All of it runs on whatever cells are stored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .decay_study import (
    DEAD_CAP,
    LOSS_TOLERANCE,
    Key,
    Optimum,
    Table,
    fit_shrink,
    load_tables,
    log_log_fit,
    optima_of,
    optimum_of,
    reference_losses,
)
from .recipe import RULES, DecayRule

__all__ = [
    "Interval",
    "BOOTSTRAP",
    "bootstrap_optima",
    "interval",
    "exponent_intervals",
    "fit_rate",
    "rate_interval",
    "decision_agreement",
    "knife_edges",
    "on_plateau",
    "rule_range",
    "study_summary",
    "report_lines",
    "rule_sentence",
]

# Replicates per bootstrap.
BOOTSTRAP = 1000


@dataclass(frozen=True)
class Interval:
    """A statistic on the full data (``value``) and its bootstrap percentile interval
    (``lo``, ``hi``) at ``level``, from ``n`` finite replicates of ``of``."""

    value: float
    lo: float
    hi: float
    level: float
    n: int
    of: int

    def excludes(self, x: float) -> bool:
        """Whether ``x`` lies outside the interval (NaN bounds exclude nothing)."""
        return bool(x < self.lo or x > self.hi)

    def __str__(self) -> str:
        if not math.isfinite(self.value):
            return "not fitted"
        return f"{self.value:.2f} [{self.lo:.2f}, {self.hi:.2f}]"


def bootstrap_optima(
    tables: dict[Key, Table],
    replicates: int = BOOTSTRAP,
    seed: int = 0,
    tolerance: float = LOSS_TOLERANCE,
    reference: str = "best",
    dead_cap: float | None = None,
) -> list[list[Optimum]]:
    """``replicates`` bootstrap replicates of every grid point's optimum (``optimum_of``), seeds
    drawn per point with replacement; the reference losses stay the full data's."""
    refs = reference_losses(tables, own=reference == "own")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(replicates):
        found = []
        for key, t in tables.items():
            cols = rng.integers(0, len(t.seeds), len(t.seeds))
            o = optimum_of(t, refs[key], tolerance, dead_cap, cols)
            if o is not None:
                found.append(o)
        out.append(found)
    return out


def interval(value: float, samples: Sequence[float], level: float = 0.95) -> Interval:
    """The percentile interval of the finite ``samples`` around ``value``."""
    finite = np.array([s for s in samples if math.isfinite(s)])
    if len(finite) == 0:
        return Interval(value, float("nan"), float("nan"), level, 0, len(samples))
    q = 100 * (1 - level) / 2
    lo, hi = np.percentile(finite, [q, 100 - q])
    return Interval(value, float(lo), float(hi), level, len(finite), len(samples))


def exponent_intervals(
    found: Sequence[Optimum],
    replicates: Sequence[Sequence[Optimum]],
    schedules: Sequence[tuple[str, str]],
    lr: float = 0.01,
) -> dict[str, Interval]:
    """For each (schedule, decay schedule) the exponent b of ``fit_shrink`` with its interval
    (by the schedule's label: ``paper`` or ``paper-rate``), and for each pair the difference
    of their b (``<a>-<b>``), paired within a replicate."""
    label = lambda s, d: s if d == "flat" else f"{s}-{d}"
    full = {label(s, d): fit_shrink(found, s, lr, decay_schedule=d)[1] for s, d in schedules}
    reps = [
        {label(s, d): fit_shrink(rep, s, lr, decay_schedule=d)[1] for s, d in schedules}
        for rep in replicates
    ]
    out = {name: interval(full[name], [r[name] for r in reps]) for name in full}
    names = list(full)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            out[f"{a}-{b}"] = interval(full[a] - full[b], [r[a] - r[b] for r in reps])
    return out


def fit_rate(
    found: Sequence[Optimum], steps: int, schedule: str = "cosine", lr0: float = 0.01
) -> tuple[float, float]:
    """The power law S* = s0 (lr / lr0)^a through the optima at one run length and schedule
    over the rates where the recipe works: (s0, a). a = 0 keeps S, a = 1 keeps the per-step
    shrink d lr, so the best d goes as lr^(a - 1)."""
    pts = [
        (math.log(o.lr / lr0), math.log(o.center))
        for o in found
        if (o.steps, o.schedule, o.decay_schedule) == (steps, schedule, "flat")
        and o.engineers
        and o.center is not None
    ]
    return log_log_fit(pts)


def rate_interval(
    found: Sequence[Optimum],
    replicates: Sequence[Sequence[Optimum]],
    steps: int,
    schedule: str = "cosine",
) -> Interval:
    """The rate's exponent a of ``fit_rate`` with its bootstrap interval."""
    return interval(
        fit_rate(found, steps, schedule)[1], [fit_rate(r, steps, schedule)[1] for r in replicates]
    )


def _near(a: float | None, b: float | None) -> bool:
    """Whether two best shrinks agree to within one step of the sqrt(2) grid (or are both
    None: no admissible shrink)."""
    if a is None or b is None:
        return a is None and b is None
    return abs(math.log(a / b)) <= math.log(2) / 2 + 1e-9


def decision_agreement(
    found: Sequence[Optimum], replicates: Sequence[Sequence[Optimum]]
) -> dict[Key, dict[str, float]]:
    """For each grid point, the fraction of replicates that agree with the full data on
    whether the recipe engineers (``engineers``) and on the best shrink to within one step of
    the sqrt(2) grid (``shrink``), and the interval of the plateau's middle (``center_lo``,
    ``center_hi``, NaN where no replicate has one)."""
    out = {}
    for o in found:
        at = [next((r for r in rep if r.key == o.key), None) for rep in replicates]
        same = [r for r in at if r is not None]
        if not same:
            continue
        centers = [r.center for r in same if r.center is not None]
        ci = interval(o.center or float("nan"), centers)
        out[o.key] = {
            "engineers": float(np.mean([r.engineers == o.engineers for r in same])),
            "shrink": float(np.mean([_near(r.shrink, o.shrink) for r in same])),
            "center_lo": ci.lo,
            "center_hi": ci.hi,
        }
    return out


def knife_edges(agreement: dict[Key, dict[str, float]], threshold: float = 0.9) -> list[Key]:
    """The grid points where a decision sits within noise: fewer than ``threshold`` of the
    replicates agree with the full data on whether the recipe engineers or on the best
    shrink (to one grid step). These get more seeds."""
    return [
        key for key, a in agreement.items() if a["engineers"] < threshold or a["shrink"] < threshold
    ]


def on_plateau(o: Optimum, shrink: float) -> bool:
    """Whether total shrink ``shrink`` lies on the optimum's plateau (``Optimum.plateau``),
    widened by half a step of the sqrt(2) grid on each side (the grid's resolution)."""
    if o.plateau is None or not o.engineers:
        return False
    half = 2**0.25
    return o.plateau[0] / half <= shrink <= o.plateau[1] * half


def rule_range(
    found: Sequence[Optimum], rule: DecayRule, steps: int = 8000, schedule: str = "cosine"
) -> tuple[float, float] | None:
    """The widest run of swept base rates around 0.01, at run length ``steps`` under
    ``schedule``, where the rule's decay (``DecayRule.decay`` at that rate) gives a shrink on
    the plateau (``on_plateau``): the range the rule holds for. None if it fails at 0.01."""
    pts = sorted(
        (o for o in found if (o.steps, o.schedule, o.decay_schedule) == (steps, schedule, "flat")),
        key=lambda o: o.lr,
    )
    holds = [on_plateau(o, rule.decay(steps, o.lr) * o.lr * math.ceil(steps / 2)) for o in pts]
    at = next((i for i, o in enumerate(pts) if math.isclose(o.lr, 0.01)), None)
    if at is None or not holds[at]:
        return None
    lo = hi = at
    while lo > 0 and holds[lo - 1]:
        lo -= 1
    while hi < len(pts) - 1 and holds[hi + 1]:
        hi += 1
    return pts[lo].lr, pts[hi].lr


def study_summary(
    name: str, folder: str | Path, replicates: int = BOOTSTRAP, lr: float = 0.01
) -> dict:
    """Everything the study says, on whatever cells are stored: the optima against the best
    baseline (``found``), against the own baseline (``own``) and under the dead-neuron cap
    (``capped``); each schedule's exponent b with its interval and the pairwise differences
    (``exponents``, and ``exponents_capped``); the rate's exponent a at T = 8000 under the
    half-cosine (``rate``); each grid point's decision agreement and the knife edges; the
    optima at the grid's edge; and the base rates each rule of ``recipe.RULES`` holds for
    (``ranges``, ``rule_range`` at T = 8000)."""
    tables = load_tables(name, folder)
    found = optima_of(tables, reference="best")
    capped = optima_of(tables, reference="best", dead_cap=DEAD_CAP)
    reps = bootstrap_optima(tables, replicates)
    reps_capped = bootstrap_optima(tables, replicates, dead_cap=DEAD_CAP)
    kinds = list(dict.fromkeys((o.schedule, o.decay_schedule) for o in found if o.lr == lr))
    agreement = decision_agreement(found, reps)
    return {
        "found": found,
        "own": optima_of(tables, reference="own"),
        "capped": capped,
        "exponents": exponent_intervals(found, reps, kinds, lr),
        "exponents_capped": exponent_intervals(capped, reps_capped, kinds, lr),
        "rate": rate_interval(found, reps, 8000),
        "agreement": agreement,
        "knife_edges": knife_edges(agreement),
        "at_edge": [o.key for o in found if o.at_edge and o.engineers],
        "ranges": {s: rule_range(found, r, 8000, s) for s, r in RULES.items()},
    }


def _fmt(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.3g}"


def _point_line(o: Optimum, agree: dict, own: Optimum | None, cap: Optimum | None) -> str:
    """One grid point in one line (``report_lines``)."""
    head = f"T {o.steps} {o.label} lr {o.lr:g}:"
    best = o.best
    if best is None:
        return f"{head} no admissible S (mono/N base {o.baseline.mono:.2f})"
    plateau = "-" if o.plateau is None else "-".join(_fmt(x) for x in o.plateau)
    return " ".join(
        [
            head,
            f"S* {_fmt(o.center)} [plateau {plateau}, seeds agree {agree.get('shrink', 1):.2f}]",
            f"mono/N {o.baseline.mono:.2f}->{best.mono:.2f} coverage {best.coverage:.2f}",
            f"loss/ref {o.loss_ratio:.3f} dead {best.dead:.0f} works {o.engineers};",
            f"own-baseline S* {_fmt(own.center if own else None)},",
            f"dead-capped S* {_fmt(cap.center if cap else None)}",
        ]
    )


def report_lines(summary: dict, lr: float = 0.01) -> list[str]:
    """``study_summary`` as text: one line per grid point, then the exponents, the rate's
    share, the knife edges and the rule in one sentence."""
    own = {o.key: o for o in summary["own"]}
    cap = {o.key: o for o in summary["capped"]}
    agree = summary["agreement"]
    lines = [
        _point_line(o, agree.get(o.key, {}), own.get(o.key), cap.get(o.key))
        for o in summary["found"]
    ]
    for title, ex in (("b", summary["exponents"]), ("b, dead capped", summary["exponents_capped"])):
        listed = "; ".join(f"{k} {v}" for k, v in ex.items())
        lines.append(f"{title} (S* ~ T^b at lr {lr:g}, 95% over seeds): {listed}")
    lines.append(f"rate exponent a (S* ~ lr^a at T = 8000, half-cosine): {summary['rate']}")
    lines.append(f"knife edges: {summary['knife_edges']}")
    lines.append(f"optimum at the grid's edge: {summary['at_edge']}")
    lines.append(rule_sentence(summary))
    return lines


def rule_sentence(summary: dict) -> str:
    """The rule in one sentence, with the exponents' intervals and its range of rates."""
    ex = summary["exponents"]
    parts = []
    for schedule, rule in RULES.items():
        b = ex.get(schedule)
        where = "" if b is None else f" (study: {b})"
        parts.append(f"{schedule} d0 = {rule.d0:g}, b = {rule.b:g}{where}")
    cosine = RULES["cosine"]
    lo, hi = cosine.lr_range
    term = "no rate term" if cosine.a == 1 else f"times (lr/{cosine.lr0:g})^{cosine.a - 1:g}"
    return (
        f"Rule: d* = d0 (T/{cosine.t0})^(b-1), {term}: {'; '.join(parts)}; for base rates "
        f"{lo:g} to {hi:g} (where the rule's d lies on the study's plateau at T = 8000: "
        f"{summary['ranges'].get('cosine')}; the study's rate exponent a = {summary['rate']}, "
        "S* ~ lr^a, so d* ~ lr^(a-1))."
    )
