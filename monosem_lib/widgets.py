"""Sliders in two forms: live (ipywidgets + matplotlib, in Jupyter and Colab) and static
(precomputed frames as a ``matplotlib.animation`` JS slider that works on the published page,
where no kernel runs and ipywidgets render as nothing).

``LiveView`` and ``static_slider`` are the two building blocks; the explorers below are the
book's sliders built from them, so a chapter adds one in a line or two.
"""

from __future__ import annotations

import html as _html
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure

from .config import Config, preset
from .experiments import B1_SHRINK
from .interpretation import classify_neurons
from .metrics import evaluate_loss, is_signed, neuron_stats, single_feature_activations
from .model import ToyModel
from .plots import CLASS_COLORS, heatmap_order, seed_band, sfa_heatmap
from .training import Run, train

__all__ = [
    "StaticSlider",
    "static_slider",
    "LiveView",
    "checkpoint_explorer",
    "BiasExplorer",
    "instance_slider",
    "bias_grid",
    "bias_grid_figure",
    "width_explorer",
    "neuron_inspector",
]


# -- static ---------------------------------------------------------------------------------
@dataclass
class StaticSlider:
    """A precomputed JS slider; displays itself as HTML in notebooks and on the static site."""

    html: str
    frames: int

    def _repr_html_(self) -> str:
        return self.html


def static_slider(draw: Callable[[Figure, Any], None], values: Sequence, *, figsize=(8, 4), interval: int = 700) -> StaticSlider:
    """One frame per value, drawn by ``draw(fig, value)``, as a matplotlib JS animation with a
    slider (``to_jshtml``). Put the value in the figure's title: the slider shows frame numbers."""
    values = list(values)
    if not values:
        raise ValueError("static_slider needs at least one value")
    fig = plt.figure(figsize=figsize)

    def frame(i: int):
        fig.clear()
        draw(fig, values[i])
        return []

    anim = FuncAnimation(fig, frame, frames=len(values), interval=interval, repeat=False, init_func=lambda: [])
    try:
        html = anim.to_jshtml(default_mode="once")
    finally:
        plt.close(fig)
    return StaticSlider(html, len(values))


# -- live -----------------------------------------------------------------------------------
class LiveView:
    """Controls that redraw one matplotlib figure, with results cached per setting.

    Args:
        controls: name -> ipywidgets control; their values are passed to ``compute``.
        compute: ``compute(values: dict, progress)`` returns a result; it may call
            ``progress(partial_result)`` to redraw while it works (live training).
        draw: ``draw(fig, result, values)`` draws a result and returns a one-line summary.
        figsize: of the figure.

    ``view.cache_hits`` and ``view.computes`` count how settings were served.
    """

    def __init__(self, controls: dict, compute: Callable, draw: Callable, figsize=(8, 4)):
        import ipywidgets as w

        self.controls = controls
        self.compute_fn, self.draw_fn = compute, draw
        self.figure = Figure(figsize=figsize)
        self.output = w.Output()
        self.status = w.HTML()
        self.cache: dict[tuple, Any] = {}
        self.cache_hits = 0
        self.computes = 0
        self.widget = w.VBox([w.HBox(list(controls.values())), self.status, self.output])
        for c in controls.values():
            c.observe(lambda _change: self.update(), names="value")
        self.update()

    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def update(self) -> None:
        values = self.values()
        key = tuple(values.items())
        if key in self.cache:
            self.cache_hits += 1
            result = self.cache[key]
        else:
            self.computes += 1
            result = self.compute_fn(values, lambda partial: self._show(partial, values))
            self.cache[key] = result
        self._show(result, values)

    def _show(self, result, values) -> None:
        self.figure.clear()
        summary = self.draw_fn(self.figure, result, values)
        self.status.value = f"<code>{_html.escape(summary or '')}</code>"
        self.output.clear_output(wait=True)
        with self.output:
            try:
                from IPython.display import display
                display(self.figure)
            except ImportError:  # pragma: no cover - IPython ships with Jupyter and Colab
                pass

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.widget)


# -- the book's explorers -------------------------------------------------------------------
def _numbers(model: ToyModel, P, config: Config, loss: float | None) -> str:
    st = neuron_stats(model, P, signed=is_signed(config))
    mono = int(st.mono[0].sum())
    covered = st.covered(0)
    parts = [f"mono neurons / feature {mono / config.N:.2f}", f"features covered {covered / config.N:.2f}",
             f"dead {int(st.dead[0].sum())}"]
    if loss is not None:
        parts.insert(0, f"loss {loss:.4f}")
    return " | ".join(parts)


def _draw_state(fig: Figure, model: ToyModel, P, config: Config, title: str, loss: float | None) -> str:
    ax = fig.add_subplot(1, 1, 1)
    sfa = single_feature_activations(model, P, is_signed(config))[0]
    sfa_heatmap(ax, sfa, vmax=1.0, title=title)
    text = _numbers(model, P, config, loss)
    fig.text(0.5, 0.005, text, ha="center", va="bottom", fontsize=9)
    fig.subplots_adjust(bottom=0.2)
    return text


def checkpoint_explorer(run: Run, instance: int = 0, live: bool = True, figsize=(7, 4.2)):
    """Watch the heatmap form over training checkpoints (log2-spaced steps).

    Returns a ``LiveView`` (``live=True``) or a ``StaticSlider``.
    """
    sub = run.select([instance])
    steps = sorted(sub.checkpoints)
    cfg = sub.config
    hist = sub.loss_history[:, 0].double()

    def state(step):
        loss = float(hist[max(0, step - 16):step].mean())
        return sub.checkpoint_model(step), loss

    def draw_step(fig, step):
        model, loss = state(step)
        return _draw_state(fig, model, sub.P, cfg, f"after {step} steps (log2 = {np.log2(step):.0f})", loss)

    if not live:
        return static_slider(draw_step, steps, figsize=figsize)
    import ipywidgets as w

    slider = w.SelectionSlider(options=steps, value=steps[-1], description="step", continuous_update=False)
    return LiveView({"step": slider}, lambda v, progress: v["step"], lambda fig, step, v: draw_step(fig, step), figsize)


class BiasExplorer:
    """The book's signature slider: pick an initial bias, a bias decay and a learning rate,
    and watch a model retrain, its heatmap redrawn every ``every`` steps.

    Runs at the ``live`` preset (it retrains in a few seconds on a laptop CPU) unless another
    ``base`` is given. Decays default to total shrinks of 0, 3, 5.9 (B1's), 12 and
    24 at the base's lr and length. Results are cached per setting; ``precomputed`` (a run
    of the same base, such as ``experiments.live_grid``) fills the cache up front, so those
    settings show at once. ``view`` is the LiveView.
    """

    SHRINKS = (0.0, 3.0, B1_SHRINK, 12.0, 24.0)

    def __init__(self, base: Config | None = None, every: int = 500, figsize=(7, 4.2),
                 init_biases: Sequence[float] = (-2.0, -1.5, -1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5),
                 decays: Sequence[float] | None = None, lrs: Sequence[float] = (0.003, 0.01, 0.03),
                 precomputed: Run | None = None):
        import ipywidgets as w

        from .sweeps import decay_for_shrink, total_shrink

        self.base = preset("live") if base is None else base
        self.every = every
        self._shrink = total_shrink
        if decays is None:
            decays = [decay_for_shrink(s, self.base.lr, self.base.steps) for s in self.SHRINKS]
        self.decays = [float(d) for d in decays]
        controls = {
            "init_bias": w.SelectionSlider(options=[float(b) for b in init_biases], value=0.0,
                                           description="initial bias", continuous_update=False),
            "bias_decay": w.SelectionSlider(options=[(f"{d:.3g}", d) for d in self.decays], value=self.decays[0],
                                            description="bias decay", continuous_update=False),
            "lr": w.SelectionSlider(options=list(lrs), value=self.base.lr if self.base.lr in lrs else lrs[0],
                                    description="lr", continuous_update=False),
        }
        self._precomputed = {}
        if precomputed is not None:
            for i, c in enumerate(precomputed.configs):
                if c.replace(init_bias=self.base.init_bias, bias_decay=self.base.bias_decay, lr=self.base.lr) == self.base:
                    key = (round(c.init_bias, 9), round(c.bias_decay, 9), round(c.lr, 9))
                    self._precomputed[key] = precomputed.select([i])
        self.view = LiveView(controls, self._compute, self._draw, figsize)

    def config(self, values: dict) -> Config:
        return self.base.replace(init_bias=float(values["init_bias"]), bias_decay=float(values["bias_decay"]),
                                 lr=float(values["lr"]), instances=1)

    def _compute(self, values, progress):
        cfg = self.config(values)
        ready = self._precomputed.get((round(cfg.init_bias, 9), round(cfg.bias_decay, 9), round(cfg.lr, 9)))
        if ready is not None:
            return ("done", cfg.steps, ready.model, ready.P, float(evaluate_loss(ready, samples=4096)[0]))

        def cb(step, model, losses):
            loss = float(losses[-min(16, len(losses)):].double().mean())
            progress(("training", step, model.clone(), None, loss))

        run = train(cfg, progress=False, callback=cb, callback_every=self.every, checkpoints=False)
        return ("done", cfg.steps, run.model, run.P, float(evaluate_loss(run, samples=4096)[0]))

    def _draw(self, fig, result, values):
        phase, step, model, P, loss = result
        cfg = self.config(values)
        if P is None:
            from .data import make_projection
            P = make_projection(cfg.N, cfg.m, cfg.seed).to(model.flat.dtype).unsqueeze(0)
        title = (f"initial bias {values['init_bias']:+.2f}, decay {values['bias_decay']:.3g} "
                 f"(shrink {self._shrink(cfg):.3g}), lr {values['lr']}: "
                 + (f"training, step {step}" if phase == "training" else f"trained {step} steps"))
        return _draw_state(fig, model, P, cfg, title, loss)

    def _ipython_display_(self) -> None:
        self.view._ipython_display_()


def instance_slider(run: Run, instances: Sequence[int], title: Callable[[Config], str], live: bool = False,
                    figsize=(7, 4.2)):
    """A slider over some instances of one run: each frame is that instance's heatmap and
    numbers, titled by ``title(config)``. Static (JS) unless ``live``."""
    instances = list(instances)

    def draw(fig, i):
        r = run.select([i])
        loss = float(evaluate_loss(r, samples=4096)[0])
        return _draw_state(fig, r.model, r.P, r.config, title(r.config), loss)

    if not live:
        return static_slider(draw, instances, figsize=figsize)
    import ipywidgets as w

    slider = w.SelectionSlider(options=[(title(run.configs[i]), i) for i in instances], value=instances[0],
                               description="run", continuous_update=False)
    return LiveView({"i": slider}, lambda v, progress: v["i"], lambda fig, i, v: draw(fig, i), figsize)


def bias_grid(base: Config, init_biases: Sequence[float], seeds: int = 3, **changes) -> Run:
    """Train every initial bias (x seeds) as one instance batch."""
    return train([base.replace(init_bias=float(b), instances=seeds, **changes) for b in init_biases], progress=False)


def bias_grid_figure(run: Run, init_biases: Sequence[float], figsize=(9, 3)) -> Figure:
    """mono/N, loss and dead neurons against the initial bias, seeds as points."""
    from .metrics import summarize

    rows = summarize(run, eval_samples=4096)
    seeds = run.instances // len(init_biases)
    table = {key: np.array([r[key] for r in rows]).reshape(len(init_biases), seeds)
             for key in ("mono_per_feature", "final_loss", "dead_neurons")}
    fig, axes = plt.subplots(1, 3, figsize=figsize, constrained_layout=True)
    for ax, key, label in zip(axes, table, ("mono neurons / feature", "loss", "dead neurons")):
        seed_band(ax, init_biases, table[key])
        ax.set_xlabel("initial bias")
        ax.set_title(label)
    return fig


def width_explorer(runs: dict[int, Run], instance: int = 0, live: bool = True, figsize=(7, 4.2)):
    """Slide over precomputed widths k: the heatmap and numbers of each width's model."""
    ks = sorted(runs)

    def draw_k(fig, k):
        r = runs[k].select([instance])
        return _draw_state(fig, r.model, r.P, r.config, f"k = {k} neurons ({k / r.config.N:g} N)",
                           float(r.loss_history[-64:, 0].double().mean()))

    if not live:
        return static_slider(draw_k, ks, figsize=figsize)
    import ipywidgets as w

    slider = w.SelectionSlider(options=ks, value=ks[len(ks) // 2], description="neurons k", continuous_update=False)
    return LiveView({"k": slider}, lambda v, progress: v["k"], lambda fig, k, v: draw_k(fig, k), figsize)


def neuron_inspector(run: Run, instance: int = 0, live: bool = True, neurons: Sequence[int] | None = None,
                     samples: int = 4096, figsize=(9, 5.2)):
    """Pick a neuron: its single-feature activations, bias, class, input and output weights,
    and the loss change when it alone is ablated. ``neurons`` limits the static frames."""
    from .interpretation import ablation_loss

    classes = classify_neurons(run, instance, samples=samples)
    model = run.model.select(instance)
    P = run.P[instance].double().cpu()
    sfa = single_feature_activations(model, run.P[instance:instance + 1], is_signed(run.configs[instance]))[0].double().cpu()
    W1, W2 = model.W1[0].double().cpu(), model.W2[0].double().cpu()
    base = ablation_loss(run, None, instance, samples)
    ablated: dict[int, float] = {}

    def draw(fig, n):
        n = int(n)
        if n not in ablated:
            ablated[n] = ablation_loss(run, [n], instance, samples)
        label = classes.labels[n]
        gs = fig.add_gridspec(2, 2, height_ratios=[1, 1])
        ax1 = fig.add_subplot(gs[0, :])
        ax1.bar(np.arange(sfa.shape[1]), sfa[n].numpy(), color=CLASS_COLORS[label])
        ax1.set_xlabel("feature")
        ax1.set_ylabel("activation")
        ax1.set_title(f"neuron {n}: {label}, bias {float(classes.bias[n]):+.3f}, active on "
                      f"{float(classes.activity[n]):.0%} of inputs")
        ax2 = fig.add_subplot(gs[1, 0])
        ax2.bar(np.arange(P.shape[1]), (W1[n] @ P).numpy(), color="#555")
        ax2.axhline(-float(classes.bias[n]), color=CLASS_COLORS[label], ls="--", lw=1, label="-bias")
        ax2.set_title("input weights seen per feature (W1 P)")
        ax2.legend(fontsize=8)
        ax3 = fig.add_subplot(gs[1, 1])
        ax3.bar(np.arange(W2.shape[0]), W2[:, n].numpy(), color="#555")
        ax3.set_title("output weights W2[:, n]")
        fig.subplots_adjust(hspace=0.55, wspace=0.25, bottom=0.18)
        text = (f"loss {base:.4f} -> {ablated[n]:.4f} when neuron {n} is ablated "
                f"({(ablated[n] - base) / base:+.1%})")
        fig.text(0.5, 0.01, text, ha="center", fontsize=9)
        return text

    if not live:
        if neurons is None:
            order = heatmap_order(sfa)[0]
            neurons = [int(order[i]) for i in np.linspace(0, len(order) - 1, 12).astype(int)]
        return static_slider(draw, list(neurons), figsize=figsize)
    import ipywidgets as w

    slider = w.IntSlider(value=int(neurons[0]) if neurons else 0, min=0, max=model.k - 1, description="neuron",
                         continuous_update=False)
    return LiveView({"neuron": slider}, lambda v, progress: v["neuron"], lambda fig, n, v: draw(fig, n), figsize)
