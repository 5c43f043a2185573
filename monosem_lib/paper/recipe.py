"""The decay study: how to set bias decay for a given run length, learning rate and schedule.

Bias decay multiplies every bias by ``1 - d * lr`` after each step of the first half of
training, whatever the scheduled rate at that step. Several quantities could be what a good
recipe keeps fixed when the run length T, the rate or the schedule changes:

- ``S = d * lr * ceil(T/2)``, the total shrink (``sweeps.total_shrink``);
- ``d`` itself, the shrink per unit of base learning rate;
- ``d * lr``, the shrink per step;
- ``d / <m>``, the shrink per unit of *scheduled* learning rate, where ``<m>`` is the mean
  schedule multiplier over the first half (1 for a constant rate, about 0.82 for one
  half-cosine, about 0.5 for the paper's periodic cosine).

A :class:`DecayStudy` trains, for each run length, schedule and rate, the engineered recipe
(initial bias -1) at a grid of total shrinks beside the baseline (initial bias 0, no decay),
with the same seeds. :func:`optima` finds, per cell, the shrink that maximises monosemantic
neurons per feature while keeping the loss within ``LOSS_TOLERANCE`` of the baseline's, and
:func:`invariants` says how much each candidate quantity varies across run lengths at the
optimum.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.config import Config, ConfigError, preset
from ..core.optim import schedule_multipliers
from ..core.training import train
from ..store.summaries import holds_configs, save_summary

__all__ = [
    "DecayStudy",
    "STUDIES",
    "LOSS_TOLERANCE",
    "CANDIDATES",
    "mean_multiplier",
    "study_cells",
]

# The engineered model may cost at most this fraction of the baseline's loss.
LOSS_TOLERANCE = 0.02

# The quantities a recipe could hold fixed, in the order the book reports them.
CANDIDATES = ("S", "d", "d_lr", "d_per_scheduled_lr")


@dataclass(frozen=True)
class Cell:
    """One stored file of a study: every shrink and the baseline, for one run length,
    schedule, learning rate and block of seeds."""

    name: str
    steps: int
    schedule: str
    lr: float
    seeds: tuple[int, ...]


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
    """

    name: str
    scale: str
    shrinks: tuple[float, ...]
    seeds: int
    grid: tuple[tuple[int, str, float], ...]
    seeds_per_file: int = 3
    init_bias: float = -1.0

    def cells(self) -> list[Cell]:
        """The study's files, in the order they are trained: every grid point with the first
        block of seeds, then again with the next block (so an interrupted study has every
        point at least once)."""
        out = []
        for first in range(0, self.seeds, self.seeds_per_file):
            seeds = tuple(range(first, min(self.seeds, first + self.seeds_per_file)))
            tag = "" if len(seeds) == self.seeds else f"-seeds{seeds[0]}-{seeds[-1]}"
            for steps, schedule, lr in self.grid:
                name = f"T{steps}-{schedule}-lr{lr:g}{tag}"
                out.append(Cell(name, steps, schedule, lr, seeds))
        return out

    def configs(self, cell: Cell) -> list[Config]:
        """The cell's instances: the baseline, then every shrink, each at every seed."""
        base = preset(self.scale, steps=cell.steps, schedule=cell.schedule, lr=cell.lr)
        out = [base.replace(seed=s) for s in cell.seeds]
        for shrink in self.shrinks:
            decay = decay_at_shrink(shrink, cell.lr, cell.steps)
            out += [
                base.replace(seed=s, init_bias=self.init_bias, bias_decay=decay) for s in cell.seeds
            ]
        return out


def decay_at_shrink(shrink: float, lr: float, steps: int) -> float:
    """The decay that gives total shrink ``shrink`` (``d * lr * ceil(steps/2)``)."""
    if shrink < 0 or not math.isfinite(shrink):
        raise ConfigError("shrink", shrink, "must be a finite number >= 0")
    return shrink / (lr * math.ceil(steps / 2))


def mean_multiplier(schedule: str, steps: int) -> float:
    """The mean learning-rate multiplier over the first half of a run (where decay acts)."""
    return float(schedule_multipliers(schedule, steps)[: math.ceil(steps / 2)].mean())


def candidates(shrink: float, lr: float, steps: int, schedule: str) -> dict[str, float]:
    """Every candidate invariant at one point (``CANDIDATES``)."""
    d = decay_at_shrink(shrink, lr, steps)
    return {
        "S": shrink,
        "d": d,
        "d_lr": d * lr,
        "d_per_scheduled_lr": d / mean_multiplier(schedule, steps),
    }


_BOOK_STEPS = (1000, 2000, 4000, 8000, 16000)
_SCHEDULES = ("cosine", "paper", "constant")

STUDIES: dict[str, DecayStudy] = {
    # Book scale: T over 16x, three schedules at lr 0.01; two more rates (half-cosine) at
    # three lengths, which tell d from d * lr.
    "book": DecayStudy(
        name="book",
        scale="book",
        shrinks=(0.0, 1.0, 2.0, 3.0, 4.5, 6.0, 9.0, 12.0, 18.0, 24.0, 30.0),
        seeds=3,
        grid=tuple((t, s, 0.01) for t in _BOOK_STEPS for s in _SCHEDULES)
        + tuple((t, "cosine", lr) for lr in (0.003, 0.03) for t in (1000, 4000, 16000)),
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


def study_cells(name: str) -> Iterator[tuple[Cell, list[Config]]]:
    """Every cell of study ``name`` with its configs."""
    if name not in STUDIES:
        raise ConfigError("study", name, "must be one of " + ", ".join(STUDIES))
    study = STUDIES[name]
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
        written.append(
            save_summary(run, folder, name=cell.name, scale=name, overwrite=True, compact=True)
        )
    return written
