"""Trial design: trials and their status, cohorts, eligibility criteria, visit definitions.

During setup the design is edited freely (items added, changed, removed). Once the trial
opens, design changes go through a protocol amendment (services/amendments.py); the
checks each design item must pass live here, once, for both paths.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.enrollment.models import (
    LTFU_YEARS,
    Cohort,
    EligibilityCriterion,
    Trial,
    VisitDefinition,
)
from trialmgr.enrollment.policies import require_manager
from trialmgr.errors import Conflict, Invalid, NotFound
from trialmgr.extensions import db

# Names the schedule generator gives long-term follow-up and RCR visits.
RESERVED_VISIT_PREFIXES = ("LTFU year ", "RCR test month ", "RCR pre-treatment")
# Design fields of the trial row itself; after opening they change only by amendment.
DESIGN_FIELDS = (
    "stagger_days",
    "ltfu_years",
    "accepted_orphacodes",
    "escalation_requires_full_cohort",
    "dlt_window_days",
)
ALLOWED_TRIAL_MOVES = {
    ("setup", "open"),
    ("setup", "closed"),
    ("open", "closed"),
    ("paused", "closed"),
    ("closed", "ended"),
}


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


def ltfu_years_for(vector_type: str, given: int | None) -> int:
    """Long-term follow-up length: as given, else from the vector type (15 years for
    integrating vectors and genome editing, 5 for AAV and adenoviral); `other` must say."""
    if given is not None:
        return given
    if vector_type not in LTFU_YEARS:
        raise Invalid(
            "State the long-term follow-up length for this vector type.",
            errors={"ltfu_years": [f"Required for vector type {vector_type}."]},
        )
    return LTFU_YEARS[vector_type]


def create_trial(actor: Any, data: dict[str, Any]) -> Trial:
    """A trial starts in setup, its follow-up length set by the vector type unless given."""
    require_manager(actor)
    code = data["code"].upper()
    if db.session.execute(sa.select(Trial.id).where(Trial.code == code)).first():
        raise Conflict("A trial with this code exists.", errors={"code": ["Already used."]})
    ltfu = ltfu_years_for(data["vector_type"], data.get("ltfu_years"))
    with audit.audited(actor, action="trial.create"):
        trial = Trial(**{**data, "code": code, "ltfu_years": ltfu, "status": "setup"})
        db.session.add(trial)
    return trial


def _check_ready_to_open(trial: Trial) -> None:
    missing = []
    if not trial.cohorts:
        missing.append("a cohort")
    if not any(v.approved_on or v.site_approvals for v in trial.consent_versions):
        missing.append("an approved consent version")
    if not any(c.kind == "inclusion" for c in trial.criteria):
        missing.append("an inclusion criterion")
    if missing:
        raise Conflict(
            f"A trial opens only with {', '.join(missing)}.",
            title="Trial not ready",
            errors={"status": [f"Missing: {', '.join(missing)}."]},
        )


def update_trial(actor: Any, trial: Trial, data: dict[str, Any]) -> Trial:
    """Edit a trial (reason required). Status moves setup → open → closed → ended here
    (pausing and resuming have their own operations); opening needs a cohort, an approved
    consent version and an inclusion criterion. Design fields change here only during
    setup; afterwards by amendment."""
    require_manager(actor)
    data = dict(data)
    reason = data.pop("reason")
    new_status = data.pop("status", None)
    design = [f for f in DESIGN_FIELDS if f in data and data[f] != getattr(trial, f)]
    if design and trial.status != "setup":
        raise Conflict(
            f"The trial is {trial.status}: {', '.join(design)} change only by a protocol "
            "amendment (POST /trials/{id}/amendments).",
            title="Amendment required",
            errors={f: ["Change it through an amendment."] for f in design},
        )
    if new_status and new_status != trial.status:
        if (trial.status, new_status) not in ALLOWED_TRIAL_MOVES:
            raise Conflict(
                f"A {trial.status} trial cannot be set to {new_status} here.",
                title="Status change not allowed",
            )
        if new_status == "open":
            _check_ready_to_open(trial)
    with audit.audited(actor, reason=reason, action="trial.status" if new_status else None):
        for key, value in data.items():
            setattr(trial, key, value)
        if new_status:
            trial.status = new_status
    return trial


def require_setup(trial: Trial, what: str) -> None:
    """Design items are edited directly only while the trial is in setup."""
    if trial.status != "setup":
        raise Conflict(
            f"The trial is {trial.status}: {what} only by a protocol amendment.",
            title="Amendment required",
        )


def get_cohort(trial: Trial, cohort_id: int) -> Cohort:
    cohort = db.session.get(Cohort, cohort_id)
    if cohort is None or cohort.trial_id != trial.id:
        raise Invalid(
            "Unknown cohort.", errors={"cohort_id": [f"No cohort {cohort_id} in this trial."]}
        )
    return cohort


def check_cohort(trial: Trial, data: dict[str, Any], cohort: Cohort | None = None) -> None:
    """Sequence and label are unique within the trial."""
    for field in ("sequence", "label"):
        if field in data and any(
            getattr(c, field) == data[field] for c in trial.cohorts if c is not cohort
        ):
            raise Conflict(f"A cohort with this {field} exists.", errors={field: ["Already used."]})


def new_cohort(trial: Trial, data: dict[str, Any]) -> Cohort:
    check_cohort(trial, data)
    cohort = Cohort(trial=trial, **data)
    db.session.add(cohort)
    return cohort


def add_cohort(actor: Any, trial: Trial, data: dict[str, Any]) -> Cohort:
    """Cohorts of rising dose (setup)."""
    require_manager(actor)
    require_setup(trial, "cohorts are added")
    with audit.audited(actor, action="cohort.create"):
        return new_cohort(trial, data)


def check_criterion(
    trial: Trial, data: dict[str, Any], criterion: EligibilityCriterion | None = None
) -> None:
    if "code" in data and any(
        c.code.lower() == data["code"].lower() for c in trial.criteria if c is not criterion
    ):
        raise Conflict("A criterion with this code exists.", errors={"code": ["Already used."]})


def new_criterion(trial: Trial, data: dict[str, Any]) -> EligibilityCriterion:
    check_criterion(trial, data)
    sequence = max((c.sequence for c in trial.criteria), default=0) + 1
    criterion = EligibilityCriterion(trial=trial, sequence=sequence, **data)
    db.session.add(criterion)
    return criterion


def add_criterion(actor: Any, trial: Trial, data: dict[str, Any]) -> EligibilityCriterion:
    require_manager(actor)
    require_setup(trial, "criteria are added")
    with audit.audited(actor, action="criterion.create"):
        return new_criterion(trial, data)


def _same_name(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def check_visit_definition(
    trial: Trial, data: dict[str, Any], definition: VisitDefinition | None = None
) -> None:
    """A visit's name is unique in the trial (case and spacing ignored), not one the
    schedule generator uses, and one visit at most assesses the primary endpoint."""
    others = [d for d in trial.visit_definitions if d.active and d is not definition]
    name = data.get("name", definition.name if definition else "")
    if any(_same_name(d.name, name) for d in others):
        raise Conflict(
            "A visit with this name exists.",
            errors={"name": ["Already used (case and spaces are ignored)."]},
        )
    if name.startswith(RESERVED_VISIT_PREFIXES):
        raise Invalid(
            "This name is reserved for generated follow-up visits.",
            errors={"name": [f"Must not start with {' or '.join(RESERVED_VISIT_PREFIXES)}."]},
        )
    if data.get("primary_endpoint") and any(d.primary_endpoint for d in others):
        raise Conflict(
            "The trial already has a primary-endpoint visit.",
            errors={"primary_endpoint": ["Only one visit assesses the primary endpoint."]},
        )


def new_visit_definition(trial: Trial, data: dict[str, Any]) -> VisitDefinition:
    check_visit_definition(trial, data)
    definition = VisitDefinition(trial=trial, **{**data, "name": " ".join(data["name"].split())})
    db.session.add(definition)
    return definition


def add_visit_definition(actor: Any, trial: Trial, data: dict[str, Any]) -> VisitDefinition:
    """A scheduled visit (setup): study day (dosing day is day 0, negative days before
    dosing) and window before/after."""
    require_manager(actor)
    require_setup(trial, "visits are added")
    with audit.audited(actor, action="visit_definition.create"):
        return new_visit_definition(trial, data)


# --- editing and removing design items during setup ----------------------------------

DESIGN_ITEMS: dict[str, type] = {
    "cohort": Cohort,
    "criterion": EligibilityCriterion,
    "visit_definition": VisitDefinition,
}


def get_design_item(kind: str, item_id: int) -> Any:
    item = db.session.get(DESIGN_ITEMS[kind], item_id)
    if item is None:
        raise NotFound(f"No {kind.replace('_', ' ')} {item_id}.")
    return item


def update_design_item(actor: Any, item: Any, data: dict[str, Any]) -> Any:
    """Correct a cohort, criterion or visit definition while its trial is in setup."""
    require_manager(actor)
    trial = item.trial
    require_setup(trial, "the design changes")
    data = dict(data)
    reason = data.pop("reason", None)
    if isinstance(item, Cohort):
        check_cohort(trial, data, item)
    elif isinstance(item, EligibilityCriterion):
        check_criterion(trial, data, item)
    else:
        check_visit_definition(trial, data, item)
    with audit.audited(actor, reason=reason, action="design.update"):
        for key, value in data.items():
            setattr(item, key, value)
    return item


def remove_design_item(actor: Any, item: Any, reason: str | None = None) -> None:
    """Remove a cohort, criterion or visit definition while its trial is in setup
    (nothing refers to it yet: no screening answers, subjects or visits exist in setup)."""
    require_manager(actor)
    require_setup(item.trial, "the design changes")
    with audit.audited(actor, reason=reason, action="design.remove"):
        db.session.delete(item)
