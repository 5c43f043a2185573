"""Sliders in two forms: live (ipywidgets + matplotlib, in Jupyter and Colab) and static
(precomputed frames as a ``matplotlib.animation`` JS slider that works on the published page,
where no kernel runs and ipywidgets render as nothing).

``LiveView`` and ``static_slider`` are the two building blocks; the explorers below are the
book's sliders built from them, so a chapter adds one in a line or two.

A live view never hands a matplotlib ``Figure`` to the notebook: it renders its figure to PNG
bytes itself (Agg) and shows them in an ``ipywidgets.Image``. That works in any kernel state
(a fresh kernel where no pyplot figure was ever drawn, so no inline backend is active) and
under ipywidgets 7.7 (Colab) and 8. Redraws update the figure's artists in place
(``set_data``) instead of rebuilding it, and long computations (a live retrain) run in a
worker thread that a new setting cancels, so the kernel keeps answering the controls.
"""

from __future__ import annotations

import contextvars
import html as _html
import io
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..analysis.classes import classify_neurons
from ..analysis.defaults import EVAL_SAMPLES, LOSS_WINDOW
from ..analysis.metrics import evaluate_loss, is_signed, neuron_stats
from ..core.config import Config, preset
from ..core.model import ToyModel
from ..core.training import Run, train
from .experiments import B1_SHRINK, LIVE_BIASES
from .plots import CLASS_COLORS, heatmap_order, seed_band, sfa_heatmap

__all__ = [
    "StaticSlider",
    "static_slider",
    "LiveView",
    "figure_png",
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


def static_slider(
    draw: Callable[[Figure, Any], None],
    values: Sequence,
    *,
    figsize: tuple[float, float] = (8, 4),
    interval: int = 700,
) -> StaticSlider:
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

    anim = FuncAnimation(
        fig, frame, frames=len(values), interval=interval, repeat=False, init_func=lambda: []
    )
    try:
        html = anim.to_jshtml(default_mode="once")
    finally:
        plt.close(fig)
    return StaticSlider(html, len(values))


# -- live -----------------------------------------------------------------------------------
def figure_png(fig: Figure) -> bytes:
    """The figure rendered to PNG bytes by Agg, whatever backend pyplot uses.

    A figure whose panel set ``fig._monosem_blit`` (a callable that redraws only what
    changed onto a cached background, returning False when it cannot) is blitted: a redraw
    then costs a few milliseconds instead of a full draw of axes, ticks and colorbar.
    """
    from PIL import Image as _PILImage

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    blit = getattr(fig, "_monosem_blit", None)
    if blit is None or not blit():
        fig.canvas.draw()
    width, height = fig.canvas.get_width_height()
    buf = io.BytesIO()
    # Fast zlib level: a redraw is sent many times while a model trains.
    _PILImage.frombuffer(
        "RGBA", (width, height), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1
    ).convert("RGB").save(buf, format="png", compress_level=1)
    return buf.getvalue()


def _status_html(text: str) -> str:
    """One status line (it wraps on narrow screens at a readable line height)."""
    return f'<div style="line-height: 1.4"><code>{_html.escape(text)}</code></div>'


class _Progress:
    """The ``progress`` handed to ``compute``: call it with a partial result to redraw (it
    returns False once the controls have moved on); ``cancelled()`` asks without drawing."""

    def __init__(self, draw: Callable, cancel: threading.Event | None = None):
        self._draw, self._cancel = draw, cancel

    def cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def __call__(self, partial) -> bool:
        if self.cancelled():
            return False
        self._draw(partial)
        return not self.cancelled()


class _Job:
    """One background computation of one setting."""

    def __init__(self, generation: int, key: tuple):
        self.generation, self.key = generation, key
        self.cancel = threading.Event()
        self.thread: threading.Thread | None = None


class LiveView:
    """Controls that redraw one matplotlib figure, shown as a PNG image, with results cached
    per setting.

    Args:
        controls: name -> ipywidgets control; their values are passed to ``compute``.
        compute: ``compute(values: dict, progress)`` returns a result; it may call
            ``progress(partial_result)`` to redraw while it works (live training).
            ``progress`` returns False once the controls have moved on: stop then (the
            result is discarded); ``progress.cancelled()`` asks without drawing.
        draw: ``draw(fig, result, values)`` draws a result and returns the status line.
        figsize: of the figure.
        in_place: ``draw`` updates the artists it drew last time (``set_data``) instead of
            drawing into a cleared figure.
        background: compute settings that are not cached in a worker thread, so the kernel
            keeps handling the controls; moving a control cancels the computation.
        preview: ``preview(values)`` gives a result to show at once while a background
            computation starts (the untrained model), or None.
        lookup: ``lookup(values)`` gives a ready result (a precomputed setting) or None;
            ready results are shown at once and cached.
        note: a line of HTML under the image (what is instant, what retrains).

    ``view.cache_hits``, ``view.computes`` and ``view.cancelled`` count how settings were
    served; ``view.redraws`` counts images sent and ``view.last_compute_seconds`` times the
    last completed computation from the control change to its final image. ``view.wait()``
    blocks until a background computation is done (for scripts and tests).
    """

    def __init__(
        self,
        controls: dict,
        compute: Callable,
        draw: Callable,
        figsize: tuple[float, float] = (8, 4),
        *,
        in_place: bool = False,
        background: bool = False,
        preview: Callable | None = None,
        lookup: Callable | None = None,
        note: str | None = None,
    ):
        self.controls = controls
        self.compute_fn, self.draw_fn, self.preview_fn, self.lookup_fn = (
            compute,
            draw,
            preview,
            lookup,
        )
        self.in_place, self.background = in_place, background
        self.figure = Figure(figsize=figsize)
        FigureCanvasAgg(self.figure)
        self._build_widgets(figsize, note)
        self._reset_counters()
        for c in controls.values():
            c.observe(lambda _change: self.update(), names="value")
        self.update()

    def _build_widgets(self, figsize, note: str | None) -> None:
        """The image, status line, note and the row of controls, in ``self.widget``."""
        import ipywidgets as w

        width_px = int(round(figsize[0] * self.figure.dpi))
        self.image = w.Image(
            format="png", layout=w.Layout(width="100%", max_width=f"{width_px}px", height="auto")
        )
        self.image.add_class("monosem-live-image")
        self.status = w.HTML(layout=w.Layout(width="100%"))
        self.status.add_class("monosem-live-status")
        self.note = w.HTML(note or "", layout=w.Layout(width="100%"))
        for c in self.controls.values():
            # Side by side when there is room, one per row when not; a short description
            # keeps the track >= 200 px even in a 370 px output area (800 px, file browser open).
            c.layout = w.Layout(
                flex="1 1 400px", min_width="300px", max_width="640px", width="auto"
            )
            c.style.description_width = "5.2em"
        row = w.Box(
            list(self.controls.values()),
            layout=w.Layout(
                display="flex", flex_flow="row wrap", width="100%", align_items="center"
            ),
        )
        self.widget = w.VBox(
            [row, self.status, self.image] + ([self.note] if note else []),
            layout=w.Layout(width="100%"),
        )
        self.widget.add_class("monosem-live")

    def _reset_counters(self) -> None:
        """The cache, the counters and the background-job state, empty."""
        self.cache: dict[tuple, Any] = {}
        self.cache_hits = 0
        self.computes = 0
        self.cancelled = 0
        self.redraws = 0
        self.last_compute_seconds: float | None = None
        self.error: BaseException | None = None
        self._lock = threading.RLock()
        self._generation = 0
        self._job: _Job | None = None
        self._changed_at = time.perf_counter()

    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    @staticmethod
    def _key(values: dict) -> tuple:
        return tuple(values.items())

    def update(self) -> None:
        """Show the controls' setting: from the cache at once, else computed (in a worker
        thread when ``background``, cancelling the one in flight)."""
        values = self.values()
        key = self._key(values)
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._changed_at = time.perf_counter()
            self.error = None
            job, self._job = self._job, None
            if job is not None and job.thread is not None and job.thread.is_alive():
                job.cancel.set()
                self.cancelled += 1
            ready = self.cache.get(key)
            if ready is None and self.lookup_fn is not None:
                ready = self.lookup_fn(values)
                if ready is not None:
                    self.cache[key] = ready
            if ready is not None:
                self.cache_hits += 1
                self._render(ready, values, generation)
                return
            self.computes += 1
            if not self.background:
                result = self.compute_fn(
                    values, _Progress(lambda partial: self._render(partial, values, generation))
                )
                self.cache[key] = result
                self._render(result, values, generation)
                self.last_compute_seconds = time.perf_counter() - self._changed_at
                return
            if self.preview_fn is not None:
                self._render(self.preview_fn(values), values, generation)
            job = _Job(generation, key)
            context = contextvars.copy_context()  # the kernel's parent message, for ipykernel
            job.thread = threading.Thread(
                target=context.run,
                args=(self._work, job, values),
                daemon=True,
                name=f"monosem-live-{generation}",
            )
            self._job = job
            job.thread.start()

    def _work(self, job: _Job, values: dict) -> None:
        progress = _Progress(
            lambda partial: self._render(partial, values, job.generation), job.cancel
        )
        try:
            result = self.compute_fn(values, progress)
            with self._lock:
                if job.cancel.is_set() or job.generation != self._generation:
                    return
                self.cache[job.key] = result
                self._render(result, values, job.generation)
                self.last_compute_seconds = time.perf_counter() - self._changed_at
        except Exception as exc:  # shown in the status line; the kernel must keep running
            with self._lock:
                if job.generation == self._generation:
                    self.error = exc
                    self.status.value = _status_html(f"{type(exc).__name__}: {exc}")

    def _render(self, result, values: dict, generation: int) -> bool:
        """Draw ``result`` and send the image, unless the controls have moved on."""
        with self._lock:
            if generation != self._generation:
                return False
            if not self.in_place:
                self.figure.clear()
            summary = self.draw_fn(self.figure, result, values)
            png = figure_png(self.figure)
            self.image.value = png
            self.status.value = _status_html(summary or "")
            self.redraws += 1
            return True

    @property
    def busy(self) -> bool:
        """Whether a background computation is running."""
        job = self._job
        return job is not None and job.thread is not None and job.thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no background computation runs (the latest one included); True if
        none is left running."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        while True:
            job = self._job
            if job is None or job.thread is None:
                return True
            left = None if deadline is None else max(0.0, deadline - time.perf_counter())
            job.thread.join(left)
            if job.thread.is_alive():
                return False
            if self._job is job or self._job is None:
                return True

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


# -- the book's explorers -------------------------------------------------------------------
def _numbers(st, config: Config, loss: float | None) -> str:
    mono = int(st.mono[0].sum())
    covered = st.covered(0)
    parts = [
        f"mono neurons / feature {mono / config.N:.2f}",
        f"features covered {covered / config.N:.2f}",
        f"dead {int(st.dead[0].sum())}",
    ]
    if loss is not None:
        parts.insert(0, f"loss {loss:.4f}")
    return " | ".join(parts)


class _Heatmap:
    """The sorted single-feature-activation heatmap with its colorbar, drawn once per figure
    and then updated in place. Live (no footer), the image and title are blitted onto a
    cached background (see ``figure_png``); static frames draw normally."""

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
        if not footer:
            self.img.set_animated(True)
            self.ax.title.set_animated(True)
            fig._monosem_blit = self.blit

    def blit(self) -> bool:
        """Restore the cached background, paint the heatmap's pixels straight into the
        canvas (nearest neighbour through the colormap, as imshow draws it) and draw the
        title. About 5 ms instead of a 100 ms full draw."""
        if self.ax not in self.fig.axes:
            return False
        canvas = self.fig.canvas
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
        data = np.ma.getdata(self.img.get_array()).astype(float)
        rows, cols = data.shape
        level = np.clip(
            np.nan_to_num(
                self.img.norm(data).filled(0)
                if np.ma.isMaskedArray(self.img.norm(data))
                else self.img.norm(data)
            ),
            0,
            1,
        )
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

    @classmethod
    def on(cls, fig: Figure, sfa: np.ndarray, title: str, footer: bool) -> _Heatmap:
        panel = getattr(fig, "_monosem_heatmap", None)
        if (
            panel is None
            or panel.ax not in fig.axes
            or panel.shape != sfa.shape
            or (panel.footer is not None) != footer
        ):
            fig.clear()
            fig._monosem_blit = None
            panel = cls(fig, sfa, title, footer)
            fig._monosem_heatmap = panel
        return panel

    def show(self, sfa: np.ndarray, title: str, text: str) -> None:
        a = np.clip(sfa, 0, None)
        rows, cols = heatmap_order(a)
        self.img.set_data(a[rows][:, cols])
        self.ax.set_title(title)
        if self.footer is not None:
            self.footer.set_text(text)


def _draw_state(
    fig: Figure,
    model: ToyModel,
    P,
    config: Config,
    title: str,
    loss: float | None,
    footer: bool = True,
) -> str:
    """Heatmap of one model and its numbers; ``footer`` also writes the numbers under the
    heatmap (static frames: live views show them in their status line instead)."""
    st = neuron_stats(model, P, signed=is_signed(config))
    sfa = st.sfa[0].double().numpy()
    text = _numbers(st, config, loss)
    _Heatmap.on(fig, sfa, title, footer).show(sfa, title, text)
    return text


def _live_view(slider_name: str, slider, draw: Callable, figsize) -> LiveView:
    """A live view over precomputed frames: ``draw(fig, value, footer)`` returns the status."""
    return LiveView(
        {slider_name: slider},
        lambda v, progress: v[slider_name],
        lambda fig, value, v: draw(fig, value, False),
        figsize,
        in_place=True,
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

    def draw_step(fig, step, footer=True):
        loss = float(hist[max(0, step - LOSS_WINDOW) : step].mean())
        title = f"after {step} steps (log2 = {np.log2(step):.0f})"
        text = _draw_state(fig, sub.checkpoint_model(step), sub.P, cfg, title, loss, footer)
        return text if footer else f"{title}: {text}"

    if not live:
        return static_slider(draw_step, steps, figsize=figsize)
    import ipywidgets as w

    slider = w.SelectionSlider(
        options=steps, value=steps[-1], description="step", continuous_update=False
    )
    return _live_view("step", slider, draw_step, figsize)


def _fmt(x: float) -> str:
    return f"{x:.3g}"


class BiasExplorer:
    """The book's signature slider: pick an initial bias, a total bias shrink S and a
    learning rate, and watch a model retrain, its heatmap redrawn every ``every`` steps.

    S is what the book teaches: bias decay acts during the first half of training and pulls
    biases in by about exp(-S) in total, S = decay * lr * steps / 2; the status line shows
    the decay a setting implies. Runs at the ``live`` preset (it retrains in a few seconds on
    a laptop CPU) unless another ``base`` is given. Shrinks default to 0, 3, 5.9 (B1's),
    12 and 24.

    Results are cached per setting; ``precomputed`` (a run of the same base, such as
    ``experiments.live_grid``) fills the cache up front, so those settings show at once; the
    explorer then starts on one of them (initial bias -1 at B1's shrink when there),
    and the note under the plot lists them. A retrain runs in a worker thread on ``threads``
    torch threads (one by default: the tiny live model gains nothing from more, and on a
    busy machine extra threads stall); moving a control cancels it and starts the new
    setting. ``view`` is the LiveView. ``decays`` (deprecated) gives the shrinks as decays
    at the base's lr.
    """

    SHRINKS = (0.0, 3.0, B1_SHRINK, 12.0, 24.0)
    CANCEL_CHECK = 100  # steps between checks of the cancel flag while training

    def __init__(
        self,
        base: Config | None = None,
        every: int = 500,
        figsize: tuple[float, float] = (7, 4.2),
        init_biases: Sequence[float] = LIVE_BIASES,
        shrinks: Sequence[float] | None = None,
        lrs: Sequence[float] = (0.003, 0.01, 0.03),
        precomputed: Run | None = None,
        start: dict | None = None,
        threads: int | None = 1,
        decays: Sequence[float] | None = None,
        eval_samples: int = EVAL_SAMPLES,
    ):
        from ..paper.table1 import total_shrink

        self.base = preset("live") if base is None else base
        self.every = every
        self.threads = threads
        self.eval_samples = eval_samples
        if shrinks is None:
            shrinks = (
                self.SHRINKS
                if decays is None
                else [total_shrink(self.base.replace(bias_decay=float(d))) for d in decays]
            )
        self.shrinks = [float(s) for s in shrinks]
        self.init_biases = [float(b) for b in init_biases]
        self.lrs = [float(x) for x in lrs]
        self._P: dict[tuple, Any] = {}
        self._precomputed = self._index_precomputed(precomputed)
        self.view = LiveView(
            self._controls(self._start(start)),
            self._compute,
            self._draw,
            figsize,
            in_place=True,
            background=True,
            preview=self._preview,
            lookup=self._ready,
            note=self._note(),
        )

    def _index_precomputed(self, precomputed: Run | None) -> dict[tuple, Run]:
        """The instances of ``precomputed`` that differ from ``base`` only in initial bias,
        bias decay and lr, one single-instance Run each, by (init_bias, shrink, lr)."""
        from ..paper.table1 import total_shrink

        out: dict[tuple, Run] = {}
        if precomputed is None:
            return out
        for i, c in enumerate(precomputed.configs):
            same = c.replace(
                init_bias=self.base.init_bias, bias_decay=self.base.bias_decay, lr=self.base.lr
            )
            if same == self.base:
                out[self._pkey(c.init_bias, total_shrink(c), c.lr)] = precomputed.select([i])
        return out

    def _controls(self, first: dict) -> dict:
        """The three sliders (initial bias, shrink S, lr), starting at ``first``."""
        import ipywidgets as w

        shrink_labels = [
            (f"{_fmt(s)} (B1)" if math.isclose(s, B1_SHRINK) else _fmt(s), s) for s in self.shrinks
        ]
        options = {
            "init_bias": ([(f"{b:+.2f}", b) for b in self.init_biases], "initial bias"),
            "shrink": (shrink_labels, "shrink S"),
            "lr": ([(f"{x:g}", x) for x in self.lrs], "lr"),
        }
        return {
            name: w.SelectionSlider(
                options=opts, value=first[name], description=desc, continuous_update=False
            )
            for name, (opts, desc) in options.items()
        }

    # -- settings
    @staticmethod
    def _pkey(init_bias: float, shrink: float, lr: float) -> tuple:
        return (round(float(init_bias), 6), round(float(shrink), 6), round(float(lr), 9))

    def _instant_values(self) -> list[dict]:
        """The controls' settings that are precomputed."""
        return [
            {"init_bias": b, "shrink": s, "lr": x}
            for b in self.init_biases
            for s in self.shrinks
            for x in self.lrs
            if self._pkey(b, s, x) in self._precomputed
        ]

    def _start(self, start: dict | None) -> dict:
        if start is not None:
            return {
                "init_bias": float(start["init_bias"]),
                "shrink": float(start["shrink"]),
                "lr": float(start["lr"]),
            }
        lr = self.base.lr if self.base.lr in self.lrs else self.lrs[0]
        instant = self._instant_values()
        preferred = [
            v
            for v in instant
            if v["init_bias"] == -1.0 and math.isclose(v["shrink"], B1_SHRINK) and v["lr"] == lr
        ]
        if preferred or instant:
            return (preferred or instant)[0]
        return {
            "init_bias": 0.0 if 0.0 in self.init_biases else self.init_biases[0],
            "shrink": self.shrinks[0],
            "lr": lr,
        }

    def _note(self) -> str:
        instant = self._instant_values()
        if not instant:
            return (
                '<div style="line-height: 1.4"><small>Every setting retrains a model here '
                "(a few seconds); each is cached once trained.</small></div>"
            )
        groups: dict[tuple, list[float]] = {}
        for v in instant:
            groups.setdefault((v["shrink"], v["lr"]), []).append(v["init_bias"])
        parts = []
        for (s, x), bs in groups.items():
            b = (
                "any initial bias"
                if len(bs) == len(self.init_biases)
                else "initial bias " + ", ".join(f"{v:+.2f}" for v in sorted(bs))
            )
            parts.append(f"S {_fmt(s)}, lr {x:g}: {b}")
        return (
            '<div style="line-height: 1.4"><small>Shrink S = decay &times; lr &times; steps / 2: '
            "bias decay pulls the biases in by about "
            "e<sup>-S</sup> over the first half of training. <b>Instant (precomputed):</b> "
            + _html.escape("; ".join(parts))
            + ". Other settings retrain live (a few seconds), then stay cached.</small></div>"
        )

    def config(self, values: dict) -> Config:
        from ..paper.table1 import decay_for_shrink

        lr = float(values["lr"])
        return self.base.replace(
            init_bias=float(values["init_bias"]),
            lr=lr,
            instances=1,
            bias_decay=decay_for_shrink(float(values["shrink"]), lr, self.base.steps),
        )

    def is_precomputed(self, values: dict) -> bool:
        return self._pkey(values["init_bias"], values["shrink"], values["lr"]) in self._precomputed

    # -- computing
    def _ready(self, values: dict):
        ready = self._precomputed.get(
            self._pkey(values["init_bias"], values["shrink"], values["lr"])
        )
        if ready is None:
            return None
        loss = float(evaluate_loss(ready, samples=self.eval_samples)[0])
        return ("precomputed", ready.config.steps, ready.model, ready.P, loss)

    def _preview(self, values: dict):
        """The untrained model of a setting, shown the moment its retrain starts."""
        import torch

        from ..core.data import resolve_device
        from ..core.training import _init_model

        cfg = self.config(values)
        return (
            "training",
            0,
            _init_model([cfg], resolve_device(cfg.device), getattr(torch, cfg.dtype)),
            None,
            None,
        )

    def _compute(self, values, progress):
        import torch

        cfg = self.config(values)

        cancelled = getattr(progress, "cancelled", lambda: False)

        def cb(step, model, losses):
            # Called every CANCEL_CHECK steps: a moved control stops training within a few
            # milliseconds; the heatmap is redrawn every ``every`` steps.
            if cancelled():
                return False
            if step % self.every or step >= cfg.steps:  # the final image follows at once
                return True
            loss = float(losses[-min(LOSS_WINDOW, len(losses)) :].double().mean())
            return progress(("training", step, model.clone(), None, loss))

        threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            run = train(
                cfg,
                progress=False,
                callback=cb,
                callback_every=math.gcd(self.every, self.CANCEL_CHECK),
                checkpoints=False,
            )
        finally:
            torch.set_num_threads(threads)
        if run.stopped_at is not None:
            return None  # cancelled: the view discards it
        return (
            "trained",
            cfg.steps,
            run.model,
            run.P,
            float(evaluate_loss(run, samples=self.eval_samples)[0]),
        )

    def _projection(self, cfg: Config, dtype):
        key = (cfg.N, cfg.m, cfg.seed, dtype)
        if key not in self._P:
            from ..core.data import make_projection

            self._P[key] = make_projection(cfg.N, cfg.m, cfg.seed).to(dtype).unsqueeze(0)
        return self._P[key]

    def _draw(self, fig, result, values):
        phase, step, model, P, loss = result
        cfg = self.config(values)
        if P is None:  # partial results: the world's projection, made once per seed
            P = self._projection(cfg, model.flat.dtype)
        setting = f"initial bias {values['init_bias']:+.2f}, shrink S {_fmt(values['shrink'])}"
        state = {
            "training": f"training step {step}/{cfg.steps}",
            "precomputed": "precomputed (instant)",
            "trained": f"trained live, {cfg.steps} steps",
        }[phase]
        title = f"{setting}, lr {values['lr']:g}: {state}"
        text = _draw_state(fig, model, P, cfg, title, loss, footer=False)
        return f"{setting} (decay {_fmt(cfg.bias_decay)}), lr {values['lr']:g} | {state} | {text}"

    def _ipython_display_(self) -> None:
        self.view._ipython_display_()


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

    def draw(fig, i, footer=True):
        r = run.select([i])
        loss = float(evaluate_loss(r)[0])
        text = _draw_state(fig, r.model, r.P, r.config, title(r.config), loss, footer)
        return text if footer else f"{title(r.config)}: {text}"

    if not live:
        return static_slider(draw, instances, figsize=figsize)
    import ipywidgets as w

    slider = w.SelectionSlider(
        options=[(title(run.configs[i]), i) for i in instances],
        value=instances[0],
        description="run",
        continuous_update=False,
    )
    return _live_view("i", slider, draw, figsize)


def bias_grid(base: Config, init_biases: Sequence[float], seeds: int = 3, **changes: Any) -> Run:
    """Train every initial bias (x seeds) as one instance batch."""
    return train(
        [base.replace(init_bias=float(b), instances=seeds, **changes) for b in init_biases],
        progress=False,
    )


def bias_grid_figure(
    run: Run, init_biases: Sequence[float], figsize: tuple[float, float] = (9, 3)
) -> Figure:
    """mono/N, loss and dead neurons against the initial bias, seeds as points."""
    from ..analysis.metrics import summarize

    rows = summarize(run)
    seeds = run.instances // len(init_biases)
    table = {
        key: np.array([r[key] for r in rows]).reshape(len(init_biases), seeds)
        for key in ("mono_per_feature", "final_loss", "dead_neurons")
    }
    fig, axes = plt.subplots(1, 3, figsize=figsize, constrained_layout=True)
    for ax, key, label in zip(axes, table, ("mono neurons / feature", "loss", "dead neurons")):
        seed_band(ax, init_biases, table[key])
        ax.set_xlabel("initial bias")
        ax.set_title(label)
    return fig


def width_explorer(
    runs: dict[int, Run],
    instance: int = 0,
    live: bool = True,
    figsize: tuple[float, float] = (7, 4.2),
) -> LiveView | StaticSlider:
    """Slide over precomputed widths k: the heatmap and numbers of each width's model."""
    ks = sorted(runs)

    def draw_k(fig, k, footer=True):
        r = runs[k].select([instance])
        title = f"k = {k} neurons ({k / r.config.N:g} N)"
        text = _draw_state(
            fig,
            r.model,
            r.P,
            r.config,
            title,
            float(r.loss_history[-LOSS_WINDOW:, 0].double().mean()),
            footer,
        )
        return text if footer else f"{title}: {text}"

    if not live:
        return static_slider(draw_k, ks, figsize=figsize)
    import ipywidgets as w

    slider = w.SelectionSlider(
        options=ks, value=ks[len(ks) // 2], description="neurons k", continuous_update=False
    )
    return _live_view("k", slider, draw_k, figsize)


class _Inspector:
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


class _NeuronPanel:
    """One instance's neurons for the inspector: classes, single-feature activations [k, N]
    (or [k, 2N] signed), W1 P [k, N], W2 [out, k], and ablation losses, computed on demand."""

    def __init__(self, run: Run, instance: int, samples: int):
        from ..analysis.probes import ablation_loss

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

    def ablated_loss(self, n: int) -> float:
        from ..analysis.probes import ablation_loss

        if n not in self.ablated:
            self.ablated[n] = ablation_loss(self.run, [n], self.instance, self.samples)
        return self.ablated[n]

    def _panel(self, fig: Figure, footer: bool) -> _Inspector:
        key = (self.sfa.shape[1], self.P.shape[1], self.W2.shape[0], footer)
        panel = getattr(fig, "_monosem_inspector", None)
        if panel is None or panel.ax1 not in fig.axes or panel.key != key:
            fig.clear()
            fig._monosem_blit = None
            panel = fig._monosem_inspector = _Inspector(fig, *key)
        return panel

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
            self.sfa[n].numpy(),
            CLASS_COLORS[label],
            title,
            (self.W1[n] @ self.P).numpy(),
            -float(classes.bias[n]),
            self.W2[:, n].numpy(),
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
    and the loss change when it alone is ablated. ``neurons`` limits the static frames.

    Classes and losses use the same evaluation samples as ``interpret`` (its default
    ``samples``), so the intact model's loss here is the report's."""
    panel = _NeuronPanel(run, instance, samples)
    if not live:
        if neurons is None:
            order = heatmap_order(panel.sfa)[0]
            neurons = [int(order[i]) for i in np.linspace(0, len(order) - 1, 12).astype(int)]
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
