"""A Sphinx extension: every page loads each script once. sphinx-thebe and
sphinx-togglebutton each reach a page's scripts twice with the same inline configuration, once
with the file None and once with "", which Sphinx keeps as two scripts; the browser then logged
"Identifier 'THEBE_JS_URL' has already been declared" on every page.

The list is filtered in place, after every other handler: the page's scripts are the builder's
own list, which handlers that run later (the MathJax extension among them) append to. An earlier
version swapped in a new list at priority 100, so MathJax's script went to a list no page used
and no formula rendered."""

from __future__ import annotations

from typing import Any


def unique_scripts(scripts: list[Any]) -> list[Any]:
    """``scripts`` without repeats: two entries are the same when their file (None and ""
    alike, as for an inline script) and attributes (an inline script's ``body`` among them)
    agree; the first is kept."""
    seen: set[tuple] = set()
    out = []
    for js in scripts:
        name = getattr(js, "filename", js) or ""
        key = (str(name), tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            out.append(js)
    return out


def _dedupe(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    if "script_files" in context:
        context["script_files"][:] = unique_scripts(context["script_files"])


# Folders of _static whose scripts load only where they are needed: Jupyter Book adds every .js
# file under _static to every page, which would run MathJax's extensions without MathJax and
# the playground's ES modules as classic scripts.
NOT_ON_EVERY_PAGE = ("mathjax/", "playground/")


def page_scripts(files: list[Any]) -> list[Any]:
    """``html_js_files`` without the scripts under ``NOT_ON_EVERY_PAGE``."""
    return [
        f
        for f in files
        if not str(f[0] if isinstance(f, tuple) else f).startswith(NOT_ON_EVERY_PAGE)
    ]


def _keep_own_scripts(app: Any, config: Any) -> None:
    config.html_js_files = page_scripts(config.html_js_files)


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", _keep_own_scripts, priority=400)  # before Sphinx reads the list
    app.connect("html-page-context", _dedupe, priority=990)  # after the handlers that add scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True}
