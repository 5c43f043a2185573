"""The result cache: trained runs keyed by their configs and the code that trains them.

A notebook that asks for the same batch twice (or two notebooks that share a batch) trains it
once. Entries are saved runs (``files.write_run``); the key covers every instance config, the
library version and the digest of the modules that decide a result (``version.SOURCE_DIGEST``),
so any change to training code retrains. Entries follow the storage rule of ``atomic``: a
damaged, mismatched or non-finite entry is reported once, removed and trained again, and two
processes never write one entry at the same time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch

from ..core.config import Config
from ..core.data import resolve_device
from ..core.training import Run, as_instances, train
from ..version import SOURCE_DIGEST, __version__
from .files import load_run, write_run
from .locks import TargetLocked, holding

__all__ = ["RunCache", "load_or_train", "default_cache_dir", "run_key"]


def run_key(configs: Config | Iterable[Config]) -> str:
    """The cache key of a batch: its instance configs, library version and training code."""
    payload = json.dumps(
        {
            "configs": [c.to_dict() for c in as_instances(configs)],
            "version": __version__,
            "source": SOURCE_DIGEST,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def default_cache_dir() -> Path:
    """``$MONOSEM_CACHE_DIR``, else ``$XDG_CACHE_HOME/monosem_lib``, else
    ``~/.cache/monosem_lib`` (an unset or empty variable counts as absent; a relative
    ``XDG_CACHE_HOME`` is ignored, as the XDG specification asks)."""
    env = os.environ.get("MONOSEM_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "monosem_lib"


class RunCache:
    """Trained runs stored under ``root/<key>``, the key covering every instance config,
    the library version and its training code. A whole batch is one entry: in float32 an
    instance's trajectory depends (slightly) on the batch it trained in."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, configs: Config | Iterable[Config]) -> Path:
        return self.root / run_key(configs)

    def get(self, configs: Config | Iterable[Config]) -> Run | None:
        """The cached run, or None. A damaged entry is removed with a warning."""
        path = self.path(configs)
        if not path.exists():
            return None
        try:
            # On the device the config asks for, as a freshly trained run would be.
            return load_run(path, device=_device_of(configs))
        except ValueError as err:
            warnings.warn(
                f"cached run {path.name} is damaged ({err}); training it again", stacklevel=2
            )
            try:
                with holding(path):
                    shutil.rmtree(path, ignore_errors=True)
            except (TargetLocked, OSError):
                pass  # being rewritten by another process, or not ours to remove
            return None

    def put(self, configs: Config | Iterable[Config], run: Run) -> None:
        path = self.path(configs)
        try:
            # Metrics are recomputed from the weights on load; skipping them keeps caching cheap.
            write_run(run, path, overwrite=True, metrics=[], keep_on_failure=False)
        except TargetLocked:
            pass  # another process is caching the same batch
        except (OSError, ValueError) as err:  # a full disk or read-only cache must not lose the run
            warnings.warn(f"could not cache run in {path}: {err}", stacklevel=2)

    def load_or_train(self, configs: Config | Iterable[Config], **train_kwargs) -> Run:
        run = self.get(configs)
        if run is None:
            run = train(configs, **train_kwargs)
            self.put(configs, run)
        return run


def load_or_train(
    configs: Config | Iterable[Config],
    cache: str | os.PathLike | bool | None = None,
    **train_kwargs,
) -> Run:
    """Train ``configs`` in one pass, or load the identical batch from the result cache.

    Args:
        cache: a directory; None for ``default_cache_dir()``; False to always train.
        train_kwargs: passed to ``train`` (progress, checkpoints...).
    """
    if cache is False:
        return train(configs, **train_kwargs)
    configs = as_instances(configs)
    root = None if cache is None or cache is True else cache
    return RunCache(root).load_or_train(configs, **train_kwargs)


def _device_of(configs: Config | Iterable[Config]) -> torch.device:
    return resolve_device(as_instances(configs)[0].device)
