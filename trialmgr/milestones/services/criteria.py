"""Progression criteria: a metric, a target and an amber fraction per trial; the traffic
light of each against the metric's value, and the overall decision (DOMAIN.md).

Higher is better (every metric but one): green when value ≥ target, amber when value ≥
target x amber_fraction, red below. Lower is better (screen_to_enrol_ratio, screened per
enrolled): the same rule on the reciprocal, the enrolments per screening, so green when
value ≤ target, amber when value ≤ target ÷ amber_fraction, red above (target 3 with the
default fraction 0.5: green up to 3 screened per enrolment, amber up to 6, red beyond;
screenings with no enrolment at all are red). Boundaries belong to the better light and
are compared exactly (fractions, not floats). A metric without data (no denominator) has
no light (None).

Decision: any red → stop; every criterion green → proceed; otherwise (an amber, or a
criterion without data: the evidence is not there to proceed) → amend. No criteria → no
decision (None).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.enrollment.models import Trial
from trialmgr.enrollment.policies import require_manager
from trialmgr.errors import Conflict, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.milestones.models import METRICS, ProgressionCriterion
from trialmgr.milestones.services.metrics import KINDS, LABELS, LOWER_IS_BETTER
from trialmgr.milestones.services.stats import Estimate

LIGHTS = ("green", "amber", "red")


def threshold(metric: str, target: Decimal, amber_fraction: Decimal) -> Fraction:
    """Where amber ends and red begins."""
    if metric in LOWER_IS_BETTER:
        return Fraction(target) / Fraction(amber_fraction)
    return Fraction(target) * Fraction(amber_fraction)


def light(metric: str, estimate: Estimate, target: Decimal, amber_fraction: Decimal) -> str | None:
    """green / amber / red for the metric's value against the target (module docstring)."""
    goal, limit = Fraction(target), threshold(metric, target, amber_fraction)
    if metric in LOWER_IS_BETTER:
        if estimate.unbounded:
            return "red"
        if estimate.exact is None:
            return None
        if estimate.exact <= goal:
            return "green"
        return "amber" if estimate.exact <= limit else "red"
    if estimate.exact is None:
        return None
    if estimate.exact >= goal:
        return "green"
    return "amber" if estimate.exact >= limit else "red"


def decision(lights: list[str | None]) -> str | None:
    """stop if any red; proceed if all green; amend otherwise; None without criteria."""
    if not lights:
        return None
    if "red" in lights:
        return "stop"
    if all(each == "green" for each in lights):
        return "proceed"
    return "amend"


# --- the criteria themselves -----------------------------------------------------------


def criteria_of(trial: Trial) -> list[ProgressionCriterion]:
    order = {metric: index for index, metric in enumerate(METRICS)}
    rows = db.session.execute(
        sa.select(ProgressionCriterion).where(ProgressionCriterion.trial_id == trial.id)
    ).scalars()
    return sorted(rows, key=lambda c: order[c.metric])


def get_criterion(criterion_id: int) -> ProgressionCriterion:
    criterion = db.session.get(ProgressionCriterion, criterion_id)
    if criterion is None:
        raise NotFound(f"No progression criterion {criterion_id}.")
    return criterion


def _check_target(metric: str, target: Decimal) -> None:
    """A proportion's target lies in (0, 1]; screened per enrolled cannot be below 1."""
    kind = KINDS.get(metric, "proportion")
    if kind == "proportion" and not 0 < target <= 1:
        raise Invalid(
            "A proportion's target is between 0 and 1.",
            errors={"target": ["Give a proportion: more than 0, at most 1 (e.g. 0.8)."]},
        )
    if kind == "ratio" and target < 1:
        raise Invalid(
            "Screened per enrolled is at least 1.",
            errors={"target": ["At least 1 (one screening per enrolment)."]},
        )


def create_criterion(actor: Any, trial: Trial, data: dict[str, Any]) -> ProgressionCriterion:
    """One criterion per metric and trial; the target fits the metric (proportions in
    (0, 1], screened per enrolled ≥ 1, rates > 0)."""
    require_manager(actor)
    metric = data["metric"]
    if any(c.metric == metric for c in criteria_of(trial)):
        raise Conflict(
            f"The trial already has a criterion for {metric}; change its target instead.",
            errors={"metric": ["Already has a criterion."]},
        )
    _check_target(metric, data["target"])
    with audit.audited(actor, action="progression_criterion.create"):
        criterion = ProgressionCriterion(trial_id=trial.id, **data)
        db.session.add(criterion)
    return criterion


def update_criterion(
    actor: Any, criterion: ProgressionCriterion, data: dict[str, Any]
) -> ProgressionCriterion:
    """Change a criterion's target, amber fraction or notes; the reason is audited (the
    criteria are pre-specified: a change after seeing the data must say why)."""
    require_manager(actor)
    data = dict(data)
    reason = data.pop("reason")
    if "target" in data:
        _check_target(criterion.metric, data["target"])
    with audit.audited(actor, reason=reason, action="progression_criterion.update"):
        for key, value in data.items():
            setattr(criterion, key, value)
    return criterion


def criterion_view(criterion: ProgressionCriterion, estimate: Estimate) -> dict[str, Any]:
    """A criterion with the metric's value and interval, its light and thresholds."""
    limit = threshold(criterion.metric, criterion.target, criterion.amber_fraction)
    return {
        "id": criterion.id,
        "metric": criterion.metric,
        "label": LABELS[criterion.metric],
        "kind": KINDS.get(criterion.metric, "proportion"),
        "target": float(criterion.target),
        "amber_fraction": float(criterion.amber_fraction),
        "amber_threshold": float(limit),
        "direction": "lower_is_better"
        if criterion.metric in LOWER_IS_BETTER
        else "higher_is_better",
        "notes": criterion.notes,
        "value": estimate.value,
        "ci_low": estimate.ci_low,
        "ci_high": estimate.ci_high,
        "light": light(criterion.metric, estimate, criterion.target, criterion.amber_fraction),
    }
