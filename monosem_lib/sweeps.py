"""The paper's Table 1 as named sweeps, at the paper's scale and at book scale.

Each batch of Table 1 varies one knob over a list of values around the paper's defaults
(N=512, m=64, k=1024, eps=1/64, lr=0.003, batch 8192, 2^17 steps). The values follow the
authors' code and data file names (github.com/adamjermyn/toy_model_interpretability) and
its public transcription; see ``SweepSpec.source``.

At book scale every batch starts from the ``book`` preset instead, with these rules:

* ``lr``, ``init_bias``, ``eps``, ``l1``, task, nonlinearity and feature distribution keep
  their paper values (the paper's default lr 0.003 becomes the book's 0.01 where lr is not
  the swept knob);
* widths ``k`` use the book values listed with each batch (the book keeps k/N, not k);
* ``bias_decay`` is rescaled so that the total shrink ``decay * lr * steps / 2`` equals the
  paper's. The paper's literal decays do nothing in 8000 steps; the shrink is what matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .config import Config, ConfigError, preset

__all__ = [
    "SweepSpec",
    "TABLE1",
    "ENGINEERED",
    "sweep_configs",
    "sweep_values",
    "total_shrink",
    "decay_for_shrink",
]

LRS = (0.001, 0.003, 0.005, 0.007, 0.01, 0.03)
BIASES = tuple(round(-2 + 0.3 * i, 10) for i in range(11))  # linspace(-2, 1, 11)
EPSES = tuple(2 ** -(1 + 0.4 * i) for i in range(11))  # 2^-linspace(1, 5, 11)
POWERS_OF_TEN = tuple(10.0 ** -i for i in range(1, 8))  # 1e-1 .. 1e-7
PAPER_KS = tuple(2**i for i in range(4, 11))  # 16 .. 1024 = N/32 .. 2N
BOOK_KS = tuple(2**i for i in range(4, 10))  # 16 .. 512 = N/4 .. 8N

# The book's engineered recipe at the book preset: a total shrink of 12 (paper: 5.9). The
# paper's shrink also works at book scale but leaves some neurons dead; chapter 3 shows both.
ENGINEERED: dict[str, float] = {"init_bias": -1.0, "bias_decay": 0.3}

_TRANSCRIPTION = "Table 1 of arXiv:2211.09169 as transcribed in jbloomAus/toy_model_interpretability"


@dataclass(frozen=True)
class SweepSpec:
    """One batch of Table 1.

    Attributes:
        name: the paper's label (``LR1``, ``B3``...).
        description: what the batch tests.
        var: the Config field it sweeps.
        values: the swept values at paper scale.
        fixed: other paper-scale settings that differ from the paper's defaults.
        book_values: the swept values at book scale, where they differ (widths).
        book_fixed: settings that differ at book scale (beyond the decay rescaling).
        source: where the values come from.
    """

    name: str
    description: str
    var: str
    values: tuple
    fixed: dict[str, Any] = field(default_factory=dict)
    book_values: tuple | None = None
    book_fixed: dict[str, Any] = field(default_factory=dict)
    source: str = _TRANSCRIPTION


def _specs() -> dict[str, SweepSpec]:
    neg = {"init_bias": -1.0, "bias_decay": 0.03}
    specs = [
        SweepSpec("LR1", "learning rate, zero initial bias", "lr", LRS,
                  source="authors' file names: ReLU_lr_sweep_no_bias_equal"),
        SweepSpec("LR2", "learning rate, power-law features", "lr", LRS, {"feature_dist": "power_law"},
                  source="authors' file names: ReLU_lr_sweep_no_bias_power_law"),
        SweepSpec("LR3", "learning rate, initial bias -1 with bias decay", "lr", LRS, dict(neg),
                  source="authors' file names: ReLU_lr_sweep_negative_bias_equal (init_bias_-1.0_decay_0.03)"),
        SweepSpec("LR4", "learning rate, initial bias -1 with decay, power-law features", "lr", LRS,
                  {**neg, "feature_dist": "power_law"},
                  source="authors' file names: ReLU_lr_sweep_negative_bias_power_law"),
        SweepSpec("LR5", "learning rate, absolute-value task with twice the neurons", "lr", LRS,
                  {"task": "abs", "k": 2048}, book_fixed={"k": 512}),
    ]
    for i, eps in enumerate((2**-4, 2**-5, 2**-6, 2**-7, 2**-8), start=1):
        specs.append(SweepSpec(f"B{i}", f"initial bias with decay, eps = 2^-{i + 3}", "init_bias", BIASES,
                               {"eps": eps, "bias_decay": 0.03}))
    specs.append(SweepSpec("G3", "learning rate, GeLU, initial bias -1 with decay, power-law features", "lr", LRS,
                           {**neg, "feature_dist": "power_law", "nonlinearity": "gelu"},
                           source="transcription's g3 run"))
    for i, decay in enumerate((0.03, 0.01, 0.003, 0.001), start=1):
        specs.append(SweepSpec(f"E{i}", f"feature density, initial bias -1, decay {decay}", "eps", EPSES,
                               {"init_bias": -1.0, "bias_decay": decay}))
    specs += [
        SweepSpec("K0", "neurons per layer, zero initial bias", "k", PAPER_KS, book_values=BOOK_KS),
        SweepSpec("K1", "neurons per layer, initial bias -1 with decay", "k", PAPER_KS, dict(neg), book_values=BOOK_KS),
        SweepSpec("K2", "neurons per layer, initial bias -1 with decay, power-law features", "k", PAPER_KS,
                  {**neg, "feature_dist": "power_law"}, book_values=BOOK_KS),
        SweepSpec("RG1", "L1 penalty on activations", "l1", POWERS_OF_TEN),
        SweepSpec("RP1", "learning rate, random re-projector task", "lr", LRS, {"task": "reprojector"}),
        SweepSpec("D1", "bias decay, absolute-value task, initial bias -1", "bias_decay", POWERS_OF_TEN,
                  {"task": "abs", "k": 2048, "init_bias": -1.0}, book_fixed={"k": 512}),
    ]
    return {s.name: s for s in specs}


TABLE1: dict[str, SweepSpec] = _specs()


def total_shrink(config: Config) -> float:
    """decay * lr * (steps in the first half): how far bias decay pulls biases in total
    (the product of the per-step factors is about exp(-shrink))."""
    return config.bias_decay * config.lr * math.ceil(config.steps / 2)


def decay_for_shrink(shrink: float, lr: float, steps: int) -> float:
    """The bias_decay giving total ``shrink`` at this lr and run length."""
    return shrink / (lr * math.ceil(steps / 2))


def sweep_values(name: str, scale: str = "book") -> tuple:
    """The swept values of batch ``name`` at ``scale`` (``book`` or ``paper``)."""
    spec = _spec(name)
    if scale == "book" and spec.book_values is not None:
        return spec.book_values
    return spec.values


def _spec(name: str) -> SweepSpec:
    if name not in TABLE1:
        raise ConfigError("sweep", name, "must be one of " + ", ".join(TABLE1))
    return TABLE1[name]


def sweep_configs(name: str, scale: str = "book", seeds: int | None = None, **overrides: Any) -> list[Config]:
    """One Config per swept value of Table 1 batch ``name``.

    Args:
        name: ``LR1`` ... ``D1`` (see ``TABLE1``).
        scale: ``book`` or ``paper``.
        seeds: instances per value (seeds 0, 1, ...); default 3 at book scale, 1 at paper.
        overrides: further Config changes applied to every point (``device="cuda"``...).
    """
    spec = _spec(name)
    if scale not in ("book", "paper"):
        raise ConfigError("scale", scale, "must be book or paper")
    seeds = (3 if scale == "book" else 1) if seeds is None else seeds
    paper = preset("paper")
    out = []
    for value in sweep_values(name, scale):
        if scale == "paper":
            cfg = paper.replace(**spec.fixed, **{spec.var: value})
        else:
            # The paper-scale point this book point stands for fixes the total shrink.
            at_paper = paper.replace(**spec.fixed, **({} if spec.book_values else {spec.var: value}))
            book = preset("book")
            fields = {f: v for f, v in spec.fixed.items() if f not in ("bias_decay", "k")}
            fields.update(spec.book_fixed)
            fields[spec.var] = value
            lr = fields.get("lr", book.lr)
            fields["bias_decay"] = decay_for_shrink(total_shrink(at_paper), lr, overrides.get("steps", book.steps))
            cfg = book.replace(**fields)
        out.append(cfg.replace(instances=seeds, **overrides))
    return out
