"""The decay study's tables: every grid point's best shrink, and each schedule's rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..paper.decay_fit import Interval
from ..paper.decay_study import Key, Optimum, fit_shrink, spreads
from ..paper.recipe import decay_for_shrink

__all__ = [
    "optimum_table",
    "compact_optimum_table",
    "exponent_table",
    "rule_table",
    "SCHEDULE_NAMES",
    "SHORT_NAMES",
]

SCHEDULE_NAMES = {
    "cosine": "half-cosine",
    "paper": "paper's periodic cosine",
    "constant": "constant",
    "paper-rate": "periodic cosine, decay follows the rate",
}


def optimum_table(
    found: Sequence[Optimum], capped: Sequence[Optimum] | None = None
) -> pd.DataFrame:
    """One row per grid point: the baseline's and the best recipe's mono/N and feature
    coverage, the loss ratio at the best shrink (to the reference loss, ``Optimum.ref_loss``),
    the dead neurons there, the plateau of shrinks within 90% of it and its middle S*, with
    the decay d that gives S*; ``works`` says whether the recipe beats the baseline at all.
    With ``capped`` (the same study's optima under a cap on dead neurons) also the S* there."""
    caps = {o.key: o for o in capped or ()}
    rows = []
    for o in found:
        best, plateau = o.best, o.plateau
        row = {
            "schedule": SCHEDULE_NAMES.get(o.label, o.label),
            "lr": o.lr,
            "T": o.steps,
            "mono/N baseline": o.baseline.mono,
            "mono/N best": None if best is None else best.mono,
            "coverage best": None if best is None else best.coverage,
            "loss / reference": None if best is None else o.loss_ratio,
            "dead at best": None if best is None else best.dead,
            "plateau of S": "–" if plateau is None else f"{plateau[0]:.3g}–{plateau[1]:.3g}",
            "S*": o.center,
            "d*": None if o.center is None else decay_for_shrink(o.center, o.lr, o.steps),
            "works": o.engineers,
        }
        if capped is not None:
            row["S* capped"] = caps[o.key].center if o.key in caps else None
        rows.append(row)
    return pd.DataFrame(rows).set_index(["schedule", "lr", "T"])


def rule_table(
    found: Sequence[Optimum],
    lr: float = 0.01,
    t0: int = 4000,
    exponents: Mapping[str, Interval] | None = None,
) -> pd.DataFrame:
    """One row per schedule at rate ``lr``: the fitted S* = s0 (T / t0)^b (with the bootstrap
    interval of b when ``exponents`` is given, ``decay_fit.exponent_intervals``), and how far S
    and d vary across run lengths at the optimum (max / min; 1 is constant)."""
    rows = []
    for o0 in {o.label: o for o in found}.values():
        schedule, decay_schedule, label = o0.schedule, o0.decay_schedule, o0.label
        s0, b = fit_shrink(found, schedule, lr, t0, decay_schedule)
        spread = spreads(found, schedule, lr, decay_schedule)
        points = sum(o.engineers for o in found if o.label == label and o.lr == lr)
        row = {
            "schedule": SCHEDULE_NAMES.get(label, label),
            f"S* at T = {t0}": s0,
            "exponent b": b,
            "S varies": spread["S"],
            "d varies": spread["d"],
            "run lengths": points,
        }
        if exponents is not None and label in exponents:
            row["b, 95% interval"] = f"{exponents[label].lo:.2f} to {exponents[label].hi:.2f}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("schedule").replace({np.nan: None})


SHORT_NAMES = {
    "cosine": "half-cosine",
    "paper": "periodic",
    "constant": "constant",
    "paper-rate": "periodic, decay ∝ rate",
}


def compact_optimum_table(
    found: Sequence[Optimum],
    capped: Sequence[Optimum],
    agreement: Mapping[Key, Mapping[str, float]],
) -> pd.DataFrame:
    """The grid points ``found``, narrow enough for a phone, one row each, indexed by schedule,
    base rate and run length (a level that takes one value is left out): mono/N from the
    baseline to the best shrink, the best's coverage, loss over the reference and dead
    neurons, S* with its 95% bootstrap interval over seeds where ``agreement`` has one
    (``decay_fit.decision_agreement``; S* and its interval blank where the recipe does not
    engineer), and the best
    admissible S under the dead-neuron cap (``capped``), whether or not it engineers."""
    caps = {o.key: o for o in capped}
    rank = {label: i for i, label in enumerate(SHORT_NAMES)}
    rows = {}
    for o in sorted(found, key=lambda o: (rank.get(o.label, 9), o.lr, o.steps)):
        best, a, cap = o.best, agreement.get(o.key, {}), caps.get(o.key)
        works = o.engineers and o.center is not None
        row = {
            "mono/N": f"{o.baseline.mono:.2f}→" + ("–" if best is None else f"{best.mono:.2f}"),
            "coverage": None if best is None else best.coverage,
            "loss / ref.": None if best is None else o.loss_ratio,
            "dead": None if best is None else best.dead,
            "S*": o.center if works else None,
        }
        if agreement:  # the interval over seeds, a dash where the recipe does not engineer
            row["95%"] = _range(a.get("center_lo"), a.get("center_hi")) if works else "–"
        row["S*, dead ≤ 10%"] = None if cap is None else cap.center
        rows[(SHORT_NAMES.get(o.label, o.label), o.lr, o.steps)] = row
    index = pd.MultiIndex.from_tuples(list(rows), names=["schedule", "base rate", "T"])
    frame = pd.DataFrame(list(rows.values()), index=index)
    single = [n for n, level in zip(index.names, index.levels) if len(level) == 1]
    return frame.droplevel(single[: index.nlevels - 1]) if single else frame


def exponent_table(
    exponents: Mapping[str, Interval], capped: Mapping[str, Interval]
) -> pd.DataFrame:
    """Each schedule's exponent b of S* ~ T^b, and each pair's difference, with 95% bootstrap
    intervals over seeds, beside the same under the dead-neuron cap; "differs" when the
    difference's interval excludes 0 (``decay_fit.exponent_intervals``)."""
    rows = {}
    for name, b in exponents.items():
        parts = [SHORT_NAMES.get(n, n) for n in _split_pair(name, exponents)]
        label = parts[0] if len(parts) == 1 else f"{parts[0]} − {parts[1]}"
        c = capped.get(name)
        rows[label] = {
            "b": b.value,
            "95%": _range(b.lo, b.hi),
            "b, dead ≤ 10%": None if c is None else c.value,
            "95%, dead ≤ 10%": "–" if c is None else _range(c.lo, c.hi),
            "differs": None if len(parts) == 1 else b.lo > 1e-6 or b.hi < -1e-6,
        }
    return _frame(rows).rename_axis("b of S* ~ T^b")


def _frame(rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows.values()), index=list(rows), dtype=object)


def _range(lo: float | None, hi: float | None) -> str:
    """An interval as "0.93 to 1.08" (one number when both ends agree; a dash when unknown)."""
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return "–"
    a, b = f"{lo:.3g}", f"{hi:.3g}"
    return a if a == b else f"{a} to {b}"


def _split_pair(name: str, known: Mapping[str, Interval]) -> list[str]:
    """``cosine-paper-rate`` as [cosine, paper-rate]: a schedule, or two joined by ``-``."""
    singles = [k for k in known if "-" not in k or k == "paper-rate"]
    if name in singles:
        return [name]
    for a in singles:
        if name.startswith(a + "-") and name[len(a) + 1 :] in singles:
            return [a, name[len(a) + 1 :]]
    return [name]
