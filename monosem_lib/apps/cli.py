"""Command line: ``python -m monosem_lib {train, sweep, merge, interpret, bench, paper-gpu,
decay-study, sae-frontier}``.

With ``--json`` a command prints exactly one JSON object on stdout (progress and warnings go
to stderr). A bad flag value exits with status 2 and one line naming the flag and what is
allowed; so do a malformed, damaged or newer stored file, a locked output, an output that
cannot be written or has no room, and a config too large for the machine's memory, all
found before training. A failure while running exits with status 1 and one line, never a
traceback; if the result was trained but could not be written, it is still printed and the
line says where it was kept.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

from ..core.resources import InsufficientMemory
from ..store.atomic import StoredFileError
from ..store.locks import TargetLocked
from ..store.preflight import PreflightError
from .cli_args import CliError, NotSaved, build_parser
from .commands import (
    cmd_bench,
    cmd_interpret,
    cmd_merge,
    cmd_paper_gpu,
    cmd_sweep,
    cmd_train,
    emit,
)
from .study_commands import cmd_decay_study, cmd_sae_frontier

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            result = {
                "train": cmd_train,
                "sweep": cmd_sweep,
                "merge": cmd_merge,
                "interpret": cmd_interpret,
                "bench": cmd_bench,
                "paper-gpu": cmd_paper_gpu,
                "decay-study": cmd_decay_study,
                "sae-frontier": cmd_sae_frontier,
            }[args.command](args)
        emit(args, result)
        return 0
    except NotSaved as err:
        emit(args, err.result)
        print(str(err), file=sys.stderr)
        return err.code
    except CliError as err:
        print(str(err), file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        print("python -m monosem_lib: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exit_:  # --help and --version
        return int(exit_.code or 0)
    except (StoredFileError, TargetLocked, PreflightError, InsufficientMemory) as err:
        print(f"python -m monosem_lib: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - the CLI promises one line, never a traceback
        message = " ".join(str(err).split())
        print(f"python -m monosem_lib: error: {type(err).__name__}: {message}", file=sys.stderr)
        return 1
