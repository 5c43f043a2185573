"""The fair fight's frontier study (issue 29): every contender as a curve, not a point.

At each data regime (m, eps), training length (``samples``, 2^18 ... 2^21 at book scale) and
seed, the study trains and scores:

* ``models``: the baseline toy model (initial bias 0, no decay) and the engineered model
  (initial bias -1) at every decay of its grid, the rule's decay (``recipe.decay_for`` for the
  run's length and rate) times ``decay_grid``;
* ``sae-x-<kind>``: TopK and ReLU SAEs on the inputs x, over their grids (TopK's k =
  ``topk_grid`` times eps N; ReLU's relative L1 coefficient ``l1_grid``);
* ``sae-hb-<kind>`` and ``sae-he-<kind>``: the same on h of the baseline and of the
  engineered model at the rule's decay (the middle of its grid), each model trained for the
  same number of samples as its SAE.

Every grid has the same size, so each side gets as many tuning runs. SAEs train as
practitioners train them (Adam, warm-up and cool-down, dead-latent resampling for ReLU, AuxK
for TopK; ``FrontierShape``). Each row holds coverage at 0.999 (``features_covered``),
MMCS (neuron axes in h for the models, ``dictionary.neuron_units(axes=True)``), FVU, the
loss (the model's, or the spliced loss on h), L0, dead units, FLOPs (AuxK billed over the
latents it uses) and measured seconds; TopK SAEs are also scored with an inference-time
threshold (``thr_*`` keys, ``analysis.sae_scoring``).

One cell is one stored pair ``<name>.json``/``.npz`` (``store.sae_files.write_batch``,
written atomically), the unit of resumable work: ``run_frontier`` trains only the cells that
are missing or stale, at most ``limit`` of them. The toy models go through the result cache,
so an SAE cell on h reuses its models cell's run. ``frontier_choices`` (in
``sae_frontier_report``) picks each contender's grid point by a rule without ground truth and
by the oracle.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..analysis import dictionary as gt
from ..analysis.sae_scoring import score_neurons, score_sae, topk_threshold
from ..core.config import Config, ConfigError, check_device, preset
from ..core.data import resolve_device
from ..core.sae import SAEConfig
from ..core.sae_training import SAERun, activation_source, train_sae
from ..core.training import Run
from ..store.atomic import NewerVersionError
from ..store.cache import load_or_train
from ..store.sae_files import StoredBatch, load_batch, write_batch
from .recipe import decay_for
from .sae_study import sae_feature_scale

__all__ = [
    "FRONTIER_VERSION",
    "FRONTIER_PARTS",
    "FrontierShape",
    "FRONTIER_SHAPES",
    "FrontierCell",
    "frontier_cells",
    "frontier_model_configs",
    "frontier_sae_configs",
    "run_frontier",
    "load_frontier",
    "stale_frontier_cells",
    "frontier_rows",
]

FRONTIER_VERSION = 1
FRONTIER_PARTS = (
    "models",
    "sae-x-topk",
    "sae-x-relu",
    "sae-hb-topk",
    "sae-hb-relu",
    "sae-he-topk",
    "sae-he-relu",
)


@dataclass(frozen=True)
class FrontierShape:
    """One scale of the frontier study.

    Attributes:
        name: the shape's name (its folder under the study's root).
        base: the baseline toy model; ``steps`` is set from each training length.
        regimes: the (m, eps) data regimes.
        samples: training lengths in samples (each a multiple of both batches).
        seeds: seeds per point.
        init_bias: the engineered model's initial bias.
        decay_grid: the engineered model's decays, as multiples of the rule's.
        topk_grid: TopK's k as multiples of eps N (rounded, at least 1).
        l1_grid: ReLU's L1 coefficient as multiples of the mean true-feature norm where it reads.
        latents_per_feature: the dictionary has this many latents per feature.
        sae_batch, sae_lr: every SAE's batch and Adam rate.
        warmup, cooldown: the SAEs' linear warm-up and cool-down fractions.
        resample: resampling points of a ReLU SAE.
        sae_lrs: opt-in rate sweep (empty: every SAE at ``sae_lr``): each grid point trains
            at every rate and keeps the one with the lowest reconstruction loss at the end (no
            ground truth), its row billed for every rate's run.
    """

    name: str
    base: Config
    regimes: tuple[tuple[int, float], ...]
    samples: tuple[int, ...] = (2**18, 2**19, 2**20, 2**21)
    seeds: tuple[int, ...] = (0, 1, 2)
    init_bias: float = -1.0
    decay_grid: tuple[float, ...] = (0.5, 1.0, 2.0)
    topk_grid: tuple[float, ...] = (0.5, 1.0, 2.0)
    l1_grid: tuple[float, ...] = (0.2, 0.4, 0.8)
    latents_per_feature: int = 2
    sae_batch: int = 256
    sae_lr: float = 1e-3
    warmup: float = 0.05
    cooldown: float = 0.2
    resample: int = 4
    sae_lrs: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        sizes = {len(self.decay_grid), len(self.topk_grid), len(self.l1_grid)}
        if len(sizes) != 1:
            raise ConfigError("grids", sizes, "must all have one size (equal tuning per side)")
        for s in self.samples:
            if s % self.base.batch or s % self.sae_batch:
                raise ConfigError("samples", s, "must be a multiple of both batches")
        if not self.regimes or not self.seeds:
            raise ConfigError("shape", self.name, "needs regimes and seeds")

    @property
    def grid_size(self) -> int:
        return len(self.decay_grid)


FRONTIER_SHAPES: dict[str, FrontierShape] = {
    # Book scale: the main regime and the two harder regimes where the untuned recipe fell
    # below the baseline (issue 29), 2^18 ... 2^21 samples, three seeds.
    "book": FrontierShape(
        "book",
        preset("book", device="cpu"),
        regimes=((32, 1 / 16), (16, 1 / 4), (8, 1 / 8)),
    ),
    # The SAEs' learning rate, swept (issue 29): book scale at the shortest and longest
    # lengths, one seed, every SAE grid point at four Adam rates, each keeping the rate with
    # the lowest final reconstruction loss (no ground truth) and billed for all four.
    "book-rates": FrontierShape(
        "book-rates",
        preset("book", device="cpu"),
        regimes=((32, 1 / 16), (16, 1 / 4), (8, 1 / 8)),
        samples=(2**18, 2**21),
        seeds=(0,),
        sae_lrs=(3e-4, 1e-3, 3e-3, 1e-2),
    ),
    # The paper's shape (N = 512, m = 64, k = 1024, eps = 1/64, LAMB, periodic cosine) at lr
    # 0.01 with the rule's decay, batch 1024 for the models: later, and much heavier (an SAE on
    # h reads 1024 wide; ``frontier_bill("paper-cpu")``). Its lengths are those where the
    # decay study at this shape finds models that train (4096 and 8192 steps; at 2048 steps,
    # 2^21 samples, no shrink engineers and the baseline has no monosemantic neuron).
    "paper-cpu": FrontierShape(
        "paper-cpu",
        preset("paper-cpu", lr=0.01, device="cpu"),
        regimes=((64, 1 / 64),),
        samples=(2**21, 2**22, 2**23),
        sae_batch=1024,
    ),
}


def _shape(name: str) -> FrontierShape:
    if name not in FRONTIER_SHAPES:
        raise ConfigError("shape", name, "must be one of " + ", ".join(FRONTIER_SHAPES))
    return FRONTIER_SHAPES[name]


@dataclass(frozen=True)
class FrontierCell:
    """One stored file: one part (``FRONTIER_PARTS``) at one regime, length and seed."""

    shape: str
    m: int
    eps: float
    samples: int
    seed: int
    part: str

    @property
    def name(self) -> str:
        return (
            f"m{self.m}-e{round(1 / self.eps)}-n{round(math.log2(self.samples))}"
            f"-seed{self.seed}-{self.part}"
        )

    @property
    def on(self) -> str:
        return "x" if self.part.startswith("sae-x") else "h"

    @property
    def kind(self) -> str:
        return self.part.rsplit("-", 1)[1]


def frontier_cells(shape: str) -> list[FrontierCell]:
    """Every cell, in the order they are trained: seeds outermost (a whole frontier at one
    seed first), then regimes, then lengths shortest first, then the parts."""
    s = _shape(shape)
    return [
        FrontierCell(shape, m, eps, n, seed, part)
        for seed in s.seeds
        for m, eps in s.regimes
        for n in s.samples
        for part in FRONTIER_PARTS
    ]


def frontier_model_configs(shape: str, m: int, eps: float, samples: int, seed: int) -> list[Config]:
    """The models of one point: the baseline, then the engineered model at every decay."""
    s = _shape(shape)
    base = s.base.replace(m=m, eps=eps, steps=samples // s.base.batch, seed=seed)
    rule = decay_for(base.steps, base.lr, base.schedule, outside="allow")
    cap = 0.5 / base.lr
    return [base] + [
        base.replace(init_bias=s.init_bias, bias_decay=min(rule * g, cap)) for g in s.decay_grid
    ]


def _read_index(cell: FrontierCell) -> int:
    """The model instance an SAE cell reads: the baseline (x and hb) or the engineered model
    at the rule's decay, the middle of its grid (he)."""
    return 1 + _shape(cell.shape).grid_size // 2 if "-he-" in cell.part else 0


def frontier_sae_configs(cell: FrontierCell, scale: float = 1.0) -> list[SAEConfig]:
    """The SAEs of an SAE cell, one per grid point (``scale``: the L1 unit where they read)."""
    s = _shape(cell.shape)
    if cell.part == "models":
        raise ConfigError("part", cell.part, "is not an SAE cell")
    N = s.base.N
    common: dict[str, Any] = dict(
        d=cell.m if cell.on == "x" else s.base.k,
        latents=s.latents_per_feature * N,
        batch=s.sae_batch,
        steps=cell.samples // s.sae_batch,
        lr=s.sae_lr,
        warmup=s.warmup,
        cooldown=s.cooldown,
        seed=cell.seed,
    )
    if cell.kind == "topk":
        ks = [min(common["latents"], max(1, round(g * cell.eps * N))) for g in s.topk_grid]
        return [SAEConfig(kind="topk", topk=k, **common) for k in ks]
    return [
        SAEConfig(kind="relu", l1=c * scale, aux_alpha=0.0, resample=s.resample, **common)
        for c in s.l1_grid
    ]


def _cell_spec(cell: FrontierCell) -> dict:
    """What identifies a cell's contents (stored; a mismatch makes it stale)."""
    models = frontier_model_configs(cell.shape, cell.m, cell.eps, cell.samples, cell.seed)
    spec: dict[str, Any] = {"cell": cell.__dict__, "models": [c.to_dict() for c in models]}
    if cell.part != "models":
        spec["sae"] = [c.to_dict() for c in frontier_sae_configs(cell)]
        spec["reads"] = _read_index(cell)
        if _shape(cell.shape).sae_lrs:
            spec["sae_lrs"] = list(_shape(cell.shape).sae_lrs)
    return json.loads(json.dumps(spec))


# -- measuring ---------------------------------------------------------------------------


def _on(configs: list, device: str | None) -> list:
    """``configs`` moved to ``device`` (None: left where the shape puts them)."""
    return configs if device is None else [c.replace(device=device) for c in configs]


def _models_cell(
    cell: FrontierCell, progress: bool | None, device: str | None = None
) -> tuple[list[dict], dict]:
    """Train (or load) one point's models and score every one."""
    s = _shape(cell.shape)
    configs = frontier_model_configs(cell.shape, cell.m, cell.eps, cell.samples, cell.seed)
    run = load_or_train(_on(configs, device), progress=progress)
    rows, arrays = [], {}
    for i, c in enumerate(run.configs):
        grid = None if i == 0 else s.decay_grid[i - 1]
        row = {
            "contender": "baseline" if i == 0 else "engineered",
            "grid": grid,
            "bias_decay": c.bias_decay,
            **score_neurons(run, i),
            "flops": c.flops_per_sample * c.batch * c.steps,
            "seconds": run.train_seconds / run.instances,
        }
        rows.append(row)
        best = gt.neuron_axis_cosines(run, i)
        arrays[f"best_cos_{i:03d}"] = best.cpu().numpy().astype(np.float16)
    return rows, arrays


def _sae_rows(
    cell: FrontierCell, run: Run, sr: SAERun, index: int, bills: list[tuple[int, float]]
) -> tuple[list[dict], dict]:
    """Score every SAE of a cell (TopK also with a calibrated threshold); ``bills``: each
    one's training FLOPs and seconds."""
    s = _shape(cell.shape)
    grid = s.topk_grid if cell.kind == "topk" else s.l1_grid
    mc = run.configs[index]
    extra = {"model_flops": mc.flops_per_sample * mc.batch * mc.steps} if cell.on == "h" else {}
    if cell.on == "h":
        extra["h_flops"] = 2 * mc.m * mc.k * sr.config.batch * sr.config.steps
    thetas = (
        topk_threshold(sr.sae, run, [index] * sr.instances, cell.on)
        if cell.kind == "topk"
        else None
    )
    rows, arrays = [], {}
    for j, c in enumerate(sr.configs):
        row = {
            "contender": "sae-" + cell.part.split("-")[1],
            "kind": cell.kind,
            "grid": grid[j],
            "sparsity": c.sparsity,
            **score_sae(sr.sae, j, run, index, cell.on),
            "lr": c.lr,
            "flops": bills[j][0],
            "seconds": bills[j][1],
            "dead_at_end": sr.dead_latents[j],
            "end_loss": float(sr.loss_history[-max(1, c.steps // 20) :, j].double().mean()),
            **extra,
        }
        if thetas is not None:
            cut = score_sae(sr.sae.thresholded(thetas), j, run, index, cell.on)
            row.update({f"thr_{k}": v for k, v in cut.items()}, threshold=float(thetas[j]))
        rows.append(row)
        units = gt.sae_units(sr.sae, j, run, index, cell.on)
        best = gt.best_cosines(units.atoms.double(), units.truth.double())  # type: ignore[union-attr]
        arrays[f"best_cos_{j:03d}"] = best.cpu().numpy().astype(np.float16)
    return rows, arrays


def _sae_cell(
    cell: FrontierCell, progress: bool | None, device: str | None = None
) -> tuple[list[dict], dict]:
    """Train one cell's SAEs on the model it reads and score them."""
    configs = frontier_model_configs(cell.shape, cell.m, cell.eps, cell.samples, cell.seed)
    run = load_or_train(_on(configs, device), progress=progress)
    index = _read_index(cell)
    scale = sae_feature_scale(run, index, cell.on)
    saes = _on(frontier_sae_configs(cell, scale), device)
    rates = _shape(cell.shape).sae_lrs or (saes[0].lr,)
    saes = [c.replace(lr=lr) for c in saes for lr in rates]
    source = activation_source(run, cell.on, saes[0].batch, [index] * len(saes))
    sr = train_sae(saes, source, progress=progress)
    sr, bills = _keep_best_rate(sr, len(rates))
    return _sae_rows(cell, run, sr, index, bills)


def _keep_best_rate(sr: SAERun, rates: int) -> tuple[SAERun, list[tuple[int, float]]]:
    """Of every ``rates`` consecutive instances (one grid point at each rate), the one with
    the lowest reconstruction loss over the last 5% of its steps, as a run of those; and each
    kept one's bill, the FLOPs and seconds of all its rates' runs."""
    last = max(1, sr.config.steps // 20)
    end = sr.loss_history[-last:].double().mean(0)
    share = sr.train_seconds / sr.instances
    flops = sr.instance_flops
    picks, bills = [], []
    for g in range(0, sr.instances, rates):
        picks.append(g + int(end[g : g + rates].argmin()))
        bills.append((sum(flops[g : g + rates]), share * rates))
    if rates == 1:
        return sr, bills
    return SAERun(
        tuple(sr.configs[i] for i in picks),
        sr.sae.select(picks),
        sr.loss_history[:, picks],
        share * len(picks),
        sr.aux_steps,
        sr.since_fired[picks],
        None if sr.aux_latent_steps is None else sr.aux_latent_steps[picks],
        None if sr.resampled is None else sr.resampled[:, picks],
    ), bills


# -- storing -----------------------------------------------------------------------------


def _path(root: Path, cell: FrontierCell) -> Path:
    return root / cell.shape / f"{cell.name}.json"


def _is_current(root: Path, cell: FrontierCell) -> bool:
    path = _path(root, cell)
    if not path.is_file():
        return False
    try:
        meta = load_batch(path).meta
    except NewerVersionError:
        raise
    except ValueError:
        return False
    return meta.get("frontier_version") == FRONTIER_VERSION and meta.get("spec") == _cell_spec(cell)


def run_frontier(
    root: str | Path,
    shape: str,
    *,
    limit: int | None = None,
    only: Sequence[str] = (),
    progress: bool | None = None,
    device: str | None = None,
    budget_seconds: float | None = None,
) -> list[str]:
    """Make the cells of ``shape`` under ``root/<shape>/`` that are missing or stale, in the
    shape's order (or only those named in ``only``, in that order), at most ``limit`` of them,
    starting no new cell once ``budget_seconds`` have passed; returns the names written.

    ``device`` (``cpu``, ``cuda``, ``cuda:<n>``; None: the shape's own, the CPU) trains and
    scores there. A cell's identity does not include it (a cell made on a GPU is current
    beside those made on the CPU); its file records the device (``meta["device"]``).
    """
    root, written = Path(root), list[str]()
    if device is not None:
        check_device(device)
        device = str(resolve_device(device))
    by_name = {c.name: c for c in frontier_cells(shape)}
    unknown = sorted(set(only) - set(by_name))
    if unknown:
        raise ValueError(f"unknown cell {unknown[0]!r}: see frontier_cells({shape!r})")
    begun = time.perf_counter()
    for cell in [by_name[n] for n in dict.fromkeys(only)] if only else by_name.values():
        if limit is not None and len(written) >= limit:
            break
        if budget_seconds is not None and time.perf_counter() - begun >= budget_seconds:
            break
        if _is_current(root, cell):
            continue
        _make_cell(root, cell, progress, device)
        written.append(cell.name)
    return written


def _make_cell(root: Path, cell: FrontierCell, progress: bool | None, device: str | None) -> None:
    """Train and score one cell on ``device`` and store it (atomically)."""
    start = time.perf_counter()
    part = _models_cell if cell.part == "models" else _sae_cell
    rows, arrays = part(cell, progress, device)
    for row in rows:
        row.update(m=cell.m, eps=cell.eps, samples=cell.samples, seed=cell.seed, part=cell.part)
    where = resolve_device(device or _shape(cell.shape).base.device)
    meta = {
        "name": cell.name,
        "shape": cell.shape,
        "frontier_version": FRONTIER_VERSION,
        "spec": _cell_spec(cell),
        "rows": rows,
        "instances": len(rows),
        "cell_seconds": time.perf_counter() - start,
        "device": str(where),
        "device_name": torch.cuda.get_device_name(where) if where.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),  # CPU threads, so a rate can be given per core
    }
    write_batch(root / cell.shape, cell.name, meta, arrays)


def load_frontier(root: str | Path, shape: str) -> dict[str, StoredBatch]:
    """Every stored, current cell of ``shape`` by name (missing or stale ones left out)."""
    root = Path(root)
    return {
        c.name: load_batch(_path(root, c)) for c in frontier_cells(shape) if _is_current(root, c)
    }


def stale_frontier_cells(root: str | Path, shape: str) -> list[str]:
    """Names of the cells that are missing, damaged or made from other configs."""
    root = Path(root)
    return [c.name for c in frontier_cells(shape) if not _is_current(root, c)]


def frontier_rows(root: str | Path, shape: str) -> Iterator[dict]:
    """Every stored row of ``shape``'s current cells."""
    for batch in load_frontier(root, shape).values():
        yield from batch.rows
