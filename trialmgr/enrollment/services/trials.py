"""Trial design: trials and their status, cohorts, eligibility criteria, visit definitions."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.enrollment.models import (
    LTFU_YEARS,
    LTFU_YEARS_DEFAULT,
    Cohort,
    EligibilityCriterion,
    Trial,
    VisitDefinition,
)
from trialmgr.enrollment.policies import require_manager
from trialmgr.errors import Conflict, Invalid, NotFound
from trialmgr.extensions import db

# Names the schedule generator gives long-term follow-up and RCR visits.
RESERVED_VISIT_PREFIXES = ("LTFU year ", "RCR test month ")


def get_trial(trial_id: int) -> Trial:
    trial = db.session.get(Trial, trial_id)
    if trial is None:
        raise NotFound(f"No trial {trial_id}.")
    return trial


def trial_query(filters: dict[str, Any]) -> sa.Select[tuple[Trial]]:
    q = sa.select(Trial).order_by(Trial.code)
    if filters.get("status"):
        q = q.where(Trial.status == filters["status"])
    return q


def create_trial(actor: Any, data: dict[str, Any]) -> Trial:
    """A trial starts in setup. The vector type sets the long-term follow-up length
    (15 years integrating or genome editing, 5 otherwise) unless `ltfu_years` is given."""
    require_manager(actor)
    code = data["code"].upper()
    if db.session.execute(sa.select(Trial.id).where(Trial.code == code)).first():
        raise Conflict("A trial with this code exists.", errors={"code": ["Already used."]})
    ltfu = data.get("ltfu_years")
    if ltfu is None:
        ltfu = LTFU_YEARS.get(data["vector_type"], LTFU_YEARS_DEFAULT)
    with audit.audited(actor, action="trial.create"):
        trial = Trial(**{**data, "code": code, "ltfu_years": ltfu, "status": "setup"})
        db.session.add(trial)
    return trial


ALLOWED_TRIAL_MOVES = {
    ("setup", "open"),
    ("open", "closed"),
    ("paused", "closed"),
    ("setup", "closed"),
}


def update_trial(actor: Any, trial: Trial, data: dict[str, Any]) -> Trial:
    """Edit a trial (reason required). Status moves setup → open → closed here; pausing and
    resuming have their own operations. Opening needs a cohort and an approved consent version."""
    require_manager(actor)
    data = dict(data)
    reason = data.pop("reason")
    new_status = data.pop("status", None)
    if new_status and new_status != trial.status:
        if (trial.status, new_status) not in ALLOWED_TRIAL_MOVES:
            raise Conflict(
                f"A {trial.status} trial cannot be set to {new_status} here.",
                title="Status change not allowed",
            )
        if new_status == "open" and (not trial.cohorts or not trial.consent_versions):
            raise Conflict(
                "A trial opens only with at least one cohort and an approved consent version.",
                title="Trial not ready",
            )
    with audit.audited(actor, reason=reason, action="trial.status" if new_status else None):
        for key, value in data.items():
            setattr(trial, key, value)
        if new_status:
            trial.status = new_status
    return trial


def design_locked(trial: Trial) -> None:
    if trial.status == "closed":
        raise Conflict("The trial is closed.", title="Trial closed")


def add_cohort(actor: Any, trial: Trial, data: dict[str, Any]) -> Cohort:
    """Cohorts of rising dose; sequence and label are unique within the trial."""
    require_manager(actor)
    design_locked(trial)
    for field in ("sequence", "label"):
        if any(getattr(c, field) == data[field] for c in trial.cohorts):
            raise Conflict(f"A cohort with this {field} exists.", errors={field: ["Already used."]})
    with audit.audited(actor, action="cohort.create"):
        cohort = Cohort(trial=trial, **data)
        db.session.add(cohort)
    return cohort


def get_cohort(trial: Trial, cohort_id: int) -> Cohort:
    cohort = db.session.get(Cohort, cohort_id)
    if cohort is None or cohort.trial_id != trial.id:
        raise Invalid(
            "Unknown cohort.", errors={"cohort_id": [f"No cohort {cohort_id} in this trial."]}
        )
    return cohort


def add_criterion(actor: Any, trial: Trial, data: dict[str, Any]) -> EligibilityCriterion:
    require_manager(actor)
    design_locked(trial)
    if any(c.code == data["code"] for c in trial.criteria):
        raise Conflict("A criterion with this code exists.", errors={"code": ["Already used."]})
    with audit.audited(actor, action="criterion.create"):
        criterion = EligibilityCriterion(trial=trial, sequence=len(trial.criteria) + 1, **data)
        db.session.add(criterion)
    return criterion


def add_visit_definition(actor: Any, trial: Trial, data: dict[str, Any]) -> VisitDefinition:
    """A scheduled visit: study day (dosing day is day 0) and window before/after."""
    require_manager(actor)
    design_locked(trial)
    if any(d.name == data["name"] for d in trial.visit_definitions):
        raise Conflict("A visit with this name exists.", errors={"name": ["Already used."]})
    if data["name"].startswith(RESERVED_VISIT_PREFIXES):
        raise Invalid(
            "This name is reserved for generated follow-up visits.",
            errors={"name": [f"Must not start with {' or '.join(RESERVED_VISIT_PREFIXES)}."]},
        )
    if data.get("primary_endpoint") and any(d.primary_endpoint for d in trial.visit_definitions):
        raise Conflict(
            "The trial already has a primary-endpoint visit.",
            errors={"primary_endpoint": ["Only one visit assesses the primary endpoint."]},
        )
    with audit.audited(actor, action="visit_definition.create"):
        definition = VisitDefinition(trial=trial, **data)
        db.session.add(definition)
    return definition
