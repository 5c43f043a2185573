"""The decay study's tables: every grid point's best shrink, and each schedule's rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..paper.decay_fit import Interval
from ..paper.decay_study import Optimum, fit_shrink, spreads
from ..paper.recipe import decay_for_shrink

__all__ = ["optimum_table", "rule_table", "SCHEDULE_NAMES"]

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
