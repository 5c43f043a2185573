"""The interpretation report of one instance (claim 5): the neuron sets, what happens when each
is linearised or zeroed, and the verdicts drawn from it. ``report_text`` formats it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.config import Config
from ..core.data import zero_loss
from ..core.training import Run
from .classes import ALWAYS_ON_ACTIVITY, NeuronClasses, classify_neurons
from .defaults import EVAL_SAMPLES
from .metrics import (
    mean_or_none,
)
from .probes import (
    SubspaceAnalysis,
    ablation_loss,
    instance_model,
    linear_target,
    subspace_analysis,
)
from .report_text import format_report, report_dict
from .verdicts import Verdict, decide

__all__ = ["NeuronSet", "Report", "interpret", "SET_DESCRIPTIONS"]


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
        mean_or_none(c.activity, mask),
        mean_or_none(c.share, mask),
        mean_or_none(c.n_features, mask),
        mean_or_none(c.bias, mask),
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
    lin, abl = s.linearized_loss, s.ablation_loss
    if lin is None or abl is None:  # measured for every set but the empty one
        return {name: decide(name, None, note="the set is empty") for name in names}
    fit, base, sub = ctx.fit, max(ctx.loss, 1e-30), s.subspace
    v = {
        "acts_linearly": decide("acts_linearly", lin / base - 1, fit),
        "ablation_matters": decide("ablation_matters", abl / base, fit),
    }
    if not with_map:
        return v
    rand = s.random_monosemantic_loss
    v["outweighs_monosemantic"] = decide(
        "outweighs_monosemantic",
        None if rand is None else abl / rand,
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

    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples={samples!r} is not allowed: must be a positive integer")
    model, P = instance_model(run, instance)  # names a bad instance before any work
    if not (bool(torch.isfinite(model.flat).all()) and bool(torch.isfinite(P).all())):
        raise ValueError(
            f"instance {instance} has non-finite weights (nan or inf): it cannot be "
            "interpreted; retrain it"
        )
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
