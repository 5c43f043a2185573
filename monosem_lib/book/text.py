"""How the book prints numbers: in sentences (``sig``, ``glue_facts``; ``prose`` ties each
stated number to its value) and in tables (``table_number``, ``table_cell``, ``book_table``)."""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

import numpy as np

from ..analysis.metrics import METRICS
from .prose import glue

# Column names of the book's tables that are not headline metrics (those take their short
# name from ``analysis.metrics.METRICS``): the code's name -> what a reader sees.
DISPLAY_NAMES = {
    "deviation_on": "deviation when on",
    "deviation_off": "deviation when off",
    "init_bias": "initial bias",
    "bias_decay": "bias decay d",
    "lr": "learning rate",
    "eps": "ε",
}

__all__ = [
    "Spread",
    "book_table",
    "display_name",
    "glue_facts",
    "sig",
    "table_cell",
    "table_number",
    "use_book_tables",
]


def sig(x: float, digits: int = 2) -> str:
    """``x`` to ``digits`` significant figures as plain text: integers stay integers, and a
    number that rounds to a whole number of at least ``digits`` figures prints whole, never in
    scientific notation (160.3 -> "160", 1234.5 -> "1200", 99.7 -> "100")."""
    if isinstance(x, bool):
        raise TypeError("sig needs a number, got a bool")
    if isinstance(x, int) or float(x).is_integer() and abs(x) >= 10 ** (digits - 1):
        return f"{int(round(x))}"
    rounded = float(f"{float(x):.{digits}g}")
    if rounded.is_integer() and abs(rounded) >= 10 ** (digits - 1):
        return f"{int(rounded)}"
    return f"{float(x):.{digits}g}"


def glue_facts(facts: dict[str, Any], digits: int = 2) -> dict[str, str]:
    """``glue`` every number of ``facts`` by its name, to ``digits`` significant figures
    (``sig``); returns the texts glued, so a cell can also show them."""
    texts = {name: sig(value, digits) for name, value in facts.items()}
    for name, text in texts.items():
        glue(name, text)
    return texts


class Spread(float):
    """A seed mean that remembers its spread: a float equal to the mean (so a table's
    arithmetic and comparisons read the mean), with the standard deviation ``sd`` over ``n``
    seeds; a table prints it as "0.354 ± 0.021" (``table_cell``)."""

    sd: float
    n: int

    def __new__(cls, values: Any) -> Spread:
        got = np.asarray([v for v in np.ravel(values) if v is not None], dtype=float)
        got = got[~np.isnan(got)]
        out = super().__new__(cls, float(got.mean()) if got.size else float("nan"))
        out.sd = float(got.std(ddof=1)) if got.size > 1 else float("nan")
        out.n = int(got.size)
        return out


def table_number(x: float) -> str:
    """How every table of the book prints a number: integers (and integer-valued floats such
    as a seed mean of counts, or 8192) as integers, never in scientific notation; other
    numbers to three significant figures, trailing zeros kept (1.00, 0.260), or to the unit
    from 100 up; a missing value (None, NaN) as a dash. From 100,000 up, digits are grouped
    in threes (1,048,576)."""
    if x is None or isinstance(x, float) and math.isnan(x):
        return "–"
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}" if abs(x) >= 100_000 else f"{int(x)}"
    if abs(x) >= 100:
        return f"{float(x):.0f}"
    return f"{float(x):#.3g}".rstrip(".")


def table_cell(x: Any) -> str:
    """How every table cell prints: a yes/no as the verdict marks (✓, ✗), a missing value
    (None, NaN) as a dash, a number by ``table_number``, anything else as its text."""
    if isinstance(x, (bool, np.bool_)):
        return "✓" if x else "✗"
    if x is None:
        return "–"
    if isinstance(x, Spread) and x.n > 1:
        return f"{table_number(float(x))} ± {sig(x.sd)}"
    if isinstance(x, numbers.Real):
        return table_number(float(x))
    if isinstance(x, (tuple, list)):
        return ", ".join(table_cell(v) for v in x)
    return str(x)


def book_table(df: Any) -> Any:
    """A DataFrame (or Series, as a one-column table) with every cell and index label
    printed by ``table_cell``: the one formatter behind every table of the book."""
    import pandas as pd  # the [book] extra

    if isinstance(df, pd.Series):
        df = df.to_frame(df.name if df.name is not None else "value")
    out = df.map(table_cell)
    out.index = _labels(df.index)
    out.columns = _labels(df.columns)
    return out


def _labels(index: Any) -> Any:
    import pandas as pd  # the [book] extra

    if isinstance(index, pd.MultiIndex):
        return pd.MultiIndex.from_tuples(
            [tuple(_label(v) for v in key) for key in index], names=index.names
        )
    if isinstance(index, pd.RangeIndex):
        return index
    return pd.Index([_label(v) for v in index], name=index.name)


def _label(x: Any) -> str:
    """A row or column label: like a cell, but a setting such as 0.003 or 0.9999 as written,
    and a code name (``final_loss``) by its display name (``display_name``)."""
    if isinstance(x, (float, np.floating)) and not float(x).is_integer():
        return f"{float(x):g}"
    if isinstance(x, str):
        return display_name(x)
    return table_cell(x)


def display_name(name: str) -> str:
    """What a table calls a column or row the code calls ``name``: a metric by its short name
    in the metrics registry (``final_loss`` -> loss), another code name (``deviation_on``)
    from ``DISPLAY_NAMES``, or with its underscores read as spaces; plain words unchanged."""
    if name in METRICS:
        return METRICS[name].short
    if name in DISPLAY_NAMES:
        return DISPLAY_NAMES[name]
    return name.replace("_", " ") if re.fullmatch(r"[a-z0-9]+(_[a-z0-9.]+)+", name) else name


def use_book_tables() -> None:
    """Make every DataFrame and Series a chapter shows print through ``book_table`` (and
    pandas' own float printing use ``table_number``); ``book.style`` calls it."""
    import pandas as pd  # the [book] extra

    pd.set_option("display.float_format", table_number)
    try:
        from IPython import get_ipython  # the [book] extra
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    html = shell.display_formatter.formatters["text/html"]
    for kind in (pd.DataFrame, pd.Series):
        html.for_type(kind, _table_html)


def _table_html(df: Any) -> str:
    """A table as the book shows it: ``book_table``'s cells, without pandas' default 0, 1, 2
    row numbers."""
    import pandas as pd  # the [book] extra

    plain_index = isinstance(df.index, pd.RangeIndex) and df.index.name is None
    return book_table(df).to_html(classes="dataframe book-table", index=not plain_index)
