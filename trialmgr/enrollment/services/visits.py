"""Recording visits, deviations, and the coordinator's due list."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.enrollment.models import LTFU_QUESTIONS, Deviation, Subject, Visit
from trialmgr.enrollment.services.subjects import assert_may_enter_data
from trialmgr.errors import Conflict, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.policies import may_see_site, scope_sites
from trialmgr.partners.services.sites import site_local_date


def get_visit(actor: Any, visit_id: int) -> Visit:
    visit = db.session.get(Visit, visit_id)
    if visit is None or not may_see_site(actor, visit.subject.site_id):
        raise NotFound(f"No visit {visit_id}.")
    return visit


def visit_state(visit: Visit, today: date) -> str:
    """scheduled / due (window open) / overdue (window passed) / done / missed / cancelled."""
    if visit.status != "scheduled":
        return visit.status
    if today > visit.window_end:
        return "overdue"
    if today >= visit.window_start:
        return "due"
    return "scheduled"


def record_visit(
    actor: Any, visit: Visit, data: dict[str, Any], today: date, now: datetime
) -> Visit:
    """Mark a visit done (date, answers for LTFU contacts) or missed. Done outside its window,
    or missed, records a protocol deviation. A second recording is a correction: reason required."""
    subject = visit.subject
    if visit.status == "cancelled":
        raise Conflict(
            "The visit was cancelled (withdrawal or end of participation).", title="Visit cancelled"
        )
    if visit.kind == "protocol":
        assert_may_enter_data(subject)
    status = data["status"]
    reason = data.get("reason")
    if visit.status != "scheduled" and not reason:
        raise Invalid(
            "Corrections need a reason.",
            errors={"reason": ["Required to change a recorded visit."]},
        )
    done_on = data.get("done_on")
    if status == "done":
        if done_on is None:
            raise Invalid("When was the visit?", errors={"done_on": ["Required when done."]})
        if done_on > today:
            raise Invalid(
                "Clinical dates cannot be in the future.",
                errors={"done_on": ["Must not be in the future."]},
            )
        dosing = subject.dosing
        if dosing is not None and done_on < site_local_date(subject.site, dosing.dosed_at):
            raise Invalid("Visit before dosing.", errors={"done_on": ["Before the dosing date."]})
    if status == "missed" and today <= visit.window_end:
        raise Conflict(
            f"{visit.name} can be recorded as missed only after its window closes "
            f"({visit.window_end.isoformat()}).",
            title="Window still open",
        )
    answers = data.get("answers")
    if status == "done" and visit.kind == "ltfu":
        missing = [q for q in LTFU_QUESTIONS if q not in (answers or {})]
        if missing:
            raise Invalid(
                "Every delayed-event question needs an answer.",
                errors={"answers": [f"Unanswered: {', '.join(missing)}."]},
            )
    if answers and set(answers) - set(LTFU_QUESTIONS):
        raise Invalid(
            "Unknown questions.", errors={"answers": ["Only the LTFU delayed-event questions."]}
        )
    with audit.audited(
        actor,
        reason=reason,
        action="visit.record" if visit.status == "scheduled" else "visit.correct",
    ):
        visit.status = status
        visit.done_on = done_on if status == "done" else None
        if answers is not None:
            visit.answers = answers
        if "notes" in data:
            visit.notes = data["notes"]
        _void_deviations(visit, reason, now)
        deviation = _deviation_for(visit, today, now)
        if deviation is not None:
            db.session.add(deviation)
        _advance_subject(subject)
    return visit


def _void_deviations(visit: Visit, reason: str | None, now: datetime) -> None:
    """A corrected visit's earlier deviations no longer stand; they are voided, not deleted."""
    for deviation in db.session.execute(
        sa.select(Deviation).where(Deviation.visit_id == visit.id, Deviation.voided_at.is_(None))
    ).scalars():
        deviation.voided_at = now
        deviation.void_reason = reason


def _deviation_for(visit: Visit, today: date, now: datetime) -> Deviation | None:
    if visit.status == "done" and visit.done_on and not visit.in_window(visit.done_on):
        early_late = "early" if visit.done_on < visit.window_start else "late"
        days = (
            (visit.window_start - visit.done_on).days
            if early_late == "early"
            else (visit.done_on - visit.window_end).days
        )
        return Deviation(
            subject_id=visit.subject_id,
            visit_id=visit.id,
            kind="visit_out_of_window",
            description=f"{visit.name} done {days} day(s) {early_late} "
            f"(window {visit.window_start} to {visit.window_end}).",
            occurred_on=visit.done_on,
            recorded_at=now,
        )
    if visit.status == "missed":
        return Deviation(
            subject_id=visit.subject_id,
            visit_id=visit.id,
            kind="visit_missed",
            description=f"{visit.name} missed (window {visit.window_start} to {visit.window_end}).",
            occurred_on=min(visit.window_end, today),
            recorded_at=now,
        )
    return None


def _advance_subject(subject: Subject) -> None:
    """dosed → in follow-up at the first visit done; → completed when the primary-endpoint
    visit is done (long-term follow-up continues)."""
    if subject.status not in ("dosed", "in_follow_up"):
        return
    done = [v for v in subject.visits if v.status == "done"]
    if any(v.primary_endpoint for v in done):
        subject.status = "completed"
    elif done:
        subject.status = "in_follow_up"


def deviations_of(subject: Subject, include_voided: bool = False) -> list[Deviation]:
    """The subject's protocol deviations (voided ones, superseded by a correction, on request)."""
    q = sa.select(Deviation).where(Deviation.subject_id == subject.id)
    if not include_voided:
        q = q.where(Deviation.voided_at.is_(None))
    return list(db.session.execute(q.order_by(Deviation.occurred_on)).scalars())


def visits_due(actor: Any, today: date, days: int = 14) -> sa.Select[tuple[Visit]]:
    """Scheduled visits whose window opens within `days`, or has passed (overdue), in the
    actor's sites."""
    q = (
        sa.select(Visit)
        .join(Subject, Visit.subject_id == Subject.id)
        .where(Visit.status == "scheduled", Visit.window_start <= today + timedelta(days=days))
        .order_by(Visit.window_end, Visit.id)
    )
    return scope_sites(actor, q, Subject.site_id)
