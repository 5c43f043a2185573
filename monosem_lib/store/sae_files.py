"""Sparse autoencoders and SAE study batches on disk, without pickles, by the storage rule.

* ``save_sae`` / ``load_sae``: a trained batch of SAEs as a directory holding ``sae.json``
  (format, versions, date, every instance's config, training time, AuxK steps, a loss history
  of 16-step means) and ``weights.npz`` (``W_enc, b_enc, W_dec, b_dec``, the full loss
  history and the steps since each latent fired). Written and loaded like a run
  (``files.write_run``): locked, written aside, the JSON sealed with the digest of the
  weights, renamed into place, kept in a rescue directory if the disk fails; an existing
  non-empty directory is never overwritten unless asked.
* ``write_batch`` / ``load_batch``: one stored batch of the SAE chapter's study,
  ``<name>.json`` (metadata and metric rows) and ``<name>.npz`` (arrays), a pair committed
  like a sweep summary (``atomic.commit_pair``). The study decides what is stale, so a batch
  is replaced when written again.

Everything opens with ``json`` and ``numpy.load(allow_pickle=False)``, and every load checks
what ``verify`` checks for runs (digests, format and versions, configs, shapes, finite
values); files written before digests existed are still read, their arrays in full.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core.sae import SAE, SAE_STRUCTURAL_FIELDS, SAEConfig, SAEWeights
from ..core.sae_training import SAERun
from .atomic import (
    StoredFileError,
    WriteFailed,
    commit_pair,
    rescue,
    verify_seal,
)
from .files import (
    HISTORY_WINDOW,
    history_windows,
    open_sealed_pair,
    provenance,
    read_json,
    tidy_dir,
    write_weights_dir,
)
from .locks import holding
from .verify import (
    check_header,
    check_stem,
    parse_configs,
    read_arrays,
    require_finite,
    require_shape,
    storable,
    write_npz,
)

__all__ = ["save_sae", "load_sae", "write_batch", "load_batch", "StoredBatch"]

SAE_FORMAT = "monosem-sae"
SAE_FORMAT_VERSION = 1
BATCH_FORMAT = "monosem-sae-batch"
BATCH_FORMAT_VERSION = 1


# Arrays a run may hold (``SAERun.aux_latent_steps``, ``resampled``), stored when present.
_OPTIONAL_ARRAYS = ("aux_latent_steps", "resampled")


# -- trained SAEs ---------------------------------------------------------------------------
def _sae_arrays(run: SAERun) -> dict[str, np.ndarray]:
    arrays = {
        name: t.detach().cpu().numpy() for name, t in zip(SAEWeights._fields, run.sae.split())
    }
    arrays["loss_history"] = run.loss_history.cpu().numpy()
    arrays["since_fired"] = run.since_fired.cpu().numpy()
    for name in _OPTIONAL_ARRAYS:  # kept where the run has them
        value = getattr(run, name)
        if value is not None:
            arrays[name] = value.cpu().numpy()
    return arrays


def _sae_meta(run: SAERun) -> dict:
    return {
        "format": SAE_FORMAT,
        "format_version": SAE_FORMAT_VERSION,
        **provenance(),
        "configs": [c.to_dict() for c in run.configs],
        "train_seconds": run.train_seconds,
        "aux_steps": run.aux_steps,
        "history": {"window": HISTORY_WINDOW, "loss": history_windows(run.loss_history)},
    }


def save_sae(
    run: SAERun,
    directory: str | os.PathLike,
    *,
    overwrite: bool = False,
    keep_on_failure: bool = True,
) -> Path:
    """Save a trained batch of SAEs to ``directory`` (created; absent or empty unless
    ``overwrite``), locked, written aside, sealed and renamed in. If the write fails (full or
    read-only disk) and ``keep_on_failure``, the SAEs are saved in a rescue directory and
    WriteFailed names it. Returns the directory."""
    return write_weights_dir(
        Path(directory), "sae.json", _sae_meta(run), _sae_arrays(run), "SAE",
        overwrite, keep_on_failure,
    )  # fmt: skip


def _sae_configs(items: object, where: Path) -> tuple[SAEConfig, ...]:
    """A non-empty list of config dicts as SAEConfigs sharing one structure (device aside)."""
    out = parse_configs(items, where, SAEConfig)
    for i, c in enumerate(out[1:], 1):
        for f in SAE_STRUCTURAL_FIELDS:
            if f != "device" and getattr(c, f) != getattr(out[0], f):
                raise StoredFileError(
                    f"{where}: config {i} has {f}={getattr(c, f)!r} but config 0 has "
                    f"{getattr(out[0], f)!r}; one batch of SAEs shares its structure"
                )
    return tuple(out)


def _check_sae_arrays(arrays: dict, configs: tuple[SAEConfig, ...], where: Path) -> None:
    c, I = configs[0], len(configs)
    require_shape(arrays, "W_enc", (I, c.latents, c.d), where)
    require_shape(arrays, "b_enc", (I, c.latents), where)
    require_shape(arrays, "W_dec", (I, c.d, c.latents), where)
    require_shape(arrays, "b_dec", (I, c.d), where)
    require_shape(arrays, "loss_history", (c.steps, I), where)
    require_shape(arrays, "since_fired", (I, c.latents), where)
    if "aux_latent_steps" in arrays:
        require_shape(arrays, "aux_latent_steps", (I,), where)
    if "resampled" in arrays:
        require_shape(arrays, "resampled", (len(c.resample_steps()), I), where)
    require_finite(arrays, where)


def _number(meta: dict, key: str, where: Path) -> float:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StoredFileError(f"{where}: {key} is {value!r}, not a number")
    return value


def load_sae(directory: str | os.PathLike, device: str = "cpu") -> SAERun:
    """Load SAEs saved by ``save_sae``, checking digests, format, versions, configs, shapes
    and that every weight is finite; StoredFileError (a ValueError) naming the file and the
    problem otherwise."""
    directory = Path(directory)
    tidy_dir(directory, "sae.json", "SAE")
    meta_path, weights_path = directory / "sae.json", directory / "weights.npz"
    if not meta_path.is_file() or not weights_path.is_file():
        raise StoredFileError(f"{directory} is not a saved SAE (needs sae.json and weights.npz)")
    meta = check_header(read_json(meta_path, "SAE"), meta_path, SAE_FORMAT, SAE_FORMAT_VERSION)
    verify_seal(meta, meta_path, {"weights.npz": weights_path})
    configs = _sae_configs(meta.get("configs"), meta_path)
    seconds, aux_steps = (_number(meta, k, meta_path) for k in ("train_seconds", "aux_steps"))
    arrays = read_arrays(weights_path)
    _check_sae_arrays(arrays, configs, weights_path)
    dtype = getattr(torch, configs[0].dtype)
    weights = SAEWeights(
        *(torch.from_numpy(arrays[k]).to(device, dtype) for k in SAEWeights._fields)
    )
    sae = SAE.from_weights(weights, configs[0].kind, torch.tensor([c.topk for c in configs]))
    return SAERun(
        configs,
        sae,
        torch.from_numpy(arrays["loss_history"]),
        float(seconds),
        int(aux_steps),
        torch.from_numpy(arrays["since_fired"]),
        *(torch.from_numpy(arrays[k]) if k in arrays else None for k in _OPTIONAL_ARRAYS),
    )


# -- the study's batches --------------------------------------------------------------------
def write_batch(
    path: str | os.PathLike,
    name: str,
    meta: dict,
    arrays: dict[str, np.ndarray],
    *,
    keep_on_failure: bool = True,
) -> Path:
    """Write ``path/<name>.json`` (``meta`` plus format and provenance, sealed with the
    digest of the arrays) and ``path/<name>.npz`` (``arrays``, compressed), locked and
    committed so that a reader sees the old pair or the new one. Replaces an existing pair:
    the study decides what is stale. If the write fails (full or read-only disk) the pair is
    kept in a rescue directory and WriteFailed names it. Returns the JSON's path."""
    path = Path(path)
    check_stem(name, "batch name")
    storable(arrays, path / f"{name}.npz")
    full = {"format": BATCH_FORMAT, "format_version": BATCH_FORMAT_VERSION, **provenance()}
    full.update({k: v for k, v in meta.items() if k not in ("integrity", *full)})
    json.dumps(full, allow_nan=False)  # a ValueError here, before anything is written

    def write(folder: Path) -> Path:
        return commit_pair(folder, name, lambda fh: write_npz(fh, arrays, compress=True), full)

    try:
        with holding(path / name):
            return write(path)
    except OSError as err:
        if not keep_on_failure or isinstance(err, WriteFailed):
            raise
        kept = rescue(name, write)
        move = f"move {name}.json and {name}.npz from there into {path}"
        raise WriteFailed(path / f"{name}.json", err, kept, "SAE study batch", move) from err


@dataclass
class StoredBatch:
    """One stored study batch: ``meta`` (the JSON) and its arrays by key (``<what>_<index>``,
    as verified at load; read from ``npz_path`` on first use when built by hand)."""

    meta: dict
    npz_path: Path
    arrays: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def rows(self) -> list[dict]:
        """One dict per instance, with its configs, cell and metrics."""
        return self.meta["rows"]

    def all_arrays(self) -> dict[str, np.ndarray]:
        if self.arrays is None:
            self.arrays = read_arrays(Path(self.npz_path))
        return self.arrays

    def array(self, key: str) -> np.ndarray:
        arrays = self.all_arrays()
        if key not in arrays:
            raise KeyError(f"{self.npz_path} holds no array {key!r}")
        return arrays[key]

    def has(self, key: str) -> bool:
        return key in self.all_arrays()


def _batch_rows(meta: dict, where: Path) -> list[dict]:
    rows = meta.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise StoredFileError(f"{where}: needs a list of rows, one object per instance")
    if meta.get("instances", len(rows)) != len(rows):
        raise StoredFileError(
            f"{where}: lists {len(rows)} rows but says it holds {meta.get('instances')!r} instances"
        )
    return rows


def _check_batch_arrays(arrays: dict[str, np.ndarray], rows: int, where: Path) -> None:
    """Every array is ``<what>_<index>`` of an instance the JSON lists, and finite."""
    for key in arrays:
        stem, _, index = key.rpartition("_")
        if not stem or not index.isdigit():
            raise StoredFileError(f"{where}: holds an unexpected array {key!r}")
        if int(index) >= rows:
            raise StoredFileError(
                f"{where}: holds {key} but its JSON lists {rows} instances; the pair does not "
                "belong together"
            )
    require_finite(arrays, where)


def load_batch(path: str | os.PathLike) -> StoredBatch:
    """Load ``<name>.json`` and its ``.npz`` (give either file or the stem), checking the
    digests, format, versions, the rows and that the arrays are whole, finite and belong to
    the rows. Raises StoredFileError (a ValueError) naming the file and the problem."""
    meta, json_path, npz_path = open_sealed_pair(
        path, "SAE study batch", BATCH_FORMAT, BATCH_FORMAT_VERSION
    )
    rows = _batch_rows(meta, json_path)
    arrays = read_arrays(npz_path)
    _check_batch_arrays(arrays, len(rows), npz_path)
    return StoredBatch(meta, npz_path, arrays)
