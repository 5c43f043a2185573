"""Fixtures shared by the browser tests (the built site and the live widgets in JupyterLab)."""

import shutil

import pytest


@pytest.fixture(scope="module")
def browser():
    """Debian's headless chromium driven by Playwright (never `playwright install`)."""
    playwright = pytest.importorskip("playwright.sync_api")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail(
            "Debian's chromium is not installed (apt-get install -y chromium); "
            "never `playwright install`"
        )
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=exe,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()
