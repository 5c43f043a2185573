"""Pictures agree with their numbers: every heatmap of single-feature activations marks the
units that pass the 0.999 criterion, and for every frame of every precomputed slider the
marks drawn equal the count printed with it (and the count stored for that model).

Marks are read back from the drawn artists (``drawn_marks``), the count from the text the
figure or status line prints, and both are checked against the image's own pixels."""

import io
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from monosem_lib.analysis.metrics import (  # noqa: E402
    DEAD_TOL,
    MONO_THRESHOLD,
    summarize,
    training_curves,
)
from monosem_lib.book.explorers import (  # noqa: E402
    checkpoint_frames,
    instance_frames,
    show_frame,
    width_frames,
)
from monosem_lib.book.figure_kit import heatmap_row  # noqa: E402
from monosem_lib.book.heatmap_marks import MARK_COLOR, Passing, drawn_marks  # noqa: E402
from monosem_lib.book.live import PanelSlot  # noqa: E402
from monosem_lib.core.config import preset  # noqa: E402
from monosem_lib.core.training import train  # noqa: E402

COUNT = re.compile(r"mono (?:neuron|latent)s (\d+) of (\d+) \(red")


@pytest.fixture(scope="module")
def run():
    return train(preset("tiny", steps=128, instances=2), progress=False)


def _printed(text: str) -> tuple[int, int]:
    """The count and the number of units a caption prints (exactly one count in it)."""
    found = COUNT.findall(text)
    assert len(found) == 1, f"one labelled count expected in {text!r}"
    return int(found[0][0]), int(found[0][1])


def _heatmap_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if any(c.get_gid() == "passing-rows" for c in ax.collections)]


def _check_marks(ax, printed: str) -> int:
    """The marks on ``ax`` against the count ``printed`` and the image's pixels: the bar
    beside the heatmap marks exactly the rows whose top feature carries more than 0.999 of
    the row, each with its winning cell outlined. Returns the count."""
    rows, cells = drawn_marks(ax)
    count, units = _printed(printed)
    image = np.asarray(ax.images[0].get_array(), dtype=float)
    assert units == image.shape[0], "the count is out of the heatmap's rows"
    assert len(rows) == len(set(rows)) == count, f"{len(rows)} rows marked, {printed!r}"
    assert [r for r, _ in cells] == rows, "each marked row has its winning cell outlined"
    for r, c in cells:
        assert image[r, c] == image[r].max(), f"row {r}: the outlined cell is not its largest"
    top = image.max(1)
    share = np.where(top > DEAD_TOL, top / (1e-10 + image.sum(1)), 0.0)
    clear = np.abs(share - MONO_THRESHOLD) > 1e-6  # rows at the edge may round either way
    passing = set(np.flatnonzero((share > MONO_THRESHOLD) & clear))
    assert set(rows) & set(np.flatnonzero(clear)) == passing, "marks differ from the pixels"
    return count


def _check_static(frames, expected=None) -> list[int]:
    """Draw every frame as a static slider draws it and check its marks against the count
    printed under it (and ``expected[value]``, the count stored for that model)."""
    counts = []
    fig, slot = Figure(figsize=(7, 4.2)), PanelSlot()
    for value, (frame,) in frames:
        fig.clear()
        show_frame(fig, slot, frame)
        footer = [t.get_text() for t in fig.texts]
        assert footer == [frame.text]
        (ax,) = _heatmap_axes(fig)
        count = _check_marks(ax, footer[0])
        assert count == frame.passing.count
        if expected is not None:
            assert count == expected[value], f"{value}: printed {count}, stored {expected[value]}"
        counts.append(count)
    return counts


def test_the_checkpoint_sliders_frames_mark_what_they_count(run):
    frames = checkpoint_frames(run, 1)
    curves = training_curves(run)
    stored = {
        int(s): round(float(v) * run.config.N)
        for s, v in zip(curves["steps"], curves["mono_per_feature"][:, 1])
    }
    counts = _check_static(frames, stored)
    assert len(counts) == len(run.checkpoints) and max(counts) > 0


def test_the_width_and_instance_sliders_frames_mark_what_they_count(run):
    narrow = train(preset("tiny", k=16, steps=64), progress=False)
    runs = {32: run, 16: narrow}
    expected = {
        k: summarize(r.select([0]), eval_samples=64)[0]["mono_neurons"] for k, r in runs.items()
    }
    _check_static(width_frames(runs), expected)
    expected = {i: summarize(run, eval_samples=64)[i]["mono_neurons"] for i in range(2)}
    _check_static(instance_frames(run, [0, 1], lambda c: f"lr {c.lr}"), expected)


def test_every_frame_of_the_stored_bias_grid_marks_its_stored_count():
    from monosem_lib.book.shrink_grid import bias_grid_frames
    from monosem_lib.book.stored import DataUnavailable

    try:
        from monosem_lib.book.shrink_grid import BIAS_GRID
        from monosem_lib.book.stored import data_dir
        from monosem_lib.store.results import load_results

        grid = load_results(data_dir(f"live/{BIAS_GRID}") / "live" / f"{BIAS_GRID}.json")
    except DataUnavailable:
        pytest.skip("data/live/bias-grid is not stored here")
    frames = bias_grid_frames(grid)
    from monosem_lib.paper.recipe import total_shrink

    where = {(c.init_bias, round(total_shrink(c), 1)): i for i, c in enumerate(grid.configs)}
    stored = {v: grid.metrics[where[(v[0], round(v[1], 1))]]["mono_neurons"] for v in frames.values}
    counts = _check_static(frames, stored)
    assert len(counts) == len(grid.configs) and 0 in counts and max(counts) > 0


def _sae_study():
    from monosem_lib.book.stored import DataUnavailable, data_dir
    from monosem_lib.paper.sae_study import load_sae_study

    try:
        return load_sae_study(data_dir("sae/book") / "sae")
    except DataUnavailable:
        pytest.skip("data/sae/book is not stored here")


def test_every_frame_of_the_stored_sae_slider_marks_its_stored_count():
    from monosem_lib.book.sae_compare import sae_slider_entries
    from monosem_lib.book.sae_explorer import _draw_pair, sae_slider_frames

    study = _sae_study()
    frames, entries = sae_slider_frames(study), sae_slider_entries(study)
    assert len(frames) > 0, "the SAE slider's batches are stored"
    fig = Figure(figsize=(11, 5.2))
    for (latents, step), panels in frames:
        _draw_pair(fig, panels, latents)
        axes = _heatmap_axes(fig)
        assert len(axes) == 2
        for ax, frame, entry in zip(axes, panels, entries[(latents, step)]):
            (printed,) = [t.get_text() for t in ax.texts]
            assert printed.replace("\n", " | ") == frame.text.replace("\n", " | ")
            assert _check_marks(ax, printed) == entry.row["mono_units"]
            covered = float(re.search(r"covered (\d\.\d\d)", printed).group(1))
            assert covered == round(entry.row["features_covered"], 2)


def test_the_sae_chapters_heatmaps_mark_and_count_every_contender():
    from monosem_lib.book.sae_chapter import sae_heatmaps
    from monosem_lib.book.sae_compare import sae_contenders

    entries = sae_contenders(_sae_study(), "book")
    fig = sae_heatmaps(entries)
    axes = _heatmap_axes(fig)
    assert len(axes) == len(entries)
    for ax, entry in zip(axes, entries.values()):
        assert _check_marks(ax, ax.get_title()) == entry.row["mono_units"]


def test_heatmap_row_marks_and_counts_what_the_criterion_passes(run):
    from monosem_lib.analysis.metrics import neuron_stats

    stats = neuron_stats(run.model, run.P)
    fig = heatmap_row(stats.sfa, ["a", "b"])  # as chapter 1 calls it
    for i, ax in enumerate(_heatmap_axes(fig)):
        count = _check_marks(ax, ax.get_xlabel())
        assert count == int(stats.mono[i].sum())
    given = Passing.of_stats(stats, 0)
    assert given.count == int(stats.mono[0].sum()) and given.units == run.config.k


def _red_pixels(png: bytes) -> int:
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    red = np.array([int(MARK_COLOR[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(rgb - red).sum(-1) < 40).sum())


def test_the_live_checkpoint_view_blits_the_marks_of_each_step(run):
    pytest.importorskip("ipywidgets")
    from monosem_lib.book.explorers import checkpoint_explorer

    view = checkpoint_explorer(run, 0)  # none passes at step 1, some do later
    seen = set()
    for step in sorted(run.checkpoints)[::3] + [max(run.checkpoints)]:
        view.controls["step"].value = step
        count = _check_marks(view.figure.axes[0], view.status.value)
        red = _red_pixels(bytes(view.image.value))
        assert (red > 0) == (count > 0), f"step {step}: {count} marked, {red} red pixels sent"
        seen.add(count > 0)
    assert seen == {True, False}, "the run should pass through frames with and without marks"
