"""The frontier study's figures (issue 29): every contender as a curve.

``frontier_figure`` draws, for one data regime, metrics (a row each) of each contender's
chosen point (``paper.sae_frontier_report.frontier_points``) against the FLOPs of its whole
tuning grid, one line over training lengths, with the seeds' range as bars; and the same
metrics of every grid point (``grid_points``) against L0 at one length. TopK SAEs are drawn
twice where the metric has a thresholded twin (``thr_<metric>``): as trained (solid) and with
the inference-time threshold (dashed). ``frontier_regimes_figure`` draws one metric against
FLOPs for several regimes side by side; ``frontier_table`` puts every contender's chosen
point at one length beside its oracle; ``rate_table`` sets the SAEs' coverage at a fixed Adam
rate beside a swept one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..paper.sae_frontier_facts import CONTENDER_TAGS
from ..paper.sae_frontier_report import judged_coverage
from .figure_kit import BookFigure

if TYPE_CHECKING:
    import pandas as pd
    from IPython.display import HTML

__all__ = [
    "FRONTIER_COLORS",
    "FRONTIER_LABELS",
    "frontier_figure",
    "frontier_regimes_figure",
    "frontier_frame",
    "frontier_table",
    "rate_table",
]

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


FRONTIER_LABELS = {
    ("baseline", None): "baseline neurons",
    ("engineered", None): "engineered neurons",
    ("sae-x", "topk"): "TopK SAE on x",
    ("sae-x", "relu"): "ReLU SAE on x",
    ("sae-hb", "topk"): "TopK SAE on baseline h",
    ("sae-hb", "relu"): "ReLU SAE on baseline h",
    ("sae-he", "topk"): "TopK SAE on engineered h",
    ("sae-he", "relu"): "ReLU SAE on engineered h",
}
_CONTENDERS = {tag: key for key, tag in CONTENDER_TAGS.items()}  # "hb_topk" -> (contender, kind)
_METRIC_NAMES = {
    "features_covered": "features covered (0.999)",
    "mmcs": "MMCS",
    "fvu": "FVU",
    "loss": "task loss",
}


def _label(contender: str, kind: str | None) -> str:
    return FRONTIER_LABELS.get((contender, kind), contender if kind is None else kind)


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


def _in(point: dict, m: int, eps: float) -> bool:
    return point["m"] == m and abs(point["eps"] - eps) < 1e-12


def frontier_figure(
    points: Sequence[dict],
    grid: Sequence[dict],
    m: int,
    eps: float,
    metrics: Sequence[str] = ("features_covered",),
    samples: int | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Each of ``metrics`` (a row) against the tuning grid's GFLOP (chosen points over
    training lengths) and against L0 (every grid point at ``samples``, default the longest
    stored) for regime (m, eps)."""
    size = figsize or (9, 1.2 + 2.6 * len(metrics))
    fig = BookFigure(figsize=size, layout="constrained")
    axes = fig.subplots(len(metrics), 2, sharey="row", squeeze=False)
    lengths = sorted({p["samples"] for p in grid if _in(p, m, eps)})
    at = samples if samples is not None else (lengths[-1] if lengths else None)
    for row, metric in zip(axes, metrics):
        left, right = row
        _draw(left, _curves(points, m, eps, "flops"), "flops", metric, 1e9)
        _draw(
            right, _curves([p for p in grid if p["samples"] == at], m, eps, "l0"), "l0", metric, 1
        )
        left.set_ylabel(_METRIC_NAMES.get(metric, metric.replace("_", " ")))
    axes[-1][0].set_xlabel("training FLOPs of the contender's whole grid (GFLOP)")
    axes[-1][1].set_xlabel("L0 (units active per sample)")
    axes[0][0].set_title(f"$m$ = {m}, $\\varepsilon$ = 1/{round(1 / eps)}: chosen points")
    axes[0][1].set_title(
        f"every grid point at $2^{{{math.log2(at):g}}}$ samples" if at else "no stored points"
    )
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=9)
    return fig


def frontier_regimes_figure(
    points: Sequence[dict],
    regimes: Sequence[tuple[int, float]],
    metric: str = "features_covered",
    figsize: tuple[float, float] = (9, 4.6),
) -> Figure:
    """``metric`` of the chosen points against the grid's GFLOP, one panel per regime."""
    fig = BookFigure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, len(regimes), sharey=True, squeeze=False)[0]
    for ax, (m, eps) in zip(axes, regimes):
        _draw(ax, _curves(points, m, eps, "flops"), "flops", metric, 1e9)
        ax.set_title(f"$m$ = {m}, $\\varepsilon$ = 1/{round(1 / eps)}")
        ax.set_xlabel("grid's training GFLOP")
    axes[0].set_ylabel(_METRIC_NAMES.get(metric, metric.replace("_", " ")))
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=9)
    return fig


def _spread(value: tuple[float, float, float] | None) -> str:
    """The seeds' lowest and highest, "0.67\u20130.73"."""
    return "\u2014" if value is None else f"{value[1]:.2f}\u2013{value[2]:.2f}"


def _mean(value: tuple[float, float, float] | None, fmt: str) -> str:
    return "\u2014" if value is None else format(value[0], fmt)


def frontier_frame(
    chosen: Sequence[dict], oracle: Sequence[dict], m: int, eps: float, samples: int
) -> pd.DataFrame:
    """Every contender's chosen point at (m, eps, samples) beside its oracle, a contender a
    row: the seeds found, coverage (mean and the seeds' range), the oracle's (TopK's with its
    threshold, the score the oracle picks by), TopK's thresholded coverage, MMCS, FVU, task
    loss (the model's, or the spliced loss for an SAE on h) and the share of the model's loss
    gain that splicing keeps (``loss recovered``), L0, dead units, and the whole grid's bill."""
    import pandas as pd  # the [book] extra

    best = {
        (p["contender"], p.get("kind")): p
        for p in oracle
        if _in(p, m, eps) and p["samples"] == samples
    }
    rows = {}
    for p in chosen:
        if not _in(p, m, eps) or p["samples"] != samples:
            continue
        key = (p["contender"], p.get("kind"))
        o = best.get(key, {})
        rows[_label(*key)] = {
            "seeds": f"{p['seeds']}",
            "covered (knee)": _mean(p.get("features_covered"), ".2f"),
            "seeds' range": _spread(p.get("features_covered")),
            "oracle": _mean(judged_coverage(o) if o else None, ".2f"),
            "with threshold": _mean(p.get("thr_features_covered"), ".2f"),
            "MMCS": _mean(p.get("mmcs"), ".3f"),
            "FVU": _mean(p.get("fvu"), ".3f"),
            "task loss": _mean(p.get("loss"), ".3f"),
            "loss recovered": _mean(p.get("loss_recovered"), ".2f"),
            "L0": _mean(p.get("l0"), ".1f"),
            "dead": _mean(p.get("dead"), ".0f"),
            "GFLOP": f"{p['flops'] / 1e9:,.0f}",
            "seconds": f"{p['seconds']:.0f}",
        }
    return pd.DataFrame.from_dict(rows, orient="index")


_PARTS = {
    "Coverage at 0.999": ["seeds", "covered (knee)", "seeds' range", "oracle", "with threshold"],
    "Directions, reconstruction and the whole grid's bill (TopK as trained; dead: no evaluation "
    "sample fires it)": [
        "MMCS",
        "FVU",
        "task loss",
        "loss recovered",
        "L0",
        "dead",
        "GFLOP",
        "seconds",
    ],
}


def frontier_table(
    chosen: Sequence[dict], oracle: Sequence[dict], m: int, eps: float, samples: int
) -> HTML:
    """``frontier_frame`` as two captioned tables that fit the page: coverage, then the
    rest."""
    from IPython.display import HTML  # the [book] extra

    frame = frontier_frame(chosen, oracle, m, eps, samples)
    parts = [frame[cols].style.set_caption(caption) for caption, cols in _PARTS.items()]
    return HTML("".join(p.to_html() for p in parts))


def rate_table(records: Sequence[dict]) -> pd.DataFrame:
    """``paper.sae_frontier_facts.rate_comparison`` as a table: a row per regime and SAE,
    coverage at Adam's fixed rate and with the rate swept at each length, and the rates the
    swept grid kept."""
    import pandas as pd  # the [book] extra

    rows: dict[tuple[str, str], dict[tuple[str, str], str]] = {}
    for r in sorted(records, key=lambda r: (-r["m"], r["eps"], r["tag"], r["samples"])):
        key = (f"m = {r['m']}, eps = 1/{round(1 / r['eps'])}", _label(*_CONTENDERS[r["tag"]]))
        n = f"2^{round(math.log2(r['samples']))} samples"
        row = rows.setdefault(key, {})
        row[(n, "lr 1e-3")] = f"{r['fixed']:.2f}"
        row[(n, "swept")] = f"{r['swept']:.2f}"
        row[(n, "rates kept")] = ", ".join(f"{v:g}" for v in r["rates"])
    frame = pd.DataFrame.from_dict(rows, orient="index").fillna("\u2014")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["regime", "SAE"])
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame
