"""Every batch of Table 1 the paper's way: its metrics against the swept knob with seeds as
bands, a generated sentence for each, and the book's departures from the paper's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..store.results import Results
from .recipe import total_shrink
from .table1 import TABLE1, sweep_configs

if TYPE_CHECKING:
    pass

__all__ = ["SweepSeries", "sweep_series", "batch_sentence", "departures", "SERIES_METRICS"]


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


SERIES_METRICS = ("final_loss", "mono_per_feature", "mono_per_neuron")


def sweep_series(results: Results) -> SweepSeries:
    """Loss, mono/N and mono/k of every point of a stored batch (see ``SweepSeries``)."""
    if results.name not in TABLE1:
        raise ValueError(f"results named {results.name!r} are not of a Table 1 batch")
    spec = TABLE1[results.name]
    outer = [v for v in spec.swept if v != spec.var]
    configs, metrics = results.configs, results.metrics
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(configs):
        label = ", ".join(f"{v} {getattr(c, v):g}" for v in outer) or spec.name
        groups.setdefault(label, []).append(i)
    x = sorted({getattr(configs[i], spec.var) for i in range(len(configs))})
    series: dict[str, dict[str, np.ndarray]] = {}
    for label, idx in groups.items():
        series[label] = {}
        for key in SERIES_METRICS:
            table = [
                [metrics[i][key] for i in idx if getattr(configs[i], spec.var) == v] for v in x
            ]
            series[label][key] = np.array(table, dtype=float)
    return SweepSeries(spec.name, spec.var, x, series)


def batch_sentence(s: SweepSeries) -> str:
    """One sentence, generated from the numbers, on what a stored batch shows."""
    parts = []
    for label, m in s.series.items():
        mono, loss = m["mono_per_feature"].mean(1), m["final_loss"].mean(1)
        head = f"at {label}, " if len(s.series) > 1 else ""
        parts.append(
            f"{head}mono/N {_shape(mono, s)}, while the loss spans {loss.min():.3f} to "
            f"{loss.max():.3f}"
        )
    return f"{s.name}: " + "; ".join(parts) + "."


def _shape(mono: np.ndarray, s: SweepSeries, level: float = 0.1) -> str:
    """How mono/N moves along the sweep: level, a rise or fall, or a peak inside it."""
    at = lambda i: f"{mono[i]:.2f} ({s.var} {s.x[i]:.3g})"  # noqa: E731
    peak, trough = int(np.argmax(mono)), int(np.argmin(mono))
    if mono[peak] - mono[trough] <= level:
        return f"stays level, between {mono[trough]:.2f} and {mono[peak]:.2f}"
    if mono[peak] > max(mono[0], mono[-1]) + level:
        return f"rises from {at(0)} to a peak of {at(peak)}, then falls to {at(-1)}"
    trend = "rises" if mono[-1] > mono[0] else "falls"
    return f"{trend} from {at(0)} to {at(-1)}"


def _span(values) -> str:
    lo, hi = min(values), max(values)
    return _num(lo) if np.isclose(lo, hi) else f"{_num(lo)}-{_num(hi)}"


def _num(x: float) -> str:
    """A table's number: an integer as an integer (a power of two from 4096 up as 2^n, as
    the paper writes batch sizes and step counts), anything else to 3 significant figures."""
    if float(x).is_integer():
        n = int(x)
        return f"2^{n.bit_length() - 1}" if n >= 4096 and n & (n - 1) == 0 else str(n)
    return f"{x:.3g}"


def departures(
    name: str, scales: tuple[str, ...] = ("paper", "book")
) -> dict[str, tuple[str, ...]]:
    """How batch ``name`` differs between scales: {quantity: (value at each of ``scales``)},
    generated from ``sweep_configs`` (ranges where the batch sweeps a quantity)."""
    rows: dict[str, list[str]] = {}
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
            "bias decay": [c.bias_decay for c in cs],
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
