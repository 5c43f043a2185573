"""Finding the book's stored summaries (``book.data_dir``) and shipping them with the library.

The order: ``$MONOSEM_DATA_DIR`` alone when set; the checkout the library is imported from;
``../data`` and ``data`` from the working directory; the copy a wheel installs. The first
that holds what a chapter asks for wins; none gives one clear sentence, not a KeyError.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from monosem_lib.book import stored
from monosem_lib.book.stored import DataUnavailable, data_dir
from monosem_lib.paper import reproduction

ROOT = Path(__file__).resolve().parents[1]
# The repository's setup.py, which decides what a wheel ships.
_spec = importlib.util.spec_from_file_location("monosem_setup", ROOT / "setup.py")
setup_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(setup_script)


def _fake_data(folder: Path, *items: str) -> Path:
    """A data/ folder with empty summaries ``items`` (``book/LR1`` -> ``book/LR1.json``)."""
    for item in items:
        path = folder / f"{item}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    return folder


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Pretend the library is installed (no checkout around it) at tmp_path/site."""
    package = tmp_path / "site" / "monosem_lib"
    package.mkdir(parents=True)
    monkeypatch.setattr(stored, "PACKAGE", package)
    monkeypatch.delenv(stored.DATA_ENV, raising=False)
    work = tmp_path / "work" / "content"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    return package / stored.INSTALLED_NAME


def test_the_checkout_is_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(stored.DATA_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert data_dir().resolve() == (ROOT / "data").resolve()
    assert data_dir("book/LR1", "paper-cpu/budget").resolve() == (ROOT / "data").resolve()


def test_the_installed_copy_is_found_and_any_subfolder_counts(installed):
    _fake_data(installed, "book/LR1", "sae/features")
    assert data_dir() == installed
    assert data_dir("sae", "sae/features", "book/LR1") == installed


def test_the_working_directory_comes_before_the_installed_copy(installed):
    _fake_data(installed, "book/LR1", "book/LR3")
    beside = _fake_data(Path("..") / "data", "book/LR1")
    assert data_dir("book/LR1").resolve() == beside.resolve()
    # A place that lacks part of what is asked for is passed over for one that has it all.
    assert data_dir("book/LR1", "book/LR3") == installed


def test_nowhere_raises_one_sentence_that_says_how_to_get_the_data(installed):
    with pytest.raises(DataUnavailable) as failed:
        data_dir("book/LR1", "book/LR3", "book/LR5", "book/G1")
    sentence = str(failed.value)
    assert "data/book/LR1" in sentence and "1 more" in sentence
    assert str(installed) in sentence and "install cell" in sentence and "make data" in sentence
    assert sentence.endswith(".") and ". " not in sentence, sentence
    assert failed.value._render_traceback_() == [f"DataUnavailable: {sentence}"]
    assert isinstance(failed.value, FileNotFoundError)


def test_the_environment_variable_is_the_only_place_looked(tmp_path, monkeypatch):
    monkeypatch.setenv(stored.DATA_ENV, str(tmp_path / "nothing"))
    with pytest.raises(DataUnavailable, match="MONOSEM_DATA_DIR"):
        data_dir()
    copy = _fake_data(tmp_path / "copy", "book/LR1")
    monkeypatch.setenv(stored.DATA_ENV, str(copy))
    assert data_dir("book/LR1") == copy


def test_a_folder_without_summaries_is_not_data(installed):
    (Path("data") / "book").mkdir(parents=True)  # e.g. a reader's own data/ in Colab
    _fake_data(installed, "book/LR1")
    assert data_dir() == installed


def test_load_data_says_when_its_folder_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_dir"):
        reproduction.load_data(tmp_path / "nothing")


def test_the_wheel_ships_every_file_of_data(tmp_path):
    files = setup_script.stored_files(ROOT / "data")
    on_disk = [p for p in (ROOT / "data").rglob("*") if p.is_file()]
    assert len(files) == len(on_disk) and Path("book/LR1.json") in files
    hidden = _fake_data(tmp_path / "data", "book/LR1", ".cache/x")
    assert setup_script.stored_files(hidden) == [Path("book/LR1.json")]
    assert json.loads((ROOT / "data" / "book" / "LR1.json").read_text())
