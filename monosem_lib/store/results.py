"""One results layer: trained instances and their numbers, from a live run or a stored summary.

A :class:`Results` is built from a :class:`~monosem_lib.core.training.Run` (``Results.from_run``)
or from a stored sweep summary (``Results.from_summary``) and offers the same methods either
way: select instances (``where``, ``select``, ``by_value``, ``seeds``), read per-instance
metrics (loss, mono/N, mono/k, coverage, dead, biases), and compute per-neuron and
per-feature statistics (``stats``, ``features``). The paper's claims (``claims``) and every
chapter read results through this one type, so a number means the same thing wherever the
book prints it. Config values are matched with one tolerance, ``FLOAT_TOL``.

Summaries are built in ``summaries`` (``save_summary``, ``merge_summaries``); ``files`` only
reads and writes the files.
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

from .summaries import variant_probe

__all__ = ["FLOAT_TOL", "matches", "same_value", "Results", "FeatureStats", "load_results"]

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


# What a Results reads on demand, by its own instance index i:
# sfa of instance i: ([k, N] or [k, 2N] signed for abs, [k] biases);
_SfaSource = Callable[[int], "tuple[Tensor, Tensor]"]
# instance i's weights as a one-instance Run;
_RunSource = Callable[[int], Run]
# compact summaries' per-neuron tables instead of activations: (i, variant) -> stats.
_TableSource = Callable[[int, str], NeuronStats]


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
    _run: _RunSource | None = field(default=None, repr=False)
    _tables: _TableSource | None = field(default=None, repr=False)

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

        def one(i: int) -> Run:
            return run.select([i])

        return cls(configs, tuple(summarize(run)), name, scale, {}, sfa, one)

    @classmethod
    def from_summary(cls, summary: Summary) -> Results:
        """Results of a stored sweep summary (``files.load_summary``)."""

        def sfa(i: int) -> tuple[Tensor, Tensor]:
            load = lambda key: torch.from_numpy(summary.array(key, i).astype(np.float32))
            return load("sfa"), load("bias")

        meta = summary.meta
        compact = meta.get("neurons") == "tables"
        lean = meta.get("neurons") == "metrics"  # metrics and biases only (lean_summary)
        return cls(
            tuple(summary.configs),
            tuple(summary.metrics),
            meta.get("name"),
            meta.get("scale"),
            meta,
            None if compact or lean else sfa,
            summary.run,
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
            if part._sfa is None:  # a part built without activations
                raise ValueError(
                    "these results hold no single-feature activations (a lean summary keeps "
                    "metrics and biases only)"
                )
            return part._sfa(local)

        def tables(i: int, variant: str) -> NeuronStats:
            part, local = locate(i)
            return part.stats(local, variant)

        def run(i: int) -> Run:
            part, local = locate(i)
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
        sfa_of, run_of, tables_of = self._sfa, self._run, self._tables
        sfa = None if sfa_of is None else (lambda i: sfa_of(idx[i]))
        run = None if run_of is None else (lambda i: run_of(idx[i]))
        tables = None if tables_of is None else (lambda i, v: tables_of(idx[i], v))
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
            raise ValueError(
                "these results hold no single-feature activations (a lean summary keeps "
                "metrics and biases only)"
            )
        c = self.configs[instance]
        sfa, bias = self._sfa(instance)
        probe, clamp = variant_probe(sfa, c, variant)
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
        return self._run(instance)

    def frame(self, *knobs: str) -> pd.DataFrame:
        """A pandas DataFrame: the given config knobs (default: those that vary) and every
        metric, one row per instance."""
        import pandas as pd  # noqa: F811 - imported at call time: pandas is optional

        knobs = knobs or tuple(self._knobs()) or ("seed",)
        rows = [
            {**{k: getattr(c, k) for k in knobs}, **m} for c, m in zip(self.configs, self.metrics)
        ]
        return pd.DataFrame(rows)


def _table_stats(summary: Summary, i: int, variant: str) -> NeuronStats:
    c = summary.configs[i]
    load = lambda key: torch.from_numpy(summary.array(f"{key}_{variant}", i))
    share, top, dead = load("share"), load("top").long(), load("dead")
    bias = torch.from_numpy(summary.array("bias", i).astype(np.float32))
    mono = (share > MONO_THRESHOLD) & ~dead
    empty = torch.zeros(1, 0)
    return NeuronStats(empty, share[None], top[None], mono[None], dead[None], bias[None], c.N)


def load_results(path: str | Path) -> Results:
    """``Results.from_summary(load_summary(path))``."""
    return Results.from_summary(load_summary(path))
