"""Checkers for the SAE chapter's exercises, in the style of ``exercises``: each takes the
reader's function, runs it on cases with known answers and prints a tick or what is wrong
(and often why). They return True or False and never raise on a wrong answer."""

from __future__ import annotations

from typing import Callable

import torch

from .exercises import _call, _call_tensor, _report

__all__ = ["check_mmcs", "check_topk"]


def _mmcs_cases() -> list[tuple[torch.Tensor, torch.Tensor, float, str]]:
    """(atoms [d, L], truth [d, N], expected MMCS, what the case catches)."""
    eye = torch.eye(3, dtype=torch.float64)
    scaled = torch.tensor([[2.0, 0.0], [0.0, 0.6], [0.0, 0.8]], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    atoms = torch.randn(5, 7, generator=g, dtype=torch.float64)
    truth = torch.randn(5, 4, generator=g, dtype=torch.float64)
    a, t = atoms / atoms.norm(dim=0), truth / truth.norm(dim=0)
    expected = float((a.T @ t).max(0).values.mean())
    return [
        (eye, eye, 1.0, "a perfect dictionary"),
        (scaled, eye, (1.0 + 0.6 + 0.8) / 3, "atoms of any length (normalise them)"),
        (atoms, truth, expected, "random directions (more atoms than features)"),
        (-eye, eye, 0.0, "atoms pointing the wrong way (no absolute value)"),
    ]


def check_mmcs(fn: Callable) -> bool:
    """``fn(atoms [d, L], truth [d, N]) -> float``: the mean over the N true directions of
    their best cosine with any of the L atoms (columns; neither need be unit length)."""
    for atoms, truth, expected, what in _mmcs_cases():
        got, err = _call(fn, atoms, truth)
        if err:
            return _report(False, err)
        try:
            value = float(got)
        except (TypeError, ValueError):
            return _report(False, f"mmcs should return a number, got {type(got).__name__}")
        if abs(value - expected) > 1e-6:
            hint = ""
            if what.startswith("atoms of any") and abs(value - 0.8) < 1e-6:
                hint = " Did you normalise the atoms and the true directions?"
            if what.startswith("atoms pointing") and value > 0.5:
                hint = " Cosines keep their sign: an atom pointing away does not recover a feature."
            if what.startswith("random") and abs(value - _per_atom(atoms, truth)) < 1e-6:
                hint = " You averaged over atoms: MMCS averages over the true features."
            return _report(False, f"{what}: expected {expected:.4f}, got {value:.4f}.{hint}")
    return _report(True, "MMCS is right on every case")


def _per_atom(atoms: torch.Tensor, truth: torch.Tensor) -> float:
    a, t = atoms / atoms.norm(dim=0), truth / truth.norm(dim=0)
    return float((a.T @ t).max(1).values.mean())


def check_topk(fn: Callable) -> bool:
    """``fn(pre [B, L], k) -> Tensor [B, L]``: in each row keep the k largest pre-activations,
    zero the rest, then apply a ReLU (a kept negative value becomes 0)."""
    pre = torch.tensor([[0.5, -2.0, 3.0, 1.0], [-1.0, -0.5, -3.0, 0.2]], dtype=torch.float64)
    cases = [
        (pre, 2, [[0.0, 0.0, 3.0, 1.0], [0.0, 0.0, 0.0, 0.2]]),
        (pre, 1, [[0.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.2]]),
        (pre, 4, [[0.5, 0.0, 3.0, 1.0], [0.0, 0.0, 0.0, 0.2]]),
    ]
    for x, k, expected in cases:
        got, err = _call_tensor(fn, "topk", x.clone(), k)
        if err:
            return _report(False, err)
        want = torch.tensor(expected, dtype=torch.float64)
        if tuple(got.shape) != tuple(want.shape):
            return _report(False, f"expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
        if torch.allclose(got.double(), want):
            continue
        hint = ""
        if bool((got < 0).any()):
            hint = " Negative values survived: apply the ReLU after keeping the top k."
        elif int((got != 0).sum(1).max()) > k:
            hint = " More than k entries are non-zero in a row: zero the others."
        elif got.double()[0, 2] == 0:
            hint = " The largest entry was dropped: keep the largest, not the smallest."
        return _report(False, f"k = {k}: expected {want.tolist()}, got {got.tolist()}.{hint}")
    return _report(True, "TopK is right: k largest kept per row, then a ReLU")
