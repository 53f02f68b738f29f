"""Enrolment and the subject page: consent, dosing, visits, withdrawal, end of participation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy.orm import selectinload

from trialmgr.audit import services as audit_services
from trialmgr.auth.policies import ANY_ROLE, SITE_WORK, current_actor, roles
from trialmgr.clock import utcnow, zone
from trialmgr.enrollment.models import (
    LTFU_QUESTIONS,
    RCR_RESULTS,
    SUBJECT_STATUSES,
    Subject,
    Trial,
)
from trialmgr.enrollment.schemas import (
    ConsentIn,
    DosingIn,
    EnrolIn,
    SubjectQuery,
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
    consent_options,
    site_choices,
    trial_choices,
    yes_no,
)
from trialmgr.errors import NotFound, Problem
from trialmgr.forms import (
    Refusal,
    cancelled,
    confirmed,
    filter_args,
    listing,
    load_filters,
    load_form,
    rehearse,
    replay_fields,
    returned,
    submit,
    typed_values,
)
from trialmgr.partners.services.sites import site_local_date, site_today
from trialmgr.templating import format_site_moment, page_text

# What a subject's status means, in the words the pages use: "completed" would be wrong
# while long-term follow-up visits are still due, so it is never printed.
STATUS_WORDS = {
    "enrolled": "enrolled, not yet dosed",
    "dosed": "dosed",
    "in_follow_up": "in follow-up",
    "completed": "primary follow-up complete",
    "withdrawn": "withdrawn",
    "lost_to_follow_up": "lost to follow-up",
    "died": "died",
}


@bp.app_template_filter("status_words")
def status_words(status: str) -> str:
    return STATUS_WORDS.get(status, status.replace("_", " "))


# A visit's fields as the corrections list names them.
VISIT_FIELD_LABELS = {
    "status": "Outcome",
    "done_on": "Done on",
    "notes": "Notes",
    "answers": "Delayed-event answers",
    "result": "RCR result",
}

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
        # The screening's consent is used when it holds one; otherwise it is asked here.
        consent_options=consent_options(trial, [screening.site], site_day),
        existing=existing,
        values=values,
        refusal=refusal,
        today=site_day,
    ), (refusal.status if refusal else 200)


# The columns the subject list may be sorted by (?sort=).
SUBJECT_SORTS = {
    "code": (Subject.code,),
    "cohort": (Subject.cohort_id,),
    "status": (Subject.status,),
    "enrolled_on": (Subject.enrolled_on,),
}


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
    rows = listing(query, SUBJECT_SORTS, "code", tiebreak=Subject.id)
    subjects, page, has_next = rows.items, rows.page, rows.has_next
    trials = trial_choices()
    return render_template(
        "enrollment/subject_list.html",
        subjects=subjects,
        listing=rows,
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
    for i, consent in enumerate(subject.consents):
        what = "Consented" if i == 0 else "Re-consented"
        add(consent.consented_on, f"{what}, version {consent.consent_version.version}")
    add(subject.enrolled_on, f"Enrolled in cohort {subject.cohort.label}")
    if subject.dosing is not None:
        d = subject.dosing
        add(
            site_local_date(subject.site, d.dosed_at),
            f"Dosed {d.dose} {d.dose_unit}, lot {d.lot_number}",
            at=d.dosed_at,
        )
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


# Why a visit was cancelled, as the visit table says it.
CANCEL_LABELS = {
    "withdrawn": "after the withdrawal",
    "lost_to_follow_up": "after the loss to follow-up",
    "died": "after the death",
    "amendment": "removed by an amendment",
}


def _dose_bounds(subject: Subject) -> tuple[str, str] | None:
    """The doses within 10 % of the cohort's (beyond them a dose needs a confirmation)."""
    try:
        planned = float(subject.cohort.dose)
    except ValueError:
        return None
    low, high = (planned * (1 + k * dosing_service.DOSE_TOLERANCE) for k in (-1, 1))
    return (f"{low:.3g}".replace("e+", "e"), f"{high:.3g}".replace("e+", "e"))


# Dosing refusals that no date entered would lift: no late-entry form is offered for them.
FINAL_GATES = ("Trial paused", "Trial not open", "Subject withdrawn", "Subject not enrolled")


def _gate_label(gate: Problem, subject: Subject) -> str:
    """The refusal of a dose given now, in a few words for the disabled button."""
    allowed = gate.extra.get("next_allowed_at")
    if allowed:
        moment = datetime.fromisoformat(allowed)
        return f"next allowed {format_site_moment(moment, subject.site.timezone)}"
    return gate.title.lower() if gate.title else page_text(gate)


def _corrections(subject: Subject) -> dict[int, list[Any]]:
    """Each visit's corrections from the audit trail (old and new values, reason, who,
    when), oldest first."""
    ids = [str(v.id) for v in subject.visits]
    if not ids:
        return {}
    events = audit_services.recent(audit_services.AuditFilter(related=[("visit", ids)]), limit=500)
    found: dict[int, list[Any]] = {}
    for event in reversed(events):
        if event.action == "visit.correct" and event.entity_id is not None:
            found.setdefault(int(event.entity_id), []).append(event)
    return found


def _subject_page(subject: Subject, refusal: Refusal | None = None) -> tuple[str, int]:
    actor = current_actor()
    now = utcnow()
    gate = _dosing_gate(subject)
    ref = site_today(subject.site, now)
    deviations = visits_service.deviations_of(subject)
    trial = subject.trial
    # Dosing times are the site's wall-clock time, whoever reads or types them.
    site_zone = zone(subject.site.timezone)
    return render_template(
        "enrollment/subject_detail.html",
        subject=subject,
        trial=trial,
        visits=[(v, visits_service.visit_state(v, ref)) for v in subject.visits],
        positive_rcr=[v for v in subject.visits if v.kind == "rcr" and v.result == "positive"],
        rcr_results=[(r, r) for r in RCR_RESULTS],
        cancel_reasons=CANCEL_LABELS,
        deviations=deviations,
        timeline=_timeline(subject, deviations),
        current_version=consent_service.current_consent_version(trial, subject.site_id, ref),
        gate=gate,
        gate_label=_gate_label(gate, subject) if gate else None,
        late_entry=gate is None or gate.title not in FINAL_GATES,
        corrections=_corrections(subject),
        field_labels=VISIT_FIELD_LABELS,
        next_allowed=dosing_service.next_dosing_allowed(trial, subject.cohort),
        dose_bounds=_dose_bounds(subject),
        ltfu_questions=LTFU_QUESTIONS,
        site_worker=actor.role in SITE_WORK,
        refusal=refusal,
        values=typed_values(request.form) if refusal else {},
        today=ref,
        now_local=now.astimezone(site_zone).strftime("%Y-%m-%dT%H:%M"),
        dosing_from=max(subject.consented_on, subject.enrolled_on).isoformat(),
        zone=site_zone.key,
        zone_abbreviation=now.astimezone(site_zone).tzname(),
    ), (refusal.status if refusal else 200)


@bp.route("/subjects/<code>")
@roles(*ANY_ROLE)
def subject_detail(code: str) -> tuple[str, int]:
    return _subject_page(subjects_service.get_subject(current_actor(), code))


def subject_action(
    code: str,
    form: str,
    act: Callable[[Any, Subject], str],
    confirm: Callable[[Subject, dict[int, str]], dict[str, Any]] | None = None,
) -> Any:
    """Run one form of the subject page: PRG on success, the page with errors otherwise.
    An irreversible step (`confirm` given) is first rehearsed and restated on a confirmation
    page; it runs only when that page is confirmed."""
    actor = current_actor()
    subject = subjects_service.get_subject(actor, code)
    if confirm is not None and cancelled(request.form):
        return _subject_page(subject, returned(form))
    if confirm is not None and not confirmed(request.form):
        before = {v.id: v.status for v in subject.visits}
        restated = rehearse(form, lambda: act(actor, subject), lambda _: confirm(subject, before))
        if isinstance(restated, Refusal):
            return _subject_page(subject, restated)
        restated.update(action=request.path, fields=replay_fields(request.form))
        return render_template("pages/confirm.html", confirm=restated)
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

    return subject_action(code, "consent", act)


@bp.route("/subjects/<code>/dosing", methods=["POST"])
@roles(*SITE_WORK)
def subject_dosing(code: str) -> Any:
    def act(actor: Any, subject: Subject) -> str:
        extra = {}
        if request.form.get("dosed_at", "").strip():
            # The input is the site's local time (the infusion happened there).
            extra["dosed_at"] = aware_from_local(
                request.form["dosed_at"], "dosed_at", subject.site.timezone
            )
        fields = ("dosed_at", "dose", "lot_number", "confirm_dose_deviation")
        data = load_form(DosingIn(only=fields), request.form, extra)
        dosing_service.record_dosing(actor, subject, data, utcnow())
        deviation = (
            " It is recorded as a dosing-error deviation."
            if data.get("confirm_dose_deviation")
            and any(d.kind == "dosing_error" for d in visits_service.deviations_of(subject))
            else ""
        )
        return f"Dosing of {subject.code} recorded; the visit schedule is generated.{deviation}"

    return subject_action(code, "dosing", act)


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

    return subject_action(code, f"visit-{visit_id}", act)
