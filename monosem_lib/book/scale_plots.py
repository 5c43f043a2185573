"""Chapter 7's figures: the claims at each scale side by side, and the budget study."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import matplotlib.ticker
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..analysis.metrics import METRICS
from ..analysis.probes import NEAR_ONE_BAND
from ..analysis.report import Report
from ..core.config import SCALES
from ..paper.claims import Claim, Panel
from .figure_kit import CLASS_COLORS, as_numpy, pow2_label, subplots

__all__ = [
    "claim5_figure",
    "claim_overlay",
    "budget_figure",
]


def claim5_figure(report: Report, figsize: tuple[float, float] = (13, 3.4)) -> Figure:
    """Claim 5's two sets side by side: the singular values of each set's map
    W2[:, S] W1[S, :] P against the band counted as "near 1" and the rank bound m, then each
    map as an image titled with its cosine with the task's linear target. ``report`` is an
    ``report.Report`` of a task with a linear target (not abs)."""
    sets = [(s, s.subspace) for s in report.sets.values() if s.subspace is not None]
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
    for s, sub in sets:
        sv = as_numpy(sub.singular_values)
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
    for ax, (s, sub) in zip(axes[1:], sets):
        M = as_numpy(sub.map)
        lim = np.abs(M).max()
        img = ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim)
        fig.colorbar(img, ax=ax, shrink=0.8, label="map entry")
        ax.set(
            title=f"{s.key}: cosine with target {sub.cosine_target:.2f}",
            xlabel="feature",
            ylabel="output",
        )
    return fig


# -- chapter 7: the scales side by side -------------------------------------------------------


def claim_overlay(
    n: int, by_scale: dict[str, dict[int, Claim]], figsize: tuple[float, float] = (10, 3)
) -> Figure:
    """Claim ``n`` at every scale in one figure, drawn from the panels each claim gives of
    itself (``Claim.panels``; ``by_scale``: {scale: {claim number: Claim}})."""
    fig, axes = subplots(1, 2, figsize=figsize)
    scales = list(by_scale)
    for j, scale in enumerate(scales):
        for ax, panel in zip(axes, by_scale[scale][n].panels()):
            _draw_panel(ax, panel, scale, j, len(scales))
    for ax, panel in zip(axes, by_scale[scales[0]][n].panels()):
        ax.set(xlabel=panel.xlabel, ylabel=panel.ylabel)
        ax.legend(fontsize=8)
    return fig


def _draw_panel(ax: Axes, panel: Panel, scale: str, j: int, count: int) -> None:
    """One scale's series of a claim's panel: lines against x, or bars grouped by category."""
    color = SCALES[scale].color
    for s in panel.series:
        label = f"{scale} {s.label}".strip()
        if panel.xscale == "categories":
            keys, width = list(s.points), 0.8 / count
            x = np.arange(len(keys)) + (j - (count - 1) / 2) * width
            ax.bar(x, list(s.points.values()), width, color=color, label=label)
            ax.set_xticks(np.arange(len(keys)), keys)
            continue
        xs = sorted(s.points)
        ax.plot(xs, [s.points[x] for x in xs], marker="o", color=color, label=label,
                ls="--" if s.dashed else "-")  # fmt: skip
        ax.set_xscale("log", base=2 if panel.xscale == "log2" else 10)


def budget_figure(rows: Sequence[dict], figsize: tuple[float, float] = (10, 6)) -> Figure:
    """The budget study: loss, mono/N, mono/k and features covered against samples seen, one
    line per batch and rate (``reproduction.budget_rows``)."""
    keys = ("final_loss", "mono_per_feature", "mono_per_neuron", "features_covered")
    fig, grid = subplots(2, 2, figsize=figsize)
    axes = grid.ravel()
    lines = sorted({(r["batch"], r["lr"]) for r in rows})
    for batch, lr in lines:
        pts = sorted((r["samples"], r) for r in rows if (r["batch"], r["lr"]) == (batch, lr))
        style = {"ls": "-" if batch == "LR3" else "--", "marker": "o"}
        style["color"] = "#2a7ab9" if lr == max(lr for _, lr in lines) else "#f0ad4e"
        for ax, key in zip(axes, keys):
            ax.plot(
                [s for s, _ in pts], [r[key] for _, r in pts], label=f"{batch}, lr {lr:g}", **style
            )
            ax.set(xscale="log", title=METRICS[key].label, xlabel="samples seen")
            ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=2))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(pow2_label))
    axes[0].set_yscale("log")
    axes[-1].legend(fontsize=8)
    return fig
