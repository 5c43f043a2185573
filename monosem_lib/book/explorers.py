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
from .heatmap_marks import HeatmapFrame, HeatmapFrames, Passing, PassingMarks
from .live import LiveView, PanelSlot, StaticSlider, static_slider

__all__ = [
    "checkpoint_explorer",
    "instance_slider",
    "width_explorer",
    "HeatmapPanel",
    "draw_state",
    "model_frame",
    "stats_frame",
    "show_frame",
    "checkpoint_frames",
    "instance_frames",
    "width_frames",
    "slider_view",
    "state_numbers",
    "short_number",
]


# -- the book's explorers -------------------------------------------------------------------
def state_numbers(st, config: Config, loss: float | None) -> str:
    """The numbers printed with a heatmap of instance 0 of ``st`` (``NeuronStats``), led by
    the count of the neurons its marks show (``Passing.label``)."""
    passing = Passing.of_stats(st)
    parts = [
        passing.label(),
        f"{METRICS['mono_per_feature'].short} {passing.count / config.N:.2f}",
        f"covered {passing.covered} of {config.N} features",
        f"dead {int(st.dead[0].sum())}",
    ]
    if loss is not None:
        parts.append(f"loss {loss:.4f}")
    return " | ".join(parts)


def stats_frame(st, config: Config, title: str, loss: float | None) -> HeatmapFrame:
    """The heatmap frame of instance 0 of ``st`` (``NeuronStats``): its activations, its
    passing neurons and its numbers, all from ``st``."""
    sfa = st.sfa[0].double().cpu().numpy()
    return HeatmapFrame(sfa, Passing.of_stats(st), title, state_numbers(st, config, loss))


def model_frame(model: ToyModel, P, config: Config, title: str, loss: float | None) -> HeatmapFrame:
    """The heatmap frame of a one-instance model (signed probes for the abs task)."""
    return stats_frame(neuron_stats(model, P, signed=is_signed(config)), config, title, loss)


class HeatmapPanel:
    """The sorted single-feature-activation heatmap with its colorbar and the marks of its
    passing neurons, drawn once per figure and then updated in place (kept in a
    ``PanelSlot``). Live (no footer), the image, marks and title are blitted onto a cached
    background (see ``figure_png``); static frames draw normally with the numbers under them."""

    def __init__(self, fig: Figure, frame: HeatmapFrame, footer: bool):
        self.fig = fig
        self.shape = frame.sfa.shape
        self.ax = fig.add_subplot(1, 1, 1)
        self.live = not footer
        self.marks = PassingMarks(self.ax, animated=self.live)
        self.img = sfa_heatmap(
            self.ax,
            frame.sfa,
            vmax=1.0,
            title=frame.title,
            colorbar=True,
            passing=frame.passing,
            count=False,
            marks=self.marks,
        )
        self.footer = (
            fig.text(0.5, 0.005, "", ha="center", va="bottom", fontsize=9) if footer else None
        )
        fig.subplots_adjust(bottom=0.22 if footer else 0.16, top=0.9, left=0.1, right=0.97)
        self.background = None
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
        for artist in (*self.marks.artists(), self.ax.title):
            self.ax.draw_artist(artist)
        return True

    def show(self, frame: HeatmapFrame) -> None:
        """Draw ``frame``: its activations, the marks of its passing neurons, its title and
        (static frames) its numbers."""
        a = np.clip(frame.sfa, 0, None)
        rows, cols = heatmap_order(a)
        self.img.set_data(a[rows][:, cols])
        self.marks.show(frame.passing, (rows, cols))
        self.ax.set_title(frame.title)
        if self.footer is not None:
            self.footer.set_text(frame.text)


def show_frame(fig: Figure, slot: PanelSlot, frame: HeatmapFrame, footer: bool = True) -> str:
    """Draw ``frame`` in the panel ``slot`` keeps on ``fig``; ``footer`` also writes its
    numbers under the heatmap (static frames: live views show them in their status line).
    Returns the numbers."""
    panel = slot.get(fig, (frame.sfa.shape, footer), lambda f: HeatmapPanel(f, frame, footer))
    panel.show(frame)
    return frame.text


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
    """Heatmap of one model and its numbers (``model_frame``), in the panel ``slot`` keeps on
    ``fig`` (``show_frame``); returns the numbers."""
    return show_frame(fig, slot, model_frame(model, P, config, title, loss), footer)


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


def _one(frames: HeatmapFrames, value) -> HeatmapFrame:
    (frame,) = frames.frame(value)
    return frame


def _frame_drawer(frames: HeatmapFrames, slot: PanelSlot) -> Callable:
    """``draw(fig, value, footer)`` of a slider over ``frames``: the status line (live) or
    nothing (static frames print their numbers under the heatmap)."""

    def draw(fig, value, footer=True):
        frame = _one(frames, value)
        text = show_frame(fig, slot, frame, footer)
        return text if footer else f"{frame.title}: {text}"

    return draw


def checkpoint_frames(run: Run, instance: int = 0) -> HeatmapFrames:
    """The checkpoint slider's frames: one per stored checkpoint (log2-spaced steps), with
    the training loss over the ``LOSS_WINDOW`` steps before it."""
    sub = run.select([instance])
    hist = sub.loss_history[:, 0].double()

    def frame(step: int) -> tuple[HeatmapFrame]:
        loss = float(hist[max(0, step - LOSS_WINDOW) : step].mean())
        title = f"after {step} steps (log2 = {np.log2(step):.0f})"
        return (model_frame(sub.checkpoint_model(step), sub.P, sub.config, title, loss),)

    return HeatmapFrames(sorted(sub.checkpoints), frame)


def checkpoint_explorer(
    run: Run, instance: int = 0, live: bool = True, figsize: tuple[float, float] = (7, 4.2)
) -> LiveView | StaticSlider:
    """Watch the heatmap form over training checkpoints (log2-spaced steps).

    Returns a ``LiveView`` (``live=True``) or a ``StaticSlider``.
    """
    frames = checkpoint_frames(run, instance)
    steps = list(frames.values)
    slot = PanelSlot()
    draw_step = _frame_drawer(frames, slot)
    if not live:
        caption = (
            f"Precomputed: the model's heatmap and numbers at each of its {len(steps)} "
            f"checkpoints, {steps[0]} to {steps[-1]} steps; the title shows the step, red "
            "marks the neurons that pass the 0.999 criterion."
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


def instance_frames(
    run: Run, instances: Sequence[int], title: Callable[[Config], str]
) -> HeatmapFrames:
    """The instance slider's frames: one per instance, titled by ``title(config)``, with its
    loss on fresh evaluation samples."""

    def frame(i: int) -> tuple[HeatmapFrame]:
        r = run.select([i])
        loss = float(evaluate_loss(r)[0])
        return (model_frame(r.model, r.P, r.config, title(r.config), loss),)

    return HeatmapFrames(list(instances), frame)


def instance_slider(
    run: Run,
    instances: Sequence[int],
    title: Callable[[Config], str],
    live: bool = False,
    figsize: tuple[float, float] = (7, 4.2),
) -> LiveView | StaticSlider:
    """A slider over some instances of one run: each frame is that instance's heatmap and
    numbers, titled by ``title(config)``. Static (JS) unless ``live``."""
    frames = instance_frames(run, instances, title)
    instances = list(frames.values)
    draw = _frame_drawer(frames, slot := PanelSlot())
    if not live:
        caption = (
            f"Precomputed: {len(instances)} models of one batch; the title names each, red "
            "marks the neurons that pass the 0.999 criterion."
        )
        return static_slider(draw, instances, figsize=figsize, caption=caption)
    import ipywidgets as w

    slider = w.SelectionSlider(
        options=[(title(run.configs[i]), i) for i in instances],
        value=instances[0],
        description="run",
        continuous_update=False,
    )
    return slider_view("i", slider, draw, figsize, slot)


def width_frames(runs: dict[int, Run], instance: int = 0) -> HeatmapFrames:
    """The width slider's frames: one per width k, with the training loss of its last
    ``LOSS_WINDOW`` steps."""

    def frame(k: int) -> tuple[HeatmapFrame]:
        r = runs[k].select([instance])
        title = f"k = {k} neurons ({k / r.config.N:g} N)"
        loss = float(r.loss_history[-LOSS_WINDOW:, 0].double().mean())
        return (model_frame(r.model, r.P, r.config, title, loss),)

    return HeatmapFrames(sorted(runs), frame)


def width_explorer(
    runs: dict[int, Run],
    instance: int = 0,
    live: bool = True,
    figsize: tuple[float, float] = (7, 4.2),
) -> LiveView | StaticSlider:
    """Slide over precomputed widths k: the heatmap and numbers of each width's model."""
    frames = width_frames(runs, instance)
    ks = list(frames.values)
    slot = PanelSlot()
    draw_k = _frame_drawer(frames, slot)
    if not live:
        caption = (
            f"Precomputed: the model's heatmap and numbers at each width k from {ks[0]} to "
            f"{ks[-1]} neurons; the title shows k, red marks the neurons that pass the 0.999 "
            "criterion."
        )
        return static_slider(draw_k, ks, figsize=figsize, caption=caption)
    import ipywidgets as w

    slider = w.SelectionSlider(
        options=ks, value=ks[len(ks) // 2], description="neurons k", continuous_update=False
    )
    return slider_view("k", slider, draw_k, figsize, slot)
