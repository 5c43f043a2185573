"""The chapters' figures, in plain matplotlib: each takes runs, results or views and returns a
figure. Returned figures are not registered with pyplot: a chapter shows one by making it the
cell's last expression or by ``display(fig)``, so a figure is never drawn twice. Nothing here
computes science: every number comes from ``analysis``, ``views`` or ``results``. Chapter 7's
figures (the scales side by side) are in ``scale_plots``; primitives in ``figure_kit``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ..analysis.classes import LIVE_CLASSES, NeuronClasses
from ..analysis.metrics import METRICS, NeuronStats
from ..core.training import Run
from ..store.results import Results
from .figure_kit import (
    CLASS_COLORS,
    as_numpy,
    bias_profile,
    heatmap_row,
    linear_map_heatmap,
    log_ticks,
    subplots,
    sweep_plot,
)
from .heatmap_marks import Passing
from .tables import describe_config
from .views import (
    Coverage,
    InterferenceView,
    MonoAnatomy,
    PairResponse,
    WorldSample,
)

__all__ = [
    "LOSS_MONO",
    "SWEEP_METRICS",
    "WIDTH_METRICS",
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
    "live_grid_figure",
]


def sparsity_figure(world: WorldSample) -> Figure:
    """Chapter 1: 32 samples of f, and the active features per sample against the binomial.
    ``world`` is an ``experiments.WorldSample``."""
    fig, (ax1, ax2) = subplots(1, 2, figsize=(10, 3.2))
    img = ax1.imshow(as_numpy(world.f[:32]), aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(img, ax=ax1, label="feature value")
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
    fig, (ax1, ax2) = subplots(1, 2, figsize=(10, 3.2))
    off = ~np.eye(world.N, dtype=bool)
    ax1.hist(as_numpy(world.overlap)[off], bins=60, color="#777")
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
    fig, ax = subplots(figsize=(7, 3.2))
    for i, label in enumerate(labels):
        h = run.loss_history[:, i].double()
        smooth = torch.nn.functional.avg_pool1d(h[None, None], window, window)[0, 0]
        ax.plot(np.arange(len(smooth)) * window + window, smooth.cpu().numpy(), label=label)
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
    fig, axes = subplots(1, len(examples), figsize=(11, 2.8), sharey=True)
    for ax, (i, kind, n) in zip(axes, examples):
        if n is None:
            continue
        ax.bar(np.arange(stats.N), as_numpy(stats.sfa[i, n]), color=CLASS_COLORS[kind])
        bias = float(stats.bias[i, n])
        ax.set(title=f"{kind}\nneuron {n} ({labels[i]}), bias {bias:+.2f}", xlabel="feature")
    axes[0].set_ylabel("activation")
    return fig


def threshold_figure(stats: NeuronStats, counts: pd.DataFrame) -> Figure:
    """Monosemantic neurons per feature against the criterion's threshold, and each model's
    distribution of top-feature shares. ``counts`` is ``experiments.threshold_counts``."""
    fig, (ax1, ax2) = subplots(1, 2, figsize=(10, 3.2))
    ticks = range(len(counts.index))
    for i, label in enumerate(counts.columns):
        ax1.plot(ticks, counts[label] / stats.N, "o-", label=label)
        share = as_numpy(stats.share[i][~stats.dead[i]])
        ax2.hist(share, bins=np.linspace(0, 1, 41), alpha=0.6, label=label)
    ax1.set_xticks(ticks, [str(t) for t in counts.index], rotation=30)
    ax1.set(
        xlabel="threshold",
        ylabel=METRICS["mono_per_feature"].label,
        title="counts against threshold",
    )
    ax2.set(xlabel="top feature's share of a neuron's activation", ylabel="neurons")
    ax2.set_title("how concentrated neurons are")
    ax1.legend()
    ax2.legend()
    return fig


def linear_maps_figure(maps: Sequence[torch.Tensor | np.ndarray], titles: Sequence[str]) -> Figure:
    """End-to-end linear maps W2 W1 P [N, N] side by side."""
    fig, axes = subplots(1, len(maps), figsize=(5 * len(maps), 4), squeeze=False)
    for ax, M, title in zip(axes[0], maps, titles):
        linear_map_heatmap(ax, M, title=f"W2 W1 P, {title}")
    return fig


SWEEP_METRICS = ("final_loss", "mono_per_feature", "dead_neurons")


def results_sweep(
    series: dict[str, Results],
    var: str,
    metrics: Sequence[str] = SWEEP_METRICS,
    *,
    logx: bool = True,
    title: str | None = None,
    figsize: tuple[float, float] = (10, 3.2),
    reference: dict[str, Results] | None = None,
    ncols: int | None = None,
) -> Figure:
    """``sweep_plot`` of Results: one panel per metric (keys of ``METRICS``), one line per
    entry of ``series`` (``{label: Results}``) against config field ``var``, seeds as points;
    each entry of ``reference`` (``{label: Results}``) as a dotted line at its mean, in a band
    of one standard deviation over its seeds when it has several."""
    first = next(iter(series.values()))
    x = sorted(first.values(var))
    data = {
        name: {METRICS[key].label: [r.by_value(var, key)[v] for v in x] for key in metrics}
        for name, r in series.items()
    }
    fig = sweep_plot(x, data, xlabel=var, logx=logx, figsize=figsize, title=title, ncols=ncols)
    for name, r in (reference or {}).items():
        for ax, key in zip(fig.axes, metrics):
            ax.axhline(r.mean(key), color="k", ls=":", label=name)
            if len(r) > 1:
                values = np.asarray(r.metric(key), dtype=float)
                mean, sd = values.mean(), values.std(ddof=1)
                ax.axhspan(mean - sd, mean + sd, color="k", alpha=0.08, lw=0)
    if reference:
        fig.axes[0].legend(fontsize=8)
    return fig


def bias_figure(results: Results, seed: int = 0) -> Figure:
    """Chapter 2: the bias profile of every rate's ``seed`` (line at k = N), and the bias of
    every alive neuron of every instance against its top feature's share, by class."""
    fig, (ax1, ax2) = subplots(1, 2, figsize=(11, 3.6))
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
    fig, ax = subplots(figsize=(7, 3))
    for i, c in enumerate(results.configs):
        owned = as_numpy(results.features(i).mono)
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
    fig, (ax1, ax2) = subplots(1, 2, figsize=(10, 3))
    steps = np.log2(as_numpy(curves["steps"]))
    for j, label in enumerate(labels):
        ax1.plot(steps, as_numpy(curves["mean_bias"])[:, j], label=label)
        ax2.plot(steps, as_numpy(curves["dead_neurons"])[:, j], label=label)
    ax1.set(xlabel="log2(steps)", ylabel="mean bias", title=title)
    ax2.set(xlabel="log2(steps)", ylabel="dead neurons")
    ax2.legend()
    return fig


def interference_figure_neurons(views: Sequence[InterferenceView]) -> Figure:
    """The interference each neuron receives with its feature off, against its threshold -b
    (``views`` from ``experiments.neuron_interference``)."""
    ncols = min(2, len(views))
    nrows = -(-len(views) // ncols)
    fig, axes = subplots(nrows, ncols, figsize=(10, 2.6 * nrows), sharey=True, squeeze=False)
    for ax in axes.ravel()[len(views) :]:
        ax.remove()
    for ax, v in zip(axes.ravel(), views):
        ax.hist(as_numpy(v.values), bins=50, color="#777", density=True)
        ax.axvline(-v.bias, color=CLASS_COLORS["monosemantic"], lw=2, label=f"-b = {-v.bias:.2f}")
        ax.set(title=f"neuron {v.neuron} (feature {v.feature})", xlabel="w . x, own feature off")
        ax.legend(fontsize=8)
    return fig


def shrink_figure(study: pd.DataFrame) -> Figure:
    """Mono/N and the fraction of dead neurons against the total shrink, one line per run
    length (``study`` from ``experiments.shrink_study``)."""
    fig, axes = subplots(1, 2, figsize=(10, 3))
    for name, rows in study.groupby("run", sort=False):
        S = rows["total shrink S"]
        axes[0].plot(S, rows["mono_per_feature"], "o-", label=name)
        axes[1].plot(S, rows["dead fraction"], "o-", label=name)
    axes[0].set(
        xlabel="total shrink S", ylabel=METRICS["mono_per_feature"].label, title="initial bias -1"
    )
    axes[1].set(xlabel="total shrink S", ylabel="fraction of neurons dead")
    axes[0].legend()
    return fig


def density_figure(study: dict) -> Figure:
    """The monosemantic neurons' learned bias and their interference spread against the
    density, log-log with the fitted exponents and a slope-1/2 guide."""
    fig, ax = subplots(figsize=(6, 3.4))
    eps, noise = study["eps"], study["noise"]
    ax.loglog(eps, -study["mono_bias"], "o-", label=f"-(mean bias of mono neurons), slope "
              f"{study['slope_bias']:.2f}")  # fmt: skip
    ax.loglog(eps, noise, "s-", label=f"interference spread, slope {study['slope_noise']:.2f}")
    guide = 0.5 * np.sqrt(eps / eps[-1]) * np.nanmax(noise)
    ax.loglog(eps, guide, "k:", label="slope 1/2")
    log_ticks(ax, eps)
    ax.set(xlabel="feature density eps", title="live scale, initial bias -1 with B1's shrink")
    ax.legend(fontsize=8)
    return fig


def levers_figure(live: Results, views: dict) -> Figure:
    """Loss against mono/N for no lever, L1 penalties and the initial-bias grid with decay
    (``views`` from ``experiments.live_views``)."""
    fig, ax = subplots(figsize=(6, 3.6))
    point = lambda idx: (live.select(idx).metric("mono_per_feature"),
                         live.select(idx).metric("final_loss"))  # fmt: skip
    l1s = ", ".join(f"{live.configs[i].l1:g}" for i in views["l1"])
    ax.plot(*point([views["start"]]), "k*", ms=12, label="no lever")
    ax.plot(*point(views["l1"]), "s-", label=f"L1 = {l1s}")
    ax.plot(*point(views["grid"]), "o", label="initial bias -2 .. 0.5 with decay")
    ax.set(xlabel=METRICS["mono_per_feature"].label, ylabel="loss", title="two levers, live scale")
    ax.legend(fontsize=8)
    return fig


WIDTH_METRICS = ("mono_per_feature", "mono_per_neuron", "features_covered", "final_loss")


def width_figure(widths: dict[str, Results]) -> Figure:
    """Chapter 4: every recipe's metrics against the width k, seeds as points, with k = N
    dotted and the loss on a log scale (``widths`` is {recipe: Results})."""
    fig = results_sweep(widths, "k", WIDTH_METRICS, figsize=(10, 6.2), ncols=2)
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
    fig, axes = subplots(1, 2, figsize=(11, 3.3), sharey=True)
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
    f, covered = cov.features, as_numpy(cov.features.mono) > 0
    fig, axes = subplots(1, 3, figsize=(13, 3.2))
    axes[0].bar(np.arange(len(covered)), np.sort(as_numpy(f.mono))[::-1], color="#2a7ab9")
    axes[0].set(xlabel="feature (sorted)", ylabel="mono neurons", title="mono neurons per feature")
    axes[1].hist(as_numpy(f.best_share)[~covered], bins=np.linspace(0.5, 1, 11), color="#f0ad4e")
    axes[1].axvline(0.999, color="k", ls=":")
    axes[1].set(xlabel="best neuron's share of the feature", ylabel="uncovered features")
    axes[1].set_title("how close the uncovered came")
    overlap = as_numpy(cov.overlap)
    labels = [f"covered ({covered.sum()})", f"uncovered ({(~covered).sum()})"]
    axes[2].boxplot([overlap[covered], overlap[~covered]], tick_labels=labels)
    axes[2].set(ylabel="largest overlap with another feature", title="geometry does not pick them")
    return fig


def mono_anatomy_figure(anatomy: MonoAnatomy, classes: NeuronClasses) -> Figure:
    """Chapter 5: input cosine and output share by neuron class, and the monosemantic
    neurons' output weight on their own feature (``anatomy`` from
    ``experiments.mono_anatomy``, ``classes`` from the report)."""
    fig, axes = subplots(1, 3, figsize=(13, 3.2))
    for label in LIVE_CLASSES:
        m = classes.mask(label)
        if bool(m.any()):
            kw = {"alpha": 0.6, "color": CLASS_COLORS[label], "label": label}
            axes[0].hist(as_numpy(anatomy.align["input_cosine"][m]), np.linspace(-1, 1, 41), **kw)
            axes[1].hist(as_numpy(anatomy.align["output_share"][m]), np.linspace(0, 1, 41), **kw)
    axes[0].set(xlabel="cosine(W1[n], P_j)", title="input weights vs the feature's direction")
    axes[1].set(xlabel="share of |W2[:, n]|^2 on output j", title="output weights on the feature")
    axes[0].legend(fontsize=8)
    axes[2].hist(as_numpy(anatomy.own), bins=30, color=CLASS_COLORS["monosemantic"])
    axes[2].axvline(0, color="k", ls=":")
    axes[2].set(xlabel="W2[j, n], the output weight on its own feature")
    axes[2].set_title("monosemantic neurons: own output weight")
    return fig


def pair_figure(pair: PairResponse, bias: torch.Tensor | np.ndarray) -> Figure:
    """Output j against feature j's value: each of its monosemantic neurons' contribution
    (labelled with its bias from ``bias`` [k]), the sum over all neurons and the target."""
    fig, ax = subplots(figsize=(7, 3.4))
    j, values = pair.feature, as_numpy(pair.values)
    for n, c in zip(pair.neurons, pair.contributions):
        ax.plot(values, as_numpy(c), label=f"neuron {n} (bias {float(bias[n]):+.2f})")
    ax.plot(values, as_numpy(pair.total), "k", lw=2, label="output j, all neurons")
    ax.plot(values, values, "k:", lw=1, label="target")
    ax.set(xlabel=f"value of feature {j} (alone)", ylabel=f"contribution to output {j}")
    ax.set_title(f"feature {j}: its monosemantic neurons")
    ax.legend(fontsize=8)
    return fig


def classes_figure(classes: NeuronClasses) -> Figure:
    """Every neuron's bias against how often it fires, by class."""
    fig, ax = subplots(figsize=(7, 3.6))
    for label in LIVE_CLASSES:
        m = classes.mask(label)
        ax.scatter(
            as_numpy(classes.activity[m]), as_numpy(classes.bias[m]), s=12, alpha=0.7,
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
    fig, ax = subplots(figsize=(8, 3))
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
    ``titles`` (default: ``experiments.describe_config`` of each instance), each marking the
    neurons that pass under that variant."""
    if titles is None:
        titles = [describe_config(c) for c in results.configs]
    stats = [results.stats(i, variant) for i in range(len(results))]
    return heatmap_row(
        [st.sfa[0] for st in stats],
        titles,
        vmax=vmax,
        xlabel=xlabel,
        passing=[Passing.of_stats(st) for st in stats],
    )


LOSS_MONO = ("final_loss", "mono_per_feature")


def live_grid_figure(live: Results, views: dict) -> Figure:
    """Chapter 3's live grid: mono/N, loss and dead neurons against the initial bias (with
    B1's shrink), and the baseline without decay as a dotted line (``views`` from
    ``experiments.live_views``)."""
    grid = {"with bias decay": live.select(views["grid"])}
    reference = {"initial bias 0, no decay": live.select([views["start"]])}
    return results_sweep(grid, "init_bias", logx=False, reference=reference, figsize=(11, 3))
