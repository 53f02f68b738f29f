"""The safety dashboard pages: the DSMB's numbers for a trial (coordinators: their sites),
filtered by cohort, site and onset dates; every number links to the listing behind it
(events, clocks, lab draws, with CSV export); per-cohort signals; a subject's safety profile
on one timeline. Charts are drawn by static/js/safety-charts.js from data attributes, each
above the table it draws (its text alternative). Pages read through the safety services.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, redirect, render_template, url_for
from marshmallow import Schema, fields, validate

from trialmgr.auth.policies import ANY_ROLE, current_actor, roles
from trialmgr.clock import utcnow
from trialmgr.db import IdFilter
from trialmgr.enrollment.models import Trial
from trialmgr.enrollment.services import subjects as subjects_service
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.errors import Invalid
from trialmgr.export import csv_response
from trialmgr.extensions import db
from trialmgr.forms import filter_args, load_filters, page_of
from trialmgr.safety.models import AESI_CATEGORIES, ANALYTE_CODES
from trialmgr.safety.services import listings
from trialmgr.safety.services import summary as summary_service
from trialmgr.safety.services.scope import Scope, scope_for

bp = Blueprint("safety_dashboard", __name__, url_prefix="/safety")

GRADES = (1, 2, 3, 4, 5)


class DashboardFilters(Schema):
    """The dashboard's filters and the listings' (page-only; the API has SummaryQuery)."""

    trial_id = IdFilter()
    site_id = IdFilter()
    cohort_id = IdFilter()
    since = fields.Date()
    until = fields.Date()
    # events
    soc = fields.String(validate=validate.Length(max=200))
    worst_grade = fields.Integer(validate=validate.Range(min=0, max=5))
    grade = fields.Integer(validate=validate.Range(min=1, max=5))
    min_grade = fields.Integer(validate=validate.Range(min=0, max=5))
    serious = fields.Boolean()
    suspected = fields.Boolean()
    open = fields.Boolean()
    susar = fields.Boolean()
    aesi = fields.Boolean()
    aesi_category = fields.String(validate=validate.OneOf(AESI_CATEGORIES))
    dosed = fields.Boolean()
    # clocks
    status = fields.String(validate=validate.OneOf(listings.CLOCK_STATUSES))
    # labs
    analyte = fields.String(validate=validate.OneOf(ANALYTE_CODES))
    baseline_grade = fields.String(validate=validate.OneOf(["none", "0", "1", "2", "3", "4"]))


def _read(trial_id: int) -> tuple[Trial, Scope, dict[str, Any], dict[str, Any]]:
    """The trial, the reader's scope from the query string, the filters, their errors."""
    trial = trials_service.get_trial(trial_id)
    filters, errors = load_filters(DashboardFilters())
    return trial, scope_for(current_actor(), trial, filters), filters, errors


def _read_for_export(trial_id: int) -> tuple[Trial, Scope, dict[str, Any]]:
    """As `_read`, but a download with a filter it cannot apply is refused (422), never
    answered with every row unfiltered."""
    trial, scope, filters, errors = _read(trial_id)
    if errors:
        raise Invalid("The download's filters are not valid.", errors=errors)
    return trial, scope, filters


def _base(scope: Scope, filters: dict[str, Any]) -> dict[str, Any]:
    """The scope's query arguments: every drill-down link carries them."""
    base = scope.args()
    if filters.get("site_id") is not None:
        base["site_id"] = filters["site_id"]
    return base


def _context(trial: Trial, scope: Scope, filters: dict[str, Any], errors: dict[str, Any]) -> dict:
    actor = current_actor()
    return {
        "trial": trial,
        "trials": list(db.session.execute(trials_service.trial_query({})).scalars()),
        "sites": summary_service.site_choices(actor),
        "cohort_labels": {c.id: c.label for c in trial.cohorts},
        "base": _base(scope, filters),
        "args": filter_args(),
        "filters": filters,
        "errors": errors,
        "coordinator": actor.role == "coordinator",
    }


@bp.route("")
@roles(*ANY_ROLE)
def index() -> Any:
    """The dashboard of the trial asked for (`?trial_id=`, the filter form), else of the
    first open or paused trial."""
    filters, _ = load_filters(DashboardFilters())
    trials = list(db.session.execute(trials_service.trial_query({})).scalars())
    if not trials:
        return render_template("safety_dashboard/no_trial.html")
    chosen = next((t for t in trials if t.id == filters.get("trial_id")), None)
    chosen = chosen or next((t for t in trials if t.status in ("open", "paused")), trials[0])
    args: dict[str, Any] = {k: v for k, v in filter_args().items() if k != "trial_id"}
    return redirect(url_for("safety_dashboard.dashboard", trial_id=chosen.id, **args))


def _grade_chart(rows: list[dict[str, Any]], labels: dict[int, str]) -> dict[str, Any]:
    counts = {(r["cohort_id"], r["grade"]): r["events"] for r in rows}
    return {
        "labels": [f"Grade {g}" for g in GRADES],
        "datasets": [
            {"label": label, "data": [counts.get((cohort_id, g), 0) for g in GRADES]}
            for cohort_id, label in labels.items()
        ],
    }


def _uln_chart(series: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "datasets": [
            {
                "label": f"{s['subject_code']} ({s['cohort']})",
                "data": [{"x": p["day"], "y": p["uln_multiple"]} for p in s["points"]],
            }
            for s in series
        ]
    }


@bp.route("/trials/<int:trial_id>")
@roles(*ANY_ROLE)
def dashboard(trial_id: int) -> tuple[str, int]:
    trial, scope, filters, errors = _read(trial_id)
    now = utcnow()
    data = summary_service.safety_summary(current_actor(), trial, filters, now)
    context = _context(trial, scope, filters, errors)
    return render_template(
        "safety_dashboard/dashboard.html",
        s=data,
        grades=GRADES,
        grade_chart=_grade_chart(data["by_grade_cohort"], context["cohort_labels"]),
        grade_counts={(r["cohort_id"], r["grade"]): r for r in data["by_grade_cohort"]},
        uln_chart=_uln_chart(data["alt_series"]),
        now=now,
        **context,
    ), (422 if errors else 200)


# --- listings ---------------------------------------------------------------------------


def _totals(query: sa.Select[Any], column: str) -> tuple[int, int]:
    """Rows and distinct subjects of a listing."""
    sub = query.order_by(None).subquery()
    rows, subjects = db.session.execute(
        sa.select(sa.func.count(), sa.func.count(sa.distinct(sub.c[column])))
    ).one()
    return int(rows), int(subjects)


@bp.route("/trials/<int:trial_id>/events")
@roles(*ANY_ROLE)
def events(trial_id: int) -> tuple[str, int]:
    trial, scope, filters, errors = _read(trial_id)
    query = listings.event_query(scope, filters)
    rows, page, has_next = page_of(query)
    total, subjects = _totals(query, "subject_id")
    return render_template(
        "safety_dashboard/events.html",
        events=rows,
        total=total,
        subjects=subjects,
        page=page,
        has_next=has_next,
        **_context(trial, scope, filters, errors),
    ), (422 if errors else 200)


EVENT_COLUMNS = [
    "id",
    "term",
    "pt_term",
    "soc",
    "grade",
    "onset_date",
    "resolution_date",
    "serious",
    "causality",
    "expected",
    "susar",
    "aesi",
    "aesi_category",
    "action_taken",
    "outcome",
]


@bp.route("/trials/<int:trial_id>/events.csv")
@roles(*ANY_ROLE)
def events_export(trial_id: int) -> Response:
    trial, scope, filters = _read_for_export(trial_id)
    labels = {c.id: c.label for c in trial.cohorts}
    header = ["subject", "site", "cohort", *EVENT_COLUMNS, "seriousness_criteria"]
    query = listings.event_query(scope, filters)

    def rows() -> Any:
        return (
            [
                e.subject.code,
                e.subject.site.code,
                labels[e.cohort_id],
                *(getattr(e, column) for column in EVENT_COLUMNS),
                " ".join(e.seriousness_criteria or []),
            ]
            for e in db.session.execute(query).scalars()
        )

    return csv_response(f"{trial.code}-adverse-events.csv", header, rows)


def _clock_status(filters: dict[str, Any]) -> str:
    return str(filters.get("status") or "open")


@bp.route("/trials/<int:trial_id>/clocks")
@roles(*ANY_ROLE)
def clocks(trial_id: int) -> tuple[str, int]:
    trial, scope, filters, errors = _read(trial_id)
    now = utcnow()
    status = _clock_status(filters)
    query = listings.clock_query(scope, status, now)
    rows, page, has_next = page_of(query, mappings=True)
    return render_template(
        "safety_dashboard/clocks.html",
        clocks=list(summary_service.clock_rows(rows, now)),
        status=status,
        statuses=listings.CLOCK_STATUSES,
        total=_totals(query, "id")[0],
        page=page,
        has_next=has_next,
        **_context(trial, scope, filters, errors),
    ), (422 if errors else 200)


CLOCK_HEADER = [
    "id",
    "adverse_event_id",
    "subject_code",
    "site",
    "term",
    "authority",
    "kind",
    "clock_start",
    "due_at",
    "days_left",
    "status",
    "submitted_at",
    "reference",
    "late",
]


@bp.route("/trials/<int:trial_id>/clocks.csv")
@roles(*ANY_ROLE)
def clocks_export(trial_id: int) -> Response:
    trial, scope, filters = _read_for_export(trial_id)
    now = utcnow()
    query = listings.clock_query(scope, _clock_status(filters), now)

    def rows() -> Any:
        streamed = db.session.execute(query.execution_options(yield_per=listings.LISTING_BATCH))
        views = summary_service.clock_rows(streamed.mappings(), now)
        # Days left mean nothing once a clock is submitted: blank, as on the page.
        return (
            [None if k == "days_left" and view["submitted_at"] else view[k] for k in CLOCK_HEADER]
            for view in views
        )

    return csv_response(f"{trial.code}-expedited-reports.csv", CLOCK_HEADER, rows)


@bp.route("/trials/<int:trial_id>/labs")
@roles(*ANY_ROLE)
def labs(trial_id: int) -> tuple[str, int]:
    trial, scope, filters, errors = _read(trial_id)
    query = listings.lab_query(scope, filters)
    rows, page, has_next = page_of(query)
    total, subjects = _totals(query, "subject_id")
    return render_template(
        "safety_dashboard/labs.html",
        labs=listings.lab_rows(rows),
        total=total,
        subjects=subjects,
        analytes=ANALYTE_CODES,
        page=page,
        has_next=has_next,
        **_context(trial, scope, filters, errors),
    ), (422 if errors else 200)


LAB_HEADER = [
    "id",
    "subject_code",
    "site",
    "analyte",
    "value",
    "unit",
    "uln",
    "uln_multiple",
    "grade",
    "collected_at",
    "collected_on",
    "study_day",
    "hys_law",
]


@bp.route("/trials/<int:trial_id>/labs.csv")
@roles(*ANY_ROLE)
def labs_export(trial_id: int) -> Response:
    trial, scope, filters = _read_for_export(trial_id)
    views = listings.lab_rows(
        list(db.session.execute(listings.lab_query(scope, filters)).scalars())
    )
    rows = ([v[k] for k in LAB_HEADER] for v in views)
    return csv_response(f"{trial.code}-labs.csv", LAB_HEADER, rows)


@bp.route("/trials/<int:trial_id>/signals")
@roles(*ANY_ROLE)
def signals(trial_id: int) -> tuple[str, int]:
    trial, scope, filters, errors = _read(trial_id)
    table = summary_service.signal_table(current_actor(), trial, filters)
    return render_template(
        "safety_dashboard/signals.html", table=table, **_context(trial, scope, filters, errors)
    ), (422 if errors else 200)


# --- a subject's safety profile -------------------------------------------------------------


@bp.route("/subjects/<code>")
@roles(*ANY_ROLE)
def subject_profile(code: str) -> str:
    subject = subjects_service.get_subject(current_actor(), code)
    profile = listings.subject_profile(subject)
    chart = {
        "datasets": [
            {"label": analyte, "data": [{"x": p["day"], "y": p["uln_multiple"]} for p in points]}
            for analyte, points in profile["liver_series"].items()
        ]
    }
    return render_template(
        "safety_dashboard/subject.html",
        subject=subject,
        trial=subject.trial,
        p=profile,
        liver_chart=chart,
    )


def comparison_for_trial_page(trial: Trial) -> dict[str, Any] | None:
    """The cohort comparison for the trial page's safety-review section (see trialmgr's
    template global `safety_cohort_comparison`); None when nobody is dosed yet."""
    table = summary_service.cohort_comparison(current_actor(), trial)
    return table if any(c["dosed"] for c in table["cohorts"]) else None


@bp.app_context_processor
def trial_page_hooks() -> dict[str, Any]:
    """What other domains' pages may show of the safety dashboard, without importing it:
    the escalation review's cohort comparison (on the trial page)."""
    return {"safety_cohort_comparison": comparison_for_trial_page}
