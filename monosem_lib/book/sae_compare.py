"""The SAE chapter's comparisons, computed from the stored study (``sae_study``).

Picks each contender's row out of the stored batches by one rule (``sae_study`` states it),
adds the compute a path needs (an SAE on h pays for the model it reads), and builds the
frames the chapter shows: the contenders side by side, the harder regimes, the slider's
settings and the numbers its sentences state. No formatting here (``sae_chapter`` draws).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..paper.sae_study import SAE_SHAPES, SAEStudy
from ..store.sae_files import StoredBatch

__all__ = [
    "SAEEntry",
    "untuned_recipe_facts",
    "SAE_CONTENDER_LABELS",
    "sae_model_entry",
    "sae_entry",
    "sae_contenders",
    "sae_comparison_frame",
    "sae_metrics_frame",
    "sae_hardness_frame",
    "sae_slider_entries",
    "sae_slider_steps",
    "sae_chapter_numbers",
    "sae_findings",
    "SAE_METRIC_COLUMNS",
]

# (contender, SAE kind) -> the label a table row carries.
SAE_CONTENDER_LABELS = {
    ("baseline", None): "baseline neurons",
    ("engineered", None): "engineered neurons",
    ("sae-h", "topk"): "TopK SAE on h",
    ("sae-h", "relu"): "ReLU SAE on h",
    ("sae-x", "topk"): "TopK SAE on x",
    ("sae-x", "relu"): "ReLU SAE on x",
}
# Frame column -> stored row key.
SAE_METRIC_COLUMNS = {
    "units": "units",
    "mono units": "mono_units",
    "features covered": "features_covered",
    "MMCS": "mmcs",
    "recovered (cos > 0.9)": "recovered",
    "L0": "l0",
    "FVU": "fvu",
    "dead": "dead",
    "task loss": "loss",
    "training GFLOP": "gflop",
    "seconds": "seconds_total",
}


@dataclass(frozen=True)
class SAEEntry:
    """One stored instance: its batch, its index there and its row (with the path's total
    compute added as ``flops_total`` and ``seconds_total``)."""

    batch: StoredBatch
    index: int
    row: dict

    def sfa(self) -> np.ndarray:
        """Its single-feature activations [units, N] (float32; book scale only)."""
        return self.batch.array(f"sfa_{self.index:03d}").astype(np.float32)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _find(study: SAEStudy, shape: str, **want: Any) -> list[SAEEntry]:
    out = []
    for batch, i, row in study.rows(shape):
        ok = all(
            row.get(k) is not None and _close(row[k], v)
            if isinstance(v, float)
            else row.get(k) == v
            for k, v in want.items()
        )
        if ok:
            out.append(SAEEntry(batch, i, row))
    return out


def _with_compute(entry: SAEEntry, model: SAEEntry | None = None) -> SAEEntry:
    """The entry with its path's training FLOPs and seconds: its own, plus for an SAE on h
    the model's training and the forward passes that produce h."""
    row = dict(entry.row)
    flops, seconds = row["flops"], row["seconds"]
    if model is not None:
        flops += model.row["flops"] + row.get("h_flops", 0)
        seconds += model.row["seconds"]
    row.update(flops_total=flops, seconds_total=seconds, gflop=flops / 1e9)
    return SAEEntry(entry.batch, entry.index, row)


def sae_model_entry(
    study: SAEStudy, shape: str, m: int, eps: float, contender: str
) -> SAEEntry | None:
    """The stored toy model (``baseline`` or ``engineered``) of one regime, or None."""
    found = _find(study, shape, contender=contender, m=m, eps=eps)
    return _with_compute(found[0]) if found else None


def sae_entry(
    study: SAEStudy,
    shape: str,
    m: int,
    eps: float,
    on: str,
    kind: str,
    sparsity: float | None = None,
) -> SAEEntry | None:
    """The stored SAE of one regime with 2N latents, by the study's rule (TopK: k = eps N;
    ReLU: the grid's c whose L0 is closest to eps N) or at ``sparsity``; None if absent."""
    s = SAE_SHAPES[shape]
    found = _find(study, shape, contender=f"sae-{on}", kind=kind, m=m, eps=eps, latents=s.latents)
    if sparsity is not None:
        found = [e for e in found if _close(e.row["sparsity"], float(sparsity))]
    elif kind == "topk":
        found = [e for e in found if e.row["sparsity"] == s.topk(eps)]
    else:
        grid = [e for e in found if any(_close(e.row["sparsity"], c) for c in s.l1_grid)]
        target = eps * s.base.N
        found = sorted(grid, key=lambda e: (abs(e.row["l0"] - target), e.row["sparsity"]))
    if not found:
        return None
    model = sae_model_entry(study, shape, m, eps, "baseline") if on == "h" else None
    if on == "h" and model is None:
        return None
    return _with_compute(found[0], model)


def sae_contenders(
    study: SAEStudy, shape: str, m: int | None = None, eps: float | None = None
) -> dict[str, SAEEntry]:
    """Every contender of one regime (default: the shape's main one) that is stored, by
    label, in the order of ``SAE_CONTENDER_LABELS``."""
    s = SAE_SHAPES[shape]
    m, eps = (s.main[0] if m is None else m), (s.main[1] if eps is None else eps)
    out = {}
    for (name, kind), label in SAE_CONTENDER_LABELS.items():
        if kind is None:
            entry = sae_model_entry(study, shape, m, eps, name)
        else:
            entry = sae_entry(study, shape, m, eps, name[-1], kind)
        if entry is not None:
            out[label] = entry
    return out


def _setting(entry: SAEEntry) -> str:
    row = entry.row
    if row["contender"] in ("baseline", "engineered"):
        c = row["config"]
        return f"bias {c['init_bias']:g}, decay {c['bias_decay']:g}, lr {c['lr']:g}"
    if row["kind"] == "topk":
        return f"k = {int(row['sparsity'])}, {row['latents']} latents"
    return f"c = {row['sparsity']:g}, {row['latents']} latents"


def _record(row: dict) -> dict:
    """A row's values under the frame's column names (None where a metric does not apply)."""
    return {col: row.get(key) for col, key in SAE_METRIC_COLUMNS.items()}


def _frame(records: list[dict], index) -> pd.DataFrame:
    frame = pd.DataFrame(records, index=index)
    return frame[[c for c in ("setting", *SAE_METRIC_COLUMNS) if c in frame]].fillna(value=np.nan)


def sae_comparison_frame(study: SAEStudy, shapes: Sequence[str] | None = None) -> pd.DataFrame:
    """The contenders of each shape's main regime (default: every shape) side by side: one
    row per (scale, contender), the columns of ``SAE_METRIC_COLUMNS`` (NaN where a metric does not
    apply) and the setting. Empty when nothing is stored."""
    records, index = [], []
    for shape in SAE_SHAPES if shapes is None else shapes:
        for label, entry in sae_contenders(study, shape).items():
            records.append({"setting": _setting(entry), **_record(entry.row)})
            index.append((shape, label))
    if not records:
        return pd.DataFrame(columns=["setting", *SAE_METRIC_COLUMNS])
    return _frame(records, pd.MultiIndex.from_tuples(index))


def sae_metrics_frame(rows: dict[str, dict]) -> pd.DataFrame:
    """Freshly measured rows (``unit_metrics`` and data metrics, plus ``flops`` and
    ``seconds``), by label, with the comparison's columns."""
    records = []
    for row in rows.values():
        full = {**row, "gflop": row["flops"] / 1e9, "seconds_total": row["seconds"]}
        records.append(_record(full))
    return _frame(records, pd.Index(list(rows)))


def sae_hardness_frame(study: SAEStudy, shape: str = "book") -> pd.DataFrame:
    """Every contender in every regime (m, eps) of a shape: features covered, recovered,
    MMCS, FVU and task loss, one row each (long format)."""
    s = SAE_SHAPES[shape]
    records = []
    for m in s.m_values:
        for eps in s.eps_values:
            for label, entry in sae_contenders(study, shape, m, eps).items():
                row = entry.row
                records.append(
                    {
                        "m": m,
                        "eps": eps,
                        "contender": label,
                        "features covered": row["features_covered"],
                        "recovered": row.get("recovered"),
                        "MMCS": row.get("mmcs"),
                        "FVU": row["fvu"],
                        "task loss": row.get("loss"),
                        "zero loss": row.get("zero_loss"),
                    }
                )
    columns = ["m", "eps", "contender", "features covered", "recovered", "MMCS", "FVU"]
    return pd.DataFrame(records, columns=columns + ["task loss", "zero loss"])


def untuned_recipe_facts(hard: pd.DataFrame, tuned_m: int = 32) -> dict[str, float]:
    """Where the engineered model, its decay tuned at one regime (m = ``tuned_m``), covers fewer
    features than the baseline in ``sae_hardness_frame``: the number of regimes with fewer
    dimensions (``untuned_small``), how many of them fall below the baseline
    (``untuned_below``), and the worst of them, its m, eps and both coverages
    (``untuned_worst_*``)."""
    cov = hard.pivot_table(index=["m", "eps"], columns="contender", values="features covered")
    small = cov[cov.index.get_level_values("m") < tuned_m]
    gap = small["baseline neurons"] - small["engineered neurons"]
    worst = gap.idxmax()
    return {
        "untuned_small": len(small),
        "untuned_below": int((gap > 0).sum()),
        "untuned_worst_m": worst[0],
        "untuned_worst_eps_inv": round(1 / worst[1]),
        "untuned_worst_engineered": small.loc[worst, "engineered neurons"],
        "untuned_worst_baseline": small.loc[worst, "baseline neurons"],
    }


def sae_slider_steps(shape: str = "book") -> list[tuple[int, float]]:
    """The slider's sparsity steps, sparsest first: pairs (TopK's k, ReLU's c)."""
    s = SAE_SHAPES[shape]
    return list(zip(sorted(s.slider_topk), sorted(s.slider_l1, reverse=True)))


def sae_slider_entries(
    study: SAEStudy, shape: str = "book"
) -> dict[tuple[int, int], tuple[SAEEntry, SAEEntry]]:
    """(latents, step) -> (TopK entry, ReLU entry) of the slider's stored SAEs on the main
    regime's baseline h (step indexes ``sae_slider_steps``); settings not stored are left out."""
    s = SAE_SHAPES[shape]
    m, eps = s.main
    out = {}
    for L in s.slider_latents:
        for i, (k, c) in enumerate(sae_slider_steps(shape)):
            pair = tuple(
                _find(
                    study,
                    shape,
                    contender="sae-h",
                    kind=kind,
                    m=m,
                    eps=eps,
                    latents=L,
                    sparsity=float(v),
                )
                for kind, v in (("topk", k), ("relu", c))
            )
            if all(pair):
                out[(L, i)] = (pair[0][0], pair[1][0])
    return out


SHORT_NAMES = dict(
    zip(
        SAE_CONTENDER_LABELS.values(),
        ("baseline", "engineered", "topk_h", "relu_h", "topk_x", "relu_x"),
    )
)
_NUMBER_KEYS = {
    "covered": "features_covered",
    "mono": "mono_units",
    "recovered": "recovered",
    "mmcs": "mmcs",
    "l0": "l0",
    "fvu": "fvu",
    "loss": "loss",
    "dead": "dead",
    "units": "units",
    "sparsity": "sparsity",
    "gflop": "gflop",
    "seconds": "seconds_total",
}


def _regime_numbers(
    study: SAEStudy, shape: str, prefix: str, m: int | None = None, eps: float | None = None
) -> dict[str, float]:
    out: dict[str, float] = {}
    N = SAE_SHAPES[shape].base.N
    out[f"{prefix}_features"] = N
    for label, entry in sae_contenders(study, shape, m, eps).items():
        row, name = entry.row, f"{prefix}_{SHORT_NAMES[label]}"
        for key, field in _NUMBER_KEYS.items():
            if row.get(field) is not None:
                out[f"{name}_{key}"] = row[field]
        out[f"{name}_covered_n"] = round(row["features_covered"] * N)
        if row.get("zero_loss") is not None:
            out[f"{prefix}_zero_loss"] = row["zero_loss"]
        out[f"{prefix}_active"] = row["eps"] * N
    base = f"{prefix}_baseline_gflop"
    for sae in ("topk_h", "relu_h"):
        if base in out and f"{prefix}_{sae}_gflop" in out:
            own = out[f"{prefix}_{sae}_gflop"] - out[base]
            out[f"{prefix}_{sae}_sae_ratio"] = own / out[base]
    return out


def sae_chapter_numbers(study: SAEStudy) -> dict[str, float]:
    """The numbers the chapter's sentences state, by name: ``<scale>_<contender>_<metric>``
    for each main regime (scale ``book`` or ``paper``; contender ``baseline, engineered,
    topk_h, relu_h, topk_x, relu_x``; metric ``covered, covered_n, mono, recovered, mmcs, l0,
    fvu, loss, dead, units, sparsity, gflop, seconds``), ``<scale>_zero_loss``,
    ``<scale>_features`` (N), for the book's harder regimes
    ``hard_m<m>_e<1/eps>_<contender>_<metric>``, and for the slider's frames
    ``slider_L<latents>_s<step>_<topk|relu>_<covered|recovered|l0|fvu|loss|dead>`` (step
    indexes ``sae_slider_steps``) with ``slider_L<latents>_best_covered``; ``<scale>_active`` is
    eps N, ``<scale>_<topk_h|relu_h>_sae_ratio`` the SAE's own FLOPs over its model's,
    ``<scale>_relu_<x|h>_grid_<mmcs_max|l0_min>`` sum up the L1 grid, and
    ``hard_dense_*`` sum up the densest regimes. Only what the stored data hold."""
    out = {}
    for shape, prefix in (("book", "book"), ("paper-cpu", "paper")):
        out.update(_regime_numbers(study, shape, prefix))
        out.update(_grid_numbers(study, shape, prefix))
    s = SAE_SHAPES["book"]
    for m in s.m_values:
        for eps in s.eps_values:
            out.update(_regime_numbers(study, "book", f"hard_m{m}_e{round(1 / eps)}", m, eps))
    out.update(_slider_numbers(study))
    out.update(_dense_numbers(study))
    return out


def _grid_numbers(study: SAEStudy, shape: str, prefix: str) -> dict[str, float]:
    """Over the L1 grid of the main regime's ReLU SAEs on x and on h: the best MMCS and the
    smallest L0 (``<scale>_relu_<x|h>_grid_mmcs_max``, ``..._grid_l0_min``)."""
    s, out = SAE_SHAPES[shape], {}
    m, eps = s.main
    for on in ("x", "h"):
        found = [sae_entry(study, shape, m, eps, on, "relu", c) for c in s.l1_grid]
        rows = [e.row for e in found if e is not None]
        if rows:
            out[f"{prefix}_relu_{on}_grid_mmcs_max"] = max(r["mmcs"] for r in rows)
            out[f"{prefix}_relu_{on}_grid_l0_min"] = min(r["l0"] for r in rows)
    return out


def _slider_numbers(study: SAEStudy) -> dict[str, float]:
    """Every slider frame's numbers, and each dictionary size's best coverage."""
    out: dict[str, float] = {}
    for (L, step), pair in sae_slider_entries(study).items():
        for kind, entry in zip(("topk", "relu"), pair):
            for key in ("covered", "recovered", "l0", "fvu", "loss", "dead"):
                out[f"slider_L{L}_s{step}_{kind}_{key}"] = entry.row[_NUMBER_KEYS[key]]
            best = max(out.get(f"slider_L{L}_best_covered", 0.0), entry.row["features_covered"])
            out[f"slider_L{L}_best_covered"] = best
    return out


def _dense_numbers(study: SAEStudy) -> dict[str, float]:
    """The SAEs in the book's densest regimes (largest eps, every m but the largest): their
    best recovery and their worst FVU (``hard_dense_recovered_max``, ``hard_dense_fvu_max``)."""
    s = SAE_SHAPES["book"]
    eps = max(s.eps_values)
    rows = [
        e.row
        for m in s.m_values
        if m < max(s.m_values)
        for label, e in sae_contenders(study, "book", m, eps).items()
        if "SAE" in label
    ]
    if not rows:
        return {}
    return {
        "hard_dense_recovered_max": max(r["recovered"] for r in rows),
        "hard_dense_fvu_max": max(r["fvu"] for r in rows),
    }


def _hard_cells(shape: str = "book") -> list[str]:
    """The names of the harder regimes, ``m<m>_e<1/eps>``."""
    s = SAE_SHAPES[shape]
    return [f"m{m}_e{round(1 / eps)}" for m in s.m_values for eps in s.eps_values]


def _findings(n: dict[str, float]) -> Iterator[tuple[str, Callable[[], float]]]:
    s = SAE_SHAPES["book"]
    weakest = len(sae_slider_steps()) - 1  # the slider's last step: the weakest L1
    cells = _hard_cells()
    yield "book_engineered_gain", lambda: n["book_engineered_covered"] / n["book_baseline_covered"]
    yield (
        "slider_enough_latents_weak_l1_covered_min",
        lambda: min(
            n[f"slider_L{L}_s{weakest}_relu_covered"] for L in s.slider_latents if L >= s.base.N
        ),
    )
    yield (
        "hard_m32_engineered_covered_min",
        lambda: min(
            n[f"hard_m{s.main[0]}_e{round(1 / e)}_engineered_covered"] for e in s.eps_values
        ),
    )
    yield "hard_cells", lambda: len(cells)
    yield (
        "hard_topk_lower_loss_cells",
        lambda: sum(n[f"hard_{c}_topk_h_loss"] < n[f"hard_{c}_relu_h_loss"] for c in cells),
    )


def sae_findings(numbers: dict[str, float]) -> dict[str, float]:
    """What the chapter concludes beyond single numbers, from ``sae_chapter_numbers``:
    ``book_engineered_gain`` (the engineered model's coverage over the baseline's at book
    scale), ``slider_enough_latents_weak_l1_covered_min`` (the least coverage of the weakest
    L1 on the slider with at least N latents), ``hard_m32_engineered_covered_min`` (the
    engineered model's least coverage over the densities at the main m),
    ``hard_topk_lower_loss_cells`` of ``hard_cells`` (the harder regimes where TopK on h
    splices in at a lower loss than L1). Only what the stored numbers allow."""
    out: dict[str, float] = {}
    for name, compute in _findings(numbers):
        try:
            out[name] = compute()
        except KeyError:
            continue  # a batch it needs is not stored
    return out
