"""The front page: the reproduction status of the five claims at each scale, with links to the
chapters that show them, the book's departures from the paper in one generated paragraph,
and the engineered model's heatmap beside the baseline's. Everything from the stored data."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from ..core.config import preset
from ..paper.claims import STATEMENTS, Claim, verdict_mark
from ..store.results import Results
from .figure_kit import heatmap_row
from .heatmap_marks import Passing

if TYPE_CHECKING:
    from IPython.display import HTML
    from matplotlib.figure import Figure

__all__ = [
    "CLAIM_CHAPTERS",
    "status_rows",
    "status_table",
    "departures_paragraph",
    "intro_heatmaps",
]

# Where each claim is shown at book scale (chapter 8 holds them all at the paper's shape).
CLAIM_CHAPTERS: dict[int, tuple[str, str]] = {
    1: ("Chapter 2", "book/02_same_loss_different_minima"),
    2: ("Chapter 2", "book/02_same_loss_different_minima"),
    3: ("Chapter 3", "book/03_negative_bias"),
    4: ("Chapter 4", "book/04_width"),
    5: ("Chapter 5", "book/05_anatomy"),
}
PAPER_SHAPE = ("Chapter 8", "book/08_paper_scale")


def status_rows(by_scale: dict[str, dict[int, Claim]]) -> list[dict[str, str]]:
    """One row per claim: its statement, its verdict at each scale (``verdict_mark``) and
    the chapters that show it."""
    rows = []
    for n, statement in STATEMENTS.items():
        row = {"claim": f"{n}. {statement}"}
        row.update({scale: verdict_mark(found[n].holds) for scale, found in by_scale.items()})
        row["shown in"] = f"{CLAIM_CHAPTERS[n][0]}, {PAPER_SHAPE[0]}"
        rows.append(row)
    return rows


def status_table(by_scale: dict[str, dict[int, Claim]], headers: dict[str, str]) -> HTML:
    """``status_rows`` as an HTML table (the built book renders Markdown outputs without
    tables) with links to the chapters' pages, relative to the book's root; ``headers`` names
    each scale's column."""
    from IPython.display import HTML

    head = "".join(f"<th>{escape(h)}</th>" for h in ("Claim", *headers.values(), "Shown in"))
    body = []
    for n, row in zip(STATEMENTS, status_rows(by_scale)):
        links = ", ".join(
            f'<a href="{doc}.html">{name}</a>' for name, doc in (CLAIM_CHAPTERS[n], PAPER_SHAPE)
        )
        cells = [escape(row["claim"]), *(escape(row[s]) for s in by_scale), links]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    table = f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
    return HTML(f'<table class="table status-table">{table}</table>')


def departures_paragraph() -> str:
    """The book's departures from the paper in one paragraph, from the presets."""
    paper, book, cpu = preset("paper"), preset("book"), preset("paper-cpu")
    samples = {"paper": paper.batch * paper.steps, "book": book.batch * book.steps}
    samples["cpu"] = cpu.batch * cpu.steps
    return (
        f"Book scale has N = {book.N} features in m = {book.m} dimensions through "
        f"k = {book.k} neurons (m/N = 1/{book.N // book.m}, against the paper's "
        f"{paper.N}, {paper.m} and {paper.k}, m/N = 1/{paper.N // paper.m}: far less "
        f"superposition) and sees about 1/{round(samples['paper'] / samples['book'])} of the "
        f"paper's {samples['paper']:,} samples a model. Chapter 8 runs the paper's own shape at "
        f"1/{round(samples['paper'] / samples['cpu'])} of its samples. At both, bias decay is "
        "set for the run length by chapter 3's rule. The paper's full budget needs a GPU; the "
        "book provides the command and shows its results where they are stored."
    )


def intro_heatmaps(baseline: Results, engineered: Results, instance: int = 0) -> Figure:
    """The baseline's and the engineered model's single-feature activations side by side
    (one instance of each; neurons sorted by their preferred feature), the neurons that pass
    the 0.999 criterion marked and counted."""
    titles = ["baseline (initial bias 0, no decay)", "engineered (initial bias -1, bias decay)"]
    stats = [r.stats(instance) for r in (baseline, engineered)]
    return heatmap_row(
        [st.sfa[0] for st in stats],
        titles,
        vmax=1,
        figsize=(10, 4.4),
        xlabel="feature",
        passing=[Passing.of_stats(st) for st in stats],
    )
