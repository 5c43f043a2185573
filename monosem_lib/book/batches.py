"""The batches of runs the chapters train or read, by name, at either scale.

Chapters call these instead of building config lists themselves, so two chapters that need
the same runs ask for the identical batch and the result cache (``store.cache.load_or_train``)
trains it once. At book scale each batch is sized so a chapter runs in about a minute on two
CPU cores; at paper scale they follow the paper's Table 1 more fully (``paper.table1``).
"""

from __future__ import annotations

from pathlib import Path

from ..core.config import Config, preset
from ..core.training import Run, group_by_structure
from ..paper.recipe import decay_for_shrink
from ..paper.table1 import ENGINEERED, sweep_configs, sweep_values
from ..store.cache import load_or_train
from ..store.results import Results

__all__ = [
    "LR_SUBSET",
    "lr_sweep",
    "bias_factorial",
    "live_grid",
    "bias_shrink_grid",
    "GRID_SHRINKS",
    "LIVE_BIASES",
    "LIVE_EPSES",
    "LIVE_L1S",
    "LIVE_SHRINKS",
    "width_sweep",
    "BOOK_WIDTHS",
    "engineered_model",
    "other_tasks",
    "abs_baseline",
    "recipe_groups",
    "width_results",
    "width_runs",
    "folder_size",
    "decay_pair",
    "nonlinearity_groups",
    "book_batches",
    "recipe_baseline",
    "B1_SHRINK",
    "GROUP_NAMES",
]

LR_SUBSET = (0.003, 0.01, 0.03)  # three of the paper's six rates, at book scale
# B1's total shrink (decay 0.03 at lr 0.003 over 2^16 steps), about 5.9: the slider grid's.
# It is one row's shrink, not "the paper's": the rows of Table 1 span about 0.2 to 59.
B1_SHRINK = 0.03 * 0.003 * 2**16


def _rates(scale: str, name: str = "LR1") -> tuple:
    return LR_SUBSET if scale == "book" else sweep_values(name, scale)


def lr_sweep(scale: str = "book") -> list[Config]:
    """Chapter 2: LR1 (three rates x three seeds at book scale) and LR2 at the book's rate;
    the full six rates of both batches at paper scale."""
    lr1 = [c for c in sweep_configs("LR1", scale) if c.lr in _rates(scale)]
    lr2_rates = (preset(scale).lr,) if scale == "book" else _rates(scale, "LR2")
    lr2 = [c.replace(instances=1) for c in sweep_configs("LR2", scale) if c.lr in lr2_rates]
    return lr1 + lr2


def engineered_model(scale: str = "book", seeds: int = 1) -> Config:
    """The engineered recipe at ``scale``: initial bias -1 with bias decay (book: decay 0.3,
    a total shrink of 12; paper: decay 0.03 as in the paper)."""
    if scale == "book":
        return preset("book", instances=seeds, **ENGINEERED)
    return preset(scale, init_bias=-1.0, bias_decay=0.03, instances=seeds)


def bias_factorial(scale: str = "book") -> list[Config]:
    """Chapter 3: the engineered recipe (three seeds at book scale) and initial bias -1
    without decay. The baseline is chapter 2's ``lr_sweep``; the paper's LR3 sweep is stored
    in ``data/book`` (``make data``)."""
    engineered = engineered_model(scale, 3 if scale == "book" else 1)
    return [engineered, preset(scale).replace(init_bias=-1.0, instances=1)]


# The live-preset grid behind chapter 3's bias slider and its small experiments.
LIVE_BIASES = (-2.0, -1.5, -1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5)
LIVE_EPSES = (1 / 4, 1 / 8, 1 / 32, 1 / 64)
LIVE_L1S = (1e-3, 1e-2)
LIVE_SHRINKS = (0.0, 12.0)
GRID_SHRINKS = (0.0, 2.0, round(B1_SHRINK, 1), 12.0, 24.0)  # chapter 3's precomputed grid


def live_grid() -> list[Config]:
    """Chapter 3, at the ``live`` preset in one batch: every initial bias with B1's
    shrink (the bias slider's frames), the baseline, other densities and shrinks at initial
    bias -1, and L1 penalties instead of bias decay."""
    live = preset("live")
    b1_decay = decay_for_shrink(B1_SHRINK, live.lr, live.steps)
    configs = [live.replace(init_bias=b, bias_decay=b1_decay) for b in LIVE_BIASES]
    configs.append(live)  # initial bias 0 without decay: the slider's starting point
    configs += [live.replace(init_bias=-1.0, bias_decay=b1_decay, eps=e) for e in LIVE_EPSES]
    configs += [
        live.replace(init_bias=-1.0, bias_decay=decay_for_shrink(s, live.lr, live.steps))
        for s in LIVE_SHRINKS
        if s != B1_SHRINK
    ]
    configs += [live.replace(l1=v) for v in LIVE_L1S]
    return configs


def bias_shrink_grid() -> list[Config]:
    """Chapter 3's precomputed slider, at the ``live`` preset in one batch: every initial bias
    of ``LIVE_BIASES`` at every total shrink of ``GRID_SHRINKS`` (shrink-major)."""
    live = preset("live")
    return [
        live.replace(init_bias=b, bias_decay=decay_for_shrink(s, live.lr, live.steps))
        for s in GRID_SHRINKS
        for b in LIVE_BIASES
    ]


BOOK_WIDTHS = (32, 64, 128, 256, 512)  # N/2 .. 8N


def width_sweep(scale: str = "book") -> list[Config]:
    """Chapter 4: K0 (zero bias) and K1 (engineered) at every width, one pass per width.

    At book scale the widths are N/2 .. 8N with one seed, except the book preset's own width
    (k = 4N), which chapters 2 and 3 already trained with three seeds (``lr_sweep`` and
    ``bias_factorial``). At paper scale: K0, K1 and K2 at the paper's seven widths.
    """
    if scale == "paper":
        return [c for name in ("K0", "K1", "K2") for c in sweep_configs(name, scale)]
    book = preset("book")
    return [
        c
        for k in BOOK_WIDTHS
        if k != book.k
        for c in (book.replace(k=k), engineered_model("book").replace(k=k))
    ]


def other_tasks(scale: str = "book") -> dict[str, list[Config]]:
    """Chapter 6, one pass each (task and nonlinearity fix shapes and code paths).

    At book scale: the re-projector with and without the recipe; the abs task at k = 8N
    (each feature needs a neuron per sign) at lr 0.03 without the recipe and with LR3's
    decay; GeLU with and without the recipe and SoLU with it. Power-law features come from
    ``lr_sweep``. At paper scale: RP1, LR5, G1 and the recipe with SoLU.
    """
    if scale == "paper":
        return {
            "reprojector": sweep_configs("RP1", scale),
            "abs": sweep_configs("LR5", scale),
            "gelu": sweep_configs("G1", scale),
            "solu": [engineered_model(scale).replace(nonlinearity="solu")],
        }
    book, engineered = preset("book"), engineered_model("book")
    lr3_fast = next(c for c in sweep_configs("LR3", "book") if c.lr == 0.03).replace(instances=1)
    return {
        "reprojector": [book.replace(task="reprojector"), engineered.replace(task="reprojector")],
        "abs": [book.replace(task="abs", k=512, lr=0.03), lr3_fast.replace(task="abs", k=512)],
        "gelu": [book.replace(nonlinearity="gelu"), engineered.replace(nonlinearity="gelu")],
        "solu": [engineered.replace(nonlinearity="solu")],
    }


def abs_baseline(scale: str = "book", lr: float = 0.01) -> list[Config]:
    """Chapter 6: the abs model at k = 8N without the recipe at rate ``lr``, three seeds, to
    set beside the stored LR5 batch (the recipe with the rule's decay at every rate)."""
    base = preset(scale).replace(task="abs", k=8 * preset(scale).N, lr=lr)
    return [base.replace(seed=s) for s in (0, 1, 2)]


# -- chapter 3: the recipe, the live grid and what it shows ------------------------------------

GROUP_NAMES = {
    "baseline": "baseline (bias 0, no decay)",
    "no decay": "initial bias -1, no decay",
    "engineered": "initial bias -1 + bias decay",
}


def recipe_groups(lr_sweep: Results, factorial: Results, scale: str = "book") -> dict[str, Results]:
    """Chapter 3's three groups at the scale's rate, as Results: ``baseline`` (chapter 2's
    uniform runs), ``no decay`` (initial bias -1 alone) and ``engineered`` (the recipe)."""
    eng = engineered_model(scale)
    return {
        "baseline": lr_sweep.filter(lr=eng.lr, feature_dist="uniform"),
        "no decay": factorial.filter(init_bias=-1.0, bias_decay=0.0),
        "engineered": factorial.filter(init_bias=-1.0, bias_decay=eng.bias_decay, lr=eng.lr),
    }


# -- chapter 4: width ---------------------------------------------------------------------------


def width_results(scale: str = "book") -> dict[str, Results]:
    """Chapter 4's sweep as {"baseline": Results, "engineered": Results} over every width,
    trained (or loaded from the cache) one pass per width. At book scale the preset's own
    width comes with three seeds from chapters 2 and 3 (``recipe_baseline``, ``bias_factorial``)."""
    eng = engineered_model(scale)
    parts = [
        Results.from_run(load_or_train(g), scale=scale)
        for g in group_by_structure(width_sweep(scale))
    ]
    base = [p.filter(init_bias=0.0, feature_dist="uniform") for p in parts]
    engineered = [p.filter(init_bias=eng.init_bias, feature_dist="uniform") for p in parts]
    if scale == "book":
        groups = recipe_groups(*book_batches(scale), scale)
        base.append(groups["baseline"])
        engineered.append(groups["engineered"])
    by_k = lambda rs: sorted(rs, key=lambda r: r.configs[0].k)
    return {"baseline": Results.concat(by_k(base)), "engineered": Results.concat(by_k(engineered))}


def width_runs(results: Results, seed: int = 0) -> dict[int, Run]:
    """{k: one-instance Run} of ``seed`` at every width (for ``widgets.width_explorer``)."""
    return {k: results.run(results.where(k=k, seed=seed)[0]) for k in sorted(results.values("k"))}


def folder_size(path: str | Path) -> int:
    """Bytes in the files under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def decay_pair(factorial: Results, scale: str = "book") -> list[int]:
    """Indices into ``bias_factorial``'s Results of initial bias -1 without decay and of the
    recipe's seed 0 (chapter 3's training curves)."""
    eng = engineered_model(scale)
    no_decay = factorial.where(init_bias=eng.init_bias, bias_decay=0.0)[0]
    return [no_decay, factorial.where(init_bias=eng.init_bias, bias_decay=eng.bias_decay)[0]]


def nonlinearity_groups(
    results: dict[str, Results], relu: dict[str, Results]
) -> dict[tuple[str, str], Results]:
    """Chapter 6's comparison groups {(nonlinearity, recipe): Results}: the ReLU decoder's
    (``recipe_groups``) beside GeLU and SoLU from ``other_tasks`` (``results``)."""
    gelu = results["gelu"]
    return {
        ("relu", "baseline"): relu["baseline"],
        ("relu", "recipe"): relu["engineered"],
        ("gelu", "baseline"): gelu.filter(init_bias=0.0),
        ("gelu", "recipe"): gelu.filter(init_bias=-1.0),
        ("solu", "recipe"): results["solu"],
    }


def recipe_baseline(scale: str = "book") -> list[Config]:
    """The part of chapter 2's ``lr_sweep`` the later chapters read: LR1 at the recipe's rate
    (three seeds at book scale) and LR2 (the power-law runs). A batch of its own, so that a
    chapter opened alone does not train chapter 2's other rates. On a CPU an instance trains
    to the same bits in either batch (``tests/test_experiments.py``), so these are chapter 2's
    runs, number for number."""
    rate = engineered_model(scale).lr
    return [c for c in lr_sweep(scale) if c.lr == rate or c.feature_dist == "power_law"]


def book_batches(scale: str = "book") -> tuple[Results, Results]:
    """The runs at the preset's width that chapters 3, 4 and 6 compare, as Results trained or
    loaded from the cache: the baseline (``recipe_baseline``, chapter 2's runs at the
    recipe's rate and the power-law runs) and the recipe (``bias_factorial``)."""
    load = lambda batch: Results.from_run(load_or_train(batch(scale)), scale=scale)
    return load(recipe_baseline), load(bias_factorial)
