"""The paper's five claims, each one function over :class:`~monosem_lib.store.results.Results`.

Every function returns a :class:`Claim`: the paper's statement, the numbers it rests on, and
the checks that decide it, each with its margin from ``MARGINS`` (the one place margins are
set). ``Claim.check()`` raises an AssertionError naming every failed check and its numbers.
The science tests, every chapter's Checks cell and chapter 7 call these same functions, on
live runs at book scale or on stored data at any scale. Formatting lives in ``describe``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..analysis.metrics import METRICS
from ..store.results import Results, same_value
from .margins import CHECK_MARGINS, MARGINS

__all__ = [
    "MARGINS",
    "CHECK_MARGINS",
    "STATEMENTS",
    "Check",
    "Claim",
    "claim1",
    "claim2",
    "claim3",
    "claim4",
    "claim5",
    "CLAIMS",
    "Claim1",
    "Claim2",
    "Claim3",
    "Claim4",
    "Claim5",
    "Panel",
    "Series",
    "verdict_mark",
]


def verdict_mark(holds: bool | None) -> str:
    """The book's one verdict vocabulary: ✓ holds, ✗ does not hold, – not judged."""
    if holds is None:
        return "– not judged"
    return "✓ holds" if holds else "✗ does not hold"


@dataclass(frozen=True)
class Check:
    """One condition of a claim: what it asserts, whether it holds, the numbers behind it."""

    what: str
    holds: bool
    detail: str


@dataclass(frozen=True)
class Series:
    """One line (or set of bars) of a claim's figure: y by x, with a legend label."""

    label: str
    points: dict[Any, float]
    dashed: bool = False


@dataclass(frozen=True)
class Panel:
    """One panel of a claim's figure, as data: the book layer draws every claim's panels the
    same way (``scale_plots.claim_overlay``). ``xscale`` is ``log``, ``log2`` or
    ``categories`` (bars, one group per x)."""

    xlabel: str
    ylabel: str
    series: tuple[Series, ...]
    xscale: str = "log"


@dataclass(frozen=True)
class Claim:
    """A claim of the paper evaluated on some results; ``Claim1`` ... ``Claim5`` say how each
    is described in a line (``describe``) and drawn (``panels``).

    Attributes:
        numbers: what the checks rest on, by name.
        checks: the conditions, each with its margin.
        scale: where the results come from (``book``, ``paper-cpu``...), when known.
        number: 1 to 5 (a class attribute); ``statement`` the paper's statement.
    """

    numbers: dict[str, Any]
    checks: tuple[Check, ...]
    scale: str | None = None
    number: ClassVar[int] = 0
    statement: ClassVar[str] = ""

    @property
    def holds(self) -> bool:
        return all(c.holds for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.holds]

    def check(self) -> Claim:
        """Self if every check holds, else an AssertionError naming each failed one."""
        if not self.holds:
            lines = [f"claim {self.number} ({self.scale or 'these results'}) does not hold:"]
            lines += [f"  {c.what}: {c.detail}" for c in self.failed]
            raise AssertionError("\n".join(lines))
        return self

    def summary(self) -> str:
        """The numbers the claim rests on, in a few words."""
        raise NotImplementedError

    def panels(self) -> tuple[Panel, Panel]:
        """The claim's figure as data: two panels."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line: the numbers the claim rests on and whether it holds."""
        return f"{self.summary()} ({verdict_mark(self.holds)})"


def _check(what: str, holds: Any, detail: str) -> Check:
    return Check(what, bool(holds), detail)


def _round(values: dict) -> dict:
    return {k: (None if v is None else round(float(v), 4)) for k, v in values.items()}


def _measured(table: dict[Any, float | None], key: str) -> dict[Any, float]:
    """``table`` with every value a number; ValueError naming the values no seed measured."""
    missing = [value for value, x in table.items() if x is None]
    if missing:
        raise ValueError(f"no instance has a {key} at {missing}")
    return _known(table)


# -- the claims --------------------------------------------------------------------------------


def claim1(lr_sweep: Results, exclude_lrs: Sequence[float] = ()) -> Claim:
    """Across learning rates (seed means): losses agree, mono/N does not. ``exclude_lrs``
    drops rates that have not converged at this budget (the text says which)."""
    loss = _measured(lr_sweep.mean_by("lr", "final_loss", exclude_lrs), "final_loss")
    mono = _measured(lr_sweep.mean_by("lr", "mono_per_feature", exclude_lrs), "mono_per_feature")
    spread = max(loss.values()) / min(loss.values()) - 1
    span = max(mono.values()) - min(mono.values())
    lim, floor = MARGINS["claim1_loss_spread"], MARGINS["claim1_mono_span"]
    checks = (
        _check(f"losses agree within {lim:.0%}", spread < lim, f"spread {spread:.1%}"),
        _check(f"mono/N spans more than {floor}", span > floor, f"span {span:.2f}"),
    )
    numbers: dict[str, Any] = {"loss": _round(loss), "mono_per_feature": _round(mono)}
    numbers.update(loss_spread=spread, mono_span=span, excluded=list(exclude_lrs))
    return Claim1(numbers, checks, lr_sweep.scale)


def claim2(lr_sweep: Results) -> Claim:
    """Mean bias of monosemantic and of polysemantic neurons at each rate (seed means)."""
    mono = lr_sweep.mean_by("lr", "mean_bias_mono")
    poly = lr_sweep.mean_by("lr", "mean_bias_poly")
    low, high, gap = (MARGINS[f"claim2_{k}"] for k in ("mono_bias_low", "mono_bias_high", "gap"))
    known = _known(mono)
    checks = [_check("some rate has monosemantic neurons", known, f"mono biases {_round(mono)}")]
    for lr, m in known.items():
        p = poly[lr]
        checks.append(
            _check(f"lr {lr:g}: mono bias in ({low}, {high})", low < m < high, f"{m:+.3f}")
        )
        if p is not None:
            below = m < p - gap
            checks.append(
                _check(f"lr {lr:g}: mono below poly by {gap}", below, f"{m:+.3f} vs {p:+.3f}")
            )
    numbers = {"mono": _round(mono), "poly": _round(poly)}
    return Claim2(numbers, tuple(checks), lr_sweep.scale)


def claim3(baseline: Results, engineered: Results, rates: Sequence[float] | None = None) -> Claim:
    """The recipe against the baseline at each of ``rates`` (default: every rate both hold):
    seed-mean mono/N multiplied by ``claim3_mono_ratio`` and raised by ``claim3_mono_gain``,
    every engineered seed above every baseline seed, and a seed-mean loss at most
    ``claim3_loss_ratio`` times the baseline's."""
    base, eng = (r.by_value("lr", "mono_per_feature") for r in (baseline, engineered))
    base_l, eng_l = (r.mean_by("lr", "final_loss") for r in (baseline, engineered))
    shared = [lr for lr in base if any(same_value(lr, x) for x in eng)]
    rates = shared if rates is None else list(rates)
    checks = []
    for lr in rates:
        checks += _claim3_checks(_at(base, lr), _at(eng, lr), _at(base_l, lr), _at(eng_l, lr), lr)
    numbers = {
        "mono_per_feature": {lr: (_mean(base[lr]), _mean(_at(eng, lr))) for lr in shared},
        "final_loss": {lr: (base_l[lr], _at(eng_l, lr)) for lr in shared},
        "seeds": {lr: (base[lr], _at(eng, lr)) for lr in shared},
        "rates": rates,
    }
    return Claim3(numbers, tuple(checks), engineered.scale)


def _claim3_checks(base: list, eng: list, base_loss: float, eng_loss: float, lr: float) -> list:
    ratio, gain, cost = (MARGINS[f"claim3_{k}"] for k in ("mono_ratio", "mono_gain", "loss_ratio"))
    b, e = _mean(base), _mean(eng)
    return [
        _check(
            f"lr {lr:g}: mono/N x{ratio:g} and +{gain}",
            e >= max(ratio * b, b + gain),
            f"mono/N {b:.2f} -> {e:.2f}",
        ),
        _check(
            f"lr {lr:g}: every engineered seed above every baseline seed",
            min(eng) > max(base),
            f"baseline {[round(x, 2) for x in base]}, engineered {[round(x, 2) for x in eng]}",
        ),
        _check(
            f"lr {lr:g}: loss within x{cost}",
            eng_loss <= cost * base_loss,
            f"loss {base_loss:.4f} -> {eng_loss:.4f}",
        ),
    ]


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values))


def _at(table: dict, lr: float):
    for key, value in table.items():
        if same_value(key, lr):
            return value
    raise KeyError(f"lr {lr} is not among {list(table)}")


def claim4(width_sweep: Results) -> Claim:
    """Coverage and mono/N against width k (seed means): coverage rises at every doubling
    from k = N to k = 4N, by more than ``claim4_rise`` in all; compute grows like k."""
    N = width_sweep.configs[0].N
    cov = dict(sorted(width_sweep.mean_by("k", "features_covered").items()))
    mono = dict(sorted(width_sweep.mean_by("k", "mono_per_feature").items()))
    loss = dict(sorted(width_sweep.mean_by("k", "final_loss").items()))
    span = [k for k in cov if N <= k <= 4 * N]
    rise = MARGINS["claim4_rise"]
    checks = [_check("widths N, 2N and 4N are present", len(span) >= 3, f"widths {list(cov)}")]
    if len(span) >= 2:
        steps = [cov[b] - cov[a] for a, b in zip(span, span[1:])]
        detail = ", ".join(f"k={k}: {cov[k]:.2f}" for k in span)
        checks.append(_check("coverage rises at every doubling", min(steps) > 0, detail))
        total = cov[span[-1]] - cov[span[0]]
        checks.append(_check(f"coverage rises by more than {rise}", total > rise, f"+{total:.2f}"))
    numbers = {
        "features_covered": _round(cov),
        "mono_per_feature": _round(mono),
        "final_loss": _round(loss),
        "compute_per_step": {k: k / min(cov) for k in cov},  # FLOPs ~ k: relative to narrowest
        "N": N,
    }
    return Claim4(numbers, tuple(checks), width_sweep.scale)


def claim5(report: Any, scale: str | None = None) -> Claim:
    """Claim 5 from an ``report.interpret`` report: its always-on subset of the
    residual block holds at least ``claim5_min_neurons`` neurons and applies a global,
    low-rank correction (the report's verdict). The whole residual block is reported too."""
    sets = {key: s for key, s in report.sets.items()}
    numbers = {}
    for key, s in sets.items():
        sub = s.subspace
        numbers[key] = {
            "neurons": s.count,
            "near_one": None if sub is None else sub.near_one,
            "rank_bound": None if sub is None else sub.rank_bound,
            "cosine_target": None if sub is None else round(sub.cosine_target, 3),
            "acts_linearly": s.verdicts["acts_linearly"].holds,
            "ablation_loss_ratio": s.verdicts["ablation_matters"].value,
            "global_correction": s.verdicts["global_correction"].holds,
        }
    floor = int(MARGINS["claim5_min_neurons"])
    on = numbers["always_on"]
    checks = (
        _check(
            f"the always-on subset has at least {floor} neurons",
            on["neurons"] >= floor,
            f"{on['neurons']}",
        ),
        _check("it applies a global low-rank correction", on["global_correction"], f"{on}"),
    )
    return Claim5(numbers, checks, scale)


# -- each claim: its statement, its one-line summary and its figure ----------------------------

_LR = "learning rate"
_MONO = METRICS["mono_per_feature"].label


def _width(k: int, N: int) -> str:
    """k as a multiple of N: 'N', '2N', 'N/4'."""
    if k >= N:
        return "N" if k == N else f"{k // N}N"
    return f"N/{N // k}"


def _known(table: dict[Any, float | None]) -> dict[Any, float]:
    return {k: v for k, v in table.items() if v is not None}


@dataclass(frozen=True)
class Claim1(Claim):
    number: ClassVar[int] = 1
    statement: ClassVar[str] = (
        "Runs with the same loss sit in different minima with very different monosemanticity."
    )

    def summary(self) -> str:
        n, mono = self.numbers, self.numbers["mono_per_feature"].values()
        return f"loss spread {n['loss_spread']:.1%}, mono/N {min(mono):.2f} to {max(mono):.2f}"

    def panels(self) -> tuple[Panel, Panel]:
        loss = self.numbers["loss"]
        low = min(loss.values())
        return (
            Panel(_LR, "loss / lowest loss", (Series("", {k: v / low for k, v in loss.items()}),)),
            Panel(_LR, _MONO, (Series("", self.numbers["mono_per_feature"]),)),
        )


@dataclass(frozen=True)
class Claim2(Claim):
    number: ClassVar[int] = 2
    statement: ClassVar[str] = (
        "Monosemantic neurons carry moderate negative biases; polysemantic ones small positive "
        "ones."
    )

    def summary(self) -> str:
        mono = list(_known(self.numbers["mono"]).values())
        poly = list(_known(self.numbers["poly"]).values())
        if not (mono and poly):
            return "no classes"
        return (
            f"mono biases {min(mono):+.2f} to {max(mono):+.2f}; "
            f"polysemantic {min(poly):+.2f} to {max(poly):+.2f}"
        )

    def panels(self) -> tuple[Panel, Panel]:
        return (
            Panel(_LR, "mean bias, monosemantic", (Series("", _known(self.numbers["mono"])),)),
            Panel(_LR, "mean bias, polysemantic", (Series("", _known(self.numbers["poly"])),)),
        )


@dataclass(frozen=True)
class Claim3(Claim):
    number: ClassVar[int] = 3
    statement: ClassVar[str] = (
        "A negative initial bias plus bias decay engineers highly monosemantic models at no "
        "loss cost."
    )

    def summary(self) -> str:
        pairs = self.numbers["mono_per_feature"]
        rates = self.numbers["rates"] or list(pairs)
        parts = [
            f"lr {lr:g}: {pairs[lr][0]:.2f} -> {pairs[lr][1]:.2f}" for lr in rates if lr in pairs
        ]
        return "mono/N " + "; ".join(parts)

    def panels(self) -> tuple[Panel, Panel]:
        pairs = self.numbers["mono_per_feature"]
        base = Series("LR1", {k: v[0] for k, v in pairs.items()}, dashed=True)
        eng = Series("LR3", {k: v[1] for k, v in pairs.items()})
        gain = Series("", {k: v[1] - v[0] for k, v in pairs.items()})
        return Panel(_LR, _MONO, (base, eng)), Panel(_LR, "gain of LR3 over LR1", (gain,))


@dataclass(frozen=True)
class Claim4(Claim):
    number: ClassVar[int] = 4
    statement: ClassVar[str] = (
        "More neurons per layer make models more monosemantic, at a higher compute cost."
    )

    def summary(self) -> str:
        N, cov = self.numbers["N"], self.numbers["features_covered"]
        return "coverage at k = " + ", ".join(f"{_width(k, N)}: {v:.2f}" for k, v in cov.items())

    def panels(self) -> tuple[Panel, Panel]:
        N = self.numbers["N"]

        def by_ratio(key: str) -> tuple[Series, ...]:
            return (Series("", {k / N: v for k, v in self.numbers[key].items()}),)

        return (
            Panel("neurons per feature, k / N", METRICS["features_covered"].label,
                  by_ratio("features_covered"), "log2"),
            Panel("k / N", _MONO, by_ratio("mono_per_feature"), "log2"),
        )  # fmt: skip


@dataclass(frozen=True)
class Claim5(Claim):
    number: ClassVar[int] = 5
    statement: ClassVar[str] = (
        "The residual polysemantic neurons act as a low-rank approximation of the identity "
        "that applies a global correction to the output."
    )

    def summary(self) -> str:
        return "; ".join(
            f"{key}: {s['neurons']} neurons, {s['near_one']} singular values near 1, "
            f"cosine {s['cosine_target']}"
            for key, s in self.numbers.items()
        )

    def panels(self) -> tuple[Panel, Panel]:
        sets = {k.replace("_", " "): s for k, s in self.numbers.items()}
        cos = {k: s["cosine_target"] or 0.0 for k, s in sets.items()}
        near = {k: s["near_one"] / s["rank_bound"] for k, s in sets.items()}
        return (
            Panel("", "cosine with the linear target", (Series("", cos),), "categories"),
            Panel("", "singular values near 1 / m", (Series("", near),), "categories"),
        )


CLAIMS: tuple[type[Claim], ...] = (Claim1, Claim2, Claim3, Claim4, Claim5)
STATEMENTS: dict[int, str] = {c.number: c.statement for c in CLAIMS}
