"""What each command does: train, sweep, merge, interpret, bench and paper-gpu, each returning
a dict that ``cli`` prints (as a table, as text or as one JSON object). The studies' commands
are in ``study_commands``.
"""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ..analysis.health import flag_text, flags
from ..analysis.metrics import SUMMARY_KEYS, summarize
from ..analysis.report import interpret
from ..analysis.report_text import format_report, report_dict
from ..core.config import (
    ConfigError,
    preset,
)
from ..core.data import resolve_device
from ..core.resources import check_memory
from ..core.training import Run, group_by_structure, train
from ..paper.gpu_plan import load_or_make_plan, plan_configs
from ..paper.table1 import TABLE1, sweep_configs
from ..store.atomic import NewerVersionError, WriteFailed
from ..store.files import load_run, load_summary, write_run
from ..store.locks import holding
from ..store.preflight import check_output, run_bytes, summary_bytes
from ..store.summaries import holds_configs, merge_summaries, save_summary, shard_stem
from ..store.verify import finite_or_none
from .bench import format_bench, run_bench
from .cli_args import FIELDS, FLAG_OF, CliError, NotSaved, config_error
from .study_commands import format_study

__all__ = [
    "cmd_train",
    "cmd_sweep",
    "cmd_merge",
    "cmd_interpret",
    "cmd_bench",
    "emit",
    "print_table",
]
FLAG_OF.update(device="--device", preset="--preset", dtype="--dtype")


def _instance_rows(run, rows) -> list[dict]:
    out = []
    for c, r in zip(run.configs, rows):
        row: dict = {key: finite_or_none(r[key]) for key in SUMMARY_KEYS}
        row.update(
            seed=c.seed,
            lr=c.lr,
            init_bias=c.init_bias,
            bias_decay=c.bias_decay,
            l1=c.l1,
            eps=c.eps,
            k=c.k,
            feature_dist=c.feature_dist,
            flags=flags(r, c),
        )
        out.append(row)
    return out


def _warn_flagged(run, rows, first: int = 0) -> None:
    """One warning line on stderr per instance ``health.flags`` flags (the exit status
    stays 0: the result is saved, flagged)."""
    for i, (c, r) in enumerate(zip(run.configs, rows)):
        names = flags(r, c)
        if names:
            print(
                f"python -m monosem_lib: warning: instance {first + i} (seed={c.seed}, "
                f"lr={c.lr:g}, init_bias={c.init_bias:g}): {flag_text(r, c, names)}",
                file=sys.stderr,
            )


def print_table(rows: list[dict], out=sys.stdout) -> None:
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


def cmd_train(args) -> dict:
    fields = {f: getattr(args, f) for f in FIELDS if getattr(args, f) is not None}
    if args.device:
        fields["device"] = args.device
    try:
        config = preset(args.preset, **fields)
    except ConfigError as err:
        raise config_error(err) from None
    _check_memory([config.expand()])
    with ExitStack() as held:
        _claim_out(args, held, run_bytes(config.expand()))
        run = train(config, progress=args.progress)
        rows = summarize(run)
        _warn_flagged(run, rows)
        result = {
            "config": config.to_dict(),
            "train_seconds": run.train_seconds,
            "instances": _instance_rows(run, rows),
        }
        failed: list[str] = []
        if args.out:
            write = partial(write_run, run, args.out, overwrite=args.overwrite, metrics=rows)
            _try_write(write, failed)
        _report_failures(result, failed)
    return result


def _check_memory(groups) -> None:
    """Refuse, before anything trains, a pass the machine's memory cannot hold."""
    for group in groups:
        check_memory(group, resolve_device(group[0].device))


def _claim_out(args, held: ExitStack, need: int) -> None:
    """Before training: --out must be new or empty (or --overwrite), writable, with room for
    ``need`` bytes; its lock is held (in ``held``) until the run is written."""
    if not args.out:
        return
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise CliError(
            f"python -m monosem_lib: error: argument --out: {out} already exists and is not "
            "empty; choose another directory or pass --overwrite",
            2,
        )
    check_output(out, need, "argument --out")
    held.enter_context(holding(out))


def _try_write(write, failed: list[str]) -> None:
    """Run ``write``; a WriteFailed (which names where the result was kept instead) is
    collected in ``failed`` so that the other writes still run."""
    try:
        write()
    except WriteFailed as err:
        failed.append(str(err))


def _report_failures(result: dict, failed: list[str]) -> None:
    """NotSaved, carrying the result (still printed) and every failed write, if any."""
    if failed:
        result["not_saved"] = failed
        raise NotSaved("python -m monosem_lib: error: " + " | ".join(failed), result)


def cmd_sweep(args) -> dict:
    configs, start = _sweep_instances(args)
    spec = TABLE1[args.name]
    target = _summary_target(args)
    if target is not None and args.resume and _is_current(args, target, configs):
        skipped = f"{target} is current"
        return {"sweep": {"name": spec.name, "scale": args.preset}, "skipped": skipped}
    with ExitStack() as held:
        if target is not None:
            _claim_summary(args, target, configs, start, held)
        groups = _groups(args, configs)
        _check_memory(groups)
        _claim_out(args, held, sum(run_bytes(g) for g in groups))
        runs, rows, failed = _train_groups(args, groups, spec, start)
        result = _sweep_result(args, spec, configs, runs, rows)
        if args.summary:
            _try_write(lambda: _write_summary(args, runs, start, len(configs)), failed)
        _report_failures(result, failed)
    return result


def _sweep_result(args, spec, configs, runs, rows) -> dict:
    base = configs[0].replace(**{v: getattr(preset(args.preset), v) for v in spec.swept})
    sweep: dict[str, Any] = {"name": spec.name, "description": spec.description, "var": spec.var}
    sweep.update(swept=list(spec.swept), values=[getattr(c, spec.var) for c in configs])
    sweep.update(scale=args.preset, shard=None if args.shard is None else list(args.shard))
    seconds = sum(r.train_seconds for r in runs)
    return {"config": base.to_dict(), "sweep": sweep, "train_seconds": seconds, "instances": rows}


def _write_summary(args, runs, start: int, count: int) -> None:
    save_summary(
        runs,
        args.summary,
        name=args.name,
        scale=args.preset,
        overwrite=args.overwrite or args.resume,
        representative=_local_representatives(args, start, count),
        shard=args.shard,
        values=args.values,
        steps=args.steps,
        schedule=args.schedule,
        bias_decay=args.sweep_bias_decay,
        compact=args.compact,
    )


def _sweep_instances(args) -> tuple[list, int]:
    """The batch's instance configs (one per seed and point), or the shard's block of them,
    and the block's first index in the whole batch."""
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
        raise config_error(err) from None
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


def _summary_target(args) -> Path | None:
    """The summary's JSON path; it must be new unless --overwrite or --resume."""
    if not args.summary:
        return None
    stem = args.name if args.shard is None else shard_stem(args.name, *args.shard)
    target = Path(args.summary) / f"{stem}.json"
    if target.exists() and not (args.overwrite or args.resume):
        raise CliError(
            f"python -m monosem_lib: error: argument --summary: {target} already exists; "
            "choose another directory or pass --overwrite (or --resume)",
            2,
        )
    return target


def _claim_summary(args, target: Path, configs, start: int, held: ExitStack) -> None:
    """Before training: the summary's location must be writable, with room for it; its lock
    is held (in ``held``) until it is written."""
    reps = _local_representatives(args, start, len(configs))
    check_output(target, summary_bytes(configs, reps, args.compact), "argument --summary")
    held.enter_context(holding(target.with_suffix("")))


def _is_current(args, target: Path, configs) -> bool:
    """--resume: whether ``target`` holds these configs and passes verification. A file that
    fails verification is retrained (said on stderr); one from a newer version is refused
    unless --overwrite."""
    try:
        if holds_configs(target, configs):
            return True
    except NewerVersionError as err:
        if not args.overwrite:
            raise CliError(
                f"python -m monosem_lib: error: argument --summary: {err}; refusing to retrain "
                "over it (pass --overwrite to replace it)",
                2,
            ) from None
        return False
    if target.exists():
        try:
            load_summary(target)
            reason = "it holds other configs or older numbers"
        except ValueError as err:
            reason = str(err)
        print(f"python -m monosem_lib: retraining {target}: {reason}", file=sys.stderr)
    return False


def _groups(args, configs) -> list[list]:
    """The passes: one per structure, each cut to --max-instances."""
    groups = group_by_structure(configs)
    if args.max_instances:
        step = args.max_instances
        groups = [g[i : i + step] for g in groups for i in range(0, len(g), step)]
    return groups


def _train_groups(args, groups, spec, start: int = 0) -> tuple[list[Run], list[dict], list[str]]:
    """Train each pass, saving it to --out at once; the runs, the rows of every instance and
    the writes that failed."""
    runs: list[Run] = []
    rows: list[dict] = []
    failed: list[str] = []
    for group in groups:
        run = train(group, progress=args.progress)
        summary = summarize(run)
        _warn_flagged(run, summary, start + len(rows))
        if args.out:
            part = f"{spec.var}={getattr(group[0], spec.var)}"
            many = f"part-{len(runs):02d}" if args.max_instances else part
            target = Path(args.out) if len(groups) == 1 else Path(args.out) / many
            write = partial(write_run, run, target, overwrite=args.overwrite, metrics=summary)
            _try_write(write, failed)
        rows += _instance_rows(run, summary)
        runs.append(run)
    return runs, rows, failed


def cmd_merge(args) -> dict:
    try:
        path = merge_summaries(args.parts, args.summary, overwrite=args.overwrite)
    except (ValueError, FileExistsError, TypeError) as err:
        raise CliError(f"python -m monosem_lib: error: merge: {err}", 2) from None
    return {"merged": [str(p) for p in args.parts], "summary": str(path)}


def cmd_interpret(args) -> dict:
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


def cmd_bench(args) -> dict:
    return run_bench(quick=args.quick, rounds=args.rounds)


def emit(args, result: dict) -> None:
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
        print(format_bench(result))
        return
    if args.command in ("decay-study", "sae-frontier"):
        print(format_study(result))
        return
    if args.command == "paper-gpu":
        print(format_gpu_plan(result))
        return
    if "skipped" in result:
        print(f"skipped: {result['skipped']}")
        return
    print(f"trained in {result['train_seconds']:.1f} s")
    print_table(result["instances"])
    if getattr(args, "out", None) and "not_saved" not in result:
        print(f"saved to {args.out}")


def cmd_paper_gpu(args) -> dict:
    """Plan (or reuse the stored plan), then train and store each planned batch that is not
    current, one compact summary per batch."""
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise CliError(
            f"python -m monosem_lib: error: argument --device: {args.device} is not allowed "
            "here: no CUDA device is visible (use a GPU machine, or --device cpu for a test)",
            2,
        )
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
    plan = load_or_make_plan(
        args.summary, args.replan, device=args.device, budget_seconds=args.budget_seconds,
        steps=args.steps, per_pass=args.per_pass, tf32=args.tf32,
    )  # fmt: skip
    done = {}
    for batch, configs in plan_configs(plan).items():
        target = Path(args.summary) / f"{batch}.json"
        if holds_configs(target, configs):
            done[batch] = "current"
            continue
        runs = [
            train(configs[i : i + plan.per_pass]) for i in range(0, len(configs), plan.per_pass)
        ]
        save_summary(
            runs, args.summary, name=batch, scale="paper", overwrite=True, compact=True,
            values=plan.rates(batch), steps=None if args.steps is None else plan.steps,
        )  # fmt: skip
        done[batch] = f"trained in {sum(r.train_seconds for r in runs):.0f} s"
    return {"plan": asdict(plan), "batches": done, "summary": args.summary}


def format_gpu_plan(result: dict) -> str:
    """The plan and what became of each batch, in a few lines."""
    p = result["plan"]
    models = ", ".join(f"{b} lr {lr:g}" for b, lr in p["models"])
    return "\n".join(
        [
            f"{p['device_name']} ({p['device']}{', TF32' if p['tf32'] else ''}): "
            f"{p['per_pass']} models a pass take {p['ms_per_step']:.2f} ms a step "
            f"({p['tflops']:.3g} TFLOP/s); {p['steps']} steps a model",
            f"budget {p['budget_seconds']:.0f} s: {len(p['models'])} models ({models}), "
            f"about {p['seconds']:.0f} s",
            *(f"{batch}: {what}" for batch, what in result["batches"].items()),
            f"summaries in {result['summary']}",
        ]
    )
