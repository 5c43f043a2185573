"""Whether a trained instance is a result at all: flags for runs that diverged or died.

An instance is flagged ``diverged`` when its final loss is not finite or exceeds
``DIVERGENCE_FACTOR`` times the loss of always predicting zero (an untrained model sits at
about 1.1 to 1.3 times it, a trained one below it), and ``all_dead`` when no neuron ever
fires. Stored runs and summaries record the flags next to the metrics; the command line warns
about each flagged instance on stderr and still exits 0 (a sweep may cross a rate that
diverges, and the bias sweeps have all-dead points on purpose).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..core.config import Config

__all__ = ["DIVERGENCE_FACTOR", "FLAGS", "flags", "run_flags", "flag_text"]

DIVERGENCE_FACTOR = 10.0

FLAGS = {
    "diverged": f"its final loss is not finite or above {DIVERGENCE_FACTOR:g} x the zero "
    "predictor's",
    "all_dead": "every neuron is dead",
}


def flags(row: dict, config: Config) -> list[str]:
    """The flags (keys of ``FLAGS``) of one instance, from its ``summarize`` row."""
    out = []
    loss, zero = row.get("final_loss"), row.get("zero_loss")
    if loss is None or not math.isfinite(loss) or (zero and loss > DIVERGENCE_FACTOR * zero):
        out.append("diverged")
    if row.get("dead_neurons") == config.k:
        out.append("all_dead")
    return out


def run_flags(rows: Sequence[dict], configs: Sequence[Config]) -> list[list[str]]:
    """``flags`` of every instance."""
    return [flags(r, c) for r, c in zip(rows, configs)]


def flag_text(row: dict, config: Config, names: Sequence[str]) -> str:
    """One sentence saying why an instance is flagged, with its numbers."""
    parts = []
    if "diverged" in names:
        loss, zero = row.get("final_loss"), row.get("zero_loss")
        shown = "not finite" if loss is None or not math.isfinite(loss) else f"{loss:.3g}"
        parts.append(
            f"diverged (final loss {shown}; the zero predictor's is {zero:.3g}, the limit "
            f"{DIVERGENCE_FACTOR:g} x that)"
        )
    if "all_dead" in names:
        parts.append(f"every neuron ({config.k}) is dead")
    return " and ".join(parts)
