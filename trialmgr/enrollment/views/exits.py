"""The subject page's exits: withdrawal, end of participation and reinstatement. Each is
irreversible or consequential, so it is first rehearsed and restated on a confirmation page
(what the service would do, visit by visit) and runs only when that page is confirmed."""

from __future__ import annotations

from typing import Any

from flask import request

from trialmgr.auth.policies import SITE_WORK, roles
from trialmgr.clock import utcnow
from trialmgr.enrollment.models import Subject
from trialmgr.enrollment.schemas import EndIn, ReinstateIn, WithdrawalIn
from trialmgr.enrollment.services import subjects as subjects_service
from trialmgr.enrollment.views.common import bp
from trialmgr.enrollment.views.subjects import status_words, subject_action
from trialmgr.forms import load_form
from trialmgr.templating import format_date


def _visit_changes(subject: Subject, before: dict[int, str]) -> list[str]:
    """What a rehearsed exit or reinstatement did to the visit schedule, visit by visit."""
    lines = []
    for visit in subject.visits:
        old = before.get(visit.id)
        if old == visit.status:
            continue
        what = "cancelled" if visit.status == "cancelled" else "scheduled again"
        lines.append(f"{visit.name} (scheduled {format_date(visit.scheduled_on)}): {what}.")
    return lines


def _status_after(subject: Subject) -> str:
    return f"Status afterwards: {status_words(subject.status)}."


@bp.route("/subjects/<code>/withdrawal", methods=["POST"])
@roles(*SITE_WORK)
def subject_withdraw(code: str) -> Any:
    def act(actor: Any, subject: Subject) -> str:
        subjects_service.withdraw(actor, subject, load_form(WithdrawalIn(), request.form), utcnow())
        if subject.withdrawal_kind == "full":
            return f"{subject.code} withdrawn; scheduled visits cancelled."
        return f"{subject.code} withdrawn from procedures; safety follow-up continues."

    def restate(subject: Subject, before: dict[int, str]) -> dict[str, Any]:
        full = subject.withdrawal_kind == "full"
        how = (
            "fully: participation ends"
            if full
            else "from procedures: protocol visits stop, safety follow-up continues"
        )
        details = _visit_changes(subject, before) or ["No scheduled visit is cancelled."]
        if subject.dosing is None:
            details.append(f"The slot in cohort {subject.cohort.label} is freed for a replacement.")
        details.append(_status_after(subject))
        details.append(f"Reason kept in the audit trail: {subject.withdrawal_reason}")
        return {
            "title": f"withdrawal of {subject.code}",
            "summary": f"{subject.code} withdraws {how}, on {format_date(subject.withdrawn_on)}.",
            "details": details,
            "warning": "A withdrawal cannot be undone.",
            "button": "Confirm the withdrawal",
        }

    return subject_action(code, "withdraw", act, restate)


@bp.route("/subjects/<code>/end", methods=["POST"])
@roles(*SITE_WORK)
def subject_end(code: str) -> Any:
    def act(actor: Any, subject: Subject) -> str:
        data = load_form(EndIn(), request.form)
        subjects_service.end_participation(
            actor, subject, data["status"], data["on"], data["reason"], utcnow()
        )
        return f"{subject.code}: {subject.status.replace('_', ' ')} recorded."

    def restate(subject: Subject, before: dict[int, str]) -> dict[str, Any]:
        died = subject.status == "died"
        what = "died" if died else "is lost to follow-up"
        details = _visit_changes(subject, before) or ["No scheduled visit is cancelled."]
        details.append(_status_after(subject))
        if not died:
            details.append("If the subject is traced again, reinstating re-opens the contacts.")
        return {
            "title": f"end of participation of {subject.code}",
            "summary": f"{subject.code} {what} on {format_date(subject.ended_on)}.",
            "details": details,
            "warning": "A death cannot be undone." if died else None,
            "button": "Confirm the end of participation",
        }

    return subject_action(code, "end", act, restate)


@bp.route("/subjects/<code>/reinstate", methods=["POST"])
@roles(*SITE_WORK)
def subject_reinstate(code: str) -> Any:
    parsed: dict[str, Any] = {}

    def act(actor: Any, subject: Subject) -> str:
        data = load_form(ReinstateIn(), request.form)
        parsed.update(data)
        subjects_service.reinstate(actor, subject, data, utcnow())
        return (
            f"{subject.code} reinstated: the contacts from {format_date(data['on'])} on are "
            "scheduled again."
        )

    def restate(subject: Subject, before: dict[int, str]) -> dict[str, Any]:
        on = format_date(parsed["on"])
        details = _visit_changes(subject, before) or ["No contact is scheduled again."]
        details.append(_status_after(subject))
        return {
            "title": f"reinstatement of {subject.code}",
            "summary": f"{subject.code} was traced again; the contacts from {on} on are "
            "scheduled again.",
            "details": details,
            "warning": None,
            "button": "Confirm the reinstatement",
        }

    return subject_action(code, "reinstate", act, restate)
