"""Dosing and its gates: trial open, site open, consent current, sentinel stagger,
escalation only after a signed safety review."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from trialmgr.audit import services as audit
from trialmgr.db import lock_rows
from trialmgr.enrollment.models import Cohort, Dosing, SafetyReview, Subject, Trial
from trialmgr.enrollment.services import schedule
from trialmgr.enrollment.services.consent import needs_reconsent
from trialmgr.enrollment.services.subjects import counts_against_capacity
from trialmgr.errors import Conflict, Invalid
from trialmgr.extensions import db
from trialmgr.partners.services.sites import assert_site_open, site_local_date


def _cohort_dosings(cohort: Cohort) -> list[Dosing]:
    return list(
        db.session.execute(
            sa.select(Dosing).where(Dosing.cohort_id == cohort.id).order_by(Dosing.dosed_at)
        ).scalars()
    )


def _previous_cohort(trial: Trial, cohort: Cohort) -> Cohort | None:
    earlier = [c for c in trial.cohorts if c.sequence < cohort.sequence]
    return max(earlier, key=lambda c: c.sequence) if earlier else None


def _escalation_review(previous: Cohort) -> SafetyReview | None:
    """The latest signed review of the previous cohort."""
    return db.session.execute(
        sa.select(SafetyReview)
        .where(SafetyReview.cohort_id == previous.id)
        .order_by(SafetyReview.signed_at.desc(), SafetyReview.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def next_dosing_allowed(trial: Trial, cohort: Cohort) -> datetime | None:
    """When the next subject of this cohort may be dosed by the stagger rule
    (None: nobody dosed yet)."""
    dosings = _cohort_dosings(cohort)
    if not dosings:
        return None
    return dosings[-1].dosed_at + timedelta(days=trial.stagger_days)


def check_gates(subject: Subject, dosed_at: datetime, now: datetime) -> None:
    """Every rule that must hold before this subject may be dosed at `dosed_at`; the first
    that fails is raised as a 409 naming the reason (and the next allowed date, if any)."""
    trial, cohort = subject.trial, subject.cohort
    if subject.dosing is not None:
        raise Conflict(f"Subject {subject.code} was already dosed.", title="Already dosed")
    if subject.status != "enrolled":
        raise Conflict(f"Subject {subject.code} is {subject.status}.", title="Subject not enrolled")
    if subject.withdrawal_kind:
        raise Conflict(
            f"Subject {subject.code} withdrew from further procedures on {subject.withdrawn_on}.",
            title="Subject withdrawn",
        )
    if trial.status == "paused":
        raise Conflict(f"Dosing is paused trial-wide: {trial.paused_reason}", title="Trial paused")
    if trial.status != "open":
        raise Conflict(f"The trial is {trial.status}.", title="Trial not open")
    if dosed_at > now:
        raise Invalid(
            "Dosing cannot be in the future.", errors={"dosed_at": ["Must not be in the future."]}
        )
    day = site_local_date(subject.site, dosed_at)
    if day < max(subject.consented_on, subject.enrolled_on):
        raise Invalid(
            "Dosing before consent and enrolment.",
            errors={"dosed_at": ["Before the consent or enrolment date."]},
        )
    assert_site_open(subject.site, day, "dosing")
    if subject.reconsent_due or needs_reconsent(subject, day):
        raise Conflict(
            f"Subject {subject.code} must re-consent to the current consent version before dosing.",
            title="Re-consent required",
        )
    _check_stagger(trial, cohort, dosed_at)
    _check_escalation(trial, cohort, dosed_at)


def _check_stagger(trial: Trial, cohort: Cohort, dosed_at: datetime) -> None:
    """Sentinel dosing: subjects of one cohort are dosed at least `stagger_days` apart."""
    stagger = timedelta(days=trial.stagger_days)
    for other in _cohort_dosings(cohort):
        if abs(dosed_at - other.dosed_at) < stagger:
            allowed = max(d.dosed_at for d in _cohort_dosings(cohort)) + stagger
            raise Conflict(
                f"next dosing allowed on {allowed.date().isoformat()}",
                title="Sentinel stagger",
                next_allowed_at=allowed.isoformat(),
            )


def escalation_block(trial: Trial, cohort: Cohort, dosed_at: datetime) -> str | None:
    """Why the first subject of this higher-dose cohort may not be dosed at `dosed_at`
    (None when nothing blocks): it needs a signed review of the previous cohort that
    decided to escalate, signed before the dosing."""
    previous = _previous_cohort(trial, cohort)
    if previous is None or _cohort_dosings(cohort):
        return None
    if not _cohort_dosings(previous):
        return f"Nobody in cohort {previous.label} has been dosed yet."
    review = _escalation_review(previous)
    if review is None or review.decision != "escalate":
        decided = f" (latest decision: {review.decision})" if review else ""
        return (
            f"Cohort {cohort.label} opens only after a safety review of cohort {previous.label} "
            f"decides to escalate{decided}."
        )
    if dosed_at < review.signed_at:
        return f"Dosing time is before the escalation decision ({review.signed_at.isoformat()})."
    return None


def _check_escalation(trial: Trial, cohort: Cohort, dosed_at: datetime) -> None:
    block = escalation_block(trial, cohort, dosed_at)
    if block:
        raise Conflict(block, title="Safety review required")


def record_dosing(actor: Any, subject: Subject, data: dict[str, Any], now: datetime) -> Dosing:
    """Record the dose (date-time, actual dose, lot) once every gate holds, and generate
    the subject's visit and long-term follow-up schedule from the dosing date."""
    lock_rows(
        db.session, Cohort, subject.cohort_id
    )  # no two dosings pass the stagger check at once
    check_gates(subject, data["dosed_at"], now)
    with audit.audited(actor, action="subject.dose"):
        dosing = Dosing(
            subject=subject,
            cohort_id=subject.cohort_id,
            dosed_at=data["dosed_at"],
            dose=data["dose"],
            dose_unit=data.get("dose_unit") or subject.cohort.dose_unit,
            lot_number=data["lot_number"],
        )
        db.session.add(dosing)
        subject.status = "dosed"
        schedule.generate(subject, site_local_date(subject.site, data["dosed_at"]))
    return dosing


def cohort_board(trial: Trial, now: datetime) -> list[dict[str, Any]]:
    """Each cohort's slots, dosing dates, next allowed dosing date, and what (if anything)
    keeps its first dosing waiting for a safety review at `now`."""
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
