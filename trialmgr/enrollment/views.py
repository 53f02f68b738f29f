"""Pages: trials and their design, the cohort board, the screening log, enrolment, the
subject page (consent, dosing, visits, withdrawal) and the coordinator's visits due.

Every write goes through the same service the API calls; a refused form is re-rendered
with its errors and the refusal's status (422 fields, 409 a rule), and a dosing gate's
refusal shows the gate by name ("Sentinel stagger: next dosing allowed on ...").
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from trialmgr.auth.models import ADMIN, CONSORTIUM_LEAD, COORDINATOR, SAFETY_MONITOR
from trialmgr.auth.policies import ANY_ROLE, current_actor, roles
from trialmgr.db import today, utcnow
from trialmgr.enrollment import services
from trialmgr.enrollment.dosing import _check_escalation
from trialmgr.enrollment.export import screening_csv
from trialmgr.enrollment.models import (
    LTFU_QUESTIONS,
    SCREENING_OUTCOMES,
    SUBJECT_STATUSES,
    TRIAL_STATUSES,
    VECTOR_TYPES,
    Screening,
    Subject,
    Trial,
    Visit,
)
from trialmgr.enrollment.schemas import (
    CohortIn,
    ConsentIn,
    ConsentVersionIn,
    CriterionIn,
    DosingIn,
    EndIn,
    EnrolIn,
    PauseIn,
    ResumeIn,
    SafetyReviewIn,
    ScreeningIn,
    ScreeningPatch,
    ScreeningQuery,
    SubjectQuery,
    TrialIn,
    TrialPatch,
    TrialQuery,
    VisitDefinitionIn,
    VisitPatch,
    WithdrawalIn,
)
from trialmgr.enrollment.trials import RESUME_MEANING, REVIEW_MEANING
from trialmgr.errors import Conflict, Forbidden, NotFound, Problem
from trialmgr.extensions import db
from trialmgr.forms import load_form
from trialmgr.partners import services as partners
from trialmgr.partners.policies import can_manage, may_see_site

bp = Blueprint("enrollment", __name__)

PAGE_SIZE = 50
MANAGERS = (ADMIN, CONSORTIUM_LEAD)
SITE_WORK = (COORDINATOR, ADMIN)
SCREENING_READERS = (COORDINATOR, ADMIN, CONSORTIUM_LEAD)
VISITS_AHEAD_DAYS = 14


def _optional_reason() -> fields.String:
    return fields.String(validate=validate.Length(min=3, max=2000))


class ScreeningOutcomeForm(ScreeningPatch):
    """ScreeningPatch for the page: a first outcome needs no reason; the service asks for
    one when a recorded outcome is changed."""

    reason = _optional_reason()


class VisitForm(VisitPatch):
    """VisitPatch for the page: the first entry needs no reason; the service asks for one
    when a recorded visit is corrected."""

    reason = _optional_reason()


# --- form plumbing --------------------------------------------------------------


@dataclass
class Refusal:
    """Why a form was not saved: shown above the page and next to the form's fields."""

    form: str
    status: int
    title: str
    detail: str
    errors: dict[str, Any] = field(default_factory=dict)


def _refused(form: str, exc: ValidationError | Problem) -> Refusal:
    """The attempt is rolled back first, so the page re-rendered in this request shows what
    is stored, not what was half-written. Not found and forbidden are not form errors."""
    db.session.rollback()
    if isinstance(exc, NotFound | Forbidden):
        raise exc
    if isinstance(exc, ValidationError):
        messages = exc.normalized_messages()
        return Refusal(form, 422, "Not saved", "Please correct the highlighted fields.", messages)
    return Refusal(form, exc.status, exc.title, exc.detail, dict(exc.errors))


def _load(schema: Schema, form: MultiDict[str, str], extra: dict[str, Any] | None = None) -> Any:
    """load_form, plus integers for the schemas' strict integer fields (HTML sends text)."""
    values: dict[str, Any] = {}
    for name, schema_field in schema.fields.items():
        value = form.get(name, "").strip()
        if isinstance(schema_field, fields.Integer) and re.fullmatch(r"-?[0-9]{1,9}", value):
            values[name] = int(value)
    values.update(extra or {})
    return load_form(schema, form, values)


def _without(form: MultiDict[str, str], *names: str) -> MultiDict[str, str]:
    trimmed: MultiDict[str, str] = MultiDict(form)
    for name in names:
        trimmed.poplist(name)
    return trimmed


def _typed(form: MultiDict[str, str]) -> dict[str, str]:
    """What the user typed, to put back in a re-rendered form (a checkbox's last value wins)."""
    return {name: form.getlist(name)[-1] for name in form}


def _yes_no(form: MultiDict[str, str], prefix: str, keys: Any) -> dict[str, bool]:
    """Answers of a group of yes/no radios named `<prefix><key>`; unanswered keys are absent."""
    answers = {}
    for key in keys:
        value = form.get(f"{prefix}{key}")
        if value in ("yes", "no"):
            answers[key] = value == "yes"
    return answers


def _one_page(query: sa.Select[Any]) -> tuple[list[Any], int, bool]:
    """The `?page=` of a list: its rows, the page number, whether another page follows."""
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    rows = db.session.execute(query.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE))
    items = list(rows.scalars())
    return items[:PAGE_SIZE], page, len(items) > PAGE_SIZE


def _filter_args() -> dict[str, str]:
    return {k: v for k, v in request.args.items() if k != "page" and v.strip() != ""}


def _filters(schema: Schema) -> tuple[dict[str, Any], dict[str, Any]]:
    """A list page's filters from the query string (empty ones ignored); bad ones reported."""
    try:
        return load_form(schema, MultiDict(_filter_args())), {}
    except ValidationError as exc:
        return {}, exc.normalized_messages()


def _count(query: sa.Select[Any]) -> int:
    subquery = query.order_by(None).subquery()
    return int(db.session.execute(sa.select(sa.func.count()).select_from(subquery)).scalar_one())


def _user_zone() -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(current_actor().timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _aware(value: str, name: str) -> str:
    """A datetime-local input is naive: it means the user's own time zone."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValidationError({name: ["Give a date and a time."]}) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_user_zone())
    return moment.isoformat()


def _trial_choices(status: str | None = None) -> list[Trial]:
    filters = {"status": status} if status else {}
    return list(db.session.execute(services.trial_query(filters)).scalars())


def _site_choices(actor: Any, active_only: bool = False) -> list[Any]:
    filters = {"status": "active"} if active_only else {}
    return list(db.session.execute(partners.site_query(actor, filters)).scalars())


# --- trials ---------------------------------------------------------------------


@bp.route("/trials")
@roles(*ANY_ROLE)
def trial_list() -> Any:
    filters, errors = _filters(TrialQuery())
    trials, page, has_next = _one_page(services.trial_query(filters))
    return render_template(
        "enrollment/trial_list.html",
        trials=trials,
        statuses=TRIAL_STATUSES,
        args=_filter_args(),
        filtered=bool(filters),
        page=page,
        has_next=has_next,
        errors=errors,
        manager=can_manage(current_actor()),
    ), (422 if errors else 200)


@bp.route("/trials/new", methods=["GET", "POST"])
@roles(*MANAGERS)
def trial_new() -> Any:
    refusal = None
    if request.method == "POST":
        try:
            trial = services.create_trial(current_actor(), _load(TrialIn(), request.form))
            flash(f"Trial {trial.code} created; add its design, then open it.", "success")
            return redirect(url_for("enrollment.trial_detail", trial_id=trial.id))
        except (ValidationError, Problem) as exc:
            refusal = _refused("trial", exc)
    return render_template(
        "enrollment/trial_form.html",
        values=_typed(request.form),
        refusal=refusal,
        vector_types=[(v, v.replace("_", " ")) for v in VECTOR_TYPES],
    ), (refusal.status if refusal else 200)


def _trial_page(trial: Trial, refusal: Refusal | None = None) -> tuple[str, int]:
    actor = current_actor()
    return render_template(
        "enrollment/trial_detail.html",
        trial=trial,
        pauses=services.pauses_of(trial),
        reviews=services.reviews_of(trial),
        current_version=services.current_consent_version(trial, today()),
        cohort_options=[(c.id, f"{c.label} · {c.dose} {c.dose_unit}") for c in trial.cohorts],
        manager=can_manage(actor),
        monitor=actor.role == SAFETY_MONITOR,
        may_pause=actor.role in (SAFETY_MONITOR, ADMIN),
        review_meaning=REVIEW_MEANING,
        resume_meaning=RESUME_MEANING,
        refusal=refusal,
        values=_typed(request.form) if refusal else {},
        today=today(),
        # This page has its own pause banner; the site-wide one lists the other trials.
        paused_trials=[t for t in _trial_choices("paused") if t.id != trial.id],
    ), (refusal.status if refusal else 200)


@bp.route("/trials/<int:trial_id>")
@roles(*ANY_ROLE)
def trial_detail(trial_id: int) -> tuple[str, int]:
    return _trial_page(services.get_trial(trial_id))


def _trial_action(trial_id: int, form: str, act: Callable[[Any, Trial], str]) -> Any:
    """Run one form of the trial page: PRG on success, the page with errors otherwise."""
    trial = services.get_trial(trial_id)
    try:
        done = act(current_actor(), trial)
    except (ValidationError, Problem) as exc:
        return _trial_page(trial, _refused(form, exc))
    flash(done, "success")
    return redirect(url_for("enrollment.trial_detail", trial_id=trial.id))


@bp.route("/trials/<int:trial_id>/cohorts/new", methods=["POST"])
@roles(*MANAGERS)
def cohort_new(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        cohort = services.add_cohort(actor, trial, _load(CohortIn(), request.form))
        return f"Cohort {cohort.label} ({cohort.dose} {cohort.dose_unit}) added."

    return _trial_action(trial_id, "cohort", act)


@bp.route("/trials/<int:trial_id>/criteria", methods=["POST"])
@roles(*MANAGERS)
def criterion_new(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        criterion = services.add_criterion(actor, trial, _load(CriterionIn(), request.form))
        return f"Criterion {criterion.code} added."

    return _trial_action(trial_id, "criterion", act)


@bp.route("/trials/<int:trial_id>/consent-versions", methods=["POST"])
@roles(*MANAGERS)
def consent_version_new(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        data = _load(ConsentVersionIn(), request.form)
        version = services.add_consent_version(actor, trial, data, today())
        due = " Active subjects on older versions are now due for re-consent."
        return (
            f"Consent version {version.version} added.{due if version.reconsent_required else ''}"
        )

    return _trial_action(trial_id, "consent", act)


@bp.route("/trials/<int:trial_id>/visit-definitions", methods=["POST"])
@roles(*MANAGERS)
def visit_definition_new(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        data = _load(VisitDefinitionIn(), request.form)
        definition = services.add_visit_definition(actor, trial, data)
        return f"Visit {definition.name} (day {definition.day}) added to the schedule."

    return _trial_action(trial_id, "visit_definition", act)


@bp.route("/trials/<int:trial_id>/status", methods=["POST"])
@roles(*MANAGERS)
def trial_status(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        data = _load(TrialPatch(only=("status", "reason")), request.form)
        if "status" not in data:
            raise ValidationError({"status": ["Choose open or closed."]})
        services.update_trial(actor, trial, data)
        return f"Trial {trial.code} is {trial.status}."

    form = "status-closed" if request.form.get("status") == "closed" else "status-open"
    return _trial_action(trial_id, form, act)


@bp.route("/trials/<int:trial_id>/safety-reviews", methods=["POST"])
@roles(SAFETY_MONITOR)
def safety_review_new(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        data = _load(SafetyReviewIn(exclude=("meaning",)), request.form)
        review = services.record_safety_review(actor, trial, data, utcnow())
        return f"Safety review of cohort {review.cohort.label} signed: {review.decision}."

    return _trial_action(trial_id, "review", act)


@bp.route("/trials/<int:trial_id>/pause", methods=["POST"])
@roles(SAFETY_MONITOR, ADMIN)
def trial_pause(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        data = _load(PauseIn(), request.form)
        services.pause_trial(actor, trial, data["reason"], utcnow())
        return f"Dosing in {trial.code} is paused trial-wide."

    return _trial_action(trial_id, "pause", act)


@bp.route("/trials/<int:trial_id>/resume", methods=["POST"])
@roles(SAFETY_MONITOR)
def trial_resume(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        data = _load(ResumeIn(), request.form)
        services.resume_trial(actor, trial, data["reason"], data["password"], utcnow())
        return f"Dosing in {trial.code} resumed."

    return _trial_action(trial_id, "resume", act)


def _escalation_wait(trial: Trial, cohort: Any) -> str | None:
    """Why the first dosing of this cohort would wait for a safety review now, if it would:
    the dosing gate's own rule, asked rather than restated."""
    try:
        _check_escalation(trial, cohort, utcnow())
    except Conflict as exc:
        return exc.detail
    return None


@bp.route("/trials/<int:trial_id>/cohorts")
@roles(*ANY_ROLE)
def cohort_board(trial_id: int) -> str:
    actor = current_actor()
    trial = services.get_trial(trial_id)
    board = services.cohort_board(trial, today())
    for row in board:
        row["visible"] = {s.id: may_see_site(actor, s.site_id) for s in row["subjects"]}
        row["waiting_review"] = None if row["dosings"] else _escalation_wait(trial, row["cohort"])
    return render_template("enrollment/cohort_board.html", trial=trial, board=board, now=utcnow())


# --- screening ------------------------------------------------------------------


@bp.route("/screenings")
@roles(*SCREENING_READERS)
def screening_list() -> Any:
    actor = current_actor()
    filters, errors = _filters(ScreeningQuery())
    query = services.screening_query(actor, filters).options(
        selectinload(Screening.site), selectinload(Screening.trial)
    )
    screenings, page, has_next = _one_page(query)
    codes = sa.select(Subject.screening_id, Subject.code).where(
        Subject.screening_id.in_([s.id for s in screenings])
    )
    enrolled: dict[int, str] = {row.screening_id: row.code for row in db.session.execute(codes)}
    return render_template(
        "enrollment/screening_list.html",
        screenings=screenings,
        enrolled=enrolled,
        trials=_trial_choices(),
        sites=_site_choices(actor),
        outcomes=SCREENING_OUTCOMES,
        args=_filter_args(),
        filtered=bool(filters),
        page=page,
        has_next=has_next,
        errors=errors,
        site_worker=actor.role in SITE_WORK,
    ), (422 if errors else 200)


@bp.route("/screenings/export.csv")
@roles(*SCREENING_READERS)
def screening_export() -> Response:
    """The screening log as filtered on the page, every page."""
    filters, errors = _filters(ScreeningQuery())
    if errors:
        raise ValidationError(errors)
    return screening_csv(services.screening_query(current_actor(), filters))


def _screening_form(
    trial: Trial | None, values: dict[str, Any], refusal: Refusal | None
) -> tuple[str, int]:
    sites = _site_choices(current_actor(), active_only=True)
    return render_template(
        "enrollment/screening_form.html",
        trial=trial,
        trials=_trial_choices("open"),
        sites=sites,
        site_options=[(s.id, f"{s.code} · {s.name}") for s in sites],
        values=values,
        refusal=refusal,
        today=today(),
    ), (refusal.status if refusal else 200)


@bp.route("/screenings/new", methods=["GET", "POST"])
@roles(*SITE_WORK)
def screening_new() -> Any:
    """Choose the trial first (?trial_id=, or the only open one), then its criteria appear."""
    trial_id = request.values.get("trial_id", type=int)
    open_trials = _trial_choices("open")
    trial = services.get_trial(trial_id) if trial_id else None
    if trial is None and len(open_trials) == 1:
        trial = open_trials[0]
    if request.method == "GET":
        sites = _site_choices(current_actor(), active_only=True)
        values = {
            "screened_on": today().isoformat(),
            "orphacode": trial.orphacode if trial and trial.orphacode else "",
            "site_id": sites[0].id if len(sites) == 1 else "",
        }
        return _screening_form(trial, values, None)
    try:
        if trial is None:
            raise ValidationError({"trial_id": ["Choose a trial."]})
        outcome = request.form.get("outcome", "")
        if outcome not in SCREENING_OUTCOMES:
            raise ValidationError({"outcome": ["Choose an outcome, or leave it pending."]})
        form = _without(request.form, "outcome") if outcome == "pending" else request.form
        answers = _yes_no(request.form, "crit_", [c.code for c in trial.criteria])
        data = _load(ScreeningIn(), form, {"trial_id": trial.id, "answers": answers})
        screening = services.create_screening(current_actor(), data, today())
    except (ValidationError, Problem) as exc:
        return _screening_form(trial, _typed(request.form), _refused("screening", exc))
    flash(
        f"Screening {screening.site.code} #{screening.number} logged: "
        f"{screening.outcome.replace('_', ' ')}.",
        "success",
    )
    return redirect(url_for("enrollment.screening_detail", screening_id=screening.id))


def _screening_page(screening: Screening, refusal: Refusal | None = None) -> tuple[str, int]:
    actor = current_actor()
    subject = db.session.execute(
        sa.select(Subject).where(Subject.screening_id == screening.id)
    ).scalar_one_or_none()
    return render_template(
        "enrollment/screening_detail.html",
        screening=screening,
        subject=subject,
        site_worker=actor.role in SITE_WORK,
        refusal=refusal,
        values=_typed(request.form) if refusal else {},
    ), (refusal.status if refusal else 200)


@bp.route("/screenings/<int:screening_id>")
@roles(*SCREENING_READERS)
def screening_detail(screening_id: int) -> tuple[str, int]:
    return _screening_page(services.get_screening(current_actor(), screening_id))


@bp.route("/screenings/<int:screening_id>/outcome", methods=["POST"])
@roles(*SITE_WORK)
def screening_outcome(screening_id: int) -> Any:
    actor = current_actor()
    screening = services.get_screening(actor, screening_id)
    try:
        codes = [c.code for c in screening.trial.criteria]
        extra = {"answers": _yes_no(request.form, "crit_", codes)}
        data = _load(ScreeningOutcomeForm(), request.form, extra)
        services.set_screening_outcome(actor, screening, data)
    except (ValidationError, Problem) as exc:
        return _screening_page(screening, _refused("outcome", exc))
    flash(f"Screening outcome: {screening.outcome.replace('_', ' ')}.", "success")
    return redirect(url_for("enrollment.screening_detail", screening_id=screening.id))


# --- enrolment and subjects -----------------------------------------------------


def _cohort_slots(trial: Trial) -> list[dict[str, Any]]:
    return [
        {"cohort": row["cohort"], "free": max(row["cohort"].capacity - row["filled"], 0)}
        for row in services.cohort_board(trial, today())
    ]


@bp.route("/subjects/new", methods=["GET", "POST"])
@roles(*SITE_WORK)
def subject_new() -> Any:
    actor = current_actor()
    screening_id = request.values.get("screening_id", type=int)
    if screening_id is None:
        flash("Enrol from an eligible screening: open it in the screening log.", "info")
        return redirect(url_for("enrollment.screening_list", outcome="eligible"))
    screening = services.get_screening(actor, screening_id)
    refusal = None
    if request.method == "POST":
        try:
            data = _load(EnrolIn(), request.form, {"screening_id": screening.id})
            subject = services.enrol(actor, data, today())
            flash(
                f"Subject {subject.code} enrolled in cohort {subject.cohort.label}. "
                "Use this code on every record.",
                "success",
            )
            return redirect(url_for("enrollment.subject_detail", code=subject.code))
        except (ValidationError, Problem) as exc:
            refusal = _refused("enrol", exc)
    trial = screening.trial
    slots = _cohort_slots(trial)
    current = services.current_consent_version(trial, today())
    open_slot = next((s["cohort"].id for s in slots if s["free"]), "")
    values = (
        _typed(request.form)
        if refusal
        else {
            "cohort_id": open_slot,
            "consent_version_id": current.id if current else "",
            "consented_on": "",
            "enrolled_on": today().isoformat(),
        }
    )
    existing = db.session.execute(
        sa.select(Subject).where(Subject.screening_id == screening.id)
    ).scalar_one_or_none()
    return render_template(
        "enrollment/subject_form.html",
        screening=screening,
        trial=trial,
        slots=slots,
        current=current,
        existing=existing,
        values=values,
        refusal=refusal,
        today=today(),
    ), (refusal.status if refusal else 200)


@bp.route("/subjects")
@roles(*ANY_ROLE)
def subject_list() -> Any:
    actor = current_actor()
    filters, errors = _filters(SubjectQuery())
    query = services.subject_query(actor, filters).options(
        selectinload(Subject.site),
        selectinload(Subject.cohort),
        selectinload(Subject.dosing),
        selectinload(Subject.consent_version),
    )
    subjects, page, has_next = _one_page(query)
    trials = _trial_choices()
    return render_template(
        "enrollment/subject_list.html",
        subjects=subjects,
        trials=trials,
        cohorts=[(t, c) for t in trials for c in t.cohorts],
        sites=_site_choices(actor),
        statuses=SUBJECT_STATUSES,
        args=_filter_args(),
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
        services.check_gates(subject, now, now)
    except Problem as exc:
        return exc
    return None


def _subject_page(subject: Subject, refusal: Refusal | None = None) -> tuple[str, int]:
    actor = current_actor()
    ref = today()
    deviations = services.deviations_of(subject)
    trial = subject.trial
    zone = _user_zone()
    return render_template(
        "enrollment/subject_detail.html",
        subject=subject,
        trial=trial,
        visits=[(v, services.visit_state(v, ref)) for v in subject.visits],
        deviations=deviations,
        timeline=_timeline(subject, deviations),
        current_version=services.current_consent_version(trial, ref),
        gate=_dosing_gate(subject),
        next_allowed=services.next_dosing_allowed(trial, subject.cohort),
        ltfu_questions=LTFU_QUESTIONS,
        site_worker=actor.role in SITE_WORK,
        refusal=refusal,
        values=_typed(request.form) if refusal else {},
        today=ref,
        now_local=utcnow().astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
        dosing_from=max(subject.consented_on, subject.enrolled_on).isoformat(),
        zone=zone.key,
    ), (refusal.status if refusal else 200)


@bp.route("/subjects/<code>")
@roles(*ANY_ROLE)
def subject_detail(code: str) -> tuple[str, int]:
    return _subject_page(services.get_subject(current_actor(), code))


def _subject_action(code: str, form: str, act: Callable[[Any, Subject], str]) -> Any:
    """Run one form of the subject page: PRG on success, the page with errors otherwise."""
    actor = current_actor()
    subject = services.get_subject(actor, code)
    try:
        done = act(actor, subject)
    except (ValidationError, Problem) as exc:
        return _subject_page(subject, _refused(form, exc))
    flash(done, "success")
    return redirect(url_for("enrollment.subject_detail", code=subject.code))


@bp.route("/subjects/<code>/consents", methods=["POST"])
@roles(*SITE_WORK)
def subject_consent(code: str) -> Any:
    def act(actor: Any, subject: Subject) -> str:
        consent = services.record_consent(actor, subject, _load(ConsentIn(), request.form), today())
        return f"Re-consent to version {consent.consent_version.version} recorded."

    return _subject_action(code, "consent", act)


@bp.route("/subjects/<code>/dosing", methods=["POST"])
@roles(*SITE_WORK)
def subject_dosing(code: str) -> Any:
    def act(actor: Any, subject: Subject) -> str:
        extra = {}
        if request.form.get("dosed_at", "").strip():
            extra["dosed_at"] = _aware(request.form["dosed_at"], "dosed_at")
        data = _load(DosingIn(only=("dosed_at", "dose", "lot_number")), request.form, extra)
        services.record_dosing(actor, subject, data, utcnow())
        return f"Dosing of {subject.code} recorded; the visit schedule is generated."

    return _subject_action(code, "dosing", act)


@bp.route("/subjects/<code>/visits/<int:visit_id>", methods=["POST"])
@roles(*SITE_WORK)
def visit_record(code: str, visit_id: int) -> Any:
    def act(actor: Any, subject: Subject) -> str:
        visit = services.get_visit(actor, visit_id)
        if visit.subject_id != subject.id:
            raise NotFound(f"No visit {visit_id} for {subject.code}.")
        extra: dict[str, Any] = {}
        answers = _yes_no(request.form, "q_", LTFU_QUESTIONS)
        if answers:
            extra["answers"] = answers
        data = _load(VisitForm(), request.form, extra)
        services.record_visit(actor, visit, data, today(), utcnow())
        return f"{visit.name}: {visit.status}."

    return _subject_action(code, f"visit-{visit_id}", act)


@bp.route("/subjects/<code>/withdrawal", methods=["POST"])
@roles(*SITE_WORK)
def subject_withdraw(code: str) -> Any:
    def act(actor: Any, subject: Subject) -> str:
        services.withdraw(actor, subject, _load(WithdrawalIn(), request.form), today())
        if subject.withdrawal_kind == "full":
            return f"{subject.code} withdrawn; scheduled visits cancelled."
        return f"{subject.code} withdrawn from procedures; safety follow-up continues."

    return _subject_action(code, "withdraw", act)


@bp.route("/subjects/<code>/end", methods=["POST"])
@roles(*SITE_WORK)
def subject_end(code: str) -> Any:
    def act(actor: Any, subject: Subject) -> str:
        data = _load(EndIn(), request.form)
        services.end_participation(
            actor, subject, data["status"], data["on"], data["reason"], today()
        )
        return f"{subject.code}: {subject.status.replace('_', ' ')} recorded."

    return _subject_action(code, "end", act)


# --- visits due and the coordinator's dashboard ----------------------------------


@bp.route("/visits/due")
@roles(*SITE_WORK)
def visits_due() -> str:
    ref = today()
    query = services.visits_due(current_actor(), ref, VISITS_AHEAD_DAYS).options(
        selectinload(Visit.subject).selectinload(Subject.site)
    )
    visits, page, has_next = _one_page(query)
    return render_template(
        "enrollment/visits_due.html",
        visits=[(v, services.visit_state(v, ref), _days_between(ref, v)) for v in visits],
        days=VISITS_AHEAD_DAYS,
        today=ref,
        args={},
        page=page,
        has_next=has_next,
    )


def _days_between(ref: date, visit: Visit) -> int:
    """Days past the window's end (positive) or until it opens (negative)."""
    if ref > visit.window_end:
        return (ref - visit.window_end).days
    return -max((visit.window_start - ref).days, 0)


def coordinator_summary() -> dict[str, int]:
    """Counts for the coordinator's home page, in the signed-in user's sites."""
    actor = current_user._get_current_object()
    ref = today()
    due = db.session.execute(services.visits_due(actor, ref, VISITS_AHEAD_DAYS)).scalars()
    states = [services.visit_state(v, ref) for v in due]
    return {
        "overdue": states.count("overdue"),
        "due": len(states) - states.count("overdue"),
        "reconsent_due": _count(services.subject_query(actor, {"reconsent_due": True})),
        "pending_screenings": _count(services.screening_query(actor, {"outcome": "pending"})),
    }


@bp.app_context_processor
def enrollment_globals() -> dict[str, Any]:
    return {"coordinator_summary": coordinator_summary, "visits_ahead_days": VISITS_AHEAD_DAYS}
