"""Execute one chapter in this interpreter's kernel and check that it trained and cached.

Used by the oldest stage (``tools/test_oldest.sh``): the chapter runs in a kernel of the
Python that runs this script (the oldest environment), with the checkout's ``monosem_lib``
(``PYTHONPATH``), against an empty run cache, so that it trains. Afterwards the cache must
hold at least one entry, and every entry must load (``load_run``: seal, format and arrays
checked) on this environment's numpy. Prints the chapter's wall time. Exit status 1 on a
failing cell or an empty or unreadable cache.

    python tools/run_chapter.py book/01_superposition.ipynb
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def execute(notebook: Path, cache: Path, timeout: int) -> float:
    """Run every cell of ``notebook`` (working directory: its folder) with the run cache at
    ``cache``; its wall time in seconds. Raises CellExecutionError on a failing cell."""
    import nbformat
    from nbclient import NotebookClient

    os.environ["MONOSEM_CACHE_DIR"] = str(cache)  # the kernel inherits this environment
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=timeout,
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def cached_runs(cache: Path) -> list[str]:
    """The cache's entries, each loaded and verified; ValueError if one does not load."""
    from monosem_lib.store.files import load_run

    entries = sorted(p for p in cache.iterdir() if p.is_dir() and not p.name.startswith("."))
    for entry in entries:
        load_run(entry)
    return [e.name for e in entries]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="seconds a cell may take")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="monosem-oldest-cache-") as tmp:
        cache = Path(tmp)
        try:
            wall = execute(args.notebook.resolve(), cache, args.timeout)
        except Exception as err:  # noqa: BLE001 - reported in one block, then exit 1
            print(f"{args.notebook} failed in this environment:\n{str(err)[-3000:]}")
            return 1
        entries = cached_runs(cache)
    if not entries:
        print(f"{args.notebook} ran but cached no run (MONOSEM_CACHE_DIR was {cache})")
        return 1
    print(
        f"{args.notebook.name}: ran in {wall:.1f} s on Python {sys.version.split()[0]}, "
        f"trained and cached {len(entries)} run(s), each reloaded and verified"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
