"""Each checker accepts a right answer and names the mistake in typical wrong ones."""

import pytest
import torch

from monosem_lib import exercises as ex


def _check(checker, fn, capsys):
    ok = checker(fn)
    return ok, capsys.readouterr().out


def good_sampler(N, eps, batch, g):
    return torch.rand(batch, N, generator=g) * (torch.rand(batch, N, generator=g) < eps)


@pytest.mark.parametrize(
    "fn,fragment",
    [
        (good_sampler, None),
        (
            lambda N, eps, batch, g: (torch.rand(batch, N, generator=g) < eps).float(),
            "uniform values",
        ),
        (
            lambda N, eps, batch, g: torch.rand(batch, N, generator=g)
            * (torch.rand(batch, N, generator=g) > eps),
            "*off*",
        ),
        (lambda N, eps, batch, g: good_sampler(N, eps, batch, g).T, "transpose"),
        (lambda N, eps, batch, g: 2 * good_sampler(N, eps, batch, g), "[0, 1]"),
        (lambda N, eps, batch, g: (_ for _ in ()).throw(NotImplementedError), "not attempted"),
    ],
)
def test_sampler_checker(fn, fragment, capsys):
    ok, out = _check(ex.check_sampler, fn, capsys)
    assert ok == (fragment is None), out
    if fragment:
        assert fragment in out


@pytest.mark.parametrize(
    "fn,fragment",
    [
        (lambda W1, b, P: torch.relu(W1 @ P + b[:, None]), None),
        (lambda W1, b, P: W1 @ P + b[:, None], "ReLU"),
        (lambda W1, b, P: torch.relu(W1 @ P), "bias"),
        (lambda W1, b, P: torch.relu(W1 @ P + b[:, None]).T, "transpose"),
        (lambda W1, b, P: "oops", "torch.Tensor"),
    ],
)
def test_single_feature_activation_checker(fn, fragment, capsys):
    ok, out = _check(ex.check_single_feature_activations, fn, capsys)
    assert ok == (fragment is None), out
    if fragment:
        assert fragment in out


def _mono_right(sfa, t):
    total = sfa.clamp(min=0).sum(1)
    return (total > 0) & (sfa.max(1).values > t * total)


@pytest.mark.parametrize(
    "fn,fragment",
    [
        (_mono_right, None),
        (lambda sfa, t: sfa.max(1).values >= t * sfa.sum(1), "dead neuron"),
        (lambda sfa, t: (sfa.sum(1) > 0) & (sfa.max(1).values > t * sfa.mean(1)), "*sum*"),
        (lambda sfa, t: (sfa.sum(1) > 0) & (sfa.max(1).values > 0.99 * sfa.sum(1)), "99.5%"),
    ],
)
def test_monosemantic_checker(fn, fragment, capsys):
    ok, out = _check(ex.check_monosemantic, fn, capsys)
    assert ok == (fragment is None), out
    if fragment:
        assert fragment in out


def test_checkpoint_and_bias_checkers(capsys):
    right = lambda steps: sorted(
        {2**i for i in range(steps.bit_length()) if 2**i <= steps} | {steps}
    )  # noqa: E731
    assert _check(ex.check_checkpoint_steps, right, capsys)[0]
    ok, out = _check(
        ex.check_checkpoint_steps,
        lambda s: [2**i for i in range(s.bit_length()) if 2**i <= s],
        capsys,
    )
    assert not ok and "final weights" in out
    ok, out = _check(ex.check_checkpoint_steps, lambda s: [0] + right(s), capsys)
    assert not ok and "0 is not a checkpoint" in out

    def by_class(sfa, bias, count_dead=False):
        total = sfa.sum(1)
        mono = (total > 0) & (sfa.max(1).values > 0.999 * total)
        poly = ~mono & ((total > 0) | count_dead)
        return bias[mono].mean(), bias[poly].mean()

    assert _check(ex.check_bias_by_class, by_class, capsys)[0]
    ok, out = _check(ex.check_bias_by_class, lambda s, b: by_class(s, b, True), capsys)
    assert not ok and "dead neuron" in out


def test_shrink_interference_coverage_projector_checkers(capsys):
    assert _check(ex.check_total_shrink, lambda d, lr, s: d * lr * s / 2, capsys)[0]
    ok, out = _check(ex.check_total_shrink, lambda d, lr, s: d * lr * s, capsys)
    assert not ok and "first half" in out

    right = lambda w, P, f, j: (f[f[:, j] == 0] @ P.T) @ w  # noqa: E731
    assert _check(ex.check_interference, right, capsys)[0]
    ok, out = _check(ex.check_interference, lambda w, P, f, j: (f @ P.T) @ w, capsys)
    assert not ok and "feature j is off" in out

    def covered(sfa, distinct=True):
        total = sfa.sum(1)
        mono = (total > 0) & (sfa.max(1).values > 0.999 * total)
        top = sfa.argmax(1)[mono]
        return (top.unique().numel() if distinct else top.numel()) / sfa.shape[1]

    assert _check(ex.check_features_covered, covered, capsys)[0]
    ok, out = _check(ex.check_features_covered, lambda s: covered(s, False), capsys)
    assert not ok and "counted twice" in out

    assert _check(ex.check_projector, lambda P: P.T @ torch.linalg.solve(P @ P.T, P), capsys)[0]
    ok, out = _check(ex.check_projector, lambda P: P.T @ P, capsys)
    assert not ok and "M @ M != M" in out


# -- chapter 8 ------------------------------------------------------------------------------
def test_the_sae_checkers_accept_solutions_and_explain_mistakes(capsys):
    def mmcs(atoms, truth):
        a, t = atoms / atoms.norm(dim=0), truth / truth.norm(dim=0)
        return float((a.T @ t).max(0).values.mean())

    def topk(pre, k):
        vals, idx = pre.topk(k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, idx, vals).clamp(min=0)

    assert ex.check_mmcs(mmcs) and ex.check_topk(topk)
    assert not ex.check_mmcs(lambda a, t: float((a.T @ t).max(0).values.mean()))
    assert "normalise" in capsys.readouterr().out
    assert not ex.check_mmcs(lambda a, t: float((a.T @ t).abs().max(0).values.mean()))
    assert not ex.check_topk(lambda p, k: torch.zeros_like(p).scatter(-1, *p.topk(k)[::-1]))
    assert "ReLU" in capsys.readouterr().out
    assert not ex.check_topk(lambda p, k: p.clamp(min=0))
    assert "More than k" in capsys.readouterr().out

    def not_done(pre, k):
        raise NotImplementedError

    assert not ex.check_topk(not_done)
    assert "not attempted" in capsys.readouterr().out
