"""The paper's claims computed from stored sweep summaries, the same way at either scale.

Chapter 7 reads ``data/book`` and ``data/paper`` (see ``storage.save_summary``) and puts the
two scales side by side; these functions turn one summary into the numbers of one claim.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .interpretation import interpret
from .metrics import stats_from_sfa
from .storage import Summary, load_summary

__all__ = ["load_data", "by_value", "at_scale", "claim1", "claim2", "claim3", "claim4", "claim5", "abs_pairs", "BATCHES"]

BATCHES = ("LR1", "LR3", "K0", "K1", "LR5")


def load_data(root: str | Path) -> dict[str, dict[str, Summary]]:
    """{"book": {name: Summary}, "paper": {...}} for the summaries present under ``root``."""
    root = Path(root)
    out: dict[str, dict[str, Summary]] = {}
    for scale in ("book", "paper"):
        out[scale] = {}
        for name in BATCHES:
            path = root / scale / f"{name}.json"
            if path.exists():
                out[scale][name] = load_summary(path)
    return out


def by_value(summary: Summary, var: str, key: str, exclude=()) -> dict:
    """{value of ``var``: [metric of every seed]}, in sweep order."""
    table: dict = {}
    for c, m in zip(summary.configs, summary.metrics):
        value = getattr(c, var)
        if value in exclude:
            continue
        table.setdefault(value, []).append(m[key])
    return table


def claim1(lr1: Summary, exclude_lrs=()) -> dict:
    """Loss spread and monosemanticity span across learning rates (seed means)."""
    loss = {lr: float(np.mean(v)) for lr, v in by_value(lr1, "lr", "final_loss", exclude_lrs).items()}
    mono = {lr: float(np.mean(v)) for lr, v in by_value(lr1, "lr", "mono_per_feature", exclude_lrs).items()}
    return {"loss": loss, "mono_per_feature": mono,
            "loss_spread": max(loss.values()) / min(loss.values()) - 1,
            "mono_span": max(mono.values()) - min(mono.values())}


def claim2(lr1: Summary) -> dict:
    """Mean bias of monosemantic and of polysemantic neurons at each learning rate."""
    def mean(v):
        v = [x for x in v if x is not None]
        return float(np.mean(v)) if v else None
    return {"mono": {lr: mean(v) for lr, v in by_value(lr1, "lr", "mean_bias_mono").items()},
            "poly": {lr: mean(v) for lr, v in by_value(lr1, "lr", "mean_bias_poly").items()}}


def claim3(lr1: Summary, lr3: Summary) -> dict:
    """Monosemanticity and loss of the engineered sweep against the baseline, per rate."""
    out = {}
    for key in ("mono_per_feature", "final_loss"):
        base, eng = by_value(lr1, "lr", key), by_value(lr3, "lr", key)
        out[key] = {lr: (float(np.mean(base[lr])), float(np.mean(eng[lr]))) for lr in base if lr in eng}
    return out


def claim4(k_sweep: Summary) -> dict:
    """Features covered and monosemantic neurons per feature against width k."""
    return {key: {k: float(np.mean(v)) for k, v in by_value(k_sweep, "k", key).items()}
            for key in ("features_covered", "mono_per_feature", "final_loss")}


def claim5(summary: Summary, instance: int) -> dict:
    """The reverse-engineering report of a representative instance with stored weights."""
    return interpret(summary.run(instance)).to_dict()


def abs_pairs(lr5: Summary) -> list[dict]:
    """For each abs-task instance: features with a monosemantic neuron for +f_j, for -f_j, both."""
    import torch

    out = []
    for i, c in enumerate(lr5.configs):
        sfa = torch.from_numpy(lr5.array("sfa", i).astype(np.float32))[None]
        bias = torch.from_numpy(lr5.array("bias", i).astype(np.float32))[None]
        out.append({"lr": c.lr, **stats_from_sfa(sfa, bias, c.N).sign_pairs(0)})
    return out


def at_scale(found: dict[str, Summary], names, claim, *args, **kwargs):
    """``claim(*summaries, *args)`` for the batches ``names`` of one scale, or None when any of
    them has not been produced yet (how chapter 7 leaves a column empty)."""
    names = [names] if isinstance(names, str) else list(names)
    if not all(n in found for n in names):
        return None
    return claim(*[found[n] for n in names], *args, **kwargs)
