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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.config import Config, ConfigError, preset
from ..core.training import train
from ..store.results import Results, load_results
from ..store.summaries import holds_configs, lean_summary, save_summary
from .claims import MARGINS
from .recipe import CANDIDATES, candidates, decay_for_shrink, total_shrink

__all__ = [
    "DecayStudy",
    "Cell",
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


@dataclass(frozen=True)
class Cell:
    """One stored file of a study: every shrink and the baseline, for one run length,
    schedule, learning rate and block of seeds."""

    name: str
    steps: int
    schedule: str
    lr: float
    seeds: tuple[int, ...]
    shrinks: tuple[float, ...]


@dataclass(frozen=True)
class DecayStudy:
    """A grid of run lengths, schedules, rates and total shrinks at one scale.

    Attributes:
        name: the study's name (``book`` or ``paper-cpu``); also its folder under ``data/``.
        scale: the preset the models are built from.
        shrinks: the total shrinks S tried with initial bias -1 (0 means no decay).
        seeds: seeds per point; every shrink and the baseline share them.
        grid: (steps, schedule, lr) triples; each is one cell.
        seeds_per_file: seeds stored together in one file (a resumable unit of work).
        init_bias: the engineered initial bias.
        long: (from_steps, seeds, shrinks) for the longest runs, which cost the most: grid
            points of at least ``from_steps`` steps run these fewer seeds and shrinks.
    """

    name: str
    scale: str
    shrinks: tuple[float, ...]
    seeds: int
    grid: tuple[tuple[int, str, float], ...]
    seeds_per_file: int = 3
    init_bias: float = -1.0
    long: tuple[int, int, tuple[float, ...]] | None = None

    def _setting(self, steps: int) -> tuple[int, tuple[float, ...]]:
        """Seeds and shrinks of a grid point of ``steps`` steps."""
        if self.long is not None and steps >= self.long[0]:
            return self.long[1], self.long[2]
        return self.seeds, self.shrinks

    def cells(self) -> list[Cell]:
        """The study's files, in the order they are trained: every grid point with the first
        block of seeds, then again with the next block (so an interrupted study has every
        point at least once)."""
        out = []
        for first in range(0, self.seeds, self.seeds_per_file):
            seeds = tuple(range(first, min(self.seeds, first + self.seeds_per_file)))
            for steps, schedule, lr in self.grid:
                count, shrinks = self._setting(steps)
                if first >= count:
                    continue
                block = tuple(s for s in seeds if s < count)
                tag = "" if len(block) == count else f"-seeds{block[0]}-{block[-1]}"
                name = f"T{steps}-{schedule}-lr{lr:g}{tag}"
                out.append(Cell(name, steps, schedule, lr, block, shrinks))
        return out

    def configs(self, cell: Cell) -> list[Config]:
        """The cell's instances: the baseline, then every shrink, each at every seed."""
        base = preset(self.scale, steps=cell.steps, schedule=cell.schedule, lr=cell.lr)
        out = [base.replace(seed=s) for s in cell.seeds]
        for shrink in cell.shrinks:
            decay = decay_for_shrink(shrink, cell.lr, cell.steps)
            out += [
                base.replace(seed=s, init_bias=self.init_bias, bias_decay=decay) for s in cell.seeds
            ]
        return out


_BOOK_STEPS = (1000, 2000, 4000, 8000, 16000)
_SCHEDULES = ("cosine", "paper", "constant")

STUDIES: dict[str, DecayStudy] = {
    # Book scale: T over 16x, three schedules at lr 0.01; two more rates (half-cosine) at
    # T = 4000, which tell d from d * lr.
    "book": DecayStudy(
        name="book",
        scale="book",
        shrinks=(0.0, 1.0, 2.0, 3.0, 4.5, 6.0, 9.0, 12.0, 18.0, 24.0, 30.0),
        seeds=3,
        grid=tuple((t, s, 0.01) for t in _BOOK_STEPS[:-1] for s in _SCHEDULES)
        + tuple((4000, "cosine", lr) for lr in (0.003, 0.03))
        + tuple((_BOOK_STEPS[-1], s, 0.01) for s in _SCHEDULES),
        # 16000 steps: two seeds, and neither no decay (it leaves nearly every neuron dead
        # at every shorter T) nor S = 30 (too strong at every shorter T).
        long=(16000, 2, (1.0, 2.0, 3.0, 4.5, 6.0, 9.0, 12.0, 18.0, 24.0)),
    ),
    # The paper's shape at the CPU budget (2^22 samples): both schedules, two rates.
    "paper-cpu": DecayStudy(
        name="paper-cpu",
        scale="paper-cpu",
        shrinks=(0.0, 3.0, 6.0, 12.0, 20.0),
        seeds=2,
        grid=tuple((2**12, s, lr) for lr in (0.01, 0.03) for s in ("cosine", "paper")),
        seeds_per_file=1,
    ),
}

# Where each study is stored, under the data folder.
STUDY_FOLDERS = {name: f"decay-study/{name}" for name in STUDIES}


def _study(name: str) -> DecayStudy:
    if name not in STUDIES:
        raise ConfigError("study", name, "must be one of " + ", ".join(STUDIES))
    return STUDIES[name]


def study_cells(name: str) -> Iterator[tuple[Cell, list[Config]]]:
    """Every cell of study ``name`` with its configs."""
    study = _study(name)
    for cell in study.cells():
        yield cell, study.configs(cell)


def run_study(
    name: str, folder: str | Path, *, resume: bool = True, only: Sequence[str] = ()
) -> list[Path]:
    """Train and store every cell of study ``name`` under ``folder`` (one compact summary a
    cell), skipping cells whose stored file holds the same configs from the same code."""
    written = []
    for cell, configs in study_cells(name):
        if only and cell.name not in only:
            continue
        if resume and holds_configs(Path(folder) / f"{cell.name}.json", configs):
            continue
        run = train(configs)
        path = save_summary(run, folder, name=cell.name, scale=name, overwrite=True, compact=True)
        written.append(lean_summary(path))
    return written


def stale_cells(name: str, root: str | Path) -> list[str]:
    """The stored cells of study ``name`` under the data folder ``root`` that are not current
    (other configs, or made by code that gives other numbers), by file name."""
    folder = Path(root) / STUDY_FOLDERS[name]
    return [
        cell.name
        for cell, configs in study_cells(name)
        if (folder / f"{cell.name}.json").exists()
        and not holds_configs(folder / f"{cell.name}.json", configs)
    ]


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
