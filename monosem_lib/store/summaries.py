"""Sweep summaries: what ``data/`` stores for every batch. Built from runs (``save_summary``),
merged from shards (``merge_summaries``), compacted to per-neuron tables (``compact_summary``),
and checked for staleness by one rule (``is_current_for``). ``files`` writes and reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from ..analysis.health import flags
from ..analysis.metrics import (
    MONO_THRESHOLD,
    VARIANTS,
    is_signed,
    monosemanticity,
    single_feature_activations,
    summarize,
    training_curves,
)
from ..core.config import Config
from ..core.training import Run
from ..version import RESULTS_VERSION
from .atomic import NewerVersionError
from .files import Summary, load_summary, provenance, write_run, write_summary
from .verify import FLOAT16_MAX, check_stem, finite_or_none

if TYPE_CHECKING:
    pass

__all__ = [
    "lean_summary",
    "LEAN_POINTS",
    "variant_probe",
    "is_current_for",
    "holds_configs",
    "save_summary",
    "save_run",
    "merge_summaries",
    "shard_stem",
    "neuron_tables",
    "compact_summary",
    "SUMMARY_POINTS",
    "MERGE_KEYS",
    "half_if_exact",
]


def is_current_for(meta: dict, have: Sequence[Config], want: Sequence[Config]) -> bool:
    """Whether a stored result (its ``meta`` and configs ``have``) holds exactly the configs
    ``want`` (devices aside), made by code that produces today's numbers (``RESULTS_VERSION``).
    The one staleness rule: ``--resume``, the studies and the book's checks all apply it."""
    if meta.get("results_version") != RESULTS_VERSION:
        return False
    return [c.replace(device="cpu") for c in have] == [c.replace(device="cpu") for c in want]


def holds_configs(path: str | Path, configs: Sequence[Config]) -> bool:
    """Whether the summary at ``path`` loads, passes verification and is current for
    ``configs`` (``is_current_for``): what ``--resume`` skips. A missing, damaged or stale
    summary gives False (retrain it); one written by a newer version raises
    NewerVersionError, so that it is never retrained over by older code."""
    try:
        stored = load_summary(path)
    except NewerVersionError:
        raise
    except (OSError, ValueError):
        return False
    return is_current_for(stored.meta, stored.configs, configs)


# -- compact summaries: per-neuron tables instead of single-feature activations --------------


def variant_probe(sfa: Tensor, config: Config, variant: str) -> tuple[Tensor, bool]:
    """What a metric variant reads of single-feature activations [..., N or 2N], and whether
    it clips them at 0: ``paper`` the +e_j columns raw, ``book`` every column (-e_j too for
    abs), clipped for GeLU and SoLU."""
    probe = sfa[..., : config.N] if variant == "paper" else sfa
    return probe, variant == "book" and config.nonlinearity != "relu"


def neuron_tables(sfa: Tensor, config: Config) -> dict[str, np.ndarray]:
    """Per-neuron classification of one instance under both metric variants, from its
    single-feature activations [k, N or 2N]: the top share (float32), the top input
    (int16, over 2N signed inputs for abs) and whether the neuron is dead, for each variant;
    enough for every per-neuron and per-feature statistic at the paper's threshold, at about
    1/100 of the activations' size."""
    out = {}
    for variant in VARIANTS:
        probe, clamp = variant_probe(sfa, config, variant)
        share, top, _, dead = monosemanticity(probe.float(), MONO_THRESHOLD, clamp)
        out[f"share_{variant}"] = share.numpy().astype(np.float32)
        out[f"top_{variant}"] = top.numpy().astype(np.int16)
        out[f"dead_{variant}"] = dead.numpy()
    return out


def compact_summary(path: str | Path) -> Path:
    """Rewrite a stored summary with per-neuron tables (``neuron_tables``) in place of its
    single-feature activations; configs, metrics, curves and representative weights are kept
    as they are. The paper-cpu summaries are stored this way to keep data/ small."""
    summary = load_summary(path)
    if summary.meta.get("neurons") == "tables":
        return Path(path)
    arrays = {}
    for key, value in summary.all_arrays().items():
        stem, index = key.rsplit("_", 1)
        if stem == "sfa":
            sfa = torch.from_numpy(value.astype(np.float32))
            tables = neuron_tables(sfa, summary.configs[int(index)])
            arrays.update({f"{k}_{index}": v for k, v in tables.items()})
        else:
            arrays[key] = value
    meta = {k: v for k, v in summary.meta.items() if k not in ("format", "format_version")}
    meta["neurons"] = "tables"
    stem = Path(summary.npz_path).stem
    return write_summary(Path(summary.npz_path).parent, stem, meta, arrays, overwrite=True)


LEAN_POINTS = 16  # loss-history points a lean summary keeps per instance


def lean_summary(path: str | Path) -> Path:
    """Rewrite a stored summary keeping only what a study reads: configs, metrics, flags,
    biases and a loss history of ``LEAN_POINTS`` points (no curves, no per-neuron tables or
    activations, no weights). The decay study is stored this way to keep data/ small."""
    summary = load_summary(path)
    if summary.meta.get("neurons") == "metrics":
        return Path(path)
    arrays = {k: v for k, v in summary.all_arrays().items() if k.rsplit("_", 1)[0] == "bias"}
    drop = ("format", "format_version", "integrity")
    meta = {k: v for k, v in summary.meta.items() if k not in drop}
    meta["instances"] = [_lean_instance(item) for item in meta["instances"]]
    meta["neurons"] = "metrics"
    stem = Path(summary.npz_path).stem
    return write_summary(Path(summary.npz_path).parent, stem, meta, arrays, overwrite=True)


def _lean_instance(item: dict) -> dict:
    """One instance's entry with its curves dropped and its loss history averaged down."""
    out = {k: v for k, v in item.items() if k not in ("curves", "curve_steps")}
    hist = item.get("loss_history")
    if hist and hist.get("loss"):
        loss = np.asarray(hist["loss"], dtype=float)
        group = max(1, len(loss) // LEAN_POINTS)
        kept = loss[: len(loss) // group * group].reshape(-1, group).mean(1)
        out["loss_history"] = {"every": hist["every"] * group, "loss": kept.tolist()}
    out["weights"] = False
    return out


# -- summaries: what data/ stores for every batch ------------------------------------------

SUMMARY_POINTS = 256  # loss-history points kept per instance


def save_summary(
    runs: Run | Iterable[Run],
    path: str | Path,
    *,
    name: str,
    scale: str,
    overwrite: bool = False,
    representative: Iterable[int] = (),
    shard: tuple[int, int] | None = None,
    values: Sequence | None = None,
    steps: int | None = None,
    schedule: str | None = None,
    bias_decay: float | None = None,
    compact: bool = False,
) -> Path:
    """Store a sweep compactly as ``path/<name>.json`` and ``path/<name>.npz``.

    Keeps what the book reads, not the weights: the config and summary metrics of every
    instance, the metrics at every checkpoint, a loss history of at most 256 points, and the
    single-feature activations and biases in float16 (both signs for the abs task, so either
    metric variant can be read back). Provenance: library, results and torch versions, code
    digest, device, date and training time. Full weights only for the instances listed in
    ``representative`` (indices over all runs, in order). ``shard=(i, n)`` marks the file as
    part i of n (see ``merge_summaries``). ``values``, ``steps``, ``schedule`` and ``bias_decay``
    record the
    ``sweep_configs`` arguments the batch was made with (None: the row's or the scale's), so that
    ``reproduction.is_current`` can rebuild exactly these configs. ``compact`` stores
    per-neuron tables (``neuron_tables``) instead of the activations, for large models.
    """
    runs = [runs] if isinstance(runs, Run) else list(runs)
    keep = set(representative)
    instances: list[dict] = []
    arrays: dict[str, np.ndarray] = {}
    for run in runs:
        _add_run(run, len(instances), keep, instances, arrays, compact)
    device = runs[0].model.flat.device
    meta = {
        "name": name,
        "scale": scale,
        **provenance(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "train_seconds": sum(r.train_seconds for r in runs),
        "values": None if values is None else list(values),
        "steps": steps,
        "schedule": schedule,
        "bias_decay": bias_decay,
        "instances": instances,
    }
    if compact:
        meta["neurons"] = "tables"
    stem = name
    if shard is not None:
        meta["shard"] = list(shard)
        stem = shard_stem(name, *shard)
    return write_summary(path, stem, meta, arrays, overwrite=overwrite)


def shard_stem(name: str, index: int, count: int) -> str:
    """The file stem of part ``index`` (0-based) of ``count`` of batch ``name``."""
    return f"{name}.part-{index}-of-{count}"


def _add_run(
    run: Run, start: int, keep: set, instances: list, arrays: dict, compact: bool = False
) -> None:
    """Append ``run``'s instances (numbered from ``start``) to a summary being built."""
    rows, curves = summarize(run), training_curves(run)
    sfa = single_feature_activations(run.model, run.P, is_signed(run.config)).cpu()
    hist = run.loss_history.double()
    stride = max(1, hist.shape[0] // SUMMARY_POINTS)
    coarse = hist[: (hist.shape[0] // stride) * stride].view(-1, stride, hist.shape[1]).mean(1)
    W1, b, W2 = (t.detach().cpu() for t in run.model.split())
    for i, c in enumerate(run.configs):
        index = start + i
        if compact:
            tables = neuron_tables(sfa[i], c)
            arrays.update({f"{k}_{index:03d}": v for k, v in tables.items()})
        else:
            arrays[f"sfa_{index:03d}"] = half_if_exact(sfa[i].numpy())
        arrays[f"bias_{index:03d}"] = half_if_exact(b[i].numpy())
        if index in keep:
            for key, t in (("W1", W1), ("b", b), ("W2", W2), ("P", run.P.cpu())):
                arrays[f"{key}_{index:03d}"] = t[i].numpy()
        instances.append(
            {
                "config": c.to_dict(),
                "metrics": finite_or_none(rows[i]),
                "flags": flags(rows[i], c),
                "curves": {k: v[:, i].tolist() for k, v in curves.items() if k != "steps"},
                "curve_steps": curves["steps"].tolist(),
                "loss_history": {"every": stride, "loss": coarse[:, i].tolist()},
                "weights": index in keep,
            }
        )


def half_if_exact(values: np.ndarray) -> np.ndarray:
    """``values`` in float16, or in float32 where float16 would overflow to inf."""
    if values.size and float(np.abs(values).max()) > FLOAT16_MAX:
        return values.astype(np.float32)
    return values.astype(np.float16)


def merge_summaries(
    parts: Sequence[str | Path], path: str | Path, *, overwrite: bool = False
) -> Path:
    """Combine the shards of one batch (``sweep --shard i/n``) into the file an unsharded
    run writes: instances in shard order, renumbered, with summed training time. The file is
    ``path/<name>.json``, ``name`` being the shards' batch name, which must be a plain name
    (``check_stem``): a shard cannot send the output anywhere else.

    Raises ValueError naming the problem when a part is missing, repeated, damaged, of
    another batch or made with other options (``MERGE_KEYS``, the differing one named).
    """
    loaded = [load_summary(p) for p in parts]
    _check_shards(loaded, [str(p) for p in parts])
    loaded.sort(key=lambda s: s.meta["shard"][0])
    instances: list[dict] = []
    arrays: dict[str, np.ndarray] = {}
    for s in loaded:
        for key, value in s.all_arrays().items():
            stem, index = key.rsplit("_", 1)
            arrays[f"{stem}_{int(index) + len(instances):03d}"] = value
        instances += s.meta["instances"]
    drop = ("format", "format_version", "integrity", "shard")
    meta = {k: v for k, v in loaded[0].meta.items() if k not in drop}
    seconds = [s.meta.get("train_seconds") for s in loaded]
    total = sum(x for x in seconds if isinstance(x, (int, float)))
    meta.update(instances=instances, train_seconds=total)
    return write_summary(path, meta["name"], meta, arrays, overwrite=overwrite)


# What every shard of one batch must agree on (``merge_summaries``).
MERGE_KEYS = (
    "name",
    "scale",
    "results_version",
    "format_version",
    "values",
    "steps",
    "schedule",
    "bias_decay",
    "neurons",
)


def _check_shards(loaded: list[Summary], names: list[str]) -> None:
    shards: list[list[int]] = []
    for name, s in zip(names, loaded):
        sh = s.meta.get("shard")
        if not (isinstance(sh, list) and len(sh) == 2 and all(type(x) is int for x in sh)):
            sh = None
        if sh is None or not 0 <= sh[0] < sh[1]:
            raise ValueError(f"{name} is not a shard (written with --shard i/n): shard {sh!r}")
        shards.append(sh)
    n = shards[0][1]
    if sorted(sh[0] for sh in shards) != list(range(n)) or any(sh[1] != n for sh in shards):
        have = sorted(f"{i}/{m}" for i, m in shards)
        raise ValueError(f"need shards 0/{n} .. {n - 1}/{n} exactly once each; got {have}")
    check_stem(loaded[0].meta.get("name"), "batch name")
    for key in MERGE_KEYS:
        seen = [s.meta.get(key, 1 if key == "format_version" else None) for s in loaded]
        for other, value in zip(names[1:], seen[1:]):
            if value != seen[0]:
                raise ValueError(
                    f"the parts disagree on {key}: {names[0]} has {seen[0]!r}, {other} has "
                    f"{value!r}; merge only the shards of one sweep"
                )
    owner: dict[tuple, str] = {}
    for part, s in zip(names, loaded):
        for c in s.configs:
            same = tuple(sorted(c.replace(device="cpu").to_dict().items()))
            if same in owner:
                raise ValueError(f"{part} and {owner[same]} hold the same instance ({c.seed=})")
            owner[same] = part


def save_run(run: Run, directory: str | Path, **kwargs: Any) -> Path:
    """``files.write_run`` with the run's summary metrics recorded in ``run.json`` (unless
    ``metrics=`` is given), so the numbers can be read without torch."""
    kwargs.setdefault("metrics", summarize(run))
    return write_run(run, directory, **kwargs)
