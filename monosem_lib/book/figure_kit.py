"""Figure primitives in plain matplotlib (Colab, ipywidgets and the static site alike): the
book's style, figures outside pyplot, heatmaps of single-feature activations, seed bands,
sweep plots. Functions draw into axes they are given (so widgets can redraw in place) or
return a new figure. Nothing here computes science.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D

from ..analysis.classes import NEURON_CLASSES
from ..analysis.metrics import METRICS
from ..analysis.responses import MultiFeatureResponse
from ..paper.series import SweepSeries, batch_sentence
from ..paper.table1 import TABLE1
from .heatmap_marks import MARK_NOTE, Passing, PassingMarks
from .text import use_book_tables

__all__ = [
    "style",
    "seeds_label",
    "BookFigure",
    "heatmap_order",
    "sfa_heatmap",
    "training_curves_figure",
    "bias_profile",
    "seed_band",
    "sweep_plot",
    "sweep_series_figure",
    "captioned",
    "png_bytes",
    "png_base64",
    "batch_figure",
    "multi_feature_figure",
    "linear_map_heatmap",
    "heatmap_row",
    "CLASS_COLORS",
    "subplots",
    "as_numpy",
    "pow2_label",
    "log_ticks",
]

CLASS_COLORS = {name: c.color for name, c in NEURON_CLASSES.items()}


def style() -> None:
    """The book's defaults: matplotlib readable at the width of a page, and tables whose
    numbers print the book's way (``text.table_number``)."""
    matplotlib.rcParams.update(
        {
            "figure.dpi": 90,
            "savefig.dpi": 90,
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
            "animation.embed_limit": 40.0,
        }
    )
    use_book_tables()


class BookFigure(Figure):
    """A Figure outside pyplot that renders itself as PNG wherever it is displayed (Jupyter,
    Colab, nbval, the built book), with or without the inline backend."""

    def _repr_png_(self) -> bytes:
        return png_bytes(self)


def png_bytes(fig: Figure, tight: bool = True) -> bytes:
    """``fig`` as PNG bytes; ``tight`` crops it to what is drawn (frames of one slider keep
    the full canvas, so that they line up)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight" if tight else None)
    return buf.getvalue()


def png_base64(fig: Figure, tight: bool = True) -> str:
    """``png_bytes`` as base64 text, for a ``data:image/png;base64,`` URL."""
    return base64.b64encode(png_bytes(fig, tight)).decode()


def subplots(nrows: int = 1, ncols: int = 1, *, figsize=(7, 3.2), constrained_layout=True, **kw):
    """``plt.subplots`` without pyplot: a ``BookFigure`` that only shows when displayed."""
    fig = BookFigure(figsize=figsize, layout="constrained" if constrained_layout else None)
    return fig, fig.subplots(nrows, ncols, **kw)


def as_numpy(x) -> np.ndarray:
    return (
        x.detach().cpu().double().numpy()
        if isinstance(x, torch.Tensor)
        else np.asarray(x, dtype=float)
    )


def heatmap_order(sfa: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column order of the paper's single-feature-activation plots.

    Neurons are sorted by how monosemantic they are (top feature's share, descending), then
    features by the position of the neuron they activate most, so monosemantic neurons line
    up along a diagonal.

    Args:
        sfa: [k, N] single-feature activations of one instance.
    Returns:
        The neuron order (length k) and the feature order (length N).
    """
    a = np.clip(as_numpy(sfa), 0, None)
    total = a.sum(1)
    share = np.where(total > 1e-6, a.max(1) / np.maximum(total, 1e-30), -1.0)
    neuron_order = np.argsort(-share, kind="stable")
    strongest = np.argmax(a[neuron_order], axis=0)  # per feature: rank of its strongest neuron
    feature_order = np.argsort(strongest, kind="stable")
    return neuron_order, feature_order


def sfa_heatmap(
    ax: Axes,
    sfa: torch.Tensor | np.ndarray,
    *,
    vmax: float | None = None,
    title: str | None = None,
    cmap: str = "viridis",
    colorbar: bool = False,
    order: tuple[np.ndarray, np.ndarray] | None = None,
    passing: Passing | None = None,
    xlabel: str = "feature (sorted)",
    count: bool = True,
    marks: PassingMarks | None = None,
) -> AxesImage:
    """Draw the sorted neurons x features heatmap of one instance's single-feature activations
    ``sfa`` [k, N] (``order``: rows and columns from ``heatmap_order``), its passing units
    marked (``PassingMarks``; ``passing`` by default classifies ``sfa`` with the paper's
    criterion; ``marks``: drawn there, else on new ones). The x label says what the marks
    mean, with how many units pass when ``count`` (sliders print the count with the frame)."""
    a = np.clip(as_numpy(sfa), 0, None)
    rows, cols = heatmap_order(a) if order is None else order
    img = ax.imshow(
        a[rows][:, cols],
        aspect="auto",
        interpolation="nearest",
        cmap=cmap,
        vmin=0,
        vmax=vmax if vmax is not None else max(1e-6, float(a.max())),
    )
    passing = Passing.of_sfa(sfa) if passing is None else passing
    (PassingMarks(ax) if marks is None else marks).show(passing, (rows, cols))
    note = passing.label("red: pass 0.999") if count else MARK_NOTE
    ax.set_xlabel(f"{xlabel}\n{note}")
    ax.set_ylabel(f"{passing.unit} (sorted by monosemanticity)")
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(img, ax=ax, label="activation", pad=0.1)
    return img


def training_curves_figure(
    curves: dict[str, torch.Tensor],
    labels: Sequence[str],
    colors: Sequence[str | tuple[float, ...]] | np.ndarray | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (7.5, 7),
) -> Figure:
    """Loss, monosemantic neurons per feature and mean bias against log2(steps), one line per
    instance (the paper's training plots). ``curves`` comes from ``metrics.training_curves``
    (``steps`` [C], the others [C, I])."""
    steps = np.log2(as_numpy(curves["steps"]))
    fig, axes = subplots(3, 1, sharex=True, figsize=figsize, constrained_layout=True)
    n = len(labels)
    colors = colors if colors is not None else plt.cm.viridis(np.linspace(0.1, 0.9, n))
    for key, ax, ylabel, logy in (
        ("loss", axes[0], "training loss", True),
        ("mono_per_feature", axes[1], METRICS["mono_per_feature"].label, False),
        ("mean_bias", axes[2], "mean bias", False),
    ):
        values = as_numpy(curves[key])
        for i in range(n):
            ax.plot(steps, values[:, i], color=colors[i], label=labels[i], lw=1.4)
        ax.set_ylabel(ylabel)
        if logy:
            ax.set_yscale("log")
    axes[1].axhline(1, color="k", ls=":", lw=0.8)
    axes[2].axhline(0, color="k", ls=":", lw=0.8)
    axes[2].set_xlabel("log2(training steps)")
    axes[0].legend(fontsize=8, ncol=2)
    if title:
        axes[0].set_title(title)
    return fig


def bias_profile(
    ax: Axes,
    share: torch.Tensor | np.ndarray,
    bias: torch.Tensor | np.ndarray,
    *,
    label: str | None = None,
    color: str | tuple[float, ...] | np.ndarray | None = None,
    N: int | None = None,
) -> None:
    """Biases of the neurons of one instance, sorted from most to least monosemantic
    (``share``, ``bias``: [k])."""
    share, bias = as_numpy(share), as_numpy(bias)
    order = np.argsort(-share, kind="stable")
    ax.plot(np.arange(len(order)), bias[order], label=label, color=color, lw=1.2)
    ax.axhline(0, color="k", ls=":", lw=0.8)
    if N is not None:
        ax.axvline(N, color="k", lw=0.8, alpha=0.5)
    ax.set_xlabel("neuron, most monosemantic first")
    ax.set_ylabel("bias")


def seed_band(
    ax: Axes,
    x: Sequence[float] | torch.Tensor | np.ndarray,
    values: Sequence[Sequence[float] | np.ndarray] | np.ndarray,
    *,
    label: str | None = None,
    color: str | tuple[float, ...] | np.ndarray | None = None,
    marker: str = "o",
    logx: bool = False,
) -> Line2D:
    """Mean over seeds as a line, each seed as a faint point. ``values`` is [len(x), seeds],
    or one sequence of seeds per x (their numbers may differ)."""
    x = as_numpy(x)
    rows = [np.atleast_1d(as_numpy(v)) for v in values]
    mean = [r.mean() for r in rows]
    (line,) = ax.plot(x, mean, marker=marker, label=label, color=color, lw=1.5, ms=4)
    xs = np.concatenate([np.full(len(r), xi) for xi, r in zip(x, rows)])
    ax.scatter(xs, np.concatenate(rows), color=line.get_color(), alpha=0.35, s=10, lw=0)
    if logx:
        ax.set_xscale("log")
        log_ticks(ax, x)
    return line


def log_ticks(ax: Axes, values: Sequence[float] | np.ndarray, most: int = 8) -> None:
    """On a log x axis, label the values swept (when there are at most ``most``, each at
    least twice the last one labelled) and nothing between them: matplotlib's minor labels
    within one decade print over each other."""
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    swept = sorted({float(v) for v in np.asarray(values, dtype=float).ravel() if v > 0})
    shown: list[float] = []
    for v in swept:  # a label at least a factor of 2 from the last, so none overlap
        if not shown or v >= 2 * shown[-1]:
            shown.append(v)
    if 0 < len(swept) <= most:
        ax.set_xticks(shown, [f"{v:g}" for v in shown])


def sweep_plot(
    x: Sequence[float] | torch.Tensor | np.ndarray,
    series: Mapping[str, Mapping[str, Sequence[Sequence[float] | np.ndarray] | np.ndarray]],
    *,
    xlabel: str,
    logx: bool = False,
    figsize: tuple[float, float] = (10, 3.2),
    title: str | None = None,
    ncols: int | None = None,
) -> Figure:
    """One panel per metric, one line per series, seeds as points.

    Args:
        x: the swept values.
        series: {series label: {metric label: values [len(x), seeds]}}; every series must
            have the same metrics.
        ncols: panels per row (default: all in one row).
    """
    metrics = list(next(iter(series.values())))
    ncols = ncols or len(metrics)
    nrows = -(-len(metrics) // ncols)
    fig, grid = subplots(nrows, ncols, figsize=figsize, constrained_layout=True, squeeze=False)
    axes = grid.ravel()
    for ax in axes[len(metrics) :]:
        ax.remove()
    for ax, metric in zip(axes, metrics):
        for name, data in series.items():
            seed_band(ax, x, data[metric], label=name, logx=logx)
        _from_zero(ax, [data[metric] for data in series.values()])
        ax.set_xlabel(xlabel)
        ax.set_title(metric)
    if len(series) > 1:
        axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def _from_zero(ax: Axes, values: Sequence) -> None:
    """Start a panel of non-negative quantities (losses, counts) at zero, so that the axis
    does not magnify differences the text calls small; a log axis set later ignores it."""
    rows = [np.asarray(row, dtype=float).ravel() for series in values for row in series]
    flat = np.concatenate(rows) if rows else np.zeros(0)
    flat = flat[np.isfinite(flat)]
    if flat.size and flat.min() >= 0:
        ax.update_datalim([(ax.get_xlim()[0], 0.0)], updatex=False)
        ax.autoscale_view()


_LINEAR_KNOBS = ("init_bias",)


def sweep_series_figure(s: SweepSeries, figsize: tuple[float, float] = (10, 2.6)) -> Figure:
    """The paper's sweep plot of one stored batch: loss, mono/N and mono/k against the swept
    knob, seeds as points around their mean. ``s`` is a ``reproduction.SweepSeries``."""
    data = {
        label: {METRICS[key].label: table for key, table in m.items()}
        for label, m in s.series.items()
    }
    fig = sweep_plot(
        s.x, data, xlabel=s.var, logx=s.var not in _LINEAR_KNOBS, figsize=figsize, title=s.name
    )
    keys = list(next(iter(s.series.values())))
    for ax, key in zip(fig.axes, keys):
        # minor labels collide on short log ranges
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        if key == "mono_per_feature":
            ax.axhline(1, color="k", ls=":", lw=0.6)  # one monosemantic neuron per feature
    return fig


def captioned(fig: Figure, caption: str, alt: str) -> Any:
    """``fig`` as an HTML ``<figure>`` with ``caption`` (plain text, or HTML the caller has
    escaped) under it: for figures a loop shows, which a cell's one MyST caption cannot
    label one by one. Returns IPython HTML; it displays the same in Jupyter and Colab."""
    from IPython.display import HTML  # the [book] extra

    return HTML(
        f'<figure class="book-figure"><img src="data:image/png;base64,{png_base64(fig)}" '
        f'alt="{html.escape(alt)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def batch_figure(name: str, s: SweepSeries, configs: Sequence[Any] = ()) -> Any:
    """A stored batch's sweep plot (``sweep_series_figure``) captioned with the paper's row, the
    settings its stored runs were trained with (from ``configs``, where given: the book's own
    decay, not the paper's) and the sentence generated from its numbers
    (``series.batch_sentence``)."""
    row = html.escape(TABLE1[name].description)
    ran = f" Here: {html.escape(_run_settings(configs))}." if configs else ""
    text = f"<em>The paper's row: {row}.</em>{ran} {html.escape(batch_sentence(s))}"
    return captioned(sweep_series_figure(s), text, alt=f"{name}: {TABLE1[name].description}")


def _run_settings(configs: Sequence[Any]) -> str:
    """The settings a batch's runs share or sweep, as a caption states them: scale, initial
    bias, bias decay d and L1 (each one value, or its range)."""

    def values(field: str) -> str:
        got = sorted({float(getattr(c, field)) for c in configs})
        return f"{got[0]:g}" if len(got) == 1 else f"{got[0]:g} to {got[-1]:g}"

    c = configs[0]
    parts = [f"N = {c.N}, m = {c.m}, {c.steps} steps", f"initial bias {values('init_bias')}"]
    parts.append(f"bias decay d = {values('bias_decay')}")
    if any(float(x.l1) for x in configs):
        parts.append(f"L1 {values('l1')}")
    return ", ".join(parts)


def multi_feature_figure(
    resp: MultiFeatureResponse,
    mono: torch.Tensor | np.ndarray,
    *,
    inputs: int = 24,
    title: str | None = None,
    figsize: tuple[float, float] = (12, 3.4),
) -> Figure:
    """Actual activations on multi-feature inputs beside the additive prediction from single
    features, and each neuron's deviation by class.

    Args:
        resp: a ``responses.MultiFeatureResponse``.
        mono: [k] bool, the monosemantic neurons (columns are ordered monosemantic first).
        inputs: how many of the inputs (rows) to draw.
    """
    mono = as_numpy(mono).astype(bool)
    order = np.argsort(~mono, kind="stable")
    actual, additive = (
        as_numpy(resp.actual)[:inputs, order],
        as_numpy(resp.additive)[:inputs, order],
    )
    vmax = max(1e-6, float(np.percentile(actual, 99.5)))
    fig, axes = subplots(
        1, 3, figsize=figsize, constrained_layout=True, gridspec_kw={"width_ratios": [2, 2, 1.2]}
    )
    for ax, data, name in (
        (axes[0], actual, "actual activations"),
        (axes[1], additive, "additive prediction"),
    ):
        img = ax.imshow(
            data, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=vmax
        )
        ax.axvline(mono.sum() - 0.5, color="w", lw=0.8)
        ax.set(xlabel="neuron (monosemantic first)", ylabel="input", title=name)
    fig.colorbar(img, ax=axes[1], label="activation")
    err = as_numpy(resp.error)
    fired = as_numpy(resp.actual).max(0) > 0
    axes[2].boxplot([err[mono & fired], err[~mono & fired]], tick_labels=["mono", "other alive"])
    axes[2].set(ylabel="relative deviation", title="|actual - additive| / |actual|")
    if title:
        fig.suptitle(title)
    return fig


def linear_map_heatmap(
    ax: Axes, M: torch.Tensor | np.ndarray, *, title: str | None = None, colorbar: bool = True
) -> AxesImage:
    """Draw a decoder's end-to-end linear map W2 W1 P [N, N], centred at zero."""
    M = as_numpy(M)
    lim = max(1e-6, float(np.abs(M).max()))
    img = ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set(xlabel="input feature", ylabel="output feature")
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(img, ax=ax, shrink=0.8)
    return img


# -- chapter figures: each takes data or results and returns a Figure ---------------------------


def heatmap_row(
    sfas: Sequence[torch.Tensor | np.ndarray],
    titles: Sequence[str],
    *,
    vmax: float | None = None,
    xlabel: str | None = None,
    figsize: tuple[float, float] | None = None,
    passing: Sequence[Passing] | None = None,
) -> Figure:
    """Sorted single-feature-activation heatmaps side by side, one per entry of ``sfas``
    (each [k, N], or [k, 2N] for a signed probe), on one colour scale (``vmax``, by default
    the largest activation of them all), which the last panel's colour bar shows. Each
    marks its passing units (``passing``, one per panel; by default the paper's criterion
    on the activations given) and counts them under its x axis."""
    n = len(titles)
    if vmax is None:
        vmax = max(1e-6, max(float(np.clip(as_numpy(a), 0, None).max()) for a in sfas))
    marks = [None] * n if passing is None else list(passing)
    fig, axes = subplots(1, n, figsize=figsize or (5.5 * n, 4.2), squeeze=False)
    for j, (ax, sfa, title, p) in enumerate(zip(axes[0], sfas, titles, marks)):
        sfa_heatmap(
            ax,
            sfa,
            vmax=vmax,
            title=title,
            colorbar=j == n - 1,
            passing=p,
            xlabel=xlabel or "feature (sorted)",
        )
    return fig


def pow2_label(x: float, _pos=None) -> str:
    return f"$2^{{{int(round(np.log2(x)))}}}$" if x > 0 else ""


def seeds_label(n: int) -> str:
    """The words under a bar: "one seed" or "3 seeds"."""
    return "one seed" if n == 1 else f"{n} seeds"
