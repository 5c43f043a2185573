"""The built site in a real browser (Debian's chromium driven by Playwright).

Needs ``_build/html`` (``make book``). ``make test`` builds first and sets
MONOSEM_REQUIRE_BUILD=1 so a missing site fails instead of skipping. Screenshots of every
chapter land in ``_build/screenshots/`` for a person to look at.
"""

import functools
import http.server
import os
import re
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
sys.path.insert(0, str(ROOT / "tools"))
import booktools  # noqa: E402

# Harmless noise on an offline build of this theme, listed explicitly:
KNOWN_PAGE_ERRORS = (
    re.compile(r"invalid theme mode", re.I),  # pydata theme before localStorage is set
)


def _site_or_skip():
    if not (SITE / "index.html").exists():
        if os.environ.get("MONOSEM_REQUIRE_BUILD"):
            pytest.fail("_build/html is missing: run `make book` first")
        pytest.skip("the site is not built (make book)")


@pytest.fixture(scope="module")
def server():
    _site_or_skip()
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _pages():
    chapters = booktools.chapters(ROOT)
    others = ["intro", "api", "bibliography"]
    return [(p.stem, p.relative_to(ROOT).with_suffix(".html").as_posix(), p) for p in chapters] + [
        (name, f"{name}.html", None) for name in others
    ]


PAGES = _pages()


@pytest.mark.parametrize("name,url,notebook", PAGES, ids=[p[0] for p in PAGES])
def test_page_loads_shows_figures_links_colab_and_sliders_work(
    name, url, notebook, server, browser
):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    response = page.goto(f"{server}/{url}", wait_until="load")
    assert response is not None and response.ok, f"{url} did not load"
    page.wait_for_timeout(300)
    unexpected = [e for e in errors if not any(k.search(e) for k in KNOWN_PAGE_ERRORS)]
    assert not unexpected, f"{url}: page errors {unexpected}"
    if notebook is None:
        page.close()
        return

    # Figures: every chapter shows several, and each one actually loaded.
    images = page.eval_on_selector_all(
        "main img, article img",
        "els => els.map(e => [e.getAttribute('src') || '', e.naturalWidth])",
    )
    figures = [(src, w) for src, w in images if "colab-badge" not in src]
    assert len(figures) >= 3, f"{url}: expected figures, found {len(figures)}"
    broken = [src[:60] for src, w in figures if w == 0]
    assert not broken, f"{url}: images that did not load: {broken}"

    # The Colab launch button and the notebook's badge both open this chapter's notebook.
    expected = booktools.colab_url(notebook, ROOT)
    hrefs = page.eval_on_selector_all(
        "a[href*='colab.research.google.com']", "els => els.map(e => e.href)"
    )
    assert hrefs, f"{url}: no Colab link"
    assert all(h == expected for h in hrefs), f"{url}: Colab links {hrefs} should all be {expected}"
    assert len(hrefs) >= 2, f"{url}: expected the launch button and the badge, found {hrefs}"

    # Every precomputed JS slider changes its frame when moved.
    sliders = page.query_selector_all("input.anim-slider")
    for slider in sliders:
        anim = slider.evaluate_handle("s => s.closest('.animation')").as_element()
        shown = "a => (a.querySelector('img') || {}).src + (a.querySelector('svg') || {}).innerHTML"
        before, start = anim.evaluate(shown), slider.evaluate("s => s.value")
        top = int(slider.get_attribute("max"))
        assert top >= 1, f"{url}: a slider with a single frame"
        move = "(s, v) => { s.value = v; s.dispatchEvent(new Event('input')); }"
        slider.evaluate(move, 0 if str(start) == str(top) else top)
        assert anim.evaluate(shown) != before, f"{url}: moving the slider did not change the frame"
        slider.evaluate(move, start)
        assert anim.evaluate(shown) == before
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.close()


def test_the_ten_minute_path_lands_on_its_sections(server, browser):
    """Each link of the front page's ten-minute path opens a page with that section."""
    page = browser.new_page()
    page.goto(f"{server}/intro.html", wait_until="load")
    links = page.eval_on_selector_all("ol.ten-minutes a", "els => els.map(e => e.href)")
    assert len(links) >= 4, f"the ten-minute path has {len(links)} links"
    for link in links:
        page.goto(link, wait_until="load")
        anchor = link.split("#", 1)[1]
        assert page.query_selector(f"section#{anchor}"), f"{link}: no section #{anchor}"
    page.close()


def test_every_chapter_has_a_js_slider_where_the_book_promises_one(server, browser):
    """Chapters with a live slider ship its static twin; check the count on the built pages."""
    for _, url, notebook in PAGES:
        if notebook is None:
            continue
        source = notebook.read_text()
        live = source.count("live=False")
        if not live:
            continue
        page = browser.new_page()
        page.goto(f"{server}/{url}", wait_until="load")
        n = len(page.query_selector_all("input.anim-slider"))
        page.close()
        assert n >= live, f"{url}: {live} static sliders in the notebook, {n} on the page"


# -- the text reads as finished: guards on every page of the built book ------------------------

TEXT_PAGES = [p for p in PAGES if p[2] is not None or p[0] == "intro"] + [
    ("glossary", "glossary.html", None)
]
# The test machine is offline: the widgets' CDN script (require.js) cannot load here. MathJax
# is the book's own (_static/mathjax); whether it rendered is asserted below, not assumed.
KNOWN_CONSOLE_ERRORS = (
    *KNOWN_PAGE_ERRORS,
    re.compile(r"net::ERR_(NAME_NOT_RESOLVED|INTERNET_DISC)"),
)
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w.])", re.I)
# Images that are not figures: badges, and the frames of a precomputed slider or live widget.
NOT_FIGURES = ".animation, .monosem-live, .monosem-static, .widget-subarea, a[href*='colab']"
# TeX that MathJax left unrendered, and a path of the machine that built the book.
RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$")
MACHINE_PATH = re.compile(r"(?<![\w.])(/work/|/home/|/root/|/tmp/|/Users/|/usr/|[A-Z]:\\)")


def math_rendered(page) -> tuple[int, int, list[str]]:
    """(math spans on the page, MathJax containers, raw TeX left in the visible text) once
    MathJax has typeset the page."""
    page.evaluate(
        "async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }"
    )
    spans = page.eval_on_selector_all("main .math", "els => els.length")
    rendered = page.eval_on_selector_all("main mjx-container", "els => els.length")
    raw = [m.group(0) for m in RAW_TEX.finditer(page.inner_text("main"))]
    return spans, rendered, raw


# Each table cell: its text length and how many lines it wraps to; each table: how far it
# overflows the frame it sits in (0 when it fits).
CELL_LINES = """els => els.map(e => {
    const tops = new Set(), walk = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
    for (let node = walk.nextNode(); node; node = walk.nextNode()) {
        if (!node.textContent.trim() || node.parentElement.closest('mjx-container')) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        for (const r of range.getClientRects()) tops.add(Math.round((r.top + r.bottom) / 20));
    }
    const text = e.innerText.trim();
    return [text.slice(0, 30), text.length, Math.max(1, tops.size)];
})"""
TABLE_OVERFLOW = """els => els.map(t => {
    const frame = t.closest('div.output, div.cell_output, section, article') || t.parentElement;
    return [(t.innerText || '').slice(0, 40), t.getBoundingClientRect().width,
            frame.getBoundingClientRect().width];
}).filter(([, w, room]) => w > room + 1)"""


def narrow_cells(page) -> list:
    """Table cells that wrap to fewer than about six characters a line."""
    cells = page.eval_on_selector_all("main table td, main table th", CELL_LINES)
    return [(t, n, lines) for t, n, lines in cells if n >= 6 and lines > 1 and n / lines < 5]


def test_raw_tex_and_machine_paths_are_caught():
    raw = RAW_TEX.findall(r"a \(x\) and \[y\] and $$z$$")
    assert raw == ["\\(", "\\)", "\\[", "\\]", "$$", "$$"]
    assert not RAW_TEX.findall("f(x) = [0, 1] costs $5")
    assert MACHINE_PATH.findall("read /work/main/data and /home/u and C:\\x") == [
        "/work/",
        "/home/",
        "C:\\",
    ]
    assert not MACHINE_PATH.findall("data/book/LR1.json, book/01.ipynb and 1/16 and m/s")


# Tick labels are drawn at 10 pt at 90 dpi (book.style), 12.5 px at a figure's natural size:
# shown at 1280 px, a figure may shrink to 9 px labels at most.
SMALLEST_SCALE = 9 / 12.5


def too_precise(text: str) -> list[str]:
    """Numbers in a table cell printed with more than 4 significant digits after a decimal
    point, or an integer in scientific notation (8.19e+03)."""
    bad = []
    for token in NUMBER.findall(text):
        mantissa, _, exponent = token.lower().lstrip("-").partition("e")
        if exponent and float(token).is_integer() and abs(float(token)) >= 1:
            bad.append(token)
        elif "." in mantissa and len(mantissa.replace(".", "").lstrip("0")) > 4:
            bad.append(token)
    return bad


def test_too_precise_catches_what_the_tables_must_not_print():
    assert too_precise("0.099878 and 8.19e+03 and 4.59e-05") == ["0.099878", "8.19e+03"]
    assert too_precise("0.0999, 251, 8192, 1.00, 0.260, 2^13, lr 0.003, 4.6e-05") == []


@pytest.mark.parametrize("name,url,notebook", TEXT_PAGES, ids=[p[0] for p in TEXT_PAGES])
def test_page_reads_as_finished_text(name, url, notebook, server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{server}/{url}", wait_until="load")
    page.wait_for_timeout(300)
    spans, rendered, raw = math_rendered(page)
    assert not raw, f"{url}: raw TeX in the visible text: {raw[:5]}"
    assert rendered >= spans, f"{url}: {spans} formulas, only {rendered} rendered by MathJax"
    errors = [e for e in errors if not any(k.search(e) for k in KNOWN_CONSOLE_ERRORS)]
    assert not errors, f"{url}: console errors {errors}"
    text = page.inner_text("main")
    paths = sorted({m.group(0) for m in MACHINE_PATH.finditer(text)})
    assert not paths, f"{url}: a path of the build machine in the text: {paths}"
    pointers = [p for p in ("printed above", "the numbers above") if p in text]
    assert not pointers, f"{url}: a sentence points at a number instead of giving it: {pointers}"
    cells = page.eval_on_selector_all(
        "main table td, main table th",
        "els => els.map(e => [e.innerText, e.scrollWidth > e.clientWidth + 1])",
    )
    precise = [t for t, _ in cells for t in too_precise(t)]
    assert not precise, f"{url}: table numbers printed too precisely: {precise[:8]}"
    cut = [t[:40] for t, overflow in cells if overflow or t.rstrip().endswith(("...", "…"))]
    assert not cut, f"{url}: truncated table cells: {cut[:5]}"
    wide_tables = page.eval_on_selector_all("main table", TABLE_OVERFLOW)
    assert not wide_tables, f"{url}: tables wider than the text column at 1280 px: {wide_tables}"
    uncaptioned = page.eval_on_selector_all(
        "main img",
        """(els, skip) => els.filter(e => !e.closest(skip)
            && !(e.closest('figure') && e.closest('figure').querySelector('figcaption')))
            .map(e => (e.getAttribute('alt') || e.getAttribute('src') || '').slice(0, 60))""",
        NOT_FIGURES,
    )
    assert not uncaptioned, f"{url}: figures without a caption: {uncaptioned}"
    shrunk = page.eval_on_selector_all(
        "main figure img",
        """(els, least) => els.filter(e => e.naturalWidth && e.clientWidth / e.naturalWidth < least)
            .map(e => [(e.getAttribute('alt') || '').slice(0, 50), e.clientWidth,
                       e.naturalWidth])""",
        SMALLEST_SCALE,
    )
    assert not shrunk, f"{url}: figures shrunk until their tick labels fall under 9 px: {shrunk}"
    page.close()
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    phone.goto(f"{server}/{url}", wait_until="load")
    small = phone.eval_on_selector_all(
        "main figure img",
        """(els, least) => els.filter(e => e.naturalWidth
            && e.getBoundingClientRect().width / e.naturalWidth < least - 0.01)
            .map(e => (e.getAttribute('alt') || '').slice(0, 50))""",
        SMALLEST_SCALE,
    )
    wide = phone.evaluate("() => document.documentElement.scrollWidth")
    squeezed = narrow_cells(phone)
    SHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SHOTS / f"{name}-390.png"), full_page=True)
    phone.close()
    assert not small, f"{url}: on a phone these figures' labels fall under 9 px: {small}"
    assert wide <= 390, f"{url}: on a 390 px phone the page is {wide} px wide (scrolls sideways)"
    assert not squeezed, (
        f"{url}: on a phone these table cells wrap a few letters a line: {squeezed[:5]}"
    )
