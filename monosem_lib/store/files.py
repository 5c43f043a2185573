"""Runs and sweep summaries on disk: file formats only (the cache is ``cache.py``).

A saved run is a directory with

* ``run.json``: format, library version, date, device, the config of every instance, the
  summary metrics, a loss history (means over 16-step windows) and timing;
* ``weights.npz``: ``W1`` [I, k, m], ``b`` [I, k], ``W2`` [I, out, k], ``P`` [I, m, N]
  (``Q`` for the re-projector), the full ``loss_history`` [steps, I] and the checkpoints.

Both open without unpickling anything (``json``, ``numpy.load(allow_pickle=False)``), so
anyone can recompute the monosemanticity numbers from the weights with numpy alone. Every
write follows the storage rule of ``atomic`` (a lock, files written aside, a JSON sealed with
the digest of its ``.npz`` and committed last, a rescue copy when the disk fails) and every
load checks it (``verify``); an existing non-empty directory is never overwritten unless asked.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..analysis.health import run_flags
from ..core.config import Config
from ..core.model import ToyModel
from ..core.training import Run
from ..version import RESULTS_VERSION, SOURCE_DIGEST, __version__
from .atomic import (
    StoredFileError,
    WriteFailed,
    commit_dir,
    commit_pair,
    dir_leftovers,
    interrupted,
    pair_leftovers,
    recover_dir,
    recover_pair,
    rescue,
    seal,
    verify_seal,
    write_temp,
)
from .locks import TargetLocked, holding
from .verify import (
    check_header,
    check_stem,
    check_summary_arrays,
    finite_or_none,
    parse_configs,
    read_arrays,
    require_finite,
    require_shape,
    same_structure,
    storable,
    summary_configs,
    write_npz,
)

__all__ = [
    "open_sealed_pair",
    "write_weights_dir",
    "write_run",
    "load_run",
    "write_summary",
    "provenance",
    "load_summary",
    "Summary",
    "HISTORY_WINDOW",
    "history_windows",
    "check_target",
    "read_json",
    "tidy_dir",
    "tidy_pair",
]

FORMAT = "monosem-run"
FORMAT_VERSION = 1
HISTORY_WINDOW = 16


def history_windows(history: torch.Tensor) -> list[list[float]]:
    """A loss history [steps, I] as means over ``HISTORY_WINDOW``-step windows (one mean of
    everything for a shorter run): what a stored JSON records of it."""
    steps = history.shape[0]
    n = steps // HISTORY_WINDOW
    if n == 0:
        return history.double().mean(0, keepdim=True).tolist()
    return history[: n * HISTORY_WINDOW].double().view(n, HISTORY_WINDOW, -1).mean(1).tolist()


def check_target(directory: Path, overwrite: bool) -> None:
    """Refuse to write into ``directory`` when it is a file, or a non-empty directory and
    ``overwrite`` is not set (FileExistsError saying how to go on)."""
    if directory.exists():
        if not directory.is_dir():
            raise FileExistsError(f"{directory} exists and is not a directory; choose another path")
        if any(directory.iterdir()) and not overwrite:
            raise FileExistsError(
                f"{directory} already exists and is not empty; refusing to overwrite it. "
                "Choose another directory, or pass overwrite=True (CLI: --overwrite)."
            )


def _run_arrays(run: Run, checkpoints: bool) -> dict[str, np.ndarray]:
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
    return arrays


def _run_meta(run: Run, metrics: list[dict], steps: list[int]) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "results_version": RESULTS_VERSION,
        "source_digest": SOURCE_DIGEST,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "device": str(run.model.flat.device),
        "torch_version": torch.__version__,
        "configs": [c.to_dict() for c in run.configs],
        "train_seconds": run.train_seconds,
        "steps_done": run.steps_done,
        "stopped_at": run.stopped_at,
        "metrics": finite_or_none(metrics),
        "flags": run_flags(metrics, run.configs) if metrics else [],
        "history": {"window": HISTORY_WINDOW, "loss": history_windows(run.loss_history)},
        "checkpoint_steps": steps,
    }


def write_run(
    run: Run,
    directory: str | os.PathLike,
    *,
    overwrite: bool = False,
    checkpoints: bool = True,
    metrics: list[dict] | None = None,
    keep_on_failure: bool = True,
) -> Path:
    """Save ``run`` to ``directory`` (created; must be absent or empty unless ``overwrite``),
    following the storage rule of ``atomic``: locked, written aside, sealed, renamed in.

    Args:
        checkpoints: also store the weights at every checkpoint (needed to redraw training
            curves after loading; costs one weight copy per checkpoint).
        metrics: the summary rows to record (``metrics.summarize(run)``); none when None.
            Instances they flag (``health.flags``) are recorded as flagged.
        keep_on_failure: if the write fails (full or read-only disk), save the run in a
            rescue directory instead and raise WriteFailed naming it.
    Returns:
        The directory.
    """
    directory = Path(directory)
    metrics = [] if metrics is None else metrics
    arrays = _run_arrays(run, checkpoints)
    meta = _run_meta(run, metrics, sorted(run.checkpoints))
    return write_weights_dir(directory, "run.json", meta, arrays, "run", overwrite, keep_on_failure)


def write_weights_dir(
    directory: Path,
    json_name: str,
    meta: dict,
    arrays: dict[str, np.ndarray],
    what: str,
    overwrite: bool,
    keep_on_failure: bool,
) -> Path:
    """Write ``arrays`` as ``weights.npz`` and ``meta``, sealed with its digest, as
    ``json_name`` into ``directory`` by the storage rule (locked, written aside, renamed in;
    kept in a rescue folder and WriteFailed raised, naming it, if the write fails and
    ``keep_on_failure``). Runs and SAE batches are written this way."""
    storable(arrays, directory / "weights.npz")

    def write(tmp: Path) -> None:
        weights = write_temp(tmp, "weights.npz", lambda fh: write_npz(fh, arrays))
        os.replace(weights, tmp / "weights.npz")
        sealed = seal(meta, {"weights.npz": tmp / "weights.npz"})
        text = json.dumps(sealed, indent=1, allow_nan=False).encode()
        os.replace(write_temp(tmp, json_name, lambda fh: fh.write(text)), tmp / json_name)

    try:
        with holding(directory):
            check_target(directory, overwrite)
            commit_dir(directory, write)
    except OSError as err:
        if not keep_on_failure or isinstance(err, (FileExistsError, WriteFailed)):
            raise
        kept = rescue(directory.name, write)
        raise WriteFailed(directory, err, kept, what) from err
    return directory


def read_json(path: Path, what: str) -> object:
    """The JSON in ``path``; StoredFileError naming the file (as a ``what``) if unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StoredFileError(f"{path} is not a readable {what}: {err}") from None


def tidy_dir(directory: Path, marker: str = "run.json", what: str = "run") -> None:
    """Tidy what a writer of ``directory`` killed mid-write left (under the lock), restoring
    the ``what`` an interrupted overwrite moved aside when the directory is missing
    (``marker``: the file a whole one holds)."""
    if not dir_leftovers(directory):
        return
    try:
        with holding(directory):
            restored = recover_dir(directory)
    except (TargetLocked, OSError) as err:
        if (directory / marker).is_file() or not interrupted(directory):
            return  # being written now, or not ours to tidy: the result itself is whole
        raise StoredFileError(
            f"{directory} is missing: an interrupted overwrite left the previous {what} in "
            f"{interrupted(directory)[0]}, which could not be restored now ({err})"
        ) from None
    if restored is not None:
        warnings.warn(
            f"{directory}: restored the {what} an interrupted overwrite had moved to {restored}",
            stacklevel=3,
        )


def tidy_pair(json_path: Path) -> None:
    """Tidy what a writer of this pair (a summary, a study batch) killed mid-commit left
    (under the lock): its temporary files, and its JSON moved aside, restored if it still
    matches the data."""
    directory, stem = json_path.parent, json_path.name.removesuffix(".json")
    if not pair_leftovers(directory, stem):
        return
    try:
        with holding(directory / stem):
            recover_pair(directory, stem)
    except (TargetLocked, OSError):
        pass  # being written now, or not ours to tidy


def _check_run_arrays(arrays: dict, configs: list[Config], where: Path) -> None:
    c, I = configs[0], len(configs)
    require_shape(arrays, "W1", (I, c.k, c.m), where)
    require_shape(arrays, "b", (I, c.k), where)
    require_shape(arrays, "W2", (I, c.out_dim, c.k), where)
    require_shape(arrays, "P", (I, c.m, c.N), where)
    if c.task == "reprojector":
        require_shape(arrays, "Q", (I, c.m, c.N), where)
    if "loss_history" not in arrays or arrays["loss_history"].ndim != 2:
        raise StoredFileError(f"{where}: lacks a [steps, instances] loss_history")
    require_shape(arrays, "loss_history", (arrays["loss_history"].shape[0], I), where)
    if "checkpoints" in arrays:
        n = len(arrays.get("checkpoint_steps", ()))
        require_shape(arrays, "checkpoint_steps", (n,), where)
        flat = sum(ToyModel.sizes(I, c.k, c.m, c.out_dim))
        require_shape(arrays, "checkpoints", (n, flat), where)
    require_finite(arrays, where)


def load_run(directory: str | os.PathLike, device: str | torch.device = "cpu") -> Run:
    """Load a run saved by ``write_run`` (or ``summaries.save_run``), checking its digests,
    format, versions, configs, shapes and that every weight is finite. Raises
    StoredFileError (a ValueError) naming the file and the problem otherwise."""
    directory = Path(directory)
    tidy_dir(directory)
    meta_path, weights_path = directory / "run.json", directory / "weights.npz"
    if not meta_path.is_file() or not weights_path.is_file():
        raise StoredFileError(f"{directory} is not a saved run (needs run.json and weights.npz)")
    meta = check_header(read_json(meta_path, "run"), meta_path, FORMAT, FORMAT_VERSION)
    verify_seal(meta, meta_path, {"weights.npz": weights_path})
    configs = parse_configs(meta.get("configs"), meta_path)
    same_structure(configs, meta_path)
    arrays = read_arrays(weights_path)
    _check_run_arrays(arrays, configs, weights_path)
    return _run_from_arrays(meta, tuple(configs), arrays, device)


def _run_from_arrays(
    meta: dict, configs: tuple[Config, ...], arrays: dict, device: str | torch.device
) -> Run:
    first = configs[0]
    dtype = getattr(torch, first.dtype)
    to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device, dtype)  # noqa: E731
    model = ToyModel.from_weights(
        to(arrays["W1"]), to(arrays["b"]), to(arrays["W2"]), first.nonlinearity
    )
    ckpts = {}
    if "checkpoints" in arrays:
        for s, flat in zip(arrays["checkpoint_steps"].tolist(), arrays["checkpoints"]):
            ckpts[int(s)] = torch.from_numpy(flat.copy()).to(dtype)
    Q = to(arrays["Q"]) if "Q" in arrays else None
    seconds = meta.get("train_seconds", 0.0)
    return Run(
        configs,
        model,
        to(arrays["P"]),
        Q,
        torch.from_numpy(arrays["loss_history"].copy()),
        ckpts,
        float(seconds) if isinstance(seconds, (int, float)) else 0.0,
        meta.get("stopped_at") if isinstance(meta.get("stopped_at"), int) else None,
    )


# -- summaries: what chapter 7 stores for paper-scale (and book-scale) sweeps -------------
SUMMARY_FORMAT = "monosem-summary"
SUMMARY_FORMAT_VERSION = 1


def write_summary(
    path: str | os.PathLike,
    name: str,
    meta: dict,
    arrays: dict,
    *,
    overwrite: bool = False,
    keep_on_failure: bool = True,
) -> Path:
    """Write a sweep summary as ``path/<name>.json`` (``meta``, sealed with the digest of the
    arrays) and ``path/<name>.npz`` (``arrays``) by the storage rule of ``atomic``: locked,
    written aside, committed so that a reader sees the old pair, none or the new pair. The
    summary is built by ``summaries.save_summary``; this only writes it. ``name`` is the file
    stem (a shard's is ``<batch>.part-<i>-of-<n>``); one that could leave ``path`` is refused.
    If the write fails (full or read-only disk) the pair is kept in a rescue directory and
    WriteFailed names it."""
    path = Path(path)
    check_stem(name)
    json_path = path / f"{name}.json"
    storable(arrays, path / f"{name}.npz")
    drop = ("format", "format_version", "integrity")
    meta = {
        "format": SUMMARY_FORMAT,
        "format_version": SUMMARY_FORMAT_VERSION,
        **{k: v for k, v in meta.items() if k not in drop},
    }
    json.dumps(meta, allow_nan=False)  # a ValueError here, before anything is written

    def write(folder: Path) -> Path:
        return commit_pair(folder, name, lambda fh: write_npz(fh, arrays, compress=True), meta)

    try:
        with holding(path / name):
            if (json_path.exists() or (path / f"{name}.npz").exists()) and not overwrite:
                raise FileExistsError(
                    f"{json_path} already exists; refusing to overwrite it "
                    "(pass overwrite=True, CLI --overwrite)"
                )
            return write(path)
    except OSError as err:
        if not keep_on_failure or isinstance(err, (FileExistsError, WriteFailed)):
            raise
        kept = rescue(name, write)
        move = f"move {name}.json and {name}.npz from there into {path}"
        raise WriteFailed(json_path, err, kept, "summary", move) from err


def provenance() -> dict:
    """What a stored result records about the code and machine that made it."""
    return {
        "library_version": __version__,
        "results_version": RESULTS_VERSION,
        "source_digest": SOURCE_DIGEST,
        "torch_version": torch.__version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


@dataclass
class Summary:
    """A stored sweep: ``meta`` (the JSON) and its arrays by instance, as verified at load
    (``load_summary``; read from ``npz_path`` on first use when built by hand)."""

    meta: dict
    npz_path: Path
    arrays: dict[str, np.ndarray] | None = field(default=None, repr=False)
    parsed: list[Config] | None = field(default=None, repr=False)

    @property
    def configs(self) -> list[Config]:
        if self.parsed is not None:
            return list(self.parsed)
        return [Config.from_dict(i["config"]) for i in self.meta["instances"]]

    @property
    def metrics(self) -> list[dict]:
        return [i["metrics"] for i in self.meta["instances"]]

    def all_arrays(self) -> dict[str, np.ndarray]:
        """Every stored array by key (``<key>_<instance:03d>``)."""
        if self.arrays is None:
            self.arrays = read_arrays(Path(self.npz_path))
        return self.arrays

    def array(self, key: str, instance: int) -> np.ndarray:
        name = f"{key}_{instance:03d}"
        arrays = self.all_arrays()
        if name not in arrays:
            raise KeyError(f"{self.npz_path} holds no {key} for instance {instance}")
        return arrays[name]

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


def open_sealed_pair(
    path: str | os.PathLike, what: str, fmt: str, version: int
) -> tuple[dict, Path, Path]:
    """The checked header of a ``<name>.json`` + ``<name>.npz`` pair of format ``fmt`` (give
    either file or the stem): the pair tidied after an interrupted write, both files present,
    the header's format and version accepted and the ``.npz``'s digest verified. Returns the
    metadata and both paths; the caller reads and checks the arrays."""
    path = Path(path)
    json_path = path.with_suffix(".json") if path.suffix == ".npz" else path
    if json_path.suffix != ".json":
        json_path = path.with_name(path.name + ".json")
    npz_path = json_path.with_suffix(".npz")
    tidy_pair(json_path)
    if not json_path.is_file():
        raise StoredFileError(f"{json_path}: no such {what}")
    meta = check_header(read_json(json_path, what), json_path, fmt, version)
    if not npz_path.is_file():
        raise StoredFileError(f"{json_path} is a {fmt} file without its .npz beside it")
    verify_seal(meta, json_path, {"npz": npz_path})
    return meta, json_path, npz_path


def load_summary(path: str | os.PathLike) -> Summary:
    """Load ``<name>.json`` and its ``.npz`` (give either file or the stem), checking the
    digests, format, versions, configs and that the arrays are whole, finite and match the
    instances. Raises StoredFileError (a ValueError) naming the file and the problem."""
    meta, json_path, npz_path = open_sealed_pair(
        path, "summary", SUMMARY_FORMAT, SUMMARY_FORMAT_VERSION
    )
    configs = summary_configs(meta, json_path)
    arrays = read_arrays(npz_path)
    check_summary_arrays(meta, configs, arrays, npz_path)
    return Summary(meta, npz_path, arrays, configs)
