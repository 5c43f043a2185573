"""Numbers into the chapters' sentences: MyST-NB's ``glue`` where the book is built, and a
plain fallback where it is not (Colab, a bare Jupyter), so the same notebook runs anywhere."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["glue", "glue_facts", "sig", "table_number", "use_book_tables"]


def sig(x: float, digits: int = 2) -> str:
    """``x`` to ``digits`` significant figures as plain text (integers stay integers)."""
    if isinstance(x, bool):
        raise TypeError("sig needs a number, got a bool")
    if isinstance(x, int) or float(x).is_integer() and abs(x) >= 10 ** (digits - 1):
        return f"{int(round(x))}"
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


def use_book_tables() -> None:
    """Make pandas print every table's floats with ``table_number`` (``book.style`` calls it)."""
    import pandas as pd  # the [book] extra

    pd.set_option("display.float_format", table_number)
