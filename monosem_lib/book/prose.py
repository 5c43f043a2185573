"""Numbers in the chapters' sentences: stated as text, tied to the code that computes them.

A chapter's Markdown states every computed number as plain text, followed by an HTML comment
that names the value it states::

    at a loss of 0.0757<!-- LR3_0.01_loss --> against ...

The built book, Colab and Jupyter all hide the comment and show the sentence with its number
(a MyST ``{glue}`` role, by contrast, shows raw outside the built book). The code cell that
computes the number calls ``glue(name, value)``, which records it; the chapter's Checks cell
calls ``check_prose(notebook)``, which fails, quoting the sentence, wherever a stated number is
no longer the computed value to the digits shown. A comment may carry a format, as
``<!-- LR3_0.01_loss:.3f -->``, applied as MyST-NB's ``glue:text`` role applied it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MARK",
    "Stated",
    "check_prose",
    "glue",
    "glued",
    "record",
    "stated_numbers",
    "stated_text",
]

# The comment after a stated number: a value's name, and an optional format after a colon.
MARK = re.compile(r"<!--\s*([A-Za-z_][\w.\-]*)(?::([^\s>]*))?\s*-->")
_VALUES: dict[str, Any] = {}


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Record ``value`` as the number the chapter's text states under ``name`` (the text
    writes it out, followed by ``<!-- name -->``; ``check_prose`` compares the two). Returns
    ``value``, shown as the cell's output when ``display`` is true."""
    _VALUES[name] = value
    try:  # the built intro page still pastes a few values with MyST-NB's glue roles
        from myst_nb import glue as myst_glue
    except ImportError:
        pass
    else:
        myst_glue(name, value, display=False)
    if display:
        from IPython.display import display as show  # the [book] extra

        show(value)
    return value


def record(values: dict[str, Any]) -> None:
    """Record many values as ``glue`` does, for ``check_prose``, without pasting each into
    the page's outputs (for a study's hundreds of named facts, of which the text states a
    few)."""
    _VALUES.update(values)


def glued() -> dict[str, Any]:
    """Every value recorded by ``glue`` in this kernel, by name."""
    return dict(_VALUES)


def stated_text(value: Any, fmt: str = "") -> str:
    """How a sentence prints ``value`` with format ``fmt``: a text as it is; with a format,
    as ``format`` prints it after turning the value into the type the format asks for (as
    MyST-NB's ``glue:text`` did); otherwise ``str``."""
    if not fmt:
        return str(value)
    kind = fmt[-1]
    if kind in "bcdoxX":
        return format(int(float(value)), fmt)
    if kind in "eEfFgGn%":
        return format(float(value), fmt)
    return format(str(value), fmt)


@dataclass(frozen=True)
class Stated:
    """One number a sentence states: the value's name and format, the text just before the
    comment, and the sentence, without comments, to quote in an error."""

    name: str
    fmt: str
    before: str
    sentence: str

    def states(self, text: str) -> bool:
        """Whether the sentence states ``text`` right before the comment, as a whole number
        (``10.35`` does not state ``0.35``)."""
        if not text or not self.before.endswith(text):
            return False
        head = self.before[: -len(text)]
        return not head or not (head[-1].isdigit() or head[-1] in ".-")


def stated_numbers(markdown: str) -> list[Stated]:
    """Every number ``markdown`` states with a naming comment, in order."""
    plain = MARK.sub("", markdown)
    out = []
    for match in MARK.finditer(markdown):
        before = MARK.sub("", markdown[: match.start()])
        out.append(Stated(match[1], match[2] or "", before, _sentence(plain, len(before))))
    return out


def _sentence(text: str, at: int) -> str:
    """The sentence of ``text`` around position ``at``, on one line."""
    start = max(text.rfind(". ", 0, at), text.rfind("\n\n", 0, at))
    end = min((i for i in (text.find(". ", at), text.find("\n\n", at)) if i >= 0), default=-1)
    piece = text[start + 1 if start >= 0 else 0 : end + 1 if end >= 0 else len(text)]
    return " ".join(piece.split())


def check_prose(notebook: str | Path, values: dict[str, Any] | None = None) -> str:
    """Check that every number ``notebook``'s Markdown states equals the value recorded under
    its name (``glue``) to the digits shown. Returns a one-line verdict; raises an
    AssertionError that quotes each sentence whose number moved, or names a value never
    computed. Where the notebook file is not beside the kernel (Colab opens a copy), says so
    and checks nothing."""
    path = Path(notebook)
    if not path.is_file():
        return f"prose not checked: {path.name} is not beside the kernel (as in Colab)"
    values = glued() if values is None else values
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    stated = [
        s
        for cell in cells
        if cell["cell_type"] == "markdown"
        for s in stated_numbers("".join(cell["source"]))
    ]
    bad = [_mismatch(s, values) for s in stated]
    bad = [b for b in bad if b]
    if bad:
        raise AssertionError(
            f"{path.name}: {len(bad)} stated number(s) differ from the code: " + "; ".join(bad[:6])
        )
    return f"the text's {len(stated)} stated numbers equal the computed values"


def _mismatch(stated: Stated, values: dict[str, Any]) -> str:
    if stated.name not in values:
        return f"{stated.name!r} is never computed (in {stated.sentence[:120]!r})"
    text = stated_text(values[stated.name], stated.fmt)
    if stated.states(text):
        return ""
    return f"{stated.sentence[:160]!r} should state {text} ({stated.name})"
