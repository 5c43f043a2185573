"""Sparse autoencoders and SAE study batches on disk, without pickles.

* ``save_sae`` / ``load_sae``: a trained batch of SAEs as a directory holding ``sae.json``
  (format, versions, date, every instance's config, training time, AuxK steps, a loss history
  of 16-step means) and ``weights.npz`` (``W_enc, b_enc, W_dec, b_dec``, the full loss
  history and the steps since each latent fired). Written to a temporary directory that is
  renamed into place, as ``save_run`` does; an existing non-empty directory is never
  overwritten unless asked.
* ``write_batch`` / ``load_batch``: one stored batch of the SAE chapter's study,
  ``<name>.json`` (metadata and metric rows) and ``<name>.npz`` (arrays), each landing by
  rename, like the sweep summaries.

Everything opens with ``json`` and ``numpy.load(allow_pickle=False)``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.sae import SAE, SAEConfig, SAEWeights
from ..core.sae_training import SAERun
from .files import _history_windows, _write_atomically, provenance

__all__ = ["save_sae", "load_sae", "write_batch", "load_batch", "StoredBatch"]

SAE_FORMAT = "monosem-sae"
BATCH_FORMAT = "monosem-sae-batch"


def save_sae(run: SAERun, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Save a trained batch of SAEs to ``directory`` (absent or empty unless ``overwrite``)."""
    directory = Path(directory)
    arrays = {
        name: t.detach().cpu().numpy() for name, t in zip(SAEWeights._fields, run.sae.split())
    }
    arrays["loss_history"] = run.loss_history.cpu().numpy()
    arrays["since_fired"] = run.since_fired.cpu().numpy()
    meta = {
        "format": SAE_FORMAT,
        "format_version": 1,
        **provenance(),
        "configs": [c.to_dict() for c in run.configs],
        "train_seconds": run.train_seconds,
        "aux_steps": run.aux_steps,
        "history": {"window": 16, "loss": _history_windows(run.loss_history)},
    }

    def write(tmp: Path) -> None:
        with open(tmp / "weights.npz", "wb") as fh:
            np.savez(fh, **arrays)
        (tmp / "sae.json").write_text(json.dumps(meta, indent=1, allow_nan=False))

    _write_atomically(directory, write, overwrite)
    return directory


def load_sae(directory: str | os.PathLike, device: str = "cpu") -> SAERun:
    """Load SAEs saved by ``save_sae``; ValueError naming the problem if damaged."""
    directory = Path(directory)
    meta_path, weights_path = directory / "sae.json", directory / "weights.npz"
    if not meta_path.is_file() or not weights_path.is_file():
        raise ValueError(f"{directory} is not a saved SAE (needs sae.json and weights.npz)")
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != SAE_FORMAT:
            raise ValueError(f"{meta_path} is not a {SAE_FORMAT} file")
        configs = tuple(SAEConfig.from_dict(c) for c in meta["configs"])
        with np.load(weights_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        dtype = getattr(torch, configs[0].dtype)
        weights = SAEWeights(
            *(torch.from_numpy(arrays[k]).to(device, dtype) for k in SAEWeights._fields)
        )
    except (OSError, KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"{directory} holds a damaged SAE: {err!r}") from err
    if weights.W_enc.shape != (len(configs), configs[0].latents, configs[0].d):
        raise ValueError(
            f"{weights_path}: W_enc {tuple(weights.W_enc.shape)} disagrees with configs"
        )
    sae = SAE.from_weights(weights, configs[0].kind, torch.tensor([c.topk for c in configs]))
    return SAERun(
        configs,
        sae,
        torch.from_numpy(arrays["loss_history"]),
        float(meta["train_seconds"]),
        int(meta["aux_steps"]),
        torch.from_numpy(arrays["since_fired"]),
    )


def write_batch(
    path: str | os.PathLike, name: str, meta: dict, arrays: dict[str, np.ndarray]
) -> Path:
    """Write ``path/<name>.json`` (``meta`` plus format and provenance) and ``path/<name>.npz``
    (``arrays``, compressed), each by rename so a reader never sees half of one. Overwrites:
    the study decides what is stale."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    full = {"format": BATCH_FORMAT, "format_version": 1, **provenance(), **meta}
    tmp_npz, tmp_json = path / f".{name}.npz.tmp", path / f".{name}.json.tmp"
    with open(tmp_npz, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    tmp_json.write_text(json.dumps(full, indent=1, allow_nan=False))
    os.replace(tmp_npz, path / f"{name}.npz")
    os.replace(tmp_json, path / f"{name}.json")
    return path / f"{name}.json"


@dataclass
class StoredBatch:
    """One stored study batch: ``meta`` (the JSON) and its arrays, loaded on demand."""

    meta: dict
    npz_path: Path

    @property
    def rows(self) -> list[dict]:
        """One dict per instance: its configs, cell and metrics."""
        return self.meta["rows"]

    def array(self, key: str) -> np.ndarray:
        with np.load(self.npz_path, allow_pickle=False) as data:
            return data[key]

    def has(self, key: str) -> bool:
        with np.load(self.npz_path, allow_pickle=False) as data:
            return key in data.files


def load_batch(path: str | os.PathLike) -> StoredBatch:
    """Load ``<name>.json`` and its ``.npz`` (give either file or the stem); ValueError if
    either is missing or damaged."""
    path = Path(path)
    json_path = path if path.suffix == ".json" else path.with_suffix(".json")
    npz_path = json_path.with_suffix(".npz")
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{json_path} is not a readable SAE batch: {err}") from err
    if meta.get("format") != BATCH_FORMAT or not npz_path.is_file():
        raise ValueError(f"{json_path} is not a {BATCH_FORMAT} file with its .npz beside it")
    return StoredBatch(meta, npz_path)
