"""What the SAE chapter shows: its table, figures and slider, drawn from the stored study.

Computing lives in ``sae_study`` (training, measuring, storing) and ``sae_compare`` (picking
contenders, frames, numbers); this module only formats and draws. Figures are ``BookFigure``s
(outside pyplot, shown once where displayed). The slider exists twice, as the book promises
for every slider: live (ipywidgets + matplotlib sent as PNG, Colab-safe) and static (a JS
animation for the published page), drawing the same panels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .plots import BookFigure, sfa_heatmap
from .sae_compare import CONTENDER_LABELS, Entry, slider_entries, slider_steps
from .sae_study import SHAPES, Study, stale_batches

__all__ = [
    "glue",
    "glue_numbers",
    "data_status",
    "comparison_table",
    "contender_heatmaps",
    "compute_figure",
    "hardness_figure",
    "slider_explorer",
    "COLORS",
]

COLORS = dict(
    zip(
        CONTENDER_LABELS.values(),
        ("#9a9a9a", "#2a7ab9", "#d9534f", "#f0ad4e", "#6a3d9a", "#3c9a5f"),
    )
)
TICK_SIZE = 10


def glue(name: str, value: Any, display: bool = False) -> None:
    """MyST-NB's ``glue`` (the built book puts ``value`` into the text or a figure); where
    myst-nb is absent (Colab) the value is shown when ``display`` and otherwise dropped."""
    try:
        from myst_nb import glue as _glue
    except ImportError:
        if display:
            from IPython.display import display as _show

            _show(value)
        return
    _glue(name, value, display=display)


def glue_numbers(numbers: dict[str, float]) -> None:
    """Glue every number (not displayed) for the chapter's sentences."""
    for name, value in numbers.items():
        glue(name, value)


def data_status(root: str | Path, study: Study) -> str:
    """One line on the stored study: complete, or what is missing and the command that
    makes it (the chapter runs either way)."""
    stale = stale_batches(root)
    if not stale:
        shapes = ", ".join(study.shapes)
        return f"The stored study is complete and current ({shapes}; {Path(root)})."
    shapes = sorted({s.split("/")[0] for s in stale})
    return (
        f"{len(stale)} stored batches are missing or stale under {Path(root)} (scales: "
        f"{', '.join(shapes)}); the tables below show what is there. Make them with "
        "`make data-sae` in a clone of the repository (resumable), or one scale with "
        "`python -m monosem_lib.book.sae_study --shape book`."
    )


# -- the main table -----------------------------------------------------------------------------


def _sig3(value: float) -> str:
    """Three significant figures, trailing zeros kept (1.00, 0.0911, 121)."""
    return f"{value:#.3g}".rstrip(".")


_FORMATS = {
    "units": "{:.0f}",
    "mono units": "{:.0f}",
    "features covered": "{:.3g}",
    "MMCS": "{:.3f}",
    "recovered (cos > 0.9)": "{:.3g}",
    "L0": _sig3,
    "FVU": "{:.2f}",
    "dead": "{:.0f}",
    "task loss": _sig3,
    "training GFLOP": "{:,.0f}",
    "seconds": "{:,.0f}",
}


def comparison_table(frame: pd.DataFrame):
    """The contenders side by side as a styled table: integers as integers, 2-3 significant
    figures, a dash where a metric does not apply."""
    return frame.style.format(_FORMATS, na_rep="\u2014")


# -- figures ------------------------------------------------------------------------------------

MISSING = "not stored yet: make data-sae (see the note at the top of the chapter)"


def _missing_figure(what: str) -> Figure:
    """A small figure saying that the data behind ``what`` are not stored."""
    fig = BookFigure(figsize=(7, 1.2))
    fig.text(0.5, 0.5, f"{what}: {MISSING}", ha="center", va="center", fontsize=TICK_SIZE)
    return fig


def _heatmap(ax: Axes, sfa: np.ndarray, title: str, unit: str) -> None:
    vmax = max(1e-6, float(np.clip(sfa, 0, None).max()))
    sfa_heatmap(ax, sfa, vmax=vmax, title=title, colorbar=True)
    ax.set_ylabel(f"{unit} (sorted)")
    ax.tick_params(labelsize=TICK_SIZE)


def contender_heatmaps(entries: dict[str, Entry], figsize=(11, 6.6)) -> Figure:
    """Single-feature activations of every contender (units x features, sorted as in the
    paper's plots, clipped at 0), one panel each with its colorbar."""
    if not entries:
        return _missing_figure("the contenders' heatmaps")
    fig = BookFigure(figsize=figsize, layout="constrained")
    axes = fig.subplots(2, 3).ravel()
    for ax, (label, entry) in zip(axes, entries.items()):
        row = entry.row
        unit = "neuron" if "neurons" in label else "latent"
        title = f"{label}\ncovered {row['features_covered']:.2f}, mono {row['mono_units']}"
        _heatmap(ax, entry.sfa(), title, unit)
    for ax in axes[len(entries) :]:
        ax.set_visible(False)
    return fig


def compute_figure(frame: pd.DataFrame, figsize=(11, 4.2)) -> Figure:
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
            color = COLORS[label]
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
        ax.set_title(f"{shape}: N={SHAPES[shape].base.N}, m={SHAPES[shape].main[0]}")
        ax.set_ylim(-0.04, 1.04)
        ax.tick_params(labelsize=TICK_SIZE)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of features")
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], marker="o", ls="", color="k", label="covered (0.999)"))
    handles.append(
        plt.Line2D(
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


def hardness_figure(hard: pd.DataFrame, shape: str = "book", figsize=(11, 6.4)) -> Figure:
    """Every contender across the harder regimes (rows m, columns eps): top, the features
    covered under the 0.999 criterion; bottom, the features recovered (cos > 0.9) by each
    SAE. One shared colorbar, each cell annotated."""
    if hard.empty:
        return _missing_figure("the harder regimes")
    s = SHAPES[shape]
    ms, epses = list(s.m_values), list(s.eps_values)
    labels = list(CONTENDER_LABELS.values())
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


# -- the slider ---------------------------------------------------------------------------------


def _panel_text(row: dict) -> str:
    return (
        f"covered {row['features_covered']:.2f} | mono {row['mono_units']} | "
        f"MMCS {row['mmcs']:.3f} | rec {row['recovered']:.2f}\n"
        f"L0 {row['l0']:.2g} | FVU {row['fvu']:.2f} | dead {row['dead']} | "
        f"spliced loss {row['loss']:.3g}"
    )


def _draw_pair(
    fig: Figure, pair: tuple[Entry, Entry], latents: int, step: int, shape: str = "book"
) -> str:
    """The slider's frame: TopK and ReLU SAEs at one setting, heatmaps and numbers."""
    fig.clear()
    k, c = slider_steps(shape)[step]
    axes = fig.subplots(1, 2)
    texts = []
    for ax, entry, name in zip(axes, pair, (f"TopK, k = {k}", f"ReLU + L1, c = {c:g}")):
        _heatmap(ax, entry.sfa(), f"{name}, {latents} latents", "latent")
        text = _panel_text(entry.row)
        ax.text(0.5, -0.2, text, transform=ax.transAxes, ha="center", va="top", fontsize=TICK_SIZE)
        texts.append(f"{name}: " + text.replace("\n", " | "))
    fig.subplots_adjust(left=0.07, right=0.97, top=0.9, bottom=0.32, wspace=0.35)
    return f"{latents} latents, " + "; ".join(texts)


def slider_explorer(study: Study, live: bool = True, shape: str = "book", figsize=(11, 5.2)):
    """Slide the dictionary size and the sparsity of SAEs on the book baseline's h: each
    frame shows a TopK SAE (k) beside a ReLU SAE (c) at the same step of sparsity, their
    latents' single-feature heatmaps and metrics. ``live``: ipywidgets (instant, stored
    settings); else the static JS twin. None when the slider's batches are not stored."""
    frames = slider_entries(study, shape)
    if not frames:
        return None
    if live:
        return _live_slider(frames, shape, figsize)
    from .widgets import static_slider

    return static_slider(
        lambda fig, key: _draw_pair(fig, frames[key], *key, shape), sorted(frames), figsize=figsize
    )


def _live_slider(frames: dict, shape: str, figsize):
    """The live twin: two selection sliders (latents, sparsity step) over stored frames."""
    import ipywidgets as w

    from .widgets import LiveView

    s = SHAPES[shape]
    sizes = sorted({L for L, _ in frames})
    steps = slider_steps(shape)
    rule = [i for i, (k, _) in enumerate(steps) if k == s.topk(s.main[1])]
    controls = {
        "latents": w.SelectionSlider(
            options=sizes,
            value=s.latents if s.latents in sizes else sizes[0],
            description="latents",
            continuous_update=False,
        ),
        "step": w.SelectionSlider(
            options=[(f"k={k} | c={c:g}", i) for i, (k, c) in enumerate(steps)],
            value=rule[0] if rule else 0,
            description="sparsity",
            continuous_update=False,
        ),
    }

    def draw(fig: Figure, pair, values: dict) -> str:
        if pair is None:
            fig.clear()
            return "this setting is not stored (make data-sae)"
        return _draw_pair(fig, pair, values["latents"], values["step"], shape)

    return LiveView(
        controls, lambda v, progress: frames.get((v["latents"], v["step"])), draw, figsize
    )
