"""The neuron inspector: one neuron at a time, its single-feature activations, bias and class,
input and output weights, and the loss when it alone is ablated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..analysis.classes import classify_neurons
from ..analysis.defaults import EVAL_SAMPLES
from ..analysis.metrics import is_signed, neuron_stats
from ..analysis.probes import ablation_loss
from ..core.training import Run
from .figure_kit import CLASS_COLORS
from .inspector_static import static_inspector
from .live import LiveView, PanelSlot, StaticSlider, static_slider

__all__ = ["neuron_inspector", "InspectorPanel", "NeuronPanel"]


class InspectorPanel:
    """The neuron inspector's three bar panels, drawn once per figure and updated in place."""

    def __init__(self, fig: Figure, n_features: int, n_inputs: int, n_outputs: int, footer: bool):
        gs = fig.add_gridspec(2, 2, height_ratios=[1, 1])
        self.ax1 = fig.add_subplot(gs[0, :])
        self.bars1 = self.ax1.bar(np.arange(n_features), np.zeros(n_features))
        self.ax1.set_xlabel("feature")
        self.ax1.set_ylabel("activation")
        self.ax2 = fig.add_subplot(gs[1, 0])
        self.bars2 = self.ax2.bar(np.arange(n_inputs), np.zeros(n_inputs), color="#555")
        self.line2 = self.ax2.axhline(0.0, ls="--", lw=1, label="-bias")
        self.ax2.set_title("input weights seen per feature (W1 P)")
        self.legend = self.ax2.legend(fontsize=8)
        self.ax3 = fig.add_subplot(gs[1, 1])
        self.bars3 = self.ax3.bar(np.arange(n_outputs), np.zeros(n_outputs), color="#555")
        self.ax3.set_title("output weights W2[:, n]")
        fig.subplots_adjust(hspace=0.55, wspace=0.25, bottom=0.18 if footer else 0.1)
        self.footer = fig.text(0.5, 0.01, "", ha="center", fontsize=9) if footer else None
        self.key = (n_features, n_inputs, n_outputs, footer)

    def drawn_on(self, fig: Figure) -> bool:
        """Whether this panel is still drawn on ``fig``."""
        return self.ax1 in fig.axes

    @staticmethod
    def _heights(ax, bars, values: np.ndarray, extra: float | None = None) -> None:
        for bar, v in zip(bars, values):
            bar.set_height(float(v))
        lo, hi = min(0.0, float(values.min())), max(0.0, float(values.max()))
        if extra is not None:
            lo, hi = min(lo, extra), max(hi, extra)
        pad = 0.05 * (hi - lo) or 0.05
        ax.set_ylim(lo - pad * (lo < 0), hi + pad)

    def show(self, sfa_n, color, title, w1p, minus_bias, w2n, text):
        self._heights(self.ax1, self.bars1, sfa_n)
        for bar in self.bars1:
            bar.set_color(color)
        self.ax1.set_title(title)
        self._heights(self.ax2, self.bars2, w1p, minus_bias)
        self.line2.set_ydata([minus_bias, minus_bias])
        self.line2.set_color(color)
        for handle in getattr(
            self.legend, "legend_handles", getattr(self.legend, "legendHandles", [])
        ):
            handle.set_color(color)
        self._heights(self.ax3, self.bars3, w2n)
        if self.footer is not None:
            self.footer.set_text(text)


class NeuronPanel:
    """One instance's neurons for the inspector: classes, single-feature activations [k, N]
    (or [k, 2N] signed), W1 P [k, N], W2 [out, k], and ablation losses, computed on demand."""

    def __init__(self, run: Run, instance: int, samples: int):
        self.run, self.instance, self.samples = run, instance, samples
        self.classes = classify_neurons(run, instance, samples=samples)
        self.model = run.model.select(instance)
        self.P = run.P[instance].double().cpu()
        st = neuron_stats(
            self.model, run.P[instance : instance + 1], signed=is_signed(run.configs[instance])
        )
        self.sfa = st.sfa[0].double().cpu()
        self.W1, self.W2 = self.model.W1[0].double().cpu(), self.model.W2[0].double().cpu()
        self.base = ablation_loss(run, None, instance, samples)
        self.ablated: dict[int, float] = {}
        self.slot = PanelSlot()

    def ablated_loss(self, n: int) -> float:
        if n not in self.ablated:
            self.ablated[n] = ablation_loss(self.run, [n], self.instance, self.samples)
        return self.ablated[n]

    def _panel(self, fig: Figure, footer: bool) -> InspectorPanel:
        key = (self.sfa.shape[1], self.P.shape[1], self.W2.shape[0], footer)
        return self.slot.get(fig, key, lambda f: InspectorPanel(f, *key))

    def draw(self, fig: Figure, n, footer: bool = True) -> str:
        """Draw neuron ``n`` into ``fig``; returns the status line."""
        n = int(n)
        loss, base, classes = self.ablated_loss(n), self.base, self.classes
        label = classes.labels[n]
        title = (
            f"neuron {n}: {label}, bias {float(classes.bias[n]):+.3f}, active on "
            f"{float(classes.activity[n]):.0%} of inputs"
        )
        text = (
            f"loss {base:.4f} -> {loss:.4f} when neuron {n} is ablated "
            f"({(loss - base) / base:+.1%})"
        )
        self._panel(fig, footer).show(
            self.sfa[n].cpu().numpy(),
            CLASS_COLORS[label],
            title,
            (self.W1[n] @ self.P).cpu().numpy(),
            -float(classes.bias[n]),
            self.W2[:, n].cpu().numpy(),
            text,
        )
        return text if footer else f"neuron {n} ({label}): {text}"


def neuron_inspector(
    run: Run,
    instance: int = 0,
    live: bool = True,
    neurons: Sequence[int] | None = None,
    samples: int = EVAL_SAMPLES,
    figsize: tuple[float, float] = (9, 5.2),
) -> LiveView | StaticSlider:
    """Pick a neuron: its single-feature activations, bias, class, input and output weights,
    and the loss change when it alone is ablated. Static (``live=False``): every neuron, or
    the ``neurons`` given as one image each.

    Classes and losses use the same evaluation samples as ``interpret`` (its default
    ``samples``), so the intact model's loss here is the report's."""
    panel = NeuronPanel(run, instance, samples)
    if not live:
        if neurons is None:  # every neuron, its bars drawn in the browser
            return static_inspector(panel)
        return static_slider(panel.draw, list(neurons), figsize=figsize)
    import ipywidgets as w

    options = [(f"{n}: {panel.classes.labels[n]}", n) for n in range(panel.model.k)]
    slider = w.SelectionSlider(
        options=options,
        value=int(neurons[0]) if neurons else 0,
        description="neuron",
        continuous_update=False,
    )
    return LiveView(
        {"neuron": slider},
        lambda v, progress: v["neuron"],
        lambda fig, n, v: panel.draw(fig, n, False),
        figsize,
        in_place=True,
    )
