"""Enrolment and the subject page: consent, dosing, visits, withdrawal, end of participation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy.orm import selectinload

from trialmgr.auth.policies import ANY_ROLE, SITE_WORK, current_actor, roles
from trialmgr.clock import utcnow
from trialmgr.enrollment.models import (
    LTFU_QUESTIONS,
    SUBJECT_STATUSES,
    Subject,
    Trial,
)
from trialmgr.enrollment.schemas import (
    ConsentIn,
    DosingIn,
    EndIn,
    EnrolIn,
    SubjectQuery,
    WithdrawalIn,
)
from trialmgr.enrollment.services import consent as consent_service
from trialmgr.enrollment.services import dosing as dosing_service
from trialmgr.enrollment.services import screening as screening_service
from trialmgr.enrollment.services import subjects as subjects_service
from trialmgr.enrollment.services import visits as visits_service
from trialmgr.enrollment.views.common import (
    VisitForm,
    aware_from_local,
    bp,
    site_choices,
    trial_choices,
    user_zone,
    yes_no,
)
from trialmgr.errors import NotFound, Problem
from trialmgr.forms import (
    Refusal,
    filter_args,
    load_filters,
    load_form,
    page_of,
    submit,
    typed_values,
)
from trialmgr.partners.services.sites import site_today

# --- enrolment and subjects -----------------------------------------------------


def _cohort_slots(trial: Trial) -> list[dict[str, Any]]:
    return [
        {"cohort": row["cohort"], "free": max(row["cohort"].capacity - row["filled"], 0)}
        for row in dosing_service.cohort_board(trial, utcnow())
    ]


@bp.route("/subjects/new", methods=["GET", "POST"])
@roles(*SITE_WORK)
def subject_new() -> Any:
    actor = current_actor()
    screening_id = request.values.get("screening_id", type=int)
    if screening_id is None:
        flash("Enrol from an eligible screening: open it in the screening log.", "info")
        return redirect(url_for("enrollment.screening_list", outcome="eligible"))
    screening = screening_service.get_screening(actor, screening_id)
    refusal = None
    if request.method == "POST":
        data_in = {"screening_id": screening.id}
        subject = submit(
            "enrol",
            lambda: subjects_service.enrol(
                actor, load_form(EnrolIn(), request.form, data_in), utcnow()
            ),
        )
        if not isinstance(subject, Refusal):
            flash(
                f"Subject {subject.code} enrolled in cohort {subject.cohort.label}. "
                "Use this code on every record.",
                "success",
            )
            return redirect(url_for("enrollment.subject_detail", code=subject.code))
        refusal = subject
    trial = screening.trial
    slots = _cohort_slots(trial)
    site_day = site_today(screening.site, utcnow())
    current = consent_service.current_consent_version(trial, screening.site_id, site_day)
    open_slot = next((s["cohort"].id for s in slots if s["free"]), "")
    values = (
        typed_values(request.form)
        if refusal
        else {
            "cohort_id": open_slot,
            "consent_version_id": current.id if current else "",
            "consented_on": "",
            "enrolled_on": site_day.isoformat(),
        }
    )
    existing = subjects_service.subject_of_screening(screening)
    return render_template(
        "enrollment/subject_form.html",
        screening=screening,
        trial=trial,
        slots=slots,
        current=current,
        existing=existing,
        values=values,
        refusal=refusal,
        today=site_day,
    ), (refusal.status if refusal else 200)


@bp.route("/subjects")
@roles(*ANY_ROLE)
def subject_list() -> Any:
    actor = current_actor()
    filters, errors = load_filters(SubjectQuery())
    query = subjects_service.subject_query(actor, filters).options(
        selectinload(Subject.site),
        selectinload(Subject.cohort),
        selectinload(Subject.dosing),
        selectinload(Subject.consent_version),
    )
    subjects, page, has_next = page_of(query)
    trials = trial_choices()
    return render_template(
        "enrollment/subject_list.html",
        subjects=subjects,
        trials=trials,
        cohorts=[(t, c) for t in trials for c in t.cohorts],
        sites=site_choices(actor),
        statuses=SUBJECT_STATUSES,
        args=filter_args(),
        filtered=bool(filters),
        page=page,
        has_next=has_next,
        errors=errors,
    ), (422 if errors else 200)


def _timeline(subject: Subject, deviations: list[Any]) -> list[dict[str, Any]]:
    """What happened to the subject, in date order (dosing with its time). Events are added
    in the order they happen on one day (consent before enrolment); the sort keeps it."""
    events: list[dict[str, Any]] = []

    def add(on: date, what: str, alert: bool = False, at: datetime | None = None) -> None:
        events.append({"on": on, "what": what, "alert": alert, "at": at})

    screening = subject.screening
    add(screening.screened_on, f"Screened ({subject.site.code} #{screening.number})")
    for consent in subject.consents:
        add(consent.consented_on, f"Consented, version {consent.consent_version.version}")
    add(subject.enrolled_on, f"Enrolled in cohort {subject.cohort.label}")
    if subject.dosing is not None:
        d = subject.dosing
        add(d.dosed_at.date(), f"Dosed {d.dose} {d.dose_unit}, lot {d.lot_number}", at=d.dosed_at)
    for visit in subject.visits:
        if visit.status == "done" and visit.done_on:
            add(visit.done_on, f"{visit.name} done")
    for deviation in deviations:  # missed visits appear here
        add(deviation.occurred_on, f"Deviation: {deviation.description}", alert=True)
    if subject.withdrawn_on:
        kind = "full" if subject.withdrawal_kind == "full" else "procedures only"
        add(subject.withdrawn_on, f"Withdrew ({kind}): {subject.withdrawal_reason}", alert=True)
    if subject.ended_on:
        label = "Died" if subject.status == "died" else "Lost to follow-up"
        add(subject.ended_on, f"{label}: {subject.end_reason}", alert=True)
    return sorted(events, key=lambda e: e["on"])


def _dosing_gate(subject: Subject) -> Problem | None:
    """Would dosing this subject now be refused? The dosing service's gates, asked now."""
    if subject.status != "enrolled" or subject.dosing is not None:
        return None
    now = utcnow()
    try:
        dosing_service.check_gates(subject, now, now)
    except Problem as exc:
        return exc
    return None


def _subject_page(subject: Subject, refusal: Refusal | None = None) -> tuple[str, int]:
    actor = current_actor()
    ref = site_today(subject.site, utcnow())
    deviations = visits_service.deviations_of(subject)
    trial = subject.trial
    zone = user_zone()
    return render_template(
        "enrollment/subject_detail.html",
        subject=subject,
        trial=trial,
        visits=[(v, visits_service.visit_state(v, ref)) for v in subject.visits],
        deviations=deviations,
        timeline=_timeline(subject, deviations),
        current_version=consent_service.current_consent_version(trial, subject.site_id, ref),
        gate=_dosing_gate(subject),
        next_allowed=dosing_service.next_dosing_allowed(trial, subject.cohort),
        ltfu_questions=LTFU_QUESTIONS,
        site_worker=actor.role in SITE_WORK,
        refusal=refusal,
        values=typed_values(request.form) if refusal else {},
        today=ref,
        now_local=utcnow().astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
        dosing_from=max(subject.consented_on, subject.enrolled_on).isoformat(),
        zone=zone.key,
    ), (refusal.status if refusal else 200)


@bp.route("/subjects/<code>")
@roles(*ANY_ROLE)
def subject_detail(code: str) -> tuple[str, int]:
    return _subject_page(subjects_service.get_subject(current_actor(), code))


def _subject_action(code: str, form: str, act: Callable[[Any, Subject], str]) -> Any:
    """Run one form of the subject page: PRG on success, the page with errors otherwise."""
    actor = current_actor()
    subject = subjects_service.get_subject(actor, code)
    done = submit(form, lambda: act(actor, subject))
    if isinstance(done, Refusal):
        return _subject_page(subject, done)
    flash(done, "success")
    return redirect(url_for("enrollment.subject_detail", code=subject.code))


@bp.route("/subjects/<code>/consents", methods=["POST"])
@roles(*SITE_WORK)
def subject_consent(code: str) -> Any:
    def act(actor: Any, subject: Subject) -> str:
        consent = consent_service.record_consent(
            actor, subject, load_form(ConsentIn(), request.form), utcnow()
        )
        return f"Re-consent to version {consent.consent_version.version} recorded."

    return _subject_action(code, "consent", act)


@bp.route("/subjects/<code>/dosing", methods=["POST"])
@roles(*SITE_WORK)
def subject_dosing(code: str) -> Any:
    def act(actor: Any, subject: Subject) -> str:
        extra = {}
        if request.form.get("dosed_at", "").strip():
            extra["dosed_at"] = aware_from_local(request.form["dosed_at"], "dosed_at")
        data = load_form(DosingIn(only=("dosed_at", "dose", "lot_number")), request.form, extra)
        dosing_service.record_dosing(actor, subject, data, utcnow())
        return f"Dosing of {subject.code} recorded; the visit schedule is generated."

    return _subject_action(code, "dosing", act)


@bp.route("/subjects/<code>/visits/<int:visit_id>", methods=["POST"])
@roles(*SITE_WORK)
def visit_record(code: str, visit_id: int) -> Any:
    def act(actor: Any, subject: Subject) -> str:
        visit = visits_service.get_visit(actor, visit_id)
        if visit.subject_id != subject.id:
            raise NotFound(f"No visit {visit_id} for {subject.code}.")
        extra: dict[str, Any] = {}
        answers = yes_no(request.form, "q_", LTFU_QUESTIONS)
        if answers:
            extra["answers"] = answers
        data = load_form(VisitForm(), request.form, extra)
        visits_service.record_visit(actor, visit, data, utcnow())
        return f"{visit.name}: {visit.status}."

    return _subject_action(code, f"visit-{visit_id}", act)


@bp.route("/subjects/<code>/withdrawal", methods=["POST"])
@roles(*SITE_WORK)
def subject_withdraw(code: str) -> Any:
    def act(actor: Any, subject: Subject) -> str:
        subjects_service.withdraw(actor, subject, load_form(WithdrawalIn(), request.form), utcnow())
        if subject.withdrawal_kind == "full":
            return f"{subject.code} withdrawn; scheduled visits cancelled."
        return f"{subject.code} withdrawn from procedures; safety follow-up continues."

    return _subject_action(code, "withdraw", act)


@bp.route("/subjects/<code>/end", methods=["POST"])
@roles(*SITE_WORK)
def subject_end(code: str) -> Any:
    def act(actor: Any, subject: Subject) -> str:
        data = load_form(EndIn(), request.form)
        subjects_service.end_participation(
            actor, subject, data["status"], data["on"], data["reason"], utcnow()
        )
        return f"{subject.code}: {subject.status.replace('_', ' ')} recorded."

    return _subject_action(code, "end", act)
