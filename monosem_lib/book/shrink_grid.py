"""Chapter 3's precomputed slider over initial bias x total shrink: the grid of models at the
``live`` preset (``batches.bias_shrink_grid``), stored once as a summary in ``data/live`` so
that the slider's frames are drawn without training, and the slider itself."""

from __future__ import annotations

from pathlib import Path

from ..core.config import Config
from ..paper.recipe import total_shrink
from ..store.cache import load_or_train
from ..store.results import Results, load_results
from ..store.summaries import save_summary
from .batches import GRID_SHRINKS, LIVE_BIASES, bias_shrink_grid
from .explorers import show_frame, stats_frame
from .grid_slider import static_grid
from .heatmap_marks import HeatmapFrame, HeatmapFrames
from .live import PanelSlot, StaticSlider
from .stored import DataUnavailable, data_dir

__all__ = ["BIAS_GRID", "store_bias_grid", "bias_grid", "bias_grid_frames", "bias_grid_slider"]

BIAS_GRID = "bias-grid"  # data/live/bias-grid.json and .npz


def store_bias_grid(root: str | Path = "data/live") -> Path:
    """Train the grid (or load it from the result cache) and store it as ``root/bias-grid``."""
    run = load_or_train(bias_shrink_grid())
    return save_summary(run, root, name=BIAS_GRID, scale="live", overwrite=True)


def _same(stored: Results, configs: list[Config]) -> bool:
    return [c.to_dict() for c in stored.configs] == [c.to_dict() for c in configs]


def bias_grid() -> Results:
    """The grid's Results: the stored summary when it holds exactly ``bias_shrink_grid()``,
    else trained here (about a minute on a laptop; the result cache keeps it)."""
    configs = bias_shrink_grid()
    try:
        stored = load_results(data_dir(f"live/{BIAS_GRID}") / "live" / f"{BIAS_GRID}.json")
    except DataUnavailable:
        stored = None
    if stored is not None and _same(stored, configs):
        return stored
    print(f"data/live/{BIAS_GRID} is missing or out of date: training the grid here")
    return Results.from_run(load_or_train(configs), scale="live")


def bias_grid_frames(grid: Results) -> HeatmapFrames:
    """The grid slider's frames, one per (initial bias, total shrink S) pair of
    ``LIVE_BIASES`` x ``GRID_SHRINKS``, with the stored final loss."""
    where = {(c.init_bias, round(total_shrink(c), 1)): i for i, c in enumerate(grid.configs)}
    loss = grid.metric("final_loss")

    def frame(pair: tuple[float, float]) -> tuple[HeatmapFrame]:
        bias, shrink = pair
        i = where[(bias, round(shrink, 1))]
        title = f"initial bias {bias:g}, total shrink S = {shrink:.1f}"
        return (stats_frame(grid.stats(i), grid.configs[i], title, float(loss[i])),)

    return HeatmapFrames([(b, s) for b in LIVE_BIASES for s in GRID_SHRINKS], frame)


def bias_grid_slider(grid: Results, figsize: tuple[float, float] = (7, 4.2)) -> StaticSlider:
    """Initial bias x total shrink S, one heatmap with its numbers per pair, starting at the
    engineered recipe's bias -1 with B1's shrink."""
    frames, slot = bias_grid_frames(grid), PanelSlot()

    def draw(fig, bias: float, shrink: float) -> None:
        (frame,) = frames.frame((bias, shrink))
        show_frame(fig, slot, frame)

    start = (LIVE_BIASES.index(-1.0), 2)
    return static_grid(
        draw,
        LIVE_BIASES,
        GRID_SHRINKS,
        labels=("initial bias", "total shrink S"),
        text=lambda v: f"{v:g}",
        start=start,
        caption="Precomputed: drag either slider to browse the grid of initial bias × total shrink "
        "S at the live scale (N = 32, k = 128); the heatmap, loss and counts are the model's, "
        "and red marks the neurons that pass the 0.999 criterion.",
        figsize=figsize,
    )
