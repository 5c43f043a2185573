"""Widgets driven headlessly: set slider values, check the figure, the numbers and the cache."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from monosem_lib.config import preset  # noqa: E402
from monosem_lib.training import train  # noqa: E402
from monosem_lib.widgets import (  # noqa: E402
    BiasExplorer, LiveView, bias_grid, bias_grid_figure, checkpoint_explorer, neuron_inspector, static_slider,
    width_explorer,
)

pytest.importorskip("ipywidgets")


@pytest.fixture(scope="module")
def run():
    return train(preset("tiny", steps=128, instances=2), progress=False)


def _image(view):
    """The pixels of the heatmap currently drawn."""
    return np.asarray(view.figure.axes[0].images[0].get_array()).copy()


def test_static_slider_is_a_js_animation_with_one_frame_per_value():
    s = static_slider(lambda fig, v: fig.add_subplot().set_title(f"value {v}"), [1, 2, 3], figsize=(3, 2))
    assert s.frames == 3
    html = s._repr_html_()
    assert 'type="range"' in html and html.count("data:image/png;base64") >= 3
    with pytest.raises(ValueError):
        static_slider(lambda fig, v: None, [])


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
    assert view.status.value == "<code>result 100</code>" and view.computes == 1
    slider.value = 3
    assert view.status.value == "<code>result 300</code>"
    assert view.figure.axes[0].lines[0].get_ydata()[1] == 300
    slider.value = 1
    assert view.cache_hits == 1 and calls == [1, 3], "returning to a setting must not recompute"


def test_checkpoint_explorer_live_and_static(run):
    view = checkpoint_explorer(run, 1)
    last = _image(view)
    assert "mono neurons / feature" in view.status.value
    view.controls["step"].value = 1
    first = _image(view)
    assert not np.allclose(first, last), "the heatmap should change between checkpoints"
    assert "after 1 steps" in view.figure.axes[0].get_title()
    static = checkpoint_explorer(run, 1, live=False)
    assert static.frames == len(run.checkpoints)


def test_bias_explorer_retrains_redraws_while_training_and_caches():
    base = preset("tiny", steps=200)
    explorer = BiasExplorer(base=base, every=50, init_biases=(-1.0, 0.0), decays=(0.0, 5.0), lrs=(0.01,))
    view = explorer.view
    shown = []
    original = view._show
    view._show = lambda result, values: (shown.append(result[0]), original(result, values))
    before = _image(view)
    text_before = view.status.value
    view.controls["init_bias"].value = -1.0
    assert shown.count("training") == 4 and shown[-1] == "done", "redrawn at steps 50, 100, 150, 200, then done"
    assert not np.allclose(_image(view), before) and view.status.value != text_before
    assert "initial bias -1.00" in view.figure.axes[0].get_title()
    view.controls["init_bias"].value = 0.0
    assert view.cache_hits == 1 and view.computes == 2


def test_bias_grid_trains_one_batch_and_plots():
    biases = (-1.0, 0.0)
    grid = bias_grid(preset("tiny", steps=50), biases, seeds=2)
    assert grid.instances == 4
    fig = bias_grid_figure(grid, biases)
    assert len(fig.axes) == 3


def test_width_explorer(run):
    runs = {32: run, 16: train(preset("tiny", k=16, steps=64), progress=False)}
    view = width_explorer(runs)
    view.controls["k"].value = 16
    assert "k = 16" in view.figure.axes[0].get_title()
    assert width_explorer(runs, live=False).frames == 2


def test_neuron_inspector_shows_class_and_ablation(run):
    view = neuron_inspector(run, 0, samples=256)
    assert "ablated" in view.status.value
    view.controls["neuron"].value = 5
    assert view.figure.axes[0].get_title().startswith("neuron 5:")
    assert neuron_inspector(run, 0, live=False, neurons=[0, 1], samples=256).frames == 2


def test_bias_explorer_serves_precomputed_settings_without_training():
    from monosem_lib.widgets import instance_slider

    base = preset("tiny", steps=60)
    grid = train([base, base.replace(init_bias=-1.0), base.replace(init_bias=-1.0, bias_decay=5.0)], progress=False)
    explorer = BiasExplorer(base=base, init_biases=(-1.0, 0.0), decays=(0.0, 5.0), lrs=(base.lr,), precomputed=grid)
    view = explorer.view
    trained = []
    import monosem_lib.widgets as wmod
    original = wmod.train
    wmod.train = lambda *a, **k: trained.append(a) or original(*a, **k)
    try:
        view.controls["init_bias"].value = -1.0
        view.controls["bias_decay"].value = 5.0
    finally:
        wmod.train = original
    assert trained == [], "a precomputed setting must not retrain"
    assert "shrink" in view.figure.axes[0].get_title()
    static = instance_slider(grid, [0, 2], lambda c: f"bias {c.init_bias}")
    assert static.frames == 2 and "anim" in static.html
    live = instance_slider(grid, [0, 2], lambda c: f"bias {c.init_bias}", live=True)
    live.controls["i"].value = 2
    assert live.figure.axes[0].get_title() == "bias -1.0"
