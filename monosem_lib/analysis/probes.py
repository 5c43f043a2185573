"""Probes of one trained instance: how often neurons fire, losses with neurons zeroed or
linearised, the linear map a neuron subset applies, its linear target and singular values,
how neurons line up with features and respond to one feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor

from ..core.data import make_world
from ..core.model import ToyModel, activation
from ..core.training import Run
from .defaults import EVAL_SAMPLES
from .metrics import (
    single_feature_activations,
)

__all__ = [
    "SubspaceAnalysis",
    "ablation_loss",
    "activity_fraction",
    "feature_response",
    "FeatureResponse",
    "LinearTarget",
    "interference",
    "linear_target",
    "matrix_cosine",
    "neuron_alignment",
    "row_space_projector",
    "subset_map",
    "subspace_analysis",
    "instance_model",
    "eval_batches",
    "Neurons",
    "neuron_mask",
    "NEAR_ONE_BAND",
]
NEAR_ONE_BAND = (0.8, 1.2)  # a singular value "near 1"


def instance_model(run: Run, instance: int) -> tuple[ToyModel, Tensor]:
    if not 0 <= instance < run.instances:
        raise IndexError(
            f"instance={instance} is out of range: the run has {run.instances} instance(s)"
        )
    return run.model.select(instance), run.P[instance]


def eval_batches(run: Run, instance: int, samples: int):
    cfg = run.configs[instance]
    chunk = min(cfg.batch, samples)
    world = make_world(cfg.replace(batch=chunk, device=str(run.model.flat.device)), stream="eval")
    n = 0
    while n < samples:
        yield world.sample()
        n += chunk


Neurons = Tensor | Sequence[int] | None
"""A set of neurons, as indices, a [k] boolean mask, or None for none."""


def neuron_mask(k: int, neurons: Neurons) -> Tensor:
    m = torch.zeros(k, dtype=torch.bool)
    if neurons is not None:
        idx = torch.as_tensor(neurons)
        if idx.dtype == torch.bool:
            if idx.numel() != k:
                raise ValueError(f"a neuron mask needs {k} entries, got {idx.numel()}")
            return idx.cpu().clone()
        m[idx.long()] = True
    return m


@torch.no_grad()
def activity_fraction(run: Run, instance: int = 0, samples: int = EVAL_SAMPLES) -> Tensor:
    """Fraction of sampled inputs on which each neuron is active (h > 0), shape [k]."""
    model, _ = instance_model(run, instance)
    active = torch.zeros(model.k, dtype=torch.float64)
    n = 0
    for _, x, _ in eval_batches(run, instance, samples):
        h = model.hidden(x)[0]
        active += (h > 0).double().sum(0).cpu()
        n += h.shape[0]
    return active / n


@torch.no_grad()
def ablation_loss(
    run: Run,
    neurons: Neurons = None,
    instance: int = 0,
    samples: int = EVAL_SAMPLES,
    linearize: Neurons = None,
) -> float:
    """Loss on evaluation samples after zeroing ``neurons`` (indices or a [k] mask) and
    replacing the nonlinearity of ``linearize`` neurons by the identity."""
    model, _ = instance_model(run, instance)
    zero = neuron_mask(model.k, neurons).to(model.flat.device)
    lin = neuron_mask(model.k, linearize).to(model.flat.device)
    W2 = model.W2[0]
    total, n = 0.0, 0
    for _, x, target in eval_batches(run, instance, samples):
        pre = model.preactivations(x)[0]
        h = torch.where(lin, pre, activation(pre, model.nonlinearity))
        h = h.masked_fill(zero, 0.0)
        y = h @ W2.T
        total += float(((y - target) ** 2).sum())
        n += x.shape[0]
    return total / n


@torch.no_grad()
def interference(
    run: Run,
    neuron: int,
    instance: int = 0,
    feature: int | None = None,
    samples: int = EVAL_SAMPLES,
) -> Tensor:
    """What other features feed a neuron: its input W1[n] x on evaluation samples where its
    own feature is off (default: its strongest single feature). A monosemantic neuron
    stays silent when this stays below -b[n]. Returns a 1-D tensor (float64, CPU)."""
    model, P = instance_model(run, instance)
    if feature is None:
        feature = int(single_feature_activations(model, P[None])[0, neuron].argmax())
    w = model.W1[0, neuron]
    out = []
    for f, x, _ in eval_batches(run, instance, samples):
        off = f[:, feature] == 0
        out.append((x[off] @ w).double().cpu())
    return torch.cat(out)


def subset_map(run: Run, neurons: Neurons, instance: int = 0) -> Tensor:
    """W2[:, S] W1[S, :] P for the neuron subset S: the linear map from features to outputs
    that S applies when its neurons act linearly. Shape [out, N] (float64, CPU)."""
    model, P = instance_model(run, instance)
    S = neuron_mask(model.k, neurons)
    W1, W2 = model.W1[0].double().cpu(), model.W2[0].double().cpu()
    return W2[:, S] @ W1[S, :] @ P.double().cpu()


def row_space_projector(P: Tensor) -> Tensor:
    """P^T (P P^T)^-1 P, the orthogonal projector onto the row space of P, [N, N]."""
    P = P.double().cpu()
    return P.T @ torch.linalg.solve(P @ P.T, P)


def matrix_cosine(A: Tensor, B: Tensor) -> float:
    """Cosine between matrices A, B [r, c], <A, B> / (norm(A) norm(B)) with Frobenius norms:
    1 for matrices equal up to a positive scale."""
    if A.shape != B.shape:
        raise ValueError(
            "matrix_cosine needs two matrices of one shape, got "
            f"{tuple(A.shape)} and {tuple(B.shape)}"
        )
    A, B = A.double(), B.double()
    norms = A.norm() * B.norm()
    return float((A * B).sum() / norms) if norms > 0 else 0.0


class LinearTarget(NamedTuple):
    """A task's linear target (unpacks as ``matrix, name``): the map [out, N] (float64,
    CPU), or None where no linear map is meaningful, and its name (or why there is none)."""

    matrix: Tensor | None
    name: str


def linear_target(run: Run, instance: int = 0) -> LinearTarget:
    """The linear map from features to outputs that a set of neurons acting linearly should
    approach, and its name. Shape [out, N] (float64, CPU), or None where no linear map is
    meaningful.

    * decoder: P^+ P, the projector onto P's row space ([N, N]);
    * re-projector: Q P^+ P ([m, N]), the best linear map from x = P f to the target Q f;
    * abs: None. The features are symmetric about 0 and the target ``abs(f)`` is even, so
      the best linear map from x to it is zero and a cosine with it means nothing.

    For independent features of equal variance (uniform features) these are exactly the
    linear part of the least-squares affine estimate of the target from x.
    """
    task = run.configs[instance].task
    if task == "abs":
        return LinearTarget(
            None, "none (the abs target abs(f) is even in f, so its best linear estimate is 0)"
        )
    proj = row_space_projector(run.P[instance])
    if task == "decoder":
        return LinearTarget(proj, "the projector onto P's row space")
    if run.Q is None:
        raise ValueError(f"the {task} task needs the run's second projection Q; this run has none")
    return LinearTarget(
        run.Q[instance].double().cpu() @ proj, "Q P+ P, the best linear map from x to Q f"
    )


@dataclass
class SubspaceAnalysis:
    """The linear map of a neuron subset compared with its linear target.

    Attributes:
        singular_values: [min(out, N)] singular values of ``map``, largest first.
        near_one: how many lie inside ``NEAR_ONE_BAND``.
        rank_bound: m, the largest rank a map through x = P f can have.
        target: the name of the linear target (see ``linear_target``).
        cosine_target: matrix cosine of ``map`` with the target.
        cosine_identity: matrix cosine with the identity (decoder only, else None).
        map: W2[:, S] W1[S, :] P, shape [out, N].
    """

    singular_values: Tensor
    near_one: int
    rank_bound: int
    target: str
    cosine_target: float
    cosine_identity: float | None
    map: Tensor = field(repr=False)


def subspace_analysis(
    run: Run, neurons: Neurons, instance: int = 0, band: tuple[float, float] | None = None
) -> SubspaceAnalysis:
    """Singular values of ``subset_map`` (how many lie in ``band``, default
    ``NEAR_ONE_BAND``) and how close the map is to the task's ``linear_target``.

    Raises ValueError for the abs task, which has no linear target.
    """
    lo, hi = NEAR_ONE_BAND if band is None else band
    target, name = linear_target(run, instance)
    if target is None:
        raise ValueError(
            f"task={run.configs[instance].task!r} has no linear target; "
            "subspace_analysis is allowed for the decoder and reprojector tasks"
        )
    M = subset_map(run, neurons, instance)
    sv = torch.linalg.svdvals(M)
    decoder = run.configs[instance].task == "decoder"
    return SubspaceAnalysis(
        singular_values=sv,
        near_one=int(((sv > lo) & (sv < hi)).sum()),
        rank_bound=int(run.P[instance].shape[0]),
        target=name,
        cosine_target=matrix_cosine(M, target),
        cosine_identity=matrix_cosine(M, torch.eye(M.shape[1], dtype=torch.float64))
        if decoder
        else None,
        map=M,
    )


@torch.no_grad()
def neuron_alignment(run: Run, instance: int = 0) -> dict[str, Tensor]:
    """How each neuron lines up with its strongest feature j.

    Returns [k]-tensors (float64, CPU): ``feature`` (j), ``input_cosine`` (cosine between the
    neuron's input weights W1[n] and P's column j, the direction feature j takes in x) and
    ``output_share`` (the fraction of the output weights' squared norm on output j; decoder
    and abs tasks, NaN for the re-projector, whose outputs are not features).
    """
    model, P = instance_model(run, instance)
    P = P.double().cpu()
    W1, W2 = model.W1[0].double().cpu(), model.W2[0].double().cpu()
    feature = single_feature_activations(model, P[None])[0].argmax(1).cpu()
    cols = P[:, feature].T  # [k, m]
    cos = (W1 * cols).sum(1) / (W1.norm(dim=1) * cols.norm(dim=1)).clamp(min=1e-30)
    if run.configs[instance].task == "reprojector":
        share = torch.full((model.k,), float("nan"), dtype=torch.float64)
    else:
        own = W2[feature, torch.arange(model.k)] ** 2
        share = own / (W2**2).sum(0).clamp(min=1e-30)
    return {"feature": feature, "input_cosine": cos, "output_share": share}


class FeatureResponse(NamedTuple):
    """``feature_response``'s result (unpacks as ``values, contributions``): the feature
    values [V] and each neuron's contribution to the output at each value [n, V]."""

    values: Tensor
    contributions: Tensor


@torch.no_grad()
def feature_response(
    run: Run,
    feature: int,
    neurons: Tensor | Sequence[int],
    instance: int = 0,
    values: Tensor | None = None,
) -> FeatureResponse:
    """How neurons build output ``feature`` as that feature alone goes from 0 to 1.

    Returns (values [V], contributions [len(neurons), V]): neuron n adds
    W2[feature, n] * act(W1[n] P_feature v + b[n]) to the output at feature value v.
    """
    model, P = instance_model(run, instance)
    values = torch.linspace(0, 1, 51, dtype=torch.float64) if values is None else values.double()
    x = (values[:, None] * P[:, feature].double().cpu()[None, :]).to(
        model.flat.device, model.flat.dtype
    )
    h = model.hidden(x.unsqueeze(0))[0].double().cpu()  # [V, k]
    idx = torch.as_tensor(neurons, dtype=torch.long)
    return FeatureResponse(values, (h[:, idx] * model.W2[0, feature, idx].double().cpu()).T)
