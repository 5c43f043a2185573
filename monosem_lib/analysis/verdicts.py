"""Verdicts: every conclusion the interpretation report draws, each decided by one named rule
(a measured number, a comparison and a threshold stated once here).
"""

from __future__ import annotations

from dataclasses import dataclass

from .probes import NEAR_ONE_BAND

__all__ = [
    "VERDICT_RULES",
    "Verdict",
    "VerdictRule",
    "decide",
    "FIT_RATIO",
    "LINEAR_TOLERANCE",
    "NEAR_ONE_FRACTION",
    "COSINE_THRESHOLD",
    "ABLATION_FACTOR",
    "MONO_FACTOR",
]
FIT_RATIO = 0.5  # fits_task: loss at most this fraction of the zero predictor's
LINEAR_TOLERANCE = 0.1  # acts_linearly: linearising raises the loss by at most this fraction
NEAR_ONE_FRACTION = 0.5  # low_rank_identity: at least this fraction of the m possible ones near 1
COSINE_THRESHOLD = 0.85  # matches_target: cosine of the map with its linear target
ABLATION_FACTOR = 2.0  # ablation_matters: zeroing the set multiplies the loss at least this much
MONO_FACTOR = (
    1.5  # outweighs_monosemantic: and costs this much more than as many random monosemantic ones
)


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
