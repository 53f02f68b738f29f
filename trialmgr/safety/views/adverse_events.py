"""Adverse-event pages: the list with its filters and CSV export, the form (opened from a
subject or from a work-queue task), and the MedDRA look-up behind the form."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import flash, jsonify, redirect, render_template, request, url_for
from marshmallow import ValidationError
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from trialmgr.auth.policies import ANY_ROLE, SITE_WORK, current_actor, roles
from trialmgr.clock import utcnow
from trialmgr.enrollment.models import Subject
from trialmgr.enrollment.services import subjects as subjects_service
from trialmgr.enrollment.views.common import aware_from_local, messages
from trialmgr.errors import NotFound
from trialmgr.extensions import db
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
from trialmgr.safety.export import adverse_events_csv
from trialmgr.safety.models import AdverseEvent, WorkItem
from trialmgr.safety.schemas import AdverseEventIn, AdverseEventQuery, MeddraOut
from trialmgr.safety.services import adverse_events as ae_service
from trialmgr.safety.services import clocks as clock_service
from trialmgr.safety.services import dictionary as dictionary_service
from trialmgr.safety.services import work as work_service
from trialmgr.safety.views.common import (
    ACTIONS,
    AESI,
    CAUSALITY,
    GRADES,
    OUTCOMES,
    SERIOUSNESS,
    bp,
    local_input,
    options,
    site_choices,
    trial_choices,
    zone_words,
)

# What the form takes from the task it fulfils, never from the posted fields.
TASK_LINKS = ("task_id", "lab_result_id", "source_visit_id", "subject_code", "serious")


@bp.route("/adverse-events")
@roles(*ANY_ROLE)
def ae_list() -> Any:
    actor = current_actor()
    filters, errors = load_filters(AdverseEventQuery())
    query = ae_service.query(actor, filters).options(
        selectinload(AdverseEvent.subject).selectinload(Subject.site)
    )
    events, page, has_next = page_of(query)
    trials = trial_choices()
    return render_template(
        "safety/ae_list.html",
        events=[(ae, ae_service.review_state(ae)) for ae in events],
        trials=trials,
        cohorts=[(t, c) for t in trials for c in t.cohorts],
        sites=site_choices(actor),
        args=filter_args(),
        filtered=bool(filters),
        page=page,
        has_next=has_next,
        errors=errors,
        site_worker=actor.role in SITE_WORK,
    ), (422 if errors else 200)


@bp.route("/adverse-events/export.csv")
@roles(*ANY_ROLE)
def ae_export() -> Response:
    """The list as filtered on the page, every page."""
    filters, errors = load_filters(AdverseEventQuery())
    if errors:
        raise ValidationError(errors)
    return adverse_events_csv(ae_service.query(current_actor(), filters))


# --- the form ------------------------------------------------------------------------


def choose_subject(endpoint: str, heading: str) -> tuple[str, int]:
    """A form needs its subject first: the coordinator's subjects to choose from."""
    query = subjects_service.subject_query(current_actor(), {})
    return render_template(
        "safety/choose_subject.html",
        subjects=list(db.session.execute(query).scalars()),
        endpoint=endpoint,
        heading=heading,
    ), 200


def _task(actor: Any, subject: Any, task_id: int | None) -> WorkItem | None:
    """The open work-queue task the form fulfils, if it was opened from one."""
    if task_id is None:
        return None
    task = work_service.get_item(actor, task_id)
    if task.subject_id != subject.id:
        raise NotFound(f"No task {task_id} for {subject.code}.")
    if task.status != "open":
        flash(f"The task “{task.title}” is already {task.status}.", "info")
        return None
    return task


def _initial(subject: Any, task: WorkItem | None) -> tuple[dict[str, str], list[str]]:
    """The form's first values: now as the site's awareness, or the task's prefill."""
    zone_name = subject.site.timezone
    values = {"site_awareness_at": local_input(utcnow(), zone_name)}
    prefill = dict(task.prefill or {}) if task else {}
    for key in ("term", "soc", "onset_date", "grade", "aesi_category", "causality", "pt_code"):
        if prefill.get(key) is not None:
            values[key] = str(prefill[key])
    for key in ("aesi", "expected"):
        if key in prefill:
            values[key] = "true" if prefill[key] else "false"
    if prefill.get("site_awareness_at"):
        aware = datetime.fromisoformat(prefill["site_awareness_at"])
        values["site_awareness_at"] = local_input(aware, zone_name)
    return values, list(prefill.get("seriousness_criteria") or [])


def _record_data(subject: Any, task: WorkItem | None) -> dict[str, Any]:
    """The posted form as AdverseEventIn: awareness times typed in the site's local time,
    the subject, task and the records it links taken from the page, not the post."""
    form: MultiDict[str, str] = MultiDict(
        [(k, v) for k, v in request.form.items(multi=True) if k not in TASK_LINKS]
    )
    extra: dict[str, Any] = {"subject_code": subject.code}
    for name in ("site_awareness_at", "sponsor_awareness_at"):
        if form.get(name, "").strip():
            extra[name] = aware_from_local(form[name], name, subject.site.timezone)
    if task is not None:
        extra["task_id"] = task.id
        lab_id = task.lab_result_id or task.prefill.get("lab_result_id")
        visit_id = task.visit_id or task.prefill.get("source_visit_id")
        if lab_id:
            extra["lab_result_id"] = lab_id
        if visit_id:
            extra["source_visit_id"] = visit_id
    return load_form(AdverseEventIn(), form, extra)


def _recorded_message(ae: AdverseEvent, paused_now: bool) -> None:
    now = utcnow()
    reports = list(
        db.session.execute(
            clock_service.report_query(current_actor(), {"adverse_event_id": ae.id}, now)
        ).scalars()
    )
    kind = "SUSAR" if ae.susar else ("serious adverse event" if ae.serious else "adverse event")
    text = (
        f"{kind[0].upper()}{kind[1:]} recorded for {ae.subject.code}: {ae.term}, grade {ae.grade}."
    )
    if reports:
        text += (
            f" {len(reports)} expedited-reporting clock{'s' if len(reports) != 1 else ''} opened."
        )
    flash(text, "success")
    if paused_now:
        flash(
            f"This event fired a stopping rule: dosing in {ae.subject.trial.code} is paused "
            "until a safety monitor resumes it.",
            "warning",
        )


@bp.route("/adverse-events/new", methods=["GET", "POST"])
@roles(*SITE_WORK)
def ae_new() -> Any:
    actor = current_actor()
    code = request.values.get("subject", "").strip()
    if not code:
        return choose_subject("safety.ae_new", "Record an adverse event")
    subject = subjects_service.get_subject(actor, code)
    task = _task(actor, subject, request.values.get("task", type=int))
    refusal: Refusal | None = None
    lookup = request.method == "POST" and bool(request.form.get("lookup"))
    if request.method == "POST" and not lookup:
        was_paused = subject.trial.status == "paused"
        ae = submit("ae", lambda: ae_service.record(actor, _record_data(subject, task), utcnow()))
        if not isinstance(ae, Refusal):
            _recorded_message(ae, not was_paused and ae.subject.trial.status == "paused")
            return redirect(url_for("safety.ae_detail", ae_id=ae.id))
        refusal = ae
        refusal.errors = {k: messages(v) for k, v in refusal.errors.items()}
    if request.method == "POST":
        values, criteria = typed_values(request.form), request.form.getlist("seriousness_criteria")
    else:
        values, criteria = _initial(subject, task)
    query = values.get("meddra_q", "").strip()
    matches = dictionary_service.search(query) if lookup and len(query) >= 2 else []
    return render_template(
        "safety/ae_form.html",
        subject=subject,
        task=task,
        values=values,
        criteria=criteria,
        refusal=refusal,
        errors=refusal.errors if refusal else {},
        dictionary=dictionary_service.loaded(),
        matches=matches,
        looked_up=lookup,
        today=site_today(subject.site, utcnow()),
        grades=GRADES,
        seriousness=SERIOUSNESS,
        causality=options(CAUSALITY),
        aesi_categories=options(AESI),
        actions=options(ACTIONS),
        outcomes=options(OUTCOMES),
        now_local=local_input(utcnow(), subject.site.timezone),
        **zone_words(subject.site.timezone),
    ), (refusal.status if refusal else 200)


@bp.route("/meddra/search")
@roles(*ANY_ROLE)
def meddra_search() -> Any:
    """The imported MedDRA terms matching `q` (the AE form's look-up, as it is typed)."""
    text = request.args.get("q", "").strip()
    if not 2 <= len(text) <= 100:
        return jsonify([])
    return jsonify(MeddraOut(many=True).dump(dictionary_service.search(text)))
