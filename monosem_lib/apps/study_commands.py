"""The studies' commands, ``decay-study`` and ``sae-frontier``: each trains the cells of its
study that are missing or stale, one stored file (or pair) a cell, in the study's order and
resumable, or with ``--report`` trains nothing and returns what the stored cells show. Each
returns a dict that ``cli`` prints (as text or as one JSON object).
"""

from __future__ import annotations

from pathlib import Path

from ..paper.decay_fit import report_lines, study_summary
from ..paper.decay_study import STUDY_FOLDERS, run_study, study_cells
from ..paper.sae_frontier import frontier_cells, run_frontier, stale_frontier_cells
from ..paper.sae_frontier_report import frontier_report
from ..store.summaries import holds_configs
from .cli_args import CliError

__all__ = ["cmd_decay_study", "cmd_sae_frontier", "format_study"]


def cmd_decay_study(args) -> dict:
    """Train and store every cell of a decay study that is not current, one file a cell, in
    the study's order; with ``--limit n`` at most n cells (the rest are left ``to do``)."""
    folder = Path(args.data) / STUDY_FOLDERS[args.name]
    if args.report:
        lines = report_lines(study_summary(args.name, folder, args.replicates))
        return {"study": args.name, "folder": str(folder), "report": lines}
    cells, trained = {}, 0
    for cell, configs in study_cells(args.name):
        left = None if args.limit is None else args.limit - trained
        written = run_study(args.name, folder, only=[cell.name], limit=left)
        trained += len(written)
        done = written or holds_configs(folder / f"{cell.name}.json", configs)
        cells[cell.name] = "trained" if written else "current" if done else "to do"
    return {"study": args.name, "folder": str(folder), "cells": cells, "trained": trained}


def cmd_sae_frontier(args) -> dict:
    """Train and store every cell of a frontier shape that is missing or stale, one pair of
    files a cell under ``--out``/SHAPE, in the shape's order; with ``--limit n`` at most n
    cells (the rest are left ``to do``); with ``--samples N`` only the cells of those lengths,
    in that order; ``--device`` trains there; ``--budget-seconds S`` starts no new cell after
    S seconds. With ``--report``: what the stored cells show
    (``sae_frontier_report.frontier_report``; the decay study's bill read under ``--data``)."""
    folder = Path(args.out) / args.shape
    if args.report:
        lines = frontier_report(args.out, args.shape, args.data)
        return {"shape": args.shape, "folder": str(folder), "report": lines}
    only = _lengths_only(args.shape, args.samples or [])
    written = set(
        run_frontier(
            args.out,
            args.shape,
            limit=args.limit,
            only=only,
            device=args.device,
            budget_seconds=args.budget_seconds,
        )
    )
    stale = set(stale_frontier_cells(args.out, args.shape))
    cells = {
        c.name: "trained" if c.name in written else "to do" if c.name in stale else "current"
        for c in frontier_cells(args.shape)
    }
    return {"shape": args.shape, "folder": str(folder), "cells": cells, "trained": len(written)}


def _lengths_only(shape: str, samples: list[int]) -> list[str]:
    """The names of ``shape``'s cells of the training lengths ``samples``, in that order of
    lengths (none: no filter)."""
    if not samples:
        return []
    cells = frontier_cells(shape)
    lengths = sorted({c.samples for c in cells})
    for n in samples:
        if n not in lengths:
            allowed = ", ".join(str(v) for v in lengths)
            raise CliError(f"--samples {n} is not allowed: {shape} trains {allowed}", code=2)
    return [c.name for n in dict.fromkeys(samples) for c in cells if c.samples == n]


def format_study(result: dict) -> str:
    """A study command's result as text: the report's lines, or each cell's state and where
    the cells are stored."""
    if "report" in result:
        return "\n".join(result["report"])
    lines = [f"{name}: {what}" for name, what in result["cells"].items()]
    left = sum(what == "to do" for what in result["cells"].values())
    lines.append(f"trained {result['trained']}, {left} to do; stored in {result['folder']}")
    return "\n".join(lines)
