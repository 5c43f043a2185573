"""The decay study's figures: mono/N against the total shrink at every run length, and the
best shrink against the run length beside what each candidate invariant would predict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.ticker
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..analysis.metrics import METRICS
from ..paper.decay_fit import Interval
from ..paper.decay_study import Key, Optimum
from ..paper.recipe import RULES, decay_for_shrink
from .figure_kit import subplots
from .study_tables import SCHEDULE_NAMES

__all__ = ["shrink_curves_figure", "optimum_figure", "rate_figure"]


def _schedules(found: Sequence[Optimum]) -> list[str]:
    return list(dict.fromkeys(o.label for o in found))


def _curve(ax: Axes, o: Optimum, color) -> None:
    """One grid point: mono/N against S, admissible points filled, the optimum starred."""
    pts = [(p.shrink, p.mono, o.admissible(p)) for p in o.points if p.shrink is not None]
    ax.plot([s for s, _, _ in pts], [m for _, m, _ in pts], color=color, lw=1.2,
            label=f"T = {o.steps}")  # fmt: skip
    for admissible, face in ((True, color), (False, "white")):
        xs = [x for x, _, ok in pts if ok == admissible]
        ys = [y for _, y, ok in pts if ok == admissible]
        ax.scatter(xs, ys, s=14, zorder=3, facecolors=face, edgecolors=color)
    if o.shrink is not None and o.best is not None:
        ax.scatter([o.shrink], [o.best.mono], marker="*", s=140, color=color, zorder=4,
                   edgecolors="k", linewidths=0.5)  # fmt: skip


def shrink_curves_figure(found: Sequence[Optimum], lr: float = 0.01) -> Figure:
    """One panel per schedule at rate ``lr``: seed-mean mono/N against the total shrink S,
    one line per run length T. Filled points cost at most the tolerance in loss, hollow ones
    more; the star is the optimum."""
    schedules = _schedules(found)
    cols = len(schedules) if len(schedules) <= 3 else 2  # four panels as two rows of two
    rows = -(-len(schedules) // cols)
    fig, axes = subplots(rows, cols, figsize=(3.8 * cols, 3.0 * rows), sharey=True)
    axes = np.atleast_1d(axes).ravel()
    steps = sorted({o.steps for o in found})
    colors = dict(zip(steps, matplotlib.colormaps["viridis"](np.linspace(0.05, 0.9, len(steps)))))
    for ax, schedule in zip(axes, schedules):
        for o in sorted(found, key=lambda o: o.steps):  # the legend by run length
            if o.label == schedule and o.lr == lr:
                _curve(ax, o, colors[o.steps])
        ax.set_xscale("symlog", linthresh=1.0)
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set(title=SCHEDULE_NAMES.get(schedule, schedule), xlabel="total shrink S")
    for ax in axes[len(schedules) :]:
        ax.set_visible(False)
    for ax in axes[::cols]:
        ax.set_ylabel(METRICS["mono_per_feature"].label)
    axes[0].legend(fontsize=9, title=f"lr {lr:g}", title_fontsize=9, loc="upper left")
    return fig


def optimum_figure(
    found: Sequence[Optimum],
    lr: float = 0.01,
    intervals: Mapping[Key, Mapping[str, float]] | None = None,
    exponents: Mapping[str, Interval] | None = None,
) -> Figure:
    """The best total shrink S* (the plateau's middle) against the run length T, log-log, one
    line per schedule at rate ``lr`` over the run lengths where the recipe works, beside the
    two simple rules: S fixed, and the coefficient d fixed (S proportional to T). With
    ``intervals`` (``decay_fit.decision_agreement``) each point carries the bootstrap interval
    of its S* over seeds; with ``exponents`` (``decay_fit.exponent_intervals``) the legend
    gives each schedule's exponent b of S* ~ T^b with its interval."""
    fig, ax = subplots(figsize=(6.4, 3.9))
    labels = list(dict.fromkeys(o.label for o in found))
    for i, label in enumerate(labels):
        pts = sorted(
            (o.steps, o.center, o.key)
            for o in found
            if o.label == label and o.lr == lr and o.engineers and o.center is not None
        )
        if not pts:
            continue
        name = SCHEDULE_NAMES.get(label, label)
        if exponents is not None and label in exponents:
            name += f", b = {exponents[label]}"
        shift = 1.03 ** (i - (len(labels) - 1) / 2)  # side by side, so intervals don't hide
        xs = [t * shift for t, _, _ in pts]
        ys = [c for _, c, _ in pts]
        line = ax.plot(xs, ys, marker="o", label=name)[0]
        if intervals is not None:
            lo = [intervals.get(k, {}).get("center_lo", c) for _, c, k in pts]
            hi = [intervals.get(k, {}).get("center_hi", c) for _, c, k in pts]
            err = np.array(
                [[max(c - a, 0) for c, a in zip(ys, lo)], [max(b - c, 0) for c, b in zip(ys, hi)]]
            )
            ax.errorbar(
                xs, ys, yerr=np.nan_to_num(err), fmt="none", ecolor=line.get_color(), capsize=3
            )
    ts = sorted({o.steps for o in found if o.lr == lr})
    ref = [o.center for o in found if o.lr == lr and o.engineers and o.center is not None]
    if ref:
        s0, t0 = float(np.exp(np.mean(np.log(ref)))), float(np.exp(np.mean(np.log(ts))))
        ax.plot(ts, [s0] * len(ts), "k:", lw=1, label="S fixed")
        ax.plot(ts, [s0 * t / t0 for t in ts], "k--", lw=1, label="d fixed (S \u221d T)")
    ax.set(xscale="log", yscale="log", xlabel="run length T (steps)", ylabel="best total shrink S*")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks([1, 2, 5, 10, 20, 50])
    ax.set_xticks(ts)
    ax.legend(fontsize=8)
    return fig


def rate_figure(
    found: Sequence[Optimum],
    steps: int = 8000,
    intervals: Mapping[Key, Mapping[str, float]] | None = None,
    rate: Interval | None = None,
) -> Figure:
    """The best decay d* (the plateau's middle) against the base rate at run length ``steps``
    under the half-cosine, log-log, with the bootstrap interval of each point over seeds
    (``intervals``, ``decay_fit.decision_agreement``), beside the rule's d (``decay_for``,
    no rate term; its range of rates shaded) and the fitted rate exponent (``rate``)."""
    fig, ax = subplots(figsize=(6.4, 3.9))
    pts = sorted(
        (o.lr, o.center, o.key)
        for o in found
        if (o.steps, o.schedule, o.decay_schedule) == (steps, "cosine", "flat")
        and o.engineers
        and o.center is not None
    )
    to_d = lambda s, lr: decay_for_shrink(s, lr, steps)
    if pts:
        xs = [lr for lr, _, _ in pts]
        ys = [to_d(c, lr) for lr, c, _ in pts]
        label = "study: best d" + ("" if rate is None else f" (S* ~ lr^a, a = {rate})")
        line = ax.plot(xs, ys, marker="o", label=label)[0]
        if intervals is not None:
            lo = [to_d(intervals.get(k, {}).get("center_lo", c), lr) for lr, c, k in pts]
            hi = [to_d(intervals.get(k, {}).get("center_hi", c), lr) for lr, c, k in pts]
            err = np.nan_to_num(
                [np.maximum(np.subtract(ys, lo), 0), np.maximum(np.subtract(hi, ys), 0)]
            )
            ax.errorbar(xs, ys, yerr=err, fmt="none", ecolor=line.get_color(), capsize=3)
    rule = RULES["cosine"]
    lrs = sorted({o.lr for o in found if (o.steps, o.schedule) == (steps, "cosine")})
    if lrs:
        ax.plot(lrs, [rule.decay(steps)] * len(lrs), "k--", lw=1, label="the rule's d")
        ax.axvspan(*rule.lr_range, color="0.9", zorder=0, label="where the rule holds")
    ax.set(xscale="log", yscale="log", xlabel="base learning rate", ylabel="best decay d*",
           title=f"T = {steps}, half-cosine")  # fmt: skip
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if lrs:
        ax.set_xticks(lrs)
    ax.legend(fontsize=8)
    return fig
