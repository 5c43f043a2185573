"""What a training pass needs in memory, and whether the machine has it, before anything is
allocated: a config too large for the machine is refused with the estimate and the limit, not
killed by the kernel halfway (``train`` calls ``check_memory``).

The estimate counts the tensors training holds at once: weights, gradient and optimizer state
(five copies of the weights), the loss history, the projections, one chunk of data per world,
the step's activations, and the checkpoints, which live on the host. It is an estimate of the
large tensors, not of allocator overhead, so the limit keeps a margin (``HEADROOM``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import Config
from .data import chunk_steps

__all__ = [
    "MemoryNeed",
    "InsufficientMemory",
    "memory_needed",
    "memory_available",
    "check_memory",
    "format_bytes",
    "MEMORY_LIMIT_ENV",
    "HEADROOM",
]

MEMORY_LIMIT_ENV = "MONOSEM_MEMORY_LIMIT"  # bytes (suffix K, M, G or T), or "off"
HEADROOM = 0.9  # share of the available memory a pass may plan to use


class InsufficientMemory(RuntimeError):
    """A training pass would need more memory than the machine has."""


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes a pass needs: ``parts`` (name -> bytes) on the device, and checkpoints on the
    host."""

    parts: dict[str, int]
    host: int

    @property
    def device(self) -> int:
        return sum(self.parts.values())

    def total(self, on_cpu: bool) -> int:
        return self.device + self.host if on_cpu else self.device


def format_bytes(n: float) -> str:
    """``n`` bytes as ``1.2 GB`` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"


def memory_needed(configs: Iterable[Config], checkpoints: bool = True) -> MemoryNeed:
    """The memory one pass over single-instance ``configs`` (sharing their structure) needs."""
    insts = list(configs)
    c, I = insts[0], len(insts)
    size = torch.finfo(getattr(torch, c.dtype)).bits // 8
    out = c.out_dim
    weights = I * (c.k * c.m + c.k + out * c.k)
    worlds = len({(x.seed, x.eps, x.feature_dist) for x in insts})
    rows = chunk_steps(c.batch, c.N) * c.batch
    per_world = rows * (3 * c.N + c.m + (0 if c.task == "decoder" else out))
    copies = rows * I * (c.m + out) if worlds > 1 else 0
    extra = 3 if c.nonlinearity != "relu" else 0
    parts = {
        "weights and optimizer": 5 * weights * size,
        "data": (worlds * per_world + copies) * size,
        "activations": I * c.batch * ((2 + extra) * c.k + out) * size,
        "projections": 2 * I * c.m * c.N * (2 if c.task == "reprojector" else 1) * size,
        "loss history": c.steps * I * size,
    }
    stored = int(math.log2(c.steps)) + 2 if checkpoints else 0
    return MemoryNeed(parts, stored * weights * size)


def _parse_bytes(text: str) -> int:
    text = text.strip().upper().removesuffix("B")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def _cgroup_room() -> int | None:
    """What a cgroup-v2 memory limit leaves (containers, SLURM jobs), or None."""
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((base / "memory.current").read_text())
    except (OSError, ValueError):
        return None


def _host_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_available(device: torch.device) -> tuple[int | None, str]:
    """Bytes available to a pass on ``device`` and where the figure comes from; None when
    unknown (no check then). ``$MONOSEM_MEMORY_LIMIT`` overrides it (``off``: no check)."""
    env = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if env.lower() == "off":
        return None, MEMORY_LIMIT_ENV
    if env:
        try:
            return _parse_bytes(env), f"${MEMORY_LIMIT_ENV}"
        except ValueError:
            raise InsufficientMemory(
                f"${MEMORY_LIMIT_ENV}={env!r} is not allowed: must be a size such as 8G, or off"
            ) from None
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        spare = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return free + spare, f"free memory of {torch.cuda.get_device_name(device)}"
    if device.type != "cpu":
        return None, device.type
    room = [x for x in (_host_available(), _cgroup_room()) if x is not None]
    return (min(room), "available memory of this machine") if room else (None, "unknown")


def check_memory(configs: Iterable[Config], device: torch.device, checkpoints: bool = True):
    """Raise InsufficientMemory, with the estimate and the limit, if a pass over ``configs``
    would not fit in the memory available on ``device`` (or, for checkpoints, the host)."""
    insts = list(configs)
    need = memory_needed(insts, checkpoints)
    on_cpu = device.type == "cpu"
    checks = [(device, need.total(on_cpu))]
    if not on_cpu and need.host:
        checks.append((torch.device("cpu"), need.host))
    for where, bytes_ in checks:
        limit, source = memory_available(where)
        if limit is None or bytes_ <= HEADROOM * limit:
            continue
        parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in need.parts.items() if v)
        raise InsufficientMemory(
            f"training these {len(insts)} instance(s) needs about {format_bytes(bytes_)} of "
            f"{where.type} memory ({parts}; checkpoints {format_bytes(need.host)}), but "
            f"{format_bytes(limit)} is available ({source}; a pass may use "
            f"{HEADROOM:.0%}); train fewer instances at once (CLI: --max-instances) or a "
            "smaller k, batch or N"
        )
