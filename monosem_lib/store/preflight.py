"""Checks made before training, so that a run is not lost to its own write: the output
location is writable and has room for the result (``check_output``), whose size is estimated
from the configs (``run_bytes``, ``summary_bytes``). The lock (``locks.holding``) is the third
check; the command line takes it before training and keeps it until the result is written.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..core.config import Config
from ..core.model import ToyModel
from ..core.resources import format_bytes

__all__ = [
    "PreflightError",
    "run_bytes",
    "summary_bytes",
    "check_output",
    "probe_write",
    "SPACE_MARGIN",
]

SPACE_MARGIN = 1.25  # free space wanted per byte of estimated output (JSON, zip headers)
JSON_BYTES_PER_INSTANCE = 16_000  # config, metrics, curves, a 256-point loss history


class PreflightError(RuntimeError):
    """The output location cannot take the result; nothing was trained."""


def run_bytes(configs: Sequence[Config], checkpoints: bool = True) -> int:
    """The size of ``files.write_run`` for single-instance ``configs`` trained in one pass."""
    c, I = configs[0], len(configs)
    size = 8 if c.dtype == "float64" else 4
    weights = sum(ToyModel.sizes(I, c.k, c.m, c.out_dim))
    stored = int(math.log2(c.steps)) + 2 if checkpoints else 0
    projections = I * c.m * c.N * (2 if c.task == "reprojector" else 1)
    arrays = (weights * (1 + stored) + projections + c.steps * I) * size
    return arrays + I * (JSON_BYTES_PER_INSTANCE + c.steps // 16 * 24)


def summary_bytes(
    configs: Sequence[Config], representative: Iterable[int] = (), compact: bool = False
) -> int:
    """An upper bound on the size of ``summaries.save_summary`` for these instances."""
    keep = set(representative)
    total = 0
    for i, c in enumerate(configs):
        width = 2 * c.N if c.task == "abs" else c.N
        neurons = c.k * 14 if compact else c.k * width * 4  # float32 where float16 overflows
        total += neurons + 4 * c.k + JSON_BYTES_PER_INSTANCE
        if i in keep:
            total += 4 * (c.k * c.m + c.k + c.out_dim * c.k + c.m * c.N)
    return total


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def probe_write(directory: Path) -> None:
    """Create and remove a file in ``directory``: the one sure test that it is writable
    (permission bits say nothing on a read-only mount or to root)."""
    fd, name = tempfile.mkstemp(prefix=".monosem-probe-", dir=directory)
    os.close(fd)
    os.unlink(name)


def check_output(target: str | os.PathLike, need: int, what: str = "--out") -> None:
    """Raise PreflightError unless ``target`` (a file stem or a directory, existing or not)
    can be written and its disk has ``SPACE_MARGIN`` times ``need`` bytes free."""
    target = Path(target)
    base = _existing_ancestor(target.parent)
    if not base.is_dir():
        raise PreflightError(f"{what}: {target} cannot be created: {base} is not a directory")
    try:
        probe_write(base)
    except OSError as err:
        raise PreflightError(
            f"{what}: cannot write to {base} ({err.strerror or err}); choose a writable location"
        ) from None
    free = shutil.disk_usage(base).free
    if free < SPACE_MARGIN * need:
        raise PreflightError(
            f"{what}: {target} needs about {format_bytes(need)} but {base} has only "
            f"{format_bytes(free)} free; free some space or choose another location"
        )
