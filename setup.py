"""Ship the book's stored summaries with the library. Everything else is in pyproject.toml.

The repository's ``data/`` (the stored sweeps the chapters read) lives beside the package, not
in it. A wheel built from the repository, which is what a chapter's Colab install cell
(``pip install "monosem_lib[book] @ git+<repository>@<branch>"``) builds, gets a copy of it as
``monosem_lib/stored_data``, where ``monosem_lib.book.data_dir`` finds it. Editable installs
skip the copy: they find ``data/`` in the checkout itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
TARGET = Path("monosem_lib", "stored_data")


def stored_files(folder: Path = DATA) -> list[Path]:
    """Every file under ``folder`` to ship, relative to it (hidden files and caches left out)."""
    return sorted(
        p.relative_to(folder)
        for p in folder.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") or part == "__pycache__" for part in p.parts)
    )


class BuildWithData(build_py):
    """``build_py`` that also copies ``data/`` into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False) or not DATA.is_dir():
            return
        target = Path(self.build_lib) / TARGET
        shutil.rmtree(target, ignore_errors=True)  # no file from an earlier build survives
        for rel in stored_files():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(DATA / rel, target / rel)


if __name__ == "__main__":  # as setuptools runs it; importing it (the tests do) builds nothing
    setup(cmdclass={"build_py": BuildWithData})
