"""The paper's full budget on one GPU: which models of LR1 and LR3 fit in a time budget.

At the paper's scale (batch 8192 for 2^17 steps, 2^30 samples) a model costs about 3.6e15
FLOPs: the ``paper`` preset's ``flops_per_sample`` (3.4 million) times 2^30. A plan times a
few steps on the device, with as many models in one pass as the plan will train together,
and keeps the models of ``PRIORITY`` that fit in the budget, in that order: both batches at
the paper's main rate first, so that claim 3 (LR3 against LR1) can be read from the fewest
models. The plan is written beside the summaries and reused, so a rerun resumes the same
batches instead of planning anew on a busier device.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.config import Config, ConfigError, preset
from ..core.timing import library_ms_per_step
from .table1 import sweep_configs

__all__ = ["PRIORITY", "GpuPlan", "measure", "make_plan", "load_or_make_plan", "plan_configs"]

# (batch, learning rate) in the order a budget takes them: the paper's main rate 0.003 for
# both batches, then the rates either side, then the rest of Table 1's six.
PRIORITY: tuple[tuple[str, float], ...] = tuple(
    (batch, lr) for lr in (0.003, 0.01, 0.001, 0.005, 0.007, 0.03) for batch in ("LR1", "LR3")
)
PLAN_FILE = "gpu-plan.json"


@dataclass(frozen=True)
class GpuPlan:
    """What fits: ``models`` of ``PRIORITY`` trained ``per_pass`` at a time, each step of a
    pass measured at ``ms_per_step`` on ``device``; ``seconds`` is the estimate for them all."""

    device: str
    device_name: str
    tf32: bool
    steps: int
    per_pass: int
    ms_per_step: float
    budget_seconds: float
    models: tuple[tuple[str, float], ...]
    seconds: float
    tflops: float

    def rates(self, batch: str) -> tuple[float, ...]:
        """The rates the plan trains for ``batch``."""
        return tuple(lr for b, lr in self.models if b == batch)


def _config(device: str, steps: int | None) -> Config:
    overrides = {"device": device} if steps is None else {"device": device, "steps": steps}
    return sweep_configs("LR1", "paper", values=(0.003,), **overrides)[0]


def measure(device: str, per_pass: int, steps: int = 20, warmup: int = 5) -> float:
    """ms per step of ``per_pass`` paper-scale models trained together on ``device``."""
    config = _config(device, None).replace(instances=per_pass)
    return library_ms_per_step([config], steps, warmup)


def make_plan(
    device: str,
    budget_seconds: float,
    *,
    steps: int | None = None,
    per_pass: int = 2,
    tf32: bool = False,
    timing_steps: int = 20,
) -> GpuPlan:
    """Time a pass of ``per_pass`` models and keep the models of ``PRIORITY`` that fit in
    ``budget_seconds`` (whole passes; at least one model, so a plan always trains)."""
    if not budget_seconds > 0:
        raise ConfigError("budget_seconds", budget_seconds, "must be a number > 0")
    config = _config(device, steps)
    ms = measure(device, per_pass, min(timing_steps, config.steps), min(5, config.steps))
    pass_seconds = ms / 1e3 * config.steps
    passes = max(1, math.floor(budget_seconds / pass_seconds))
    models = PRIORITY[: min(len(PRIORITY), passes * per_pass)]
    tflops = config.flops_per_sample * config.batch * per_pass / (ms / 1e3) / 1e12
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    return GpuPlan(
        device, name, tf32, config.steps, per_pass, ms, budget_seconds, models,
        math.ceil(len(models) / per_pass) * pass_seconds, tflops,
    )  # fmt: skip


def load_or_make_plan(folder: str | Path, replan: bool = False, **kwargs) -> GpuPlan:
    """The plan stored in ``folder`` (so a rerun resumes the same models), or a new one,
    written there first."""
    path = Path(folder) / PLAN_FILE
    if path.exists() and not replan:
        data = json.loads(path.read_text())
        data["models"] = tuple(tuple(m) for m in data["models"])
        return GpuPlan(**data)
    plan = make_plan(**kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(plan), indent=1))
    tmp.replace(path)
    return plan


def plan_configs(plan: GpuPlan) -> dict[str, list[Config]]:
    """The configs of each batch the plan trains, one instance each."""
    overrides: dict[str, Any] = {"device": plan.device}
    if plan.steps != preset("paper").steps:
        overrides["steps"] = plan.steps
    out = {}
    for batch in dict.fromkeys(b for b, _ in plan.models):
        cfgs = sweep_configs(batch, "paper", values=plan.rates(batch), **overrides)
        out[batch] = [c for cfg in cfgs for c in cfg.expand()]
    return out
