"""Timing primitives: the machine's sustained matmul peak, the matrix products a training step
cannot avoid, the library's time per step, and best-of-rounds timing that a busy shared machine
does not bias. ``apps.bench`` builds its report from these; the chapters time with them too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import torch

from .config import Config
from .training import as_instances, train

__all__ = ["matmul_peak", "sync", "gemm_floor", "library_ms_per_step", "time_per_step", "best_of"]

K = TypeVar("K")  # best_of's timer keys


def matmul_peak(size: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """Sustained float32 matmul throughput in GFLOP/s: ``repeats`` back-to-back ``size`` x
    ``size`` matmuls, timed together (a training loop is sustained work too)."""
    dev = torch.device(device)
    a = torch.randn(size, size, device=dev)
    b = torch.randn(size, size, device=dev)
    c = a @ b
    sync(dev)
    t = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b, out=c)
    sync(dev)
    return 2 * size**3 * repeats / (time.perf_counter() - t) / 1e9


def sync(dev: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU), so a timer reads finished work."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def gemm_floor(config: Config, steps: int = 10) -> float:
    """ms per step of the five matrix products a training step of one model of ``config``
    needs, back to back and nothing else: forward x W1^T + b and h W2^T, backward Y^T h,
    Y W2 and DH^T x (x [B, m], W1 [k, m], W2 [out, k], as nn.Linear holds them). Every
    exact trainer computes these, so no trainer is faster than this floor."""
    B, m, k, out = config.batch, config.m, config.k, config.out_dim
    gen = torch.Generator().manual_seed(0)
    x, W1 = torch.rand(B, m, generator=gen), torch.randn(k, m, generator=gen)
    b, W2 = torch.randn(k, generator=gen), torch.randn(out, k, generator=gen)
    H, Y, DH = torch.empty(B, k), torch.randn(B, out, generator=gen), torch.empty(B, k)
    gW1, gW2 = torch.empty(k, m), torch.empty(out, k)

    def step():
        torch.addmm(b, x, W1.T, out=H)
        torch.mm(H, W2.T, out=Y)
        torch.mm(Y.T, H, out=gW2)
        torch.mm(Y, W2, out=DH)
        torch.mm(DH.T, x, out=gW1)

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t) / steps * 1e3


def library_ms_per_step(configs, steps: int, warmup: int) -> float:
    """ms per step of the library training ``configs`` together, with the first ``warmup``
    steps not timed."""
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
    return library_ms_per_step(as_instances(configs), steps, warmup) / 1e3


def best_of(rounds: int, timers: Mapping[K, Callable[[], float]]) -> dict[K, float]:
    """The best result of each timer over ``rounds`` rounds that run them in turn, so a
    noisy neighbour on a shared machine slows no side alone. Timers are keyed by anything
    (a name, a model count), and so are the results."""
    times: dict[K, list[float]] = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            times[name].append(timer())
    return {name: min(t) for name, t in times.items()}
