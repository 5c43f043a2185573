"""The book's signature slider: an initial bias, a total shrink S and a learning rate, and a
model retrained live while the reader watches its heatmap form.
"""

from __future__ import annotations

import html as _html
import math
from collections.abc import Sequence
from typing import Any

import torch

from ..analysis.defaults import EVAL_SAMPLES, LOSS_WINDOW
from ..analysis.metrics import evaluate_loss
from ..core.config import Config, preset
from ..core.data import make_projection, resolve_device
from ..core.training import Run, init_model, train
from ..paper.recipe import decay_for_shrink, total_shrink
from .batches import B1_SHRINK, LIVE_BIASES
from .explorers import draw_state, short_number
from .live import LiveView, PanelSlot

__all__ = ["BiasExplorer"]


class BiasExplorer:
    """The book's signature slider: pick an initial bias, a total bias shrink S and a
    learning rate, and watch a model retrain, its heatmap redrawn every ``every`` steps.

    S is what the book teaches: bias decay acts during the first half of training and pulls
    biases in by about exp(-S) in total, S = decay * lr * steps / 2; the status line shows
    the decay a setting implies. Runs at the ``live`` preset (it retrains in a few seconds on
    a laptop CPU) unless another ``base`` is given. Shrinks default to 0, 3, 5.9 (B1's),
    12 and 24.

    Results are cached per setting; ``precomputed`` (a run of the same base, such as
    ``experiments.live_grid``) fills the cache up front, so those settings show at once; the
    explorer then starts on one of them (initial bias -1 at B1's shrink when there),
    and the note under the plot lists them. A retrain runs in a worker thread on ``threads``
    torch threads (one by default: the tiny live model gains nothing from more, and on a
    busy machine extra threads stall); moving a control cancels it and starts the new
    setting. ``view`` is the LiveView. ``decays`` (deprecated) gives the shrinks as decays
    at the base's lr.
    """

    SHRINKS = (0.0, 3.0, B1_SHRINK, 12.0, 24.0)
    CANCEL_CHECK = 100  # steps between checks of the cancel flag while training

    def __init__(
        self,
        base: Config | None = None,
        every: int = 500,
        figsize: tuple[float, float] = (7, 4.2),
        init_biases: Sequence[float] = LIVE_BIASES,
        shrinks: Sequence[float] | None = None,
        lrs: Sequence[float] = (0.003, 0.01, 0.03),
        precomputed: Run | None = None,
        start: dict | None = None,
        threads: int | None = 1,
        decays: Sequence[float] | None = None,
        eval_samples: int = EVAL_SAMPLES,
    ):
        self.base = preset("live") if base is None else base
        self.every = every
        self.threads = threads
        self.eval_samples = eval_samples
        if shrinks is None:
            shrinks = (
                self.SHRINKS
                if decays is None
                else [total_shrink(self.base.replace(bias_decay=float(d))) for d in decays]
            )
        self.shrinks = [float(s) for s in shrinks]
        self.init_biases = [float(b) for b in init_biases]
        self.lrs = [float(x) for x in lrs]
        self._P: dict[tuple, Any] = {}
        self._precomputed = self._index_precomputed(precomputed)
        self.slot = PanelSlot()
        self.view = LiveView(
            self._controls(self._start(start)),
            self._compute,
            self._draw,
            figsize,
            in_place=True,
            background=True,
            preview=self._preview,
            lookup=self._ready,
            note=self._note(),
            blit=self.slot.blit,
        )

    def _index_precomputed(self, precomputed: Run | None) -> dict[tuple, Run]:
        """The instances of ``precomputed`` that differ from ``base`` only in initial bias,
        bias decay and lr, one single-instance Run each, by (init_bias, shrink, lr)."""
        out: dict[tuple, Run] = {}
        if precomputed is None:
            return out
        for i, c in enumerate(precomputed.configs):
            same = c.replace(
                init_bias=self.base.init_bias, bias_decay=self.base.bias_decay, lr=self.base.lr
            )
            if same == self.base:
                out[self._pkey(c.init_bias, total_shrink(c), c.lr)] = precomputed.select([i])
        return out

    def _controls(self, first: dict) -> dict:
        """The three sliders (initial bias, shrink S, lr), starting at ``first``."""
        import ipywidgets as w

        shrink_labels = [
            (f"{short_number(s)} (B1)" if math.isclose(s, B1_SHRINK) else short_number(s), s)
            for s in self.shrinks
        ]
        options = {
            "init_bias": ([(f"{b:+.2f}", b) for b in self.init_biases], "initial bias"),
            "shrink": (shrink_labels, "shrink S"),
            "lr": ([(f"{x:g}", x) for x in self.lrs], "lr"),
        }
        return {
            name: w.SelectionSlider(
                options=opts, value=first[name], description=desc, continuous_update=False
            )
            for name, (opts, desc) in options.items()
        }

    # -- settings
    @staticmethod
    def _pkey(init_bias: float, shrink: float, lr: float) -> tuple:
        return (round(float(init_bias), 6), round(float(shrink), 6), round(float(lr), 9))

    def _instant_values(self) -> list[dict]:
        """The controls' settings that are precomputed."""
        return [
            {"init_bias": b, "shrink": s, "lr": x}
            for b in self.init_biases
            for s in self.shrinks
            for x in self.lrs
            if self._pkey(b, s, x) in self._precomputed
        ]

    def _start(self, start: dict | None) -> dict:
        if start is not None:
            return {
                "init_bias": float(start["init_bias"]),
                "shrink": float(start["shrink"]),
                "lr": float(start["lr"]),
            }
        lr = self.base.lr if self.base.lr in self.lrs else self.lrs[0]
        instant = self._instant_values()
        preferred = [
            v
            for v in instant
            if v["init_bias"] == -1.0 and math.isclose(v["shrink"], B1_SHRINK) and v["lr"] == lr
        ]
        if preferred or instant:
            return (preferred or instant)[0]
        return {
            "init_bias": 0.0 if 0.0 in self.init_biases else self.init_biases[0],
            "shrink": self.shrinks[0],
            "lr": lr,
        }

    def _note(self) -> str:
        instant = self._instant_values()
        if not instant:
            return (
                '<div style="line-height: 1.4"><small>Every setting retrains a model here '
                "(a few seconds); each is cached once trained.</small></div>"
            )
        groups: dict[tuple, list[float]] = {}
        for v in instant:
            groups.setdefault((v["shrink"], v["lr"]), []).append(v["init_bias"])
        parts = []
        for (s, x), bs in groups.items():
            b = (
                "any initial bias"
                if len(bs) == len(self.init_biases)
                else "initial bias " + ", ".join(f"{v:+.2f}" for v in sorted(bs))
            )
            parts.append(f"S {short_number(s)}, lr {x:g}: {b}")
        return (
            '<div style="line-height: 1.4"><small>Shrink S = decay &times; lr &times; steps / 2: '
            "bias decay pulls the biases in by about "
            "e<sup>-S</sup> over the first half of training. <b>Instant (precomputed):</b> "
            + _html.escape("; ".join(parts))
            + ". Other settings retrain live (a few seconds), then stay cached.</small></div>"
        )

    def config(self, values: dict) -> Config:
        lr = float(values["lr"])
        return self.base.replace(
            init_bias=float(values["init_bias"]),
            lr=lr,
            instances=1,
            bias_decay=decay_for_shrink(float(values["shrink"]), lr, self.base.steps),
        )

    def is_precomputed(self, values: dict) -> bool:
        return self._pkey(values["init_bias"], values["shrink"], values["lr"]) in self._precomputed

    # -- computing
    def _ready(self, values: dict):
        ready = self._precomputed.get(
            self._pkey(values["init_bias"], values["shrink"], values["lr"])
        )
        if ready is None:
            return None
        loss = float(evaluate_loss(ready, samples=self.eval_samples)[0])
        return ("precomputed", ready.config.steps, ready.model, ready.P, loss)

    def _preview(self, values: dict):
        """The untrained model of a setting, shown the moment its retrain starts."""
        cfg = self.config(values)
        return (
            "training",
            0,
            init_model([cfg], resolve_device(cfg.device), getattr(torch, cfg.dtype)),
            None,
            None,
        )

    def _compute(self, values, progress):
        cfg = self.config(values)

        cancelled = getattr(progress, "cancelled", lambda: False)

        def cb(step, model, losses):
            # Called every CANCEL_CHECK steps: a moved control stops training within a few
            # milliseconds; the heatmap is redrawn every ``every`` steps.
            if cancelled():
                return False
            if step % self.every or step >= cfg.steps:  # the final image follows at once
                return True
            loss = float(losses[-min(LOSS_WINDOW, len(losses)) :].double().mean())
            return progress(("training", step, model.clone(), None, loss))

        threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            run = train(
                cfg,
                progress=False,
                callback=cb,
                callback_every=math.gcd(self.every, self.CANCEL_CHECK),
                checkpoints=False,
            )
        finally:
            torch.set_num_threads(threads)
        if run.stopped_at is not None:
            return None  # cancelled: the view discards it
        return (
            "trained",
            cfg.steps,
            run.model,
            run.P,
            float(evaluate_loss(run, samples=self.eval_samples)[0]),
        )

    def _projection(self, cfg: Config, dtype):
        key = (cfg.N, cfg.m, cfg.seed, dtype)
        if key not in self._P:
            self._P[key] = make_projection(cfg.N, cfg.m, cfg.seed).to(dtype).unsqueeze(0)
        return self._P[key]

    def _draw(self, fig, result, values):
        phase, step, model, P, loss = result
        cfg = self.config(values)
        if P is None:  # partial results: the world's projection, made once per seed
            P = self._projection(cfg, model.flat.dtype)
        setting = (
            f"initial bias {values['init_bias']:+.2f}, shrink S {short_number(values['shrink'])}"
        )
        state = {
            "training": f"training step {step}/{cfg.steps}",
            "precomputed": "precomputed (instant)",
            "trained": f"trained live, {cfg.steps} steps",
        }[phase]
        title = f"{setting}, lr {values['lr']:g}: {state}"
        text = draw_state(fig, self.slot, model, P, cfg, title, loss, footer=False)
        decay = short_number(cfg.bias_decay)
        return f"{setting} (decay {decay}), lr {values['lr']:g} | {state} | {text}"

    def _ipython_display_(self) -> None:
        self.view._ipython_display_()
