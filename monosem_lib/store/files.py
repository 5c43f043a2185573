"""Runs and sweep summaries on disk: file formats only (the cache is ``cache.py``).

A saved run is a directory with

* ``run.json``: format, library version, date, device, the config of every instance, the
  summary metrics, a loss history (means over 16-step windows) and timing;
* ``weights.npz``: ``W1`` [I, k, m], ``b`` [I, k], ``W2`` [I, out, k], ``P`` [I, m, N]
  (``Q`` for the re-projector), the full ``loss_history`` [steps, I] and the checkpoints.

Both open without unpickling anything (``json``, ``numpy.load(allow_pickle=False)``), so
anyone can recompute the monosemanticity numbers from the weights with numpy alone. Writes
go to a temporary directory that is renamed into place, so a crash never leaves half a run;
an existing non-empty directory is never overwritten unless asked.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.config import Config
from ..core.model import ToyModel
from ..core.training import Run
from ..version import RESULTS_VERSION, SOURCE_DIGEST, __version__

__all__ = [
    "save_run",
    "load_run",
    "write_summary",
    "provenance",
    "load_summary",
    "Summary",
]

FORMAT = "monosem-run"
FORMAT_VERSION = 1
HISTORY_WINDOW = 16


def _history_windows(history: torch.Tensor) -> list[list[float]]:
    steps = history.shape[0]
    n = steps // HISTORY_WINDOW
    if n == 0:
        return history.double().mean(0, keepdim=True).tolist()
    return history[: n * HISTORY_WINDOW].double().view(n, HISTORY_WINDOW, -1).mean(1).tolist()


def _write_atomically(directory: Path, write, overwrite: bool) -> None:
    directory = Path(directory)
    if directory.exists():
        if not directory.is_dir():
            raise FileExistsError(f"{directory} exists and is not a directory; choose another path")
        if any(directory.iterdir()) and not overwrite:
            raise FileExistsError(
                f"{directory} already exists and is not empty; refusing to overwrite it. "
                "Choose another directory, or pass overwrite=True (CLI: --overwrite)."
            )
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        write(tmp)
        if directory.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old-", dir=directory.parent))
            os.rename(directory, old / "run")
            os.rename(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_run(
    run: Run,
    directory: str | os.PathLike,
    *,
    overwrite: bool = False,
    checkpoints: bool = True,
    metrics: list[dict] | None = None,
) -> Path:
    """Save ``run`` to ``directory`` (created; must be absent or empty unless ``overwrite``).

    Args:
        checkpoints: also store the weights at every checkpoint (needed to redraw training
            curves after loading; costs one weight copy per checkpoint).
        metrics: the summary rows to record (``metrics.summarize(run)``); none when None.
    Returns:
        The directory.
    """
    directory = Path(directory)
    metrics = [] if metrics is None else metrics
    W1, b, W2 = (t.detach().cpu().numpy() for t in run.model.split())
    arrays = {
        "W1": W1,
        "b": b,
        "W2": W2,
        "P": run.P.cpu().numpy(),
        "loss_history": run.loss_history.cpu().numpy(),
    }
    if run.Q is not None:
        arrays["Q"] = run.Q.cpu().numpy()
    steps = sorted(run.checkpoints)
    if checkpoints and steps:
        arrays["checkpoint_steps"] = np.array(steps, dtype=np.int64)
        arrays["checkpoints"] = np.stack([run.checkpoints[s].cpu().numpy() for s in steps])
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "results_version": RESULTS_VERSION,
        "source_digest": SOURCE_DIGEST,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(run.model.flat.device),
        "torch_version": torch.__version__,
        "configs": [c.to_dict() for c in run.configs],
        "train_seconds": run.train_seconds,
        "steps_done": run.steps_done,
        "stopped_at": run.stopped_at,
        "metrics": metrics,
        "history": {"window": HISTORY_WINDOW, "loss": _history_windows(run.loss_history)},
        "checkpoint_steps": steps,
    }

    def write(tmp: Path) -> None:
        with open(tmp / "weights.npz", "wb") as fh:
            np.savez(fh, **arrays)
        (tmp / "run.json").write_text(json.dumps(meta, indent=1, allow_nan=False))

    _write_atomically(directory, write, overwrite)
    return directory


def load_run(directory: str | os.PathLike, device: str = "cpu") -> Run:
    """Load a run saved by ``save_run``. Raises ValueError naming the problem if the files
    are missing, truncated or inconsistent."""
    directory = Path(directory)
    meta_path, weights_path = directory / "run.json", directory / "weights.npz"
    if not meta_path.is_file() or not weights_path.is_file():
        raise ValueError(f"{directory} is not a saved run (needs run.json and weights.npz)")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{meta_path} is not valid JSON: {err}") from err
    if meta.get("format") != FORMAT:
        raise ValueError(f"{meta_path} is not a {FORMAT} file")
    try:
        configs = tuple(Config.from_dict(c) for c in meta["configs"])
        with np.load(weights_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as err:  # zip errors, missing keys, bad configs: all mean a broken run
        raise ValueError(f"{directory} holds a damaged run: {err}") from err
    for key in ("W1", "b", "W2", "P", "loss_history"):
        if key not in arrays:
            raise ValueError(f"{weights_path} lacks {key}")
    first = configs[0]
    dtype = getattr(torch, first.dtype)
    to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device, dtype)  # noqa: E731
    W1, b, W2 = to(arrays["W1"]), to(arrays["b"]), to(arrays["W2"])
    I = len(configs)
    expected = (I, first.k, first.m)
    if tuple(W1.shape) != expected or tuple(W2.shape) != (I, first.out_dim, first.k):
        raise ValueError(
            f"{weights_path}: weight shapes {tuple(W1.shape)}, {tuple(W2.shape)} "
            "disagree with the configs"
        )
    model = ToyModel.from_weights(W1, b, W2, first.nonlinearity)
    ckpts = {}
    if "checkpoints" in arrays:
        for s, flat in zip(arrays["checkpoint_steps"].tolist(), arrays["checkpoints"]):
            ckpts[int(s)] = torch.from_numpy(flat.copy()).to(dtype)
    Q = to(arrays["Q"]) if "Q" in arrays else None
    return Run(
        configs,
        model,
        to(arrays["P"]),
        Q,
        torch.from_numpy(arrays["loss_history"].copy()),
        ckpts,
        float(meta.get("train_seconds", 0.0)),
        meta.get("stopped_at"),
    )


# -- summaries: what chapter 8 stores for paper-scale (and book-scale) sweeps -------------
SUMMARY_FORMAT = "monosem-summary"


def write_summary(
    path: str | os.PathLike, name: str, meta: dict, arrays: dict, *, overwrite: bool = False
) -> Path:
    """Write a sweep summary as ``path/<name>.json`` (``meta``) and ``path/<name>.npz``
    (``arrays``), each landing by rename so a reader never sees half of one. The summary is
    built by ``results.save_summary``; this only writes it. ``name`` is the file stem (a
    shard's is ``<batch>.part-<i>-of-<n>``)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    json_path, npz_path = path / f"{name}.json", path / f"{name}.npz"
    if (json_path.exists() or npz_path.exists()) and not overwrite:
        raise FileExistsError(
            f"{json_path} already exists; refusing to overwrite it "
            "(pass overwrite=True, CLI --overwrite)"
        )
    meta = {"format": SUMMARY_FORMAT, "format_version": 1, **meta}
    tmp_npz, tmp_json = path / f".{name}.npz.tmp", path / f".{name}.json.tmp"
    with open(tmp_npz, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    tmp_json.write_text(json.dumps(meta, allow_nan=False))
    os.replace(tmp_npz, npz_path)
    os.replace(tmp_json, json_path)
    return json_path


def provenance() -> dict:
    """What a stored result records about the code and machine that made it."""
    return {
        "library_version": __version__,
        "results_version": RESULTS_VERSION,
        "source_digest": SOURCE_DIGEST,
        "torch_version": torch.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


@dataclass
class Summary:
    """A stored sweep: ``meta`` (the JSON) and lazily loaded arrays by instance."""

    meta: dict
    npz_path: Path

    @property
    def configs(self) -> list[Config]:
        return [Config.from_dict(i["config"]) for i in self.meta["instances"]]

    @property
    def metrics(self) -> list[dict]:
        return [i["metrics"] for i in self.meta["instances"]]

    def array(self, key: str, instance: int) -> np.ndarray:
        with np.load(self.npz_path, allow_pickle=False) as data:
            return data[f"{key}_{instance:03d}"]

    def run(self, instance: int) -> Run:
        """The stored weights of a representative instance as a one-instance Run."""
        if not self.meta["instances"][instance]["weights"]:
            kept = [i for i, x in enumerate(self.meta["instances"]) if x["weights"]]
            raise ValueError(
                f"instance {instance} of {self.meta['name']} has no stored weights; "
                f"instances with weights: {kept}"
            )
        t = {k: torch.from_numpy(self.array(k, instance)).float() for k in ("W1", "b", "W2", "P")}
        cfg = self.configs[instance].replace(device="cpu", dtype="float32")
        model = ToyModel.from_weights(t["W1"][None], t["b"][None], t["W2"][None], cfg.nonlinearity)
        return Run((cfg,), model, t["P"][None], None, torch.zeros(0, 1))


def load_summary(path: str | os.PathLike) -> Summary:
    """Load ``<name>.json`` (give either file or the stem); ValueError if damaged."""
    path = Path(path)
    json_path = path if path.suffix == ".json" else path.with_suffix(".json")
    npz_path = json_path.with_suffix(".npz")
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{json_path} is not a readable summary: {err}") from err
    if meta.get("format") != SUMMARY_FORMAT or not npz_path.is_file():
        raise ValueError(f"{json_path} is not a {SUMMARY_FORMAT} file with its .npz beside it")
    return Summary(meta, npz_path)
