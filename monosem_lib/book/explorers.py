"""The book's heatmap sliders over precomputed runs: training checkpoints, instances of a
batch, widths. Each is a ``LiveView`` (live) or a ``StaticSlider`` (the static twin), drawing
the sorted single-feature-activation heatmap of one model with its numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..analysis.defaults import LOSS_WINDOW
from ..analysis.metrics import METRICS, evaluate_loss, is_signed, neuron_stats
from ..core.config import Config
from ..core.model import ToyModel
from ..core.training import Run
from .figure_kit import heatmap_order, sfa_heatmap
from .live import LiveView, PanelSlot, StaticSlider, static_slider

__all__ = [
    "checkpoint_explorer",
    "instance_slider",
    "width_explorer",
    "HeatmapPanel",
    "draw_state",
    "slider_view",
    "state_numbers",
    "short_number",
]


# -- the book's explorers -------------------------------------------------------------------
def state_numbers(st, config: Config, loss: float | None) -> str:
    mono = int(st.mono[0].sum())
    covered = st.covered(0)
    parts = [
        f"{METRICS['mono_per_feature'].label} {mono / config.N:.2f}",
        f"features covered {covered / config.N:.2f}",
        f"dead {int(st.dead[0].sum())}",
    ]
    if loss is not None:
        parts.insert(0, f"loss {loss:.4f}")
    return " | ".join(parts)


class HeatmapPanel:
    """The sorted single-feature-activation heatmap with its colorbar, drawn once per figure
    and then updated in place (kept in a ``PanelSlot``). Live (no footer), the image and title
    are blitted onto a cached background (see ``figure_png``); static frames draw normally."""

    def __init__(self, fig: Figure, sfa: np.ndarray, title: str, footer: bool):
        self.fig = fig
        self.shape = sfa.shape
        self.ax = fig.add_subplot(1, 1, 1)
        self.img = sfa_heatmap(self.ax, sfa, vmax=1.0, title=title, colorbar=True)
        self.footer = (
            fig.text(0.5, 0.005, "", ha="center", va="bottom", fontsize=9) if footer else None
        )
        fig.subplots_adjust(bottom=0.2 if footer else 0.13, top=0.9, left=0.1, right=0.97)
        self.background = None
        self.live = not footer
        if self.live:
            self.img.set_animated(True)
            self.ax.title.set_animated(True)

    def drawn_on(self, fig: Figure) -> bool:
        """Whether this panel is still drawn on ``fig``."""
        return self.fig is fig and self.ax in fig.axes

    def blit(self) -> bool:
        """Restore the cached background, paint the heatmap's pixels straight into the
        canvas (nearest neighbour through the colormap, as imshow draws it) and draw the
        title. About 5 ms instead of a 100 ms full draw."""
        canvas, values = self.fig.canvas, self.img.get_array()
        live = self.live and self.ax in self.fig.axes
        if not live or not isinstance(canvas, FigureCanvasAgg) or values is None:
            return False
        if self.background is None:
            canvas.draw()  # everything but the animated image and title
            self.background = canvas.copy_from_bbox(self.fig.bbox)
            cmap = self.img.get_cmap()
            self.lut = np.round(cmap(np.linspace(0, 1, cmap.N)) * 255).astype(np.uint8)
        canvas.restore_region(self.background)
        buf = np.asarray(canvas.buffer_rgba())
        height = buf.shape[0]
        box = self.ax.bbox
        x0, x1 = int(round(box.x0)) + 1, int(round(box.x1))  # + 1: keep the left spine
        y0, y1 = height - int(round(box.y1)), height - int(round(box.y0))
        data = np.ma.getdata(values).astype(float)
        rows, cols = data.shape
        level = np.clip(np.nan_to_num(np.ma.filled(self.img.norm(data), 0)), 0, 1)
        index = np.round(level * (len(self.lut) - 1)).astype(np.intp)
        r = (
            ((np.arange(y0, y1) - (height - box.y1) + 0.5) * rows / box.height)
            .astype(np.intp)
            .clip(0, rows - 1)
        )
        c = (
            ((np.arange(x0, x1) - box.x0 + 0.5) * cols / box.width)
            .astype(np.intp)
            .clip(0, cols - 1)
        )
        buf[y0:y1, x0:x1] = self.lut[index[r][:, c]]
        self.ax.draw_artist(self.ax.title)
        return True

    def show(self, sfa: np.ndarray, title: str, text: str) -> None:
        a = np.clip(sfa, 0, None)
        rows, cols = heatmap_order(a)
        self.img.set_data(a[rows][:, cols])
        self.ax.set_title(title)
        if self.footer is not None:
            self.footer.set_text(text)


def draw_state(
    fig: Figure,
    slot: PanelSlot,
    model: ToyModel,
    P,
    config: Config,
    title: str,
    loss: float | None,
    footer: bool = True,
) -> str:
    """Heatmap of one model and its numbers, in the panel ``slot`` keeps on ``fig``; ``footer``
    also writes the numbers under the heatmap (static frames: live views show them in their
    status line instead)."""
    st = neuron_stats(model, P, signed=is_signed(config))
    sfa = st.sfa[0].double().cpu().numpy()
    text = state_numbers(st, config, loss)
    panel = slot.get(fig, (sfa.shape, footer), lambda f: HeatmapPanel(f, sfa, title, footer))
    panel.show(sfa, title, text)
    return text


def slider_view(
    slider_name: str, slider, draw: Callable, figsize, slot: PanelSlot | None = None
) -> LiveView:
    """A live view over precomputed frames: ``draw(fig, value, footer)`` returns the status;
    ``slot`` holds the panel it draws, for blitting."""
    return LiveView(
        {slider_name: slider},
        lambda v, progress: v[slider_name],
        lambda fig, value, v: draw(fig, value, False),
        figsize,
        in_place=True,
        blit=None if slot is None else slot.blit,
    )


def checkpoint_explorer(
    run: Run, instance: int = 0, live: bool = True, figsize: tuple[float, float] = (7, 4.2)
) -> LiveView | StaticSlider:
    """Watch the heatmap form over training checkpoints (log2-spaced steps).

    Returns a ``LiveView`` (``live=True``) or a ``StaticSlider``.
    """
    sub = run.select([instance])
    steps = sorted(sub.checkpoints)
    cfg = sub.config
    hist = sub.loss_history[:, 0].double()
    slot = PanelSlot()

    def draw_step(fig, step, footer=True):
        loss = float(hist[max(0, step - LOSS_WINDOW) : step].mean())
        title = f"after {step} steps (log2 = {np.log2(step):.0f})"
        text = draw_state(fig, slot, sub.checkpoint_model(step), sub.P, cfg, title, loss, footer)
        return text if footer else f"{title}: {text}"

    if not live:
        caption = (
            f"Precomputed: the model's heatmap and numbers at each of its {len(steps)} "
            f"checkpoints, {steps[0]} to {steps[-1]} steps; the title shows the step."
        )
        return static_slider(draw_step, steps, figsize=figsize, caption=caption)
    import ipywidgets as w

    slider = w.SelectionSlider(
        options=steps, value=steps[-1], description="step", continuous_update=False
    )
    return slider_view("step", slider, draw_step, figsize, slot)


def short_number(x: float) -> str:
    """Three significant figures."""
    return f"{x:.3g}"


def instance_slider(
    run: Run,
    instances: Sequence[int],
    title: Callable[[Config], str],
    live: bool = False,
    figsize: tuple[float, float] = (7, 4.2),
) -> LiveView | StaticSlider:
    """A slider over some instances of one run: each frame is that instance's heatmap and
    numbers, titled by ``title(config)``. Static (JS) unless ``live``."""
    instances = list(instances)
    slot = PanelSlot()

    def draw(fig, i, footer=True):
        r = run.select([i])
        loss = float(evaluate_loss(r)[0])
        text = draw_state(fig, slot, r.model, r.P, r.config, title(r.config), loss, footer)
        return text if footer else f"{title(r.config)}: {text}"

    if not live:
        caption = f"Precomputed: {len(instances)} models of one batch; the title names each."
        return static_slider(draw, instances, figsize=figsize, caption=caption)
    import ipywidgets as w

    slider = w.SelectionSlider(
        options=[(title(run.configs[i]), i) for i in instances],
        value=instances[0],
        description="run",
        continuous_update=False,
    )
    return slider_view("i", slider, draw, figsize, slot)


def width_explorer(
    runs: dict[int, Run],
    instance: int = 0,
    live: bool = True,
    figsize: tuple[float, float] = (7, 4.2),
) -> LiveView | StaticSlider:
    """Slide over precomputed widths k: the heatmap and numbers of each width's model."""
    ks = sorted(runs)
    slot = PanelSlot()

    def draw_k(fig, k, footer=True):
        r = runs[k].select([instance])
        title = f"k = {k} neurons ({k / r.config.N:g} N)"
        text = draw_state(
            fig,
            slot,
            r.model,
            r.P,
            r.config,
            title,
            float(r.loss_history[-LOSS_WINDOW:, 0].double().mean()),
            footer,
        )
        return text if footer else f"{title}: {text}"

    if not live:
        caption = (
            f"Precomputed: the model's heatmap and numbers at each width k from {ks[0]} to "
            f"{ks[-1]} neurons; the title shows k."
        )
        return static_slider(draw_k, ks, figsize=figsize, caption=caption)
    import ipywidgets as w

    slider = w.SelectionSlider(
        options=ks, value=ks[len(ks) // 2], description="neurons k", continuous_update=False
    )
    return slider_view("k", slider, draw_k, figsize, slot)
