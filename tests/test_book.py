"""The book's frame: the repository URL lives in _config.yml alone and every chapter agrees."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import booktools  # noqa: E402
import install_line  # noqa: E402
import scripts_once  # noqa: E402


def test_every_toc_entry_exists_and_chapters_are_notebooks():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert (ROOT / f"{toc['root']}.md").exists()
    for part in toc["parts"]:
        for ch in part["chapters"]:
            f = ch["file"]
            assert (ROOT / f"{f}.ipynb").exists() or (ROOT / f"{f}.md").exists(), f
            if f.startswith("book/"):
                assert (ROOT / f"{f}.ipynb").exists(), (
                    f"{f}: chapters are notebooks (Colab opens only notebooks)"
                )


def test_the_api_page_documents_every_module():
    """Each module of the library has its section on the API page (a new module is not left
    out of the reference), and the page names no module that no longer exists."""
    import re

    package = ROOT / "monosem_lib"
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in package.rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    }
    documented = set(re.findall(r"automodule:: (\S+)", (ROOT / "api.md").read_text()))
    assert modules - documented == set(), "add these to api.md"
    assert documented - modules == set(), "api.md names modules that do not exist"


def test_chapters_are_in_step_with_the_config():
    chapters = booktools.chapters(ROOT)
    assert len(chapters) >= 2
    problems = [p for nb in chapters for p in booktools.check(nb, ROOT)]
    assert not problems, "\n".join(problems) + "\nrun: python tools/booktools.py sync"


def test_launch_buttons_and_install_cells_derive_from_one_url():
    cfg = booktools.config(ROOT)
    url = cfg["repository"]["url"]
    assert cfg["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    for nb in booktools.chapters(ROOT):
        cells = json.loads(nb.read_text())["cells"]
        assert url.split("github.com/")[1] in "".join(cells[0]["source"])
        assert "".join(cells[1]["source"]).startswith("# "), "the title comes first"
        assert f"git+{url}@" in "".join(cells[booktools.SETUP_INDEX]["source"])
    # Nothing else in the repository spells the URL out.
    for path in (
        list(ROOT.glob("*.md"))
        + list(ROOT.glob("*.yml"))
        + list((ROOT / "monosem_lib").glob("*.py"))
    ):
        if path.name != "_config.yml":
            assert url not in path.read_text(), (
                f"{path.name} repeats the repository URL; derive it from _config.yml"
            )


def test_the_api_page_install_command_derives_from_the_config():
    url, _, branch = booktools.repository(ROOT)
    command = install_line.install_command({"repository_url": url, "repository_branch": branch})
    assert command == f'`pip install "monosem_lib[book] @ git+{url}@{branch}"`'
    assert "{{ install_command }}" in (ROOT / "api.md").read_text()
    cfg = booktools.config(ROOT)
    assert cfg["sphinx"]["local_extensions"]["install_line"] == "tools/"
    with pytest.raises(ValueError, match="repository url"):
        install_line.install_command({})


def test_each_page_loads_each_script_once():
    from sphinx.builders.html._assets import _JavaScript

    config = _JavaScript("", body="const THEBE_JS_URL = 1")
    scripts = [
        _JavaScript("a.js"),
        config,
        _JavaScript("a.js"),
        _JavaScript("", body="const THEBE_JS_URL = 1"),
    ]
    assert scripts_once.unique_scripts(scripts) == [scripts[0], config]
    assert scripts_once.unique_scripts(["x.js", "x.js"]) == ["x.js"]


def test_vendored_scripts_are_not_added_to_every_page():
    """Jupyter Book lists every .js under _static for every page; MathJax's own files and the
    playground's modules must load only where they are asked for."""
    files = ["mathjax/a11y/sre.js", ("playground/ui.js", {}), "other.js", ("x.js", {"defer": 1})]
    assert scripts_once.page_scripts(files) == ["other.js", ("x.js", {"defer": 1})]


def test_check_catches_a_changed_url(tmp_path):
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "book").mkdir()
    nb = booktools.chapters(ROOT)[0]
    shutil.copy(nb, tmp_path / "book" / nb.name)
    copy = tmp_path / "book" / nb.name
    assert booktools.check(copy, tmp_path) == []
    cfg = (
        (tmp_path / "_config.yml")
        .read_text()
        .replace("engineering-monosemanticity/engineering-monosemanticity", "someone/else")
    )
    (tmp_path / "_config.yml").write_text(cfg)
    problems = booktools.check(copy, tmp_path)
    assert any("Colab badge" in p for p in problems) and any("install cell" in p for p in problems)
    assert booktools.sync(copy, tmp_path) and booktools.check(copy, tmp_path) == []


def test_config_guards_the_strict_build():
    cfg = booktools.config(ROOT)
    assert cfg["only_build_toc_files"] is True
    assert {"_build", ".venv"} <= set(cfg["exclude_patterns"])
    assert cfg["execute"]["execute_notebooks"] == "cache" and cfg["execute"]["timeout"] > 0
    assert cfg["copyright"] and (ROOT / cfg["bibtex_bibfiles"][0]).exists()


def test_every_name_a_chapter_reads_from_the_library_exists():
    """``book.X``, ``claims.X``... in a chapter's code must exist (a rename broke two chapters:
    the appendix reassigned ``book``, chapter 3 read a constant the namespace lost). The
    modules are imported here, so this needs the ``[book]`` extra like the chapters."""
    import re

    import monosem_lib as ml
    from monosem_lib import book, claims, exercises
    from monosem_lib.paper import budget, reproduction, series

    modules = {"book": book, "ml": ml, "claims": claims, "exercises": exercises}
    modules.update(budget=budget, reproduction=reproduction, series=series)
    missing = []
    for nb in booktools.chapters(ROOT):
        cells = json.loads(nb.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for alias, module in modules.items():
            if re.search(rf"^\s*{alias}\s*=", code, re.M):
                missing.append(f"{nb.name}: assigns to {alias}, hiding the module")
            for name in sorted(set(re.findall(rf"(?<![\w.]){alias}\.(\w+)", code))):
                if not hasattr(module, name):
                    missing.append(f"{nb.name}: {alias}.{name}")
    assert not missing, missing
