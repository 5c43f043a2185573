"""Plain reference implementations: what the fast code must agree with, and what it beats.

``ReferenceLamb`` is LAMB written the obvious way, one parameter at a time, with the
semantics of torch-optimizer's ``Lamb`` (the optimizer the paper used). ``naive_train`` is an
eager trainer in the style of the paper's code: ``nn.Sequential``, autograd, a dense
Bernoulli mask every step, one model at a time. Tests check the library against the first;
the benchmark times the library against the second.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from .config import Config
from .data import make_projection
from .optim import schedule_multipliers

__all__ = ["ReferenceLamb", "naive_train"]


class ReferenceLamb(torch.optim.Optimizer):
    """LAMB as torch-optimizer implements it: no bias correction, eps 1e-6, trust ratio
    ||w|| / ||adam_step|| with ||w|| clamped at ``clamp_value``, 1 when either norm is 0."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, clamp_value=10.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, clamp_value=clamp_value))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                weight_norm = p.pow(2).sum().sqrt().clamp(0, group["clamp_value"])
                adam_step = m / v.sqrt().add(group["eps"])
                adam_norm = adam_step.pow(2).sum().sqrt()
                trust = (
                    1.0 if weight_norm == 0 or adam_norm == 0 else float(weight_norm / adam_norm)
                )
                p.add_(adam_step, alpha=-group["lr"] * trust)


def naive_train(
    config: Config, steps: int | None = None, seed: int = 0
) -> tuple[nn.Sequential, list[float], float]:
    """Train one decoder model the plain eager way. Returns (model, losses, seconds).

    Supports the decoder task with uniform features (what the benchmark needs); it is a
    yardstick, not a second implementation of the library.
    """
    if config.task != "decoder" or config.feature_dist != "uniform":
        raise ValueError("naive_train supports only the decoder task with uniform features")
    steps = config.steps if steps is None else steps
    device = torch.device(
        "cuda" if config.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    )
    torch.manual_seed(seed)
    P = make_projection(config.N, config.m, seed).float().to(device)
    act = {"relu": nn.ReLU(), "gelu": nn.GELU()}[config.nonlinearity]
    model = nn.Sequential(
        nn.Linear(config.m, config.k), act, nn.Linear(config.k, config.N, bias=False)
    ).to(device)
    with torch.no_grad():
        model[0].bias += config.init_bias
    opt = ReferenceLamb(model.parameters(), lr=config.lr)
    mult = schedule_multipliers(config.schedule, steps).tolist()
    probs = torch.full((config.batch, config.N), config.eps, device=device)
    losses = []
    start = time.perf_counter()
    for t in range(steps):
        for g in opt.param_groups:
            g["lr"] = config.lr * mult[t]
        opt.zero_grad(set_to_none=True)
        f = torch.rand(config.batch, config.N, device=device) * torch.bernoulli(probs)
        loss = ((model(f @ P.T) - f) ** 2).sum() / config.batch
        loss.backward()
        opt.step()
        if t < steps / 2 and config.bias_decay:
            with torch.no_grad():
                model[0].bias.mul_(1 - config.bias_decay * config.lr)
        losses.append(loss.detach())
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return model, [float(x) for x in losses], seconds
