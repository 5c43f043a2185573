"""The interpretation report as text, as comparison rows and as JSON: formatting only, no
computation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .classes import ALWAYS_ON_ACTIVITY, CLASSES
from .metrics import (
    MONO_THRESHOLD,
    mean_or_none,
)
from .probes import NEAR_ONE_BAND
from .verdicts import Verdict

if TYPE_CHECKING:  # types only: the report formats itself through this module
    from .report import NeuronSet, Report

__all__ = ["compare_sets", "format_report", "format_verdict", "report_dict"]


# -- the report: format -------------------------------------------------------------------


def format_verdict(v: Verdict) -> str:
    """One line: whether the verdict holds, what it affirms, and the number that decided it."""
    r = v.rule
    if v.holds is None:
        return f"  – not applicable  {r.statement} ({v.note})"
    number = f"{r.measure} {v.value:.3g}"
    if v.holds:
        return f"  ✓ holds           {r.statement} ({number} {r.comparison} {r.threshold:g})"
    if v.note:
        return f"  ✗ does not hold   {r.statement} ({v.note}; {number})"
    return f"  ✗ does not hold   {r.statement} ({number}; needs {r.comparison} {r.threshold:g})"


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
        return "–"
    if isinstance(value, bool):
        return "✓" if value else "✗"  # the book's one verdict vocabulary
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
        act = _cell(mean_or_none(report.classes.activity, m), ".1%")
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
