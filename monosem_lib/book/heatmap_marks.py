"""What a heatmap of single-feature activations marks and what its caption counts, computed
once: which units pass the 0.999 criterion (``Passing``, from ``metrics.monosemanticity``,
the function every count in the book comes from), the frames of the book's heatmap sliders
(``HeatmapFrame``: the activations drawn, the passing units marked and the text printed
with them), and the marks themselves (``PassingMarks``, which ``figure_kit.sfa_heatmap``
draws on every heatmap; ``drawn_marks`` reads them back from the axes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.patches import Rectangle

from ..analysis.metrics import MONO_THRESHOLD, NeuronStats, monosemanticity

__all__ = [
    "MARK_COLOR",
    "MARK_NOTE",
    "Passing",
    "HeatmapFrame",
    "HeatmapFrames",
    "PassingMarks",
    "drawn_marks",
]

MARK_COLOR = "#ff2d55"  # red-pink: apart from every colour of viridis
MARK_NOTE = "red: passes 0.999"


@dataclass(frozen=True)
class Passing:
    """Which units (neurons or SAE latents) of one heatmap pass the criterion.

    Attributes:
        mono: [k] bool, the units that pass (a dead unit never does).
        top: [k] the column of each unit's largest single-feature activation (0 .. N-1, or
            0 .. 2N-1 for a signed probe): the cell a passing unit's mark outlines.
        N: the number of features (a signed probe's columns fold onto them for ``covered``).
        unit: ``neuron`` or ``latent``, as captions name them.
    """

    mono: np.ndarray
    top: np.ndarray
    N: int
    unit: str = "neuron"

    @classmethod
    def of_stats(cls, stats: NeuronStats, instance: int = 0, unit: str = "neuron") -> Passing:
        """The classification ``stats`` holds (the one its counts come from)."""
        return cls(
            stats.mono[instance].numpy().astype(bool),
            stats.top_feature[instance].numpy().astype(int),
            stats.N,
            unit,
        )

    @classmethod
    def of_sfa(
        cls,
        sfa: torch.Tensor | np.ndarray,
        *,
        N: int | None = None,
        threshold: float = MONO_THRESHOLD,
        clamp: bool = False,
        unit: str = "neuron",
    ) -> Passing:
        """Classify single-feature activations [k, N] (or [k, 2N] with ``N`` given) with
        ``metrics.monosemanticity``, in their own dtype."""
        a = sfa.detach().cpu() if isinstance(sfa, torch.Tensor) else torch.from_numpy(sfa)
        _, top, mono, _ = monosemanticity(a, threshold, clamp)
        return cls(mono.numpy().astype(bool), top.numpy().astype(int), N or a.shape[-1], unit)

    @property
    def count(self) -> int:
        """How many units pass."""
        return int(self.mono.sum())

    @property
    def units(self) -> int:
        """How many units the heatmap has (its rows)."""
        return len(self.mono)

    @property
    def covered(self) -> int:
        """How many features own at least one passing unit."""
        return len(set((self.top[self.mono] % self.N).tolist()))

    def label(self, mark: str = "red") -> str:
        """The count as captions print it, e.g. ``mono neurons 3 of 32 (red)``, naming the
        marks in brackets (``mark``)."""
        return f"mono {self.unit}s {self.count} of {self.units} ({mark})"


@dataclass(frozen=True)
class HeatmapFrame:
    """One heatmap as a slider shows it: the activations drawn ([k, N] or [k, 2N]), the units
    marked, its title, and the numbers printed with it (``text``, led by ``passing.label()``)."""

    sfa: np.ndarray
    passing: Passing
    title: str
    text: str


@dataclass(frozen=True)
class HeatmapFrames:
    """A precomputed slider's frames: the ``values`` it steps through and ``frame(value)``,
    the heatmap panels of one value (one for most sliders, two side by side for the SAE's).
    Iterating gives (value, panels) for every value."""

    values: Sequence[Any]
    frame: Callable[[Any], tuple[HeatmapFrame, ...]]

    def __iter__(self) -> Iterator[tuple[Any, tuple[HeatmapFrame, ...]]]:
        for v in self.values:
            yield v, self.frame(v)

    def __len__(self) -> int:
        return len(self.values)


class PassingMarks:
    """The marks of a heatmap's passing units, drawn on its axes: a red outline on each
    passing unit's winning cell and a red bar beside its row, in a grey-framed column right of
    the heatmap (so that an empty column reads as none). ``show`` moves them to another
    frame's units; ``animated`` marks are left to a blit (``explorers.HeatmapPanel``)."""

    STRIP = (1.015, 1.055)  # the column's left and right edges, in axes fractions

    def __init__(self, ax: Axes, animated: bool = False):
        self.ax = ax
        x0, x1 = self.STRIP
        self.cells = PolyCollection(
            [], facecolors="none", edgecolors=MARK_COLOR, linewidths=1.3, zorder=3
        )
        self.strip = PolyCollection(
            [],
            facecolors=MARK_COLOR,
            edgecolors=MARK_COLOR,
            linewidths=1.5,  # a lone passing row stays visible on a phone
            transform=ax.get_yaxis_transform(),
            clip_on=False,
        )
        self.frame = Rectangle(
            (x0, 0), x1 - x0, 1, transform=ax.transAxes, fill=False, ec="0.55", lw=0.7
        )
        self.frame.set_clip_on(False)
        self.cells.set_gid("passing-cells")
        self.strip.set_gid("passing-rows")
        for c in (self.cells, self.strip):
            ax.add_collection(c, autolim=False)
            c.set_animated(animated)
        ax.add_patch(self.frame)

    def show(self, passing: Passing, order: tuple[np.ndarray, np.ndarray]) -> None:
        """Mark ``passing``'s units on a heatmap drawn in ``order`` (rows, columns)."""
        rows, cols = order
        row_at, col_at = np.argsort(rows), np.argsort(cols)  # unit/column -> its position
        units = np.flatnonzero(passing.mono)
        r, c = row_at[units], col_at[passing.top[units]]
        self.cells.set_verts(
            [
                [(x - 0.5, y - 0.5), (x + 0.5, y - 0.5), (x + 0.5, y + 0.5), (x - 0.5, y + 0.5)]
                for x, y in zip(c.tolist(), r.tolist())
            ]
        )
        x0, x1 = self.STRIP
        self.strip.set_verts(
            [[(x0, y - 0.5), (x1, y - 0.5), (x1, y + 0.5), (x0, y + 0.5)] for y in r.tolist()]
        )

    def artists(self) -> tuple[PolyCollection, PolyCollection]:
        return self.cells, self.strip


def drawn_marks(ax: Axes) -> tuple[list[int], list[tuple[int, int]]]:
    """What a heatmap's axes mark, read back from the drawn artists: the row positions the
    bar beside the heatmap marks (sorted), and the (row, column) positions of the outlined
    cells (sorted), both counted from the top left of the sorted image."""

    def centres(gid: str) -> list[tuple[int, int]]:
        (coll,) = [c for c in ax.collections if c.get_gid() == gid]
        boxes = [np.asarray(p.vertices, dtype=float) for p in coll.get_paths()]
        middle = [(v.min(0) + v.max(0)) / 2 for v in boxes]
        return sorted((int(round(y)), int(round(x))) for x, y in middle)

    return [r for r, _ in centres("passing-rows")], centres("passing-cells")
