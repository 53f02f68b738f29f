"""Trial design services: trials, cohorts, criteria, consent versions, visit definitions,
safety reviews, and trial-wide pauses."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from trialmgr.audit import services as audit
from trialmgr.auth.models import SAFETY_MONITOR
from trialmgr.auth.services import verify_signature
from trialmgr.enrollment.models import (
    ENDED_STATUSES,
    LTFU_YEARS,
    LTFU_YEARS_DEFAULT,
    Cohort,
    ConsentVersion,
    Dosing,
    EligibilityCriterion,
    SafetyReview,
    Subject,
    Trial,
    TrialPause,
    VisitDefinition,
)
from trialmgr.errors import Conflict, Forbidden, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.policies import can_manage

REVIEW_MEANING = "I confirm this safety review decision"
# Names the schedule generator gives long-term follow-up and RCR visits.
RESERVED_VISIT_PREFIXES = ("LTFU year ", "RCR test month ")
RESUME_MEANING = "I authorise resuming dosing in this trial"


def _require_manager(actor: Any) -> None:
    if not can_manage(actor):
        raise Forbidden("Only administrators and consortium leads change the trial design.")


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
    _require_manager(actor)
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
    _require_manager(actor)
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


def _design_locked(trial: Trial) -> None:
    if trial.status == "closed":
        raise Conflict("The trial is closed.", title="Trial closed")


def add_cohort(actor: Any, trial: Trial, data: dict[str, Any]) -> Cohort:
    """Cohorts of rising dose; sequence and label are unique within the trial."""
    _require_manager(actor)
    _design_locked(trial)
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
    _require_manager(actor)
    _design_locked(trial)
    if any(c.code == data["code"] for c in trial.criteria):
        raise Conflict("A criterion with this code exists.", errors={"code": ["Already used."]})
    with audit.audited(actor, action="criterion.create"):
        criterion = EligibilityCriterion(trial=trial, sequence=len(trial.criteria) + 1, **data)
        db.session.add(criterion)
    return criterion


def current_consent_version(trial: Trial, on: date) -> ConsentVersion | None:
    """The newest version approved on or before `on`."""
    approved = [v for v in trial.consent_versions if v.approved_on <= on]
    return max(approved, key=lambda v: (v.approved_on, v.id)) if approved else None


def needs_reconsent(subject: Subject, on: date) -> bool:
    """Whether a version approved after the subject's own, on or before `on`, requires
    re-consent: the subject is then blocked from dosing and non-safety procedures."""
    own = subject.consent_version
    return any(
        v.reconsent_required and v.id != own.id and own.approved_on < v.approved_on <= on
        for v in subject.trial.consent_versions
    )


def add_consent_version(
    actor: Any, trial: Trial, data: dict[str, Any], today: date
) -> ConsentVersion:
    """A new approved consent version. With `reconsent_required`, every active subject on an
    older version becomes due for re-consent (dosing and non-safety entry blocked until then)."""
    _require_manager(actor)
    _design_locked(trial)
    if data["approved_on"] > today:
        raise Invalid(
            "Dates cannot be in the future.", errors={"approved_on": ["Must not be in the future."]}
        )
    if any(v.version == data["version"] for v in trial.consent_versions):
        raise Conflict("This version exists.", errors={"version": ["Already used."]})
    latest = max((v.approved_on for v in trial.consent_versions), default=None)
    if latest is not None and data["approved_on"] < latest:
        raise Invalid(
            "A new consent version cannot predate the current one.",
            errors={"approved_on": [f"On or after {latest.isoformat()}."]},
        )
    with audit.audited(actor, action="consent_version.create"):
        version = ConsentVersion(trial=trial, **data)
        db.session.add(version)
    if version.reconsent_required:
        due = db.session.execute(
            sa.select(Subject).where(
                Subject.trial_id == trial.id,
                Subject.status.not_in(ENDED_STATUSES),
                Subject.consent_version_id != version.id,
            )
        ).scalars()
        with audit.audited(
            actor, action="subject.reconsent_due", reason=f"consent version {version.version}"
        ):
            for subject in due:
                subject.reconsent_due = True
    return version


def add_visit_definition(actor: Any, trial: Trial, data: dict[str, Any]) -> VisitDefinition:
    """A scheduled visit: study day (dosing day is day 0) and window before/after."""
    _require_manager(actor)
    _design_locked(trial)
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


def record_safety_review(
    actor: Any, trial: Trial, data: dict[str, Any], now: datetime
) -> SafetyReview:
    """A DSMB/SRC decision on a cohort, e-signed by a safety monitor re-entering their
    password. `escalate` on cohort n opens the first dosing of cohort n+1."""
    if actor.role != SAFETY_MONITOR:
        raise Forbidden("Only a safety monitor records safety review decisions.")
    verify_signature(actor, data["password"], now)
    cohort = get_cohort(trial, data["cohort_id"])
    dosed = db.session.execute(
        sa.select(sa.func.count()).select_from(Dosing).where(Dosing.cohort_id == cohort.id)
    ).scalar_one()
    if data["decision"] == "escalate" and not dosed:
        raise Conflict(
            f"Nobody in cohort {cohort.label} has been dosed: there is nothing to review yet.",
            title="Nothing to review",
        )
    with audit.audited(actor, action="safety_review.sign", reason=data["rationale"]):
        review = SafetyReview(
            trial_id=trial.id,
            cohort=cohort,
            decision=data["decision"],
            rationale=data["rationale"],
            signed_by_id=actor.id,
            signed_by=actor.email,
            signed_at=now,
            signature_meaning=data.get("meaning") or REVIEW_MEANING,
        )
        db.session.add(review)
    if review.decision == "stop" and trial.status == "open":
        reason = f"Safety review of cohort {cohort.label} decided to stop: {review.rationale}"
        pause_trial(actor, trial, reason, now, source="review:stop")
    return review


def reviews_of(trial: Trial) -> list[SafetyReview]:
    return list(
        db.session.execute(
            sa.select(SafetyReview)
            .where(SafetyReview.trial_id == trial.id)
            .order_by(SafetyReview.signed_at)
        ).scalars()
    )


def pause_trial(
    actor: Any, trial: Trial, reason: str, now: datetime, source: str = "manual"
) -> TrialPause:
    """Pause all dosing trial-wide: immediate and audited. Safety rules call this with
    source "rule:<name>"; by hand only a safety monitor pauses."""
    if source != "manual" and not source.startswith(("rule:", "review:")):
        raise ValueError(f"unknown pause source {source}")
    if source == "manual" and actor.role != SAFETY_MONITOR:
        raise Forbidden("Only a safety monitor pauses a trial.")
    if trial.status != "open":
        raise Conflict(f"Only an open trial can be paused (this one is {trial.status}).")
    with audit.audited(actor, reason=reason, action="trial.pause"):
        trial.status = "paused"
        trial.paused_reason = reason
        pause = TrialPause(
            trial_id=trial.id, paused_at=now, reason=reason, source=source, paused_by=actor.email
        )
        db.session.add(pause)
    return pause


def resume_trial(actor: Any, trial: Trial, reason: str, password: str, now: datetime) -> Trial:
    """Only a safety monitor resumes, with a signed decision (password re-entry) and a reason."""
    if actor.role != SAFETY_MONITOR:
        raise Forbidden("Only a safety monitor resumes a paused trial.")
    if trial.status != "paused":
        raise Conflict("The trial is not paused.")
    verify_signature(actor, password, now)
    open_pauses = db.session.execute(
        sa.select(TrialPause).where(
            TrialPause.trial_id == trial.id, TrialPause.resumed_at.is_(None)
        )
    ).scalars()
    with audit.audited(actor, reason=reason, action="trial.resume"):
        for pause in open_pauses:
            pause.resumed_at = now
            pause.resumed_by = actor.email
            pause.resume_reason = reason
            pause.resume_signature_meaning = RESUME_MEANING
        trial.status = "open"
        trial.paused_reason = None
    return trial


def pauses_of(trial: Trial) -> list[TrialPause]:
    return list(
        db.session.execute(
            sa.select(TrialPause)
            .where(TrialPause.trial_id == trial.id)
            .order_by(TrialPause.paused_at.desc())
        ).scalars()
    )


def cohort_board(trial: Trial, now: datetime) -> list[dict[str, Any]]:
    """Each cohort's slots, dosing dates, next allowed dosing date, and what (if anything)
    keeps its first dosing waiting for a safety review at `now`."""
    from trialmgr.enrollment.dosing import escalation_block, next_dosing_allowed

    board = []
    for cohort in trial.cohorts:
        subjects = (
            db.session.execute(
                sa.select(Subject)
                .where(Subject.cohort_id == cohort.id)
                .options(selectinload(Subject.dosing))
                .order_by(Subject.id)
            )
            .scalars()
            .all()
        )
        dosings = (
            db.session.execute(
                sa.select(Dosing).where(Dosing.cohort_id == cohort.id).order_by(Dosing.dosed_at)
            )
            .scalars()
            .all()
        )
        board.append(
            {
                "cohort": cohort,
                "subjects": subjects,
                "filled": sum(1 for s in subjects if counts_against_capacity(s)),
                "dosings": dosings,
                "next_allowed": next_dosing_allowed(trial, cohort),
                "waiting_review": None if dosings else escalation_block(trial, cohort, now),
            }
        )
    return board


def counts_against_capacity(subject: Subject) -> bool:
    """A subject withdrawn before dosing frees the slot; any dosed subject keeps it."""
    return not (subject.status == "withdrawn" and subject.dosing is None)
