"""Training throughput against a naive eager trainer and against the machine's matmul peak.

``run_bench`` times, in one process: the float32 matmul peak (best of large square
matmuls); the paper's shape at batch 1024, one model; the book shape, one model; a 9-model
book-shape grid trained in one batched pass against nine naive runs; and, at the paper's shape,
the time per instance-step with 1, 2 and 4 instances trained together. The naive trainer is
``reference.naive_train`` (nn.Sequential, autograd, dense Bernoulli sampling, one model at a
time). On a GPU it also times the paper preset. Targets: ``TARGETS`` (speedups),
``PEAK_TARGET`` (fraction of the matmul peak at the paper's shape) and ``SCALING_TARGET``.

It also times a live retrain of the bias explorer (``live_retrain``): from a control change
to the final image, the untrained preview, every partial redraw and the evaluation
included, the median of three settings (target: 4 s on an idle 2-core machine).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from .config import Config, preset
from .reference import naive_train
from .training import train

__all__ = [
    "matmul_peak",
    "BenchRow",
    "run_bench",
    "format_bench",
    "time_per_step",
    "live_retrain",
    "instance_scaling",
]

TARGETS = {
    "paper shape (batch 1024)": 1.5,
    "book shape, one model": 2.0,
    "book shape, 9-model grid": 2.5,
}
LIVE_RETRAIN_TARGET = 4.0  # seconds, control release to final image, median of 3
PEAK_TARGET = 0.75  # the paper's shape, one model at batch 1024: fraction of the matmul peak
SCALING_TARGET = 1.10  # ms per instance-step may grow at most 10% from 1 to 4 instances


def matmul_peak(size: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """Best float32 matmul throughput of ``size`` x ``size`` matrices, in GFLOP/s."""
    dev = torch.device(device)
    a = torch.randn(size, size, device=dev)
    b = torch.randn(size, size, device=dev)
    c = a @ b
    best = float("inf")
    for _ in range(repeats):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        torch.mm(a, b, out=c)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


@dataclass
class BenchRow:
    name: str
    models: int
    library_ms_per_step: float
    naive_ms_per_step: float | None
    speedup: float | None
    samples_per_second: float
    gflops: float
    fraction_of_peak: float
    target: float | None

    @property
    def met(self) -> bool | None:
        return None if self.target is None or self.speedup is None else self.speedup >= self.target


def _library_ms(configs, steps: int, warmup: int) -> float:
    """ms per step of the library, with the first ``warmup`` steps not timed."""
    cfgs = [c.replace(steps=warmup + steps) for c in configs]
    per_step = {}

    def cb(done, model, losses):
        per_step[done] = time.perf_counter()

    train(cfgs, progress=False, checkpoints=False, callback=cb, callback_every=warmup)
    # callback fires at `warmup`, 2*warmup, ... and at the end; time from the first to the end.
    marks = sorted(per_step)
    return (per_step[marks[-1]] - per_step[marks[0]]) / (marks[-1] - marks[0]) * 1e3


def time_per_step(configs: Config | list[Config], steps: int = 200, warmup: int = 20) -> float:
    """Seconds per training step of ``configs`` trained together (warm-up steps not timed)."""
    from .training import as_instances

    return _library_ms(as_instances(configs), steps, warmup) / 1e3


def _naive_ms(config: Config, steps: int, warmup: int) -> float:
    _, _, seconds_all = naive_train(config, steps=warmup + steps)
    _, _, seconds_warm = naive_train(config, steps=warmup)
    return max(seconds_all - seconds_warm, 1e-9) / steps * 1e3


def _row(
    name,
    configs,
    steps,
    warmup,
    peak,
    naive_config=None,
    naive_models=1,
    naive_steps=None,
    target=None,
):
    models = sum(c.instances for c in configs)
    lib = _library_ms(configs, steps, warmup)
    naive = None
    if naive_config is not None:
        naive = _naive_ms(naive_config, naive_steps or steps, warmup) * naive_models
    c = configs[0]
    flops = c.flops_per_sample * c.batch * models / (lib / 1e3) / 1e9
    return BenchRow(
        name,
        models,
        lib,
        naive,
        None if naive is None else naive / lib,
        c.batch * models / (lib / 1e3),
        flops,
        flops / peak,
        target,
    )


def live_retrain(
    repeats: int = 3, init_biases: tuple[float, ...] = (-1.0, -0.5, 0.25)
) -> dict | None:
    """Seconds from moving the bias explorer's initial-bias slider to its final image, for
    ``repeats`` settings that each need a retrain at the ``live`` preset (untrained preview,
    partial redraws every 500 steps, evaluation and final redraw included). Also the
    process CPU time of each: training runs on one torch thread, so on a busy machine it
    tells what an idle one would take. None when ipywidgets is not installed."""
    import statistics

    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return None
    from .widgets import BiasExplorer

    explorer = BiasExplorer(start={"init_bias": 0.0, "shrink": 0.0, "lr": preset("live").lr})
    view = explorer.view
    view.wait()  # the starting setting trains first (untimed warm-up)
    seconds, cpu, redraws = [], [], []
    for b in list(init_biases)[:repeats]:
        before = view.redraws
        start, start_cpu = time.perf_counter(), time.process_time()
        view.controls["init_bias"].value = float(b)
        view.wait()
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        redraws.append(view.redraws - before)
        if view.error is not None:
            raise view.error
    median = statistics.median(seconds)
    return {
        "preset": "live",
        "steps": explorer.base.steps,
        "every": explorer.every,
        "threads": explorer.threads,
        "seconds": seconds,
        "median_seconds": median,
        "cpu_seconds": cpu,
        "median_cpu_seconds": statistics.median(cpu),
        "redraws": redraws,
        "target_seconds": LIVE_RETRAIN_TARGET,
        "met": median <= LIVE_RETRAIN_TARGET,
    }


def _rows(scale: float, peak: float) -> list[BenchRow]:
    """The three timed shapes, each against the naive trainer."""
    cpu = dict(device="cpu")
    paper, book = preset("paper", batch=1024, **cpu), preset("book", **cpu)
    grid = [
        book.replace(init_bias=b, bias_decay=d) for b in (-1.0, -0.5, 0.0) for d in (0.0, 0.15, 0.3)
    ]
    name_paper, name_book, name_grid = TARGETS
    return [
        _row(
            name_paper, [paper], max(4, int(30 * scale)), 3, peak, paper, target=TARGETS[name_paper]
        ),
        _row(name_book, [book], int(800 * scale), 50, peak, book, target=TARGETS[name_book]),
        _row(
            name_grid,
            grid,
            int(300 * scale),
            20,
            peak,
            book,
            naive_models=9,
            target=TARGETS[name_grid],
        ),
    ]


def instance_scaling(counts: tuple[int, ...] = (1, 2, 4), steps: int = 12) -> dict:
    """ms per instance-step at the paper's shape (batch 1024) for each number of instances
    trained together: batching instances must not make each one slower."""
    base = preset("paper", batch=1024, device="cpu")
    per = {n: _library_ms([base.replace(instances=n)], steps, 3) / n for n in counts}
    growth = per[counts[-1]] / per[counts[0]]
    return {
        "ms_per_instance_step": per,
        "growth": growth,
        "target_growth": SCALING_TARGET,
        "met": growth <= SCALING_TARGET,
    }


def run_bench(quick: bool = False) -> dict:
    """Time the library and the naive trainer; returns a JSON-ready dict."""
    peak = matmul_peak()
    rows = _rows(0.3 if quick else 1.0, peak)
    paper = rows[0]
    out = {
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "matmul_peak_gflops": peak,
        "rows": [dict(asdict(r), met=r.met) for r in rows],
        "paper_shape_peak": {
            "fraction": paper.fraction_of_peak,
            "target": PEAK_TARGET,
            "met": paper.fraction_of_peak >= PEAK_TARGET,
        },
        "instance_scaling": instance_scaling(steps=4 if quick else 12),
    }
    live = live_retrain(1 if quick else 3)
    if live is not None:
        out["live_retrain"] = live
    if torch.cuda.is_available():
        out["cuda"] = _cuda_bench(quick)
    return out


def _cuda_bench(quick: bool) -> dict:
    gpu_peak = matmul_peak(8192, device="cuda")
    cfg = preset("paper", device="cuda")
    ms = _library_ms([cfg], 200 if not quick else 50, 20)
    return {
        "device_name": torch.cuda.get_device_name(0),
        "matmul_peak_gflops": gpu_peak,
        "paper_preset_ms_per_step": ms,
        "paper_preset_samples_per_second": cfg.batch / (ms / 1e3),
        "fraction_of_peak": cfg.flops_per_sample * cfg.batch / (ms / 1e3) / 1e9 / gpu_peak,
    }


def _ok(met: bool | None) -> str:
    return " ok" if met else " MISSED"


def format_bench(result: dict) -> str:
    """A readable table of ``run_bench``'s result."""
    head = f"{'':28} {'models':>6} {'ms/step':>9} {'naive':>9} {'speedup':>8} {'target':>7}"
    lines = [
        f"float32 matmul peak: {result['matmul_peak_gflops']:.0f} GFLOP/s "
        f"({result['threads']} threads, torch {result['torch']})",
        "",
        f"{head} {'GFLOP/s':>8} {'of peak':>8}",
    ]
    for r in result["rows"]:
        naive = "-" if r["naive_ms_per_step"] is None else f"{r['naive_ms_per_step']:.2f}"
        speed = "-" if r["speedup"] is None else f"{r['speedup']:.2f}x"
        target = "-" if r["target"] is None else f"{r['target']:.1f}x" + _ok(r["met"])
        lines.append(
            f"{r['name']:28} {r['models']:>6} {r['library_ms_per_step']:>9.2f} {naive:>9} "
            f"{speed:>8} {target:>7} {r['gflops']:>8.1f} {r['fraction_of_peak']:>8.2f}"
        )
    return "\n".join(lines + _format_extras(result))


def _format_extras(result: dict) -> list[str]:
    pk, sc = result["paper_shape_peak"], result["instance_scaling"]
    per = ", ".join(f"{n}: {ms:.1f}" for n, ms in sc["ms_per_instance_step"].items())
    lines = [
        "",
        f"paper shape, one model: {pk['fraction']:.2f} of matmul peak (target {pk['target']:.2f})"
        + _ok(pk["met"]),
        f"ms per instance-step by instances trained together: {per}; growth "
        f"{sc['growth']:.2f}x (target <= {sc['target_growth']:.2f}x)" + _ok(sc["met"]),
    ]
    if "live_retrain" in result:
        lv = result["live_retrain"]
        runs = ", ".join(f"{s:.2f}" for s in lv["seconds"])
        lines += [
            f"live retrain (bias explorer, {lv['preset']} preset, {lv['steps']} steps, redraw "
            f"every {lv['every']}): median {lv['median_seconds']:.2f} s of [{runs}], target "
            f"{lv['target_seconds']:.0f} s" + _ok(lv["met"]),
            f"  process CPU time per retrain: median {lv['median_cpu_seconds']:.2f} s (one torch "
            "thread: about the wall time on an idle machine)",
        ]
    if "cuda" in result:
        c = result["cuda"]
        lines += [
            f"{c['device_name']}: paper preset {c['paper_preset_ms_per_step']:.2f} ms/step, "
            f"{c['paper_preset_samples_per_second']:.3g} samples/s, "
            f"{c['fraction_of_peak']:.2f} of matmul peak",
        ]
    return lines
