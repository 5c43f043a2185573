"""The numbers chapter 7's sentences state, by name, computed from the stored data at the
paper's shape: each chapter glues them (``book.glue``) so that no sentence carries a typed
number. Names read ``<what>_<value>_<metric>``, for example ``LR3_0.01_mono`` (the seed
mean of LR3's monosemantic neurons per feature at lr 0.01)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.config import preset
from ..store.results import Results
from .claims import Claim
from .recipe import decay_for, total_shrink
from .table1 import ENGINEERED, TABLE1, sweep_configs

__all__ = [
    "FACT_METRICS",
    "batch_facts",
    "runs_facts",
    "claim2_facts",
    "claim3_facts",
    "claim5_facts",
    "budget_facts",
    "peak_facts",
    "setting_facts",
    "rule_facts",
]

# The short names of the metrics a fact can state.
FACT_METRICS = {
    "loss": "final_loss",
    "mono": "mono_per_feature",
    "covered": "features_covered",
    "dead": "dead_neurons",
    "bias_mono": "mean_bias_mono",
    "bias_poly": "mean_bias_poly",
}


def batch_facts(prefix: str, results: Results, var: str = "lr") -> dict[str, float]:
    """Seed means of ``FACT_METRICS`` at every value of ``var``: ``<prefix>_<value>_<metric>``.
    A metric that is undefined for every seed (a mean bias with no neuron of the class) is
    left out."""
    out = {}
    for value in results.values(var):
        idx = results.where(**{var: value})
        for short, key in FACT_METRICS.items():
            found = [v for v in results.metric(key)[idx] if v is not None and np.isfinite(v)]
            if found:
                out[f"{prefix}_{value:g}_{short}"] = float(np.mean(found))
    return out


def runs_facts(runs: dict[str, Results], var: str = "lr") -> dict[str, float]:
    """``batch_facts`` of every entry of ``runs``, prefixed by its key."""
    out = {}
    for key, results in runs.items():
        out.update(batch_facts(key, results, var))
    return out


def claim2_facts(claim: Claim, prefix: str = "claim2") -> dict[str, float]:
    """Claim 2's ranges over the rates: the lowest and highest mean bias of the monosemantic
    and of the polysemantic neurons (``<prefix>_mono_lo`` ... ``<prefix>_poly_hi``)."""
    out = {}
    for what in ("mono", "poly"):
        values = [v for v in claim.numbers[what].values() if v is not None and np.isfinite(v)]
        if values:
            out[f"{prefix}_{what}_lo"], out[f"{prefix}_{what}_hi"] = min(values), max(values)
    return out


def claim3_facts(claim: Claim, prefix: str = "claim3") -> dict[str, float]:
    """Claim 3's numbers at each rate it holds: the baseline's and the recipe's mono/N, their
    ratio, and the recipe's loss over the baseline's."""
    out = {}
    mono, loss = claim.numbers["mono_per_feature"], claim.numbers["final_loss"]
    for lr, (base, eng) in mono.items():
        out[f"{prefix}_{lr:g}_base"] = base
        out[f"{prefix}_{lr:g}_eng"] = eng
        out[f"{prefix}_{lr:g}_ratio"] = eng / base if base else float("inf")
        out[f"{prefix}_{lr:g}_loss_ratio"] = loss[lr][1] / loss[lr][0]
    return out


def claim5_facts(claim: Claim, prefix: str = "claim5") -> dict[str, Any]:
    """Claim 5's numbers for each set of the report (``always_on``, ``residual_block``):
    neurons, singular values near 1, the cosine to the task's linear target."""
    out: dict[str, Any] = {}
    for key, n in claim.numbers.items():
        for what in ("neurons", "near_one", "rank_bound", "cosine_target", "ablation_loss_ratio"):
            if n.get(what) is not None:
                out[f"{prefix}_{key}_{what}"] = n[what]
    return out


def budget_facts(study: dict[int, dict[str, Results]]) -> dict[str, float]:
    """``batch_facts`` of LR1 and LR3 at every budget of the study:
    ``<batch>_<steps>_<lr>_<metric>``."""
    out = {}
    for steps, found in study.items():
        for name, results in found.items():
            out.update(batch_facts(f"{name}_{steps}", results))
    return out


def peak_facts(prefix: str, results: Results, var: str, metric: str = "mono") -> dict[str, float]:
    """Where a batch's seed-mean ``metric`` (a ``FACT_METRICS`` short name) peaks along
    ``var`` and where the sweep ends: ``<prefix>_peak``, ``<prefix>_peak_at``,
    ``<prefix>_last``, ``<prefix>_last_at``."""
    known = {v: m for v, m in results.mean_by(var, FACT_METRICS[metric]).items() if m is not None}
    values = sorted(known)
    means = [known[v] for v in values]
    peak = int(np.argmax(means))
    return {
        f"{prefix}_peak": means[peak],
        f"{prefix}_peak_at": float(values[peak]),
        f"{prefix}_last": means[-1],
        f"{prefix}_last_at": float(values[-1]),
    }


def setting_facts(cpu_lr1: Results, book_k0: Results) -> dict[str, float]:
    """Chapter 7's setting: the paper's training PFLOP a model (``paper_pflop``, its LR1 row),
    the zero predictor's loss at the paper's shape (``zero_loss``) and minutes a model on the
    CPU (``cpu_minutes``), both from the stored paper-cpu LR1, and book-scale K0's coverage at
    k = 8N (``book_K0_8N_covered``)."""
    paper = sweep_configs("LR1", "paper", seeds=1)[0]
    return {
        "paper_pflop": paper.flops_per_sample * paper.batch * paper.steps / 1e15,
        "zero_loss": float(cpu_lr1.metric("zero_loss").mean()),
        "cpu_minutes": cpu_lr1.meta["train_seconds"] / len(cpu_lr1) / 60,
        "book_K0_8N_covered": book_k0.mean("features_covered", k=8 * book_k0.configs[0].N),
    }


def rule_facts() -> dict[str, float]:
    """The decay rule as the book applies it: the rule's d at book scale (``rule_book_d``),
    the total shrinks it gives book-scale LR3 across its rates (``book_LR3_S_min/max``), the
    range of total shrinks the paper's own rows imply (``table1_S_min/max``, rows with a fixed
    nonzero decay; D1 sweeps it)
    and the book's own recipe's decay and shrink (``recipe_d``, ``recipe_S``)."""
    book = preset("book")
    lr3 = [total_shrink(c) for c in sweep_configs("LR3", "book", seeds=1)]
    paper = [
        total_shrink(c)
        for name, spec in TABLE1.items()
        if "bias_decay" not in spec.swept
        for c in sweep_configs(name, "paper", seeds=1)
        if c.bias_decay > 0
    ]
    return {
        "rule_book_d": decay_for(book.steps, book.lr, book.schedule),
        "book_LR3_S_min": min(lr3),
        "book_LR3_S_max": max(lr3),
        "table1_S_min": min(paper),
        "table1_S_max": max(paper),
        "recipe_d": ENGINEERED["bias_decay"],
        "recipe_S": total_shrink(book.replace(**ENGINEERED)),
    }
