"""Chapter 7's figures: the claims at each scale side by side, and the budget study."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib
import matplotlib.ticker
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from ..analysis.report import Report
    from ..paper.claims import Claim

from ..analysis.probes import NEAR_ONE_BAND
from .figure_kit import CLASS_COLORS, as_numpy, pow2_label, subplots

__all__ = [
    "claim5_figure",
    "claim_overlay",
    "budget_figure",
    "SCALE_COLORS",
]


def claim5_figure(report: Report, figsize: tuple[float, float] = (13, 3.4)) -> Figure:
    """Claim 5's two sets side by side: the singular values of each set's map
    W2[:, S] W1[S, :] P against the band counted as "near 1" and the rank bound m, then each
    map as an image titled with its cosine with the task's linear target. ``report`` is an
    ``report.Report`` of a task with a linear target (not abs)."""
    sets = [s for s in report.sets.values() if s.subspace is not None]
    if not sets:
        raise ValueError(
            f"task={report.config.task!r} has no linear map to draw; claim5_figure is allowed for "
            "the decoder and reprojector tasks with a non-empty residual block"
        )
    fig, axes = subplots(1, 1 + len(sets), figsize=figsize, constrained_layout=True)
    colors = {
        "residual_block": CLASS_COLORS["polysemantic"],
        "always_on": CLASS_COLORS["always-on"],
    }
    m = report.config.m
    for s in sets:
        sv = as_numpy(s.subspace.singular_values)
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
        M = as_numpy(s.subspace.map)
        lim = np.abs(M).max()
        ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set(
            title=f"{s.key}: cosine with target {s.subspace.cosine_target:.2f}",
            xlabel="feature",
            ylabel="output",
        )
    return fig


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
    fig, axes = subplots(1, 2, figsize=figsize)
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
    fig, axes = subplots(1, 4, figsize=figsize)
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
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(pow2_label))
    axes[0].set_yscale("log")
    axes[-1].legend(fontsize=8)
    return fig
