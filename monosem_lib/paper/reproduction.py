"""Stored sweeps of Table 1: loading them by scale, checking they are current, and the views
the appendix and chapter 8 draw (every batch against its knob, the departures from the
paper, the budget study, the metric variants). The claims themselves are in ``claims``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..store.results import Results, load_results
from . import claims
from .claims import Claim
from .table1 import SWEEP_SCALES, TABLE1, sweep_configs, total_shrink

__all__ = [
    "load_data",
    "at_scale",
    "abs_pairs",
    "BATCHES",
    "CLAIM_BATCHES",
    "STUDY_STEPS",
    "load_budget_study",
    "SweepSeries",
    "sweep_series",
    "batch_sentence",
    "departures",
    "metric_variants",
    "is_current",
    "metric_variant_rows",
    "CLAIM_READING",
    "scale_claims",
    "claims_table",
    "verdict_mismatches",
    "budget_rows",
    "budget_claims",
    "budget_verdicts",
    "provenance_frame",
    "abs_frame",
    "stale_files",
    "DECAY_RATES",
    "decay_runs",
    "decay_frame",
    "EXPECTED_VERDICTS",
    "EXPECTED_BUDGET_VERDICTS",
    "EXPECTED_PAPER_DECAY",
]

if TYPE_CHECKING:
    import pandas as pd

BATCHES = tuple(TABLE1)  # every batch of Table 1, in the paper's order
CLAIM_BATCHES = ("LR1", "LR3", "K0", "K1", "LR5")  # the ones chapter 8's claims read


# The budget study at the paper's shape on a CPU: LR1 and LR3 at two rates, trained for these
# step counts at batch 1024 (2^20 .. 2^23 samples; 2^12 steps is the paper-cpu preset itself,
# read from the main batches). See ``make data-paper-cpu``.
STUDY_STEPS = (1024, 2048, 4096, 8192)
STUDY_RATES = (0.003, 0.01)


def load_data(root: str | Path) -> dict[str, dict[str, Results]]:
    """{scale: {batch name: Results}} for the summaries present under ``root/<scale>/``, for
    every scale of ``sweeps.SWEEP_SCALES`` (an absent scale maps to {})."""
    root = Path(root)
    out: dict[str, dict[str, Results]] = {}
    for scale in SWEEP_SCALES:
        out[scale] = {}
        for name in BATCHES:
            path = root / scale / f"{name}.json"
            if path.exists():
                out[scale][name] = load_results(path)
    return out


def load_budget_study(root: str | Path) -> dict[int, dict[str, Results]]:
    """{steps: {"LR1": Results, "LR3": Results}} of the budget study under
    ``root/paper-cpu``: the study's own files and, for the preset's steps, the main batches
    restricted to the study's rates. Budgets not produced yet are left out."""
    root = Path(root) / "paper-cpu"
    out: dict[int, dict[str, Results]] = {}
    for steps in STUDY_STEPS:
        folder = (
            root
            if steps == sweep_configs("LR1", "paper-cpu")[0].steps
            else root / "budget" / f"steps-{steps}"
        )
        found = {
            n: load_results(folder / f"{n}.json")
            for n in ("LR1", "LR3")
            if (folder / f"{n}.json").exists()
        }
        if len(found) == 2:
            out[steps] = {
                n: r.select(i for lr in STUDY_RATES for i in r.where(lr=lr))
                for n, r in found.items()
            }
    return out


def abs_pairs(lr5: Results) -> list[dict]:
    """For each abs-task instance: features with a monosemantic neuron for +f_j, for -f_j, both
    (the book's signed probe: the paper's +e_j alone cannot see a -f_j neuron)."""
    return [
        {"lr": c.lr, "seed": c.seed, **lr5.stats(i, "book").sign_pairs(0)}
        for i, c in enumerate(lr5.configs)
    ]


def at_scale(
    found: dict[str, Results],
    names: str | Sequence[str],
    claim: Callable,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """``claim(*summaries, *args)`` for the batches ``names`` of one scale, or None when any of
    them has not been produced yet (how chapter 8 leaves a column empty)."""
    names = [names] if isinstance(names, str) else list(names)
    if not all(n in found for n in names):
        return None
    return claim(*[found[n] for n in names], *args, **kwargs)


def is_current(results: Results) -> bool:
    """Whether a stored batch holds exactly the configs ``sweep_configs`` gives today for its
    name and scale, with the seeds, ``values`` and overrides (``steps``, ``schedule``,
    ``bias_decay``) it records, made by
    code that produces today's numbers (``version.RESULTS_VERSION``). A change to Table 1, to
    the book's rules or to the numbers shows up as a stale file."""
    from ..version import RESULTS_VERSION

    if results.meta.get("results_version") != RESULTS_VERSION:
        return False
    have = [c.replace(device="cpu") for c in results.configs]
    values = results.meta.get("values")
    keys = ("steps", "schedule", "bias_decay")
    overrides = {k: results.meta[k] for k in keys if results.meta.get(k) is not None}
    try:
        want = sweep_configs(
            results.name,
            results.scale,
            seeds=len(results.seeds),
            values=None if values is None else tuple(values),
            **overrides,
        )
    except ValueError:
        return False
    return have == [c.replace(device="cpu") for cfg in want for c in cfg.expand()]


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


def sweep_series(results: Results) -> SweepSeries:
    """Loss, mono/N and mono/k of every point of a stored batch (see ``SweepSeries``)."""
    spec = TABLE1[results.name]
    outer = [v for v in spec.swept if v != spec.var]
    configs, metrics = results.configs, results.metrics
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


def departures(
    name: str, scales: tuple[str, ...] = ("paper", "book")
) -> dict[str, tuple[str, ...]]:
    """How batch ``name`` differs between scales: {quantity: (value at each of ``scales``)},
    generated from ``sweep_configs`` (ranges where the batch sweeps a quantity)."""
    rows = {}
    for scale in scales:
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


def metric_variants(results: Results, instance: int) -> dict[str, float]:
    """Monosemantic neurons per feature of one instance under the paper's metric and under
    the book's variant."""
    N = results.configs[instance].N
    return {v: float(results.stats(instance, v).mono[0].sum()) / N for v in ("paper", "book")}


def metric_variant_rows(results: Results, seed: int = 0) -> list[dict]:
    """For every instance of ``seed`` in a stored batch: its swept values and its mono/N under
    the paper's metric and under the book's variant."""
    spec = TABLE1[results.name]
    rows = []
    for i, c in enumerate(results.configs):
        if c.seed == seed:
            rows.append({**{v: getattr(c, v) for v in spec.swept}, **metric_variants(results, i)})
    return rows


# -- the claims at each scale (chapter 8) ---------------------------------------------------------

# How each scale's stored batches are read for the five claims: rates left out of claim 1
# because they have not converged at that budget, the rates claim 3 is judged at, the width
# batch of claim 4, and the stored model with weights claim 5 reverse-engineers (file under the
# scale's folder, instance). At the paper's shape on a CPU the LR3 row's own model has no
# monosemantic neuron at all (its rescaled decay pins the biases at 0), so claim 5 reads the
# LR3 model trained with the paper's own decay coefficient at lr 0.03.
CLAIM_READING: dict[str, dict[str, Any]] = {
    "book": {
        "exclude_lrs": (0.001,),
        "claim3_rates": (0.01,),
        "width": "K0",
        "representative": ("LR3.json", 12),
    },
    "paper-cpu": {
        "exclude_lrs": (),
        "claim3_rates": (0.01, 0.03),
        "width": "K0",
        "representative": ("paper-decay/LR3.json", 1),
    },
}


def scale_claims(
    root: str | Path, data: dict[str, dict[str, Results]], scale: str
) -> dict[int, Claim]:
    """Claims 1-5 from one scale's stored batches (``load_data(root)``), read as
    ``CLAIM_READING[scale]`` says."""
    from ..analysis.interpretation import interpret

    how, found = CLAIM_READING[scale], data[scale]
    lr1, lr3 = found["LR1"], found["LR3"]
    path, instance = how["representative"]
    report = interpret(load_results(Path(root) / scale / path).run(instance))
    return {
        1: claims.claim1(lr1, exclude_lrs=how["exclude_lrs"]),
        2: claims.claim2(lr1),
        3: claims.claim3(lr1, lr3, rates=how["claim3_rates"]),
        4: claims.claim4(found[how["width"]]),
        5: claims.claim5(report, scale),
    }


def claims_table(by_scale: dict[str, dict[int, Claim]]) -> pd.DataFrame:
    """A DataFrame, one row per claim: the paper's statement, then each scale's numbers and
    verdict (``claims.describe``)."""
    import pandas as pd

    rows = []
    for n, statement in claims.STATEMENTS.items():
        row = {"claim": n, "the paper": statement}
        row.update({scale: claims.describe(c[n]) for scale, c in by_scale.items()})
        rows.append(row)
    return pd.DataFrame(rows).set_index("claim")


def verdict_mismatches(by_scale: dict[str, dict[int, Claim]], expected: dict) -> list[str]:
    """Where the claims' verdicts differ from ``expected`` ({scale: {claim: holds}}), with the
    failed checks or the numbers, so a regression names what moved."""
    out = []
    for scale, want in expected.items():
        for n, holds in want.items():
            c = by_scale[scale][n]
            if c.holds != holds:
                why = "; ".join(f"{x.what}: {x.detail}" for x in c.failed) or claims.describe(c)
                out.append(f"{scale} claim {n}: expected holds={holds}, got {c.holds} ({why})")
    return out


# -- the budget study at the paper's shape ---------------------------------------------------------


def budget_rows(study: dict[int, dict[str, Results]]) -> list[dict]:
    """One row per budget, batch and rate (seed means): samples seen, fraction of the paper's
    2^30, loss, mono/N, mono/k, features covered."""
    rows = []
    for steps, found in sorted(study.items()):
        for name, r in found.items():
            for lr in r.values("lr"):
                idx = r.where(lr=lr)
                batch = r.configs[idx[0]].batch
                row = {"steps": steps, "samples": steps * batch, "batch": name, "lr": lr}
                row["of paper"] = steps * batch / 2**30
                for key in (
                    "final_loss",
                    "mono_per_feature",
                    "mono_per_neuron",
                    "features_covered",
                ):
                    row[key] = float(np.mean(r.metric(key)[idx]))
                row["seeds"] = len(idx)
                rows.append(row)
    return rows


def budget_claims(study: dict[int, dict[str, Results]]) -> dict[int, dict[int, Claim]]:
    """Claims 1-3 at every budget of the study: claim 1 over its two rates, claim 2 on LR1,
    claim 3 at each rate. (Claims 4 and 5 need the width sweep and stored weights, which the
    study does not hold.)"""
    out = {}
    for steps, found in sorted(study.items()):
        lr1, lr3 = found["LR1"], found["LR3"]
        out[steps] = {
            1: claims.claim1(lr1),
            2: claims.claim2(lr1),
            3: claims.claim3(lr1, lr3),
        }
    return out


def budget_verdicts(by_budget: dict[int, dict[int, Claim]], batch: int = 1024) -> pd.DataFrame:
    """A DataFrame: one row per budget (steps of ``batch`` samples), whether claims 1-3 hold."""
    import pandas as pd

    rows = []
    for steps, found in by_budget.items():
        row = {"samples": f"2^{np.log2(steps * batch):.3g}", "steps": steps}
        row.update({f"claim {n}": c.holds for n, c in found.items()})
        rows.append(row)
    return pd.DataFrame(rows).set_index("samples")


def provenance_frame(
    data: dict[str, dict[str, Results]], names: Sequence[str] = CLAIM_BATCHES
) -> pd.DataFrame:
    """A DataFrame of the stored batches ``names`` at every scale: models, training time and
    provenance (library and results version, code digest, torch, device, date)."""
    import pandas as pd

    rows = []
    for scale, found in data.items():
        for name, r in found.items():
            if name not in names:
                continue
            m = r.meta
            rows.append(
                {
                    "batch": name,
                    "scale": scale,
                    "models": len(r),
                    "train time (min)": round(m["train_seconds"] / 60, 1),
                    "made by": f"monosem_lib {m['library_version']} "
                    f"(results v{m.get('results_version')}, code {m['source_digest'][:8]}), "
                    f"torch {m['torch_version']}",
                    "on": f"{m['device_name']}, {m['created'][:10]}",
                }
            )
    return pd.DataFrame(rows)


def abs_frame(data: dict[str, dict[str, Results]]) -> pd.DataFrame:
    """A DataFrame of the abs task (LR5) at every scale that stored it: per rate, the seed-mean
    loss and features with a monosemantic neuron for +f_j, for -f_j and for both (the
    book's signed probe)."""
    import pandas as pd

    rows = []
    for scale, found in data.items():
        if "LR5" not in found:
            continue
        lr5 = found["LR5"]
        pairs = abs_pairs(lr5)
        for lr in lr5.values("lr"):
            mine = [p for p in pairs if np.isclose(p["lr"], lr)]
            row = {"scale": scale, "lr": lr, "loss": lr5.mean("final_loss", lr=lr)}
            row.update(
                {k: float(np.mean([p[k] for p in mine])) for k in ("positive", "negative", "pairs")}
            )
            rows.append(row)
    return pd.DataFrame(rows)


def stale_files(root: str | Path) -> list[str]:
    """Every stored summary under ``root`` that is not current (``is_current``), by path."""
    root = Path(root)
    return [
        str(p.relative_to(root))
        for p in sorted(root.rglob("*.json"))
        if not is_current(load_results(p))
    ]


# -- the decay rule at a reduced budget ------------------------------------------------------------

DECAY_RATES = (0.01, 0.03)  # the rates of data/paper-cpu/paper-decay


def decay_runs(root: str | Path) -> dict[str, Results]:
    """At the paper's shape on a CPU, rates ``DECAY_RATES``: LR1, LR3 with its decay rescaled
    to keep the row's total shrink (the book's rule), and LR3 with the paper's own decay
    coefficient (``paper-cpu/paper-decay``). Labels as keys."""
    root = Path(root) / "paper-cpu"
    lr1, lr3 = load_results(root / "LR1.json"), load_results(root / "LR3.json")
    paper_decay = load_results(root / "paper-decay" / "LR3.json")

    def at_rates(r: Results) -> Results:
        return r.select(i for lr in DECAY_RATES for i in r.where(lr=lr))

    return {
        "LR1 (zero bias)": at_rates(lr1),
        "LR3, shrink kept (decay x32)": at_rates(lr3),
        "LR3, the paper's decay 0.03": paper_decay,
    }


def decay_frame(runs: dict[str, Results]) -> pd.DataFrame:
    """One row per run of ``decay_runs``: its decay, loss, mono/N, coverage, dead neurons and
    the mean biases of its two classes."""
    import pandas as pd

    keys = ("final_loss", "mono_per_feature", "features_covered", "dead_neurons")
    keys += ("mean_bias_mono", "mean_bias_poly")
    rows = []
    for label, r in runs.items():
        for c, m in zip(r.configs, r.metrics):
            rows.append(
                {
                    "run": label,
                    "lr": c.lr,
                    "bias_decay": round(c.bias_decay, 4),
                    **{k: m[k] for k in keys},
                }
            )
    return pd.DataFrame(rows)


# -- what the stored data show, as chapter 8 states it ---------------------------------------------

# The verdict of every claim at each scale (chapter 8's table), of claims 1-3 at every budget of
# the study, and of claim 3 for LR3 with the paper's own decay. The book's checks and tests
# assert the stored data still give these, so a damaged or regenerated file that moves a
# verdict fails CI.
EXPECTED_VERDICTS: dict[str, dict[int, bool]] = {
    "book": {1: True, 2: True, 3: True, 4: True, 5: True},
    "paper-cpu": {1: False, 2: True, 3: False, 4: False, 5: False},
}
EXPECTED_BUDGET_VERDICTS: dict[int, dict[int, bool]] = {
    1024: {1: False, 2: False, 3: False},
    2048: {1: False, 2: True, 3: False},
    4096: {1: False, 2: True, 3: False},
    8192: {1: False, 2: True, 3: False},
}
EXPECTED_PAPER_DECAY = False
