"""Command line: ``python -m monosem_lib {train, sweep, interpret, bench}``.

With ``--json`` a command prints exactly one JSON object on stdout (progress and warnings go
to stderr). A bad flag value exits with status 2 and one line naming the flag and what is
allowed; a failure while running exits with status 1 and one line, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.config import (
    FEATURE_DISTS,
    NONLINEARITIES,
    OPTIMIZERS,
    PRESETS,
    SCHEDULES,
    TASKS,
    ConfigError,
    preset,
)
from ..version import RESULTS_VERSION, __version__

__all__ = ["main", "build_parser"]

SCALE_PRESETS = ("book", "paper", "paper-cpu")


class CliError(Exception):
    """A one-line error for the user; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage block
        raise CliError(f"{self.prog}: error: {message}", 2)


def _int_at_least(minimum: int):
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


_positive_int = _int_at_least(1)
_seed = _int_at_least(0)


def _value_list(text: str) -> tuple:
    """Comma-separated numbers: ints where every item is an integer (widths), else floats."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: must be comma-separated numbers"
        )
    try:
        if all(t.lstrip("-").isdigit() for t in items):
            return tuple(int(t) for t in items)
        return tuple(_finite(t) for t in items)
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: must be comma-separated numbers"
        ) from None


def _shard(text: str) -> tuple[int, int]:
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


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


# Config field -> (flag, argparse options)
_FIELDS: dict[str, tuple[str, dict[str, Any]]] = {
    "N": ("--N", dict(type=_positive_int, help="features")),
    "m": ("--m", dict(type=_positive_int, help="input dimensions (m <= N)")),
    "k": ("--k", dict(type=_positive_int, help="neurons")),
    "eps": ("--eps", dict(type=_finite, help="mean feature probability, in (0, 1]")),
    "feature_dist": ("--feature-dist", dict(choices=FEATURE_DISTS)),
    "task": ("--task", dict(choices=TASKS)),
    "nonlinearity": ("--nonlinearity", dict(choices=NONLINEARITIES)),
    "batch": ("--batch", dict(type=_positive_int)),
    "steps": ("--steps", dict(type=_positive_int)),
    "lr": ("--lr", dict(type=_finite)),
    "optimizer": ("--optimizer", dict(choices=OPTIMIZERS)),
    "schedule": ("--schedule", dict(choices=SCHEDULES)),
    "init_bias": ("--init-bias", dict(type=_finite, help="added to the default bias init")),
    "bias_decay": (
        "--bias-decay",
        dict(type=_finite, help="b <- b (1 - decay lr) during the first half"),
    ),
    "l1": ("--l1", dict(type=_finite, help="L1 penalty on activations")),
    "seed": ("--seed", dict(type=_seed)),
    "instances": (
        "--instances",
        dict(type=_positive_int, help="train copies with seeds seed..seed+I-1 in one pass"),
    ),
}
_FLAG_OF = {field: flag for field, (flag, _) in _FIELDS.items()}
_FLAG_OF.update(device="--device", preset="--preset", dtype="--dtype")


def _add_common(p: argparse.ArgumentParser) -> None:
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
    parser = _Parser(
        prog="python -m monosem_lib",
        description="Toy models of 'Engineering Monosemanticity in Toy Models'.",
    )
    parser.add_argument("--version", action="version", version=f"monosem_lib {__version__}")
    sub = parser.add_subparsers(
        dest="command", parser_class=_Parser, metavar="{train,sweep,merge,interpret,bench}"
    )
    sub.required = True

    t = sub.add_parser("train", help="train one config (or --instances copies)")
    t.add_argument("--preset", choices=tuple(PRESETS), default="book")
    for field, (flag, opts) in _FIELDS.items():
        t.add_argument(flag, dest=field, **opts)
    _add_common(t)
    _add_sweep_parser(sub)

    m = sub.add_parser("merge", help="combine the shards of a sweep into one summary")
    m.add_argument("parts", nargs="+", metavar="PART", help="NAME.part-I-of-N.json files")
    m.add_argument("--summary", metavar="DIR", required=True, help="write DIR/NAME.json + .npz")
    m.add_argument("--overwrite", action="store_true", help="replace an existing summary")

    i = sub.add_parser("interpret", help="reverse-engineering report of a saved run")
    i.add_argument("dir", metavar="DIR")
    i.add_argument("--instance", type=_seed, default=0, help="which instance (default 0)")
    i.add_argument("--json", action="store_true")

    b = sub.add_parser("bench", help="training throughput against a naive trainer")
    b.add_argument("--quick", action="store_true", help="fewer steps, one round (noisier)")
    b.add_argument(
        "--rounds",
        type=_positive_int,
        default=None,
        help="alternating library/naive rounds, each side's best kept (default 3, 1 with --quick)",
    )
    b.add_argument("--json", action="store_true")
    return parser


def _add_sweep_parser(sub) -> None:
    from ..paper.table1 import TABLE1

    s = sub.add_parser("sweep", help="run a batch of the paper's Table 1")
    s.add_argument(
        "name", choices=tuple(TABLE1), metavar="NAME", help="one of " + ", ".join(TABLE1)
    )
    s.add_argument(
        "--preset",
        choices=SCALE_PRESETS,
        default="book",
        help="scale: book, paper (GPU) or paper-cpu (the paper's shape at a CPU budget)",
    )
    s.add_argument(
        "--values",
        type=_value_list,
        metavar="V,V,...",
        help="run these values of the batch's swept knob instead of the row's (e.g. 0.003,0.01)",
    )
    s.add_argument(
        "--seeds", type=_positive_int, help="instances per value (default 3 at book, 1 else)"
    )
    s.add_argument("--steps", type=_positive_int, help="override the run length (decay rescaled)")
    s.add_argument(
        "--bias-decay",
        dest="sweep_bias_decay",
        type=_finite,
        metavar="D",
        help="use this bias decay at every point as given (no rescaling to the row's shrink)",
    )
    s.add_argument(
        "--schedule",
        choices=("paper", "cosine", "constant"),
        help="override the learning-rate schedule (paper: periodic cosine, T_max 512)",
    )
    s.add_argument("--summary", metavar="DIR", help="also store a summary DIR/NAME.json + .npz")
    _add_summary_options(s)
    _add_common(s)


def _add_summary_options(s: argparse.ArgumentParser) -> None:
    """The sweep's storage options: summaries, representatives, resuming, shards."""
    s.add_argument(
        "--representative",
        type=_seed,
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
        type=_shard,
        metavar="I/N",
        help="train only part I (0-based) of N near-equal parts of the batch and write "
        "NAME.part-I-of-N.json; combine the parts with `merge`",
    )
    s.add_argument(
        "--max-instances",
        type=_positive_int,
        help="train at most this many instances per pass (GPU memory)",
    )


def _config_error(err: ConfigError) -> CliError:
    flag = _FLAG_OF.get(err.field, err.field)
    return CliError(
        f"python -m monosem_lib: error: argument {flag}: {err.value!r} is not allowed: "
        f"{err.allowed}",
        2,
    )


def _instance_rows(run, rows) -> list[dict]:
    from ..analysis.metrics import SUMMARY_KEYS

    out = []
    for c, r in zip(run.configs, rows):
        row = {key: r[key] for key in SUMMARY_KEYS}
        row.update(
            seed=c.seed,
            lr=c.lr,
            init_bias=c.init_bias,
            bias_decay=c.bias_decay,
            l1=c.l1,
            eps=c.eps,
            k=c.k,
            feature_dist=c.feature_dist,
        )
        out.append(row)
    return out


def _print_table(rows: list[dict], out=sys.stdout) -> None:
    cols = (
        "seed",
        "lr",
        "init_bias",
        "bias_decay",
        "k",
        "final_loss",
        "mono_per_feature",
        "features_covered",
        "dead_neurons",
    )
    print("  ".join(f"{c:>16}" for c in cols), file=out)
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            cells.append(f"{v:>16.4g}" if isinstance(v, float) else f"{v!s:>16}")
        print("  ".join(cells), file=out)


def _cmd_train(args) -> dict:
    from ..analysis.metrics import summarize
    from ..core.training import train
    from ..store.files import save_run

    fields = {f: getattr(args, f) for f in _FIELDS if getattr(args, f) is not None}
    if args.device:
        fields["device"] = args.device
    try:
        config = preset(args.preset, **fields)
    except ConfigError as err:
        raise _config_error(err) from None
    _check_out(args)
    run = train(config, progress=args.progress)
    rows = summarize(run)
    if args.out:
        save_run(run, args.out, overwrite=args.overwrite, metrics=rows)
    return {
        "config": config.to_dict(),
        "train_seconds": run.train_seconds,
        "instances": _instance_rows(run, rows),
    }


def _check_out(args) -> None:
    if args.out:
        out = Path(args.out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
            raise CliError(
                f"python -m monosem_lib: error: argument --out: {out} already exists and is not "
                "empty; choose another directory or pass --overwrite",
                2,
            )


def _cmd_sweep(args) -> dict:
    from ..paper.table1 import TABLE1

    configs, start = _sweep_instances(args)
    _check_out(args)
    spec = TABLE1[args.name]
    target = _summary_target(args, configs)
    if target is not None and args.resume and _summary_is_current(target, configs):
        return {
            "sweep": {"name": spec.name, "scale": args.preset},
            "skipped": f"{target} is current",
        }
    runs, rows = _train_groups(args, configs, spec)
    if args.summary:
        from ..store.results import save_summary

        save_summary(
            runs,
            args.summary,
            name=args.name,
            scale=args.preset,
            overwrite=args.overwrite or args.resume,
            representative=_local_representatives(args, start, len(configs)),
            shard=args.shard,
            values=args.values,
            steps=args.steps,
            schedule=args.schedule,
            bias_decay=args.sweep_bias_decay,
            compact=args.compact,
        )
    base = configs[0].replace(**{v: getattr(preset(args.preset), v) for v in spec.swept})
    sweep = {"name": spec.name, "description": spec.description, "var": spec.var}
    sweep.update(swept=list(spec.swept), values=[getattr(c, spec.var) for c in configs])
    sweep.update(scale=args.preset, shard=None if args.shard is None else list(args.shard))
    seconds = sum(r.train_seconds for r in runs)
    return {"config": base.to_dict(), "sweep": sweep, "train_seconds": seconds, "instances": rows}


def _sweep_instances(args) -> tuple[list, int]:
    """The batch's instance configs (one per seed and point), or the shard's block of them,
    and the block's first index in the whole batch."""
    from ..paper.table1 import sweep_configs

    overrides = {"device": args.device} if args.device else {}
    if args.steps:
        overrides["steps"] = args.steps
    if args.schedule:
        overrides["schedule"] = args.schedule
    if args.sweep_bias_decay is not None:
        overrides["bias_decay"] = args.sweep_bias_decay
    try:
        configs = sweep_configs(
            args.name, args.preset, seeds=args.seeds, values=args.values, **overrides
        )
    except ConfigError as err:
        raise _config_error(err) from None
    instances = [c for cfg in configs for c in cfg.expand()]
    if args.shard is None:
        return instances, 0
    start, stop = _shard_bounds(len(instances), *args.shard)
    return instances[start:stop], start


def _shard_bounds(total: int, index: int, count: int) -> tuple[int, int]:
    """Part ``index`` of ``count`` near-equal contiguous blocks of ``total`` instances."""
    if count > total:
        raise CliError(
            f"python -m monosem_lib: error: argument --shard: {index}/{count} is not allowed: "
            f"this batch has {total} instances, so at most {total} shards",
            2,
        )
    return total * index // count, total * (index + 1) // count


def _local_representatives(args, start: int, count: int) -> list[int]:
    """--representative indices (over the whole batch) as indices into this shard."""
    return [r - start for r in args.representative if start <= r < start + count]


def _summary_target(args, configs) -> Path | None:
    if not args.summary:
        return None
    from ..store.results import shard_stem

    stem = args.name if args.shard is None else shard_stem(args.name, *args.shard)
    target = Path(args.summary) / f"{stem}.json"
    if target.exists() and not (args.overwrite or args.resume):
        raise CliError(
            f"python -m monosem_lib: error: argument --summary: {target} already exists; "
            "choose another directory or pass --overwrite (or --resume)",
            2,
        )
    return target


def _train_groups(args, configs, spec) -> tuple[list, list[dict]]:
    """Train the instances one pass per structure (and --max-instances), saving --out."""
    from ..analysis.metrics import summarize
    from ..core.training import group_by_structure, train
    from ..store.files import save_run

    groups = group_by_structure(configs)
    if args.max_instances:
        step = args.max_instances
        groups = [g[i : i + step] for g in groups for i in range(0, len(g), step)]
    runs, rows = [], []
    for group in groups:
        run = train(group, progress=args.progress)
        summary = summarize(run)
        if args.out:
            part = f"{spec.var}={getattr(group[0], spec.var)}"
            many = f"part-{len(runs):02d}" if args.max_instances else part
            target = Path(args.out) if len(groups) == 1 else Path(args.out) / many
            save_run(run, target, overwrite=args.overwrite, metrics=summary)
        rows += _instance_rows(run, summary)
        runs.append(run)
    return runs, rows


def _summary_is_current(target: Path, configs) -> bool:
    """Whether a stored summary holds exactly these configs, made by code that produces the
    same numbers (the same ``RESULTS_VERSION``)."""
    from ..store.files import load_summary

    if not target.exists():
        return False
    try:
        stored = load_summary(target)
    except ValueError:
        return False
    return stored.meta.get("results_version") == RESULTS_VERSION and stored.configs == configs


def _cmd_merge(args) -> dict:
    from ..store.results import merge_summaries

    try:
        path = merge_summaries(args.parts, args.summary, overwrite=args.overwrite)
    except (ValueError, FileExistsError) as err:
        raise CliError(f"python -m monosem_lib: error: merge: {err}", 2) from None
    return {"merged": [str(p) for p in args.parts], "summary": str(path)}


def _cmd_interpret(args) -> dict:
    from ..analysis.report import interpret
    from ..analysis.report_text import format_report, report_dict
    from ..store.files import load_run

    try:
        run = load_run(args.dir)
    except ValueError as err:
        raise CliError(f"python -m monosem_lib: error: argument DIR: {err}", 2) from None
    if args.instance >= run.instances:
        raise CliError(
            f"python -m monosem_lib: error: argument --instance: {args.instance} is out of range; "
            f"the run has {run.instances} instance(s)",
            2,
        )
    report = interpret(run, args.instance)
    return {"text": format_report(report), "dict": report_dict(report)}


def _cmd_bench(args) -> dict:
    from .bench import run_bench

    return run_bench(quick=args.quick, rounds=args.rounds)


def _emit(args, result: dict) -> None:
    if args.command == "merge":
        print(f"merged {len(result['merged'])} parts into {result['summary']}")
        return
    if args.command == "interpret":
        print(json.dumps(result["dict"], allow_nan=False) if args.json else result["text"])
        return
    if args.json:
        print(json.dumps(result, allow_nan=False))
        return
    if args.command == "bench":
        from .bench import format_bench

        print(format_bench(result))
        return
    if "skipped" in result:
        print(f"skipped: {result['skipped']}")
        return
    print(f"trained in {result['train_seconds']:.1f} s")
    _print_table(result["instances"])
    if getattr(args, "out", None):
        print(f"saved to {args.out}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            result = {
                "train": _cmd_train,
                "sweep": _cmd_sweep,
                "merge": _cmd_merge,
                "interpret": _cmd_interpret,
                "bench": _cmd_bench,
            }[args.command](args)
        _emit(args, result)
        return 0
    except CliError as err:
        print(str(err), file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        print("python -m monosem_lib: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exit_:  # --help and --version
        return int(exit_.code or 0)
    except Exception as err:  # noqa: BLE001 - the CLI promises one line, never a traceback
        message = " ".join(str(err).split())
        print(f"python -m monosem_lib: error: {type(err).__name__}: {message}", file=sys.stderr)
        return 1
