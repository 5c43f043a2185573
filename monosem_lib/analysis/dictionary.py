"""Ground-truth metrics for any set of *units*: a model's neurons or an SAE's latents.

In a toy model the true features are known, so every contender is measured the same way:

* **single-feature activations** of its units, one probe per feature (f = e_j): a model's
  neurons read ``x = P e_j``; an SAE on the inputs encodes ``P e_j``; an SAE on a model's
  hidden layer encodes that model's ``h(P e_j)``. The paper's criterion (``metrics``) then
  counts monosemantic units (top share above 0.999) and the features they cover;
* **directions** where a unit has one to compare: an SAE's decoder atoms against the true
  directions in the space it reads (the columns of P for x; for h, the model's response to
  each feature alone, ``h(P e_j) - h(0)``, normalised). A neuron's atom is its own axis in h
  (``neuron_axes``), scored against the same true directions in h as an SAE on h; it is
  compared only when asked (``neuron_units(..., axes=True)``), so the default rows hold no
  MMCS for neurons. ``mmcs`` is the mean over features of the best cosine with any unit,
  ``recovered`` the fraction of features whose best cosine exceeds a threshold (0.9);
* **on data** (fresh evaluation samples): L0 (units active per sample), the fraction of
  variance unexplained (FVU) of what the contender reconstructs, dead units (never active),
  and for an SAE on h the *spliced* loss, the model's loss with h replaced by the SAE's
  reconstruction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..core.data import Batch, make_world, zero_loss
from ..core.model import activation
from ..core.sae import SAE
from ..core.training import Run
from .metrics import MONO_THRESHOLD, monosemanticity

__all__ = [
    "RECOVERY_THRESHOLD",
    "EVAL_SAMPLES",
    "Units",
    "neuron_units",
    "neuron_axes",
    "neuron_axis_cosines",
    "sae_units",
    "h_probes",
    "h_directions",
    "cosine_matrix",
    "best_cosines",
    "mmcs",
    "recovered",
    "unit_metrics",
    "neuron_data_metrics",
    "sae_data_metrics",
]

RECOVERY_THRESHOLD = 0.9
EVAL_SAMPLES = 2**14


@dataclass
class Units:
    """What a contender offers for measurement (one instance).

    Attributes:
        sfa: [U, N] activation of each unit for each feature alone.
        atoms: [D, U] each unit's direction, or None.
        truth: [D, N] each feature's true direction in the same space, or None.
    """

    sfa: Tensor
    atoms: Tensor | None = None
    truth: Tensor | None = None


@torch.no_grad()
def h_probes(run: Run, instance: int) -> Tensor:
    """The model's hidden activations for each feature alone, h(P e_j): [N, k]."""
    W1, b, _ = run.model.split()
    pre = run.P[instance].T @ W1[instance].T + b[instance]
    return activation(pre, run.model.nonlinearity)


@torch.no_grad()
def h_directions(run: Run, instance: int) -> Tensor:
    """Each feature's direction in the hidden layer, h(P e_j) - h(0), as columns [k, N]
    (not normalised; a feature no neuron answers has a zero column)."""
    b = run.model.split().b[instance]
    return (h_probes(run, instance) - activation(b, run.model.nonlinearity)).T


@torch.no_grad()
def neuron_units(run: Run, instance: int, axes: bool = False) -> Units:
    """A toy model's neurons: single-feature activations [k, N]. By default no directions are
    compared (MMCS and recovery stay None, as the stored study's rows have them); with
    ``axes=True`` each neuron's atom is its axis in h (``neuron_axes``), compared with each
    feature's direction in h (``h_directions``), the yardstick of an SAE on h."""
    sfa = h_probes(run, instance).T
    if not axes:
        return Units(sfa)
    return Units(sfa, neuron_axes(sfa.shape[0], sfa.dtype, sfa.device), h_directions(run, instance))


def neuron_axes(k: int, dtype: torch.dtype = torch.float64, device: Any = None) -> Tensor:
    """The atoms of k neurons in h: neuron i's axis e_i, as the columns of the identity [k, k]."""
    return torch.eye(k, dtype=dtype, device=device)


@torch.no_grad()
def neuron_axis_cosines(run: Run, instance: int, absolute: bool = False) -> Tensor:
    """For every feature, its best cosine with any neuron's axis in h: [N]. Feature j's
    direction is ``d_j = h(P e_j) - h(0)``, so the cosine with axis i is
    ``d_ij / norm(d_j)``; ``absolute`` takes ``abs(d_ij)`` (a feature that only silences a
    neuron then counts too). ``mmcs`` of the result is the neurons' MMCS; a model whose
    neurons answer one feature each scores 1."""
    truth = h_directions(run, instance).double()
    cos = cosine_matrix(neuron_axes(truth.shape[0], truth.dtype, truth.device), truth)
    return (cos.abs() if absolute else cos).max(0).values


@torch.no_grad()
def sae_units(sae: SAE, index: int, run: Run, instance: int, on: str) -> Units:
    """SAE instance ``index``'s latents, trained on run instance ``instance``'s inputs
    (``on="x"``) or hidden layer (``on="h"``): single-feature activations [L, N] and decoder
    atoms against the true directions (P's columns, or ``h_directions``)."""
    if on not in ("x", "h"):
        raise ValueError(f"on={on!r} is not allowed: must be x (inputs) or h (hidden layer)")
    one = sae.select([index])
    if on == "x":
        probes, truth = run.P[instance].T, run.P[instance]
    else:
        probes, truth = h_probes(run, instance), h_directions(run, instance)
    sfa = one.encode(probes.to(one.flat.dtype))[0].T
    return Units(sfa, one.split().W_dec[0], truth.to(one.flat.dtype))


def cosine_matrix(atoms: Tensor, truth: Tensor) -> Tensor:
    """Cosine of every unit direction (columns of ``atoms`` [D, U]) with every true direction
    (columns of ``truth`` [D, N]): [U, N]. Zero columns give cosine 0."""
    a = atoms / atoms.norm(dim=0, keepdim=True).clamp(min=1e-12)
    t = truth / truth.norm(dim=0, keepdim=True).clamp(min=1e-12)
    return a.T @ t


def best_cosines(atoms: Tensor, truth: Tensor) -> Tensor:
    """For every true direction, its best cosine with any unit: [N]."""
    return cosine_matrix(atoms, truth).max(0).values


def mmcs(best: Tensor) -> float:
    """Mean max cosine similarity: the mean over features of their best cosine (``best`` [N])."""
    return float(best.double().mean())


def recovered(best: Tensor, threshold: float = RECOVERY_THRESHOLD) -> float:
    """Fraction of features whose best cosine exceeds ``threshold``."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold={threshold!r} is not allowed: must be in (0, 1)")
    return float((best > threshold).double().mean())


def unit_metrics(units: Units, threshold: float = MONO_THRESHOLD) -> dict[str, float | int | None]:
    """Monosemantic units (the paper's criterion at ``threshold``), the features they cover,
    units per feature, and where directions exist MMCS and the fraction recovered (cos > 0.9);
    those two are None without directions."""
    cls = monosemanticity(units.sfa.double(), threshold)
    N = units.sfa.shape[1]
    mono = int(cls.mono.sum())
    out: dict[str, float | int | None] = {
        "units": int(units.sfa.shape[0]),
        "mono_units": mono,
        "mono_per_feature": mono / N,
        "features_covered": int(torch.unique(cls.top_feature[cls.mono]).numel()) / N,
        "mmcs": None,
        "recovered": None,
    }
    if units.atoms is not None and units.truth is not None:
        best = best_cosines(units.atoms.double(), units.truth.double())
        out["mmcs"], out["recovered"] = mmcs(best), recovered(best)
    return out


class _Tally:
    """Running sums over evaluation chunks: squared error, variance parts, L0, firing."""

    def __init__(self, units: int):
        self.n, self.sq, self.total_sq, self.active = 0, 0.0, 0.0, 0.0
        self.total = torch.zeros((), dtype=torch.float64, device="cpu")  # per-dimension sums
        self.fired = torch.zeros(units, dtype=torch.bool, device="cpu")

    def add(self, target: Tensor, recon: Tensor, codes: Tensor) -> None:
        target, recon = target.double(), recon.double()
        self.n += target.shape[0]
        self.sq += float((recon - target).square().sum())
        self.total = self.total + target.sum(0).cpu()
        self.total_sq += float(target.square().sum())
        self.active += float((codes > 0).sum())
        self.fired |= (codes > 0).any(0).cpu()

    def result(self) -> dict[str, float | int]:
        var = self.total_sq - float((self.total**2).sum()) / self.n
        return {
            "l0": self.active / self.n,
            "fvu": self.sq / max(var, 1e-30),
            "dead": int((~self.fired).sum()),
        }


def _eval_batches(run: Run, instance: int, samples: int, chunk: int = 1024) -> Iterator[Batch]:
    """Evaluation batches (features, inputs, targets) of one instance's world, from the
    evaluation stream (never the training stream)."""
    cfg = run.configs[instance]
    world = make_world(cfg.replace(batch=min(chunk, samples)), stream="eval")
    for _ in range(max(1, samples // world.config.batch)):
        yield world.sample()


@torch.no_grad()
def neuron_data_metrics(run: Run, instance: int, samples: int = EVAL_SAMPLES) -> dict:
    """A toy model on fresh samples: L0 (neurons active per sample), FVU of its output
    against the target, dead neurons (never active), its loss and the zero predictor's."""
    model = run.model.select([instance])
    tally = _Tally(model.k)
    for _, x, target in _eval_batches(run, instance, samples):
        h = model.hidden(x)[0]
        tally.add(target, h @ model.W2[0].T, h)
    out = tally.result()
    out["loss"] = tally.sq / tally.n
    out["zero_loss"] = zero_loss(run.configs[instance])
    return out


@torch.no_grad()
def sae_data_metrics(
    sae: SAE, index: int, run: Run, instance: int, on: str, samples: int = EVAL_SAMPLES
) -> dict:
    """SAE instance ``index`` on fresh samples of what it reads (run instance ``instance``'s
    x or h): L0, FVU of its reconstruction, dead latents; on h also the spliced loss (the
    model's output from the reconstructed h), the model's own loss and the zero loss."""
    one, model = sae.select([index]), run.model.select([instance])
    tally, spliced, own = _Tally(one.L), 0.0, 0.0
    for _, x, target in _eval_batches(run, instance, samples):
        a = model.hidden(x) if on == "h" else x.unsqueeze(0)
        a = a.to(one.flat.dtype)
        z = one.encode(a)
        recon = one.decode(z)
        tally.add(a[0], recon[0], z[0])
        if on == "h":
            W2 = model.W2[0].to(one.flat.dtype)
            spliced += float((recon[0] @ W2.T - target).double().square().sum())
            own += float((a[0] @ W2.T - target).double().square().sum())
    out = tally.result()
    if on == "h":
        out["loss"], out["model_loss"] = spliced / tally.n, own / tally.n
        out["zero_loss"] = zero_loss(run.configs[instance])
    return out
