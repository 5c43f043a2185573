"""The SAE chapter's slider: dictionary size and sparsity of the stored SAEs on the book
baseline's hidden layer, a TopK SAE beside a ReLU SAE at each step.

It exists twice, as the book promises for every slider: live (a ``LiveView``: ipywidgets and
matplotlib sent as PNG, Colab-safe) and static (a ``StaticSlider``, a JS animation for the
published page), drawing the same panels from the stored study (``sae_compare``).
"""

from __future__ import annotations

from matplotlib.figure import Figure

from ..paper.sae_study import SAE_SHAPES, SAEStudy
from .heatmap_marks import HeatmapFrame, HeatmapFrames
from .live import LiveView, StaticSlider, static_slider
from .sae_chapter import TICK_SIZE, sae_frame, sae_heatmap
from .sae_compare import SAEEntry, sae_slider_entries, sae_slider_steps

__all__ = ["sae_slider_explorer", "sae_slider_frames"]


def _panel_text(row: dict) -> str:
    return (
        f"MMCS {row['mmcs']:.3f} | rec {row['recovered']:.2f}\n"
        f"L0 {row['l0']:.2g} | FVU {row['fvu']:.2f} | dead {row['dead']} | "
        f"spliced loss {row['loss']:.3g}"
    )


def _pair_frames(
    pair: tuple[SAEEntry, SAEEntry], latents: int, step: int, shape: str
) -> tuple[HeatmapFrame, HeatmapFrame]:
    """The two panels of one setting: the TopK SAE's and the ReLU SAE's frames."""
    k, c = sae_slider_steps(shape)[step]
    names = (f"TopK, k = {k}", f"ReLU + L1, c = {c:g}")
    topk, relu = (
        sae_frame(entry, f"{name}, {latents} latents", "latent", _panel_text(entry.row))
        for entry, name in zip(pair, names)
    )
    return topk, relu


def sae_slider_frames(study: SAEStudy, shape: str = "book") -> HeatmapFrames:
    """The SAE slider's frames: per stored (latents, sparsity step), the TopK and the ReLU
    SAE's panels (no values when the slider's batches are not stored)."""
    entries = sae_slider_entries(study, shape)
    return HeatmapFrames(
        sorted(entries), lambda key: _pair_frames(entries[key], key[0], key[1], shape)
    )


def _draw_pair(fig: Figure, panels: tuple[HeatmapFrame, ...], latents: int) -> str:
    """The slider's frame: TopK and ReLU SAEs at one setting, heatmaps and numbers (the
    count of passing latents first, on its own line)."""
    fig.clear()
    axes = fig.subplots(1, 2)
    texts = []
    for ax, frame in zip(axes, panels):
        sae_heatmap(ax, frame.sfa, frame.title, "latent", frame.passing)
        count, rest = frame.text.split(" | ", 1)
        text = f"{count}\n{rest}"
        ax.text(0.5, -0.3, text, transform=ax.transAxes, ha="center", va="top", fontsize=TICK_SIZE)
        texts.append(f"{frame.title.split(',')[0]}: " + frame.text.replace("\n", " | "))
    fig.subplots_adjust(left=0.07, right=0.95, top=0.92, bottom=0.36, wspace=0.45)
    return f"{latents} latents, " + "; ".join(texts)


def sae_slider_explorer(
    study: SAEStudy,
    live: bool = True,
    shape: str = "book",
    figsize: tuple[float, float] = (11, 5.2),
) -> LiveView | StaticSlider | None:
    """Slide the dictionary size and the sparsity of SAEs on the book baseline's h: each
    frame shows a TopK SAE (k) beside a ReLU SAE (c) at the same step of sparsity, their
    latents' single-feature heatmaps and metrics. ``live``: ipywidgets (instant, stored
    settings); else the static JS twin. None when the slider's batches are not stored."""
    frames = sae_slider_frames(study, shape)
    if not len(frames):
        return None
    if live:
        return _live_slider(frames, shape, figsize)
    return static_slider(
        lambda fig, key: _draw_pair(fig, frames.frame(key), key[0]),
        frames.values,
        figsize=figsize,
        caption="Precomputed: a TopK SAE beside a ReLU SAE at each stored dictionary size and "
        "step of sparsity; the titles show both settings.",
    )


def _live_slider(frames: HeatmapFrames, shape: str, figsize: tuple[float, float]) -> LiveView:
    """The live twin: two selection sliders (latents, sparsity step) over stored frames."""
    import ipywidgets as w

    s = SAE_SHAPES[shape]
    sizes = sorted({L for L, _ in frames.values})
    steps = sae_slider_steps(shape)
    rule = [i for i, (k, _) in enumerate(steps) if k == s.topk(s.main[1])]
    controls = {
        "latents": w.SelectionSlider(
            options=sizes,
            value=s.latents if s.latents in sizes else sizes[0],
            description="latents",
            continuous_update=False,
        ),
        "step": w.SelectionSlider(
            options=[(f"k={k} | c={c:g}", i) for i, (k, c) in enumerate(steps)],
            value=rule[0] if rule else 0,
            description="sparsity",
            continuous_update=False,
        ),
    }

    stored = set(frames.values)

    def compute(values: dict, progress) -> tuple[HeatmapFrame, ...] | None:
        key = (values["latents"], values["step"])
        return frames.frame(key) if key in stored else None

    def draw(fig: Figure, panels: tuple[HeatmapFrame, ...] | None, values: dict) -> str:
        if panels is None:
            fig.clear()
            return "this setting is not stored (make data-sae)"
        return _draw_pair(fig, panels, values["latents"])

    return LiveView(controls, compute, draw, figsize)
