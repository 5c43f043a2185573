"""The library's version, and the version of the numbers it produces.

Kept in a module of its own so that storage and the CLI can read them without importing the
package ``__init__`` (which pulls in every module).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__version__ = "0.1.0"

# Bump when a change alters what training or measurement produce for a given config (a new
# sampler, optimizer step, metric...). Stored summaries record it; ``--resume`` and the book's
# staleness checks compare it, and ``tests/test_golden.py`` fails when the numbers of a fixed
# small run change while this stays the same. Refactors that keep the numbers leave it alone.
RESULTS_VERSION = 1


# Modules whose code decides a stored result: what training produces (config, data, model,
# optim, training), how it is measured (metrics) and which configs a batch holds (sweeps).
# A change to any of them changes the digest, which invalidates cached runs; stored
# summaries record it as provenance (their staleness is decided by RESULTS_VERSION).
RESULT_SOURCES = (
    "core/config.py",
    "core/data.py",
    "core/model.py",
    "core/optim.py",
    "core/training.py",
    "core/step.py",
    "analysis/metrics.py",
    "paper/table1.py",
)


def source_digest(package_dir: str | os.PathLike | None = None) -> str:
    """A 16-hex-digit digest of the ``RESULT_SOURCES`` in ``package_dir`` (default: this
    package's own directory)."""
    here = Path(__file__).parent if package_dir is None else Path(package_dir)
    h = hashlib.sha256()
    for name in RESULT_SOURCES:
        h.update(name.encode() + b"\0" + (here / name).read_bytes())
    return h.hexdigest()[:16]


SOURCE_DIGEST = source_digest()
