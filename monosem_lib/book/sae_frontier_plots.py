"""The frontier study's figures (issue 29): every contender as a curve.

``frontier_figure`` draws, for one data regime, a metric of each contender's chosen point
(``paper.sae_frontier_report.frontier_points``) against the FLOPs of its whole tuning grid,
one line over training lengths, with the seeds' range as bars; and the same metric of every
grid point (``grid_points``) against L0 at one length. TopK SAEs are drawn twice where the
metric has a thresholded twin (``thr_<metric>``): as trained (solid) and with the
inference-time threshold (dashed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .figure_kit import BookFigure

__all__ = ["FRONTIER_COLORS", "frontier_figure"]

FRONTIER_COLORS = {
    ("baseline", None): "#7f7f7f",
    ("engineered", None): "#d62728",
    ("sae-x", "topk"): "#1f77b4",
    ("sae-x", "relu"): "#aec7e8",
    ("sae-hb", "topk"): "#2ca02c",
    ("sae-hb", "relu"): "#98df8a",
    ("sae-he", "topk"): "#9467bd",
    ("sae-he", "relu"): "#c5b0d5",
}


def _label(contender: str, kind: str | None) -> str:
    return contender if kind is None else f"{contender} {kind}"


def _curves(points: Sequence[dict], m: int, eps: float, x: str) -> dict[tuple, list[dict]]:
    """The points of one regime by (contender, kind), sorted by ``x``."""
    out: dict[tuple, list[dict]] = {}
    for p in points:
        if p["m"] == m and abs(p["eps"] - eps) < 1e-12:
            out.setdefault((p["contender"], p.get("kind")), []).append(p)
    return {k: sorted(v, key=lambda p: _x(p, x)) for k, v in out.items()}


def _x(point: dict, x: str) -> float:
    value = point[x]
    return float(value[0] if isinstance(value, tuple) else value)


def _draw(ax: Axes, curves: dict[tuple, list[dict]], x: str, metric: str, scale: float) -> None:
    """One line per contender (and a dashed twin for a thresholded metric), seeds as bars."""
    for key, pts in curves.items():
        color = FRONTIER_COLORS.get(key, "k")
        for name, style in ((metric, "-"), (f"thr_{metric}", "--")):
            have = [p for p in pts if name in p]
            if not have:
                continue
            xs = [_x(p, x) / scale for p in have]
            mean = [p[name][0] for p in have]
            err = [[p[name][0] - p[name][1] for p in have], [p[name][2] - p[name][0] for p in have]]
            label = _label(*key) + (" (threshold)" if style == "--" else "")
            ax.errorbar(xs, mean, yerr=err, color=color, ls=style, marker="o", ms=4, label=label)
    ax.set_xscale("log")
    ax.grid(alpha=0.3)


def frontier_figure(
    points: Sequence[dict],
    grid: Sequence[dict],
    m: int,
    eps: float,
    metric: str = "features_covered",
    samples: int | None = None,
    figsize: tuple[float, float] = (11, 4.2),
) -> Figure:
    """``metric`` against the tuning grid's GFLOP (chosen points over training lengths) and
    against L0 (every grid point at ``samples``, default the longest stored) for regime
    (m, eps)."""
    fig = BookFigure(figsize=figsize, layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    _draw(left, _curves(points, m, eps, "flops"), "flops", metric, 1e9)
    left.set_xlabel("training FLOPs of the contender's grid (GFLOP)")
    lengths = sorted({p["samples"] for p in grid if p["m"] == m and abs(p["eps"] - eps) < 1e-12})
    at = samples if samples is not None else (lengths[-1] if lengths else None)
    _draw(right, _curves([p for p in grid if p["samples"] == at], m, eps, "l0"), "l0", metric, 1)
    right.set_xlabel("L0 (units active per sample)")
    left.set_ylabel(metric.replace("_", " "))
    left.set_title(f"m = {m}, eps = 1/{round(1 / eps)}: chosen points over training lengths")
    right.set_title(
        f"every grid point at 2^{math.log2(at):g} samples" if at else "no stored points"
    )
    handles, labels = left.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right center", fontsize=8)
    return fig
