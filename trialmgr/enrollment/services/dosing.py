"""Dosing and its gates: trial open, site open, consent current, sentinel stagger,
escalation only after a signed safety review."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from trialmgr.audit import services as audit
from trialmgr.clock import Day, Moment, Phrase, format_local
from trialmgr.db import lock_rows
from trialmgr.enrollment.models import Cohort, Deviation, Dosing, SafetyReview, Subject, Trial
from trialmgr.enrollment.policies import require_site_worker
from trialmgr.enrollment.services import schedule
from trialmgr.enrollment.services.consent import reconsent_due_on
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
    if subject.withdrawal_kind:
        raise Conflict(
            Phrase(
                "Subject {code} withdrew from further procedures on {on}.",
                code=subject.code,
                on=Day(subject.withdrawn_on),
            ),
            title="Subject withdrawn",
        )
    if subject.status != "enrolled":
        status = subject.status.replace("_", " ")
        raise Conflict(f"Subject {subject.code} is {status}.", title="Subject not enrolled")
    if trial.status == "paused":
        raise Conflict(f"Dosing is paused trial-wide: {trial.paused_reason}", title="Trial paused")
    # Closed to enrolment: subjects already enrolled are still dosed.
    if trial.status not in ("open", "closed"):
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
    due = reconsent_due_on(subject, day)
    if due is not None:
        raise Conflict(
            Phrase(
                "Subject {code} had not re-consented to version {version} by {day}; dosing "
                "needs a valid consent on the dosing date.",
                code=subject.code,
                version=due.version,
                day=Day(day),
            ),
            title="Re-consent required",
        )
    _check_stagger(subject, cohort, dosed_at)
    _check_escalation(trial, cohort, dosed_at)


def _check_stagger(subject: Subject, cohort: Cohort, dosed_at: datetime) -> None:
    """Sentinel dosing: subjects of one cohort are dosed at least `stagger_days` apart, in
    exact hours (14 days of 24 h by default). The refusal gives the next allowed moment in the
    site's local time and zone."""
    stagger = timedelta(days=subject.trial.stagger_days)
    dosings = _cohort_dosings(cohort)
    if any(abs(dosed_at - other.dosed_at) < stagger for other in dosings):
        allowed = max(d.dosed_at for d in dosings) + stagger
        local = format_local(allowed, subject.site.timezone)
        raise Conflict(
            Phrase("next dosing allowed on {next}", next=Moment(allowed, subject.site.timezone)),
            title="Sentinel stagger",
            next_allowed_at=allowed.isoformat(),
            next_allowed_local=local,
        )


def escalation_block(trial: Trial, cohort: Cohort, dosed_at: datetime) -> str | Phrase | None:
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
        return Phrase(
            "Dosing time is before the escalation decision ({signed}).",
            signed=Moment(review.signed_at),
        )
    return None


def _check_escalation(trial: Trial, cohort: Cohort, dosed_at: datetime) -> None:
    block = escalation_block(trial, cohort, dosed_at)
    if block:
        raise Conflict(block, title="Safety review required")


DOSE_TOLERANCE = 0.10


def _dose_deviation(subject: Subject, data: dict[str, Any]) -> str | None:
    """The dose must be in the cohort's unit (422 otherwise); more than 10 % away from the
    cohort dose needs an explicit confirmation and is then a dosing-error deviation."""
    cohort = subject.cohort
    unit = data.get("dose_unit") or cohort.dose_unit
    if unit != cohort.dose_unit:
        raise Invalid(
            "The dose must be given in the cohort's unit.",
            errors={"dose_unit": [f"Cohort {cohort.label} doses in {cohort.dose_unit}."]},
        )
    given, planned = float(data["dose"]), float(cohort.dose)
    if abs(given - planned) <= DOSE_TOLERANCE * planned:
        return None
    off = (given - planned) / planned * 100
    text = (
        f"Dose {data['dose']} {unit} is {off:+.0f} % from cohort {cohort.label}'s "
        f"{cohort.dose} {unit}."
    )
    if not data.get("confirm_dose_deviation"):
        raise Invalid(
            "The dose is more than 10 % away from the cohort dose.",
            errors={"confirm_dose_deviation": [f"{text} Confirm to record it as a dosing error."]},
        )
    return text


def record_dosing(actor: Any, subject: Subject, data: dict[str, Any], now: datetime) -> Dosing:
    """Record the dose (date-time, actual dose, lot) once every gate holds, and generate
    the subject's visit and long-term follow-up schedule from the site-local dosing day."""
    require_site_worker(actor, subject.site_id)
    # The trial first (a stopping rule pausing it commits before or after, never across),
    # then the cohort (no two dosings pass the stagger at once).
    lock_rows(db.session, Trial, subject.trial_id)
    lock_rows(db.session, Cohort, subject.cohort_id)
    check_gates(subject, data["dosed_at"], now)
    deviation = _dose_deviation(subject, data)
    day = site_local_date(subject.site, data["dosed_at"])
    with audit.audited(actor, action="subject.dose"):
        dosing = Dosing(
            subject=subject,
            cohort_id=subject.cohort_id,
            dosed_at=data["dosed_at"],
            dose=data["dose"],
            dose_unit=subject.cohort.dose_unit,
            lot_number=data["lot_number"],
        )
        db.session.add(dosing)
        subject.status = "dosed"
        schedule.generate(subject, day)
        if deviation:
            db.session.add(
                Deviation(
                    subject_id=subject.id,
                    kind="dosing_error",
                    description=deviation,
                    occurred_on=day,
                    recorded_at=now,
                )
            )
    return dosing


def escalation_readiness(trial: Trial, cohort: Cohort, now: datetime) -> dict[str, Any]:
    """What the safety-review form shows for a cohort, and what blocks `escalate`: its dosed
    count against capacity, days since its last dosing, its protocol deviations in force, and
    the trial's minimum (every slot dosed, a DLT observation window in days)."""
    dosings = _cohort_dosings(cohort)
    deviations = db.session.execute(
        sa.select(sa.func.count())
        .select_from(Deviation)
        .join(Subject, Subject.id == Deviation.subject_id)
        .where(Subject.cohort_id == cohort.id, Deviation.voided_at.is_(None))
    ).scalar_one()
    last = dosings[-1].dosed_at if dosings else None
    days_since = (now - last).total_seconds() / 86400 if last else None
    blockers: list[str | Phrase] = []
    if not dosings:
        blockers.append(f"Nobody in cohort {cohort.label} has been dosed.")
    if trial.escalation_requires_full_cohort and len(dosings) < cohort.capacity:
        blockers.append(
            f"Every slot of cohort {cohort.label} must be dosed first "
            f"({len(dosings)} of {cohort.capacity})."
        )
    window = trial.dlt_window_days
    if window and last is not None and days_since is not None and days_since < window:
        blockers.append(
            Phrase(
                "The {window}-day DLT window of cohort {label} runs until {until}.",
                window=window,
                label=cohort.label,
                until=Moment(last + timedelta(days=window), "UTC"),
            )
        )
    return {
        "cohort_id": cohort.id,
        "cohort": cohort.label,
        "capacity": cohort.capacity,
        "dosed": len(dosings),
        "last_dosed_at": last,
        "days_since_last_dosing": None if days_since is None else int(days_since),
        "deviations": int(deviations),
        "requires_full_cohort": trial.escalation_requires_full_cohort,
        "dlt_window_days": trial.dlt_window_days,
        "ready": not blockers,
        "blockers": blockers,
    }


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
