"""The paper's claims computed from stored sweep summaries, the same way at either scale.

Chapter 7 reads ``data/book`` and ``data/paper`` (see ``storage.save_summary``) and puts the
two scales side by side; these functions turn one summary into the numbers of one claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .interpretation import interpret
from .metrics import MONO_THRESHOLD, stats_from_sfa
from .storage import Summary, load_summary
from .sweeps import TABLE1, sweep_configs, total_shrink

__all__ = [
    "load_data",
    "by_value",
    "at_scale",
    "claim1",
    "claim2",
    "claim3",
    "claim4",
    "claim5",
    "abs_pairs",
    "BATCHES",
    "CLAIM_BATCHES",
    "SweepSeries",
    "sweep_series",
    "batch_sentence",
    "departures",
    "stored_stats",
    "metric_variants",
    "is_current",
    "MARGINS",
    "metric_variant_rows",
]

# The margins the book's claims are asserted with, set once: tests/test_science.py, the
# chapters' Checks cells and chapter 7 read them from here.
MARGINS = {
    "claim1_loss_spread": 0.10,  # converged rates reach losses within 10% of each other...
    "claim1_mono_span": 0.3,  # ...while mono/N differs by more than 0.3
}

BATCHES = tuple(TABLE1)  # every batch of Table 1, in the paper's order
CLAIM_BATCHES = ("LR1", "LR3", "K0", "K1", "LR5")  # the ones chapter 7's claims read


def load_data(root: str | Path) -> dict[str, dict[str, Summary]]:
    """{"book": {name: Summary}, "paper": {...}} for the summaries present under ``root``."""
    root = Path(root)
    out: dict[str, dict[str, Summary]] = {}
    for scale in ("book", "paper"):
        out[scale] = {}
        for name in BATCHES:
            path = root / scale / f"{name}.json"
            if path.exists():
                out[scale][name] = load_summary(path)
    return out


def by_value(summary: Summary, var: str, key: str, exclude=()) -> dict:
    """{value of ``var``: [metric of every seed]}, in sweep order."""
    table: dict = {}
    for c, m in zip(summary.configs, summary.metrics):
        value = getattr(c, var)
        if value in exclude:
            continue
        table.setdefault(value, []).append(m[key])
    return table


def claim1(lr1: Summary, exclude_lrs=()) -> dict:
    """Loss spread and monosemanticity span across learning rates (seed means)."""
    loss = {
        lr: float(np.mean(v)) for lr, v in by_value(lr1, "lr", "final_loss", exclude_lrs).items()
    }
    mono = {
        lr: float(np.mean(v))
        for lr, v in by_value(lr1, "lr", "mono_per_feature", exclude_lrs).items()
    }
    return {
        "loss": loss,
        "mono_per_feature": mono,
        "loss_spread": max(loss.values()) / min(loss.values()) - 1,
        "mono_span": max(mono.values()) - min(mono.values()),
    }


def claim2(lr1: Summary) -> dict:
    """Mean bias of monosemantic and of polysemantic neurons at each learning rate."""

    def mean(v):
        v = [x for x in v if x is not None]
        return float(np.mean(v)) if v else None

    return {
        "mono": {lr: mean(v) for lr, v in by_value(lr1, "lr", "mean_bias_mono").items()},
        "poly": {lr: mean(v) for lr, v in by_value(lr1, "lr", "mean_bias_poly").items()},
    }


def claim3(lr1: Summary, lr3: Summary) -> dict:
    """Monosemanticity and loss of the engineered sweep against the baseline, per rate: seed
    means as (baseline, engineered) pairs, and under ``seeds`` every seed's mono/N."""
    out = {}
    for key in ("mono_per_feature", "final_loss"):
        base, eng = by_value(lr1, "lr", key), by_value(lr3, "lr", key)
        out[key] = {
            lr: (float(np.mean(base[lr])), float(np.mean(eng[lr]))) for lr in base if lr in eng
        }
    base, eng = by_value(lr1, "lr", "mono_per_feature"), by_value(lr3, "lr", "mono_per_feature")
    out["seeds"] = {lr: (list(base[lr]), list(eng[lr])) for lr in base if lr in eng}
    return out


def claim4(k_sweep: Summary) -> dict:
    """Features covered and monosemantic neurons per feature against width k."""
    return {
        key: {k: float(np.mean(v)) for k, v in by_value(k_sweep, "k", key).items()}
        for key in ("features_covered", "mono_per_feature", "final_loss")
    }


def claim5(summary: Summary, instance: int) -> dict:
    """The reverse-engineering report of a representative instance with stored weights."""
    return interpret(summary.run(instance)).to_dict()


def abs_pairs(lr5: Summary) -> list[dict]:
    """For each abs-task instance: features with a monosemantic neuron for +f_j, for -f_j, both
    (the book's signed probe: the paper's +e_j alone cannot see a -f_j neuron)."""
    return [
        {"lr": c.lr, "seed": c.seed, **stored_stats(lr5, i, "book").sign_pairs(0)}
        for i, c in enumerate(lr5.configs)
    ]


def at_scale(found: dict[str, Summary], names, claim, *args, **kwargs):
    """``claim(*summaries, *args)`` for the batches ``names`` of one scale, or None when any of
    them has not been produced yet (how chapter 7 leaves a column empty)."""
    names = [names] if isinstance(names, str) else list(names)
    if not all(n in found for n in names):
        return None
    return claim(*[found[n] for n in names], *args, **kwargs)


def is_current(summary: Summary, seeds: int | None = None) -> bool:
    """Whether a stored batch holds exactly the configs ``sweep_configs`` gives today (at its
    scale, with as many seeds as it stored), so a change to Table 1 or to the book's rules
    shows up as a stale file."""
    configs = summary.configs
    seeds = seeds or len({c.seed for c in configs})
    want = [
        c
        for cfg in sweep_configs(summary.meta["name"], summary.meta["scale"], seeds=seeds)
        for c in cfg.expand()
    ]
    return [c.replace(device="cpu") for c in configs] == [c.replace(device="cpu") for c in want]


# -- every batch, the paper's way: metrics against the swept knob, seeds as bands ----------------


@dataclass
class SweepSeries:
    """One batch's metrics against its swept knob.

    Attributes:
        name: the batch.
        var: the knob on the x axis; ``x`` its values.
        series: {label: {metric: [len(x), seeds] array}}; one series, or one per learning rate
            for G1 (which sweeps lr and initial bias).
    """

    name: str
    var: str
    x: list
    series: dict[str, dict[str, np.ndarray]]


SERIES_METRICS = {
    "loss": "final_loss",
    "mono / N": "mono_per_feature",
    "mono / k": "mono_per_neuron",
}


def sweep_series(summary: Summary) -> SweepSeries:
    """Loss, mono/N and mono/k of every point of a stored batch (see ``SweepSeries``)."""
    spec = TABLE1[summary.meta["name"]]
    outer = [v for v in spec.swept if v != spec.var]
    configs, metrics = summary.configs, summary.metrics
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(configs):
        label = ", ".join(f"{v} {getattr(c, v):g}" for v in outer) or spec.name
        groups.setdefault(label, []).append(i)
    x = sorted({getattr(configs[i], spec.var) for i in range(len(configs))})
    series = {}
    for label, idx in groups.items():
        series[label] = {}
        for title, key in SERIES_METRICS.items():
            table = [
                [metrics[i][key] for i in idx if getattr(configs[i], spec.var) == v] for v in x
            ]
            series[label][title] = np.array(table, dtype=float)
    return SweepSeries(spec.name, spec.var, x, series)


def batch_sentence(s: SweepSeries) -> str:
    """One sentence, generated from the numbers, on what a stored batch shows."""
    parts = []
    for label, m in s.series.items():
        mono, loss = m["mono / N"].mean(1), m["loss"].mean(1)
        peak = int(np.argmax(mono))
        trend = (
            "rises"
            if mono[-1] > mono[0] + 0.1
            else "falls"
            if mono[-1] < mono[0] - 0.1
            else "stays level"
        )
        head = f"at {label}, " if len(s.series) > 1 else ""
        parts.append(
            f"{head}mono/N {trend} from {mono[0]:.2f} ({s.var} {s.x[0]:.3g}) to {mono[-1]:.2f} "
            f"({s.var} {s.x[-1]:.3g}), peaking at {mono[peak]:.2f} ({s.var} {s.x[peak]:.3g}), "
            f"while the loss spans {loss.min():.3f} to {loss.max():.3f}"
        )
    return f"{s.name}: " + "; ".join(parts) + "."


def _span(values) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.3g}" if np.isclose(lo, hi) else f"{lo:.3g}-{hi:.3g}"


def departures(name: str) -> dict[str, tuple[str, str]]:
    """How batch ``name`` differs between the paper's scale and the book's: {quantity: (paper,
    book)}, generated from ``sweep_configs`` (ranges where the batch sweeps a quantity)."""
    rows = {}
    for scale in ("paper", "book"):
        cs = sweep_configs(name, scale, seeds=1)
        quantities = {
            "N": [c.N for c in cs],
            "m": [c.m for c in cs],
            "k/N": [c.k / c.N for c in cs],
            "m/N": [c.m / c.N for c in cs],
            "eps N": [c.eps * c.N for c in cs],
            "lr": [c.lr for c in cs],
            "batch": [c.batch for c in cs],
            "steps": [c.steps for c in cs],
            "samples": [c.batch * c.steps for c in cs],
            "total shrink": [total_shrink(c) for c in cs],
        }
        for q, values in quantities.items():
            rows.setdefault(q, []).append(_span(values))
        rows.setdefault("schedule", []).append(_SCHEDULES[cs[0].schedule])
    return {q: tuple(v) for q, v in rows.items()}


_SCHEDULES = {
    "paper": "periodic cosine (T_max 512)",
    "cosine": "one half-cosine",
    "constant": "constant",
}


# -- the metric, the paper's way and the book's -------------------------------------------------


def stored_stats(summary: Summary, instance: int, variant: str = "paper"):
    """NeuronStats of one stored instance under a metric variant (see ``metrics``): the stored
    single-feature activations hold both signs for the abs task, so either can be read back."""
    import torch

    c = summary.configs[instance]
    sfa = torch.from_numpy(summary.array("sfa", instance).astype(np.float32))[None]
    bias = torch.from_numpy(summary.array("bias", instance).astype(np.float32))[None]
    if variant == "paper":
        sfa = sfa[..., : c.N]
    book = variant == "book"
    return stats_from_sfa(sfa, bias, c.N, MONO_THRESHOLD, clamp=book and c.nonlinearity != "relu")


def metric_variants(summary: Summary, instance: int) -> dict[str, float]:
    """Monosemantic neurons per feature of one stored instance under the paper's metric and
    under the book's variant."""
    c = summary.configs[instance]
    return {
        v: float(stored_stats(summary, instance, v).mono[0].sum()) / c.N for v in ("paper", "book")
    }


def metric_variant_rows(summary: Summary, seed: int = 0) -> list[dict]:
    """For every instance of ``seed`` in a stored batch: its swept values and its mono/N under
    the paper's metric and under the book's variant."""
    spec = TABLE1[summary.meta["name"]]
    rows = []
    for i, c in enumerate(summary.configs):
        if c.seed == seed:
            rows.append({**{v: getattr(c, v) for v in spec.swept}, **metric_variants(summary, i)})
    return rows
