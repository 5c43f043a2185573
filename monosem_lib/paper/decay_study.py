"""The decay study: which quantity a good bias decay keeps fixed across run lengths, rates and
schedules (the candidates are ``recipe.CANDIDATES``), measured.

A :class:`DecayStudy` trains, for each run length, schedule and rate, the engineered recipe
(initial bias -1) at a grid of total shrinks beside the baseline (initial bias 0, no decay),
with the same seeds. :func:`optima` finds, per cell, the shrink that maximises monosemantic
neurons per feature while keeping the loss within ``LOSS_TOLERANCE`` of the baseline's, and
:func:`spreads` says how much each candidate quantity varies across run lengths at the
optimum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..store.results import Results, load_results
from .claims import MARGINS
from .decay_cells import (
    STUDIES,
    STUDY_FOLDERS,
    Cell,
    DecayStudy,
    Part,
    _study,
    root2_grid,
    run_study,
    stale_cells,
    study_cells,
)
from .recipe import CANDIDATES, candidates, decay_for_shrink, total_shrink

__all__ = [
    "DecayStudy",
    "Part",
    "Cell",
    "root2_grid",
    "STUDIES",
    "STUDY_FOLDERS",
    "LOSS_TOLERANCE",
    "PLATEAU",
    "study_cells",
    "run_study",
    "stale_cells",
    "Point",
    "Optimum",
    "load_study",
    "choose",
    "find_optimum",
    "optima",
    "plateau_of",
    "admissible_decays",
    "spreads",
    "shrink_exponent",
    "fit_shrink",
    "fit_decay",
    "findings",
    "point_facts",
]

# The engineered model may cost at most this fraction of the baseline's loss.
LOSS_TOLERANCE = 0.02
# Shrinks within this fraction of the best mono/N form the optimum's plateau.
PLATEAU = 0.9


# -- what the study shows ----------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """Seed means at one setting of a cell: the baseline (``shrink`` None) or the recipe at a
    total shrink."""

    shrink: float | None
    mono: float
    loss: float
    dead: float
    seeds: int


@dataclass(frozen=True)
class Optimum:
    """The best decay of one grid point (run length, schedule, rate): the shrink with the most
    mono neurons per feature among those whose loss is within ``tolerance`` of the
    baseline's (None when no shrink is), with every point it was chosen from."""

    steps: int
    schedule: str
    lr: float
    baseline: Point
    points: tuple[Point, ...]
    shrink: float | None
    tolerance: float

    @property
    def best(self) -> Point | None:
        return next((p for p in self.points if p.shrink == self.shrink), None)

    def admissible(self, p: Point) -> bool:
        """Whether a point costs at most ``tolerance`` of the baseline's loss (``choose``)."""
        return p.loss <= (1 + self.tolerance) * self.baseline.loss

    @property
    def engineers(self) -> bool:
        """Whether the recipe works here at all, that is its best admissible mono/N beats the
        baseline's by claim 3's margins (a ratio and a gain, ``claims.MARGINS``). Where it
        does not, the best shrink says nothing about how to set the decay."""
        best = self.best
        if best is None:
            return False
        ratio, gain = MARGINS["claim3_mono_ratio"], MARGINS["claim3_mono_gain"]
        return best.mono >= max(ratio * self.baseline.mono, self.baseline.mono + gain)

    @property
    def plateau(self) -> tuple[float, float] | None:
        """The smallest and largest admissible shrink whose mono/N is at least ``PLATEAU``
        of the best's (the grid is coarse and the curve flat near its top)."""
        best = self.best
        if best is None or not self.shrink:
            return None
        near = [
            p.shrink
            for p in self.points
            if p.shrink and self.admissible(p) and p.mono >= PLATEAU * best.mono
        ]
        return min(near), max(near)

    @property
    def center(self) -> float | None:
        """The plateau's geometric middle, the shrink the study recommends here."""
        return None if self.plateau is None else math.sqrt(self.plateau[0] * self.plateau[1])

    def candidates(self) -> dict[str, float] | None:
        """The candidate invariants (``recipe.CANDIDATES``) at the plateau's middle."""
        if self.center is None:
            return None
        return candidates(self.center, self.lr, self.steps, self.schedule)


def load_study(name: str, folder: str | Path) -> dict[tuple[int, str, float], Results]:
    """The stored cells of study ``name`` under ``folder``, by grid point (seed blocks of one
    point joined); points not stored yet are left out."""
    out: dict[tuple[int, str, float], list[Results]] = {}
    for cell in _study(name).cells():
        path = Path(folder) / f"{cell.name}.json"
        if path.exists():
            out.setdefault((cell.steps, cell.schedule, cell.lr), []).append(load_results(path))
    return {
        key: parts[0] if len(parts) == 1 else Results.concat(parts) for key, parts in out.items()
    }


def _points(results: Results) -> tuple[Point, list[Point]]:
    """The baseline and the recipe's points of one grid point, seed means."""
    groups: dict[float | None, list[int]] = {}
    for i, c in enumerate(results.configs):
        key = None if c.init_bias == 0 and c.bias_decay == 0 else round(total_shrink(c), 6)
        groups.setdefault(key, []).append(i)

    def point(key: float | None, idx: list[int]) -> Point:
        m = [results.metrics[i] for i in idx]
        mean = lambda k: float(np.mean([x[k] for x in m]))
        return Point(
            key, mean("mono_per_feature"), mean("final_loss"), mean("dead_neurons"), len(m)
        )

    base = point(None, groups.pop(None))
    return base, [point(k, idx) for k, idx in sorted(groups.items())]


def choose(baseline: Point, points: Sequence[Point], tolerance: float) -> float | None:
    """The shrink with the most mono/N among ``points`` whose loss is at most ``1 +
    tolerance`` times the baseline's; None when none is."""
    ok = [p for p in points if p.loss <= (1 + tolerance) * baseline.loss]
    return max(ok, key=lambda p: p.mono).shrink if ok else None


def find_optimum(
    key: tuple[int, str, float], results: Results, tolerance: float = LOSS_TOLERANCE
) -> Optimum:
    """The best shrink of one grid point (``Optimum``)."""
    base, points = _points(results)
    return Optimum(*key, base, tuple(points), choose(base, points, tolerance), tolerance)


def optima(name: str, folder: str | Path, tolerance: float = LOSS_TOLERANCE) -> list[Optimum]:
    """Every stored grid point's optimum, in the study's order."""
    return [find_optimum(k, r, tolerance) for k, r in load_study(name, folder).items()]


def _optimum_at(found: Sequence[Optimum], steps: int, schedule: str, lr: float) -> Optimum | None:
    """The study's optimum at this run length, schedule and rate; None if the grid lacks it."""
    return next((o for o in found if (o.steps, o.schedule, o.lr) == (steps, schedule, lr)), None)


def plateau_of(
    found: Sequence[Optimum], steps: int, schedule: str, lr: float
) -> tuple[float, float] | None:
    """The plateau of best shrinks (``Optimum.plateau``) the study found at this run length,
    schedule and rate; None where the grid has no such point or the recipe has no plateau."""
    at = _optimum_at(found, steps, schedule, lr)
    return None if at is None else at.plateau


def admissible_decays(
    found: Sequence[Optimum], steps: int, schedule: str, lr: float
) -> tuple[float, float] | None:
    """The weakest and strongest decay d of the recipe that cost no loss (``admissible``) at
    this run length, schedule and rate; None where none does or the grid lacks the point."""
    at = _optimum_at(found, steps, schedule, lr)
    ok = [] if at is None else [p.shrink for p in at.points if p.shrink and at.admissible(p)]
    if not ok:
        return None
    return decay_for_shrink(min(ok), lr, steps), decay_for_shrink(max(ok), lr, steps)


def spreads(found: Sequence[Optimum], schedule: str, lr: float) -> dict[str, float]:
    """For one schedule and rate: how much each candidate invariant varies across run lengths
    at the optimum's plateau, as max / min (1 means constant). Only points where the recipe
    works (``Optimum.engineers``) count."""
    rows = [o.candidates() for o in found if o.schedule == schedule and o.lr == lr and o.engineers]
    out = {}
    for name in CANDIDATES:
        values = [r[name] for r in rows if r is not None]
        out[name] = max(values) / min(values) if len(values) >= 2 else float("nan")
    return out


def fit_shrink(
    found: Sequence[Optimum], schedule: str, lr: float, t0: int = 4000
) -> tuple[float, float]:
    """The power law S* = s0 (T / t0)^b through the optima of one schedule and rate (least
    squares in log-log, over the points where the recipe works): (s0, b). b = 0 when the
    total shrink is the invariant, b = 1 when the per-step shrink d * lr is."""
    pts = [
        (math.log(o.steps / t0), math.log(o.center))
        for o in found
        if o.schedule == schedule and o.lr == lr and o.engineers and o.center is not None
    ]
    if len(pts) < 2:
        return float("nan"), float("nan")
    x, y = np.array(pts).T
    b, log_s0 = np.polyfit(x, y, 1)
    return float(math.exp(log_s0)), float(b)


def fit_decay(
    found: Sequence[Optimum], schedule: str, lr: float, t0: int = 4000
) -> tuple[float, float]:
    """``fit_shrink`` as a rule for the decay coefficient (``recipe.DecayRule``): (d0, b) with
    d* = d0 (T / t0)^(b - 1), d0 the decay that gives s0 at T = t0."""
    s0, b = fit_shrink(found, schedule, lr, t0)
    return decay_for_shrink(s0, lr, t0) if math.isfinite(s0) else float("nan"), b


def shrink_exponent(found: Sequence[Optimum], schedule: str, lr: float) -> float:
    """The exponent b of ``fit_shrink``."""
    return fit_shrink(found, schedule, lr)[1]


def findings(found: Sequence[Optimum], lr: float = 0.01) -> dict[str, float]:
    """The numbers the book states about the study, by name: for each schedule at rate ``lr``
    the run lengths where the recipe works (``_T_min``, ``_T_max``), the range of the best
    decay d* and of the best total shrink S* over them, and the fitted exponent b
    (``fit_shrink``)."""
    out: dict[str, float] = {}
    for schedule in dict.fromkeys(o.schedule for o in found):
        works = [o for o in found if o.schedule == schedule and o.lr == lr and o.engineers]
        rows = [c for o in works for c in [o.candidates()] if c is not None]
        if not rows:
            continue
        out[f"{schedule}_T_min"] = min(o.steps for o in works)
        out[f"{schedule}_T_max"] = max(o.steps for o in works)
        for name in ("S", "d"):
            values = [r[name] for r in rows]
            out[f"{schedule}_{name}_min"], out[f"{schedule}_{name}_max"] = min(values), max(values)
        out[f"{schedule}_b"] = fit_shrink(found, schedule, lr)[1]
        out[f"{schedule}_points"] = len(rows)
    return out


def point_facts(found: Sequence[Optimum]) -> dict[str, float]:
    """Each grid point's numbers by name, ``<schedule>_lr<rate>_<what>`` (the run length
    left out: for a study at one run length, such as the paper's shape): the baseline's and the
    best recipe's mono/N, the loss ratio at the best, and the best S and d."""
    out: dict[str, float] = {}
    for o in found:
        best = o.best
        if best is None or o.shrink is None:
            continue
        key = f"{o.schedule}_lr{o.lr:g}"
        out[f"{key}_base"], out[f"{key}_mono"] = o.baseline.mono, best.mono
        out[f"{key}_loss_ratio"] = best.loss / o.baseline.loss
        out[f"{key}_S"], out[f"{key}_d"] = o.shrink, decay_for_shrink(o.shrink, o.lr, o.steps)
        out[f"{key}_dead"] = best.dead
    return out
