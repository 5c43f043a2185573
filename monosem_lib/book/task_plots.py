"""Chapter 6's figures (other tasks and nonlinearities), in plain matplotlib: the nonlinearity
bars and the power-law view. Nothing here computes science."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..analysis.metrics import METRICS
from .figure_kit import as_numpy, seeds_label, subplots
from .views import PowerLawView

__all__ = ["nonlinearity_figure", "power_law_figure"]


def nonlinearity_figure(table: pd.DataFrame) -> Figure:
    """Bars of mono/N, loss and silent neurons per (nonlinearity, recipe) row of
    ``tables.nonlinearity_table``, recipes in blue and baselines in orange, with the seeds'
    standard deviation as error bars where a row has several seeds (its label says how many)."""
    fig, axes = subplots(1, 3, figsize=(12, 3))
    labels = [f"{a}\n{b}\n{seeds_label(n)}" for (a, b), n in zip(table.index, table["seeds"])]
    colors = ["#2a7ab9" if b == "recipe" else "#f0ad4e" for _, b in table.index]
    titles = (METRICS["mono_per_feature"].label, "loss", "neurons silent on every single feature")
    for ax, column, title in zip(axes, ("mono/N", "loss", "silent"), titles):
        sd = [getattr(v, "sd", float("nan")) for v in table[column]]
        ax.bar(range(len(table)), table[column].astype(float), color=colors,
               yerr=sd, capsize=3, ecolor="#333")  # fmt: skip
        ax.set_xticks(range(len(table)), labels, fontsize=8)
        ax.set_title(title)
    axes[0].set_ylabel("seed mean ± sd")
    return fig


def power_law_figure(view: PowerLawView) -> Figure:
    """Monosemantic neurons by feature rank, and each feature's best share against its
    probability (``view`` from ``experiments.power_law_view``)."""
    fig, (ax1, ax2) = subplots(1, 2, figsize=(11, 3.2))
    mono = as_numpy(view.features.mono)
    ax1.bar(np.arange(1, len(mono) + 1), mono, color="#2a7ab9")
    ax1.set(xlabel="feature rank (1 = most frequent)", ylabel="mono neurons", title="by rank")
    ax2.semilogx(as_numpy(view.probs), as_numpy(view.features.best_share), "o", ms=4)
    ax2.set(xlabel="feature probability", ylabel="best neuron's share")
    ax2.set_title("how monosemantic each feature's best neuron is")
    return fig
