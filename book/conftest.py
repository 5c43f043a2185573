"""Time every chapter under nbval (``pytest --nbval-lax book``).

Prints each notebook's execution time (kernel start included) at the end of the run and
writes them to ``_build/notebook-times.json``. Chapters are designed to run in about a minute
on two cores; a notebook over MONOSEM_NOTEBOOK_LIMIT seconds (default 90) is reported, and
one over MONOSEM_NOTEBOOK_HARD_LIMIT (default 150) fails the run.
"""

import json
import os
from pathlib import Path

_times: dict[str, float] = {}


def pytest_runtest_logreport(report):
    notebook = report.nodeid.split("::")[0]
    if notebook.endswith(".ipynb"):
        _times[notebook] = _times.get(notebook, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if not _times:
        return
    limit = float(os.environ.get("MONOSEM_NOTEBOOK_LIMIT", "90"))
    terminalreporter.section("chapter execution times")
    for notebook, seconds in sorted(_times.items()):
        flag = "  OVER THE TARGET" if seconds > limit else ""
        terminalreporter.write_line(f"{seconds:7.1f} s  {notebook}{flag}")
    out = Path(__file__).resolve().parents[1] / "_build" / "notebook-times.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(_times, indent=1))


def pytest_sessionfinish(session, exitstatus):
    hard = float(os.environ.get("MONOSEM_NOTEBOOK_HARD_LIMIT", "150"))
    slow = {nb: t for nb, t in _times.items() if t > hard}
    if slow:
        print(f"\nnotebooks over the hard limit of {hard:.0f} s: {slow}")
        session.exitstatus = 1
