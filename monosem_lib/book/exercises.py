"""Checkers for the chapters' exercises.

Each ``check_*`` takes the reader's function, runs it on cases with known answers and prints
either a tick or a message that says what is wrong (and often why), in the style of ARENA's
tests. They return True or False and never raise on a wrong answer, so "Run all" in Colab
keeps going; the notebooks assert that the hidden solutions pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = [
    "check_sampler",
    "check_single_feature_activations",
    "check_monosemantic",
    "check_checkpoint_steps",
    "check_bias_by_class",
    "check_total_shrink",
    "check_interference",
    "check_features_covered",
    "check_projector",
    "check_mmcs",
    "check_topk",
]


def _report(ok: bool, message: str) -> bool:
    print(("\u2714 " if ok else "\u2718 ") + message)
    return ok


def _call(fn: Callable, *args):
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, "not attempted yet: replace the `raise NotImplementedError` with your code"
    except Exception as err:  # noqa: BLE001 - any error is the reader's to see
        return None, f"your function raised {type(err).__name__}: {err}"


def _call_tensor(fn: Callable, name: str, *args):
    """Call the reader's function and insist on a tensor; (tensor, None) or (None, message)."""
    out, err = _call(fn, *args)
    if err:
        return None, err
    if isinstance(out, torch.Tensor):
        return out, None
    return None, f"{name} should return a torch.Tensor, got {type(out).__name__}"


# -- chapter 1 ------------------------------------------------------------------------------
def check_sampler(fn: Callable) -> bool:
    """``fn(N, eps, batch, generator) -> Tensor [batch, N]``: each entry active with
    probability eps, active values uniform on [0, 1]."""
    N, eps, batch = 50, 0.1, 4000
    f, err = _call_tensor(fn, "sample_features", N, eps, batch, torch.Generator().manual_seed(0))
    if err:
        return _report(False, err)
    if tuple(f.shape) != (batch, N):
        hint = (
            " (rows are samples, columns features: transpose?)"
            if tuple(f.shape) == (N, batch)
            else ""
        )
        return _report(False, f"expected shape ({batch}, {N}), got {tuple(f.shape)}{hint}")
    f = f.double()
    if f.min() < 0 or f.max() > 1:
        return _report(
            False, f"values must lie in [0, 1], found range [{f.min():.2f}, {f.max():.2f}]"
        )
    active = f > 0
    density = float(active.double().mean())
    se = math.sqrt(eps * (1 - eps) / f.numel())
    if abs(density - eps) > 6 * se:
        hint = (
            " Is eps the probability of being *off* in your code?"
            if abs(density - (1 - eps)) < 6 * se
            else ""
        )
        return _report(
            False, f"{density:.1%} of entries are active, expected eps = {eps:.0%}.{hint}"
        )
    values = f[active]
    if torch.allclose(values, torch.ones_like(values)):
        return _report(
            False, "every active entry is exactly 1: multiply the Bernoulli mask by uniform values"
        )
    if abs(float(values.mean()) - 0.5) > 0.02 or abs(float(values.var()) - 1 / 12) > 0.01:
        return _report(
            False,
            f"active values should be uniform on [0, 1] (mean 0.5, variance 0.083); got mean "
            f"{values.mean():.3f}, variance {values.var():.3f}",
        )
    per_feature = active.double().mean(0)
    if (per_feature - eps).abs().max() > 6 * math.sqrt(eps * (1 - eps) / batch):
        return _report(
            False,
            "some features are active much more often than others: every feature should use eps",
        )
    return _report(True, f"density {density:.3f} (eps = {eps}), active values uniform: correct")


def _random_model(seed: int = 0, k: int = 12, m: int = 5, N: int = 9):
    g = torch.Generator().manual_seed(seed)
    W1 = torch.randn(k, m, generator=g, dtype=torch.float64)
    b = torch.randn(k, generator=g, dtype=torch.float64) * 0.5
    P = torch.randn(m, N, generator=g, dtype=torch.float64)
    P = P / P.norm(dim=0)
    return W1, b, P


def check_single_feature_activations(fn: Callable) -> bool:
    """``fn(W1 [k, m], b [k], P [m, N]) -> Tensor [k, N]``: ReLU(W1 P e_j + b) for every j."""
    W1, b, P = _random_model()
    k, N = W1.shape[0], P.shape[1]
    A, err = _call_tensor(fn, "single_feature_activations", W1, b, P)
    if err:
        return _report(False, err)
    A = A.double()
    want = torch.relu(W1 @ P + b[:, None])
    if tuple(A.shape) == (N, k):
        return _report(
            False,
            f"expected shape (k, N) = ({k}, {N}) with neurons as rows; got ({N}, {k}): transpose",
        )
    if tuple(A.shape) != (k, N):
        return _report(False, f"expected shape (k, N) = ({k}, {N}), got {tuple(A.shape)}")
    if torch.allclose(A, want, atol=1e-6):
        return _report(True, "single-feature activations match")
    if torch.allclose(A, W1 @ P + b[:, None], atol=1e-6):
        return _report(False, "negative values found: did you forget the ReLU?")
    if torch.allclose(A, torch.relu(W1 @ P), atol=1e-6):
        return _report(False, "close, but the bias is missing: the neuron sees W1 x + b")
    return _report(
        False,
        "values differ from ReLU(W1 P + b): feature j alone gives the input x = P e_j, the j-th "
        "column of P",
    )


def check_monosemantic(fn: Callable) -> bool:
    """``fn(sfa [k, N], threshold) -> bool Tensor [k]``: the paper's criterion."""
    sfa = torch.tensor(
        [
            [1.0, 0.0, 0.0, 0.0],
            [0.6, 0.4, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.9995, 0.0005],
            [0.0, 0.0, 0.995, 0.005],
            [0.0, 0.1, 0.1, 0.1],
        ],
        dtype=torch.float64,
    )
    want = [True, False, False, True, False, False]
    got, err = _call_tensor(fn, "is_monosemantic", sfa, 0.999)
    if err:
        return _report(False, err)
    got = [bool(v) for v in got.flatten().tolist()]
    if len(got) != len(want):
        return _report(False, f"expected one answer per neuron ({len(want)}), got {len(got)}")
    if got == want:
        return _report(True, "the 0.999 criterion is right, dead neurons included")
    if got[2] and not want[2]:
        return _report(
            False, "a dead neuron (all zeros) counts as monosemantic in your code: it should not"
        )
    if got[5]:
        return _report(
            False,
            "a neuron split evenly over three features passed: compare the top activation with "
            "the *sum* over features, not with the mean or the second largest",
        )
    if not got[3]:
        return _report(
            False,
            "a neuron whose top feature carries 99.95% of its activation failed the 0.999 "
            "criterion",
        )
    if got[4]:
        return _report(False, "a neuron at 99.5% passed a 0.999 threshold: check the comparison")
    return _report(False, f"expected {want}, got {got}")


# -- chapter 2 ------------------------------------------------------------------------------
def check_checkpoint_steps(fn: Callable) -> bool:
    """``fn(steps) -> list[int]``: the step counts after which the paper keeps a checkpoint
    (powers of two, plus the last step)."""
    cases = {100: [1, 2, 4, 8, 16, 32, 64, 100], 64: [1, 2, 4, 8, 16, 32, 64], 1: [1]}
    for steps, want in cases.items():
        out, err = _call(fn, steps)
        if err:
            return _report(False, err)
        got = sorted(int(s) for s in out)
        if got != want:
            if got and got[0] == 0:
                return _report(
                    False,
                    "0 is not a checkpoint: count completed steps, so the first one is after 1 "
                    "step",
                )
            if steps not in got:
                return _report(
                    False,
                    f"for {steps} steps the final weights ({steps}) should be kept too; got {got}",
                )
            return _report(False, f"for {steps} steps expected {want}, got {got}")
    return _report(True, "powers of two and the final step")


def check_bias_by_class(fn: Callable) -> bool:
    """``fn(sfa [k, N], bias [k]) -> (mean bias of mono neurons, mean bias of alive
    polysemantic neurons)`` with the 0.999 criterion."""
    sfa = torch.tensor(
        [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.0, 0.0], [0.3, 0.2]], dtype=torch.float64
    )
    bias = torch.tensor([-0.4, -0.2, 0.1, -3.0, 0.3], dtype=torch.float64)
    out, err = _call(fn, sfa, bias)
    if err:
        return _report(False, err)
    try:
        mono, poly = (float(v) for v in out)
    except (TypeError, ValueError):
        return _report(
            False, "return a pair: (mean bias of mono neurons, mean bias of polysemantic neurons)"
        )
    if math.isclose(mono, -0.3) and math.isclose(poly, 0.2):
        return _report(True, "mono -0.3, poly +0.2: dead neurons left out")
    if math.isclose(poly, (0.1 - 3.0 + 0.3) / 3):
        return _report(
            False, "the dead neuron (bias -3) is counted as polysemantic: leave dead neurons out"
        )
    return _report(False, f"expected (-0.3, 0.2), got ({mono:.3f}, {poly:.3f})")


# -- chapter 3 ------------------------------------------------------------------------------
def check_total_shrink(fn: Callable) -> bool:
    """``fn(decay, lr, steps) -> float``: decay * lr * (steps / 2), the total pull of bias decay."""
    cases = [
        ((0.03, 0.003, 2**17), 0.03 * 0.003 * 2**16),
        ((0.3, 0.01, 8000), 12.0),
        ((0.0, 0.01, 8000), 0.0),
    ]
    for args, want in cases:
        out, err = _call(fn, *args)
        if err:
            return _report(False, err)
        got = float(out)
        if not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12):
            if math.isclose(got, 2 * want, rel_tol=1e-6):
                return _report(
                    False, "twice the answer: decay acts during the first half of training only"
                )
            return _report(
                False,
                f"decay={args[0]}, lr={args[1]}, steps={args[2]}: expected {want:.4g}, "
                f"got {got:.4g}",
            )
    return _report(
        True, "B1's shrink is 5.9 (the paper's rows span about 0.2 to 59); the book recipe's is 12"
    )


def check_interference(fn: Callable) -> bool:
    """``fn(W1_row [m], P [m, N], f [B, N], j) -> Tensor [B']``: the input a neuron reading
    feature j receives from the other features, on samples where feature j is off."""
    g = torch.Generator().manual_seed(1)
    P = torch.randn(4, 6, generator=g, dtype=torch.float64)
    P = P / P.norm(dim=0)
    w = torch.randn(4, generator=g, dtype=torch.float64)
    f = torch.rand(50, 6, generator=g, dtype=torch.float64) * (torch.rand(50, 6, generator=g) < 0.3)
    j = 2
    off = f[:, j] == 0
    want = (f[off] @ P.T) @ w
    got, err = _call_tensor(fn, "interference", w, P, f, j)
    if err:
        return _report(False, err)
    got = got.double().flatten()
    if got.numel() == f.shape[0]:
        return _report(
            False,
            "keep only the samples where feature j is off: otherwise the neuron's own feature is "
            "mixed in",
        )
    if got.numel() != want.numel() or not torch.allclose(
        got.sort().values, want.sort().values, atol=1e-8
    ):
        return _report(False, "values differ: the neuron's input is w . x with x = P f")
    return _report(True, "interference computed on the samples where the neuron's feature is off")


# -- chapter 4 ------------------------------------------------------------------------------
def check_features_covered(fn: Callable) -> bool:
    """``fn(sfa [k, N]) -> float``: fraction of features owning at least one monosemantic neuron."""
    sfa = torch.tensor(
        [[1.0, 0, 0, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0.5, 0.5, 0], [0, 0, 0, 0]],
        dtype=torch.float64,
    )
    out, err = _call(fn, sfa)
    if err:
        return _report(False, err)
    got = float(out)
    if math.isclose(got, 0.5):
        return _report(
            True, "two of four features own a monosemantic neuron; the duplicate counts once"
        )
    if math.isclose(got, 0.75):
        return _report(
            False,
            "a feature with two monosemantic neurons was counted twice: count distinct features",
        )
    return _report(False, f"expected 0.5, got {got:.3f}")


# -- chapter 5 ------------------------------------------------------------------------------
def check_projector(fn: Callable) -> bool:
    """``fn(P [m, N]) -> Tensor [N, N]``: the orthogonal projector onto the row space of P."""
    g = torch.Generator().manual_seed(2)
    P = torch.randn(3, 7, generator=g, dtype=torch.float64)
    M, err = _call_tensor(fn, "projector", P)
    if err:
        return _report(False, err)
    M = M.double()
    if tuple(M.shape) != (7, 7):
        return _report(False, f"expected an N x N = 7 x 7 matrix, got {tuple(M.shape)}")
    if not torch.allclose(M @ M, M, atol=1e-8):
        return _report(False, "M @ M != M: a projector applied twice changes nothing more")
    if not torch.allclose(M, M.T, atol=1e-8):
        return _report(False, "not symmetric: an orthogonal projector equals its transpose")
    if not torch.allclose(M @ P.T, P.T, atol=1e-8):
        return _report(
            False, "rows of P are not kept: the projector must leave P's row space unchanged"
        )
    if abs(float(torch.trace(M)) - 3) > 1e-6:
        return _report(False, f"its trace (rank) is {float(torch.trace(M)):.2f}, expected m = 3")
    return _report(True, "P^T (P P^T)^-1 P: symmetric, idempotent, rank m")


# -- chapter 8 ------------------------------------------------------------------------------
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
