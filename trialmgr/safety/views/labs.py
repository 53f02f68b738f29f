"""Lab pages: entry with the grade shown as the value is typed (the server grades: the
page's script only asks `/labs/grade`), and a subject's results with grades and ULN
multiples."""

from __future__ import annotations

from typing import Any

from flask import flash, jsonify, redirect, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from trialmgr.auth.policies import ANY_ROLE, SITE_WORK, current_actor, roles
from trialmgr.clock import utcnow
from trialmgr.enrollment.services import subjects as subjects_service
from trialmgr.enrollment.views.common import aware_from_local, flat_errors
from trialmgr.errors import Invalid
from trialmgr.forms import Refusal, load_form, page_of, submit, typed_values
from trialmgr.partners.services.sites import site_today
from trialmgr.safety import grading
from trialmgr.safety.schemas import GradeQuery, LabIn
from trialmgr.safety.services import labs as lab_service
from trialmgr.safety.services import work as work_service
from trialmgr.safety.views.adverse_events import choose_subject
from trialmgr.safety.views.common import bp, local_input, zone_words
from trialmgr.templating import page_messages, page_text


def analytes() -> list[dict[str, Any]]:
    """Each analyte with its CTCAE term, direction, the limit it needs and its units."""
    return [
        {
            "code": a.code,
            "label": a.label,
            "unit": a.unit,
            "units": list(a.units),
            "limit": "ULN" if a.direction == grading.INCREASED else "LLN",
        }
        for a in grading.ANALYTES.values()
    ]


@bp.route("/labs/new", methods=["GET", "POST"])
@roles(*SITE_WORK)
def lab_new() -> Any:
    actor = current_actor()
    code = request.values.get("subject", "").strip()
    if not code:
        return choose_subject("safety.lab_new", "Enter a lab result")
    subject = subjects_service.get_subject(actor, code)
    zone_name = subject.site.timezone
    refusal = None
    if request.method == "POST":

        def act() -> Any:
            form: MultiDict[str, str] = MultiDict(
                [(k, v) for k, v in request.form.items(multi=True) if k != "subject_code"]
            )
            extra: dict[str, Any] = {"subject_code": subject.code}
            if form.get("collected_at", "").strip():
                extra["collected_at"] = aware_from_local(
                    form["collected_at"], "collected_at", zone_name
                )
            return lab_service.record(actor, load_form(LabIn(), form, extra), utcnow())

        lab = submit("lab", act)
        if not isinstance(lab, Refusal):
            label = grading.describe(lab.analyte, lab.grade)
            flash(
                f"{lab.analyte} {lab.value.normalize():f} {lab.unit} recorded: {label}.", "success"
            )
            if lab.grade >= lab_service.LAB_AE_GRADE or lab.hys_law:
                flash(
                    "Record the adverse event this result shows, or link it to one: "
                    "the task is in your work queue and below.",
                    "warning",
                )
            return redirect(url_for("safety.subject_labs", code=subject.code))
        refusal = lab
    values = typed_values(request.form) if refusal else {"collected_at": ""}
    return render_template(
        "safety/lab_form.html",
        subject=subject,
        analytes=analytes(),
        values=values,
        refusal=refusal,
        now_local=local_input(utcnow(), zone_name),
        **zone_words(zone_name),
    ), (refusal.status if refusal else 200)


@bp.route("/labs/grade")
@roles(*ANY_ROLE)
def lab_grade() -> Any:
    """The grade a value would get, as JSON for the lab form's script; nothing is stored.
    Incomplete or wrong input answers 422 with the errors per field."""
    try:
        return jsonify(lab_service.preview(load_form(GradeQuery(), request.args)))
    except ValidationError as exc:
        return jsonify(detail="Not graded yet.", errors=flat_errors(exc)), 422
    except Invalid as exc:
        return jsonify(detail=page_text(exc), errors=page_messages(exc.field_messages)), 422


@bp.route("/subjects/<code>/labs")
@roles(*ANY_ROLE)
def subject_labs(code: str) -> Any:
    actor = current_actor()
    subject = subjects_service.get_subject(actor, code)
    labs, page, has_next = page_of(lab_service.query(actor, {"subject_code": subject.code}))
    tasks = work_service.tasks_about(include_done=False, subject_id=subject.id, kind="lab_ae")
    return render_template(
        "safety/subject_labs.html",
        subject=subject,
        labs=labs,
        tasks={t.lab_result_id: t for t in tasks},
        open_tasks=tasks,
        page=page,
        has_next=has_next,
        args={"code": subject.code},
        site_worker=actor.role in SITE_WORK,
        today=site_today(subject.site, utcnow()),
    )
