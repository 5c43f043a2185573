"""The decay study's tables: every grid point's best shrink, and each schedule's rule."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..paper.decay_study import Optimum, fit_shrink, spreads
from ..paper.recipe import decay_for_shrink

__all__ = ["optimum_table", "rule_table", "SCHEDULE_NAMES"]

SCHEDULE_NAMES = {
    "cosine": "half-cosine",
    "paper": "paper's periodic cosine",
    "constant": "constant",
}


def optimum_table(found: Sequence[Optimum]) -> pd.DataFrame:
    """One row per grid point: the baseline's and the best recipe's mono/N, the loss ratio at
    the best shrink, the plateau of shrinks within 90% of it and its middle S*, with the
    decay d that gives S*; ``works`` says whether the recipe beats the baseline at all."""
    rows = []
    for o in found:
        best, plateau = o.best, o.plateau
        rows.append(
            {
                "schedule": SCHEDULE_NAMES.get(o.schedule, o.schedule),
                "lr": o.lr,
                "T": o.steps,
                "mono/N baseline": o.baseline.mono,
                "mono/N best": None if best is None else best.mono,
                "loss / baseline": None if best is None else best.loss / o.baseline.loss,
                "plateau of S": "–" if plateau is None else f"{plateau[0]:g}–{plateau[1]:g}",
                "S*": o.center,
                "d*": None if o.center is None else decay_for_shrink(o.center, o.lr, o.steps),
                "works": o.engineers,
            }
        )
    return pd.DataFrame(rows).set_index(["schedule", "lr", "T"])


def rule_table(found: Sequence[Optimum], lr: float = 0.01, t0: int = 4000) -> pd.DataFrame:
    """One row per schedule at rate ``lr``: the fitted S* = s0 (T / t0)^b, and how far S and d
    vary across run lengths at the optimum (max / min; 1 is constant)."""
    rows = []
    for schedule in dict.fromkeys(o.schedule for o in found):
        s0, b = fit_shrink(found, schedule, lr, t0)
        spread = spreads(found, schedule, lr)
        points = sum(o.engineers for o in found if o.schedule == schedule and o.lr == lr)
        rows.append(
            {
                "schedule": SCHEDULE_NAMES.get(schedule, schedule),
                f"S* at T = {t0}": s0,
                "exponent b": b,
                "S varies": spread["S"],
                "d varies": spread["d"],
                "run lengths": points,
            }
        )
    return pd.DataFrame(rows).set_index("schedule").replace({np.nan: None})
