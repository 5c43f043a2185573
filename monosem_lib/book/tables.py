"""The chapters' tables: each takes runs, results or views and returns a labelled pandas
DataFrame (or a Styler, or a Series of named numbers). Formatting lives here, computing in
``views`` and below.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler
from torch import Tensor

from ..analysis.metrics import METRICS, NeuronStats, monosemanticity
from ..analysis.report import Report
from ..analysis.report_text import compare_sets
from ..analysis.responses import (
    MultiFeatureResponse,
    linear_map,
    linear_map_stats,
    multi_feature_response,
)
from ..analysis.verdicts import VERDICT_RULES
from ..core.config import Config
from ..core.timing import time_per_step
from ..core.training import Run
from ..paper.claims import Claim
from ..paper.recipe import total_shrink
from ..paper.reproduction import abs_pairs, is_current, metric_variant_rows, metric_variants
from ..paper.series import departures
from ..paper.table1 import BOOK_RULES, TABLE1
from ..store.results import Results
from .batches import B1_SHRINK, GROUP_NAMES
from .text import Spread
from .views import WorldSample

__all__ = [
    "world_numbers",
    "threshold_counts",
    "additivity",
    "linear_maps",
    "seed_means",
    "group_table",
    "grid_label",
    "shrink_study",
    "claim3_table",
    "width_table",
    "width_price",
    "verdict_rules",
    "set_table",
    "outweighs",
    "set_numbers",
    "left_out_table",
    "ablation_table",
    "describe_config",
    "task_table",
    "nonlinearity_table",
    "batch_table",
    "rules_table",
    "departures_table",
    "departure_tables",
    "claim2_table",
    "lever_numbers",
    "abs_pair_table",
    "metric_tables",
    "stays_ahead",
]


def world_numbers(w: WorldSample) -> pd.Series:
    """The numbers chapter 1 states about its world, as a pandas Series."""
    return pd.Series(
        {
            "mean_active": float(w.active.mean()),
            "expected_active": w.N * w.eps,
            "mean_abs_overlap": float(w.overlap.abs().sum() / (w.N * (w.N - 1))),
            "random_abs_overlap": w.random_overlap,
            "interference_mean": float(w.interference.mean()),
            "interference_std": float(w.interference.std()),
            "interference_above_0.25": float((w.interference > 0.25).mean()),
        }
    )


def threshold_counts(
    stats: NeuronStats, thresholds: Sequence[float], labels: Sequence[str]
) -> pd.DataFrame:
    """Monosemantic neurons of every instance at every threshold: a DataFrame indexed by
    threshold with one column per instance (``labels``)."""
    counts = {t: monosemanticity(stats.sfa, t)[2].sum(1).tolist() for t in thresholds}
    return pd.DataFrame.from_dict(counts, orient="index", columns=list(labels))


def additivity(
    run: Run, stats: NeuronStats, instance: int, active: int = 3
) -> tuple[MultiFeatureResponse, pd.Series]:
    """Chapter 1's multi-feature view of one instance: the ``MultiFeatureResponse`` and a
    Series of the monosemantic neurons' deviation from additivity with their own feature on,
    how often and how much they fire with it off, their median deviation over all inputs,
    and the other alive neurons' median deviation."""
    resp = multi_feature_response(run.model, run.P, active=active, instance=instance)
    fired = resp.actual.max(0).values > 0
    view = resp.own_feature_view(stats.feature[instance], stats.mono[instance])
    view["deviation_mono"] = float(resp.error[stats.mono[instance]].median())
    view["deviation_other"] = float(resp.error[~stats.mono[instance] & fired].median())
    return resp, pd.Series(view)


def linear_maps(run: Run, labels: Sequence[str]) -> tuple[list[Tensor], pd.DataFrame]:
    """Every instance's map W2 W1 P and a DataFrame of its diagonal mean, off-diagonal RMS
    and their ratio (``responses.linear_map_stats``), one row per instance (``labels``)."""
    maps = [linear_map(run.model, run.P, i) for i in range(run.instances)]
    rows = {}
    for label, M in zip(labels, maps):
        s = linear_map_stats(M)
        rows[label] = {"diagonal": s.diagonal, "off_diagonal_rms": s.off_diagonal, "ratio": s.ratio}
    return maps, pd.DataFrame.from_dict(rows, orient="index")


# -- tables over seeds ------------------------------------------------------------------------


def seed_means(
    results: Results,
    by: Sequence[str],
    keys: Sequence[str] = ("final_loss", "mono_per_feature", "dead_neurons"),
) -> pd.DataFrame:
    """A DataFrame of the seed mean and standard deviation of every metric in ``keys``, one
    row per combination of the config fields ``by`` (``results`` is a ``Results``)."""
    frame = results.frame(*by)
    return frame.groupby(list(by), sort=False)[list(keys)].agg(["mean", "std"])


def group_table(groups: dict[str, Results]) -> pd.DataFrame:
    """Seed means of loss, mono/N, coverage and dead neurons, one row per group, each with its
    spread over the seeds (``Spread``)."""
    keys = ("final_loss", "mono_per_feature", "features_covered", "dead_neurons")
    rows = {
        GROUP_NAMES.get(name, name): {**{k: Spread(r.metric(k)) for k in keys}, "seeds": len(r)}
        for name, r in groups.items()
    }
    return _object_frame(rows)


def _object_frame(rows: dict) -> pd.DataFrame:
    """{row: {column: value}} as a DataFrame that keeps each value as it is (a ``Spread``
    stays one; pandas would turn it into a plain float)."""
    return pd.DataFrame(list(rows.values()), index=list(rows), dtype=object)


def grid_label(c: Config) -> str:
    """The bias slider's frame title."""
    return f"initial bias {c.init_bias:+.2f}, total shrink {B1_SHRINK:.1f} (live scale)"


def shrink_study(groups: dict[str, Results], live: Results, views: dict) -> pd.DataFrame:
    """Mono/N and the fraction of dead neurons against the total shrink S at initial bias -1:
    the book's runs (S = 0 and the recipe's) and the live grid's. A DataFrame, one row each."""
    eng = groups["engineered"]
    book = [(0.0, groups["no decay"]), (total_shrink(eng.configs[0]), eng)]
    rows = [("book, 8000 steps", S, r) for S, r in book]
    rows += [("live, 5000 steps", S, live.select([i])) for S, i in views["shrink"].items()]
    return pd.DataFrame(
        [
            {
                "run": name,
                "total shrink S": S,
                "mono_per_feature": r.mean("mono_per_feature"),
                "dead fraction": r.mean("dead_neurons") / r.configs[0].k,
            }
            for name, S, r in rows
        ]
    )


def claim3_table(claim: Claim) -> pd.DataFrame:
    """A claim 3's numbers as a DataFrame: baseline and engineered seed-mean mono/N (with its
    spread over the seeds, where the claim kept them) and loss, one row per learning rate."""
    n = claim.numbers
    seeds = n.get("seeds", {})
    rows = {
        lr: {
            "mono/N baseline": Spread(seeds[lr][0]) if lr in seeds else mono[0],
            "mono/N engineered": Spread(seeds[lr][1]) if lr in seeds else mono[1],
            "loss baseline": n["final_loss"][lr][0],
            "loss engineered": n["final_loss"][lr][1],
        }
        for lr, mono in n["mono_per_feature"].items()
    }
    return _object_frame(rows).rename_axis("lr")


def width_table(widths: dict[str, Results]) -> pd.DataFrame:
    """Seed means (with their spread, ``Spread``) of loss, mono/N and coverage per width and
    recipe: a DataFrame indexed by k, with k/N and one column per recipe and metric."""
    keys = {METRICS[k].short: k for k in ("final_loss", "mono_per_feature", "features_covered")}
    first = next(iter(widths.values()))
    table = pd.DataFrame(index=pd.Index(sorted(first.values("k")), name="k"))
    table["k/N"] = table.index / first.configs[0].N
    for recipe, r in widths.items():
        for label, key in keys.items():
            spreads = {k: Spread(v) for k, v in r.by_value("k", key).items()}
            table[f"{recipe} {label}"] = pd.Series(spreads, dtype=object)
    return table


def width_price(engineered: Results, repeats: int = 3, steps: int = 200) -> pd.DataFrame:
    """Compute against coverage per width: training FLOPs per sample, the best of
    ``repeats`` timings of a step of one model, seed-mean coverage and the coverage gained per
    doubling of FLOPs from the previous width. A DataFrame indexed by k."""
    cov = engineered.mean_by("k", "features_covered")
    rows: dict[int, dict[str, float | None]] = {}
    for k in sorted(cov):
        cfg = engineered.configs[engineered.where(k=k)[0]].replace(instances=1)
        t = min(time_per_step(cfg, steps=steps, warmup=20) for _ in range(repeats))
        rows[k] = {"MFLOP per sample": cfg.flops_per_sample / 1e6, "ms per step": t * 1e3}
        rows[k]["features covered"] = cov[k]
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("k")
    doublings = np.log2(table["MFLOP per sample"]).diff()
    table["gain per doubling"] = table["features covered"].diff() / doublings
    return table


def verdict_rules() -> Styler:
    """The rule behind every verdict of ``interpret``: a DataFrame's Styler, which shows the
    rules in full (a DataFrame would cut them at pandas' column width)."""
    rows = {n: f"{r.measure} {r.comparison} {r.threshold:g}" for n, r in VERDICT_RULES.items()}
    return pd.Series(rows, name="holds when").rename_axis("verdict").to_frame().style


def set_table(report: Report) -> pd.DataFrame:
    """``report_text.compare_sets`` as a DataFrame, one column per set of claim 5."""
    names = {"residual_block": "whole residual block", "always_on": "always-on subset"}
    return pd.DataFrame(compare_sets(report)).rename(columns=names)


def outweighs(report: Report) -> pd.Series:
    """How much more zeroing the always-on neurons costs than zeroing as many random
    monosemantic neurons (the ``outweighs_monosemantic`` verdict's value), beside the
    probability eps that any one feature is active, as a pandas Series."""
    ratio = report.sets["always_on"].verdicts["outweighs_monosemantic"].value
    return pd.Series({"always-on / as many random monosemantic": ratio, "eps": report.config.eps})


def set_numbers(report: Report) -> pd.DataFrame:
    """Per set of claim 5: loss factor with its nonlinearity removed and zeroed, singular
    values near 1 out of m, cosine with the target. A DataFrame, one row per set."""
    rows = {}
    for key, s in report.sets.items():
        v, lin = s.verdicts, s.verdicts["acts_linearly"].value
        rows[key] = {
            "loss x, nonlinearity removed": None if lin is None else lin + 1,
            "loss x, zeroed": v["ablation_matters"].value,
            "singular values near 1": None if s.subspace is None else s.subspace.near_one,
            "m": report.config.m,
            "cosine with target": None if s.subspace is None else s.subspace.cosine_target,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def left_out_table(report: Report) -> pd.DataFrame:
    """The classes the always-on cut leaves out beside the monosemantic neurons: size,
    activity, bias, features carrying 0.999, top share, loss factor when linearised."""
    table = {}
    for s in report.excluded.values():
        lin = None if s.linearized_loss is None else s.linearized_loss / report.loss
        table[s.key] = {
            "neurons": s.count,
            "mean activity": s.mean_activity,
            "mean bias": s.mean_bias,
            "features carrying 0.999": s.mean_features,
            "top feature's share": s.mean_share,
            "loss x, nonlinearity removed": lin,
            "acts_linearly": s.verdicts["acts_linearly"].holds,
        }
    c, mono = report.classes, report.classes.mask("monosemantic")
    table["monosemantic (for comparison)"] = {
        "neurons": int(mono.sum()),
        "mean activity": float(c.activity[mono].mean()),
        "mean bias": float(c.bias[mono].mean()),
    }
    return pd.DataFrame(table)


def ablation_table(report: Report) -> pd.DataFrame:
    """Loss with each group zeroed (``report.ablations``), the neurons it zeroes and the
    factor over the intact model, one row per group that is not empty."""
    base = report.loss  # the intact model's loss, ablations["none"]
    rows = {
        key: {"neurons": report.ablation_counts[key], "loss": v, "x intact": v / base}
        for key, v in report.ablations.items()
        if v is not None
    }
    return pd.DataFrame.from_dict(rows, orient="index")


# -- chapter 6: other tasks and nonlinearities -------------------------------------------------


def describe_config(c: Config) -> str:
    """One run of chapter 6 in words: task, nonlinearity, width, rate, recipe or baseline."""
    recipe = "recipe" if c.init_bias < 0 else "baseline"
    return f"{c.task}, {c.nonlinearity}, k={c.k}, lr {c.lr}, {recipe}"


def task_table(results: dict[str, Results]) -> pd.DataFrame:
    """Every run of ``results`` ({name: Results}): loss, zero predictor, mono/N by the paper's
    metric and by the book's variant, coverage and dead neurons. A DataFrame, one row each."""
    rows = {}
    for r in results.values():
        for i, (c, m) in enumerate(zip(r.configs, r.metrics)):
            rows[describe_config(c)] = {
                "loss": m["final_loss"],
                "zero predictor": m["zero_loss"],
                "mono/N": m["mono_per_feature"],
                "mono/N, book's variant": metric_variants(r, i)["book"],
                "features covered": m["features_covered"],
                "dead": m["dead_neurons"],
            }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("run")


def nonlinearity_table(groups: dict[tuple[str, str], Results]) -> pd.DataFrame:
    """Seed means (``Spread``: mean ± sd where there are several seeds) of mono/N, loss and
    neurons silent on every single feature, all read with the book's variant (activations
    clipped at 0), and the number of seeds, for {(nonlinearity, recipe): Results}."""
    rows = {}
    for key, r in groups.items():
        stats = [r.stats(i, "book") for i in range(len(r))]
        rows[key] = {
            "mono/N": Spread([float(s.mono.sum()) / s.N for s in stats]),
            "loss": Spread(r.metric("final_loss")),
            "silent": Spread([float(s.dead.sum()) for s in stats]),
            "seeds": len(r),
        }
    return _object_frame(rows)


# -- the appendix: every stored batch of Table 1 -----------------------------------------------


def batch_table(stored: dict[str, Results]) -> pd.DataFrame:
    """Every stored batch ({name: Results}): what it sweeps, models, seeds, training time,
    code digest and whether it is current (``reproduction.is_current``). A DataFrame."""
    rows = {
        name: {
            "what it sweeps": TABLE1[name].description,
            "models": len(r),
            "seeds": len(r.seeds),
            "train time (min)": round(r.meta["train_seconds"] / 60, 1),
            "code digest": r.meta["source_digest"][:8],
            "current": is_current(r),
        }
        for name, r in stored.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("batch")


def rules_table() -> pd.DataFrame:
    """The book's rules for deriving a book-scale run from a paper-scale row, a DataFrame."""
    return pd.Series(BOOK_RULES, name="book scale").rename_axis("quantity").to_frame()


def departures_table(scales: tuple[str, ...] = ("paper", "book")) -> pd.DataFrame:
    """Every batch's departures between two scales (``reproduction.departures``): one row
    per batch, one column per quantity, each cell "paper -> book" where they differ."""
    cell = lambda p, b: p if p == b else f"{p} → {b}"
    rows = {name: {q: cell(*v) for q, v in departures(name, scales).items()} for name in TABLE1}
    return pd.DataFrame.from_dict(rows, orient="index")


# The departures table's columns in groups narrow enough for the text column.
DEPARTURE_GROUPS = {
    "shape": ("N", "m", "k/N", "m/N", "eps N"),
    "training": ("lr", "batch", "steps", "samples"),
    "schedule and decay": ("schedule", "bias decay", "total shrink"),
}


def departure_tables(scales: tuple[str, ...] = ("paper", "book")) -> dict[str, pd.DataFrame]:
    """``departures_table`` split into ``DEPARTURE_GROUPS`` (every column in one group), so
    that each fits the page."""
    table = departures_table(scales)
    missing = set(table.columns) - {c for cols in DEPARTURE_GROUPS.values() for c in cols}
    if missing:
        raise ValueError(f"departure columns in no group: {sorted(missing)}")
    return {group: table[list(cols)] for group, cols in DEPARTURE_GROUPS.items()}


# -- small views the chapters' checks and tables read --------------------------------------------


def claim2_table(claim: Claim) -> pd.DataFrame:
    """A claim 2's seed-mean biases of monosemantic and polysemantic neurons, one row per
    learning rate, as a DataFrame."""
    return pd.DataFrame(claim.numbers).rename_axis("lr")


def lever_numbers(live: Results, views: dict) -> pd.Series:
    """Chapter 3's two levers on the live grid, as a pandas Series: mono/N and loss with no
    lever, the best of the bias grid and with the strongest L1 penalty."""
    grid, start, l1 = live.select(views["grid"]), live.metrics[views["start"]], views["l1"][-1]
    return pd.Series(
        {
            "mono/N, no lever": start["mono_per_feature"],
            "mono/N, best initial bias": float(grid.metric("mono_per_feature").max()),
            "mono/N, strongest L1": live.metrics[l1]["mono_per_feature"],
            "loss, no lever": start["final_loss"],
            "loss, best initial bias": float(grid.metric("final_loss").min()),
            "loss, strongest L1": live.metrics[l1]["final_loss"],
        }
    )


def abs_pair_table(results: Results) -> pd.DataFrame:
    """``reproduction.abs_pairs`` as a DataFrame: per abs instance (labelled baseline or
    recipe, rate and seed), the features with a monosemantic neuron for +f_j, for -f_j and for
    both."""
    frame = pd.DataFrame(abs_pairs(results))
    frame.insert(0, "run", ["recipe" if c.init_bias < 0 else "baseline" for c in results.configs])
    return frame.set_index(["run", "lr", "seed"])


def metric_tables(
    stored: dict[str, Results], g1_lr: float = 0.01
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mono/N by the paper's metric and by the book's variant (seed 0) of the stored LR5 (by
    rate) and G1 at ``g1_lr`` (by initial bias): two DataFrames."""
    lr5 = pd.DataFrame(metric_variant_rows(stored["LR5"])).set_index("lr")
    g1 = pd.DataFrame(metric_variant_rows(stored["G1"]))
    g1 = g1[np.isclose(g1.lr, g1_lr)].set_index("init_bias").drop(columns="lr")
    lr5.columns.name = "LR5, mono/N by metric"
    g1.columns.name = f"G1 at lr {g1_lr:g}, mono/N by metric"
    return lr5, g1


def stays_ahead(counts: pd.DataFrame, start: float) -> bool:
    """Whether one column of ``threshold_counts`` (two models) is above the other at every
    threshold from ``start`` up."""
    lead = counts.loc[start:].diff(axis=1).iloc[:, 1]
    return bool((lead > 0).all() or (lead < 0).all())
