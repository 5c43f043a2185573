"""The paper's Table 1 as named sweeps, at the paper's scale and at book scale.

Every batch of Table 1 is one :class:`SweepSpec` holding the paper's whole row: task,
activation, feature distribution, N, m, k, eps, lr, bias decay, initial bias and L1, with the
swept knob(s) as tuples of values. The rows restate Table 1 of arXiv:2211.09169 (as publicly
transcribed) and the swept values in the authors' code and data-file names; the test
``tests/test_table1.py`` holds every field against a copy of the paper's table.

The paper's GeLU row is named ``G1`` here: the public transcription labels it "B3" a second
time, after the ReLU bias sweep at eps = 1/64.

At book scale every row is derived from its paper-scale row by the rules in ``BOOK_RULES``,
applied by :func:`book_config` and nowhere else.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from ..core.config import SCALES, Config, ConfigError, preset
from .recipe import PAPER_DECAY, decay_for

__all__ = [
    "SweepSpec",
    "TABLE1",
    "ROW_FIELDS",
    "BOOK_RULES",
    "ENGINEERED",
    "book_config",
    "sweep_configs",
    "SWEEP_SCALES",
    "reduced_budget",
    "reduced_decay",
    "rule_decay",
    "sweep_values",
]

LRS = (0.001, 0.003, 0.005, 0.007, 0.01, 0.03)
BIASES = tuple(round(-2 + 0.3 * i, 10) for i in range(11))  # linspace(-2, 1, 11)
EPSES = tuple(2 ** -(1 + 0.4 * i) for i in range(11))  # 2^-linspace(1, 5, 11)
POWERS_OF_TEN = tuple(10.0**-i for i in range(1, 8))  # 1e-1 .. 1e-7
PAPER_KS = tuple(2**i for i in range(4, 11))  # 16 .. 1024 = N/32 .. 2N
BOOK_KS = tuple(2**i for i in range(4, 10))  # 16 .. 512 = N/4 .. 8N
# The transcription's code lists the GeLU row's rates as "0.001, 0.05, 0.01"; 0.05 is read as
# 0.005 (the list is otherwise increasing and 0.005 is one of the paper's rates).
GELU_LRS = (0.001, 0.005, 0.01)

# The fields of a Table 1 row, in the paper's column order.
ROW_FIELDS = (
    "task",
    "nonlinearity",
    "feature_dist",
    "N",
    "m",
    "k",
    "eps",
    "lr",
    "bias_decay",
    "init_bias",
    "l1",
)

# The book's own engineered recipe at the book preset: initial bias -1 and a total shrink of
# 12 (decay 0.3 at lr 0.01 over 8000 steps), on the decay study's plateau at that run length
# (chapter 3 checks it). It is not a row of the paper's table; the paper's rows imply shrinks
# from about 0.2 (E4) to about 59 (LR3 at lr 0.03).
ENGINEERED: dict[str, float] = {"init_bias": -1.0, "bias_decay": 0.3}

# How a paper-scale row becomes a book-scale row; book_config applies exactly these.
BOOK_RULES: dict[str, str] = {
    "N, m": "the book preset's 64 and 32 (paper 512 and 64): m/N = 1/2 instead of 1/8",
    "k": "k / 4 (1024 -> 256, 2048 -> 512), so k/N = 4 or 8 instead of 2 or 4; width sweeps "
    "(K0-K2) span 16..512 = N/4..8N instead of 16..1024 = N/32..2N",
    "eps": "eps * 4, so eps N is half the paper's as N is 1/8 of it (1/64 -> 1/16, B1-B5's "
    "1/16..1/256 -> 1/4..1/64); swept densities (E1-E4) keep their values",
    "lr": "a fixed rate of 0.003 (B1-B5, E1-E4) becomes the book's 0.01: in 8000 steps 0.003 "
    "leaves LR3's gain in monosemanticity near zero; swept rates and the fixed 0.005 "
    "(RG1) and 0.007 (K0-K2, D1) are kept",
    "bias_decay": "chapter 3's rule, ml.decay_for, for the book's 8000 steps of one half-cosine "
    f"(d = {decay_for(8000, 0.01, 'cosine'):.2g} at every rate), times the row's decay over the "
    "paper's usual 0.03, so the weaker decays of B2-B5, D1 and E2-E4 stay weaker; the total "
    "shrink d * lr * steps/2 then differs from the paper's",
    "batch, steps, schedule": "256, 8000 and one half-cosine (paper: 8192, 2^17 and a periodic "
    "cosine with T_max 512)",
    "task, activation, features, init bias, L1": "kept",
}
_BOOK_K_DIVISOR = 4
_BOOK_EPS_FACTOR = 4
_BOOK_LR = {0.003: 0.01}

_TRANSCRIPTION = (
    "Table 1 of arXiv:2211.09169 as transcribed in jbloomAus/toy_model_interpretability"
)


@dataclass(frozen=True)
class SweepSpec:
    """One batch (row) of Table 1.

    Attributes:
        name: the batch's label (``LR1``, ``B3``, ``G1``...).
        description: what the batch tests.
        row: every field of ``ROW_FIELDS`` at paper scale; a swept knob holds a tuple of values.
        book_values: swept values that differ at book scale (the widths of K0-K2).
        source: where the swept values come from.
    """

    name: str
    description: str
    row: dict[str, Any]
    book_values: dict[str, tuple] = field(default_factory=dict)
    source: str = _TRANSCRIPTION

    @property
    def swept(self) -> tuple[str, ...]:
        """The swept knobs, in column order (one, or two for G1)."""
        return tuple(f for f in ROW_FIELDS if isinstance(self.row[f], tuple))

    @property
    def var(self) -> str:
        """The last swept knob (the x axis of the batch's plots)."""
        return self.swept[-1]

    @property
    def fixed(self) -> dict[str, Any]:
        """The row's fields that are not swept."""
        return {f: v for f, v in self.row.items() if f not in self.swept}

    def points(self, scale: str = "paper") -> list[dict[str, Any]]:
        """Every combination of the swept values at ``scale``, in order."""
        grids = [
            self.book_values.get(f, self.row[f]) if scale == "book" else self.row[f]
            for f in self.swept
        ]
        return [dict(zip(self.swept, combo)) for combo in itertools.product(*grids)]


def _row(
    task="decoder",
    act="relu",
    features="uniform",
    k=1024,
    eps=1 / 64,
    lr=0.003,
    decay=0.0,
    bias=0.0,
    l1=0.0,
) -> dict[str, Any]:
    values = (task, act, features, 512, 64, k, eps, lr, decay, bias, l1)
    return dict(zip(ROW_FIELDS, values))


def _lr_and_bias_specs() -> list[SweepSpec]:
    neg = {"decay": 0.03, "bias": -1.0}
    specs = [
        SweepSpec(
            "LR1",
            "learning rate, zero initial bias",
            _row(lr=LRS),
            source="authors' file names: ReLU_lr_sweep_no_bias_equal",
        ),
        SweepSpec(
            "LR2",
            "learning rate, power-law features",
            _row(features="power_law", lr=LRS),
            source="authors' file names: ReLU_lr_sweep_no_bias_power_law",
        ),
        SweepSpec(
            "LR3",
            "learning rate, initial bias -1 with bias decay",
            _row(lr=LRS, **neg),
            source="authors' file names: ReLU_lr_sweep_negative_bias_equal "
            "(init_bias_-1.0_decay_0.03)",
        ),
    ]
    for i, (eps, decay) in enumerate(
        ((2**-4, 0.03), (2**-5, 0.003), (2**-6, 0.003), (2**-7, 0.003), (2**-8, 0.003)), start=1
    ):
        specs.append(
            SweepSpec(
                f"B{i}",
                f"initial bias, eps = 2^-{i + 3}, decay {decay}",
                _row(eps=eps, lr=0.003, decay=decay, bias=BIASES),
            )
        )
    specs += [
        SweepSpec(
            "LR4",
            "learning rate, initial bias -1 with decay, power-law features",
            _row(features="power_law", lr=LRS, **neg),
            source="authors' file names: ReLU_lr_sweep_negative_bias_power_law",
        ),
        SweepSpec(
            "G1",
            "GeLU: learning rate and initial bias, with decay "
            "(the transcription labels this row 'B3')",
            _row(act="gelu", lr=GELU_LRS, decay=0.03, bias=BIASES),
            source=_TRANSCRIPTION + " (its second 'B3'); rates from its code, see GELU_LRS",
        ),
    ]
    return specs


def _density_width_and_task_specs() -> list[SweepSpec]:
    neg = {"decay": 0.03, "bias": -1.0}
    specs = []
    for i, decay in enumerate((0.03, 0.01, 0.003, 0.001), start=1):
        specs.append(
            SweepSpec(
                f"E{i}",
                f"feature density, initial bias -1, decay {decay}",
                _row(eps=EPSES, lr=0.003, decay=decay, bias=-1.0),
            )
        )
    specs += [
        SweepSpec(
            "K0",
            "neurons per layer, zero initial bias",
            _row(k=PAPER_KS, lr=0.007),
            book_values={"k": BOOK_KS},
        ),
        SweepSpec(
            "K1",
            "neurons per layer, initial bias -1 with decay",
            _row(k=PAPER_KS, lr=0.007, **neg),
            book_values={"k": BOOK_KS},
        ),
        SweepSpec(
            "K2",
            "neurons per layer, initial bias -1 with decay, power-law features",
            _row(features="power_law", k=PAPER_KS, lr=0.007, **neg),
            book_values={"k": BOOK_KS},
        ),
        SweepSpec(
            "RG1",
            "L1 penalty on activations, initial bias -1 with decay",
            _row(lr=0.005, l1=POWERS_OF_TEN, **neg),
        ),
        SweepSpec(
            "RP1",
            "learning rate, random re-projector task",
            _row(task="reprojector", lr=LRS, **neg),
        ),
        SweepSpec(
            "LR5",
            "learning rate, absolute-value task with twice the neurons",
            _row(task="abs", k=2048, lr=LRS, **neg),
        ),
        SweepSpec(
            "D1",
            "bias decay, absolute-value task, initial bias -1",
            _row(task="abs", k=2048, lr=0.007, decay=POWERS_OF_TEN, bias=-1.0),
        ),
    ]
    return specs


def _specs() -> list[SweepSpec]:
    """Every row of Table 1, in the paper's order."""
    return _lr_and_bias_specs() + _density_width_and_task_specs()


TABLE1: dict[str, SweepSpec] = {s.name: s for s in _specs()}


def book_config(paper: Config, steps: int | None = None, swept: tuple[str, ...] = ()) -> Config:
    """The book-scale counterpart of a paper-scale config, by ``BOOK_RULES``.

    Args:
        paper: a paper-scale config (a point of a Table 1 row).
        steps: the run length the decay is rescaled for (default: the book preset's).
        swept: the row's swept knobs, whose values are kept as they are.
    """
    book = preset("book")
    steps = book.steps if steps is None else steps
    lr = paper.lr if "lr" in swept else _BOOK_LR.get(paper.lr, paper.lr)
    eps = paper.eps if "eps" in swept else paper.eps * _BOOK_EPS_FACTOR
    return book.replace(
        task=paper.task,
        nonlinearity=paper.nonlinearity,
        feature_dist=paper.feature_dist,
        k=paper.k // _BOOK_K_DIVISOR,
        eps=eps,
        lr=lr,
        bias_decay=rule_decay(paper.bias_decay, steps, lr, book.schedule),
        init_bias=paper.init_bias,
        l1=paper.l1,
        steps=steps,
        seed=paper.seed,
        instances=paper.instances,
    )


# Scales a Table 1 batch can run at: the paper's own, the book's (BOOK_RULES) and the paper's
# shape with a CPU budget (``paper-cpu``: the preset's batch and steps, the decay by the rule
# ``recipe.decay_for``).
SWEEP_SCALES = tuple(SCALES)


def reduced_budget(paper: Config, steps: int | None = None) -> Config:
    """A paper-scale point at the ``paper-cpu`` preset's budget: its batch and steps (or
    ``steps``), everything else kept, and the decay set by the book's rule for the shorter run
    (``reduced_decay``; a ``bias_decay`` override in ``sweep_configs`` replaces it afterwards)."""
    cpu = preset("paper-cpu")
    steps = cpu.steps if steps is None else steps
    return paper.replace(batch=cpu.batch, steps=steps, bias_decay=reduced_decay(paper, steps))


def reduced_decay(paper: Config, steps: int) -> float:
    """The decay of a paper-scale row cut to ``steps`` steps (its own rate and schedule):
    ``rule_decay``."""
    return rule_decay(paper.bias_decay, steps, paper.lr, paper.schedule)


def rule_decay(paper_decay: float, steps: int, lr: float, schedule: str) -> float:
    """The decay a row with the paper's decay ``paper_decay`` gets for a run of ``steps``
    steps at rate ``lr`` under ``schedule``: the rule's decay (``recipe.decay_for``) times
    ``paper_decay`` relative to the paper's usual 0.03 (so D1's and the E rows' weaker decays
    stay weaker); 0 stays 0. Book scale and the paper-cpu budget both set decays this way,
    at every rate of a sweep, also outside the rule's range (``DecayRule.lr_range``): the
    chapters show where it stops holding."""
    if paper_decay == 0:
        return 0.0
    return decay_for(steps, lr, schedule, outside="allow") * paper_decay / PAPER_DECAY


def sweep_values(name: str, scale: str = "book") -> tuple:
    """The values of batch ``name``'s swept knob ``var`` at ``scale`` (``book`` or ``paper``)."""
    spec = _spec(name)
    values = (
        spec.book_values.get(spec.var, spec.row[spec.var])
        if scale == "book"
        else spec.row[spec.var]
    )
    return tuple(values)


def _spec(name: str) -> SweepSpec:
    if name not in TABLE1:
        raise ConfigError("sweep", name, "must be one of " + ", ".join(TABLE1))
    return TABLE1[name]


def sweep_configs(
    name: str,
    scale: str = "book",
    seeds: int | None = None,
    values: tuple | None = None,
    **overrides: Any,
) -> list[Config]:
    """One Config per point of Table 1 batch ``name`` (every combination of its swept values).

    Args:
        name: ``LR1`` ... ``D1`` (see ``TABLE1``).
        scale: ``book``, ``paper`` or ``paper-cpu`` (``SWEEP_SCALES``).
        seeds: instances per point (seeds 0, 1, ...); default 3 at book scale, 1 otherwise.
        values: run these values of the batch's knob ``var`` instead of the row's (a subset
            of rates, or widths beyond the row's for K0-K2).
        overrides: further Config changes applied to every point (``device="cuda"``,
            ``steps=2000``...); at book and paper-cpu scale the decay is rescaled for the
            given steps.
    """
    spec = _spec(name)
    if scale not in SWEEP_SCALES:
        raise ConfigError("scale", scale, "must be one of " + ", ".join(SWEEP_SCALES))
    seeds = (3 if scale == "book" else 1) if seeds is None else seeds
    out = []
    for point in _points(spec, scale, values):
        at_paper = {f: v for f, v in point.items() if scale != "book" or f not in spec.book_values}
        cfg = preset("paper").replace(**spec.fixed, **at_paper)
        if scale == "book":
            cfg = book_config(cfg, overrides.get("steps"), spec.swept).replace(
                **{f: v for f, v in point.items() if f in spec.book_values}
            )
        elif scale == "paper-cpu":
            cfg = reduced_budget(cfg, overrides.get("steps"))
        out.append(cfg.replace(instances=seeds, **overrides))
    return out


def _points(spec: SweepSpec, scale: str, values: tuple | None) -> list[dict[str, Any]]:
    points = spec.points("book" if scale == "book" else "paper")
    if values is None:
        return points
    values = tuple(values)
    if not values or len(set(values)) != len(values):
        raise ConfigError("values", values, f"must be distinct values of {spec.var}, at least one")
    # Each chosen value once per combination of the other swept knobs (G1 sweeps two).
    keep = [p for p in points if p[spec.var] == points[0][spec.var]]
    return [{**p, spec.var: v} for p in keep for v in values]
