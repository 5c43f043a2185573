"""Sliders in two forms: live (ipywidgets + matplotlib, in Jupyter and Colab) and static
(precomputed frames as a ``matplotlib.animation`` JS slider that works on the published page,
where no kernel runs and ipywidgets render as nothing). ``LiveView`` and ``static_slider`` are
the two building blocks; ``explorers``, ``bias_explorer`` and ``inspector`` build the book's
sliders from them.

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
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.animation import FuncAnimation
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["StaticSlider", "static_slider", "LiveView", "PanelSlot", "figure_png", "status_html"]


# -- static ---------------------------------------------------------------------------------
@dataclass
class StaticSlider:
    """A precomputed JS slider; displays itself as HTML in notebooks and on the static site."""

    html: str
    frames: int

    def _repr_html_(self) -> str:
        return self.html


def static_slider(
    draw: Callable[[Figure, Any], object],  # what it returns is not used
    values: Sequence,
    *,
    figsize: tuple[float, float] = (8, 4),
    interval: int = 700,
    caption: str = "",
) -> StaticSlider:
    """One frame per value, drawn by ``draw(fig, value)``, as a matplotlib JS animation with a
    slider (``to_jshtml``). Put the value in the figure's title: the slider shows frame numbers.
    ``caption``: what the slider shows, printed above it."""
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
    if caption:
        html = f'<p class="monosem-static-caption">{_html.escape(caption)}</p>' + html
    return StaticSlider(html, len(values))


# -- live -----------------------------------------------------------------------------------
class PanelSlot:
    """The panel a widget keeps on its figure between redraws, held by the widget (an
    explorer, or a slider's closure) rather than stored on the figure.

    ``get(fig, key, make)`` returns the panel while it is still drawn on ``fig`` with the same
    ``key``; otherwise it clears the figure and draws a new one with ``make(fig)``. A panel
    has ``drawn_on(fig)`` and may have ``blit()``, which ``LiveView`` uses (see ``figure_png``).
    """

    def __init__(self) -> None:
        self.panel: Any = None
        self.figure: Figure | None = None
        self.key: Any = None

    def get(self, fig: Figure, key: Any, make: Callable[[Figure], Any]) -> Any:
        """The panel drawn on ``fig`` for ``key``, made anew when there is none."""
        p = self.panel
        if p is None or self.figure is not fig or self.key != key or not p.drawn_on(fig):
            fig.clear()
            self.panel, self.figure, self.key = make(fig), fig, key
        return self.panel

    def blit(self) -> bool:
        """Redraw only what changed (the panel's own ``blit``), or False for a full draw."""
        blit = getattr(self.panel, "blit", None)
        return bool(blit is not None and blit())


def figure_png(fig: Figure, blit: Callable[[], bool] | None = None) -> bytes:
    """The figure rendered to PNG bytes by Agg, whatever backend pyplot uses.

    ``blit`` (a ``PanelSlot.blit``) redraws only what changed onto a cached background and
    returns False when it cannot; a redraw then costs a few milliseconds instead of a full draw
    of axes, ticks and colorbar.
    """
    from PIL import Image as _PILImage

    # A new Agg canvas attaches itself to the figure (fig.canvas is then this one).
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    if blit is None or not blit():
        canvas.draw()
    width, height = canvas.get_width_height()
    buf = io.BytesIO()
    # Fast zlib level: a redraw is sent many times while a model trains.
    _PILImage.frombuffer(
        "RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1
    ).convert("RGB").save(buf, format="png", compress_level=1)
    return buf.getvalue()


def status_html(text: str) -> str:
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
        blit: redraws only what changed since the last image (``PanelSlot.blit``), or None.

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
        blit: Callable[[], bool] | None = None,
    ):
        self.controls = controls
        self.compute_fn, self.draw_fn, self.preview_fn, self.lookup_fn = (
            compute,
            draw,
            preview,
            lookup,
        )
        self.in_place, self.background, self.blit = in_place, background, blit
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
                    self.status.value = status_html(f"{type(exc).__name__}: {exc}")

    def _render(self, result, values: dict, generation: int) -> bool:
        """Draw ``result`` and send the image, unless the controls have moved on."""
        with self._lock:
            if generation != self._generation:
                return False
            if not self.in_place:
                self.figure.clear()
            summary = self.draw_fn(self.figure, result, values)
            png = figure_png(self.figure, self.blit)
            self.image.value = png
            self.status.value = status_html(summary or "")
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
