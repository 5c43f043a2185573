"""The command line's grammar: the parser, its argument types (each bad value one line naming
the flag and what is allowed, exit status 2) and the flag of every config field.
"""

from __future__ import annotations

import argparse
import math
from typing import Any, NoReturn

from ..core.config import (
    DECAY_SCHEDULES,
    FEATURE_DISTS,
    NONLINEARITIES,
    OPTIMIZERS,
    PRESETS,
    SCALES,
    SCHEDULES,
    TASKS,
    ConfigError,
)
from ..paper.decay_study import STUDIES
from ..paper.sae_frontier import FRONTIER_SHAPES
from ..paper.table1 import TABLE1
from ..version import __version__

__all__ = [
    "build_parser",
    "CliError",
    "NotSaved",
    "CliParser",
    "int_at_least",
    "positive_int",
    "seed_int",
    "value_list",
    "shard_arg",
    "finite",
    "FIELDS",
    "FLAG_OF",
    "config_error",
]


class CliError(Exception):
    """A one-line error for the user; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class NotSaved(CliError):
    """The command ran but a result could not be written where asked; ``result`` is still
    printed, and the message names where each result was kept instead."""

    def __init__(self, message: str, result: dict):
        super().__init__(message, 1)
        self.result = result


class CliParser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line (no usage block), raised as ``CliError``."""

    def error(self, message: str) -> NoReturn:  # one line, no usage block
        raise CliError(f"{self.prog}: error: {message}", 2)


def int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``, with a message that says so."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be an integer >= {minimum}, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value

    return parse


positive_int = int_at_least(1)
seed_int = int_at_least(0)


def value_list(text: str) -> tuple:
    """Comma-separated numbers: ints where every item is an integer (widths), else floats."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: must be comma-separated numbers"
        )
    try:
        if all(t.lstrip("-").isdigit() for t in items):
            return tuple(int(t) for t in items)
        return tuple(finite(t) for t in items)
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: must be comma-separated numbers"
        ) from None


def shard_arg(text: str) -> tuple[int, int]:
    """``I/N`` with 0 <= I < N."""
    try:
        index, count = (int(t) for t in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: must be I/N, e.g. 0/4"
        ) from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: needs 0 <= I < N (shards are numbered 0 .. N-1)"
        )
    return index, count


def finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


# Config field -> (flag, argparse options)
FIELDS: dict[str, tuple[str, dict[str, Any]]] = {
    "N": ("--N", dict(type=positive_int, help="features")),
    "m": ("--m", dict(type=positive_int, help="input dimensions (m <= N)")),
    "k": ("--k", dict(type=positive_int, help="neurons")),
    "eps": ("--eps", dict(type=finite, help="mean feature probability, in (0, 1]")),
    "feature_dist": ("--feature-dist", dict(choices=FEATURE_DISTS)),
    "task": ("--task", dict(choices=TASKS)),
    "nonlinearity": ("--nonlinearity", dict(choices=NONLINEARITIES)),
    "batch": ("--batch", dict(type=positive_int)),
    "steps": ("--steps", dict(type=positive_int)),
    "lr": ("--lr", dict(type=finite)),
    "optimizer": ("--optimizer", dict(choices=OPTIMIZERS)),
    "schedule": ("--schedule", dict(choices=SCHEDULES)),
    "init_bias": ("--init-bias", dict(type=finite, help="added to the default bias init")),
    "bias_decay": (
        "--bias-decay",
        dict(type=finite, help="b <- b (1 - decay lr) during the first half"),
    ),
    "decay_schedule": (
        "--decay-schedule",
        dict(choices=DECAY_SCHEDULES, help="flat, or rate: the decay follows the scheduled rate"),
    ),
    "l1": ("--l1", dict(type=finite, help="L1 penalty on activations")),
    "seed": ("--seed", dict(type=seed_int)),
    "instances": (
        "--instances",
        dict(type=positive_int, help="train copies with seeds seed..seed+I-1 in one pass"),
    ),
}
FLAG_OF = {field: flag for field, (flag, _) in FIELDS.items()}


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        choices=("cpu", "cuda", "auto"),
        help="default: the preset's (book: cpu, paper: auto)",
    )
    p.add_argument(
        "--out", metavar="DIR", help="save the run (weights.npz + run.json) to this new directory"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="allow --out to replace an existing run"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(
        prog="python -m monosem_lib",
        description="Toy models of 'Engineering Monosemanticity in Toy Models'.",
    )
    parser.add_argument("--version", action="version", version=f"monosem_lib {__version__}")
    sub = parser.add_subparsers(
        dest="command",
        parser_class=CliParser,
        metavar="{train,sweep,merge,interpret,bench,paper-gpu,decay-study,sae-frontier}",
    )
    sub.required = True

    t = sub.add_parser("train", help="train one config (or --instances copies)")
    t.add_argument("--preset", choices=tuple(PRESETS), default="book")
    for field, (flag, opts) in FIELDS.items():
        t.add_argument(flag, dest=field, **opts)
    add_common(t)
    add_sweep_parser(sub)

    m = sub.add_parser("merge", help="combine the shards of a sweep into one summary")
    m.add_argument("parts", nargs="+", metavar="PART", help="NAME.part-I-of-N.json files")
    m.add_argument("--summary", metavar="DIR", required=True, help="write DIR/NAME.json + .npz")
    m.add_argument("--overwrite", action="store_true", help="replace an existing summary")

    i = sub.add_parser("interpret", help="reverse-engineering report of a saved run")
    i.add_argument("dir", metavar="DIR")
    i.add_argument("--instance", type=seed_int, default=0, help="which instance (default 0)")
    i.add_argument("--json", action="store_true")

    b = sub.add_parser("bench", help="training throughput against a naive trainer")
    b.add_argument("--quick", action="store_true", help="fewer steps, one round (noisier)")
    b.add_argument(
        "--rounds",
        type=positive_int,
        default=None,
        help="alternating library/naive rounds, each side's best kept (default 3, 1 with --quick)",
    )
    b.add_argument("--json", action="store_true")
    add_paper_gpu_parser(sub)
    add_study_parsers(sub)
    return parser


def add_study_parsers(sub) -> None:
    """``decay-study`` and ``sae-frontier``: a study's cells, trained resumably, or reported."""
    d = sub.add_parser("decay-study", help="the decay study: how to set bias decay (resumable)")
    d.add_argument("name", choices=tuple(STUDIES), help="which study")
    d.add_argument("--data", metavar="DIR", default="data", help="the data folder (default data)")
    d.add_argument(
        "--limit", type=positive_int, default=None, help="train at most this many cells, then stop"
    )
    d.add_argument(
        "--report",
        action="store_true",
        help="train nothing: print what the stored cells show (optima, exponents with intervals)",
    )
    d.add_argument(
        "--replicates", type=positive_int, default=1000, help="bootstrap replicates (--report)"
    )
    d.add_argument("--json", action="store_true")
    f = sub.add_parser(
        "sae-frontier", help="the SAE frontier study: every contender as a curve (resumable)"
    )
    f.add_argument("shape", choices=tuple(FRONTIER_SHAPES), help="which shape")
    f.add_argument(
        "--out",
        metavar="DIR",
        default="data/sae-frontier",
        help="the study's root; cells go to DIR/SHAPE (default data/sae-frontier)",
    )
    f.add_argument(
        "--limit",
        type=int_at_least(0),
        default=None,
        help="train at most this many cells, then stop (0: only say what is stored)",
    )
    f.add_argument(
        "--samples",
        type=positive_int,
        action="append",
        metavar="N",
        help="train only the cells of this training length (repeatable, in that order)",
    )
    f.add_argument(
        "--device",
        default=None,
        help="train and score on cpu, cuda or cuda:<n> (default: the shape's own, the CPU)",
    )
    f.add_argument(
        "--budget-seconds",
        type=finite,
        default=None,
        metavar="S",
        help="start no new cell after S seconds (the cells are resumable)",
    )
    f.add_argument(
        "--report",
        action="store_true",
        help="train nothing: print what the stored cells show (chosen and oracle points, bills)",
    )
    f.add_argument(
        "--data", metavar="DIR", default="data", help="the data folder (the decay study's bill)"
    )
    f.add_argument("--json", action="store_true")


def add_paper_gpu_parser(sub) -> None:
    """``paper-gpu``: the paper's full budget on one GPU, as many models as a budget allows."""
    g = sub.add_parser(
        "paper-gpu",
        help="LR1 and LR3 at the paper's full budget: the models that fit in a GPU time budget",
    )
    g.add_argument("--budget-seconds", type=finite, default=480.0, help="default 480 (8 min)")
    g.add_argument("--summary", metavar="DIR", default="data/paper", help="default data/paper")
    g.add_argument("--device", default="cuda", help="cuda (default), cuda:<n>, or cpu (tests)")
    g.add_argument("--steps", type=positive_int, help="override the run length (tests only)")
    g.add_argument("--per-pass", type=positive_int, default=2, help="models trained together")
    g.add_argument("--tf32", action="store_true", help="TF32 matmuls on the GPU (the book says so)")
    g.add_argument("--replan", action="store_true", help="time the device again, new plan")
    g.add_argument("--json", action="store_true")


def add_sweep_parser(sub) -> None:
    s = sub.add_parser("sweep", help="run a batch of the paper's Table 1")
    s.add_argument(
        "name", choices=tuple(TABLE1), metavar="NAME", help="one of " + ", ".join(TABLE1)
    )
    s.add_argument(
        "--preset",
        choices=tuple(SCALES),
        default="book",
        help="scale: book, paper (GPU) or paper-cpu (the paper's shape at a CPU budget)",
    )
    s.add_argument(
        "--values",
        type=value_list,
        metavar="V,V,...",
        help="run these values of the batch's swept knob instead of the row's (e.g. 0.003,0.01)",
    )
    s.add_argument(
        "--seeds", type=positive_int, help="instances per value (default 3 at book, 1 else)"
    )
    s.add_argument("--steps", type=positive_int, help="override the run length (decay rescaled)")
    s.add_argument(
        "--bias-decay",
        dest="sweep_bias_decay",
        type=finite,
        metavar="D",
        help="use this bias decay at every point as given (no rescaling to the row's shrink)",
    )
    s.add_argument(
        "--schedule",
        choices=("paper", "cosine", "constant"),
        help="override the learning-rate schedule (paper: periodic cosine, T_max 512)",
    )
    s.add_argument("--summary", metavar="DIR", help="also store a summary DIR/NAME.json + .npz")
    add_summary_options(s)
    add_common(s)


def add_summary_options(s: argparse.ArgumentParser) -> None:
    """The sweep's storage options: summaries, representatives, resuming, shards."""
    s.add_argument(
        "--representative",
        type=seed_int,
        action="append",
        default=[],
        metavar="I",
        help="keep full weights of instance I in the summary (repeatable)",
    )
    s.add_argument(
        "--resume",
        action="store_true",
        help="with --summary: skip the batch if its summary holds the same configs from code "
        "with the same RESULTS_VERSION; retrain it if stale",
    )
    s.add_argument(
        "--compact",
        action="store_true",
        help="with --summary: store per-neuron tables instead of single-feature activations "
        "(about 1/100 of the size; what data/paper-cpu holds)",
    )
    s.add_argument(
        "--shard",
        type=shard_arg,
        metavar="I/N",
        help="train only part I (0-based) of N near-equal parts of the batch and write "
        "NAME.part-I-of-N.json; combine the parts with `merge`",
    )
    s.add_argument(
        "--max-instances",
        type=positive_int,
        help="train at most this many instances per pass (GPU memory)",
    )


def config_error(err: ConfigError) -> CliError:
    flag = FLAG_OF.get(err.field, err.field)
    return CliError(
        f"python -m monosem_lib: error: argument {flag}: {err.value!r} is not allowed: "
        f"{err.allowed}",
        2,
    )
