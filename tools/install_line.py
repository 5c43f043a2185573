"""A Sphinx extension: the ``{{ install_command }}`` substitution, the pip command that
installs the library from the book's repository, derived from ``_config.yml``'s
``repository`` (through the theme options Jupyter Book sets from it), so the URL is
spelled out in one place only."""

from __future__ import annotations

from typing import Any


def install_command(theme_options: dict[str, Any]) -> str:
    """The install command as inline Markdown code, or a one-line error if no URL is set."""
    url = str(theme_options.get("repository_url") or "").rstrip("/")
    if not url.startswith("https://"):
        raise ValueError(f"repository url {url!r} in _config.yml must be an https:// URL")
    branch = theme_options.get("repository_branch") or "main"
    return f'`pip install "monosem_lib[book] @ git+{url}@{branch}"`'


def _add_substitution(app: Any, config: Any) -> None:
    subs = dict(getattr(config, "myst_substitutions", None) or {})
    subs["install_command"] = install_command(config.html_theme_options or {})
    config.myst_substitutions = subs


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", _add_substitution)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
