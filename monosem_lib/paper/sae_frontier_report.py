"""Reading the frontier study: choices, frontiers, compute bills, and its command line.

* ``knee_index`` and ``frontier_choices``: each contender's grid point at each regime, length
  and seed, chosen by a rule that uses no ground truth (the knee of loss against L0: among
  the points no other beats on both, the one farthest below the chord from the sparsest to
  the densest, in log L0 and loss scaled to [0, 1]; the lowest loss when no point lies below
  or fewer than three remain) and by the oracle (the most
  features covered at 0.999, a TopK SAE's with its threshold, then MMCS), both from stored
  rows;
* ``frontier_points``: the chosen points over seeds (mean, min and max), with the bill of
  the whole tuning grid (every grid point's training FLOPs and seconds, plus the model an SAE
  on h reads), the curves against FLOPs; ``grid_points``: every grid point over seeds, the
  curves against L0;
* ``decay_study_bill``: what the decay study that tuned the recipe cost (models, steps,
  samples, FLOPs from the configs; seconds from its stored cells), and ``frontier_bill``: the
  planned FLOPs of a frontier shape;
* ``frontier_report``: all of that for a shape's stored cells, as lines of text;
* ``python -m monosem_lib.paper.sae_frontier_report --shape book [--limit n] [--report]``;
  the library's command line has the same as ``python -m monosem_lib sae-frontier book``
  (``apps.study_commands``, what ``make data-sae-frontier`` runs).
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from .decay_cells import STUDY_FOLDERS, study_cells
from .sae_frontier import (
    FRONTIER_SHAPES,
    frontier_cells,
    frontier_model_configs,
    frontier_rows,
    frontier_sae_configs,
    run_frontier,
    stale_frontier_cells,
)

__all__ = [
    "knee_index",
    "frontier_choices",
    "frontier_points",
    "grid_points",
    "decay_study_bill",
    "frontier_bill",
    "format_frontier",
    "judged_coverage",
    "knee_loss",
    "frontier_report",
    "main",
]

_KEY = ("m", "eps", "samples", "seed", "contender", "kind")
# What a frontier point reports: coverage (0.999), MMCS, FVU, L0, dead units, and for TopK the
# same coverage and L0 with the inference-time threshold.
_METRICS = (
    "features_covered",
    "mmcs",
    "fvu",
    "loss",
    "l0",
    "dead",
    "thr_features_covered",
    "thr_l0",
    "recovered",
    "mono_per_feature",
    "thr_loss",
    "loss_recovered",
    "thr_loss_recovered",
    "model_loss",
)


def _value(row: dict, name: str) -> float | None:
    """A row's metric ``name``, or one derived from it: ``loss_recovered`` (and its ``thr_``
    twin) is (zero loss - spliced loss) / (zero loss - the model's own loss) for an SAE on h,
    the share of the model's gain over predicting zero that splicing keeps."""
    if name.endswith("loss_recovered"):
        spliced = row.get(name.removesuffix("_recovered"))
        zero, own = row.get("zero_loss"), row.get("model_loss")
        if spliced is None or zero is None or own is None or zero == own:
            return None
        return (float(zero) - float(spliced)) / (float(zero) - float(own))
    value = row.get(name)
    return None if value is None else float(value)


def _undominated(l0: Sequence[float], loss: Sequence[float]) -> list[int]:
    """The points no other point beats on both axes (as low an L0 and a loss, one lower)."""

    def beaten(i: int) -> bool:
        return any(
            l0[j] <= l0[i] and loss[j] <= loss[i] and (l0[j] < l0[i] or loss[j] < loss[i])
            for j in range(len(l0))
        )

    return [i for i in range(len(l0)) if not beaten(i)]


def knee_index(l0: Sequence[float], loss: Sequence[float]) -> int:
    """The knee of ``loss`` against ``l0`` (see the module's text) among the points that no
    other point beats on both (a point with a higher L0 and a higher loss than another is no
    candidate): an index into both."""
    if len(l0) != len(loss) or not l0:
        raise ValueError(
            f"l0 and loss must be equally long and non-empty, got {len(l0)}, {len(loss)}"
        )
    keep = _undominated(l0, loss)
    lowest = min(keep, key=lambda i: loss[i])
    if len(keep) < 3:
        return lowest
    x = {i: math.log(max(l0[i], 1e-9)) for i in keep}
    y = {i: loss[i] for i in keep}
    xr = (max(x.values()) - min(x.values())) or 1.0
    yr = (max(y.values()) - min(y.values())) or 1.0
    xs = {i: (v - min(x.values())) / xr for i, v in x.items()}
    ys = {i: (v - min(y.values())) / yr for i, v in y.items()}
    a, b = min(keep, key=lambda i: xs[i]), max(keep, key=lambda i: xs[i])
    if xs[a] == xs[b]:
        return lowest

    def below(i: int) -> float:  # how far point i lies below the chord from a to b
        chord = ys[a] + (ys[b] - ys[a]) * (xs[i] - xs[a]) / (xs[b] - xs[a])
        return chord - ys[i]

    best = max(keep, key=below)
    return best if below(best) > 1e-12 else lowest


def knee_loss(row: dict) -> float:
    """The ground-truth-free loss a row is chosen by: a model's loss, an SAE's FVU."""
    return float(row["loss"] if row["contender"] in ("baseline", "engineered") else row["fvu"])


def judged_coverage(entry: dict):
    """The coverage a row or point is judged by: a TopK SAE's with its inference threshold
    (``thr_features_covered``) where it has one, else ``features_covered``."""
    return entry.get("thr_features_covered", entry.get("features_covered"))


def _oracle(rows: list[dict]) -> int:
    """The most features covered (a TopK SAE's with its threshold, the score it is judged
    by), then the highest MMCS."""

    def score(row: dict) -> tuple[float, float]:
        return (judged_coverage(row), row["mmcs"])

    return max(range(len(rows)), key=lambda i: score(rows[i]))


def frontier_choices(rows: Iterable[dict]) -> list[dict]:
    """One entry per contender, regime, length and seed: its key, ``chosen`` and ``oracle``
    (the rows picked) and ``grid`` (every row of its tuning grid)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[tuple(row.get(k) for k in _KEY)].append(row)
    out = []
    for key, grid in groups.items():
        grid = sorted(grid, key=lambda r: (r["grid"] is not None, r["grid"] or 0))
        chosen = knee_index([r["l0"] for r in grid], [knee_loss(r) for r in grid])
        out.append(
            {
                **dict(zip(_KEY, key)),
                "chosen": grid[chosen],
                "oracle": grid[_oracle(grid)],
                "grid": grid,
            }
        )
    return out


def _bill(entry: dict) -> tuple[float, float]:
    """FLOPs and seconds of a choice's whole tuning grid (plus the model an SAE on h reads)."""
    grid = entry["grid"]
    flops = (
        sum(r["flops"] for r in grid) + grid[0].get("model_flops", 0) + grid[0].get("h_flops", 0)
    )
    return float(flops), float(sum(r["seconds"] for r in grid))


def frontier_points(
    rows: Iterable[dict],
    which: str = "chosen",
    metrics: Sequence[str] = _METRICS,
) -> list[dict]:
    """Per contender, regime and length: each metric of the ``which`` (chosen or oracle) row
    as mean, min and max over seeds, the seeds found, and the mean bill of the grid."""
    if which not in ("chosen", "oracle"):
        raise ValueError(f"which={which!r} is not allowed: must be chosen or oracle")
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for entry in frontier_choices(rows):
        groups[tuple(entry[k] for k in _KEY if k != "seed")].append(entry)
    out = []
    for key, entries in sorted(groups.items(), key=lambda kv: _order(kv[0])):
        point: dict = dict(zip([k for k in _KEY if k != "seed"], key), seeds=len(entries))
        for name in metrics:
            values = [v for e in entries if (v := _value(e[which], name)) is not None]
            if values:
                point[name] = (sum(values) / len(values), min(values), max(values))
        bills = [_bill(e) for e in entries]
        point["flops"] = sum(b[0] for b in bills) / len(bills)
        point["seconds"] = sum(b[1] for b in bills) / len(bills)
        out.append(point)
    return out


def grid_points(rows: Iterable[dict], metrics: Sequence[str] = _METRICS) -> list[dict]:
    """Every grid point (each contender's every setting) at every regime and length, its
    metrics as mean, min and max over seeds: the points of the curves against L0."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(*(row.get(k) for k in _KEY if k != "seed"), row.get("grid"))].append(row)
    out = []
    for key, found in sorted(groups.items(), key=lambda kv: (*_order(kv[0][:-1]), kv[0][-1] or 0)):
        point: dict = dict(zip([*(k for k in _KEY if k != "seed"), "grid"], key), seeds=len(found))
        for name in metrics:
            values = [v for r in found if (v := _value(r, name)) is not None]
            if values:
                point[name] = (sum(values) / len(values), min(values), max(values))
        out.append(point)
    return out


def _order(key: tuple) -> tuple:
    """Points by regime (largest m, sparsest eps first), contender, kind, then length."""
    m, eps, samples, contender, kind = key
    rank = ("baseline", "engineered", "sae-x", "sae-hb", "sae-he")
    where = rank.index(contender) if contender in rank else len(rank)
    return (-m, eps, where, kind or "", samples)


def decay_study_bill(name: str = "book", data: str | Path | None = None) -> dict:
    """What the decay study ``name`` trains (``decay_cells.STUDIES``): models, optimizer steps,
    samples and training FLOPs from its configs; with ``data`` (the data folder) also the
    measured training seconds summed over the cells stored there and how many were found."""
    models = steps = samples = flops = 0
    cells = 0
    for _, configs in study_cells(name):
        cells += 1
        for c in configs:
            models += 1
            steps += c.steps
            samples += c.steps * c.batch
            flops += c.flops_per_sample * c.batch * c.steps
    out: dict = {
        "cells": cells,
        "models": models,
        "model_steps": steps,
        "samples": samples,
        "flops": flops,
    }
    if data is not None:
        seconds, found = 0.0, 0
        for path in sorted((Path(data) / STUDY_FOLDERS[name]).glob("*.json")):
            meta = json.loads(path.read_text())
            if isinstance(meta.get("train_seconds"), (int, float)):
                seconds, found = seconds + float(meta["train_seconds"]), found + 1
        out.update(seconds=seconds, cells_found=found)
    return out


def frontier_bill(shape: str) -> dict:
    """The planned training FLOPs of a frontier shape (models, SAEs, the h they read; AuxK and
    resampling left out) and its numbers of cells and trained instances."""
    flops = instances = 0
    cells = frontier_cells(shape)
    for cell in cells:
        models = frontier_model_configs(cell.shape, cell.m, cell.eps, cell.samples, cell.seed)
        if cell.part == "models":
            flops += sum(c.flops_per_sample * c.batch * c.steps for c in models)
            instances += len(models)
            continue
        saes = frontier_sae_configs(cell)
        flops += sum(c.flops_per_sample * c.batch * c.steps for c in saes)
        if cell.on == "h":
            mc = models[0]
            flops += 2 * mc.m * mc.k * saes[0].batch * saes[0].steps
        instances += len(saes)
    return {"cells": len(cells), "instances": instances, "flops": flops}


def _cell(value: object) -> str:
    if isinstance(value, tuple):
        mean, lo, hi = value
        return f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"
    return "-" if value is None else str(value)


def format_frontier(points: Sequence[dict]) -> str:
    """The frontier points as a text table, one line a point."""
    names = {"features_covered": "covered", "mmcs": "MMCS", "fvu": "FVU", "loss": "loss"}
    names.update(l0="L0", dead="dead", thr_features_covered="thr covered", thr_l0="thr L0")
    names.update(recovered="recovered", mono_per_feature="mono/N", thr_loss="thr loss")
    names.update(loss_recovered="loss rec.", thr_loss_recovered="thr loss rec.")
    names.update(model_loss="model loss")
    head = ["m", "eps", "samples", "contender", "kind", "seeds"]
    head += [names[k] for k in _METRICS] + ["GFLOP", "s"]
    lines = ["\t".join(head)]
    for p in points:
        eps = f"1/{round(1 / p['eps'])}"
        values = [
            p["m"],
            eps,
            f"2^{round(math.log2(p['samples']))}",
            p["contender"],
            p.get("kind") or "-",
            p["seeds"],
        ]
        values += [_cell(p.get(k)) for k in _METRICS]
        values += [f"{p['flops'] / 1e9:.1f}", f"{p['seconds']:.0f}"]
        lines.append("\t".join(str(v) for v in values))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m monosem_lib.paper.sae_frontier_report --shape book [--out DIR] [--limit n]
    [--report]``: make the missing cells (at most n), or with ``--report`` print what the
    stored cells show, the study's planned bill and the decay study's."""
    parser = argparse.ArgumentParser(description="The SAE frontier study (issue 29).")
    parser.add_argument("--shape", choices=list(FRONTIER_SHAPES), default="book")
    parser.add_argument("--out", default="data/sae-frontier", help="root folder")
    parser.add_argument("--limit", type=int, default=None, help="train at most this many cells")
    parser.add_argument("--report", action="store_true", help="print, train nothing")
    parser.add_argument("--data", default="data", help="the data folder (decay study's bill)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 0:
        parser.error(f"--limit={args.limit} is not allowed: must be >= 0")
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads={args.threads} is not allowed: must be >= 1")
        torch.set_num_threads(args.threads)
    if not args.report:
        written = run_frontier(args.out, args.shape, limit=args.limit)
        left = len(stale_frontier_cells(args.out, args.shape))
        print(f"{args.shape}: wrote {len(written)} cells; {left} to go")
        return 0
    print("\n".join(frontier_report(args.out, args.shape, args.data)))
    return 0


def frontier_report(root: str | Path, shape: str, data: str | Path = "data") -> list[str]:
    """What the stored cells of ``shape`` under ``root`` show, as lines: each contender chosen
    by the knee and by the oracle (``format_frontier``), the cells still to go with the shape's
    planned bill, and the book-scale decay study's bill (its cells read under ``data``)."""
    rows = list(frontier_rows(root, shape))
    lines = []
    for which, title in (("chosen", "knee of loss against L0"), ("oracle", "most covered")):
        lines.append(f"# {which} ({title})")
        lines += format_frontier(frontier_points(rows, which)).split("\n")
    missing = len(stale_frontier_cells(root, shape))
    lines.append(f"# cells to go: {missing}; planned bill: {frontier_bill(shape)}")
    lines.append(f"# decay study (book): {decay_study_bill('book', data)}")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
