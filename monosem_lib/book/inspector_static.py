"""The neuron inspector's precomputed twin for every neuron: each neuron's numbers stored once
in the page and its three bar charts drawn by a few lines of JavaScript as SVG, so that all
k neurons fit in a page where k images would not (the live inspector is ``inspector``)."""

from __future__ import annotations

import html
import json
import uuid
from typing import Any

import numpy as np

from .figure_kit import CLASS_COLORS, heatmap_order
from .live import StaticSlider

__all__ = ["inspector_frames", "static_inspector"]

_SCRIPT = r"""<script>(function () {
  const root = document.getElementById(%(id)s), d = %(data)s;
  const input = root.querySelector("input"), out = root.querySelector("output");
  const frame = root.querySelector(".monosem-frame");
  function bars(values, title, color, line) {
    const w = 480, h = 130, pad = 30, n = values.length;
    let lo = Math.min(0, ...values), hi = Math.max(0, ...values);
    if (line !== null) { lo = Math.min(lo, line); hi = Math.max(hi, line); }
    if (hi === lo) { hi = lo + 1; }
    const y = v => pad + (h - 2 * pad) * (hi - v) / (hi - lo), bw = (w - 2 * pad) / n;
    let s = '<svg viewBox="0 0 ' + w + ' ' + h + '" role="img" ' +
      'style="width: 100%%; max-width: 640px; height: auto; display: block">';
    s += '<text x="' + pad + '" y="15" font-size="14">' + title + '</text>';
    values.forEach(function (v, i) {
      const top = Math.min(y(v), y(0)), ht = Math.max(Math.abs(y(v) - y(0)), 0.5);
      s += '<rect x="' + (pad + i * bw) + '" y="' + top + '" width="' + Math.max(bw - 1, 0.5) +
        '" height="' + ht + '" fill="' + color + '"></rect>';
    });
    s += '<line x1="' + pad + '" x2="' + (w - pad) + '" y1="' + y(0) + '" y2="' + y(0) +
      '" stroke="#333"></line>';
    if (line !== null) {
      s += '<line x1="' + pad + '" x2="' + (w - pad) + '" y1="' + y(line) + '" y2="' + y(line) +
        '" stroke="' + color + '" stroke-dasharray="5,4"></line>';
    }
    s += '<text x="0" y="' + (pad + 4) + '" font-size="12">' + hi.toFixed(2) + '</text>';
    s += '<text x="0" y="' + (h - pad + 4) + '" font-size="12">' + lo.toFixed(2) + '</text>';
    return s + '</svg>';
  }
  function show() {
    const f = d.frames[+input.value], color = d.colors[f.label];
    out.textContent = "neuron " + f.n + " (" + f.label + ")";
    frame.innerHTML = '<p style="margin: 0.2em 0"><b>neuron ' + f.n + '</b>: ' + f.label +
      ', bias ' + f.bias.toFixed(3) + ', active on ' + Math.round(100 * f.activity) +
      '%% of inputs. Loss ' + d.base.toFixed(4) + ' &rarr; ' + f.loss.toFixed(4) +
      ' when it alone is ablated (' + (f.loss >= d.base ? '+' : '') +
      (100 * (f.loss - d.base) / d.base).toFixed(1) + '%%).</p>' +
      bars(f.sfa, "single-feature activations, by feature", color, null) +
      bars(f.w1p, "input weights seen per feature (W1 P); dashed: -bias", "#555", -f.bias) +
      bars(f.w2, "output weights W2[:, n], by output", "#555", null);
  }
  input.addEventListener("input", show);
  show();
})();</script>"""


def _rounded(values) -> list[float]:
    return [round(float(v), 4) for v in np.asarray(values, dtype=float)]


def inspector_frames(panel: Any) -> list[dict]:
    """Every neuron's numbers of ``panel`` (an ``inspector.NeuronPanel``), most monosemantic
    first (the heatmaps' order): class, bias, activity, single-feature activations, W1 P,
    W2[:, n] and the loss with it alone ablated."""
    classes, WP = panel.classes, (panel.W1 @ panel.P).cpu().numpy()
    frames = []
    for n in heatmap_order(panel.sfa)[0]:
        n = int(n)
        frames.append(
            {
                "n": n,
                "label": classes.labels[n],
                "bias": round(float(classes.bias[n]), 4),
                "activity": round(float(classes.activity[n]), 4),
                "loss": panel.ablated_loss(n),
                "sfa": _rounded(panel.sfa[n].cpu().numpy()),
                "w1p": _rounded(WP[n]),
                "w2": _rounded(panel.W2[:, n].cpu().numpy()),
            }
        )
    return frames


def static_inspector(panel: Any) -> StaticSlider:
    """A slider over every neuron of ``panel`` (most monosemantic first), drawing its bars in
    the browser from numbers stored in the page."""
    frames = inspector_frames(panel)
    data = {"frames": frames, "base": panel.base, "colors": CLASS_COLORS}
    uid = f"monosem-inspector-{uuid.uuid4().hex[:12]}"
    first = f"neuron {frames[0]['n']} ({frames[0]['label']})"
    page = (
        f'<div class="animation monosem-static monosem-static-inspector" id="{uid}">'
        f'<p style="margin: 0 0 0.3em">Precomputed: all {len(frames)} neurons, most '
        "monosemantic first; drag to step through them.</p>"
        '<label>neuron <input type="range" class="anim-slider" '
        f'min="0" max="{len(frames) - 1}" step="1" value="0" style="vertical-align: middle; '
        f'width: min(14em, 45vw)" aria-label="neuron"> <output>{html.escape(first)}</output>'
        "</label>"
        '<div class="monosem-frame"></div>'
        + _SCRIPT % {"id": json.dumps(uid), "data": json.dumps(data)}
        + "</div>"
    )
    return StaticSlider(page, len(frames))
