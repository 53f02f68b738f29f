"""Protocol amendments: after a trial opens, nothing in its design changes without one.

An amendment has a version, an effective date and a reason, and carries its changes: the
trial's design fields (stagger, follow-up length, accepted ORPHAcodes, escalation minimum),
visit definitions added, changed or removed, criteria added or reworded, cohorts added.
A changed visit schedule or follow-up length is applied to the future visits of every
subject in follow-up (recomputed from their dosing date; visits done stay untouched), and
the amendment lists the subjects whose schedules changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.audit.chain import jsonable
from trialmgr.enrollment.models import Amendment, Subject, Trial
from trialmgr.enrollment.policies import require_manager
from trialmgr.enrollment.services import schedule
from trialmgr.enrollment.services.trials import (
    DESIGN_FIELDS,
    check_criterion,
    check_visit_definition,
    ltfu_years_for,
    new_cohort,
    new_criterion,
    new_visit_definition,
)
from trialmgr.errors import Conflict, Invalid
from trialmgr.extensions import db
from trialmgr.partners.services.sites import site_local_date

AMENDABLE = ("open", "paused", "closed")


def _item(items: list[Any], item_id: int, what: str, field: str) -> Any:
    found = next((i for i in items if i.id == item_id), None)
    if found is None:
        raise Invalid(f"Unknown {what}.", errors={field: [f"No {what} {item_id} in this trial."]})
    return found


def _apply(trial: Trial, data: dict[str, Any]) -> dict[str, Any]:
    """Make the changes; return them as {what: {"old", "new"}} for the record."""
    changes: dict[str, Any] = {}
    for field in DESIGN_FIELDS:
        if field in data and data[field] != getattr(trial, field):
            changes[field] = {"old": getattr(trial, field), "new": data[field]}
            setattr(trial, field, data[field])
    if "ltfu_years" in changes:
        ltfu_years_for(trial.vector_type, trial.ltfu_years)
    visits = data.get("visit_definitions") or {}
    for item in visits.get("change", []):
        definition = _item(trial.visit_definitions, item["id"], "visit", "visit_definitions")
        fields = {k: v for k, v in item.items() if k != "id"}
        check_visit_definition(trial, fields, definition)
        old = {k: getattr(definition, k) for k in fields}
        for key, value in fields.items():
            setattr(definition, key, value)
        changes[f"visit {definition.name}"] = {"old": old, "new": fields}
    for item_id in visits.get("remove", []):
        definition = _item(trial.visit_definitions, item_id, "visit", "visit_definitions")
        definition.active = False
        changes[f"visit {definition.name}"] = {"old": "scheduled", "new": "removed"}
    for item in visits.get("add", []):
        definition = new_visit_definition(trial, item)
        changes[f"visit {definition.name}"] = {"old": None, "new": item}
    criteria = data.get("criteria") or {}
    for item in criteria.get("change", []):
        criterion = _item(trial.criteria, item["id"], "criterion", "criteria")
        fields = {k: v for k, v in item.items() if k != "id"}
        check_criterion(trial, fields, criterion)
        old = {k: getattr(criterion, k) for k in fields}
        for key, value in fields.items():
            setattr(criterion, key, value)
        changes[f"criterion {criterion.code}"] = {"old": old, "new": fields}
    for item in criteria.get("add", []):
        criterion = new_criterion(trial, item)
        changes[f"criterion {criterion.code}"] = {"old": None, "new": item}
    for item in data.get("cohorts", {}).get("add", []):
        cohort = new_cohort(trial, item)
        changes[f"cohort {cohort.label}"] = {"old": None, "new": item}
    if not changes:
        raise Invalid("The amendment changes nothing.", errors={"_schema": ["No change given."]})
    return changes


def _reschedule_all(trial: Trial, effective_on: Any) -> list[str]:
    """Recompute the future visits of every dosed subject still followed up."""
    rescheduled = []
    subjects = db.session.execute(
        sa.select(Subject)
        .where(Subject.trial_id == trial.id, Subject.status.not_in(("died", "lost_to_follow_up")))
        .order_by(Subject.code)
    ).scalars()
    for subject in subjects:
        if subject.dosing is None or subject.withdrawal_kind == "full":
            continue
        dosed_on = site_local_date(subject.site, subject.dosing.dosed_at)
        if schedule.reschedule(subject, dosed_on, effective_on):
            rescheduled.append(subject.code)
    return rescheduled


def record_amendment(actor: Any, trial: Trial, data: dict[str, Any], now: datetime) -> Amendment:
    """Amend an open (or paused, or closed-to-enrolment) trial's design: version unique in
    the trial, effective date, reason; the changes and the rescheduled subjects are kept on
    the amendment and in the audit trail."""
    require_manager(actor)
    if trial.status not in AMENDABLE:
        hint = " (during setup, edit the design directly)" if trial.status == "setup" else ""
        raise Conflict(f"A {trial.status} trial is not amended{hint}.", title="Not amendable")
    version = data["version"].strip()
    exists = db.session.execute(
        sa.select(Amendment.id).where(Amendment.trial_id == trial.id, Amendment.version == version)
    ).first()
    if exists:
        raise Conflict("This amendment version exists.", errors={"version": ["Already used."]})
    reason = f"Amendment {version}: {data['reason']}"
    with audit.audited(actor, reason=reason, action="trial.amend"):
        changes = _apply(trial, data)
        db.session.flush()
        rescheduled = _reschedule_all(trial, data["effective_on"])
        amendment = Amendment(
            trial_id=trial.id,
            version=version,
            effective_on=data["effective_on"],
            reason=data["reason"],
            recorded_at=now,
            recorded_by=actor.email,
            changes=jsonable(changes),
            rescheduled=rescheduled,
        )
        db.session.add(amendment)
    return amendment


def amendments_of(trial: Trial) -> list[Amendment]:
    return list(
        db.session.execute(
            sa.select(Amendment)
            .where(Amendment.trial_id == trial.id)
            .order_by(Amendment.effective_on, Amendment.id)
        ).scalars()
    )
