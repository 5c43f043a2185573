"""A precomputed slider over a grid of two settings: one frame per pair, chosen with two range
inputs that show their current values. Plain HTML and a few lines of JavaScript, so it works on
the built site, in Jupyter and in Colab without a kernel (the one-knob twin is
``live.static_slider``)."""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from matplotlib.figure import Figure

from .figure_kit import png_base64
from .live import StaticSlider

__all__ = ["static_grid"]

_SCRIPT = """<script>(function () {
  const root = document.getElementById(%(id)s);
  const frames = %(frames)s, rows = %(rows)s, cols = %(cols)s;
  const img = root.querySelector("img"), inputs = root.querySelectorAll("input");
  const shown = root.querySelectorAll("output");
  function update() {
    const r = +inputs[0].value, c = +inputs[1].value;
    img.src = "data:image/png;base64," + frames[r * cols.length + c];
    shown[0].textContent = rows[r];
    shown[1].textContent = cols[c];
  }
  inputs.forEach(function (input) { input.addEventListener("input", update); });
})();</script>"""


def _control(label: str, values: Sequence[str], start: int) -> str:
    return (
        f'<label style="margin-right: 1.5em; white-space: nowrap">{html.escape(label)} '
        f'<input type="range" class="anim-slider" min="0" max="{len(values) - 1}" step="1" '
        f'value="{start}" style="vertical-align: middle; width: 9em" '
        f'aria-label="{html.escape(label)}"> '
        f"<output>{html.escape(values[start])}</output></label>"
    )


def static_grid(
    draw: Callable[[Figure, Any, Any], object],
    rows: Sequence,
    cols: Sequence,
    *,
    labels: tuple[str, str],
    text: Callable[[Any], str] = str,
    start: tuple[int, int] = (0, 0),
    caption: str = "",
    figsize: tuple[float, float] = (7, 4.2),
) -> StaticSlider:
    """One frame per (row, col) value pair, drawn by ``draw(fig, row, col)``, behind two range
    inputs named ``labels`` that show the current values (``text`` formats them). ``start``:
    the pair shown first; ``caption``: what the slider shows, above it."""
    rows, cols = list(rows), list(cols)
    if not rows or not cols:
        raise ValueError("static_grid needs at least one value on each axis")
    if not (0 <= start[0] < len(rows) and 0 <= start[1] < len(cols)):
        raise ValueError(f"start={start!r} is outside the {len(rows)} x {len(cols)} grid")
    fig = Figure(figsize=figsize)
    frames = []
    for r in rows:
        for c in cols:
            fig.clear()
            draw(fig, r, c)
            frames.append(png_base64(fig, tight=False))
    row_text, col_text = [text(v) for v in rows], [text(v) for v in cols]
    first = frames[start[0] * len(cols) + start[1]]
    uid = f"monosem-grid-{uuid.uuid4().hex[:12]}"
    page = (
        f'<div class="animation monosem-static monosem-static-grid" id="{uid}">'
        + (f'<p style="margin: 0 0 0.3em">{html.escape(caption)}</p>' if caption else "")
        + f'<img src="data:image/png;base64,{first}" alt="{html.escape(caption or labels[0])}" '
        'style="max-width: 100%; height: auto; display: block">'
        + '<div style="display: flex; flex-wrap: wrap; gap: 0.3em">'
        + _control(labels[0], row_text, start[0])
        + _control(labels[1], col_text, start[1])
        + "</div>"
        + _SCRIPT
        % {
            "id": json.dumps(uid),
            "frames": json.dumps(frames),
            "rows": json.dumps(row_text),
            "cols": json.dumps(col_text),
        }
        + "</div>"
    )
    return StaticSlider(page, len(frames))
