"""A Sphinx extension: every page loads each script once. sphinx-thebe adds its configuration
script on every read of the sources, so a build that reads twice (Jupyter Book's does) put
``const THEBE_JS_URL`` on each page twice, and the browser logged "Identifier 'THEBE_JS_URL'
has already been declared"."""

from __future__ import annotations

from typing import Any


def unique_scripts(scripts: list[Any]) -> list[Any]:
    """``scripts`` without repeats: two entries are the same when their file and attributes
    (an inline script's ``body`` among them) agree; the first is kept."""
    seen: set[tuple] = set()
    out = []
    for js in scripts:
        key = (
            str(getattr(js, "filename", js)),
            tuple(sorted(getattr(js, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            out.append(js)
    return out


def _dedupe(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    if "script_files" in context:
        context["script_files"] = unique_scripts(context["script_files"])


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
