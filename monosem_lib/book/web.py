"""The playground: a trainer that runs in the reader's browser, and what ties it to the library.

The trainer itself is JavaScript (``_static/playground/trainer.js``, run by ``worker.js`` and
drawn by ``ui.js``; Sphinx copies ``_static`` into the built site). This module gives

- ``playground_settings``: the page's starting settings and slider marks, from the library
  (the live preset, the rule's decay ``decay_for``, the 0.999 criterion);
- ``playground_html`` / ``playground``: the HTML fragment a notebook cell or a page shows,
  loading ``ui.js`` as a module from ``base`` (``../_static/playground`` from ``book/*``,
  ``_static/playground`` from a root page). Outside the built book (Jupyter, Colab) the
  module is not there and the fragment says so; ``BiasExplorer`` is the kernel's slider;
- ``parity_fixture`` / ``write_fixture``: P, the initial weights, a few batches of features
  and the library's weights after 1 and ``steps`` steps, as JSON, against which
  ``tests/test_playground.py`` checks the JavaScript trainer.
"""

from __future__ import annotations

import html as _html
import json
from pathlib import Path
from typing import Any

import torch

from ..analysis.metrics import DEAD_TOL, MONO_THRESHOLD
from ..core.config import Config, preset
from ..core.data import make_world
from ..core.model import ToyModel
from ..core.training import init_model, train
from ..paper.recipe import RULES, decay_for

__all__ = [
    "PLAYGROUND_ASSETS",
    "recipe_config",
    "playground_settings",
    "playground_html",
    "playground",
    "parity_fixture",
    "write_fixture",
]

PLAYGROUND_ASSETS = "_static/playground"
FIXTURE_STEPS = 10


def recipe_config(base: Config | None = None) -> Config:
    """The live preset with the recipe: initial bias -1 and the rule's decay for its run."""
    base = preset("live", device="cpu") if base is None else base
    return base.replace(init_bias=-1.0, bias_decay=decay_for(base.steps, base.lr, base.schedule))


def playground_settings(base: Config | None = None) -> dict[str, Any]:
    """The playground's starting point (the recipe at the live preset), its baseline (bias 0,
    no decay, same seed) and the constants the page marks: the decay rule and the criterion."""
    cfg = recipe_config(base)
    if cfg.task != "decoder" or cfg.nonlinearity != "relu" or cfg.optimizer != "lamb":
        raise ValueError(
            f"the playground trains the ReLU decoder with LAMB; got task={cfg.task!r}, "
            f"nonlinearity={cfg.nonlinearity!r}, optimizer={cfg.optimizer!r}"
        )
    if cfg.schedule != "cosine" or cfg.feature_dist != "uniform":
        raise ValueError(
            f"the playground uses one half-cosine and uniform features; got "
            f"schedule={cfg.schedule!r}, feature_dist={cfg.feature_dist!r}"
        )
    rule = RULES[cfg.schedule]
    return {
        "N": cfg.N,
        "m": cfg.m,
        "k": cfg.k,
        "eps": cfg.eps,
        "batch": cfg.batch,
        "steps": cfg.steps,
        "lr": cfg.lr,
        "initBias": cfg.init_bias,
        "decay": cfg.bias_decay,
        "seed": cfg.seed,
        "rule": {"d0": rule.d0, "b": rule.b, "t0": rule.t0},
        "threshold": MONO_THRESHOLD,
        "deadTol": DEAD_TOL,
    }


def playground_html(
    base: str = f"../{PLAYGROUND_ASSETS}", settings: dict[str, Any] | None = None, url: bool = True
) -> str:
    """The playground's HTML: a container, its stylesheet and a module script that builds the
    controls and starts the Web Worker. ``base``: where ``ui.js`` lies, relative to the page.
    ``url``: read and write the settings in the page's URL (one playground a page)."""
    if not isinstance(base, str) or not base or any(c in base for c in "\"'<> "):
        raise ValueError(f"base={base!r} is not allowed: must be a plain relative or absolute path")
    base = base.rstrip("/")
    data = _html.escape(json.dumps(settings or playground_settings()), quote=True)
    return (
        f'<link rel="stylesheet" href="{base}/playground.css">'
        f'<div class="monosem-playground" data-settings="{data}" data-url="{int(url)}">'
        '<p class="mp-fallback">The playground trains a toy model in your browser; it needs '
        "the built book's page (JavaScript modules, served over HTTP). In Jupyter or Colab, "
        "<code>book.BiasExplorer()</code> retrains with the library instead.</p></div>"
        f'<script type="module">import {{ mountAll }} from "{base}/ui.js"; mountAll();</script>'
    )


def playground(base: str = f"../{PLAYGROUND_ASSETS}", **kwargs: Any):
    """``playground_html`` as an ``IPython.display.HTML`` for a notebook cell."""
    from IPython.display import HTML

    return HTML(playground_html(base, **kwargs))


def _floats(t: torch.Tensor) -> list[float]:
    return [float(v) for v in t.detach().cpu().reshape(-1)]


def _sparse(f: torch.Tensor) -> list[list[float]]:
    """A batch of features [B, N] as [sample, feature, value] triples of its nonzeros."""
    nz = f.nonzero().tolist()
    return [[s, j, float(f[s, j])] for s, j in nz]


def parity_fixture(config: Config | None = None, steps: int = FIXTURE_STEPS) -> dict[str, Any]:
    """What the library does in its first ``steps`` steps of ``config`` (default: the recipe
    at the live preset, on the CPU): its P [m, N], initial W1 [k, m], b [k], W2 [N, k], the
    ``steps`` batches of features it trains on, and its weights and losses after 1 and after
    ``steps`` steps. Flat row-major lists."""
    cfg = recipe_config() if config is None else config
    if cfg.instances != 1 or cfg.task != "decoder" or cfg.nonlinearity != "relu":
        raise ValueError("parity_fixture takes one ReLU decoder instance (instances=1)")
    if not 1 <= steps <= cfg.steps:
        raise ValueError(f"steps={steps!r} is not allowed: must be in 1..{cfg.steps}")
    world = make_world(cfg)
    batches = [_sparse(world.sample().f) for _ in range(steps)]
    init = init_model([cfg], torch.device("cpu"), getattr(torch, cfg.dtype))
    after: dict[str, Any] = {}

    def grab(done: int, model: ToyModel, history: torch.Tensor) -> bool:
        if done in (1, steps):
            W1, b, W2 = model.split()
            after[str(done)] = {
                "W1": _floats(W1[0]),
                "b": _floats(b[0]),
                "W2": _floats(W2[0]),
                "loss": _floats(history[:, 0]),
            }
        return done < steps

    train(cfg, callback=grab, callback_every=1, checkpoints=False, progress=False)
    W1, b, W2 = init.split()
    return {
        "config": {
            **{f: getattr(cfg, f) for f in ("N", "m", "k", "eps", "batch", "steps", "lr", "seed")},
            "initBias": cfg.init_bias,
            "decay": cfg.bias_decay,
        },
        "P": _floats(make_world(cfg).P),
        "W1": _floats(W1[0]),
        "b": _floats(b[0]),
        "W2": _floats(W2[0]),
        "batches": batches,
        "after": after,
    }


def write_fixture(
    path: str | Path, config: Config | None = None, steps: int = FIXTURE_STEPS
) -> Path:
    """``parity_fixture`` written as JSON to ``path``; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(parity_fixture(config, steps)))
    return out
