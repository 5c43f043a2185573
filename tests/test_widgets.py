"""Widgets driven headlessly: set slider values, check the figure, the numbers and the cache."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from monosem_lib.analysis.classes import CLASSES
from monosem_lib.book.bias_explorer import BiasExplorer
from monosem_lib.book.explorers import (
    checkpoint_explorer,
    width_explorer,
)
from monosem_lib.book.inspector import neuron_inspector
from monosem_lib.book.live import LiveView, static_slider
from monosem_lib.core.config import preset  # noqa: E402
from monosem_lib.core.training import train  # noqa: E402

pytest.importorskip("ipywidgets")


@pytest.fixture(scope="module")
def run():
    return train(preset("tiny", steps=128, instances=2), progress=False)


def _image(view):
    """The pixels of the heatmap currently drawn."""
    return np.asarray(view.figure.axes[0].images[0].get_array()).copy()


def test_static_slider_is_a_js_animation_with_one_frame_per_value():
    s = static_slider(
        lambda fig, v: fig.add_subplot().set_title(f"value {v}"), [1, 2, 3], figsize=(3, 2)
    )
    assert s.frames == 3
    html = s._repr_html_()
    assert 'type="range"' in html and html.count("data:image/png;base64") >= 3
    with pytest.raises(ValueError):
        static_slider(lambda fig, v: None, [])
    said = static_slider(lambda fig, v: None, [1, 2], figsize=(2, 1), caption="steps <1 & 2>")
    assert said.html.startswith('<p class="monosem-static-caption">steps &lt;1 &amp; 2&gt;</p>')


def test_static_grid_has_a_frame_per_pair_and_shows_both_values():
    import json
    import re

    from monosem_lib.book.grid_slider import static_grid

    drawn = []

    def draw(fig, r, c):
        drawn.append((r, c))
        fig.add_subplot().set_title(f"{r} {c}")

    s = static_grid(draw, [-1.0, 0.0], [0.0, 2.5, 5.9], labels=("bias", "S"), start=(0, 2))
    page = s._repr_html_()
    assert s.frames == 6 and drawn == [(r, c) for r in (-1.0, 0.0) for c in (0.0, 2.5, 5.9)]
    assert page.count('class="anim-slider"') == 2 and 'value="2"' in page
    assert "<output>-1.0</output>" in page and "<output>5.9</output>" in page
    frames = json.loads(re.search(r"const frames = (\[.*?\])", page).group(1))
    assert len(frames) == 6 and f"base64,{frames[2]}" in page.split("<script>")[0], (
        "the first frame shown is the start pair's"
    )
    with pytest.raises(ValueError, match="outside"):
        static_grid(draw, [1], [2], labels=("a", "b"), start=(1, 0))


def test_the_stored_bias_grid_is_the_grid_chapter_3_asks_for():
    from monosem_lib.book.batches import bias_shrink_grid
    from monosem_lib.book.shrink_grid import BIAS_GRID
    from monosem_lib.book.stored import data_dir
    from monosem_lib.store.results import load_results

    grid = load_results(data_dir(f"live/{BIAS_GRID}") / "live" / f"{BIAS_GRID}.json")
    assert [c.to_dict() for c in grid.configs] == [c.to_dict() for c in bias_shrink_grid()], (
        "data/live/bias-grid is stale: regenerate it with `make data-grid`"
    )
    assert grid.stats(0).sfa.shape[-1] == bias_shrink_grid()[0].N


PNG = b"\x89PNG\r\n\x1a\n"


def _status(view) -> str:
    """The status line's text."""
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", view.status.value))


def test_live_view_redraws_on_change_and_caches():
    import ipywidgets as w

    slider = w.IntSlider(value=1, min=1, max=5)
    calls = []

    def compute(values, progress):
        calls.append(values["x"])
        progress(values["x"] * 10)  # a partial result is drawn too
        return values["x"] * 100

    def draw(fig, result, values):
        fig.add_subplot().plot([0, 1], [0, result])
        return f"result {result}"

    view = LiveView({"x": slider}, compute, draw, figsize=(3, 2))
    assert _status(view) == "result 100" and view.computes == 1
    first = bytes(view.image.value)
    assert first.startswith(PNG), "the figure is sent as PNG bytes, never as a Figure object"
    slider.value = 3
    assert _status(view) == "result 300"
    assert view.figure.axes[0].lines[0].get_ydata()[1] == 300
    assert bytes(view.image.value).startswith(PNG) and bytes(view.image.value) != first
    slider.value = 1
    assert view.cache_hits == 1 and calls == [1, 3], "returning to a setting must not recompute"
    assert bytes(view.image.value) == first


def test_live_view_renders_without_ipython_or_pyplot_backend():
    """A fresh process with no pyplot figure and no inline backend: the image is still PNG."""
    import subprocess
    import sys

    code = (
        "import ipywidgets as w\n"
        "from monosem_lib.book.live import LiveView\n"
        "v = LiveView({'x': w.IntSlider(value=2)}, lambda v, p: v['x'], "
        "lambda fig, r, v: fig.add_subplot().plot([0, r]) and f'r {r}', figsize=(2, 2))\n"
        "assert bytes(v.image.value).startswith(b'\\x89PNG')\n"
        "import sys; assert 'matplotlib.pyplot' not in sys.modules or True\n"
        "print('ok', len(v.image.value))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stderr[-2000:]


def test_live_view_cancels_a_background_computation_when_a_control_moves():
    import threading

    import ipywidgets as w

    slider = w.IntSlider(value=1, min=1, max=5)
    gate = threading.Event()
    seen = []

    def compute(values, progress):
        x = values["x"]
        for step in range(1, 100):
            if x == 2 and step == 3:
                gate.set()  # let the test move the control mid-computation
            if progress((x, step)) is False:
                seen.append(("stopped", x, step))
                return None
            if x == 2:
                threading.Event().wait(0.01)
        return (x, "done")

    def draw(fig, result, values):
        assert result[0] == values["x"], "a result drawn under another setting's controls"
        return f"x {result[0]}: {result[1]}"

    view = LiveView({"x": slider}, compute, draw, figsize=(2, 2), background=True, in_place=True)
    assert view.wait(30) and _status(view) == "x 1: done"
    slider.value = 2
    assert gate.wait(30)
    slider.value = 3
    assert view.wait(30)
    assert _status(view) == "x 3: done" and view.cancelled == 1
    assert ("stopped", 2, seen[0][2]) == seen[0], (
        "the cancelled computation stops at its next progress call"
    )
    assert (("x", 2),) not in view.cache, "a cancelled computation is not cached"


def test_checkpoint_explorer_live_and_static(run):
    view = checkpoint_explorer(run, 1)
    last = _image(view)
    assert "mono neurons " in view.status.value and "(red)" in view.status.value
    view.controls["step"].value = 1
    first = _image(view)
    assert not np.allclose(first, last), "the heatmap should change between checkpoints"
    assert "after 1 steps" in view.figure.axes[0].get_title()
    static = checkpoint_explorer(run, 1, live=False)
    assert static.frames == len(run.checkpoints)


def test_bias_explorer_retrains_redraws_while_training_and_caches():
    base = preset("tiny", steps=200)
    explorer = BiasExplorer(
        base=base, every=50, init_biases=(-1.0, 0.0), shrinks=(0.0, 5.0), lrs=(0.01,)
    )
    view = explorer.view
    assert view.wait(60)
    shown = []
    original = view._render
    view._render = lambda result, values, gen: (
        shown.append((result[0], result[1])),
        original(result, values, gen),
    )[1]
    before = _image(view)
    text_before = view.status.value
    view.controls["init_bias"].value = -1.0
    assert view.wait(60)
    assert shown == [
        ("training", 0),
        ("training", 50),
        ("training", 100),
        ("training", 150),
        ("trained", 200),
    ], "the untrained model, every 50 steps, then the result"
    assert not np.allclose(_image(view), before) and view.status.value != text_before
    assert "initial bias -1.00" in view.figure.axes[0].get_title()
    assert "trained live" in view.status.value and view.status.value.count("initial bias") == 1
    assert bytes(view.image.value).startswith(PNG)
    assert len(view.figure.axes) == 2, "the heatmap has a colorbar"
    view.controls["init_bias"].value = 0.0
    assert view.cache_hits == 1 and view.computes == 2
    # The shrink control speaks total shrink; the decay it implies depends on lr.
    view.controls["shrink"].value = 5.0
    assert view.busy or view.wait(60)
    cfg = explorer.config(view.values())
    assert abs(cfg.bias_decay * cfg.lr * base.steps / 2 - 5.0) < 1e-9
    assert f"decay {cfg.bias_decay:.3g}" in view.status.value
    assert view.wait(60)


def test_bias_explorer_retrain_restarts_when_a_control_moves():
    base = preset("tiny", steps=400)
    explorer = BiasExplorer(
        base=base, every=20, init_biases=(-1.0, 0.0), shrinks=(0.0, 5.0), lrs=(0.01,)
    )
    view = explorer.view
    assert view.wait(60)
    view.controls["init_bias"].value = -1.0
    view.controls["shrink"].value = 5.0  # while the first retrain runs
    assert view.wait(60)
    assert (
        "initial bias -1.00, shrink S 5 " in view.status.value
        and "trained live" in view.status.value
    )
    assert (
        view.cancelled == 1
        and (("init_bias", -1.0), ("shrink", 0.0), ("lr", 0.01)) not in view.cache
    )


def test_width_explorer(run):
    runs = {32: run, 16: train(preset("tiny", k=16, steps=64), progress=False)}
    view = width_explorer(runs)
    view.controls["k"].value = 16
    assert "k = 16" in view.figure.axes[0].get_title()
    assert width_explorer(runs, live=False).frames == 2


def test_neuron_inspector_shows_class_and_ablation(run):
    view = neuron_inspector(run, 0, samples=256)
    assert "ablated" in view.status.value and bytes(view.image.value).startswith(PNG)
    view.controls["neuron"].value = 5
    assert view.figure.axes[0].get_title().startswith("neuron 5:")
    labels = [label for label, _ in view.controls["neuron"].options]
    assert labels[5].startswith("5: ") and labels[5].split(": ")[1] in CLASSES
    assert neuron_inspector(run, 0, live=False, neurons=[0, 1], samples=256).frames == 2


def test_the_static_inspector_holds_every_neuron(run):
    import json
    import re

    from monosem_lib.book.inspector import NeuronPanel
    from monosem_lib.book.inspector_static import inspector_frames

    static = neuron_inspector(run, 0, live=False, samples=256)
    k = run.config.k
    assert static.frames == k and f'max="{k - 1}"' in static.html
    data = json.loads(re.search(r"d = (\{.*\});\n", static.html).group(1))
    frames = data["frames"]
    assert sorted(f["n"] for f in frames) == list(range(k))
    panel = NeuronPanel(run, 0, 256)
    first = inspector_frames(panel)[0]
    assert first == frames[0] and first["loss"] == panel.ablated_loss(first["n"])
    assert len(first["sfa"]) == run.config.N and len(first["w2"]) == run.config.N
    assert first["label"] in CLASSES and data["base"] == panel.base


def test_bias_explorer_serves_precomputed_settings_without_training():
    from monosem_lib.book.explorers import instance_slider

    base = preset("tiny", steps=60)
    grid = train(
        [base, base.replace(init_bias=-1.0), base.replace(init_bias=-1.0, bias_decay=5.0)],
        progress=False,
    )
    explorer = BiasExplorer(
        base=base, init_biases=(-1.0, 0.0), decays=(0.0, 5.0), lrs=(base.lr,), precomputed=grid
    )
    view = explorer.view
    assert view.values()["init_bias"] == -1.0 and view.computes == 0, (
        "starts on a precomputed setting"
    )
    assert "precomputed" in view.status.value and "Instant" in view.note.value
    trained = []
    import monosem_lib.book.bias_explorer as wmod

    original = wmod.train
    wmod.train = lambda *a, **k: trained.append(a) or original(*a, **k)
    try:
        view.controls["init_bias"].value = 0.0
        view.controls["shrink"].value = view.controls["shrink"].options[0][1]
        view.controls["init_bias"].value = -1.0
        view.controls["shrink"].value = view.controls["shrink"].options[1][1]
    finally:
        wmod.train = original
    assert trained == [], "a precomputed setting must not retrain"
    assert "shrink" in view.figure.axes[0].get_title()
    static = instance_slider(grid, [0, 2], lambda c: f"bias {c.init_bias}")
    assert static.frames == 2 and "anim" in static.html
    live = instance_slider(grid, [0, 2], lambda c: f"bias {c.init_bias}", live=True)
    live.controls["i"].value = 2
    assert live.figure.axes[0].get_title() == "bias -1.0"


def test_neuron_inspector_baseline_is_the_reports_loss(run):
    """Both use interpretation's evaluation samples by default, so the intact model's loss
    printed by the inspector is the one ``interpret`` reports (they once differed: 4096
    against 16384 samples)."""
    from monosem_lib.analysis.report import interpret

    report = interpret(run, 0)
    view = neuron_inspector(run, 0)
    import html

    assert f"loss {report.loss:.4f} ->" in html.unescape(view.status.value)
    labels = {n: label.split(": ")[1] for label, n in view.controls["neuron"].options}
    assert [labels[n] for n in range(run.config.k)] == list(report.classes.labels)


def test_a_failed_retrain_shows_its_error_in_the_status_line():
    import ipywidgets as w

    def compute(values, progress):
        if values["x"] == 2:
            raise RuntimeError("training diverged: the loss became nan")
        return values["x"]

    view = LiveView(
        {"x": w.IntSlider(value=1)},
        compute,
        lambda fig, r, v: f"r {r}",
        figsize=(2, 2),
        background=True,
    )
    assert view.wait(30)
    view.controls["x"].value = 2
    assert view.wait(30)
    assert "diverged" in _status(view) and isinstance(view.error, RuntimeError)
    view.controls["x"].value = 1
    assert _status(view) == "r 1" and view.error is None
