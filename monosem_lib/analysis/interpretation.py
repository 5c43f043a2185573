"""Reverse-engineering a trained model, one instance at a time.

Primitives: how often each neuron fires on real inputs, the loss after ablating or
linearising a set of neurons, and the singular values of the linear map a neuron subset S
applies, W2[:, S] W1[S, :] P. On top of them, ``classify_neurons`` sorts neurons into the
classes the paper found and ``interpret`` writes the whole report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Union

import torch
from torch import Tensor

from ..core.config import Config
from ..core.data import make_world
from ..core.model import ToyModel, activation
from ..core.training import Run
from .metrics import MONO_THRESHOLD, is_signed, neuron_stats

__all__ = [
    "CLASSES",
    "VERDICT_RULES",
    "NeuronClasses",
    "NeuronSet",
    "Report",
    "SubspaceAnalysis",
    "Verdict",
    "VerdictRule",
    "ablation_loss",
    "activity_fraction",
    "classify_neurons",
    "compare_sets",
    "decide",
    "feature_response",
    "FeatureResponse",
    "LinearTarget",
    "format_report",
    "format_verdict",
    "interference",
    "interpret",
    "linear_target",
    "matrix_cosine",
    "neuron_alignment",
    "report_dict",
    "row_space_projector",
    "subset_map",
    "subspace_analysis",
]

CLASSES = ("monosemantic", "near-monosemantic", "always-on", "polysemantic", "dead")
EVAL_SAMPLES = 2**14

# Every conclusion the report draws is a ``Verdict`` decided by one of these thresholds.
ALWAYS_ON_ACTIVITY = 0.9  # always-on: active on at least this fraction of real inputs
FIT_RATIO = 0.5  # fits_task: loss at most this fraction of the zero predictor's
LINEAR_TOLERANCE = 0.1  # acts_linearly: linearising raises the loss by at most this fraction
NEAR_ONE_BAND = (0.8, 1.2)  # a singular value "near 1"
NEAR_ONE_FRACTION = 0.5  # low_rank_identity: at least this fraction of the m possible ones near 1
COSINE_THRESHOLD = 0.85  # matches_target: cosine of the map with its linear target
ABLATION_FACTOR = 2.0  # ablation_matters: zeroing the set multiplies the loss at least this much
MONO_FACTOR = (
    1.5  # outweighs_monosemantic: and costs this much more than as many random monosemantic ones
)


def _instance(run: Run, instance: int) -> tuple[ToyModel, Tensor]:
    if not 0 <= instance < run.instances:
        raise IndexError(
            f"instance={instance} is out of range: the run has {run.instances} instance(s)"
        )
    return run.model.select(instance), run.P[instance]


def _eval_batches(run: Run, instance: int, samples: int):
    cfg = run.configs[instance]
    chunk = min(cfg.batch, samples)
    world = make_world(cfg.replace(batch=chunk, device=str(run.model.flat.device)), stream="eval")
    n = 0
    while n < samples:
        yield world.sample()
        n += chunk


Neurons = Union[Tensor, Sequence[int], None]  # typing.Union: the package supports Python 3.9
"""A set of neurons: indices, a [k] boolean mask, or None for none."""


def _mask(k: int, neurons: Neurons) -> Tensor:
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
    model, _ = _instance(run, instance)
    active = torch.zeros(model.k, dtype=torch.float64)
    n = 0
    for _, x, _ in _eval_batches(run, instance, samples):
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
    model, _ = _instance(run, instance)
    zero = _mask(model.k, neurons).to(model.flat.device)
    lin = _mask(model.k, linearize).to(model.flat.device)
    W2 = model.W2[0]
    total, n = 0.0, 0
    for _, x, target in _eval_batches(run, instance, samples):
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
    model, P = _instance(run, instance)
    if feature is None:
        sfa = model.hidden(P.to(model.flat.dtype).T.unsqueeze(0))[0]
        feature = int(sfa[:, neuron].argmax())
    w = model.W1[0, neuron]
    out = []
    for f, x, _ in _eval_batches(run, instance, samples):
        off = f[:, feature] == 0
        out.append((x[off] @ w).double().cpu())
    return torch.cat(out)


def subset_map(run: Run, neurons: Neurons, instance: int = 0) -> Tensor:
    """W2[:, S] W1[S, :] P for the neuron subset S: the linear map from features to outputs
    that S applies when its neurons act linearly. Shape [out, N] (float64, CPU)."""
    model, P = _instance(run, instance)
    S = _mask(model.k, neurons)
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
    model, P = _instance(run, instance)
    P = P.double().cpu()
    W1, W2 = model.W1[0].double().cpu(), model.W2[0].double().cpu()
    sfa = (
        model.hidden(P.to(model.flat.dtype).T.unsqueeze(0).to(model.flat.device))[0].double().cpu()
    )
    feature = sfa.argmax(0)
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
    model, P = _instance(run, instance)
    values = torch.linspace(0, 1, 51, dtype=torch.float64) if values is None else values.double()
    x = (values[:, None] * P[:, feature].double().cpu()[None, :]).to(
        model.flat.device, model.flat.dtype
    )
    h = model.hidden(x.unsqueeze(0))[0].double().cpu()  # [V, k]
    idx = torch.as_tensor(neurons, dtype=torch.long)
    return FeatureResponse(values, (h[:, idx] * model.W2[0, feature, idx].double().cpu()).T)


@dataclass
class NeuronClasses:
    """Per-neuron classification of one instance (all tensors have shape [k])."""

    labels: list[str]
    share: Tensor
    n_features: Tensor
    activity: Tensor
    bias: Tensor
    top_feature: Tensor

    def mask(self, label: str) -> Tensor:
        """[k] bool: the neurons of class ``label`` (one of ``CLASSES``)."""
        if label not in CLASSES:
            raise ValueError(f"label={label!r} is not allowed: must be one of {', '.join(CLASSES)}")
        return torch.tensor([lab == label for lab in self.labels])

    def counts(self) -> dict[str, int]:
        return {c: sum(lab == c for lab in self.labels) for c in CLASSES}

    def mean_bias(self) -> dict[str, float | None]:
        out = {}
        for c in CLASSES:
            m = self.mask(c)
            out[c] = float(self.bias[m].mean()) if bool(m.any()) else None
        return out


def classify_neurons(
    run: Run,
    instance: int = 0,
    threshold: float = MONO_THRESHOLD,
    always_on: float = ALWAYS_ON_ACTIVITY,
    near_max_features: int = 5,
    samples: int = EVAL_SAMPLES,
) -> NeuronClasses:
    """Sort the neurons of one instance into ``CLASSES``.

    * dead: no feature alone activates it;
    * monosemantic: one feature carries more than ``threshold`` of its single-feature
      activations (the paper's criterion);
    * always-on: active on at least ``always_on`` of real inputs;
    * near-monosemantic: 2 to ``near_max_features`` features carry ``threshold`` of it;
    * polysemantic: the rest.
    """
    model, P = _instance(run, instance)
    st = neuron_stats(model, P.unsqueeze(0), threshold, signed=is_signed(run.configs[instance]))
    sfa = st.sfa[0].clamp(min=0).double()
    total = sfa.sum(1, keepdim=True).clamp(min=1e-30)
    cum = (sfa.sort(1, descending=True).values / total).cumsum(1)
    n_features = (cum < threshold).sum(1) + 1  # features needed to carry `threshold`
    activity = activity_fraction(run, instance, samples)
    labels = []
    for n in range(model.k):
        if st.dead[0, n]:
            labels.append("dead")
        elif st.mono[0, n]:
            labels.append("monosemantic")
        elif activity[n] >= always_on:
            labels.append("always-on")
        elif n_features[n] <= near_max_features:
            labels.append("near-monosemantic")
        else:
            labels.append("polysemantic")
    return NeuronClasses(labels, st.share[0], n_features, activity, st.bias[0], st.feature[0])


# -- verdicts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerdictRule:
    """How one verdict is decided: it holds when ``measure`` compares with ``threshold`` as
    ``comparison`` says (``"<="`` or ``">="``). ``statement`` is what the report affirms
    when it holds."""

    statement: str
    measure: str
    comparison: str
    threshold: float


VERDICT_RULES: dict[str, VerdictRule] = {
    "fits_task": VerdictRule(
        "the model fits its task", "loss / zero-predictor loss", "<=", FIT_RATIO
    ),
    "acts_linearly": VerdictRule(
        "they act linearly",
        "relative loss change with their nonlinearity removed",
        "<=",
        LINEAR_TOLERANCE,
    ),
    "low_rank_identity": VerdictRule(
        "their map is a low-rank approximation of the identity",
        f"fraction of the m possible singular values in {NEAR_ONE_BAND}",
        ">=",
        NEAR_ONE_FRACTION,
    ),
    "matches_target": VerdictRule(
        "their map matches its linear target", "cosine with the target", ">=", COSINE_THRESHOLD
    ),
    "ablation_matters": VerdictRule(
        "zeroing them matters", "loss with them zeroed / loss", ">=", ABLATION_FACTOR
    ),
    "outweighs_monosemantic": VerdictRule(
        "zeroing them costs more than zeroing as many monosemantic neurons",
        "their ablation loss / that of as many random monosemantic neurons",
        ">=",
        MONO_FACTOR,
    ),
    "global_correction": VerdictRule(
        "claim 5: they apply a linear global correction to every output",
        "fraction of the verdicts above that hold (those that apply)",
        ">=",
        1.0,
    ),
}


@dataclass(frozen=True)
class Verdict:
    """One conclusion of the report, decided by ``VERDICT_RULES[name]``.

    Attributes:
        name: a key of ``VERDICT_RULES``.
        holds: True or False; None when the verdict does not apply (``note`` says why).
        value: the measured number that decides it (None when it does not apply).
        note: why it does not apply, or the unmet precondition that makes it False.
    """

    name: str
    holds: bool | None
    value: float | None
    note: str | None = None

    @property
    def rule(self) -> VerdictRule:
        """The rule that decides this verdict."""
        return VERDICT_RULES[self.name]

    def to_dict(self) -> dict:
        """The verdict with its number and threshold, for JSON."""
        r = self.rule
        return {
            "holds": self.holds,
            "value": self.value,
            "threshold": r.threshold,
            "comparison": r.comparison,
            "measure": r.measure,
            "note": self.note,
        }


def decide(
    name: str, value: float | None, requires: Verdict | None = None, note: str | None = None
) -> Verdict:
    """The verdict ``name`` for the measured ``value``.

    With ``value=None`` the verdict does not apply and ``note`` says why (``note`` is
    ignored otherwise). A verdict that
    ``requires`` another one (the model must fit its task before its neurons can be said to
    compute anything) is False, with the value still reported, when that one does not hold.
    """
    if name not in VERDICT_RULES:
        raise ValueError(
            f"verdict {name!r} is not allowed: must be one of {', '.join(VERDICT_RULES)}"
        )
    if value is None:
        return Verdict(name, None, None, note)
    rule = VERDICT_RULES[name]
    passes = value <= rule.threshold if rule.comparison == "<=" else value >= rule.threshold
    if requires is not None and not requires.holds:
        return Verdict(name, False, float(value), f"requires {requires.name}, which does not hold")
    return Verdict(name, bool(passes), float(value))


# -- the report: compute ------------------------------------------------------------------


@dataclass
class NeuronSet:
    """One set of neurons of an instance and what happens when it is linearised or zeroed.

    Attributes:
        key: ``residual_block``, ``always_on``, ``near_monosemantic`` or ``polysemantic``.
        description: what the set is, in words.
        neurons: [n] neuron indices.
        mean_activity, mean_share, mean_features, mean_bias: means over the set of the
            fraction of inputs that activate a neuron, its top single-feature share, how many
            features carry ``MONO_THRESHOLD`` of its single-feature activations, and its bias
            (None if the set is empty).
        linearized_loss: loss with the set's nonlinearity replaced by the identity.
        ablation_loss: loss with the set zeroed.
        random_monosemantic_loss: loss with as many random monosemantic neurons zeroed
            (None when there are fewer monosemantic neurons than the set has).
        subspace: the set's linear map against the task's target (None for abs, for an
            empty set and for the sets the always-on cut leaves out).
        verdicts: name -> ``Verdict``.
    """

    key: str
    description: str
    neurons: Tensor
    mean_activity: float | None
    mean_share: float | None
    mean_features: float | None
    mean_bias: float | None
    linearized_loss: float | None
    ablation_loss: float | None
    random_monosemantic_loss: float | None
    subspace: SubspaceAnalysis | None
    verdicts: dict[str, Verdict]

    @property
    def count(self) -> int:
        """How many neurons the set has."""
        return int(self.neurons.numel())


SET_DESCRIPTIONS = {
    "residual_block": "the whole residual block: every alive neuron that is not monosemantic",
    "always_on": (
        "the always-on subset: residual neurons active on at least "
        f"{ALWAYS_ON_ACTIVITY:.0%} of inputs"
    ),
    "near_monosemantic": (
        "near-monosemantic neurons: 2 to 5 features carry their single-feature activations"
    ),
    "polysemantic": "the other polysemantic neurons",
}


@dataclass
class _Context:
    run: Run
    instance: int
    samples: int
    seed: int
    classes: NeuronClasses
    loss: float
    fit: Verdict


def _mean(values: Tensor, mask: Tensor) -> float | None:
    return float(values[mask].double().mean()) if bool(mask.any()) else None


def _random_monosemantic_loss(ctx: _Context, n: int) -> float | None:
    mono = ctx.classes.mask("monosemantic").nonzero().flatten()
    if n == 0 or len(mono) < n:
        return None
    g = torch.Generator().manual_seed(ctx.seed)
    pick = mono[torch.randperm(len(mono), generator=g)[:n]]
    return ablation_loss(ctx.run, pick, ctx.instance, ctx.samples)


def _analyse_set(ctx: _Context, key: str, mask: Tensor, with_map: bool) -> NeuronSet:
    """Measure one set: losses when linearised and zeroed, and (``with_map``) its map."""
    n = int(mask.sum())
    c = ctx.classes
    lin = abl = rand = None
    sub = None
    if n:
        lin = ablation_loss(ctx.run, None, ctx.instance, ctx.samples, linearize=mask)
        abl = ablation_loss(ctx.run, mask, ctx.instance, ctx.samples)
        rand = _random_monosemantic_loss(ctx, n) if with_map else None
        if with_map and linear_target(ctx.run, ctx.instance).matrix is not None:
            sub = subspace_analysis(ctx.run, mask, ctx.instance)
    s = NeuronSet(
        key,
        SET_DESCRIPTIONS[key],
        mask.nonzero().flatten(),
        _mean(c.activity, mask),
        _mean(c.share, mask),
        _mean(c.n_features, mask),
        _mean(c.bias, mask),
        lin,
        abl,
        rand,
        sub,
        {},
    )
    s.verdicts = _set_verdicts(ctx, s, with_map)
    return s


def _set_verdicts(ctx: _Context, s: NeuronSet, with_map: bool) -> dict[str, Verdict]:
    """Decide every verdict about one measured set."""
    task = ctx.run.configs[ctx.instance].task
    names = ["acts_linearly", "ablation_matters"]
    if with_map:
        names += [
            "outweighs_monosemantic",
            "matches_target",
            "low_rank_identity",
            "global_correction",
        ]
    if not s.count:
        return {name: decide(name, None, note="the set is empty") for name in names}
    fit, base, sub = ctx.fit, max(ctx.loss, 1e-30), s.subspace
    v = {
        "acts_linearly": decide("acts_linearly", s.linearized_loss / base - 1, fit),
        "ablation_matters": decide("ablation_matters", s.ablation_loss / base, fit),
    }
    if not with_map:
        return v
    rand = s.random_monosemantic_loss
    v["outweighs_monosemantic"] = decide(
        "outweighs_monosemantic",
        None if rand is None else s.ablation_loss / rand,
        fit,
        note=None
        if rand is not None
        else f"fewer than {s.count} monosemantic neurons to compare with",
    )
    no_target = f"the {task} task has no linear target"
    v["matches_target"] = decide(
        "matches_target", None if sub is None else sub.cosine_target, fit, note=no_target
    )
    v["low_rank_identity"] = decide(
        "low_rank_identity",
        sub.near_one / sub.rank_bound if sub is not None and task == "decoder" else None,
        fit,
        note=f"the {task} task's target is not an identity",
    )
    parts = [
        v[n] for n in ("acts_linearly", "low_rank_identity", "matches_target", "ablation_matters")
    ]
    applied = [p for p in parts if p.holds is not None]
    v["global_correction"] = decide(
        "global_correction",
        sum(bool(p.holds) for p in applied) / len(applied) if sub is not None else None,
        fit,
        note=no_target,
    )
    return {name: v[name] for name in names}


@dataclass
class Report:
    """The reverse-engineering report of one instance (``interpret``'s result).

    Attributes:
        instance: which instance of the run.
        config: its config.
        classes: the neuron classes.
        loss, zero_loss: the intact model's loss on evaluation samples and the zero
            predictor's exact loss.
        fit: the ``fits_task`` verdict, which every verdict about neurons requires.
        sets: claim 5's two sets, ``residual_block`` (the paper's) then ``always_on``
            (the book's cut of it).
        excluded: the classes the always-on cut leaves out, ``near_monosemantic`` and
            ``polysemantic``, with their own linearisation and ablation.
        ablations: loss with each group zeroed, under stable keys (``none``,
            ``residual_block``, ``always_on``, ``random_monosemantic``, ``near_monosemantic``,
            ``polysemantic``, ``monosemantic``); None for an empty group.
        ablation_counts: how many neurons each ablation zeroes, same keys.
        applicable: which analyses apply to this task.
        target: the name of the task's linear target, or why it has none.
    """

    instance: int
    config: Config
    classes: NeuronClasses
    loss: float
    zero_loss: float
    fit: Verdict
    sets: dict[str, NeuronSet]
    excluded: dict[str, NeuronSet]
    ablations: dict[str, float | None]
    ablation_counts: dict[str, int]
    applicable: dict[str, bool]
    target: str

    @property
    def text(self) -> str:
        """The report as text (``format_report``), what the CLI prints."""
        return format_report(self)

    def to_dict(self) -> dict:
        """The report as plain JSON-ready data (``report_dict``)."""
        return report_dict(self)


def _ablation_table(ctx: _Context, sets: dict[str, NeuronSet], excluded: dict[str, NeuronSet]):
    """Losses with each group zeroed, and the group sizes, under stable keys."""
    mono = ctx.classes.mask("monosemantic")
    always = sets["always_on"]
    groups = {**sets, **excluded}
    table = {
        "none": ctx.loss,
        **{k: s.ablation_loss for k, s in groups.items()},
        "random_monosemantic": always.random_monosemantic_loss,
        "monosemantic": ablation_loss(ctx.run, mono, ctx.instance, ctx.samples)
        if bool(mono.any())
        else None,
    }
    counts = {
        "none": 0,
        **{k: s.count for k, s in groups.items()},
        "random_monosemantic": always.count if always.random_monosemantic_loss is not None else 0,
        "monosemantic": int(mono.sum()),
    }
    order = (
        "none",
        "residual_block",
        "always_on",
        "random_monosemantic",
        "near_monosemantic",
        "polysemantic",
        "monosemantic",
    )
    return {k: table[k] for k in order}, {k: counts[k] for k in order}


def interpret(run: Run, instance: int = 0, samples: int = EVAL_SAMPLES, seed: int = 0) -> Report:
    """Reverse-engineer one instance, claim 5 the paper's way and then the book's.

    Sorts the neurons into ``CLASSES``, then analyses the whole residual block (every alive
    neuron that is not monosemantic) and its always-on subset: the loss with their
    nonlinearity removed and with them zeroed, and their joint map W2[:, S] W1[S, :] P
    ([out, N]) against the task's ``linear_target``. The classes the cut leaves out are
    linearised and zeroed too. Every conclusion is a ``Verdict``. Random monosemantic
    neurons for the comparison ablation are drawn with ``seed``. Format the result with
    ``format_report`` or ``report_dict``.
    """
    from ..core.data import zero_loss

    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples={samples!r} is not allowed: must be a positive integer")
    _instance(run, instance)  # names a bad instance before any work
    cfg = run.configs[instance]
    classes = classify_neurons(run, instance, samples=samples)
    base = ablation_loss(run, None, instance, samples)
    zl = zero_loss(cfg, None if run.Q is None else run.Q[instance])
    ctx = _Context(run, instance, samples, seed, classes, base, decide("fits_task", base / zl))
    residual = ~classes.mask("monosemantic") & ~classes.mask("dead")
    sets = {
        "residual_block": _analyse_set(ctx, "residual_block", residual, True),
        "always_on": _analyse_set(ctx, "always_on", classes.mask("always-on"), True),
    }
    excluded = {
        key: _analyse_set(ctx, key, classes.mask(key.replace("_", "-")), False)
        for key in ("near_monosemantic", "polysemantic")
    }
    ablations, counts = _ablation_table(ctx, sets, excluded)
    applicable = {
        "linearisation": True,
        "ablation": True,
        "linear_map": cfg.task != "abs",
        "low_rank_identity": cfg.task == "decoder",
    }
    return Report(
        instance,
        cfg,
        classes,
        base,
        zl,
        ctx.fit,
        sets,
        excluded,
        ablations,
        counts,
        applicable,
        linear_target(run, instance).name,
    )


# -- the report: format -------------------------------------------------------------------


def format_verdict(v: Verdict) -> str:
    """One line: whether the verdict holds, what it affirms, and the number that decided it."""
    r = v.rule
    if v.holds is None:
        return f"  does not apply  {r.statement} ({v.note})"
    number = f"{r.measure} {v.value:.3g}"
    if v.holds:
        return f"  holds           {r.statement} ({number} {r.comparison} {r.threshold:g})"
    if v.note:
        return f"  does not hold   {r.statement} ({v.note}; {number})"
    return f"  does not hold   {r.statement} ({number}; needs {r.comparison} {r.threshold:g})"


def _cell(value, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def compare_sets(report: Report) -> dict[str, dict[str, float | int | bool | None]]:
    """Claim 5's two sets side by side: {set key: {row: value}}, the numbers first and then
    every verdict's ``holds``. Rows about the map appear only where the task has a linear
    target (``pandas.DataFrame(compare_sets(report))`` shows it as a table)."""
    out = {}
    for key, s in report.sets.items():
        sub = s.subspace
        col: dict[str, float | int | bool | None] = {
            "neurons": s.count,
            "mean activity": s.mean_activity,
            "mean bias": s.mean_bias,
            "loss, nonlinearity removed": s.linearized_loss,
            "loss, zeroed": s.ablation_loss,
            "loss, as many random monosemantic zeroed": s.random_monosemantic_loss,
        }
        if report.applicable["linear_map"]:
            col[f"singular values in {NEAR_ONE_BAND}"] = None if sub is None else sub.near_one
            col["cosine with the linear target"] = None if sub is None else sub.cosine_target
        if report.applicable["low_rank_identity"]:
            col["cosine with the identity"] = None if sub is None else sub.cosine_identity
        col.update({name: v.holds for name, v in s.verdicts.items()})
        out[key] = col
    return out


def _text_cell(row: str, value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    spec = {"mean activity": ".1%", "mean bias": "+.3f"}.get(
        row, ".3f" if row.startswith("cosine") else ".4f"
    )
    return format(value, spec)


def _sets_table(report: Report) -> list[str]:
    """The two claim-5 sets side by side (``compare_sets``) as text."""
    table = compare_sets(report)
    a, b = table["residual_block"], table["always_on"]
    lines = [f"  {'':<42} {'residual block':>15} {'always-on':>12}"]
    lines += [
        f"  {row:<42} {_text_cell(row, a[row]):>15} {_text_cell(row, b[row]):>12}" for row in a
    ]
    return lines


def _set_section(s: NeuronSet) -> list[str]:
    """A set's description, largest singular values and verdicts."""
    lines = ["", f"{s.description} ({s.count} neurons):"]
    if s.subspace is not None:
        top = ", ".join(f"{v:.2f}" for v in s.subspace.singular_values[:8].tolist())
        lines.append(
            f"  map W2[:,S] W1[S,:] P: largest singular values {top}; "
            f"rank at most m = {s.subspace.rank_bound}"
        )
    return lines + [format_verdict(v) for v in s.verdicts.values()]


def _cut_section(report: Report) -> list[str]:
    """Why the book cuts the residual block down to its always-on neurons, from the numbers."""
    lines = [
        "",
        (
            f"Why the cut: the always-on subset keeps the residual neurons active on at least "
            f"{ALWAYS_ON_ACTIVITY:.0%} of inputs. It leaves out:"
        ),
    ]
    for s in report.excluded.values():
        if not s.count:
            lines.append(f"  {s.key}: none")
            continue
        lines.append(
            f"  {s.key}: {s.count} neurons, mean bias {s.mean_bias:+.3f}, "
            f"active on {s.mean_activity:.1%} of inputs, {s.mean_features:.1f} features carry "
            f"{MONO_THRESHOLD} of their single-feature activations, "
            f"the top one {s.mean_share:.3f} (monosemantic needs > {MONO_THRESHOLD})"
        )
        lines += ["  " + format_verdict(s.verdicts["acts_linearly"])]
    return lines


def _header(report: Report) -> list[str]:
    cfg, counts, mb = report.config, report.classes.counts(), report.classes.mean_bias()
    lines = [
        (
            f"Reverse-engineering report: instance {report.instance} (seed={cfg.seed}, "
            f"lr={cfg.lr}, init_bias={cfg.init_bias}, bias_decay={cfg.bias_decay:.4g}, "
            f"l1={cfg.l1}; N={cfg.N}, m={cfg.m}, k={cfg.k}, task={cfg.task})"
        ),
        f"loss {report.loss:.4f} (zero predictor {report.zero_loss:.4f})",
        format_verdict(report.fit),
        "",
        "Neuron classes (count, mean bias, mean activity on real inputs):",
    ]
    for c in CLASSES:
        m = report.classes.mask(c)
        act = _cell(_mean(report.classes.activity, m), ".1%")
        lines.append(
            f"  {c:<18} {counts[c]:>5}   bias {_cell(mb[c], '+.3f'):>7}   active on {act} of inputs"
        )
    lines.append(f"  monosemantic neurons per feature: {counts['monosemantic'] / cfg.N:.3f}")
    return lines


def format_report(report: Report) -> str:
    """The text report: header and classes, claim 5 for both sets side by side with their
    verdicts, why the always-on cut is made, and the ablation table."""
    applies = [name for name, ok in report.applicable.items() if ok]
    skipped = [name for name, ok in report.applicable.items() if not ok]
    lines = _header(report) + [
        "",
        "Claim 5, the paper's way first: the whole residual block, then the book's always-on cut.",
        f"  analyses that apply to the {report.config.task} task: {', '.join(applies)}"
        + (f"; not: {', '.join(skipped)}" if skipped else ""),
        f"  linear target: {report.target}",
    ]
    lines += _sets_table(report)
    lines += [
        "  (verdict rows: yes = holds, no = does not hold, - = does not apply; reasons below)"
    ]
    for s in report.sets.values():
        lines += _set_section(s)
    lines += _cut_section(report)
    lines += ["", "Ablations (loss after zeroing the neurons):"]
    for key, value in report.ablations.items():
        ratio = "" if value is None else f"  ({value / max(report.loss, 1e-30):.1f}x)"
        lines.append(f"  {key:<22} {report.ablation_counts[key]:>5} neurons  {_cell(value)}{ratio}")
    return "\n".join(lines)


def _set_dict(s: NeuronSet) -> dict:
    sub = s.subspace
    return {
        "description": s.description,
        "count": s.count,
        "neurons": s.neurons.tolist(),
        "mean_activity": s.mean_activity,
        "mean_share": s.mean_share,
        "mean_features": s.mean_features,
        "mean_bias": s.mean_bias,
        "linearized_loss": s.linearized_loss,
        "ablation_loss": s.ablation_loss,
        "random_monosemantic_loss": s.random_monosemantic_loss,
        "map": None
        if sub is None
        else {
            "singular_values": [float(v) for v in sub.singular_values],
            "near_one": sub.near_one,
            "rank_bound": sub.rank_bound,
            "target": sub.target,
            "cosine_target": sub.cosine_target,
            "cosine_identity": sub.cosine_identity,
        },
        "verdicts": {name: v.to_dict() for name, v in s.verdicts.items()},
    }


def report_dict(report: Report) -> dict:
    """The report as plain data (what ``--json`` prints). Every verdict carries its value,
    threshold and comparison; nothing is NaN (a missing number is None)."""
    return {
        "instance": report.instance,
        "config": report.config.to_dict(),
        "loss": report.loss,
        "zero_loss": report.zero_loss,
        "fits_task": report.fit.to_dict(),
        "counts": report.classes.counts(),
        "mean_bias": report.classes.mean_bias(),
        "applicable": dict(report.applicable),
        "target": report.target,
        "sets": {key: _set_dict(s) for key, s in report.sets.items()},
        "excluded": {key: _set_dict(s) for key, s in report.excluded.items()},
        "ablations": dict(report.ablations),
        "ablation_counts": dict(report.ablation_counts),
    }
