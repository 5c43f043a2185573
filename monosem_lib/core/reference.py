"""Plain reference implementations: what the fast code must agree with, and what it beats.

``ReferenceLamb`` is LAMB written the obvious way, one parameter at a time, with the
semantics of torch-optimizer's ``Lamb`` (the optimizer the paper used). ``naive_train`` is an
eager trainer in the style of the paper's code: ``nn.Sequential``, autograd, a dense
Bernoulli mask every step, one model at a time. ``plain_train`` is the library's recipe
written plainly (``nn.Sequential``, autograd, ``ReferenceLamb``) on the library's own data and
initial weights, so its weights must match ``training.train``'s. Tests check the library
against the first and the last; the benchmark times the library against the second. All
three take their nonlinearity from ``model.ACTIVATIONS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import NamedTuple, overload

import torch
from torch import Tensor, nn

from .config import Config
from .data import derive_seed, make_projection, make_world
from .model import get_nonlinearity, init_params
from .optim import schedule_multipliers

__all__ = ["ReferenceLamb", "naive_train", "NaiveResult", "plain_train"]


class ReferenceLamb(torch.optim.Optimizer):
    """LAMB as torch-optimizer implements it: no bias correction, eps 1e-6, trust ratio
    ||w|| / ||adam_step|| with ||w|| clamped at ``clamp_value``, 1 when either norm is 0."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        clamp_value: float = 10.0,
    ):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, clamp_value=clamp_value))

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One update of every parameter from its ``.grad``. Like torch's optimizers, it first
        calls ``closure`` (with gradients on) when given one and returns its loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
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
        return loss


class NaiveResult(NamedTuple):
    """What ``naive_train`` returns (unpacks as ``model, losses, seconds``)."""

    model: nn.Sequential
    losses: list[float]
    seconds: float


def decay_mult(config: Config, rate_mult: float) -> float:
    """What scales a step's bias decay: 1, or the schedule's multiplier when the decay follows
    the scheduled rate (``decay_schedule`` rate)."""
    return float(rate_mult) if config.decay_schedule == "rate" else 1.0


def naive_train(
    config: Config, steps: int | None = None, seed: int = 0, warmup: int = 0
) -> NaiveResult:
    """Train one decoder model the plain eager way. Returns (model, losses, seconds), where
    ``seconds`` is the wall time of the steps after the first ``warmup`` (all of them by
    default), so a benchmark can leave out the allocator's and the BLAS's first calls.

    Supports the decoder task with uniform features (what the benchmark needs); it is a
    yardstick, not a second implementation of the library.
    """
    if config.task != "decoder" or config.feature_dist != "uniform":
        raise ValueError("naive_train supports only the decoder task with uniform features")
    steps = config.steps if steps is None else steps
    if not 0 <= warmup < max(steps, 1):
        raise ValueError(f"warmup={warmup} must be at least 0 and below steps={steps}")
    device = torch.device(
        "cuda" if config.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    )
    torch.manual_seed(seed)
    P = make_projection(config.N, config.m, seed).float().to(device)
    act = get_nonlinearity(config.nonlinearity).module()
    hidden = nn.Linear(config.m, config.k)
    model = nn.Sequential(hidden, act, nn.Linear(config.k, config.N, bias=False)).to(device)
    with torch.no_grad():
        hidden.bias.add_(config.init_bias)
    opt = ReferenceLamb(model.parameters(), lr=config.lr)
    mult = schedule_multipliers(config.schedule, steps).tolist()
    probs = torch.full((config.batch, config.N), config.eps, device=device)
    losses = []
    start = time.perf_counter()
    for t in range(steps):
        if t == warmup:
            start = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = config.lr * mult[t]
        opt.zero_grad(set_to_none=True)
        f = torch.rand(config.batch, config.N, device=device) * torch.bernoulli(probs)
        loss = ((model(f @ P.T) - f) ** 2).sum() / config.batch
        loss.backward()
        opt.step()
        if t < steps / 2 and config.bias_decay:
            with torch.no_grad():
                hidden.bias.mul_(1 - config.bias_decay * config.lr * decay_mult(config, mult[t]))
        losses.append(loss.detach())
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return NaiveResult(model, [float(x) for x in losses], seconds)


def _plain_layers(config: Config) -> tuple[nn.Linear, nn.Module, nn.Linear]:
    """Linear, act, Linear in float64 with the library's initial weights."""
    c = config
    gen = torch.Generator().manual_seed(derive_seed(c.seed, "init"))
    W1, b, W2 = init_params(c.k, c.m, c.out_dim, gen, c.init_bias)
    hidden = nn.Linear(c.m, c.k).double()
    act = get_nonlinearity(c.nonlinearity).module()
    readout = nn.Linear(c.k, c.out_dim, bias=False).double()
    with torch.no_grad():
        hidden.weight.copy_(W1), hidden.bias.copy_(b), readout.weight.copy_(W2)
    return hidden, act, readout


def plain_train(config: Config) -> nn.Sequential:
    """The library's recipe for one instance, written plainly: autograd through an
    ``nn.Sequential`` (W1 [k, m] and b [k] in layer 0, W2 [out, k] in layer 2), the
    optimizer applied per tensor (``ReferenceLamb`` or ``torch.optim.Adam``), bias decay in
    the first half, the l1 penalty on the activations, on the same data stream and initial
    weights as ``training.train``. Float64 throughout; use a float64 config to compare.
    """
    c = config
    if c.instances != 1:
        raise ValueError("plain_train trains one instance: pass a config with instances=1")
    world = make_world(c)
    hidden, act, readout = _plain_layers(c)
    net = nn.Sequential(hidden, act, readout)
    opt: torch.optim.Optimizer
    if c.optimizer == "lamb":
        opt = ReferenceLamb(net.parameters(), lr=c.lr)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=c.lr)
    mult = schedule_multipliers(c.schedule, c.steps)
    for t in range(c.steps):
        for grp in opt.param_groups:
            grp["lr"] = c.lr * float(mult[t])
        _, x, target = world.sample()
        x, target = x.double(), target.double()
        h = act(hidden(x))
        loss = ((readout(h) - target) ** 2).sum() / c.batch + c.l1 * h.abs().sum() / c.batch
        opt.zero_grad()
        loss.backward()
        opt.step()
        if t < c.steps / 2:
            with torch.no_grad():
                hidden.bias.mul_(1 - c.bias_decay * c.lr * decay_mult(c, float(mult[t])))
    return net
