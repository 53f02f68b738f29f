"""Efficacy pages: a trial's endpoint definitions and its per-cohort summary over time (median
with the min-max band, drawn by static/js/safety-charts.js above the table it draws), the
CSV export of the measurements, and per subject the measurements with their change from
baseline, a chart over study days, the entry form (coordinators, their sites) and
corrections with a reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from marshmallow import fields, validate

from trialmgr.auth.policies import ANY_ROLE, MANAGERS, SITE_WORK, current_actor, roles
from trialmgr.clock import utcnow
from trialmgr.db import IdFilter
from trialmgr.efficacy.models import DIRECTIONS
from trialmgr.efficacy.schemas import EndpointIn, MeasurementIn, MeasurementPatch, SummaryQuery
from trialmgr.efficacy.services import endpoints as endpoint_service
from trialmgr.efficacy.services import measurements as measurement_service
from trialmgr.efficacy.services import summary as summary_service
from trialmgr.enrollment.models import Subject, Trial
from trialmgr.enrollment.services import subjects as subjects_service
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.errors import NotFound
from trialmgr.export import csv_response
from trialmgr.extensions import db
from trialmgr.forms import Refusal, filter_args, load_filters, load_form, submit, typed_values
from trialmgr.partners.policies import can_manage
from trialmgr.partners.services.sites import site_today
from trialmgr.templating import format_date

bp = Blueprint("efficacy", __name__)

SUBJECTS_LISTED = 200


class EfficacyFilters(SummaryQuery):
    trial_id = IdFilter()


class CorrectionForm(MeasurementPatch):
    """A correction from the subject page: the inputs of one measurement's row."""

    visit_id = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1))


@bp.route("/efficacy")
@roles(*ANY_ROLE)
def index() -> Any:
    """The efficacy page of the trial asked for, else of the first open or paused trial."""
    filters, _ = load_filters(EfficacyFilters())
    trials = list(db.session.execute(trials_service.trial_query({})).scalars())
    if not trials:
        return render_template("efficacy/no_trial.html")
    chosen = next((t for t in trials if t.id == filters.get("trial_id")), None)
    chosen = chosen or next((t for t in trials if t.status in ("open", "paused")), trials[0])
    return redirect(url_for("efficacy.trial_efficacy", trial_id=chosen.id))


def _cohort_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Timepoints in study-day order; per cohort its median, min and max at each."""
    points = sorted({(r["day"] if r["day"] is not None else -(10**6), r["visit"]) for r in rows})
    labels = [visit for _, visit in points]
    cohorts: dict[str, dict[str, list[float | None]]] = {}
    for r in rows:
        series = cohorts.setdefault(
            r["cohort"], {k: [None] * len(labels) for k in ("median", "min", "max")}
        )
        i = labels.index(r["visit"])
        for k in ("median", "min", "max"):
            series[k][i] = r[k]
    return {"labels": labels, "cohorts": [{"label": k, **v} for k, v in cohorts.items()]}


def _trial_page(trial: Trial, refusal: Refusal | None = None) -> tuple[str, int]:
    actor = current_actor()
    filters, errors = load_filters(EfficacyFilters())
    endpoints = endpoint_service.endpoints_of(trial.id)
    endpoint, rows = None, []
    if endpoints:
        endpoint = next((e for e in endpoints if e.id == filters.get("endpoint_id")), endpoints[0])
        rows = summary_service.summary(actor, trial, endpoint, filters)
    subjects = list(
        db.session.execute(
            subjects_service.subject_query(actor, {"trial_id": trial.id}).limit(SUBJECTS_LISTED)
        ).scalars()
    )
    return render_template(
        "efficacy/trial.html",
        trial=trial,
        endpoints=endpoints,
        endpoint=endpoint,
        rows=rows,
        chart=_cohort_chart(rows),
        subjects=subjects,
        manager=can_manage(actor),
        directions=[(d, d.replace("_", " ")) for d in DIRECTIONS],
        refusal=refusal,
        values=typed_values(request.form) if refusal else {},
        args=filter_args(),
        errors=errors,
    ), (refusal.status if refusal else 422 if errors else 200)


@bp.route("/trials/<int:trial_id>/efficacy")
@roles(*ANY_ROLE)
def trial_efficacy(trial_id: int) -> tuple[str, int]:
    return _trial_page(trials_service.get_trial(trial_id))


@bp.route("/trials/<int:trial_id>/efficacy/endpoints", methods=["POST"])
@roles(*MANAGERS)
def endpoint_new(trial_id: int) -> Any:
    trial = trials_service.get_trial(trial_id)
    done = submit(
        "endpoint",
        lambda: endpoint_service.add_endpoint(
            current_actor(), trial, load_form(EndpointIn(), request.form)
        ),
    )
    if isinstance(done, Refusal):
        return _trial_page(trial, done)
    flash(f"Endpoint {done.code} ({done.name}, {done.unit}) added.", "success")
    return redirect(url_for("efficacy.trial_efficacy", trial_id=trial.id))


CSV_COLUMNS = [
    "id",
    "subject_code",
    "endpoint_code",
    "unit",
    "visit",
    "measured_on",
    "study_day",
    "value",
    "baseline",
    "baseline_used",
    "baseline_value",
    "baseline_on",
    "change_from_baseline",
    "percent_change_from_baseline",
    "change_note",
]


@bp.route("/trials/<int:trial_id>/efficacy/measurements.csv")
@roles(*ANY_ROLE)
def efficacy_export(trial_id: int) -> Response:
    """Every measurement of the trial in the reader's sites, with its change from baseline."""
    trial = trials_service.get_trial(trial_id)
    filters, _ = load_filters(EfficacyFilters())
    filters["trial_id"] = trial.id
    found = list(db.session.execute(measurement_service.query(current_actor(), filters)).scalars())
    views = measurement_service.annotate(found)
    rows = ([view[c] for c in CSV_COLUMNS] for view in views)
    return csv_response(f"{trial.code}-efficacy.csv", CSV_COLUMNS, rows)


# --- per subject --------------------------------------------------------------------------


def _subject_chart(views: list[dict[str, Any]]) -> dict[str, Any]:
    dated = [v for v in views if v["study_day"] is not None]
    return {
        "value": [{"x": v["study_day"], "y": v["value"]} for v in dated],
        "change": [
            {"x": v["study_day"], "y": v["change_from_baseline"]}
            for v in dated
            if v["change_from_baseline"] is not None
        ],
    }


def _subject_page(subject: Subject, refusal: Refusal | None = None) -> tuple[str, int]:
    actor = current_actor()
    endpoints = endpoint_service.endpoints_of(subject.trial_id)
    chosen = request.args.get("endpoint_id", type=int)
    endpoint = next((e for e in endpoints if e.id == chosen), endpoints[0] if endpoints else None)
    found = list(
        db.session.execute(
            measurement_service.query(actor, {"subject_code": subject.code})
        ).scalars()
    )
    views = measurement_service.annotate(found)
    shown = [v for v in views if endpoint is not None and v["endpoint_id"] == endpoint.id]
    return render_template(
        "efficacy/subject.html",
        subject=subject,
        trial=subject.trial,
        endpoints=endpoints,
        endpoint=endpoint,
        measurements=views,
        chart=_subject_chart(shown),
        shown=shown,
        endpoint_options=[(e.id, f"{e.code} · {e.name} ({e.unit})") for e in endpoints],
        visit_options=[
            (v.id, f"{v.name} (day {v.day}, {format_date(v.scheduled_on)})")
            for v in subject.visits
            if v.status != "cancelled"
        ],
        site_worker=actor.role in SITE_WORK,
        refusal=refusal,
        values=typed_values(request.form) if refusal else {},
        today=site_today(subject.site, utcnow()),
        dosed_on=measurement_service.dosed_on(subject),
    ), (refusal.status if refusal else 200)


@bp.route("/subjects/<code>/efficacy")
@roles(*ANY_ROLE)
def subject_efficacy(code: str) -> tuple[str, int]:
    return _subject_page(subjects_service.get_subject(current_actor(), code))


def _subject_action(code: str, form: str, act: Callable[[Any, Subject], str]) -> Any:
    actor = current_actor()
    subject = subjects_service.get_subject(actor, code)
    done = submit(form, lambda: act(actor, subject))
    if isinstance(done, Refusal):
        return _subject_page(subject, done)
    flash(done, "success")
    return redirect(url_for("efficacy.subject_efficacy", code=subject.code))


@bp.route("/subjects/<code>/efficacy", methods=["POST"])
@roles(*SITE_WORK)
def measurement_new(code: str) -> Any:
    def act(actor: Any, subject: Subject) -> str:
        data = load_form(MeasurementIn(), request.form, {"subject_code": subject.code})
        m = measurement_service.record(actor, data, utcnow())
        kind = "Baseline" if m.baseline else "Measurement"
        value = f"{m.value:g} {m.endpoint.unit}"
        return f"{kind} of {m.endpoint.code} on {format_date(m.measured_on)} recorded: {value}."

    return _subject_action(code, "measurement", act)


@bp.route("/subjects/<code>/efficacy/<int:measurement_id>", methods=["POST"])
@roles(*SITE_WORK)
def measurement_edit(code: str, measurement_id: int) -> Any:
    def act(actor: Any, subject: Subject) -> str:
        m = measurement_service.get(actor, measurement_id)
        if m.subject_id != subject.id:
            raise NotFound(f"No efficacy measurement {measurement_id}.")
        data = load_form(CorrectionForm(), request.form, clearable=True)
        measurement_service.update(actor, m, data, utcnow())
        return f"Measurement of {m.endpoint.code} on {format_date(m.measured_on)} corrected."

    return _subject_action(code, f"edit-{measurement_id}", act)
