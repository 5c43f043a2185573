"""Figures of the book, in plain matplotlib (works in Colab, in ipywidgets and on the static site).

Functions draw into axes they are given (so widgets can redraw in place) or return a new
figure. Returned figures are not registered with pyplot: a chapter shows one by making it the
cell's last expression or by ``display(fig)`` (``plt.show()`` does not show them), so a
figure is never drawn twice. Nothing here computes science: every number comes from
``metrics``, ``report``, ``experiments`` or ``results``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.image import AxesImage
    from matplotlib.lines import Line2D

    from ..analysis.classes import NeuronClasses
    from ..analysis.metrics import NeuronStats
    from ..analysis.report import Report
    from ..analysis.responses import MultiFeatureResponse
    from ..core.training import Run
    from ..paper.claims import Claim
    from ..paper.reproduction import SweepSeries
    from ..store.results import Results
    from .experiments import (
        Coverage,
        InterferenceView,
        MonoAnatomy,
        PairResponse,
        PowerLawView,
        WorldSample,
    )

__all__ = [
    "style",
    "BookFigure",
    "heatmap_order",
    "sfa_heatmap",
    "training_curves_figure",
    "bias_profile",
    "claim5_figure",
    "seed_band",
    "sweep_plot",
    "sweep_series_figure",
    "multi_feature_figure",
    "linear_map_heatmap",
    "heatmap_row",
    "sparsity_figure",
    "interference_figure",
    "loss_curves",
    "example_neurons_figure",
    "threshold_figure",
    "linear_maps_figure",
    "results_sweep",
    "bias_figure",
    "rank_figure",
    "decay_curves",
    "interference_figure_neurons",
    "shrink_figure",
    "density_figure",
    "levers_figure",
    "width_figure",
    "price_figure",
    "duplicates_figure",
    "mono_anatomy_figure",
    "pair_figure",
    "classes_figure",
    "ablation_figure",
    "results_heatmaps",
    "nonlinearity_figure",
    "power_law_figure",
    "live_grid_figure",
    "claim_overlay",
    "budget_figure",
    "CLASS_COLORS",
    "SCALE_COLORS",
]

CLASS_COLORS = {
    "monosemantic": "#2a7ab9",
    "near-monosemantic": "#7fb8e0",
    "always-on": "#d9534f",
    "polysemantic": "#f0ad4e",
    "dead": "#9a9a9a",
}


def style() -> None:
    """The book's matplotlib defaults: readable at the width of a page."""
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


class BookFigure(Figure):
    """A Figure outside pyplot that renders itself as PNG wherever it is displayed (Jupyter,
    Colab, nbval, the built book), with or without the inline backend."""

    def _repr_png_(self) -> bytes:
        import io

        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize=(7, 3.2), constrained_layout=True, **kw):
    """``plt.subplots`` without pyplot: a ``BookFigure`` that only shows when displayed."""
    fig = BookFigure(figsize=figsize, layout="constrained" if constrained_layout else None)
    return fig, fig.subplots(nrows, ncols, **kw)


def _np(x) -> np.ndarray:
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
    a = np.clip(_np(sfa), 0, None)
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
) -> AxesImage:
    """Draw the sorted neurons x features heatmap of one instance's single-feature activations
    ``sfa`` [k, N] (``order``: rows and columns from ``heatmap_order``)."""
    a = np.clip(_np(sfa), 0, None)
    rows, cols = heatmap_order(a) if order is None else order
    img = ax.imshow(
        a[rows][:, cols],
        aspect="auto",
        interpolation="nearest",
        cmap=cmap,
        vmin=0,
        vmax=vmax if vmax is not None else max(1e-6, float(a.max())),
    )
    ax.set_xlabel("feature (sorted)")
    ax.set_ylabel("neuron (sorted by monosemanticity)")
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(img, ax=ax, label="activation")
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
    steps = np.log2(_np(curves["steps"]))
    fig, axes = _subplots(3, 1, sharex=True, figsize=figsize, constrained_layout=True)
    n = len(labels)
    colors = colors if colors is not None else plt.cm.viridis(np.linspace(0.1, 0.9, n))
    for key, ax, ylabel, logy in (
        ("loss", axes[0], "training loss", True),
        ("mono_per_feature", axes[1], "mono neurons / feature", False),
        ("mean_bias", axes[2], "mean bias", False),
    ):
        values = _np(curves[key])
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
    share, bias = _np(share), _np(bias)
    order = np.argsort(-share, kind="stable")
    ax.plot(np.arange(len(order)), bias[order], label=label, color=color, lw=1.2)
    ax.axhline(0, color="k", ls=":", lw=0.8)
    if N is not None:
        ax.axvline(N, color="k", lw=0.8, alpha=0.5)
    ax.set_xlabel("neuron, most monosemantic first")
    ax.set_ylabel("bias")


def claim5_figure(report: Report, figsize: tuple[float, float] = (13, 3.4)) -> Figure:
    """Claim 5's two sets side by side: the singular values of each set's map
    W2[:, S] W1[S, :] P against the band counted as "near 1" and the rank bound m, then each
    map as an image titled with its cosine with the task's linear target. ``report`` is an
    ``report.Report`` of a task with a linear target (not abs)."""
    from ..analysis.probes import NEAR_ONE_BAND

    sets = [s for s in report.sets.values() if s.subspace is not None]
    if not sets:
        raise ValueError(
            f"task={report.config.task!r} has no linear map to draw; claim5_figure is allowed for "
            "the decoder and reprojector tasks with a non-empty residual block"
        )
    fig, axes = _subplots(1, 1 + len(sets), figsize=figsize, constrained_layout=True)
    colors = {
        "residual_block": CLASS_COLORS["polysemantic"],
        "always_on": CLASS_COLORS["always-on"],
    }
    m = report.config.m
    for s in sets:
        sv = _np(s.subspace.singular_values)
        axes[0].plot(
            np.arange(1, len(sv) + 1),
            sv,
            "o",
            ms=3,
            color=colors[s.key],
            label=f"{s.key} ({s.count})",
        )
    axes[0].axvline(m + 0.5, color="k", ls=":", label=f"m = {m}")
    axes[0].axhspan(
        *NEAR_ONE_BAND, color="#ddd", zorder=0, label=f"{NEAR_ONE_BAND[0]} to {NEAR_ONE_BAND[1]}"
    )
    axes[0].set(
        xlabel="index", ylabel="singular value", title="singular values of W2[:,S] W1[S,:] P"
    )
    axes[0].legend(fontsize=8)
    for ax, s in zip(axes[1:], sets):
        M = _np(s.subspace.map)
        lim = np.abs(M).max()
        ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set(
            title=f"{s.key}: cosine with target {s.subspace.cosine_target:.2f}",
            xlabel="feature",
            ylabel="output",
        )
    return fig


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
    x = _np(x)
    rows = [np.atleast_1d(_np(v)) for v in values]
    mean = [r.mean() for r in rows]
    (line,) = ax.plot(x, mean, marker=marker, label=label, color=color, lw=1.5, ms=4)
    xs = np.concatenate([np.full(len(r), xi) for xi, r in zip(x, rows)])
    ax.scatter(xs, np.concatenate(rows), color=line.get_color(), alpha=0.35, s=10, lw=0)
    if logx:
        ax.set_xscale("log")
    return line


def sweep_plot(
    x: Sequence[float] | torch.Tensor | np.ndarray,
    series: dict[str, dict[str, Sequence[Sequence[float] | np.ndarray] | np.ndarray]],
    *,
    xlabel: str,
    logx: bool = False,
    figsize: tuple[float, float] = (10, 3.2),
    title: str | None = None,
) -> Figure:
    """One panel per metric, one line per series, seeds as points.

    Args:
        x: the swept values.
        series: {series label: {metric label: values [len(x), seeds]}}; every series must
            have the same metrics.
    """
    metrics = list(next(iter(series.values())))
    fig, axes = _subplots(1, len(metrics), figsize=figsize, constrained_layout=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name, data in series.items():
            seed_band(ax, x, data[metric], label=name, logx=logx)
        ax.set_xlabel(xlabel)
        ax.set_title(metric)
    if len(series) > 1:
        axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


_LINEAR_KNOBS = ("init_bias",)


def sweep_series_figure(s: SweepSeries, figsize: tuple[float, float] = (10, 2.6)) -> Figure:
    """The paper's sweep plot of one stored batch: loss, mono/N and mono/k against the swept
    knob, seeds as points around their mean. ``s`` is a ``reproduction.SweepSeries``."""
    fig = sweep_plot(
        s.x, s.series, xlabel=s.var, logx=s.var not in _LINEAR_KNOBS, figsize=figsize, title=s.name
    )
    for ax in fig.axes:
        ax.xaxis.set_minor_formatter(
            matplotlib.ticker.NullFormatter()
        )  # minor labels collide on short log ranges
        if ax.get_title() == "mono / N":
            ax.axhline(1, color="k", ls=":", lw=0.6)  # one monosemantic neuron per feature
    return fig


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
    mono = _np(mono).astype(bool)
    order = np.argsort(~mono, kind="stable")
    actual, additive = _np(resp.actual)[:inputs, order], _np(resp.additive)[:inputs, order]
    vmax = max(1e-6, float(np.percentile(actual, 99.5)))
    fig, axes = _subplots(
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
    err = _np(resp.error)
    fired = _np(resp.actual).max(0) > 0
    axes[2].boxplot([err[mono & fired], err[~mono & fired]], tick_labels=["mono", "other alive"])
    axes[2].set(ylabel="relative deviation", title="|actual - additive| / |actual|")
    if title:
        fig.suptitle(title)
    return fig


def linear_map_heatmap(
    ax: Axes, M: torch.Tensor | np.ndarray, *, title: str | None = None, colorbar: bool = True
) -> AxesImage:
    """Draw a decoder's end-to-end linear map W2 W1 P [N, N], centred at zero."""
    M = _np(M)
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
) -> Figure:
    """Sorted single-feature-activation heatmaps side by side, one per entry of ``sfas``
    (each [k, N], or [k, 2N] for a signed probe); the last carries the colour bar."""
    n = len(titles)
    fig, axes = _subplots(1, n, figsize=figsize or (5.5 * n, 4.2), squeeze=False)
    for j, (ax, sfa, title) in enumerate(zip(axes[0], sfas, titles)):
        sfa_heatmap(ax, sfa, vmax=vmax, title=title, colorbar=j == n - 1)
        if xlabel:
            ax.set_xlabel(xlabel)
    return fig


def sparsity_figure(world: WorldSample) -> Figure:
    """Chapter 1: 32 samples of f, and the active features per sample against the binomial.
    ``world`` is an ``experiments.WorldSample``."""
    fig, (ax1, ax2) = _subplots(1, 2, figsize=(10, 3.2))
    ax1.imshow(_np(world.f[:32]), aspect="auto", cmap="viridis", interpolation="nearest")
    ax1.set(xlabel="feature", ylabel="sample", title="32 samples of f")
    n = len(world.binomial)
    counts = np.bincount(world.active, minlength=n)[:n]
    ax2.bar(np.arange(n), counts / counts.sum(), label="sampled", color="#2a7ab9")
    ax2.plot(np.arange(n), world.binomial, "k.-", label=f"Binomial(N={world.N}, eps={world.eps:g})")
    ax2.set(xlabel="active features per sample", ylabel="fraction of samples", title="sparsity")
    ax2.legend()
    return fig


def interference_figure(world: WorldSample) -> Figure:
    """Chapter 1: overlaps between feature directions (against random directions' mean), and
    what a reader of feature j sees with the feature on and off."""
    fig, (ax1, ax2) = _subplots(1, 2, figsize=(10, 3.2))
    off = ~np.eye(world.N, dtype=bool)
    ax1.hist(_np(world.overlap)[off], bins=60, color="#777")
    scale = world.random_overlap
    ax1.axvline(scale, color="k", ls=":", label="random directions: mean |overlap|")
    ax1.axvline(-scale, color="k", ls=":")
    ax1.set(xlabel="P_i . P_j (i != j)", title="overlaps between feature directions")
    ax1.legend()
    bins = np.linspace(-1.5, 2, 80)
    kw = {"bins": bins, "density": True, "alpha": 0.6}
    ax2.hist(world.interference, label="feature off: interference", **kw)
    ax2.hist(world.signal, label="feature on: signal + interference", **kw)
    ax2.set(xlabel="P_j . x", title="what a reader of feature j sees")
    ax2.legend()
    return fig


def loss_curves(
    run: Run, labels: Sequence[str], zero_loss: float | None = None, window: int = 50
) -> Figure:
    """Training loss of every instance of ``run`` (mean over ``window`` steps), log-log."""
    fig, ax = _subplots(figsize=(7, 3.2))
    for i, label in enumerate(labels):
        h = run.loss_history[:, i].double()
        smooth = torch.nn.functional.avg_pool1d(h[None, None], window, window)[0, 0]
        ax.plot(np.arange(len(smooth)) * window + window, smooth.numpy(), label=label)
    if zero_loss is not None:
        ax.axhline(zero_loss, color="k", ls=":", label="always predict 0")
    ax.set(xscale="log", yscale="log", xlabel="step", ylabel="training loss")
    ax.legend()
    return fig


def example_neurons_figure(
    stats: NeuronStats, examples: Sequence[tuple[int, str, int | None]], labels: Sequence[str]
) -> Figure:
    """Single-feature activations of example neurons, one panel each. ``examples`` holds
    (instance, kind, neuron) from ``experiments.example_neurons``."""
    fig, axes = _subplots(1, len(examples), figsize=(11, 2.8), sharey=True)
    for ax, (i, kind, n) in zip(axes, examples):
        if n is None:
            continue
        ax.bar(np.arange(stats.N), _np(stats.sfa[i, n]), color=CLASS_COLORS[kind])
        bias = float(stats.bias[i, n])
        ax.set(title=f"{kind}\nneuron {n} ({labels[i]}), bias {bias:+.2f}", xlabel="feature")
    axes[0].set_ylabel("activation")
    return fig


def threshold_figure(stats: NeuronStats, counts: pd.DataFrame) -> Figure:
    """Monosemantic neurons per feature against the criterion's threshold, and each model's
    distribution of top-feature shares. ``counts`` is ``experiments.threshold_counts``."""
    fig, (ax1, ax2) = _subplots(1, 2, figsize=(10, 3.2))
    ticks = range(len(counts.index))
    for i, label in enumerate(counts.columns):
        ax1.plot(ticks, counts[label] / stats.N, "o-", label=label)
        share = _np(stats.share[i][~stats.dead[i]])
        ax2.hist(share, bins=np.linspace(0, 1, 41), alpha=0.6, label=label)
    ax1.set_xticks(ticks, [str(t) for t in counts.index], rotation=30)
    ax1.set(xlabel="threshold", ylabel="mono neurons / feature", title="counts against threshold")
    ax2.set(xlabel="top feature's share of a neuron's activation", ylabel="neurons")
    ax2.set_title("how concentrated neurons are")
    ax1.legend()
    ax2.legend()
    return fig


def linear_maps_figure(maps: Sequence[torch.Tensor | np.ndarray], titles: Sequence[str]) -> Figure:
    """End-to-end linear maps W2 W1 P [N, N] side by side."""
    fig, axes = _subplots(1, len(maps), figsize=(5 * len(maps), 4), squeeze=False)
    for ax, M, title in zip(axes[0], maps, titles):
        linear_map_heatmap(ax, M, title=f"W2 W1 P, {title}")
    return fig


SWEEP_METRICS = {
    "final loss": "final_loss",
    "mono neurons / feature": "mono_per_feature",
    "dead neurons": "dead_neurons",
}


def results_sweep(
    series: dict[str, Results],
    var: str,
    metrics: dict[str, str] = SWEEP_METRICS,
    *,
    logx: bool = True,
    title: str | None = None,
    figsize: tuple[float, float] = (10, 3.2),
    reference: dict[str, Results] | None = None,
) -> Figure:
    """``sweep_plot`` of Results: one panel per metric (``{label: metric key}``), one line per
    entry of ``series`` (``{label: Results}``) against config field ``var``, seeds as points;
    each entry of ``reference`` (``{label: Results}``) as a dotted line at its mean."""
    first = next(iter(series.values()))
    x = sorted(first.values(var))
    data = {
        name: {label: [r.by_value(var, key)[v] for v in x] for label, key in metrics.items()}
        for name, r in series.items()
    }
    fig = sweep_plot(x, data, xlabel=var, logx=logx, figsize=figsize, title=title)
    for name, r in (reference or {}).items():
        for ax, key in zip(fig.axes, metrics.values()):
            ax.axhline(r.mean(key), color="k", ls=":", label=name)
    if reference:
        fig.axes[0].legend(fontsize=8)
    return fig


def bias_figure(results: Results, seed: int = 0) -> Figure:
    """Chapter 2: the bias profile of every rate's ``seed`` (line at k = N), and the bias of
    every alive neuron of every instance against its top feature's share, by class."""
    fig, (ax1, ax2) = _subplots(1, 2, figsize=(11, 3.6))
    idx = results.where(seed=seed)
    colors = matplotlib.colormaps["viridis"](np.linspace(0.15, 0.85, len(idx)))
    for color, i in zip(colors, idx):
        st, c = results.stats(i), results.configs[i]
        bias_profile(ax1, st.share[0], st.bias[0], label=f"lr {c.lr}", color=color, N=c.N)
    ax1.legend()
    ax1.set_title(f"bias profile (seed {seed}); line at k = N")
    every = [results.stats(i) for i in range(len(results))]
    cat = {k: torch.cat([getattr(s, k)[0] for s in every]) for k in ("share", "bias", "mono")}
    poly = torch.cat([~s.mono[0] & ~s.dead[0] for s in every])
    for kind, mask, size in (("polysemantic", poly, 4), ("monosemantic", cat["mono"], 6)):
        ax2.scatter(
            cat["share"][mask], cat["bias"][mask], s=size, alpha=0.5,
            color=CLASS_COLORS[kind], label=kind,
        )  # fmt: skip
    ax2.axhline(0, color="k", ls=":", lw=0.8)
    ax2.set(xlabel="top feature's share of activation", ylabel="bias", title="every alive neuron")
    ax2.legend()
    return fig


def rank_figure(results: Results) -> Figure:
    """Power-law features: cumulative monosemantic neurons by feature rank (1 = most
    frequent), one line per instance, against one per feature."""
    fig, ax = _subplots(figsize=(7, 3))
    for i, c in enumerate(results.configs):
        owned = _np(results.features(i).mono)
        ax.plot(np.arange(1, c.N + 1), owned.cumsum(), label=f"lr {c.lr}, seed {c.seed}")
    N = results.configs[0].N
    ax.plot(np.arange(1, N + 1), np.arange(1, N + 1), "k:", lw=0.8, label="one per feature")
    ax.set(xlabel="feature rank (1 = most frequent)", ylabel="mono neurons up to this rank")
    ax.set_title("monosemantic neurons by feature rank")
    ax.legend()
    return fig


def decay_curves(
    curves: dict[str, torch.Tensor], labels: Sequence[str], title: str = "initial bias -1"
) -> Figure:
    """Mean bias and dead neurons against log2(steps), one line per instance of
    ``metrics.training_curves`` (``steps`` [C], the others [C, I])."""
    fig, (ax1, ax2) = _subplots(1, 2, figsize=(10, 3))
    steps = np.log2(_np(curves["steps"]))
    for j, label in enumerate(labels):
        ax1.plot(steps, _np(curves["mean_bias"])[:, j], label=label)
        ax2.plot(steps, _np(curves["dead_neurons"])[:, j], label=label)
    ax1.set(xlabel="log2(steps)", ylabel="mean bias", title=title)
    ax2.set(xlabel="log2(steps)", ylabel="dead neurons")
    ax2.legend()
    return fig


def interference_figure_neurons(views: Sequence[InterferenceView]) -> Figure:
    """The interference each neuron receives with its feature off, against its threshold -b
    (``views`` from ``experiments.neuron_interference``)."""
    fig, axes = _subplots(1, len(views), figsize=(12, 2.8), sharey=True, squeeze=False)
    for ax, v in zip(axes[0], views):
        ax.hist(_np(v.values), bins=50, color="#777", density=True)
        ax.axvline(-v.bias, color=CLASS_COLORS["monosemantic"], lw=2, label=f"-b = {-v.bias:.2f}")
        ax.set(title=f"neuron {v.neuron} (feature {v.feature})", xlabel="w . x, own feature off")
        ax.legend(fontsize=8)
    return fig


def shrink_figure(study: pd.DataFrame) -> Figure:
    """Mono/N and the fraction of dead neurons against the total shrink, one line per run
    length (``study`` from ``experiments.shrink_study``)."""
    fig, axes = _subplots(1, 2, figsize=(10, 3))
    for name, rows in study.groupby("run", sort=False):
        S = rows["total shrink S"]
        axes[0].plot(S, rows["mono_per_feature"], "o-", label=name)
        axes[1].plot(S, rows["dead fraction"], "o-", label=name)
    axes[0].set(xlabel="total shrink S", ylabel="mono neurons / feature", title="initial bias -1")
    axes[1].set(xlabel="total shrink S", ylabel="fraction of neurons dead")
    axes[0].legend()
    return fig


def density_figure(study: dict) -> Figure:
    """The monosemantic neurons' learned bias and their interference spread against the
    density, log-log with the fitted exponents and a slope-1/2 guide."""
    fig, ax = _subplots(figsize=(6, 3.4))
    eps, noise = study["eps"], study["noise"]
    ax.loglog(eps, -study["mono_bias"], "o-", label=f"-(mean bias of mono neurons), slope "
              f"{study['slope_bias']:.2f}")  # fmt: skip
    ax.loglog(eps, noise, "s-", label=f"interference spread, slope {study['slope_noise']:.2f}")
    guide = 0.5 * np.sqrt(eps / eps[-1]) * np.nanmax(noise)
    ax.loglog(eps, guide, "k:", label="slope 1/2")
    ax.set(xlabel="feature density eps", title="live scale, initial bias -1 with B1's shrink")
    ax.legend(fontsize=8)
    return fig


def levers_figure(live: Results, views: dict) -> Figure:
    """Loss against mono/N for no lever, L1 penalties and the initial-bias grid with decay
    (``views`` from ``experiments.live_views``)."""
    fig, ax = _subplots(figsize=(6, 3.6))
    point = lambda idx: (live.select(idx).metric("mono_per_feature"),
                         live.select(idx).metric("final_loss"))  # fmt: skip
    l1s = ", ".join(f"{live.configs[i].l1:g}" for i in views["l1"])
    ax.plot(*point([views["start"]]), "k*", ms=12, label="no lever")
    ax.plot(*point(views["l1"]), "s-", label=f"L1 = {l1s}")
    ax.plot(*point(views["grid"]), "o", label="initial bias -2 .. 0.5 with decay")
    ax.set(xlabel="mono neurons / feature", ylabel="loss", title="two levers, live scale")
    ax.legend(fontsize=8)
    return fig


WIDTH_METRICS = {
    "mono neurons / feature": "mono_per_feature",
    "mono neurons / neuron": "mono_per_neuron",
    "features covered": "features_covered",
    "loss": "final_loss",
}


def width_figure(widths: dict[str, Results]) -> Figure:
    """Chapter 4: every recipe's metrics against the width k, seeds as points, with k = N
    dotted and the loss on a log scale (``widths`` is {recipe: Results})."""
    fig = results_sweep(widths, "k", WIDTH_METRICS, figsize=(14, 3.2))
    N = next(iter(widths.values())).configs[0].N
    for ax in fig.axes:
        ax.axvline(N, color="k", ls=":", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("neurons k (dotted: k = N)")
    fig.axes[-1].set_yscale("log")
    fig.axes[0].legend(fontsize=8)
    return fig


def price_figure(price: pd.DataFrame) -> Figure:
    """Features covered against training FLOPs per sample and against measured time per
    step, each width annotated (``price`` from ``experiments.width_price``)."""
    fig, axes = _subplots(1, 2, figsize=(11, 3.3), sharey=True)
    covered = price["features covered"]
    for ax, column in zip(axes, ("MFLOP per sample", "ms per step")):
        ax.plot(price[column], covered, "o-", color="#2a7ab9")
        for k, x, y in zip(price.index, price[column], covered):
            ax.annotate(f"k={k}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=8)
        ax.set(xscale="log", xlabel=f"training {column}")
    axes[0].set_ylabel("features covered (engineered)")
    return fig


def duplicates_figure(cov: Coverage) -> Figure:
    """Monosemantic neurons per feature (sorted), how close the uncovered features came to
    the criterion, and the largest overlap of covered and uncovered features (``cov`` from
    ``experiments.coverage``)."""
    f, covered = cov.features, _np(cov.features.mono) > 0
    fig, axes = _subplots(1, 3, figsize=(13, 3.2))
    axes[0].bar(np.arange(len(covered)), np.sort(_np(f.mono))[::-1], color="#2a7ab9")
    axes[0].set(xlabel="feature (sorted)", ylabel="mono neurons", title="mono neurons per feature")
    axes[1].hist(_np(f.best_share)[~covered], bins=np.linspace(0.5, 1, 11), color="#f0ad4e")
    axes[1].axvline(0.999, color="k", ls=":")
    axes[1].set(xlabel="best neuron's share of the feature", ylabel="uncovered features")
    axes[1].set_title("how close the uncovered came")
    overlap = _np(cov.overlap)
    labels = [f"covered ({covered.sum()})", f"uncovered ({(~covered).sum()})"]
    axes[2].boxplot([overlap[covered], overlap[~covered]], tick_labels=labels)
    axes[2].set(ylabel="largest overlap with another feature", title="geometry does not pick them")
    return fig


_CLASSES = ("monosemantic", "near-monosemantic", "always-on", "polysemantic")


def mono_anatomy_figure(anatomy: MonoAnatomy, classes: NeuronClasses) -> Figure:
    """Chapter 5: input cosine and output share by neuron class, and the monosemantic
    neurons' output weight on their own feature (``anatomy`` from
    ``experiments.mono_anatomy``, ``classes`` from the report)."""
    fig, axes = _subplots(1, 3, figsize=(13, 3.2))
    for label in _CLASSES:
        m = classes.mask(label)
        if bool(m.any()):
            kw = {"alpha": 0.6, "color": CLASS_COLORS[label], "label": label}
            axes[0].hist(_np(anatomy.align["input_cosine"][m]), np.linspace(-1, 1, 41), **kw)
            axes[1].hist(_np(anatomy.align["output_share"][m]), np.linspace(0, 1, 41), **kw)
    axes[0].set(xlabel="cosine(W1[n], P_j)", title="input weights vs the feature's direction")
    axes[1].set(xlabel="share of |W2[:, n]|^2 on output j", title="output weights on the feature")
    axes[0].legend(fontsize=8)
    axes[2].hist(_np(anatomy.own), bins=30, color=CLASS_COLORS["monosemantic"])
    axes[2].axvline(0, color="k", ls=":")
    axes[2].set(xlabel="W2[j, n], the output weight on its own feature")
    axes[2].set_title("monosemantic neurons: own output weight")
    return fig


def pair_figure(pair: PairResponse, bias: torch.Tensor | np.ndarray) -> Figure:
    """Output j against feature j's value: each of its monosemantic neurons' contribution
    (labelled with its bias from ``bias`` [k]), the sum over all neurons and the target."""
    fig, ax = _subplots(figsize=(7, 3.4))
    j, values = pair.feature, _np(pair.values)
    for n, c in zip(pair.neurons, pair.contributions):
        ax.plot(values, _np(c), label=f"neuron {n} (bias {float(bias[n]):+.2f})")
    ax.plot(values, _np(pair.total), "k", lw=2, label="output j, all neurons")
    ax.plot(values, values, "k:", lw=1, label="target")
    ax.set(xlabel=f"value of feature {j} (alone)", ylabel=f"contribution to output {j}")
    ax.set_title(f"feature {j}: its monosemantic neurons")
    ax.legend(fontsize=8)
    return fig


def classes_figure(classes: NeuronClasses) -> Figure:
    """Every neuron's bias against how often it fires, by class."""
    fig, ax = _subplots(figsize=(7, 3.6))
    for label in _CLASSES:
        m = classes.mask(label)
        ax.scatter(
            _np(classes.activity[m]), _np(classes.bias[m]), s=12, alpha=0.7,
            color=CLASS_COLORS[label], label=f"{label} ({int(m.sum())})",
        )  # fmt: skip
    ax.axhline(0, color="k", ls=":", lw=0.8)
    ax.set(xscale="log", xlabel="fraction of inputs on which the neuron fires", ylabel="bias")
    ax.set_title("neuron classes of one engineered model")
    ax.legend(fontsize=8)
    return fig


def ablation_figure(table: pd.DataFrame) -> Figure:
    """Loss after zeroing each group (``experiments.ablation_table``; its ``none`` row is the
    intact model, dotted), groups labelled with their size."""
    fig, ax = _subplots(figsize=(8, 3))
    labels = [f"{key} ({n})" for key, n in zip(table.index, table["neurons"])]
    ax.barh(labels[::-1], table["loss"].to_numpy()[::-1], color="#777")
    ax.axvline(table.loc["none", "loss"], color="k", ls=":")
    ax.set(xscale="log", xlabel="loss after zeroing the neurons (dotted: intact model)")
    return fig


def results_heatmaps(
    results: Results,
    titles: Sequence[str] | None = None,
    *,
    variant: str = "paper",
    vmax: float | None = 1,
    xlabel: str | None = None,
) -> Figure:
    """``heatmap_row`` of every instance of ``results`` under a metric ``variant``, titled by
    ``titles`` (default: ``experiments.describe_config`` of each instance)."""
    if titles is None:
        from .experiments import describe_config

        titles = [describe_config(c) for c in results.configs]
    sfas = [results.stats(i, variant).sfa[0] for i in range(len(results))]
    return heatmap_row(sfas, titles, vmax=vmax, xlabel=xlabel)


def nonlinearity_figure(table: pd.DataFrame) -> Figure:
    """Bars of mono/N, loss and silent neurons per (nonlinearity, recipe) row of
    ``experiments.nonlinearity_table``, recipes in blue and baselines in orange."""
    fig, axes = _subplots(1, 3, figsize=(12, 3))
    labels = [f"{a}\n{b}" for a, b in table.index]
    colors = ["#2a7ab9" if b == "recipe" else "#f0ad4e" for _, b in table.index]
    titles = ("mono neurons / feature", "loss", "neurons silent on every single feature")
    for ax, column, title in zip(axes, table.columns, titles):
        ax.bar(range(len(table)), table[column], color=colors)
        ax.set_xticks(range(len(table)), labels, fontsize=8)
        ax.set_title(title)
    return fig


def power_law_figure(view: PowerLawView) -> Figure:
    """Monosemantic neurons by feature rank, and each feature's best share against its
    probability (``view`` from ``experiments.power_law_view``)."""
    fig, (ax1, ax2) = _subplots(1, 2, figsize=(11, 3.2))
    mono = _np(view.features.mono)
    ax1.bar(np.arange(1, len(mono) + 1), mono, color="#2a7ab9")
    ax1.set(xlabel="feature rank (1 = most frequent)", ylabel="mono neurons", title="by rank")
    ax2.semilogx(_np(view.probs), _np(view.features.best_share), "o", ms=4)
    ax2.set(xlabel="feature probability", ylabel="best neuron's share")
    ax2.set_title("how monosemantic each feature's best neuron is")
    return fig


LOSS_MONO = {"loss": "final_loss", "mono neurons / feature": "mono_per_feature"}


def live_grid_figure(live: Results, views: dict) -> Figure:
    """Chapter 3's live grid: mono/N, loss and dead neurons against the initial bias (with
    B1's shrink), and the baseline without decay as a dotted line (``views`` from
    ``experiments.live_views``)."""
    grid = {"with bias decay": live.select(views["grid"])}
    reference = {"initial bias 0, no decay": live.select([views["start"]])}
    return results_sweep(grid, "init_bias", logx=False, reference=reference, figsize=(11, 3))


# -- chapter 7: the scales side by side -------------------------------------------------------

SCALE_COLORS = {"book": "#f0ad4e", "paper-cpu": "#2a7ab9", "paper": "#5cb85c"}


def _by_lr(ax: Axes, table: dict, scale: str, **kw) -> None:
    lrs = sorted(k for k, v in table.items() if v is not None)
    ax.plot(lrs, [table[lr] for lr in lrs], marker="o", color=SCALE_COLORS[scale], **kw)
    ax.set_xscale("log")


def claim_overlay(
    n: int, by_scale: dict[str, dict[int, Claim]], figsize: tuple[float, float] = (10, 3)
) -> Figure:
    """Claim ``n`` at every scale in one figure, drawn from the claims' own numbers
    (``by_scale``: {scale: {claim number: claims.Claim}})."""
    fig, axes = _subplots(1, 2, figsize=figsize)
    for scale, found in by_scale.items():
        num = found[n].numbers
        if n == 1:
            low = min(num["loss"].values())
            _by_lr(axes[0], {k: v / low for k, v in num["loss"].items()}, scale, label=scale)
            _by_lr(axes[1], num["mono_per_feature"], scale, label=scale)
        elif n == 2:
            _by_lr(axes[0], num["mono"], scale, label=scale)
            _by_lr(axes[1], num["poly"], scale, label=scale)
        elif n == 3:
            pairs = num["mono_per_feature"]
            _by_lr(
                axes[0], {k: v[0] for k, v in pairs.items()}, scale, ls="--", label=f"{scale} LR1"
            )
            _by_lr(axes[0], {k: v[1] for k, v in pairs.items()}, scale, label=f"{scale} LR3")
            _by_lr(axes[1], {k: v[1] - v[0] for k, v in pairs.items()}, scale, label=scale)
        elif n == 4:
            cov, mono, N = num["features_covered"], num["mono_per_feature"], num["N"]
            for ax, table in ((axes[0], cov), (axes[1], mono)):
                ax.plot(
                    [k / N for k in table],
                    list(table.values()),
                    marker="o",
                    color=SCALE_COLORS[scale],
                    label=scale,
                )
                ax.set_xscale("log", base=2)
        else:
            _claim5_bars(axes, scale, num, list(by_scale).index(scale), len(by_scale))
    _label_overlay(n, axes)
    return fig


def _claim5_bars(axes, scale: str, num: dict, j: int, count: int) -> None:
    keys = list(num)
    width = 0.8 / count
    x = np.arange(len(keys)) + (j - (count - 1) / 2) * width
    cos = [num[k]["cosine_target"] or 0 for k in keys]
    near = [num[k]["near_one"] / num[k]["rank_bound"] for k in keys]
    for ax, values in ((axes[0], cos), (axes[1], near)):
        ax.bar(x, values, width, color=SCALE_COLORS[scale], label=scale)
        ax.set_xticks(np.arange(len(keys)), [k.replace("_", " ") for k in keys])


_OVERLAY_LABELS = {
    1: (("learning rate", "loss / lowest loss"), ("learning rate", "mono neurons / feature")),
    2: (("learning rate", "mean bias, monosemantic"), ("learning rate", "mean bias, polysemantic")),
    3: (("learning rate", "mono neurons / feature"), ("learning rate", "gain of LR3 over LR1")),
    4: (("neurons per feature, k / N", "features covered"), ("k / N", "mono neurons / feature")),
    5: (("", "cosine with the linear target"), ("", "singular values near 1 / m")),
}


def _label_overlay(n: int, axes) -> None:
    for ax, (xlabel, ylabel) in zip(axes, _OVERLAY_LABELS[n]):
        ax.set(xlabel=xlabel, ylabel=ylabel)
        ax.legend(fontsize=8)


def budget_figure(rows: Sequence[dict], figsize: tuple[float, float] = (12, 3)) -> Figure:
    """The budget study: loss, mono/N, mono/k and features covered against samples seen, one
    line per batch and rate (``reproduction.budget_rows``)."""
    keys = {
        "final_loss": "loss",
        "mono_per_feature": "mono / N",
        "mono_per_neuron": "mono / k",
        "features_covered": "features covered",
    }
    fig, axes = _subplots(1, 4, figsize=figsize)
    lines = sorted({(r["batch"], r["lr"]) for r in rows})
    for batch, lr in lines:
        pts = sorted((r["samples"], r) for r in rows if (r["batch"], r["lr"]) == (batch, lr))
        style = {"ls": "-" if batch == "LR3" else "--", "marker": "o"}
        style["color"] = "#2a7ab9" if lr == max(lr for _, lr in lines) else "#f0ad4e"
        for ax, (key, title) in zip(axes, keys.items()):
            ax.plot(
                [s for s, _ in pts], [r[key] for _, r in pts], label=f"{batch}, lr {lr:g}", **style
            )
            ax.set(xscale="log", title=title, xlabel="samples seen")
            ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=2))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_pow2))
    axes[0].set_yscale("log")
    axes[-1].legend(fontsize=8)
    return fig


def _pow2(x: float, _pos=None) -> str:
    return f"$2^{{{int(round(np.log2(x)))}}}$" if x > 0 else ""
