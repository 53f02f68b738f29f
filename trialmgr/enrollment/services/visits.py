"""Recording visits, deviations, and the coordinator's due list."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from blinker import Namespace
from sqlalchemy.orm import selectinload

from trialmgr.audit import services as audit
from trialmgr.clock import Day, Phrase, actor_today, check_not_future
from trialmgr.enrollment.models import LTFU_QUESTIONS, Deviation, Subject, Visit
from trialmgr.enrollment.policies import require_site_worker
from trialmgr.enrollment.services.consent import reconsent_due_on
from trialmgr.enrollment.services.subjects import advance_subject, exit_date
from trialmgr.errors import Conflict, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.policies import may_see_site, scope_sites
from trialmgr.partners.services.sites import site_local_date, site_today

# Sent after a visit is recorded (sender: the visit; actor, now): the safety domain, above
# enrolment, listens for LTFU "yes" answers and positive RCR results.
signals = Namespace()
visit_recorded = signals.signal("visit-recorded")


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


def _check_done_on(visit: Visit, done_on: date, today: date) -> None:
    """A visit happened after the first consent, on or after dosing (pre-dose visits:
    on or before it), never in the future, and not after the subject's exit."""
    subject = visit.subject
    check_not_future("done_on", done_on, today)
    if done_on < subject.consented_on:
        raise Invalid(
            "Visit before consent.",
            errors={"done_on": [Phrase("Before consent ({on}).", on=Day(subject.consented_on))]},
        )
    dosing = subject.dosing
    if dosing is not None:
        dosed_on = site_local_date(subject.site, dosing.dosed_at)
        if visit.day > 0 and done_on < dosed_on:
            raise Invalid("Visit before dosing.", errors={"done_on": ["Before the dosing date."]})
        if visit.day < 0 and done_on > dosed_on:
            raise Invalid(
                "A pre-dose visit after dosing.", errors={"done_on": ["After the dosing date."]}
            )
    exit_on = exit_date(subject, visit.kind)
    if exit_on is not None and done_on > exit_on:
        raise Invalid(
            "Visit after the subject's exit.",
            errors={"done_on": [Phrase("After the exit on {on}.", on=Day(exit_on))]},
        )


def _check_answers(visit: Visit, data: dict[str, Any]) -> None:
    answers = data.get("answers")
    if data["status"] == "done" and visit.kind == "ltfu":
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
    if visit.kind == "rcr" and data["status"] == "done" and not data.get("result"):
        raise Invalid(
            "An RCR test has a result.",
            errors={"result": ["negative, positive or indeterminate."]},
        )
    if visit.kind != "rcr" and data.get("result"):
        raise Invalid("Only RCR tests have a result.", errors={"result": ["Not an RCR test."]})


def record_visit(actor: Any, visit: Visit, data: dict[str, Any], now: datetime) -> Visit:
    """Mark a visit done (date; LTFU contacts answer the delayed-event questions, RCR tests
    give a result) or missed. Done outside its window, or missed, records a deviation; a
    protocol visit done while re-consent was due is accepted with a consent deviation
    (safety follow-up, LTFU and RCR, never waits for consent). Visits scheduled before an
    exit stay open for entry and correction; a second recording is a correction: reason
    required."""
    subject = visit.subject
    require_site_worker(actor, subject.site_id)
    today = site_today(subject.site, now)
    if visit.status == "cancelled":
        why = (visit.cancel_reason or "withdrawal or end of participation").replace("_", " ")
        raise Conflict(f"{visit.name} was cancelled ({why}).", title="Visit cancelled")
    status, reason, done_on = data["status"], data.get("reason"), data.get("done_on")
    if visit.status != "scheduled" and not reason:
        raise Invalid(
            "Corrections need a reason.",
            errors={"reason": ["Required to change a recorded visit."]},
        )
    if status == "done":
        if done_on is None:
            raise Invalid("When was the visit?", errors={"done_on": ["Required when done."]})
        _check_done_on(visit, done_on, today)
    if status == "missed" and today <= visit.window_end:
        raise Conflict(
            Phrase(
                "{name} can be recorded as missed only after its window closes ({end}).",
                name=visit.name,
                end=Day(visit.window_end),
            ),
            title="Window still open",
        )
    _check_answers(visit, data)
    with audit.audited(
        actor,
        reason=reason,
        action="visit.record" if visit.status == "scheduled" else "visit.correct",
    ):
        visit.status = status
        visit.done_on = done_on if status == "done" else None
        if "answers" in data:
            visit.answers = data["answers"]
        if "notes" in data:
            visit.notes = data["notes"]
        visit.result = data.get("result") if status == "done" else None
        _void_deviations(visit, reason, now)
        for deviation in _deviations_for(visit, today, now):
            db.session.add(deviation)
        advance_subject(subject)
    visit_recorded.send(visit, actor=actor, now=now)
    return visit


def _void_deviations(visit: Visit, reason: str | None, now: datetime) -> None:
    """A corrected visit's earlier deviations no longer stand; they are voided, not deleted."""
    for deviation in db.session.execute(
        sa.select(Deviation).where(Deviation.visit_id == visit.id, Deviation.voided_at.is_(None))
    ).scalars():
        deviation.voided_at = now
        deviation.void_reason = reason


def _deviations_for(visit: Visit, today: date, now: datetime) -> list[Deviation]:
    found = []
    if visit.status == "done" and visit.done_on and not visit.in_window(visit.done_on):
        early_late = "early" if visit.done_on < visit.window_start else "late"
        days = (
            (visit.window_start - visit.done_on).days
            if early_late == "early"
            else (visit.done_on - visit.window_end).days
        )
        found.append(
            Deviation(
                subject_id=visit.subject_id,
                visit_id=visit.id,
                kind="visit_out_of_window",
                description=f"{visit.name} done {days} day(s) {early_late} "
                f"(window {visit.window_start} to {visit.window_end}).",
                occurred_on=visit.done_on,
                recorded_at=now,
            )
        )
    if visit.status == "done" and visit.done_on and visit.kind == "protocol":
        due = reconsent_due_on(visit.subject, visit.done_on)
        if due is not None:
            found.append(
                Deviation(
                    subject_id=visit.subject_id,
                    visit_id=visit.id,
                    kind="consent",
                    description=f"{visit.name} done on {visit.done_on} while re-consent to "
                    f"version {due.version} was due.",
                    occurred_on=visit.done_on,
                    recorded_at=now,
                )
            )
    if visit.status == "missed":
        found.append(
            Deviation(
                subject_id=visit.subject_id,
                visit_id=visit.id,
                kind="visit_missed",
                description=f"{visit.name} missed (window {visit.window_start} to "
                f"{visit.window_end}).",
                occurred_on=min(visit.window_end, today),
                recorded_at=now,
            )
        )
    return found


def deviations_of(subject: Subject, include_voided: bool = False) -> list[Deviation]:
    """The subject's protocol deviations (voided ones, superseded by a correction, on request)."""
    q = sa.select(Deviation).where(Deviation.subject_id == subject.id)
    if not include_voided:
        q = q.where(Deviation.voided_at.is_(None))
    return list(db.session.execute(q.order_by(Deviation.occurred_on)).scalars())


def visits_due(actor: Any, now: datetime, days: int = 14) -> sa.Select[tuple[Visit]]:
    """Scheduled visits whose window opens within `days` (of the actor's today), or has
    passed (overdue), in the actor's sites."""
    today = actor_today(actor, now)
    q = (
        sa.select(Visit)
        .join(Subject, Visit.subject_id == Subject.id)
        .where(Visit.status == "scheduled", Visit.window_start <= today + timedelta(days=days))
        .order_by(Visit.window_end, Visit.id)
        # what the list shows of each visit (subject code, site zone, trial), in two queries
        .options(selectinload(Visit.subject).selectinload(Subject.site))
        .options(selectinload(Visit.subject).selectinload(Subject.trial))
    )
    return scope_sites(actor, q, Subject.site_id)
