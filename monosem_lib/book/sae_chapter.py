"""What the SAE chapter shows of the stored study: its status line, table and figures.

Computing lives in ``sae_study`` (training, measuring, storing) and ``sae_compare`` (picking
contenders, frames, numbers); this module only formats and draws, and ``sae_explorer`` holds
the chapter's slider. Figures are ``BookFigure`` objects (outside pyplot, shown once where
displayed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ..paper.sae_study import SAE_SHAPES, SAEStudy, stale_sae_batches
from .figure_kit import BookFigure, sfa_heatmap
from .heatmap_marks import HeatmapFrame, Passing
from .sae_compare import SAE_CONTENDER_LABELS, SAEEntry
from .text import table_number

if TYPE_CHECKING:
    from IPython.display import HTML

__all__ = [
    "sae_data_status",
    "sae_comparison_table",
    "sae_heatmaps",
    "sae_compute_figure",
    "sae_hardness_figure",
    "sae_heatmap",
    "sae_frame",
    "SAE_COLORS",
]

SAE_COLORS = dict(
    zip(
        SAE_CONTENDER_LABELS.values(),
        ("#9a9a9a", "#2a7ab9", "#d9534f", "#f0ad4e", "#6a3d9a", "#3c9a5f"),
    )
)
TICK_SIZE = 10


def sae_data_status(root: str | Path, study: SAEStudy) -> str:
    """One line on the stored study: complete, or what is missing and the command that
    makes it (the chapter runs either way)."""
    stale = stale_sae_batches(root)
    if not stale:
        return f"The stored study is complete and current ({', '.join(study.shapes)}; `data/sae`)."
    scales = sorted({s.split("/")[0] for s in stale})
    return (
        f"{len(stale)} stored batches are missing or stale under `data/sae` (scales: "
        f"{', '.join(scales)}); the tables below show what is there. Make them with "
        "`make data-sae` in a clone of the repository (resumable), or one scale with "
        "`python -m monosem_lib.paper.sae_study --shape book`."
    )


# -- the main table -----------------------------------------------------------------------------


_FORMATS = {
    "units": "{:.0f}",
    "mono units": "{:.0f}",
    "features covered": "{:.3g}",
    "MMCS": "{:.3f}",
    "recovered (cos > 0.9)": "{:.3g}",
    "L0": table_number,
    "FVU": "{:.2f}",
    "dead": "{:.0f}",
    "task loss": table_number,
    "training GFLOP": "{:,.0f}",
    "seconds": "{:,.0f}",
}


def sae_comparison_table(frame: pd.DataFrame) -> HTML:
    """The contenders side by side as a styled table, one column per contender and one row
    per metric (eleven metrics side by side do not fit the page), one table per scale where
    ``frame`` holds several: integers as integers, 2-3 significant figures, a dash where a
    metric does not apply."""
    from IPython.display import HTML  # the [book] extra

    if not (isinstance(frame.index, pd.MultiIndex) and frame.index.nlevels > 1):
        return HTML(_metric_rows(frame).to_html())
    parts = [
        _metric_rows(frame.xs(key, level=0)).set_caption(SCALE_CAPTIONS.get(key, key))
        for key in dict.fromkeys(frame.index.get_level_values(0))
    ]
    return HTML("".join(p.to_html() for p in parts))


SCALE_CAPTIONS = {"book": "Book scale", "paper-cpu": "The paper's shape (1/256 of its samples)"}


def _metric_rows(frame: pd.DataFrame):
    """``frame`` transposed (a contender a column) and styled by ``_FORMATS``."""
    import pandas as pd  # the [book] extra

    table = frame.T
    style = table.style.format(na_rep="\u2014")
    for metric, fmt in _FORMATS.items():
        if metric in table.index:
            style = style.format(fmt, subset=pd.IndexSlice[[metric], :], na_rep="\u2014")
    return style


# -- figures ------------------------------------------------------------------------------------

MISSING = "not stored yet: make data-sae (see the note at the top of the chapter)"


def _missing_figure(what: str) -> Figure:
    """A small figure saying that the data behind ``what`` are not stored."""
    fig = BookFigure(figsize=(7, 1.2))
    fig.text(0.5, 0.5, f"{what}: {MISSING}", ha="center", va="center", fontsize=TICK_SIZE)
    return fig


def sae_frame(entry: SAEEntry, title: str, unit: str, text: str = "") -> HeatmapFrame:
    """One contender's heatmap frame: its stored single-feature activations, its units that
    pass the criterion (``Passing.of_sfa``, as ``dictionary.unit_metrics`` counted them) and
    ``title``; ``text`` follows the count in the numbers printed with it."""
    sfa = entry.sfa()
    passing = Passing.of_sfa(torch.from_numpy(sfa).double(), unit=unit)
    numbers = [passing.label(), f"covered {passing.covered / passing.N:.2f}"]
    return HeatmapFrame(sfa, passing, title, " | ".join(numbers + ([text] if text else [])))


def sae_heatmap(
    ax: Axes, sfa: np.ndarray, title: str, unit: str, passing: Passing | None = None
) -> None:
    """One contender's sorted single-feature heatmap (clipped at 0, its own colour scale)
    with its colorbar, its units (``neuron`` or ``latent``) named on the y axis and those
    that pass the criterion marked (``passing``; by default classified here)."""
    vmax = max(1e-6, float(np.clip(sfa, 0, None).max()))
    if passing is None:
        passing = Passing.of_sfa(torch.from_numpy(np.asarray(sfa)).double(), unit=unit)
    sfa_heatmap(ax, sfa, vmax=vmax, title=title, colorbar=True, passing=passing, count=False)
    ax.set_ylabel(f"{unit} (sorted)")
    ax.tick_params(labelsize=TICK_SIZE)


def sae_heatmaps(entries: dict[str, SAEEntry], figsize=(11, 7)) -> Figure:
    """Single-feature activations of every contender (units x features, sorted as in the
    paper's plots, clipped at 0), one panel each with its colorbar, the units that pass the
    0.999 criterion marked in red and counted in the title."""
    if not entries:
        return _missing_figure("the contenders' heatmaps")
    fig = BookFigure(figsize=figsize, layout="constrained")
    axes = fig.subplots(2, 3).ravel()
    for ax, (label, entry) in zip(axes, entries.items()):
        unit = "neuron" if "neurons" in label else "latent"
        frame = sae_frame(entry, label, unit)
        title = f"{label}\n{frame.text.replace(' | ', ', ')}"
        sae_heatmap(ax, frame.sfa, title, unit, frame.passing)
    for ax in axes[len(entries) :]:
        ax.set_visible(False)
    return fig


def sae_compute_figure(frame: pd.DataFrame, figsize=(11, 4.2)) -> Figure:
    """Features covered (0.999 criterion, filled) and recovered (cos > 0.9, hollow) against
    each path's training FLOPs, one panel per scale."""
    shapes = list(dict.fromkeys(frame.index.get_level_values(0)))
    if not shapes:
        return _missing_figure("coverage against compute")
    fig = BookFigure(figsize=figsize, layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(1, len(shapes)), sharey=True))
    for ax, shape in zip(axes, shapes):
        part = frame.loc[shape]
        for label, row in part.iterrows():
            color = SAE_COLORS[label]
            x = row["training GFLOP"]
            ax.scatter(x, row["features covered"], s=70, color=color, label=label, zorder=3)
            if not pd.isna(row["recovered (cos > 0.9)"]):
                ax.scatter(
                    x,
                    row["recovered (cos > 0.9)"],
                    s=170,
                    facecolor="none",
                    edgecolor=color,
                    linewidth=1.8,
                    zorder=3,
                )
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training FLOPs of the path (GFLOP)")
        ax.set_title(f"{shape}: N={SAE_SHAPES[shape].base.N}, m={SAE_SHAPES[shape].main[0]}")
        ax.set_ylim(-0.04, 1.04)
        ax.tick_params(labelsize=TICK_SIZE)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of features")
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(Line2D([], [], marker="o", ls="", color="k", label="covered (0.999)"))
    handles.append(
        Line2D(
            [], [], marker="o", ls="", mfc="none", ms=11, color="k", label="recovered (cos > 0.9)"
        )
    )
    fig.legend(handles=handles, loc="outside right center", fontsize=TICK_SIZE)
    return fig


def _grid(ax: Axes, part: pd.DataFrame, key: str, ms, epses, title: str):
    values = np.full((len(ms), len(epses)), np.nan)
    for _, r in part.iterrows():
        values[ms.index(r["m"]), epses.index(r["eps"])] = r[key]
    img = ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        if not np.isnan(v):
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=TICK_SIZE,
                color="white" if v < 0.6 else "black",
            )
    ax.set_xticks(range(len(epses)), [f"1/{round(1 / e)}" for e in epses])
    ax.set_yticks(range(len(ms)), [str(m) for m in ms])
    ax.set_xlabel("density eps")
    ax.set_ylabel("dimensions m")
    ax.set_title(title, fontsize=TICK_SIZE + 1)
    ax.tick_params(labelsize=TICK_SIZE)
    return img


def sae_hardness_figure(hard: pd.DataFrame, shape: str = "book", figsize=(11, 6.4)) -> Figure:
    """Every contender across the harder regimes (rows m, columns eps): top, the features
    covered under the 0.999 criterion; bottom, the features recovered (cos > 0.9) by each
    SAE. One shared colorbar, each cell annotated."""
    if hard.empty:
        return _missing_figure("the harder regimes")
    s = SAE_SHAPES[shape]
    ms, epses = list(s.m_values), list(s.eps_values)
    labels = list(SAE_CONTENDER_LABELS.values())
    fig = BookFigure(figsize=figsize, layout="constrained")
    axes = fig.subplots(2, len(labels))
    img = None
    for j, label in enumerate(labels):
        part = hard[hard["contender"] == label]
        img = _grid(axes[0, j], part, "features covered", ms, epses, f"{label}\ncovered")
        if label.endswith("neurons"):
            axes[1, j].set_axis_off()
            axes[1, j].text(
                0.5,
                0.5,
                "neurons have\nno atoms",
                ha="center",
                va="center",
                fontsize=TICK_SIZE,
                transform=axes[1, j].transAxes,
            )
        else:
            _grid(axes[1, j], part, "recovered", ms, epses, f"{label}\nrecovered")
    for ax in axes.ravel()[1:]:
        if ax.get_ylabel():
            ax.set_ylabel("")
    axes[1, 0].set_ylabel("dimensions m")
    if img is not None:
        fig.colorbar(img, ax=axes, shrink=0.6, label="fraction of features")
    return fig
