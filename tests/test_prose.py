"""The chapters' stated numbers (monosem_lib.book.prose): every number a sentence states is
tied to a computed value, and no chapter holds a MyST role that Colab would show raw."""

import json
import re
from pathlib import Path

import pytest

from monosem_lib.book import prose

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def _markdown(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def test_a_stated_number_must_equal_its_value_to_the_digits_shown(tmp_path):
    cell = {"cell_type": "markdown", "source": ["LR3 reaches 1.8<!-- mono --> mono/N. Next.\n"]}
    nb = tmp_path / "ch.ipynb"
    nb.write_text(json.dumps({"cells": [cell]}))
    assert "1 stated numbers" in prose.check_prose(nb, {"mono": "1.8"})
    with pytest.raises(AssertionError, match=r"'LR3 reaches 1.8 mono/N.' should state 1.9"):
        prose.check_prose(nb, {"mono": "1.9"})
    with pytest.raises(AssertionError, match="never computed"):
        prose.check_prose(nb, {})
    assert "not beside the kernel" in prose.check_prose(tmp_path / "missing.ipynb", {})


def test_a_number_is_stated_whole_and_formats_apply():
    (s,) = prose.stated_numbers("a loss of 10.35<!-- x:.2f -->")
    assert s.fmt == ".2f" and s.states("10.35") and not s.states("0.35")
    assert prose.stated_text(0.12345, ".3f") == "0.123" and prose.stated_text(7.0, "d") == "7"
    assert prose.stated_text("0.35") == "0.35"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_chapter_holds_a_role_that_colab_shows_raw(path):
    """Colab and Jupyter show a MyST role as written: a hole in the sentence."""
    roles = [m for md in _markdown(path) for m in re.findall(r"\{[\w:-]+\}`[^`]*`", md)]
    assert not roles, f"{path.name}: MyST roles in the text: {roles[:5]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_chapter_checks_its_stated_numbers(path):
    stated = [s for md in _markdown(path) for s in prose.stated_numbers(md)]
    if not stated:
        return
    code = json.loads(path.read_text(encoding="utf-8"))["cells"]
    calls = [c for c in code if "check_prose(" in "".join(c["source"])]
    assert calls, f"{path.name}: states {len(stated)} numbers but never calls book.check_prose"
