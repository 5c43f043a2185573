"""Figures of the book, in plain matplotlib (works in Colab, in ipywidgets and on the static site).

Functions draw into axes they are given (so widgets can redraw in place) or return a new
figure. Nothing here computes science: every number comes from ``metrics`` or
``interpretation``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "heatmap_order",
    "claim5_figure",
    "sfa_heatmap",
    "training_curves_figure",
    "bias_profile",
    "sweep_plot",
    "sweep_series_figure",
    "multi_feature_figure",
    "linear_map_heatmap",
    "seed_band",
    "style",
    "CLASS_COLORS",
    "SCALE_COLORS",
    "claim_overlay",
    "budget_figure",
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


def _np(x) -> np.ndarray:
    return (
        x.detach().cpu().double().numpy()
        if isinstance(x, torch.Tensor)
        else np.asarray(x, dtype=float)
    )


def heatmap_order(sfa) -> tuple[np.ndarray, np.ndarray]:
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
    sfa,
    *,
    vmax: float | None = None,
    title: str | None = None,
    cmap: str = "viridis",
    colorbar: bool = False,
    order: tuple[np.ndarray, np.ndarray] | None = None,
):
    """Draw the sorted neurons x features heatmap of one instance's single-feature activations."""
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
    curves: dict,
    labels: Sequence[str],
    colors: Sequence | None = None,
    title: str | None = None,
    figsize=(7.5, 7),
) -> Figure:
    """Loss, monosemantic neurons per feature and mean bias against log2(steps), one line per
    instance (the paper's training plots). ``curves`` comes from ``metrics.training_curves``."""
    steps = np.log2(_np(curves["steps"]))
    fig, axes = plt.subplots(3, 1, sharex=True, figsize=figsize, constrained_layout=True)
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
    ax: Axes, share, bias, *, label: str | None = None, color=None, N: int | None = None
):
    """Biases of the neurons of one instance, sorted from most to least monosemantic."""
    share, bias = _np(share), _np(bias)
    order = np.argsort(-share, kind="stable")
    ax.plot(np.arange(len(order)), bias[order], label=label, color=color, lw=1.2)
    ax.axhline(0, color="k", ls=":", lw=0.8)
    if N is not None:
        ax.axvline(N, color="k", lw=0.8, alpha=0.5)
    ax.set_xlabel("neuron, most monosemantic first")
    ax.set_ylabel("bias")


def claim5_figure(report, figsize=(13, 3.4)) -> Figure:
    """Claim 5's two sets side by side: the singular values of each set's map
    W2[:, S] W1[S, :] P against the band counted as "near 1" and the rank bound m, then each
    map as an image titled with its cosine with the task's linear target. ``report`` is an
    ``interpretation.Report`` of a task with a linear target (not abs)."""
    from .interpretation import NEAR_ONE_BAND

    sets = [s for s in report.sets.values() if s.subspace is not None]
    if not sets:
        raise ValueError(
            f"task={report.config.task!r} has no linear map to draw; claim5_figure is allowed for "
            "the decoder and reprojector tasks with a non-empty residual block"
        )
    fig, axes = plt.subplots(1, 1 + len(sets), figsize=figsize, constrained_layout=True)
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
    x,
    values,
    *,
    label: str | None = None,
    color=None,
    marker: str = "o",
    logx: bool = False,
):
    """Mean over seeds as a line, each seed as a faint point. ``values`` is [len(x), seeds]."""
    x, v = _np(x), _np(values)
    if v.ndim == 1:
        v = v[:, None]
    (line,) = ax.plot(x, v.mean(1), marker=marker, label=label, color=color, lw=1.5, ms=4)
    for s in range(v.shape[1]):
        ax.scatter(x, v[:, s], color=line.get_color(), alpha=0.35, s=10, lw=0)
    if logx:
        ax.set_xscale("log")
    return line


def sweep_plot(
    x,
    series: dict[str, dict],
    *,
    xlabel: str,
    logx: bool = False,
    figsize=(10, 3.2),
    title: str | None = None,
) -> Figure:
    """One panel per metric, one line per series, seeds as points.

    Args:
        x: the swept values.
        series: {series label: {metric label: values [len(x), seeds]}}; every series must
            have the same metrics.
    """
    metrics = list(next(iter(series.values())))
    fig, axes = plt.subplots(
        1, len(metrics), figsize=figsize, constrained_layout=True, squeeze=False
    )
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


def sweep_series_figure(s, figsize=(10, 2.6)) -> Figure:
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
    resp, mono, *, inputs: int = 24, title: str | None = None, figsize=(12, 3.4)
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
    fig, axes = plt.subplots(
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


def linear_map_heatmap(ax: Axes, M, *, title: str | None = None, colorbar: bool = True):
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


# -- chapter 7: the scales side by side -------------------------------------------------------

SCALE_COLORS = {"book": "#f0ad4e", "paper-cpu": "#2a7ab9", "paper": "#5cb85c"}


def _by_lr(ax: Axes, table: dict, scale: str, **kw) -> None:
    lrs = sorted(k for k, v in table.items() if v is not None)
    ax.plot(lrs, [table[lr] for lr in lrs], marker="o", color=SCALE_COLORS[scale], **kw)
    ax.set_xscale("log")


def claim_overlay(n: int, by_scale: dict, figsize=(10, 3)) -> Figure:
    """Claim ``n`` at every scale in one figure, drawn from the claims' own numbers
    (``by_scale``: {scale: {claim number: claims.Claim}})."""
    fig, axes = plt.subplots(1, 2, figsize=figsize, constrained_layout=True)
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


def budget_figure(rows: Sequence[dict], figsize=(12, 3)) -> Figure:
    """The budget study: loss, mono/N, mono/k and features covered against samples seen, one
    line per batch and rate (``reproduction.budget_rows``)."""
    keys = {
        "final_loss": "loss",
        "mono_per_feature": "mono / N",
        "mono_per_neuron": "mono / k",
        "features_covered": "features covered",
    }
    fig, axes = plt.subplots(1, 4, figsize=figsize, constrained_layout=True)
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
