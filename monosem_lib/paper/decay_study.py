"""The decay study: which quantity a good bias decay keeps fixed across run lengths, rates and
schedules (the candidates are ``recipe.CANDIDATES``), measured.

A :class:`DecayStudy` (``decay_cells``) trains, for each run length, schedule and rate, the
engineered recipe (initial bias -1) at a sqrt(2)-spaced grid of total shrinks beside the
baseline (initial bias 0, no decay), with the same seeds. :func:`load_tables` reads whatever
cells are stored into one :class:`Table` a grid point (per-seed metrics, NaN where a model is
not stored yet), so the analysis runs on a study in progress. :func:`optima` finds, per grid
point, the shrink that maximises monosemantic neurons per feature while keeping the loss within
``LOSS_TOLERANCE`` of a reference (by default the best baseline at that run length and rate,
``reference_losses``) and, optionally, the dead neurons under a cap; :func:`spreads` and
:func:`fit_shrink` say how the optimum moves with the run length. ``decay_fit`` bootstraps
all of it over seeds.
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
    get_study,
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
    "DEAD_CAP",
    "METRICS",
    "Key",
    "Point",
    "Table",
    "Optimum",
    "load_study",
    "table_of",
    "load_tables",
    "reference_losses",
    "choose",
    "optimum_of",
    "find_optimum",
    "optima",
    "optima_of",
    "plateau_of",
    "admissible_decays",
    "spreads",
    "shrink_exponent",
    "fit_shrink",
    "fit_decay",
    "findings",
    "point_facts",
]


# The engineered model may cost at most this fraction of the reference loss.
LOSS_TOLERANCE = 0.02
# Shrinks within this fraction of the best mono/N form the optimum's plateau.
PLATEAU = 0.9
# The cap on dead neurons, as a fraction of the neurons k, under which optima are also reported.
DEAD_CAP = 0.1
# What a Table holds per model, and the Point field each becomes.
METRICS = {
    "mono": "mono_per_feature",
    "loss": "final_loss",
    "dead": "dead_neurons",
    "coverage": "features_covered",
}

# A grid point: run length, schedule, base rate, decay schedule (``Config.decay_schedule``).
Key = tuple[int, str, float, str]


@dataclass(frozen=True)
class Point:
    """Seed means at one setting of a grid point: the baseline (``shrink`` None) or the recipe
    at a total shrink; ``coverage`` is the fraction of features with a monosemantic neuron."""

    shrink: float | None
    mono: float
    loss: float
    dead: float
    seeds: int
    coverage: float = float("nan")


@dataclass(frozen=True)
class Table:
    """Per-seed metrics of one grid point: ``values[name]`` is [1 + len(shrinks), len(seeds)]
    (row 0 the baseline, then each shrink of the study's grid), NaN where a model is not
    stored. ``k`` is the models' neuron count."""

    key: Key
    shrinks: tuple[float, ...]
    seeds: tuple[int, ...]
    values: dict[str, np.ndarray]
    k: int

    def points(
        self, cols: Sequence[int] | np.ndarray | None = None
    ) -> tuple[Point | None, list[Point]]:
        """Seed means over the columns ``cols`` (every seed if None; a column may repeat, as in
        a bootstrap): the baseline (None if not stored) and each stored shrink."""
        idx = np.arange(len(self.seeds)) if cols is None else np.asarray(cols)
        sub = {name: v[:, idx] for name, v in self.values.items()}
        counts = np.sum(~np.isnan(sub["loss"]), axis=1)
        out: list[Point | None] = []
        for row, shrink in enumerate((None, *self.shrinks)):
            if counts[row] == 0:
                out.append(None)
                continue
            mean = {name: float(np.nanmean(v[row])) for name, v in sub.items()}
            out.append(Point(shrink, seeds=int(counts[row]), **mean))
        return out[0], [p for p in out[1:] if p is not None]


def load_study(name: str, folder: str | Path) -> dict[Key, Results]:
    """The stored cells of study ``name`` under ``folder``, by grid point (cells of one point
    joined); points with nothing stored yet are left out."""
    out: dict[Key, list[Results]] = {}
    for cell in get_study(name).cells():
        path = Path(folder) / f"{cell.name}.json"
        if path.exists():
            key = (cell.steps, cell.schedule, cell.lr, cell.decay_schedule)
            out.setdefault(key, []).append(load_results(path))
    return {
        key: parts[0] if len(parts) == 1 else Results.concat(parts) for key, parts in out.items()
    }


def table_of(key: Key, results: Results, grid: Sequence[float] | None = None) -> Table:
    """The per-seed Table of one grid point from its stored models; a shrink off ``grid`` (an
    earlier grid's) is left out, and so is a repeated model (the first is kept)."""
    on_grid = None if grid is None else {round(s, 6) for s in grid}
    cells: dict[tuple[float | None, int], dict] = {}
    for c, m in zip(results.configs, results.metrics):
        shrink = None if c.init_bias == 0 and c.bias_decay == 0 else round(total_shrink(c), 6)
        if shrink is not None and (shrink == 0 or (on_grid is not None and shrink not in on_grid)):
            continue
        cells.setdefault((shrink, c.seed), m)
    shrinks = tuple(sorted({s for s, _ in cells if s is not None}))
    seeds = tuple(sorted({seed for _, seed in cells}))
    values = {name: np.full((1 + len(shrinks), len(seeds)), np.nan) for name in METRICS}
    rows = {s: i for i, s in enumerate((None, *shrinks))}
    for (shrink, seed), m in cells.items():
        for name, metric in METRICS.items():
            values[name][rows[shrink], seeds.index(seed)] = m[metric]
    return Table(key, shrinks, seeds, values, results.configs[0].k)


def load_tables(name: str, folder: str | Path) -> dict[Key, Table]:
    """Every stored grid point of study ``name`` as a Table on the study's grid of shrinks."""
    grid = get_study(name).shrinks
    return {key: table_of(key, r, grid) for key, r in load_study(name, folder).items()}


def reference_losses(tables: dict[Key, Table], own: bool = False) -> dict[Key, float]:
    """The loss each grid point's tolerance is measured against: the best (lowest) seed-mean
    baseline loss over every schedule at the same run length and rate, or with ``own`` the
    point's own baseline. NaN where no baseline is stored."""
    base = {}
    for key, t in tables.items():
        b, _ = t.points()
        base[key] = float("nan") if b is None else b.loss
    if own:
        return base
    out = {}
    for key in tables:
        same = [v for k, v in base.items() if (k[0], k[2]) == (key[0], key[2]) and v == v]
        out[key] = min(same) if same else float("nan")
    return out


@dataclass(frozen=True)
class Optimum:
    """The best decay of one grid point (run length, schedule, rate): the shrink with the most
    mono neurons per feature among the admissible ones (``admissible``; None when none is),
    with every point it was chosen from. ``reference`` is the loss the tolerance is measured
    against (the baseline's when not given); ``dead_cap`` caps the dead neurons of an
    admissible point (None: no cap)."""

    steps: int
    schedule: str
    lr: float
    baseline: Point
    points: tuple[Point, ...]
    shrink: float | None
    tolerance: float
    reference: float | None = None
    dead_cap: float | None = None
    decay_schedule: str = "flat"

    @property
    def key(self) -> Key:
        return (self.steps, self.schedule, self.lr, self.decay_schedule)

    @property
    def label(self) -> str:
        """The schedule, with ``-rate`` when the decay follows the scheduled rate."""
        return self.schedule if self.decay_schedule == "flat" else f"{self.schedule}-rate"

    @property
    def best(self) -> Point | None:
        return next((p for p in self.points if p.shrink == self.shrink), None)

    @property
    def ref_loss(self) -> float:
        return self.baseline.loss if self.reference is None else self.reference

    def admissible(self, p: Point) -> bool:
        """Whether a point costs at most ``tolerance`` of the reference loss and, under a cap,
        leaves at most ``dead_cap`` neurons dead (``choose``)."""
        cheap = p.loss <= (1 + self.tolerance) * self.ref_loss
        return cheap and (self.dead_cap is None or p.dead <= self.dead_cap)

    @property
    def loss_ratio(self) -> float:
        """The best point's loss over the reference (NaN without a best)."""
        return float("nan") if self.best is None else self.best.loss / self.ref_loss

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
        of the best's (the curve is flat near its top)."""
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

    @property
    def at_edge(self) -> bool:
        """Whether the best shrink is the largest or smallest one tried (the optimum may lie
        beyond the grid)."""
        tried = [p.shrink for p in self.points if p.shrink]
        return bool(tried) and self.shrink in (min(tried), max(tried))

    def candidates(self) -> dict[str, float] | None:
        """The candidate invariants (``recipe.CANDIDATES``) at the plateau's middle."""
        if self.center is None:
            return None
        return candidates(self.center, self.lr, self.steps, self.schedule)


def choose(
    baseline: Point,
    points: Sequence[Point],
    tolerance: float,
    reference: float | None = None,
    dead_cap: float | None = None,
) -> float | None:
    """The shrink with the most mono/N among ``points`` whose loss is at most ``1 +
    tolerance`` times the reference (the baseline's if None) and, under a cap, whose dead
    neurons are at most ``dead_cap``; None when none is."""
    ref = baseline.loss if reference is None else reference
    ok = [
        p
        for p in points
        if p.loss <= (1 + tolerance) * ref and (dead_cap is None or p.dead <= dead_cap)
    ]
    return max(ok, key=lambda p: p.mono).shrink if ok else None


def optimum_of(
    table: Table,
    reference: float | None = None,
    tolerance: float = LOSS_TOLERANCE,
    dead_cap: float | None = None,
    cols: Sequence[int] | np.ndarray | None = None,
) -> Optimum | None:
    """The Optimum of one grid point over the seed columns ``cols`` (all if None); None when
    its baseline is not stored. ``dead_cap`` is a fraction of the neurons k."""
    base, points = table.points(cols)
    if base is None:
        return None
    cap = None if dead_cap is None else dead_cap * table.k
    steps, schedule, lr, decay_schedule = table.key
    shrink = choose(base, points, tolerance, reference, cap)
    return Optimum(
        steps, schedule, lr, base, tuple(points), shrink, tolerance, reference, cap, decay_schedule
    )


def find_optimum(key: tuple, results: Results, tolerance: float = LOSS_TOLERANCE) -> Optimum | None:
    """The best shrink of one grid point (``Optimum``) measured against its own baseline, every
    stored shrink read; ``key`` is (steps, schedule, lr[, decay schedule])."""
    full: Key = (*key, "flat") if len(key) == 3 else key
    return optimum_of(table_of(full, results), None, tolerance)


def optima_of(
    tables: dict[Key, Table],
    tolerance: float = LOSS_TOLERANCE,
    *,
    reference: str = "own",
    dead_cap: float | None = None,
) -> list[Optimum]:
    """Every grid point's optimum (those with a stored baseline), in the tables' order.
    ``reference`` is ``best`` (the best baseline at that run length and rate: how the study's
    conclusions and the rule read it, ``decay_fit.study_summary``) or ``own`` (each point's
    own baseline, the chapters' reading until their text moves to ``best``)."""
    if reference not in ("best", "own"):
        raise ValueError(f"reference={reference!r} is not allowed: must be best or own")
    refs = reference_losses(tables, own=reference == "own")
    found = [optimum_of(t, refs[k], tolerance, dead_cap) for k, t in tables.items()]
    return [o for o in found if o is not None]


def optima(
    name: str,
    folder: str | Path,
    tolerance: float = LOSS_TOLERANCE,
    *,
    reference: str = "own",
    dead_cap: float | None = None,
) -> list[Optimum]:
    """Every stored grid point's optimum, in the study's order (``optima_of``)."""
    return optima_of(load_tables(name, folder), tolerance, reference=reference, dead_cap=dead_cap)


def _series(
    found: Sequence[Optimum], schedule: str, lr: float, decay_schedule: str = "flat"
) -> list[Optimum]:
    """The optima of one schedule, rate and decay schedule, by run length."""
    return sorted(
        (
            o
            for o in found
            if (o.schedule, o.lr, o.decay_schedule) == (schedule, lr, decay_schedule)
        ),
        key=lambda o: o.steps,
    )


def _optimum_at(found: Sequence[Optimum], steps: int, schedule: str, lr: float) -> Optimum | None:
    """The study's optimum at this run length, schedule and rate (the decay flat); None if the
    grid lacks it."""
    return next((o for o in _series(found, schedule, lr) if o.steps == steps), None)


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


def spreads(
    found: Sequence[Optimum], schedule: str, lr: float, decay_schedule: str = "flat"
) -> dict[str, float]:
    """For one schedule and rate: how much each candidate invariant varies across run lengths
    at the optimum's plateau, as max / min (1 means constant). Only points where the recipe
    works (``Optimum.engineers``) count."""
    rows = [o.candidates() for o in _series(found, schedule, lr, decay_schedule) if o.engineers]
    out = {}
    for name in CANDIDATES:
        values = [r[name] for r in rows if r is not None]
        out[name] = max(values) / min(values) if len(values) >= 2 else float("nan")
    return out


def fit_shrink(
    found: Sequence[Optimum],
    schedule: str,
    lr: float,
    t0: int = 4000,
    decay_schedule: str = "flat",
) -> tuple[float, float]:
    """The power law S* = s0 (T / t0)^b through the optima of one schedule and rate (least
    squares in log-log, over the points where the recipe works): (s0, b). b = 0 when the
    total shrink is the invariant, b = 1 when the per-step shrink d * lr is."""
    ok = [o for o in _series(found, schedule, lr, decay_schedule) if o.engineers]
    return log_log_fit([(math.log(o.steps / t0), math.log(o.center)) for o in ok if o.center])


def log_log_fit(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least squares through (log x, log y): (exp(intercept), slope); NaNs below two x."""
    if len({x for x, _ in points}) < 2:
        return float("nan"), float("nan")
    x, y = np.array(points).T
    slope, intercept = np.polyfit(x, y, 1)
    return float(math.exp(intercept)), float(slope)


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
    """The numbers the book states about the study, by name: for each schedule (``label``) at
    rate ``lr`` the run lengths where the recipe works (``_T_min``, ``_T_max``), the range of
    the best decay d* and of the best total shrink S* over them, and the fitted exponent b
    (``fit_shrink``)."""
    out: dict[str, float] = {}
    for o0 in {o.label: o for o in found}.values():
        series = _series(found, o0.schedule, lr, o0.decay_schedule)
        works = [o for o in series if o.engineers]
        rows = [c for o in works for c in [o.candidates()] if c is not None]
        if not rows:
            continue
        label = o0.label
        out[f"{label}_T_min"] = min(o.steps for o in works)
        out[f"{label}_T_max"] = max(o.steps for o in works)
        for name in ("S", "d"):
            values = [r[name] for r in rows]
            out[f"{label}_{name}_min"], out[f"{label}_{name}_max"] = min(values), max(values)
        out[f"{label}_b"] = fit_shrink(found, o0.schedule, lr, decay_schedule=o0.decay_schedule)[1]
        out[f"{label}_points"] = len(rows)
    return out


def point_facts(found: Sequence[Optimum], steps: int | None = None) -> dict[str, float]:
    """Each grid point's numbers by name, ``<schedule>_lr<rate>_<what>`` (at one run length:
    ``steps``, or every point when None, with a ``T<steps>_`` prefix when they span several):
    the baseline's and the best recipe's mono/N and coverage, the loss ratio at the best (to
    the reference), the best S and d, and the dead neurons there."""
    pts = [o for o in found if steps is None or o.steps == steps]
    several = steps is None and len({o.steps for o in pts}) > 1
    out: dict[str, float] = {}
    for o in pts:
        best = o.best
        if best is None or o.shrink is None:
            continue
        prefix = f"T{o.steps}_" if several else ""
        key = f"{prefix}{o.label}_lr{o.lr:g}"
        out[f"{key}_base"], out[f"{key}_mono"] = o.baseline.mono, best.mono
        out[f"{key}_coverage"] = best.coverage
        out[f"{key}_loss_ratio"] = o.loss_ratio
        out[f"{key}_S"], out[f"{key}_d"] = o.shrink, decay_for_shrink(o.shrink, o.lr, o.steps)
        out[f"{key}_dead"] = best.dead
    return out
