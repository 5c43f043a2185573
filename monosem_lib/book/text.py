"""Numbers into the chapters' sentences: MyST-NB's ``glue`` where the book is built, and a
plain fallback where it is not (Colab, a bare Jupyter), so the same notebook runs anywhere."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = [
    "book_table",
    "glue",
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


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Make ``value`` available to the chapter's text as ``{glue:text}`name```. In the
    built book this is MyST-NB's ``glue``; where MyST-NB is not installed (Colab) the text
    shows the role as written, and the value is returned so the cell can still show it."""
    try:
        from myst_nb import glue as myst_glue  # the book build has it; Colab does not
    except ImportError:
        return value
    myst_glue(name, value, display=display)
    return value


def glue_facts(facts: dict[str, Any], digits: int = 2) -> dict[str, str]:
    """``glue`` every number of ``facts`` by its name, to ``digits`` significant figures
    (``sig``); returns the texts glued, so a cell can also show them."""
    texts = {name: sig(value, digits) for name, value in facts.items()}
    for name, text in texts.items():
        glue(name, text)
    return texts


def table_number(x: float) -> str:
    """How every table of the book prints a number: integers (and integer-valued floats such
    as a seed mean of counts, or 8192) as integers, never in scientific notation; other
    numbers to three significant figures, trailing zeros kept (1.00, 0.260), or to the unit
    from 100 up; a missing value (None, NaN) as a dash."""
    if x is None or isinstance(x, float) and math.isnan(x):
        return "–"
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x)}"
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
    if isinstance(x, numbers.Real):
        return table_number(float(x))
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
    """A row or column label: like a cell, but a setting such as 0.003 or 0.9999 as written."""
    if isinstance(x, float | np.floating) and not float(x).is_integer():
        return f"{float(x):g}"
    return table_cell(x)


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
        html.for_type(kind, lambda df: book_table(df).to_html(classes="dataframe book-table"))
