"""The front page: the reproduction status of the five claims at each scale, with links to the
chapters that show them, the book's departures from the paper in one generated paragraph,
and the engineered model's heatmap beside the baseline's. Everything from the stored data."""

from __future__ import annotations

from html import escape
from importlib.resources import files
from typing import TYPE_CHECKING

from ..core.config import preset
from ..paper.claims import STATEMENTS, Claim, claim3, verdict_mark
from ..store.results import Results
from .figure_kit import heatmap_row
from .heatmap_marks import Passing

if TYPE_CHECKING:
    from IPython.display import HTML, SVG
    from matplotlib.figure import Figure

__all__ = [
    "CLAIM_CHAPTERS",
    "claim_notes",
    "status_rows",
    "status_table",
    "departures_paragraph",
    "intro_heatmaps",
    "model_diagram",
]

# Where each claim is shown at book scale (chapter 7 holds them all at the paper's shape).
CLAIM_CHAPTERS: dict[int, tuple[str, str]] = {
    1: ("Chapter 2", "book/02_same_loss_different_minima"),
    2: ("Chapter 2", "book/02_same_loss_different_minima"),
    3: ("Chapter 3", "book/03_negative_bias"),
    4: ("Chapter 4", "book/04_width"),
    5: ("Chapter 5", "book/05_anatomy"),
}
PAPER_SHAPE = ("Chapter 7", "book/07_paper_scale")
SCALE_NAMES = {
    "book": "book scale",
    "paper-cpu": "the paper's shape",
    "paper": "the paper's budget",
}


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


def claim_notes(
    by_scale: dict[str, dict[int, Claim]], data: dict[str, dict[str, Results]]
) -> dict[int, str]:
    """Where a verdict holds only under a condition, that condition in words, from the same
    data: claim 3 rate by rate (it is judged at the book's rate, 0.01), and claim 5 for the
    paper's whole residual block beside the book's always-on cut."""
    notes = {}
    rates = []
    for scale, found in data.items():
        if "LR1" not in found or "LR3" not in found:
            continue
        lr1, lr3 = found["LR1"], found["LR3"]
        shared = sorted(set(lr1.mean_by("lr", "final_loss")) & set(lr3.mean_by("lr", "final_loss")))
        held = [lr for lr in shared if claim3(lr1, lr3, rates=[lr]).holds]
        failed = ", ".join(f"{lr:g}" for lr in shared if lr not in held)
        good = ", ".join(f"{lr:g}" for lr in held) or "none"
        name = SCALE_NAMES.get(scale, scale)
        rates.append(f"{name}: holds at lr {good}" + (f", not at {failed}" if failed else ""))
    if rates:
        notes[3] = "Judged at lr 0.01. " + "; ".join(rates) + "."
    whole = [
        scale
        for scale, found in by_scale.items()
        if not found[5].numbers["residual_block"]["global_correction"]
    ]
    if whole:
        notes[5] = (
            "Holds for the always-on subset (the book's cut, chapter 5); the paper's whole "
            f"residual block does not pass at {' or '.join(SCALE_NAMES.get(s, s) for s in whole)}."
        )
    return notes


def status_table(
    by_scale: dict[str, dict[int, Claim]],
    headers: dict[str, str],
    notes: dict[int, str] | None = None,
) -> HTML:
    """``status_rows`` as an HTML table (the built book renders Markdown outputs without
    tables) with links to the chapters' pages, relative to the book's root; ``headers`` names
    each scale's column, and ``notes`` (``claim_notes``) qualifies a claim's verdicts under
    its statement."""
    from IPython.display import HTML

    head = "".join(f"<th>{escape(h)}</th>" for h in ("Claim", *headers.values(), "Shown in"))
    body = []
    for n, row in zip(STATEMENTS, status_rows(by_scale)):
        links = ", ".join(
            f'<a href="{doc}.html">{name}</a>' for name, doc in (CLAIM_CHAPTERS[n], PAPER_SHAPE)
        )
        claim = escape(row["claim"])
        if notes and n in notes:
            claim += f'<br><small class="claim-note">{escape(notes[n])}</small>'
        cells = [claim, *(escape(row[s]) for s in by_scale), links]
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
        f"paper's {samples['paper']:,} samples a model. Chapter 7 runs the paper's own shape at "
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


def model_diagram() -> SVG:
    """The toy model as a diagram (drawn once, ``book/assets/model.svg``): sparse features f,
    the fixed projection P into x, the k ReLU neurons h and the output y trained to give f back.
    Shown by chapter 1 and the front page."""
    from IPython.display import SVG  # the [book] extra

    return SVG(files("monosem_lib.book").joinpath("assets/model.svg").read_text("utf-8"))
