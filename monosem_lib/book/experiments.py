"""The batches of runs the chapters train, by name, at either scale.

Chapters call these instead of building config lists themselves, so two chapters that need
the same runs ask for the identical batch and the result cache (``storage.load_or_train``)
trains it once. At book scale each batch is sized so a chapter runs in about a minute on two
CPU cores; at paper scale they follow the paper's Table 1 more fully (see ``sweeps``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from ..core.config import Config, preset
from ..paper.table1 import ENGINEERED, decay_for_shrink, sweep_configs, sweep_values

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd
    from IPython.display import Markdown
    from pandas.io.formats.style import Styler

    from ..analysis.metrics import NeuronStats
    from ..analysis.report import Report
    from ..analysis.responses import MultiFeatureResponse
    from ..core.training import Run
    from ..paper.claims import Claim
    from ..paper.reproduction import SweepSeries
    from ..store.results import Results

__all__ = [
    "LR_SUBSET",
    "lr_sweep",
    "bias_factorial",
    "live_grid",
    "LIVE_BIASES",
    "LIVE_EPSES",
    "LIVE_L1S",
    "LIVE_SHRINKS",
    "width_sweep",
    "BOOK_WIDTHS",
    "engineered_model",
    "other_tasks",
    "WorldSample",
    "world_sample",
    "world_numbers",
    "example_neurons",
    "threshold_counts",
    "additivity",
    "linear_maps",
    "seed_means",
    "frequency_quarters",
    "data_dir",
    "recipe_groups",
    "group_table",
    "live_views",
    "grid_label",
    "InterferenceView",
    "neuron_interference",
    "shrink_study",
    "density_study",
    "claim3_table",
    "width_results",
    "width_table",
    "width_runs",
    "width_price",
    "Coverage",
    "coverage",
    "MonoAnatomy",
    "mono_anatomy",
    "PairResponse",
    "pair_response",
    "verdict_rules",
    "set_table",
    "outweighs",
    "set_numbers",
    "left_out_table",
    "ablation_table",
    "describe_config",
    "task_table",
    "nonlinearity_table",
    "PowerLawView",
    "power_law_view",
    "batch_table",
    "rules_table",
    "departures_table",
    "batch_caption",
    "folder_size",
    "claim2_table",
    "decay_pair",
    "lever_numbers",
    "nonlinearity_groups",
    "abs_pair_table",
    "metric_tables",
    "book_batches",
    "stays_ahead",
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


# -- chapter 1: the world and one pair of models ------------------------------------------------


@dataclass
class WorldSample:
    """One batch of the world and what chapter 1 reads from it.

    Attributes:
        f: [B, N] features; active: [B] active features per sample.
        binomial: [15] the Binomial(N, eps) probabilities of 0..14 active features.
        overlap: [N, N] P^T P with a zero diagonal.
        signal, interference: the readouts P_j . x where f_j > 0 and where f_j = 0 (flat).
        random_overlap: mean |u . v| of random unit vectors in R^m, sqrt(2 / (pi m)).
    """

    f: Tensor
    active: np.ndarray
    binomial: np.ndarray
    overlap: Tensor
    signal: np.ndarray
    interference: np.ndarray
    random_overlap: float
    N: int
    m: int
    eps: float


def world_sample(config: Config) -> WorldSample:
    """Sample one batch of ``config``'s world (``data.make_world``) and read it."""
    from ..core.data import make_world

    world = make_world(config)
    f, x, _ = world.sample()
    P = world.P.double()
    readout = x.double() @ P  # [B, N]: P_j . x for every feature j
    binom = torch.distributions.Binomial(config.N, probs=torch.tensor(config.eps))
    return WorldSample(
        f=f,
        active=(f > 0).sum(1).numpy(),
        binomial=binom.log_prob(torch.arange(15.0)).exp().numpy(),
        overlap=(P.T @ P).fill_diagonal_(0),
        signal=readout[f > 0].numpy(),
        interference=readout[f == 0].numpy(),
        random_overlap=math.sqrt(2 / (math.pi * config.m)),
        N=config.N,
        m=config.m,
        eps=config.eps,
    )


def world_numbers(w: WorldSample) -> pd.Series:
    """The numbers chapter 1 states about its world, as a pandas Series."""
    import pandas as pd

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


def example_neurons(stats: NeuronStats) -> list[tuple[int, str, int | None]]:
    """(instance, kind, neuron) of chapter 1's three examples: the most concentrated
    monosemantic and the least concentrated alive neuron of instance 0, and the first dead
    neuron of instance 1 (None where there is none). ``stats`` is ``metrics.NeuronStats``."""
    share = stats.share[0]
    mono = int(torch.argmax(torch.where(stats.mono[0], share, -1.0)))
    poly = int(torch.argmin(torch.where(~stats.dead[0], share, 2.0)))
    dead = stats.dead[1].nonzero().flatten()
    return [
        (0, "monosemantic", mono),
        (0, "polysemantic", poly),
        (1, "dead", int(dead[0]) if len(dead) else None),
    ]


def threshold_counts(
    stats: NeuronStats, thresholds: Sequence[float], labels: Sequence[str]
) -> pd.DataFrame:
    """Monosemantic neurons of every instance at every threshold: a DataFrame indexed by
    threshold with one column per instance (``labels``)."""
    import pandas as pd

    from ..analysis.metrics import monosemanticity

    counts = {t: monosemanticity(stats.sfa, t)[2].sum(1).tolist() for t in thresholds}
    return pd.DataFrame.from_dict(counts, orient="index", columns=list(labels))


def additivity(
    run: Run, stats: NeuronStats, instance: int, active: int = 3
) -> tuple[MultiFeatureResponse, pd.Series]:
    """Chapter 1's multi-feature view of one instance: the ``MultiFeatureResponse`` and a
    Series of the monosemantic neurons' deviation from additivity with their own feature on,
    how often and how much they fire with it off, and the other alive neurons' deviation."""
    import pandas as pd

    from ..analysis.responses import multi_feature_response

    resp = multi_feature_response(run.model, run.P, active=active, instance=instance)
    fired = resp.actual.max(0).values > 0
    view = resp.own_feature_view(stats.feature[instance], stats.mono[instance])
    view["deviation_other"] = float(resp.error[~stats.mono[instance] & fired].median())
    return resp, pd.Series(view)


def linear_maps(run: Run, labels: Sequence[str]) -> tuple[list[Tensor], pd.DataFrame]:
    """Every instance's map W2 W1 P and a DataFrame of its diagonal mean, off-diagonal RMS
    and their ratio (``responses.linear_map_stats``), one row per instance (``labels``)."""
    import pandas as pd

    from ..analysis.responses import linear_map, linear_map_stats

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


def frequency_quarters(results: Results, instance: int) -> dict[str, int]:
    """Monosemantic neurons on the most frequent and on the rarest quarter of the features
    (power-law features are numbered from the most frequent)."""
    owned = results.features(instance).mono
    quarter = len(owned) // 4
    return {"frequent": int(owned[:quarter].sum()), "rare": int(owned[-quarter:].sum())}


def data_dir() -> Path:
    """The book's stored summaries, ``data/``, from the repository root or from ``book/``."""
    from pathlib import Path

    return Path("../data") if Path("../data").exists() else Path("data")


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


def group_table(groups: dict[str, Results]) -> pd.DataFrame:
    """Seed means of loss, mono/N, coverage and dead neurons, one row per group."""
    import pandas as pd

    keys = ("final_loss", "mono_per_feature", "features_covered", "dead_neurons")
    rows = {
        GROUP_NAMES.get(name, name): {**{k: r.mean(k) for k in keys}, "seeds": len(r)}
        for name, r in groups.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def live_views(live: Results) -> dict:
    """Indices into the live grid's Results (``live_grid``): ``grid`` (the slider's frames,
    one per ``LIVE_BIASES``), ``start`` (no lever), ``l1`` (one per ``LIVE_L1S``), ``eps``
    ({density: index} at initial bias -1 with B1's shrink), ``shrink`` ({S: index})."""
    cfg = preset("live")
    one = lambda **values: live.where(**values)[0]
    shrinks = sorted(set(LIVE_SHRINKS) | {B1_SHRINK})
    decay = lambda S: decay_for_shrink(S, cfg.lr, cfg.steps)
    b1 = decay(B1_SHRINK)
    return {
        "grid": [one(init_bias=b, bias_decay=b1, eps=cfg.eps) for b in LIVE_BIASES],
        "start": one(init_bias=0.0, bias_decay=0.0, eps=cfg.eps, l1=0.0),
        "l1": [one(l1=v) for v in LIVE_L1S],
        "eps": {
            e: one(init_bias=-1.0, bias_decay=b1, eps=e)
            for e in sorted(set(LIVE_EPSES) | {cfg.eps})
        },
        "shrink": {S: one(init_bias=-1.0, eps=cfg.eps, bias_decay=decay(S)) for S in shrinks},
    }


def grid_label(c: Config) -> str:
    """The bias slider's frame title."""
    return f"initial bias {c.init_bias:+.2f}, total shrink {B1_SHRINK:.1f} (live scale)"


@dataclass
class InterferenceView:
    """What one monosemantic neuron receives with its own feature off.

    Attributes:
        neuron, feature: the neuron and its feature; bias: its bias b.
        values: [samples] its input w . x on samples where the feature is off.
        above: the share of those samples on which the input alone exceeds -b (it would fire).
    """

    neuron: int
    feature: int
    bias: float
    values: Tensor
    above: float


def neuron_interference(
    results: Results, run: Run, instance: int, count: int = 4, samples: int = 4096
) -> list[InterferenceView]:
    """``InterferenceView`` of the first ``count`` monosemantic neurons of one instance
    (``results`` and ``run`` hold the same instances)."""
    from ..analysis.probes import interference

    st = results.stats(instance)
    views = []
    for n in st.mono[0].nonzero().flatten()[:count].tolist():
        values, b = interference(run, n, instance, samples=samples), float(st.bias[0, n])
        above = float((values > -b).double().mean())
        views.append(InterferenceView(n, int(st.top_feature[0, n]), b, values, above))
    return views


def shrink_study(groups: dict[str, Results], live: Results, views: dict) -> pd.DataFrame:
    """Mono/N and the fraction of dead neurons against the total shrink S at initial bias -1:
    the book's runs (S = 0 and the recipe's) and the live grid's. A DataFrame, one row each."""
    import pandas as pd

    from ..paper.table1 import total_shrink

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


def density_study(
    live: Results, run: Run, views: dict, neurons: int = 6, samples: int = 2048
) -> dict:
    """Chapter 3's sparsity experiment on the live grid: per density, the mean bias of the
    monosemantic neurons and the spread of the interference on up to ``neurons`` of them,
    with the exponents of log-log fits against the density (``slope_bias``, ``slope_noise``).
    """
    eps = np.array(list(views["eps"]), float)
    idx = list(views["eps"].values())
    bias = np.array([live.metrics[i]["mean_bias_mono"] for i in idx], dtype=float)  # None: nan
    noise = []
    for i in idx:
        views_i = neuron_interference(live, run, i, neurons, samples)
        spread = [float(v.values.std()) for v in views_i]
        noise.append(np.mean(spread) if spread else np.nan)
    noise = np.array(noise)
    ok = ~np.isnan(bias) & (bias < 0)
    return {
        "eps": eps,
        "mono_bias": bias,
        "noise": noise,
        "slope_bias": float(np.polyfit(np.log(eps[ok]), np.log(-bias[ok]), 1)[0]),
        "slope_noise": float(np.polyfit(np.log(eps), np.log(noise), 1)[0]),
    }


def claim3_table(claim: Claim) -> pd.DataFrame:
    """A claim 3's numbers as a DataFrame: baseline and engineered seed-mean mono/N and loss,
    one row per learning rate."""
    import pandas as pd

    n = claim.numbers
    rows = {
        lr: {
            "mono/N baseline": mono[0],
            "mono/N engineered": mono[1],
            "loss baseline": n["final_loss"][lr][0],
            "loss engineered": n["final_loss"][lr][1],
        }
        for lr, mono in n["mono_per_feature"].items()
    }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("lr")


# -- chapter 4: width ---------------------------------------------------------------------------


def width_results(scale: str = "book") -> dict[str, Results]:
    """Chapter 4's sweep as {"baseline": Results, "engineered": Results} over every width,
    trained (or loaded from the cache) one pass per width. At book scale the preset's own
    width comes with three seeds from chapters 2 and 3 (``lr_sweep``, ``bias_factorial``)."""
    from ..core.training import group_by_structure
    from ..store.cache import load_or_train
    from ..store.results import Results

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


def width_table(widths: dict[str, Results]) -> pd.DataFrame:
    """Seed means of loss, mono/N and coverage per width and recipe: a DataFrame indexed by
    k, with k/N and one column per recipe and metric."""
    import pandas as pd

    keys = {"loss": "final_loss", "mono/N": "mono_per_feature", "covered": "features_covered"}
    first = next(iter(widths.values()))
    table = pd.DataFrame(index=pd.Index(sorted(first.values("k")), name="k"))
    table["k/N"] = table.index / first.configs[0].N
    for recipe, r in widths.items():
        for label, key in keys.items():
            table[f"{recipe} {label}"] = pd.Series(r.mean_by("k", key))
    return table


def width_runs(results: Results, seed: int = 0) -> dict[int, Run]:
    """{k: one-instance Run} of ``seed`` at every width (for ``widgets.width_explorer``)."""
    return {k: results.run(results.where(k=k, seed=seed)[0]) for k in sorted(results.values("k"))}


def width_price(engineered: Results, repeats: int = 3, steps: int = 200) -> pd.DataFrame:
    """Compute against coverage per width: training FLOPs per sample, the best of
    ``repeats`` timings of a step of one model, seed-mean coverage and the coverage gained per
    doubling of FLOPs from the previous width. A DataFrame indexed by k."""
    import pandas as pd

    from ..apps.bench import time_per_step

    cov = engineered.mean_by("k", "features_covered")
    rows = {}
    for k in sorted(cov):
        cfg = engineered.configs[engineered.where(k=k)[0]].replace(instances=1)
        t = min(time_per_step(cfg, steps=steps, warmup=20) for _ in range(repeats))
        rows[k] = {"MFLOP per sample": cfg.flops_per_sample / 1e6, "ms per step": t * 1e3}
        rows[k]["features covered"] = cov[k]
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("k")
    doublings = np.log2(table["MFLOP per sample"]).diff()
    table["gain per doubling"] = table["features covered"].diff() / doublings
    return table


@dataclass
class Coverage:
    """Which features one instance covers, and why not the others.

    Attributes:
        features: ``results.FeatureStats`` of the instance.
        overlap: [N] each feature's largest |P_i . P_j| with another feature.
        uncovered: the features without a monosemantic neuron.
    """

    features: Any
    overlap: Tensor
    uncovered: list

    def summary(self) -> pd.Series:
        """The numbers chapter 4 states, as a pandas Series."""
        import pandas as pd

        f, cov = self.features, self.features.mono > 0
        return pd.Series(
            {
                "monosemantic neurons": int(f.mono.sum()),
                "features covered": int(cov.sum()),
                "features with duplicates": f.duplicated,
                "uncovered": len(self.uncovered),
                "largest overlap, covered": float(self.overlap[cov].mean()),
                "largest overlap, uncovered": float(self.overlap[~cov].mean()),
            }
        )

    def uncovered_table(self) -> pd.DataFrame:
        """Every uncovered feature: the alive neurons preferring it and the best one's share."""
        import pandas as pd

        f, idx = self.features, self.uncovered
        rows = {"neurons preferring it": f.preferring[idx].tolist()}
        rows["best share"] = f.best_share[idx].tolist()
        return pd.DataFrame(rows, index=pd.Index(idx, name="uncovered feature"))


def coverage(results: Results, instance: int) -> Coverage:
    """``Coverage`` of one instance of ``results`` (its weights must be reachable)."""
    features = results.features(instance)
    P = results.run(instance).P[0].double()
    overlap = (P.T @ P).fill_diagonal_(0).abs().max(0).values
    uncovered = (features.mono == 0).nonzero().flatten().tolist()
    return Coverage(features, overlap, uncovered)


# -- chapter 5: anatomy of one engineered model ---------------------------------------------------


@dataclass
class MonoAnatomy:
    """How the monosemantic neurons of one instance line up with their features.

    Attributes:
        align: ``probes.neuron_alignment`` ([k] each: feature, input_cosine,
            output_share); mono: [k] bool.
        neurons, feature, own: [n] the monosemantic neurons, their features and their output
            weight W2[j, n] on their own feature.
        largest_is_own: share of them whose largest |output weight| is on their own feature.
        paired: features with a negative and a positive monosemantic neuron;
        negative_features: how many features have a negative one.
    """

    align: dict
    mono: Tensor
    neurons: Tensor
    feature: Tensor
    own: Tensor
    largest_is_own: float
    paired: list
    negative_features: int

    def summary(self) -> pd.Series:
        """The numbers chapter 5 states about them, as a pandas Series."""
        import pandas as pd

        return pd.Series(
            {
                "mean input cosine": self.input_cosine,
                "mean output share": float(self.align["output_share"][self.mono].mean()),
                "largest output weight on own feature": self.largest_is_own,
                "negative own weight": self.negative,
                "features with a negative neuron": self.negative_features,
                "... that also have a positive one": len(self.paired),
                "features with a monosemantic neuron": len(set(self.feature.tolist())),
            }
        )

    @property
    def input_cosine(self) -> float:
        """Mean cosine between a monosemantic neuron's input weights and its feature's P_j."""
        return float(self.align["input_cosine"][self.mono].mean())

    @property
    def negative(self) -> float:
        """Share of monosemantic neurons that subtract from their own output."""
        return float((self.own < 0).double().mean())


def mono_anatomy(run: Run, report: Report) -> MonoAnatomy:
    """``MonoAnatomy`` of a one-instance ``run`` classified by ``report`` (``interpret``)."""
    from ..analysis.probes import neuron_alignment

    align = neuron_alignment(run)
    mono = report.classes.mask("monosemantic")
    W2 = run.model.W2[0].detach().double().cpu()
    neurons = mono.nonzero().flatten()
    feature = align["feature"][neurons]
    own = W2[feature, neurons]
    largest = float((W2[:, neurons].abs().argmax(0) == feature).double().mean())
    neg, pos = set(feature[own < 0].tolist()), set(feature[own >= 0].tolist())
    return MonoAnatomy(align, mono, neurons, feature, own, largest, sorted(neg & pos), len(neg))


@dataclass
class PairResponse:
    """Output j as feature j alone goes from 0 to 1: values [V]; contributions [n, V] of the
    feature's monosemantic ``neurons``; total [V] of all neurons; gap: max |total - value|."""

    feature: int
    neurons: list
    values: Tensor
    contributions: Tensor
    total: Tensor
    gap: float


def pair_response(run: Run, anatomy: MonoAnatomy) -> PairResponse:
    """``PairResponse`` of the first feature with a negative and a positive neuron."""
    from ..analysis.probes import feature_response

    j = anatomy.paired[0]
    neurons = [int(n) for n in anatomy.neurons[anatomy.feature == j]]
    values, contrib = feature_response(run, j, neurons)
    _, everything = feature_response(run, j, list(range(run.config.k)))
    total = everything.sum(0)
    return PairResponse(j, neurons, values, contrib, total, float((total - values).abs().max()))


def verdict_rules() -> Styler:
    """The rule behind every verdict of ``interpret``: a DataFrame's Styler, which shows the
    rules in full (a DataFrame would cut them at pandas' column width)."""
    import pandas as pd

    from ..analysis.verdicts import VERDICT_RULES

    rows = {n: f"{r.measure} {r.comparison} {r.threshold:g}" for n, r in VERDICT_RULES.items()}
    return pd.Series(rows, name="holds when").rename_axis("verdict").to_frame().style


def set_table(report: Report) -> pd.DataFrame:
    """``report_text.compare_sets`` as a DataFrame, one column per set of claim 5."""
    import pandas as pd

    from ..analysis.report_text import compare_sets

    names = {"residual_block": "whole residual block", "always_on": "always-on subset"}
    return pd.DataFrame(compare_sets(report)).rename(columns=names)


def outweighs(report: Report) -> pd.Series:
    """How much more zeroing the always-on neurons costs than zeroing as many random
    monosemantic neurons (the ``outweighs_monosemantic`` verdict's value), beside the
    probability eps that any one feature is active, as a pandas Series."""
    import pandas as pd

    ratio = report.sets["always_on"].verdicts["outweighs_monosemantic"].value
    return pd.Series({"always-on / as many random monosemantic": ratio, "eps": report.config.eps})


def set_numbers(report: Report) -> pd.DataFrame:
    """Per set of claim 5: loss factor with its nonlinearity removed and zeroed, singular
    values near 1 out of m, cosine with the target. A DataFrame, one row per set."""
    import pandas as pd

    rows = {}
    for key, s in report.sets.items():
        v = s.verdicts
        rows[key] = {
            "loss x, nonlinearity removed": v["acts_linearly"].value + 1,
            "loss x, zeroed": v["ablation_matters"].value,
            "singular values near 1": None if s.subspace is None else s.subspace.near_one,
            "m": report.config.m,
            "cosine with target": None if s.subspace is None else s.subspace.cosine_target,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def left_out_table(report: Report) -> pd.DataFrame:
    """The classes the always-on cut leaves out beside the monosemantic neurons: size,
    activity, bias, features carrying 0.999, top share, loss factor when linearised."""
    import pandas as pd

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
    import pandas as pd

    base = report.ablations["none"]
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
    import pandas as pd

    from ..paper.reproduction import metric_variants

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
    """Seed means of mono/N, loss and neurons silent on every single feature, all read with
    the book's variant (activations clipped at 0), for {(nonlinearity, recipe): Results}."""
    import pandas as pd

    rows = {}
    for key, r in groups.items():
        stats = [r.stats(i, "book") for i in range(len(r))]
        rows[key] = {
            "mono/N": float(np.mean([float(s.mono.sum()) / s.N for s in stats])),
            "loss": r.mean("final_loss"),
            "silent": float(np.mean([float(s.dead.sum()) for s in stats])),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


@dataclass
class PowerLawView:
    """Where one power-law instance puts its monosemantic neurons: ``features``
    (``results.FeatureStats``) and ``probs`` [N], each feature's probability."""

    features: Any
    probs: Tensor

    def summary(self) -> pd.Series:
        """Neurons on the frequent and rare halves, best shares of the quarters, and how
        many features are always on (probability capped at 1), as a pandas Series."""
        import pandas as pd

        mono, best = self.features.mono, self.features.best_share
        half, quarter = len(mono) // 2, len(mono) // 4
        return pd.Series(
            {
                f"mono neurons, {half} most frequent features": int(mono[:half].sum()),
                f"mono neurons, {half} rarest features": int(mono[half:].sum()),
                f"best share, {quarter} most frequent": float(best[:quarter].mean()),
                f"best share, {quarter} rarest": float(best[-quarter:].mean()),
                "features with probability 1": int((self.probs >= 1).sum()),
            }
        )

    @property
    def rare_minus_frequent(self) -> float:
        """Mean best share of the rarest quarter minus that of the most frequent quarter."""
        best, quarter = self.features.best_share, len(self.probs) // 4
        return float(best[-quarter:].mean() - best[:quarter].mean())


def power_law_view(results: Results, instance: int) -> PowerLawView:
    """``PowerLawView`` of one instance with power-law features."""
    from ..core.data import feature_probabilities

    c = results.configs[instance]
    return PowerLawView(results.features(instance), feature_probabilities(c.N, c.eps, "power_law"))


# -- the appendix: every stored batch of Table 1 -----------------------------------------------


def batch_table(stored: dict[str, Results]) -> pd.DataFrame:
    """Every stored batch ({name: Results}): what it sweeps, models, seeds, training time,
    code digest and whether it is current (``reproduction.is_current``). A DataFrame."""
    import pandas as pd

    from ..paper.reproduction import is_current
    from ..paper.table1 import TABLE1

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
    import pandas as pd

    from ..paper.table1 import BOOK_RULES

    return pd.Series(BOOK_RULES, name="book scale").rename_axis("quantity").to_frame()


def departures_table(scales: tuple[str, ...] = ("paper", "book")) -> pd.DataFrame:
    """Every batch's departures between two scales (``reproduction.departures``): one row
    per batch, one column per quantity, each cell "paper -> book" where they differ."""
    import pandas as pd

    from ..paper.reproduction import departures
    from ..paper.table1 import TABLE1

    cell = lambda p, b: p if p == b else f"{p} → {b}"
    rows = {name: {q: cell(*v) for q, v in departures(name, scales).items()} for name in TABLE1}
    return pd.DataFrame.from_dict(rows, orient="index")


def batch_caption(name: str, series: SweepSeries) -> Markdown:
    """The caption under a batch's sweep plot: its description and the sentence generated from
    its numbers (``reproduction.batch_sentence``), as IPython Markdown."""
    from IPython.display import Markdown

    from ..paper.reproduction import batch_sentence
    from ..paper.table1 import TABLE1

    return Markdown(f"*{TABLE1[name].description}.* " + batch_sentence(series))


def folder_size(path: str | Path) -> int:
    """Bytes in the files under ``path``."""
    from pathlib import Path

    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# -- small views the chapters' checks and tables read --------------------------------------------


def claim2_table(claim: Claim) -> pd.DataFrame:
    """A claim 2's seed-mean biases of monosemantic and polysemantic neurons, one row per
    learning rate, as a DataFrame."""
    import pandas as pd

    return pd.DataFrame(claim.numbers).rename_axis("lr")


def decay_pair(factorial: Results, scale: str = "book") -> list[int]:
    """Indices into ``bias_factorial``'s Results of initial bias -1 without decay and of the
    recipe's seed 0 (chapter 3's training curves)."""
    eng = engineered_model(scale)
    no_decay = factorial.where(init_bias=eng.init_bias, bias_decay=0.0)[0]
    return [no_decay, factorial.where(init_bias=eng.init_bias, bias_decay=eng.bias_decay)[0]]


def lever_numbers(live: Results, views: dict) -> pd.Series:
    """Chapter 3's two levers on the live grid, as a pandas Series: mono/N and loss with no
    lever, the best of the bias grid and with the strongest L1 penalty."""
    import pandas as pd

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


def abs_pair_table(results: Results) -> pd.DataFrame:
    """``reproduction.abs_pairs`` as a DataFrame: per abs instance, the features with a
    monosemantic neuron for +f_j, for -f_j and for both."""
    import pandas as pd

    from ..paper.reproduction import abs_pairs

    return pd.DataFrame(abs_pairs(results)).set_index(["lr", "seed"])


def metric_tables(
    stored: dict[str, Results], g1_lr: float = 0.01
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mono/N by the paper's metric and by the book's variant (seed 0) of the stored LR5 (by
    rate) and G1 at ``g1_lr`` (by initial bias): two DataFrames."""
    import pandas as pd

    from ..paper.reproduction import metric_variant_rows

    lr5 = pd.DataFrame(metric_variant_rows(stored["LR5"])).set_index("lr")
    g1 = pd.DataFrame(metric_variant_rows(stored["G1"]))
    g1 = g1[np.isclose(g1.lr, g1_lr)].set_index("init_bias").drop(columns="lr")
    return lr5, g1


def book_batches(scale: str = "book") -> tuple[Results, ...]:
    """Chapters 2 and 3's batches as Results, trained or loaded from the cache: the
    learning-rate sweep (``lr_sweep``) and the recipe (``bias_factorial``)."""
    from ..store.cache import load_or_train
    from ..store.results import Results

    return tuple(
        Results.from_run(load_or_train(batch(scale)), scale=scale)
        for batch in (lr_sweep, bias_factorial)
    )


def stays_ahead(counts: pd.DataFrame, start: float) -> bool:
    """Whether one column of ``threshold_counts`` (two models) is above the other at every
    threshold from ``start`` up."""
    lead = counts.loc[start:].diff(axis=1).iloc[:, 1]
    return bool((lead > 0).all() or (lead < 0).all())
