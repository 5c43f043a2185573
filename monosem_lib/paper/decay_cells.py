"""The decay study's grid: which models it trains, in which stored files (cells), in what order.

A :class:`DecayStudy` is a list of :class:`Part` s. A part trains, at each of its grid points
(run length T, schedule, base rate), the engineered recipe (initial bias -1) at a set of total
shrinks S, optionally beside the baseline (initial bias 0, no decay), for a set of seeds. Each
part splits into cells, one stored file each, the unit of resumable work: an interrupted study
resumes from its completed cells (files are written atomically). Cells run in the study's
order: parts as listed (the most valuable first), within a part the longest runs first.

The analysis grid of S is spaced by sqrt(2) (``root2_grid``); the first parts of each study are
its earlier, coarser grid (``_OLD_SHRINKS``), kept because their files are stored and hold
grid points (3, 6, 12, 24 and the baselines) that the new parts then do not repeat.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.config import DECAY_SCHEDULES, Config, ConfigError, check_choice, preset
from ..core.training import train
from ..store.summaries import holds_configs, lean_summary, save_summary
from .recipe import decay_for_shrink

__all__ = [
    "Part",
    "Cell",
    "DecayStudy",
    "STUDIES",
    "STUDY_FOLDERS",
    "root2_grid",
    "get_study",
    "study_cells",
    "run_study",
    "stale_cells",
]

GridPoint = tuple[int, str, float]


def root2_grid(lo: float, hi: float) -> tuple[float, ...]:
    """The total shrinks 1.5 * 2^(k/2) (integer k) from ``lo`` to ``hi`` inclusive: a grid
    spaced by sqrt(2) that holds 1.5, 3, 6, 12 and 24."""
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise ConfigError("grid", (lo, hi), "must satisfy 0 < lo <= hi < inf")
    k0, k1 = math.ceil(2 * math.log2(lo / 1.5) - 1e-9), math.floor(2 * math.log2(hi / 1.5) + 1e-9)
    return tuple(1.5 * 2 ** (k / 2) for k in range(k0, k1 + 1))


@dataclass(frozen=True)
class Part:
    """A block of a study: the recipe at ``shrinks`` (and the baseline if ``baseline``) at every
    grid point of ``points`` ((steps, schedule, lr) triples), for ``seeds``.

    Attributes:
        tag: added to its cells' names (the first part of a study may leave it empty).
        seeds_per_file: seeds stored together in one cell.
        split: one cell per shrink (and one for the baseline), for models slow enough that a
            cell of every shrink would not finish in a session.
        decay_schedule: ``flat`` or ``rate`` (``Config.decay_schedule``).
        seed_tag: name cells by their seeds (``-seeds0-2``); the earlier grid's book cells
            were named without.
    """

    points: tuple[GridPoint, ...]
    shrinks: tuple[float, ...]
    seeds: tuple[int, ...]
    baseline: bool = True
    tag: str = ""
    seeds_per_file: int = 1
    split: bool = False
    decay_schedule: str = "flat"
    seed_tag: bool = True

    def __post_init__(self) -> None:
        check_choice("decay_schedule", self.decay_schedule, DECAY_SCHEDULES)
        if not self.points or not self.seeds or not (self.shrinks or self.baseline):
            raise ConfigError("part", self.tag, "needs grid points, seeds and something to train")


@dataclass(frozen=True)
class Cell:
    """One stored file of a study: the recipe at ``shrinks`` (and the baseline if
    ``baseline``) at one run length, schedule and rate, for a block of seeds."""

    name: str
    steps: int
    schedule: str
    lr: float
    seeds: tuple[int, ...]
    shrinks: tuple[float, ...]
    baseline: bool = True
    decay_schedule: str = "flat"


def _part_cells(part: Part) -> list[Cell]:
    """A part's cells: seed blocks outermost, then run lengths longest first."""
    blocks = [
        part.seeds[i : i + part.seeds_per_file]
        for i in range(0, len(part.seeds), part.seeds_per_file)
    ]
    units: list[tuple[str, tuple[float, ...], bool]] = [("", part.shrinks, part.baseline)]
    if part.split:
        units = [(f"-S{s:.3g}", (s,), False) for s in part.shrinks]
        units += [("-base", (), True)] if part.baseline else []
    out = []
    for block in blocks:
        seed_tag = f"-seeds{block[0]}-{block[-1]}" if part.seed_tag else ""
        for steps, schedule, lr in sorted(part.points, key=lambda p: -p[0]):
            for unit, shrinks, base in units:
                name = f"T{steps}-{schedule}-lr{lr:g}{part.tag}{unit}{seed_tag}"
                cell = Cell(name, steps, schedule, lr, block, shrinks, base, part.decay_schedule)
                out.append(cell)
    return out


@dataclass(frozen=True)
class DecayStudy:
    """A decay study at one scale.

    Attributes:
        name: the study's name (``book`` or ``paper-cpu``); also its folder under ``data/``.
        scale: the preset the models are built from.
        shrinks: the analysis grid of total shrinks (sqrt(2)-spaced); stored points off it
            (the earlier grid's) are not read.
        parts: what is trained, in order (``Part``).
        init_bias: the engineered initial bias.
    """

    name: str
    scale: str
    shrinks: tuple[float, ...]
    parts: tuple[Part, ...]
    init_bias: float = -1.0

    @property
    def grid(self) -> tuple[GridPoint, ...]:
        """Every grid point of every part, once, in the parts' order."""
        return tuple(dict.fromkeys(p for part in self.parts for p in part.points))

    def cells(self) -> list[Cell]:
        """The study's files, in the order they are trained."""
        out = [cell for part in self.parts for cell in _part_cells(part)]
        names = [c.name for c in out]
        if len(set(names)) != len(names):
            raise ConfigError("study", self.name, "has two cells of one name; tag its parts")
        return out

    def configs(self, cell: Cell) -> list[Config]:
        """The cell's instances: the baseline (if it has one), then every shrink, each at
        every seed."""
        base = preset(
            self.scale, steps=cell.steps, schedule=cell.schedule, lr=cell.lr,
            decay_schedule=cell.decay_schedule,
        )  # fmt: skip
        out = [base.replace(seed=s) for s in cell.seeds] if cell.baseline else []
        for shrink in cell.shrinks:
            decay = decay_for_shrink(shrink, cell.lr, cell.steps)
            out += [
                base.replace(seed=s, init_bias=self.init_bias, bias_decay=decay) for s in cell.seeds
            ]
        return out


# The earlier, coarser grid of total shrinks; its stored cells are the studies' first parts.
_OLD_SHRINKS = (0.0, 1.0, 2.0, 3.0, 4.5, 6.0, 9.0, 12.0, 18.0, 24.0, 30.0)
_SCHEDULES = ("cosine", "paper", "constant")
_SHORT = (1000, 2000, 4000, 8000)
_BOOK_GRID = root2_grid(1.0, 34.0)  # 1.06 ... 33.9
_PAPER_GRID = root2_grid(1.5, 12.0)  # 1.5 ... 12


def _new(grid: Sequence[float], old: Sequence[float]) -> tuple[float, ...]:
    """The points of ``grid`` not in ``old``."""
    have = {round(s, 6) for s in old}
    return tuple(s for s in grid if round(s, 6) not in have)


def _lr_points(lrs: Sequence[float]) -> tuple[GridPoint, ...]:
    return tuple((8000, "cosine", lr) for lr in lrs)


def _root2(steps: Sequence[int]) -> Part:
    """The sqrt(2) points the earlier grid lacks at these run lengths (every schedule, lr 0.01),
    seeds 0-2."""
    points = tuple((t, s, 0.01) for t in steps for s in _SCHEDULES)
    return Part(points, _new(_BOOK_GRID, _OLD_SHRINKS), (0, 1, 2), baseline=False, tag="-root2")


def _rate_decay(seeds: tuple[int, ...]) -> Part:
    """The periodic cosine with decay that follows the rate, 1000 to 16000 steps."""
    points = tuple((t, "paper", 0.01) for t in (*_SHORT, 16000))
    return Part(points, root2_grid(1.0, 48.0), seeds, tag="-ratedecay", decay_schedule="rate")


_KNIFE_EDGES = ((8000, "cosine", 0.01), (8000, "paper", 0.01), (4000, "cosine", 0.01),
                (2000, "paper", 0.01))  # fmt: skip

_BOOK_PARTS = (
    # The earlier grid (stored): T up to 8000 at three seeds, the rate at T = 4000.
    Part(
        tuple((t, s, 0.01) for t in _SHORT for s in _SCHEDULES)
        + ((4000, "cosine", 0.003), (4000, "cosine", 0.03)),
        _OLD_SHRINKS,
        (0, 1, 2),
        seeds_per_file=3,
        seed_tag=False,
    ),
    # ... and T = 16000 at two seeds, neither no decay nor S = 30.
    Part(
        tuple((16000, s, 0.01) for s in _SCHEDULES),
        _OLD_SHRINKS[1:-1],
        (0, 1),
        seeds_per_file=2,
        seed_tag=False,
    ),
    # The learning rate's share: T = 8000 under the half-cosine, each rate where its
    # optimum can lie (the best S grows with the rate).
    Part(_lr_points((0.003, 0.006)), root2_grid(0.7, 24.0), (0, 1, 2), tag="-lr"),
    Part(_lr_points((0.02, 0.03)), root2_grid(2.0, 96.0), (0, 1, 2), tag="-lr"),
    # The sqrt(2) grid at three seeds: the points the earlier grid lacks, where most decisions
    # sit (T = 8000 and 4000) first, then the longest runs.
    _root2((8000, 4000)),
    Part(
        tuple((16000, s, 0.01) for s in _SCHEDULES),
        _new(_BOOK_GRID, _OLD_SHRINKS),
        (0, 1),
        baseline=False,
        tag="-root2",
    ),  # fmt: skip
    Part(tuple((16000, s, 0.01) for s in _SCHEDULES), _BOOK_GRID, (2,), tag="-root2"),
    # The troughs explanation tested: the periodic cosine with decay in proportion to the
    # scheduled rate, one seed first.
    _rate_decay((0,)),
    _root2((2000, 1000)),
    _rate_decay((1, 2)),
    # Five seeds where a decision sits within noise: the points where at least a tenth of
    # the bootstrap replicates over the first three seeds disagreed on whether the recipe
    # engineers or on its best shrink (``decay_fit.knife_edges``, with either loss reference).
    Part(_KNIFE_EDGES, _BOOK_GRID, (3, 4), tag="-more"),
)


def _paper_shape(lr: float) -> tuple[Part, ...]:
    """The paper's shape at rate ``lr``: the periodic cosine at T = 2048 ... 8192 on the
    sqrt(2) grid from 1.5 to 12 at two seeds, one seed at every length first (so the exponent
    can be read early), longest runs first; T = 4096 at seed 0 has its baseline and S = 3, 6,
    12 from the earlier grid."""
    at = lambda *ts: tuple((t, "paper", lr) for t in ts)
    return (
        Part(at(8192), _PAPER_GRID, (0,), tag="-root2", split=True),
        Part(at(4096), _new(_PAPER_GRID, (3.0, 6.0, 12.0)), (0,), baseline=False,
             tag="-root2", split=True),
        Part(at(2048), _PAPER_GRID, (0,), tag="-root2", split=True),
        Part(at(8192), _PAPER_GRID, (1,), tag="-root2", split=True),
        Part(at(4096), _PAPER_GRID, (1,), tag="-root2", split=True),
        Part(at(2048), _PAPER_GRID, (1,), tag="-root2", split=True),
    )  # fmt: skip


_OLD_PAPER = (0.0, 3.0, 6.0, 12.0, 20.0)

STUDIES: dict[str, DecayStudy] = {
    # The analysis grid: every sqrt(2) point any part trains (0.75 to 96 for the rate's share).
    "book": DecayStudy(name="book", scale="book", shrinks=root2_grid(0.7, 96.0), parts=_BOOK_PARTS),
    # The paper's shape at the CPU budget (batch 1024), one file per model.
    "paper-cpu": DecayStudy(
        name="paper-cpu",
        scale="paper-cpu",
        shrinks=_PAPER_GRID,
        parts=(
            # The earlier grid (stored): T = 4096, both schedules, two rates.
            Part(tuple((4096, "cosine", lr) for lr in (0.01, 0.03)), _OLD_PAPER, (0, 1)),
            Part(tuple((4096, "paper", lr) for lr in (0.01, 0.03)), _OLD_PAPER, (0,)),
            *_paper_shape(0.01),
            *_paper_shape(0.03),  # if the budget allows
        ),
    ),
}

# Where each study is stored, under the data folder.
STUDY_FOLDERS = {name: f"decay-study/{name}" for name in STUDIES}


def get_study(name: str) -> DecayStudy:
    """The study ``name`` (``STUDIES``), or a ConfigError naming the known ones."""
    if name not in STUDIES:
        raise ConfigError("study", name, "must be one of " + ", ".join(STUDIES))
    return STUDIES[name]


def study_cells(name: str) -> Iterator[tuple[Cell, list[Config]]]:
    """Every cell of study ``name`` with its configs."""
    study = get_study(name)
    for cell in study.cells():
        yield cell, study.configs(cell)


def run_study(
    name: str,
    folder: str | Path,
    *,
    resume: bool = True,
    only: Sequence[str] = (),
    limit: int | None = None,
) -> list[Path]:
    """Train and store the cells of study ``name`` under ``folder`` (one compact summary a
    cell, written atomically), in the study's order, skipping cells whose stored file holds
    the same configs from code that gives the same numbers; at most ``limit`` cells trained."""
    written: list[Path] = []
    for cell, configs in study_cells(name):
        if (only and cell.name not in only) or (limit is not None and len(written) >= limit):
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
