"""What the frontier study says, as numbers a chapter states and asserts (issue 29).

``frontier_facts`` reads the chosen (knee) and oracle points of ``sae_frontier_report`` and
returns flat, named numbers: per regime and contender at the longest length, coverage at
0.999 (mean over seeds and the seeds' lowest and highest), TopK's coverage with the
inference-time threshold, MMCS, dead units, the seeds it holds (``_seeds``) and the tuning
grid's GFLOP and seconds; and the numbers the chapter's verdicts rest on (the cheapest SAE
point that covers nearly every feature, the widest gap between the knee and the oracle, the
lowest MMCS of any SAE on h against the highest of any neuron axes). ``bill_facts`` gives
what the decay study that tuned the recipe cost beside what the frontier study cost.
``rate_facts`` compares the rate-swept shape (``book-rates``) with the fixed-rate one at the
points both hold. Names are ``fr_<regime>_<contender>_<metric>``: regime ``m32e16``,
contender ``base``, ``eng``, ``x_topk``, ``x_relu``, ``hb_topk``, ``hb_relu``, ``he_topk`` or
``he_relu``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from .sae_frontier import load_frontier
from .sae_frontier_report import (
    decay_study_bill,
    frontier_bill,
    frontier_choices,
    frontier_points,
    grid_points,
    judged_coverage,
    knee_loss,
)

__all__ = [
    "CONTENDER_TAGS",
    "regime_tag",
    "frontier_facts",
    "dominance_facts",
    "rate_comparison",
    "rate_facts",
    "bill_facts",
    "shape_facts",
]

# (contender, kind) -> the short tag a fact's name carries.
CONTENDER_TAGS = {
    ("baseline", None): "base",
    ("engineered", None): "eng",
    ("sae-x", "topk"): "x_topk",
    ("sae-x", "relu"): "x_relu",
    ("sae-hb", "topk"): "hb_topk",
    ("sae-hb", "relu"): "hb_relu",
    ("sae-he", "topk"): "he_topk",
    ("sae-he", "relu"): "he_relu",
}
_SAE_H = ("hb_topk", "hb_relu", "he_topk", "he_relu")


def regime_tag(m: int, eps: float) -> str:
    """``m32e16`` for m = 32, eps = 1/16."""
    return f"m{m}e{round(1 / eps)}"


def _tag(point: dict) -> str:
    return CONTENDER_TAGS[(point["contender"], point.get("kind"))]


def _point_facts(prefix: str, point: dict) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, name in (("features_covered", "cov"), ("thr_features_covered", "thr_cov")):
        if key in point:
            mean, lo, hi = point[key]
            out.update({f"{prefix}_{name}": mean, f"{prefix}_{name}_lo": lo})
            out[f"{prefix}_{name}_hi"] = hi
    metrics = ("mmcs", "dead", "fvu", "l0", "loss", "thr_loss", "recovered", "mono_per_feature")
    for key in (*metrics, "loss_recovered", "thr_loss_recovered", "model_loss"):
        if key in point:
            out[f"{prefix}_{key}"] = point[key][0]
    if "seeds" in point:
        out[f"{prefix}_seeds"] = point["seeds"]  # how many seeds the point holds
    if "flops" in point:
        out[f"{prefix}_gflop"] = point["flops"] / 1e9
        out[f"{prefix}_seconds"] = point["seconds"]
    return out


def _length_facts(tag: str, chosen: list[dict]) -> dict[str, float]:
    """Each contender's chosen coverage (TopK's with its threshold) and bill at every length:
    ``fr_<regime>_<contender>_n<log2 samples>_cov`` and ``_gflop``."""
    out: dict[str, float] = {}
    for p in chosen:
        name = f"fr_{tag}_{_tag(p)}_n{round(math.log2(p['samples']))}"
        out.update({f"{name}_cov": _best_cov(p)[0], f"{name}_gflop": p["flops"] / 1e9})
    return out


def _grid_facts(tag: str, grid: list[dict]) -> dict[str, float]:
    """Every grid point at the longest length, ``fr_<regime>_<contender>_g<grid>_<metric>``
    (``cov`` being TopK's thresholded coverage), over seeds; and at the shortest length,
    where it differs, ``fr_<regime>_<contender>_short_g<grid>_<metric>``."""
    longest, shortest = max(p["samples"] for p in grid), min(p["samples"] for p in grid)
    names = {longest: "", shortest: "_short"} if shortest < longest else {longest: ""}
    out: dict[str, float] = {}
    for p in grid:
        if p["samples"] in names and p.get("grid") is not None:
            prefix = f"fr_{tag}_{_tag(p)}{names[p['samples']]}_g{p['grid']:g}"
            out.update(_point_facts(prefix, p))
            mean, lo, hi = _best_cov(p)  # TopK's thresholded coverage, and its seeds' range
            out.update({f"{prefix}_cov": mean, f"{prefix}_cov_lo": lo, f"{prefix}_cov_hi": hi})
    return out


def dominance_facts(
    rows: Iterable[dict], contender: str, samples: int, better: float, worse: float
) -> dict[str, float]:
    """Whether grid point ``better`` beats ``worse`` on both of the knee's axes (a lower L0
    and a lower ``knee_loss``) in every seed of ``contender`` (a model: ``baseline`` or
    ``engineered``) at ``samples``: ``fr_<regime>_<contender>_g<better>_over_g<worse>_seeds``
    (seeds that hold both), ``_dominated`` (seeds where it beats it on both) and
    ``_loss_gap_min`` (the smallest loss gap over seeds, relative to the worse point's loss)."""
    pairs: dict[tuple, dict[float, dict]] = {}
    for r in rows:
        if r["contender"] == contender and r["samples"] == samples and r.get("grid") is not None:
            pairs.setdefault((r["m"], r["eps"], r["seed"]), {})[float(r["grid"])] = r
    out: dict[str, float] = {}
    for m, eps in sorted({(m, eps) for m, eps, _ in pairs}):
        grids = [g for (mm, ee, _), g in pairs.items() if (mm, ee) == (m, eps)]
        both = [(g[better], g[worse]) for g in grids if better in g and worse in g]
        name = f"fr_{regime_tag(m, eps)}_{CONTENDER_TAGS[(contender, None)]}"
        name += f"_g{better:g}_over_g{worse:g}"
        losses = [(knee_loss(b), knee_loss(w)) for b, w in both]
        out[f"{name}_seeds"] = len(both)
        out[f"{name}_dominated"] = sum(
            b["l0"] < w["l0"] and lb < lw for (b, w), (lb, lw) in zip(both, losses)
        )
        gaps = ((lw - lb) / lw for lb, lw in losses)
        out[f"{name}_loss_gap_min"] = min(gaps, default=math.nan)
    return out


def knee_facts(rows: Iterable[dict]) -> dict[str, float]:
    """How often the knee picks each end of a grid: ``fr_knee_choices`` (contender, regime,
    length and seed with a grid), and the shares ``fr_knee_middle`` (neither end),
    ``fr_knee_densest`` and ``fr_knee_sparsest`` (by L0)."""
    picks = []
    for entry in frontier_choices(rows):
        grid = entry["grid"]
        if len(grid) < 3:
            continue
        order = sorted(range(len(grid)), key=lambda i: grid[i]["l0"])
        picks.append(order.index(grid.index(entry["chosen"])) / (len(grid) - 1))
    n = max(1, len(picks))
    return {
        "fr_knee_choices": len(picks),
        "fr_knee_middle": sum(0 < v < 1 for v in picks) / n,
        "fr_knee_densest": sum(v == 1 for v in picks) / n,
        "fr_knee_sparsest": sum(v == 0 for v in picks) / n,
    }


def _best_cov(point: dict) -> tuple[float, float, float]:
    """Coverage, or for TopK the thresholded coverage (the fairer of its two scores)."""
    return judged_coverage(point)


def _cheapest(points: Sequence[dict], tags: Sequence[str], at_least: float) -> dict | None:
    """The point of the lowest bill among ``tags`` whose seeds all cover ``at_least``."""
    ok = [p for p in points if _tag(p) in tags and _best_cov(p)[1] >= at_least]
    return min(ok, key=lambda p: p["flops"]) if ok else None


def _regime_facts(tag: str, chosen: list[dict], oracle: list[dict]) -> dict[str, float]:
    """Facts of one regime: every contender at the longest length, chosen and oracle."""
    longest = max(p["samples"] for p in chosen)
    shortest = min(p["samples"] for p in chosen)
    out: dict[str, float] = {}
    for which, points in (("", chosen), ("_oracle", oracle)):
        for p in points:
            if p["samples"] == longest:
                out.update(_point_facts(f"fr_{tag}_{_tag(p)}{which}", p))
            elif p["samples"] == shortest and not which:
                out.update(_point_facts(f"fr_{tag}_{_tag(p)}_short", p))
    gaps = [
        (_best_cov(o)[0] - _best_cov(c)[0], _tag(c))
        for c in chosen
        for o in oracle
        if (_tag(c), c["samples"]) == (_tag(o), o["samples"]) and c["samples"] == longest
    ]
    nan = math.nan  # a fact over contenders a regime lacks
    out[f"fr_{tag}_knee_gap_max"] = max((g for g, _ in gaps), default=nan)
    neurons = [p for p in chosen if _tag(p) in ("base", "eng")]
    sae_h = [p for p in chosen if _tag(p) in _SAE_H]
    out[f"fr_{tag}_neuron_mmcs_max"] = max((p["mmcs"][2] for p in neurons), default=nan)
    out[f"fr_{tag}_sae_h_mmcs_min"] = min((p["mmcs"][1] for p in sae_h), default=nan)
    out[f"fr_{tag}_sae_h_cov_min"] = min((_best_cov(p)[1] for p in sae_h), default=nan)
    short_h = (_best_cov(p)[1] for p in sae_h if p["samples"] == shortest)
    out[f"fr_{tag}_sae_h_short_cov_min"] = min(short_h, default=nan)
    last = [p for p in sae_h if p["samples"] == longest]
    out[f"fr_{tag}_sae_h_best_cov"] = max((_best_cov(p)[0] for p in last), default=nan)
    recovered = (p["recovered"][0] for p in last if "recovered" in p)
    out[f"fr_{tag}_sae_h_recovered_max"] = max(recovered, default=nan)
    sae_x = [p for p in [*chosen, *oracle] if _tag(p) in ("x_topk", "x_relu")]
    out[f"fr_{tag}_sae_x_cov_max"] = max((_best_cov(p)[0] for p in sae_x), default=nan)
    eng = [p["features_covered"][2] for p in neurons if _tag(p) == "eng"]
    out[f"fr_{tag}_eng_cov_hi_all"] = max(eng, default=nan)
    return out


def frontier_facts(rows: Iterable[dict], nearly_all: float = 0.95) -> dict[str, float]:
    """The named numbers of the stored frontier ``rows`` (see the module's text);
    ``nearly_all``: the coverage the cheapest-point facts ask of every seed."""
    rows = list(rows)
    if not rows:
        raise ValueError("no frontier rows: run make data-sae-frontier")
    chosen, oracle = frontier_points(rows, "chosen"), frontier_points(rows, "oracle")
    grid = grid_points(rows)
    out: dict[str, float] = {"fr_samples_max": max(p["samples"] for p in chosen)}
    out["fr_samples_min"] = min(p["samples"] for p in chosen)
    out["fr_seeds"] = min(p["seeds"] for p in chosen)
    for m, eps in sorted({(p["m"], p["eps"]) for p in chosen}, key=lambda r: (-r[0], r[1])):
        tag = regime_tag(m, eps)
        mine = [p for p in chosen if (p["m"], p["eps"]) == (m, eps)]
        theirs = [p for p in oracle if (p["m"], p["eps"]) == (m, eps)]
        out.update(_regime_facts(tag, mine, theirs))
        out.update(_length_facts(tag, mine))
        out.update(_grid_facts(tag, [p for p in grid if (p["m"], p["eps"]) == (m, eps)]))
        for group, tags in (("sae_h", _SAE_H), ("sae_x", ("x_topk", "x_relu"))):
            best = _cheapest(mine, tags, nearly_all)
            if best is not None:
                out[f"fr_{tag}_{group}_cheapest_gflop"] = best["flops"] / 1e9
                out[f"fr_{tag}_{group}_cheapest_samples"] = best["samples"]
                out[f"fr_{tag}_{group}_cheapest_cov_lo"] = _best_cov(best)[1]
    out.update(knee_facts(rows))
    return out


def shape_facts(rows: Iterable[dict], prefix: str, shape: str | None = None) -> dict[str, float]:
    """The facts of another shape's stored ``rows`` (the paper's, ``prefix`` ``"frp"``): its
    regimes' facts as ``frontier_facts`` names them (``fr_m64e64_...``: the regime keeps them
    apart from the book's), its study-wide numbers under ``prefix`` instead of ``fr``
    (``frp_seeds``, ``frp_samples_max``, ``frp_knee_middle``, ...), and what its rows cost:
    ``<prefix>_rows``, ``<prefix>_tflop`` and ``<prefix>_hours`` (summed training seconds);
    with ``shape``, what its whole plan holds (``<prefix>_plan_cells``, ``_plan_tflop``, and
    ``_plan_hours`` at the rate its stored rows were trained), what is left of it
    (``<prefix>_left_tflop`` and ``_left_hours``, at that rate) and how many of its cells are
    stored (``<prefix>_cells``)."""
    rows = list(rows)
    facts = frontier_facts(rows)
    tags = {regime_tag(r["m"], r["eps"]) for r in rows}
    out: dict[str, float] = {}
    for name, value in facts.items():
        if any(name.startswith(f"fr_{t}_") for t in tags):
            out[name] = value
        else:
            out[prefix + name.removeprefix("fr")] = value
    out[f"{prefix}_rows"] = len(rows)
    out[f"{prefix}_tflop"] = sum(float(r["flops"]) for r in rows) / 1e12
    out[f"{prefix}_hours"] = sum(float(r["seconds"]) for r in rows) / 3600
    rate = out[f"{prefix}_tflop"] / max(out[f"{prefix}_hours"], 1e-12)  # TFLOP an hour, measured
    if shape is not None:
        plan = frontier_bill(shape)
        out.update(
            {f"{prefix}_plan_cells": plan["cells"], f"{prefix}_plan_tflop": plan["flops"] / 1e12}
        )
        out[f"{prefix}_plan_hours"] = out[f"{prefix}_plan_tflop"] / rate
        out[f"{prefix}_left_tflop"] = out[f"{prefix}_plan_tflop"] - out[f"{prefix}_tflop"]
        out[f"{prefix}_left_hours"] = out[f"{prefix}_left_tflop"] / rate
        out[f"{prefix}_cells"] = len({(r["samples"], r["seed"], r.get("part")) for r in rows})
    return out


def rate_comparison(fixed: Iterable[dict], swept: Iterable[dict]) -> list[dict]:
    """The rate-swept study against the fixed rate at the regimes, lengths and seeds that
    both hold: one record per regime, SAE contender and length with the chosen points'
    coverage (thresholded for TopK) at the fixed rate (``fixed``) and swept (``swept``), and
    the rates the swept grid kept (``rates``: each kept rate, one per grid point and seed)."""
    swept = list(swept)
    if not swept:
        return []
    seeds = {r["seed"] for r in swept}
    lengths = {r["samples"] for r in swept}
    keep = [r for r in fixed if r["seed"] in seeds and r["samples"] in lengths]
    a, b = frontier_points(keep, "chosen"), frontier_points(swept, "chosen")
    index = {(p["m"], p["eps"], p["samples"], _tag(p)): p for p in a}
    rates: dict[tuple, list[float]] = {}
    for r in swept:
        if r["contender"].startswith("sae"):
            key = (r["m"], r["eps"], r["samples"], CONTENDER_TAGS[(r["contender"], r["kind"])])
            rates.setdefault(key, []).append(float(r["lr"]))
    out = []
    for p in b:
        key = (p["m"], p["eps"], p["samples"], _tag(p))
        if not p["contender"].startswith("sae") or key not in index:
            continue
        record = {"m": p["m"], "eps": p["eps"], "samples": p["samples"], "tag": _tag(p)}
        record.update(fixed=_best_cov(index[key])[0], swept=_best_cov(p)[0])
        out.append({**record, "rates": sorted(rates.get(key, []))})
    return out


def rate_facts(fixed: Iterable[dict], swept: Iterable[dict], rate: float = 1e-3) -> dict:
    """``rate_comparison`` by name: per regime, SAE contender and length (``n18`` for 2^18)
    the swept coverage, the fixed one and the gain; the largest change at each length
    (``rate_n21_abs_max``), the largest gain and loss over all, and the share of grid points
    that kept the fixed ``rate``. Empty without swept rows."""
    records = rate_comparison(fixed, swept)
    if not records:
        return {}
    out: dict[str, float] = {}
    for r in records:
        name = f"rate_{regime_tag(r['m'], r['eps'])}_{r['tag']}_n{round(math.log2(r['samples']))}"
        out.update({f"{name}_cov": r["swept"], f"{name}_fixed_cov": r["fixed"]})
        out[f"{name}_gain"] = r["swept"] - r["fixed"]
    for n in sorted({r["samples"] for r in records}):
        moved = [abs(r["swept"] - r["fixed"]) for r in records if r["samples"] == n]
        out[f"rate_n{round(math.log2(n))}_abs_max"] = max(moved)
    gains = [r["swept"] - r["fixed"] for r in records]
    kept = [v for r in records for v in r["rates"]]
    out.update(rate_gain_max=max(gains), rate_gain_min=min(gains), rate_points=len(kept))
    out["rate_kept_fixed"] = sum(math.isclose(v, rate) for v in kept) / max(1, len(kept))
    return out


def bill_facts(data: str | Path, shape: str = "book") -> dict[str, float]:
    """The decay study's bill (``decay_study_bill``: models, training TFLOP, measured CPU
    hours) beside the stored frontier study's (TFLOP of every row, CPU hours of its cells),
    read from the data folder ``data``."""
    decay = decay_study_bill("book", data)
    cells = load_frontier(Path(data) / "sae-frontier", shape)
    rows = [r for c in cells.values() for r in c.rows]
    models = sum(1 for c in cells.values() for r in c.rows if r["part"] == "models")
    return {
        "bill_decay_models": decay["models"],
        "bill_decay_tflop": decay["flops"] / 1e12,
        "bill_decay_hours": decay.get("seconds", float("nan")) / 3600,
        "bill_frontier_tflop": sum(r["flops"] for r in rows) / 1e12,
        "bill_frontier_hours": sum(c.meta["cell_seconds"] for c in cells.values()) / 3600,
        "bill_frontier_instances": len(rows),
        "bill_frontier_models": models,
    }
