"""Where the book's stored summaries are: one function every chapter calls.

The repository's ``data/`` folder (Table 1 at book scale, the paper's shape on a CPU, the
studies) is read by several chapters. A reader may have it in three ways, looked at in this
order:

1. ``$MONOSEM_DATA_DIR``, when set: that folder and nothing else (for tests and for a copy of
   ``data/`` kept elsewhere);
2. a repository checkout: the checkout this library is imported from (an editable install or
   ``PYTHONPATH``), then ``../data`` and ``data`` from the working directory (a chapter run
   from ``book/`` or from the repository root);
3. the copy installed with the library: a wheel built from the repository (what the chapters'
   Colab install cell builds) ships ``data/`` as ``monosem_lib/stored_data`` (``setup.py``).

The first of them that holds everything a chapter asks for wins. When none does,
:func:`data_dir` raises :class:`DataUnavailable`, whose message is one sentence that says what
is missing, where it looked and how to get or regenerate the data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "DATA_ENV",
    "DataUnavailable",
    "data_candidates",
    "data_dir",
    "installed_data",
]

DATA_ENV = "MONOSEM_DATA_DIR"
PACKAGE = Path(__file__).resolve().parents[1]  # the monosem_lib folder
INSTALLED_NAME = "stored_data"  # setup.py copies data/ here when it builds a wheel


class DataUnavailable(FileNotFoundError):
    """The stored summaries a chapter reads are nowhere to be found.

    Its message is one sentence saying how to get them; in a notebook it is shown as that
    sentence alone (IPython's ``_render_traceback_`` hook), not as a traceback.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def installed_data() -> Path:
    """Where a wheel-installed library keeps its copy of ``data/``."""
    return PACKAGE / INSTALLED_NAME


def _checkout_data() -> Path | None:
    """``data/`` of the repository checkout this library is imported from, if it is one."""
    root = PACKAGE.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "monosem_lib"' in pyproject.read_text(errors="replace"):
        return root / "data"
    return None


def data_candidates() -> list[tuple[str, Path]]:
    """The (description, folder) pairs :func:`data_dir` tries, in order."""
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return [(f"${DATA_ENV}", Path(env).expanduser())]
    found = [("the repository checkout", p) for p in (_checkout_data(),) if p is not None]
    found += [("the working directory", Path("../data")), ("the working directory", Path("data"))]
    found.append(("the installed library", installed_data()))
    seen: set[Path] = set()
    out = []
    for where, path in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            out.append((where, path))
    return out


def _holds(folder: Path, item: str) -> bool:
    """Whether ``folder`` holds ``item``: a path under it, as a folder, a file, or a summary
    (``book/LR1`` is ``book/LR1.json``)."""
    path = folder / item
    return path.exists() or (not path.suffix and path.with_suffix(".json").is_file())


def _holds_summaries(folder: Path) -> bool:
    """Whether ``folder`` looks like ``data/``: a subfolder with a stored summary in it."""
    return folder.is_dir() and any(folder.glob("*/*.json"))


def _missing(folder: Path, needed: Sequence[str]) -> list[str]:
    if not folder.is_dir():
        return list(needed) or ["any stored summary"]
    if not needed:
        return [] if _holds_summaries(folder) else ["any stored summary"]
    return [item for item in needed if not _holds(folder, item)]


def _unavailable_message(needed: Sequence[str], tried: list[tuple[str, Path]]) -> str:
    shown = [f"data/{n}" for n in needed[:3]] + [f"{len(needed) - 3} more"] * (len(needed) > 3)
    what = ", ".join(shown) if needed else "data/"
    places = "; ".join(f"{where} ({path})" for where, path in tried)
    return (
        f"The book's stored summaries ({what}) were not found in {places}, so run this "
        "chapter's first code cell (the install cell) to install the library with its data, "
        "or run the chapter from a clone of the book's repository, where `make data` "
        f"regenerates them (or set {DATA_ENV} to a copy of the repository's data/ folder)."
    )


def data_dir(*needed: str) -> Path:
    """The folder holding the book's stored summaries (the repository's ``data/``).

    Args:
        needed: what the caller reads, as paths under ``data/`` (a folder such as
            ``"paper-cpu/budget"``, or a batch such as ``"book/LR1"`` for
            ``book/LR1.json``); the first place holding all of them is returned. With none,
            the first place holding any summary.

    Raises:
        DataUnavailable: no place holds them; its message says how to get them.
    """
    tried = data_candidates()
    for _, folder in tried:
        if not _missing(folder, needed):
            return folder
    raise DataUnavailable(_unavailable_message(list(needed), tried))
