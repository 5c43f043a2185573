"""The SAE chapter's slider: dictionary size and sparsity of the stored SAEs on the book
baseline's hidden layer, a TopK SAE beside a ReLU SAE at each step.

It exists twice, as the book promises for every slider: live (a ``LiveView``: ipywidgets and
matplotlib sent as PNG, Colab-safe) and static (a ``StaticSlider``, a JS animation for the
published page), drawing the same panels from the stored study (``sae_compare``).
"""

from __future__ import annotations

from matplotlib.figure import Figure

from ..paper.sae_study import SAE_SHAPES, SAEStudy
from .live import LiveView, StaticSlider, static_slider
from .sae_chapter import TICK_SIZE, sae_heatmap
from .sae_compare import SAEEntry, sae_slider_entries, sae_slider_steps

__all__ = ["sae_slider_explorer"]

SliderFrames = dict[tuple[int, int], tuple[SAEEntry, SAEEntry]]


def _panel_text(row: dict) -> str:
    return (
        f"covered {row['features_covered']:.2f} | mono {row['mono_units']} | "
        f"MMCS {row['mmcs']:.3f} | rec {row['recovered']:.2f}\n"
        f"L0 {row['l0']:.2g} | FVU {row['fvu']:.2f} | dead {row['dead']} | "
        f"spliced loss {row['loss']:.3g}"
    )


def _draw_pair(
    fig: Figure, pair: tuple[SAEEntry, SAEEntry], latents: int, step: int, shape: str = "book"
) -> str:
    """The slider's frame: TopK and ReLU SAEs at one setting, heatmaps and numbers."""
    fig.clear()
    k, c = sae_slider_steps(shape)[step]
    axes = fig.subplots(1, 2)
    texts = []
    for ax, entry, name in zip(axes, pair, (f"TopK, k = {k}", f"ReLU + L1, c = {c:g}")):
        sae_heatmap(ax, entry.sfa(), f"{name}, {latents} latents", "latent")
        text = _panel_text(entry.row)
        ax.text(0.5, -0.2, text, transform=ax.transAxes, ha="center", va="top", fontsize=TICK_SIZE)
        texts.append(f"{name}: " + text.replace("\n", " | "))
    fig.subplots_adjust(left=0.07, right=0.97, top=0.9, bottom=0.32, wspace=0.35)
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
    frames = sae_slider_entries(study, shape)
    if not frames:
        return None
    if live:
        return _live_slider(frames, shape, figsize)
    return static_slider(
        lambda fig, key: _draw_pair(fig, frames[key], key[0], key[1], shape),
        sorted(frames),
        figsize=figsize,
        caption="Precomputed: a TopK SAE beside a ReLU SAE at each stored dictionary size and "
        "step of sparsity; the titles show both settings.",
    )


def _live_slider(frames: SliderFrames, shape: str, figsize: tuple[float, float]) -> LiveView:
    """The live twin: two selection sliders (latents, sparsity step) over stored frames."""
    import ipywidgets as w

    s = SAE_SHAPES[shape]
    sizes = sorted({L for L, _ in frames})
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

    def draw(fig: Figure, pair: tuple[SAEEntry, SAEEntry] | None, values: dict) -> str:
        if pair is None:
            fig.clear()
            return "this setting is not stored (make data-sae)"
        return _draw_pair(fig, pair, values["latents"], values["step"], shape)

    return LiveView(
        controls, lambda v, progress: frames.get((v["latents"], v["step"])), draw, figsize
    )
