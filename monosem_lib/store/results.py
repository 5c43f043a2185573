"""One results layer: trained instances and their numbers, from a live run or a stored summary.

A :class:`Results` is built from a :class:`~monosem_lib.training.Run` (``Results.from_run``)
or from a stored sweep summary (``Results.from_summary``) and offers the same methods either
way: select instances (``where``, ``select``, ``by_value``, ``seeds``), read per-instance
metrics (loss, mono/N, mono/k, coverage, dead, biases), and compute per-neuron and
per-feature statistics (``stats``, ``features``). The paper's claims (``claims``) and every
chapter read results through this one type, so a number means the same thing wherever the
book prints it. Config values are matched with one tolerance, ``FLOAT_TOL``.

Summaries are built here too (``save_summary``, ``merge_summaries``); ``storage`` only reads
and writes the files.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..analysis.metrics import (
    MONO_THRESHOLD,
    VARIANTS,
    NeuronStats,
    is_signed,
    single_feature_activations,
    stats_from_sfa,
    summarize,
)
from ..core.config import Config
from ..core.training import Run
from .files import Summary, load_summary

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FLOAT_TOL",
    "matches",
    "same_value",
    "Results",
    "FeatureStats",
    "load_results",
    "save_summary",
    "save_run",
    "merge_summaries",
    "shard_stem",
    "neuron_tables",
    "compact_summary",
]

# Relative tolerance for matching config values such as lr 0.003 (absolute 1e-12 near 0).
FLOAT_TOL = 1e-9


def same_value(have: Any, want: Any) -> bool:
    """Equal, floats to ``FLOAT_TOL`` (relative; 1e-12 absolute near 0)."""
    if isinstance(want, float) or isinstance(have, float):
        return math.isclose(have, want, rel_tol=FLOAT_TOL, abs_tol=1e-12)
    return have == want


def matches(config: Config, **values: Any) -> bool:
    """Whether ``config`` has all ``values`` (floats to ``FLOAT_TOL``)."""
    return all(same_value(getattr(config, key), want) for key, want in values.items())


class FeatureStats(NamedTuple):
    """Per-feature view of one instance, each [N]."""

    best_share: Tensor  # the top share among alive neurons preferring the feature (0 if none)
    preferring: Tensor  # how many alive neurons prefer it
    mono: Tensor  # how many monosemantic neurons it owns

    @property
    def covered(self) -> float:
        """Fraction of features with at least one monosemantic neuron."""
        return float((self.mono > 0).float().mean())

    @property
    def duplicated(self) -> int:
        """Features with more than one monosemantic neuron."""
        return int((self.mono > 1).sum())


# sfa of instance i: ([k, N] or [k, 2N] signed for abs, [k] biases)
_SfaSource = Callable[[int], "tuple[Tensor, Tensor]"]


@dataclass(frozen=True, eq=False)
class Results:
    """Trained instances and their numbers (see the module docstring).

    Attributes:
        configs: one Config per instance (``instances=1`` each).
        metrics: per instance, the ``metrics.SUMMARY_KEYS`` (the paper's metric).
        name, scale: the Table 1 batch and scale, where known.
        meta: the stored summary's JSON, or {} for a live run.
    """

    configs: tuple[Config, ...]
    metrics: tuple[dict, ...]
    name: str | None = None
    scale: str | None = None
    meta: dict = field(default_factory=dict, repr=False)
    _sfa: _SfaSource | None = field(default=None, repr=False)
    _run: Callable[[int], Run] | None = field(default=None, repr=False)
    # Compact summaries store per-neuron tables instead of activations: (i, variant) -> stats.
    _tables: Callable[[int, str], NeuronStats] | None = field(default=None, repr=False)

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_run(cls, run: Run, name: str | None = None, scale: str | None = None) -> Results:
        """Results of a live run: metrics by ``summarize``, activations computed on demand."""
        configs = tuple(c for cfg in run.configs for c in cfg.expand())

        @functools.lru_cache(maxsize=1)
        def all_sfa() -> Tensor:  # [I, k, N or 2N]
            return single_feature_activations(run.model, run.P, is_signed(run.config)).cpu()

        def sfa(i: int) -> tuple[Tensor, Tensor]:
            return all_sfa()[i], run.model.b[i].detach().cpu()

        return cls(configs, tuple(summarize(run)), name, scale, {}, sfa, run.select)

    @classmethod
    def from_summary(cls, summary: Summary) -> Results:
        """Results of a stored sweep summary (``storage.load_summary``)."""

        def sfa(i: int) -> tuple[Tensor, Tensor]:
            load = lambda key: torch.from_numpy(summary.array(key, i).astype(np.float32))
            return load("sfa"), load("bias")

        meta = summary.meta
        compact = meta.get("neurons") == "tables"
        return cls(
            tuple(summary.configs),
            tuple(summary.metrics),
            meta.get("name"),
            meta.get("scale"),
            meta,
            None if compact else sfa,
            lambda idx: _stored_run(summary, idx),
            (lambda i, variant: _table_stats(summary, i, variant)) if compact else None,
        )

    @classmethod
    def concat(cls, parts: Sequence[Results]) -> Results:
        """One Results holding the instances of ``parts`` in order (e.g. one run per width);
        name, scale and meta come from the first part."""
        offsets = np.cumsum([0] + [len(p) for p in parts])

        def locate(i: int) -> tuple[Results, int]:
            j = int(np.searchsorted(offsets, i, side="right")) - 1
            return parts[j], i - int(offsets[j])

        def sfa(i: int) -> tuple[Tensor, Tensor]:
            part, local = locate(i)
            return part._sfa(local)

        def tables(i: int, variant: str) -> NeuronStats:
            part, local = locate(i)
            return part.stats(local, variant)

        def run(idx: list[int]) -> Run:
            part, local = locate(idx[0]) if len(idx) == 1 else (None, None)
            if part is None:
                raise ValueError("weights of concatenated results are read one instance at a time")
            return part.run(local)

        configs = tuple(c for p in parts for c in p.configs)
        metrics = tuple(m for p in parts for m in p.metrics)
        first = parts[0]
        compact = any(p._tables is not None for p in parts)
        return cls(
            configs,
            metrics,
            first.name,
            first.scale,
            first.meta,
            None if compact else sfa,
            run,
            tables if compact else None,
        )

    # -- selecting ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.configs)

    def where(self, **values: Any) -> list[int]:
        """Indices of the instances whose configs have all ``values``."""
        return [i for i, c in enumerate(self.configs) if matches(c, **values)]

    def select(self, indices: Iterable[int]) -> Results:
        """The given instances only (their activations and weights stay reachable)."""
        idx = list(indices)
        sfa = None if self._sfa is None else (lambda i: self._sfa(idx[i]))
        run = None if self._run is None else (lambda j: self._run([idx[i] for i in j]))
        tables = None if self._tables is None else (lambda i, v: self._tables(idx[i], v))
        configs = tuple(self.configs[i] for i in idx)
        metrics = tuple(self.metrics[i] for i in idx)
        return Results(configs, metrics, self.name, self.scale, self.meta, sfa, run, tables)

    def filter(self, **values: Any) -> Results:
        """``select(where(**values))``."""
        return self.select(self.where(**values))

    def values(self, var: str) -> list:
        """The distinct values of config field ``var``, in instance order."""
        return list(dict.fromkeys(getattr(c, var) for c in self.configs))

    @property
    def seeds(self) -> list[int]:
        return self.values("seed")

    def by_value(self, var: str, key: str, exclude: Sequence = ()) -> dict[Any, list]:
        """{value of ``var``: [metric ``key`` of every instance (seed) with it]}, in order;
        None entries (an empty class's mean bias) are dropped."""
        out: dict[Any, list] = {}
        for c, m in zip(self.configs, self.metrics):
            value = getattr(c, var)
            if any(matches(c, **{var: x}) for x in exclude):
                continue
            out.setdefault(value, [])
            if m[key] is not None:
                out[value].append(m[key])
        return out

    def mean_by(self, var: str, key: str, exclude: Sequence = ()) -> dict[Any, float | None]:
        """{value of ``var``: seed mean of ``key``} (None where every seed lacks it)."""
        table = self.by_value(var, key, exclude)
        return {v: (float(np.mean(x)) if x else None) for v, x in table.items()}

    def metric(self, key: str) -> np.ndarray:
        """Metric ``key`` of every instance, [I] (NaN where None)."""
        return np.array([np.nan if m[key] is None else m[key] for m in self.metrics], float)

    def mean(self, key: str, **values: Any) -> float:
        """Mean of metric ``key`` over the instances with ``values``."""
        idx = self.where(**values)
        if not idx:
            raise ValueError(f"no instance has {values}; values here: {self._knobs()}")
        return float(np.nanmean(self.metric(key)[idx]))

    def _knobs(self) -> dict[str, list]:
        keys = ("lr", "init_bias", "bias_decay", "k", "eps", "l1", "seed", "feature_dist", "task")
        return {k: self.values(k) for k in keys if len(self.values(k)) > 1}

    # -- per neuron and per feature ---------------------------------------------------------
    def stats(self, instance: int, variant: str = "paper") -> NeuronStats:
        """NeuronStats of one instance ([1, k] each) under a metric variant: ``paper`` (+e_j,
        raw) or ``book`` (-e_j too for abs, clipped at 0 for GeLU and SoLU)."""
        if variant not in VARIANTS:
            raise ValueError(f"variant={variant!r} is not allowed: must be paper or book")
        if self._tables is not None:
            return self._tables(instance, variant)
        if self._sfa is None:
            raise ValueError("these results hold no single-feature activations")
        c = self.configs[instance]
        sfa, bias = self._sfa(instance)
        probe, clamp = _variant_probe(sfa, c, variant)
        return stats_from_sfa(probe[None], bias[None], c.N, MONO_THRESHOLD, clamp=clamp)

    def features(self, instance: int, variant: str = "paper") -> FeatureStats:
        """Per-feature statistics of one instance: best share, neurons preferring each
        feature, monosemantic neurons owning it."""
        st = self.stats(instance, variant)
        best, preferring = st.best_per_feature(0)
        owned = torch.bincount(st.feature[0][st.mono[0]], minlength=st.N)
        return FeatureStats(best, preferring, owned)

    def run(self, instance: int) -> Run:
        """A one-instance Run with the instance's weights (live runs; stored representatives)."""
        if self._run is None:
            raise ValueError("these results hold no weights")
        return self._run([instance])

    def frame(self, *knobs: str) -> pd.DataFrame:
        """A pandas DataFrame: the given config knobs (default: those that vary) and every
        metric, one row per instance."""
        import pandas as pd  # noqa: F811 - imported at call time: pandas is optional

        knobs = knobs or tuple(self._knobs()) or ("seed",)
        rows = [
            {**{k: getattr(c, k) for k in knobs}, **m} for c, m in zip(self.configs, self.metrics)
        ]
        return pd.DataFrame(rows)


# -- compact summaries: per-neuron tables instead of single-feature activations --------------


def _variant_probe(sfa: Tensor, config: Config, variant: str) -> tuple[Tensor, bool]:
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
    from ..analysis.metrics import monosemanticity

    out = {}
    for variant in VARIANTS:
        probe, clamp = _variant_probe(sfa, config, variant)
        share, top, _, dead = monosemanticity(probe.float(), MONO_THRESHOLD, clamp)
        out[f"share_{variant}"] = share.numpy().astype(np.float32)
        out[f"top_{variant}"] = top.numpy().astype(np.int16)
        out[f"dead_{variant}"] = dead.numpy()
    return out


def _table_stats(summary: Summary, i: int, variant: str) -> NeuronStats:
    c = summary.configs[i]
    load = lambda key: torch.from_numpy(summary.array(f"{key}_{variant}", i))
    share, top, dead = load("share"), load("top").long(), load("dead")
    bias = torch.from_numpy(summary.array("bias", i).astype(np.float32))
    mono = (share > MONO_THRESHOLD) & ~dead
    empty = torch.zeros(1, 0)
    return NeuronStats(empty, share[None], top[None], mono[None], dead[None], bias[None], c.N)


def compact_summary(path: str | Path) -> Path:
    """Rewrite a stored summary with per-neuron tables (``neuron_tables``) in place of its
    single-feature activations; configs, metrics, curves and representative weights are kept
    as they are. The paper-cpu summaries are stored this way to keep data/ small."""
    from .files import write_summary

    summary = load_summary(path)
    if summary.meta.get("neurons") == "tables":
        return Path(path)
    arrays = {}
    with np.load(summary.npz_path, allow_pickle=False) as data:
        for key in data.files:
            stem, index = key.rsplit("_", 1)
            if stem == "sfa":
                sfa = torch.from_numpy(data[key].astype(np.float32))
                tables = neuron_tables(sfa, summary.configs[int(index)])
                arrays.update({f"{k}_{index}": v for k, v in tables.items()})
            else:
                arrays[key] = data[key]
    meta = {k: v for k, v in summary.meta.items() if k not in ("format", "format_version")}
    meta["neurons"] = "tables"
    stem = Path(summary.npz_path).stem
    return write_summary(Path(summary.npz_path).parent, stem, meta, arrays, overwrite=True)


def _stored_run(summary: Summary, idx: list[int]) -> Run:
    if len(idx) != 1:
        raise ValueError("stored weights are read one instance at a time")
    return summary.run(idx[0])


def load_results(path: str | Path) -> Results:
    """``Results.from_summary(load_summary(path))``."""
    return Results.from_summary(load_summary(path))


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
    from .files import provenance, write_summary

    runs = [runs] if isinstance(runs, Run) else list(runs)
    keep, instances, arrays = set(representative), [], {}
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
    from ..analysis.metrics import training_curves

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
            arrays[f"sfa_{index:03d}"] = sfa[i].numpy().astype(np.float16)
        arrays[f"bias_{index:03d}"] = b[i].numpy().astype(np.float16)
        if index in keep:
            for key, t in (("W1", W1), ("b", b), ("W2", W2), ("P", run.P.cpu())):
                arrays[f"{key}_{index:03d}"] = t[i].numpy()
        instances.append(
            {
                "config": c.to_dict(),
                "metrics": rows[i],
                "curves": {k: v[:, i].tolist() for k, v in curves.items() if k != "steps"},
                "curve_steps": curves["steps"].tolist(),
                "loss_history": {"every": stride, "loss": coarse[:, i].tolist()},
                "weights": index in keep,
            }
        )


def merge_summaries(
    parts: Sequence[str | Path], path: str | Path, *, overwrite: bool = False
) -> Path:
    """Combine the shards of one batch (``sweep --shard i/n``) into the file an unsharded
    run writes: instances in shard order, renumbered, with summed training time.

    Raises ValueError naming the problem when a part is missing, repeated or of another batch.
    """
    from .files import write_summary

    loaded = [load_summary(p) for p in parts]
    _check_shards(loaded, [str(p) for p in parts])
    loaded.sort(key=lambda s: s.meta["shard"][0])
    instances, arrays = [], {}
    for s in loaded:
        with np.load(s.npz_path, allow_pickle=False) as data:
            for key in data.files:
                stem, index = key.rsplit("_", 1)
                arrays[f"{stem}_{int(index) + len(instances):03d}"] = data[key]
        instances += s.meta["instances"]
    meta = {k: v for k, v in loaded[0].meta.items() if k not in ("format", "format_version")}
    meta.pop("shard")
    meta.update(instances=instances, train_seconds=sum(s.meta["train_seconds"] for s in loaded))
    return write_summary(path, meta["name"], meta, arrays, overwrite=overwrite)


def _check_shards(loaded: list[Summary], names: list[str]) -> None:
    shards = [s.meta.get("shard") for s in loaded]
    if any(sh is None for sh in shards):
        raise ValueError(f"not every part is a shard (written with --shard i/n): {names}")
    n = shards[0][1]
    if sorted(sh[0] for sh in shards) != list(range(n)) or any(sh[1] != n for sh in shards):
        have = sorted(f"{i}/{m}" for i, m in shards)
        raise ValueError(f"need shards 0/{n} .. {n - 1}/{n} exactly once each; got {have}")
    keys = {(s.meta["name"], s.meta["scale"], s.meta.get("results_version")) for s in loaded}
    if len(keys) > 1:
        raise ValueError(f"the parts come from different batches or code versions: {sorted(keys)}")


def save_run(run: Run, directory: str | Path, **kwargs: Any) -> Path:
    """``storage.save_run`` with the run's summary metrics recorded in ``run.json`` (unless
    ``metrics=`` is given), so the numbers can be read without torch."""
    from .files import save_run as write_run

    kwargs.setdefault("metrics", summarize(run))
    return write_run(run, directory, **kwargs)
