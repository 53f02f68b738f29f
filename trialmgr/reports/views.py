"""The report archive page: the list with its filters and downloads, "generate now", the
schedules with their subscribe buttons, and (for managers) adding and changing schedules.

Every form goes through `trialmgr.forms.submit` and the same service (or run) the API
calls; a refused form re-renders the page with the refusal next to that form.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from trialmgr.auth.models import COORDINATOR
from trialmgr.auth.policies import MANAGERS, current_actor, roles
from trialmgr.clock import utcnow
from trialmgr.enrollment.models import Trial
from trialmgr.extensions import db
from trialmgr.forms import (
    Refusal,
    confirmed,
    filter_args,
    load_filters,
    load_form,
    page_of,
    replay_fields,
    submit,
)
from trialmgr.partners.models import Site
from trialmgr.partners.services.sites import site_query
from trialmgr.reports import jobs
from trialmgr.reports.download import pdf_response
from trialmgr.reports.models import REPORT_KINDS, REPORT_STATUSES, REPORT_TITLES
from trialmgr.reports.policies import ARCHIVE_READERS, SUBSCRIBERS, sees_every_report
from trialmgr.reports.schemas import (
    MonitoringReportIn,
    MonitoringReportQuery,
    ReportScheduleIn,
    ReportSchedulePatch,
)
from trialmgr.reports.services import archive, schedules
from trialmgr.reports.services.keys import cut_off_today, default_cut_off, request_key
from trialmgr.templating import format_date

bp = Blueprint("reports", __name__)


def _page(refusal: Refusal | None = None, values: dict[str, Any] | None = None) -> Any:
    actor = current_actor()
    filters, filter_errors = load_filters(MonitoringReportQuery())
    reports, page, has_next = page_of(archive.report_query(actor, filters))
    trials = list(db.session.execute(sa.select(Trial).order_by(Trial.code)).scalars())
    every = sees_every_report(actor)
    plans = (
        [
            schedules.schedule_view(s, actor)
            for s in db.session.execute(schedules.schedule_query({})).scalars()
        ]
        if every
        else []
    )
    scheduled = {(p["trial_id"], p["kind"]) for p in plans}
    sites = list(db.session.execute(site_query(actor, {})).scalars())
    now = utcnow()
    # The latest day any report of this form may be cut off on (a one-site report uses
    # the site's today, which may be ahead of the requester's): the input's `max`.
    latest = max([cut_off_today(actor, None, now), *(cut_off_today(actor, s, now) for s in sites)])
    context = {
        "reports": reports,
        "page": page,
        "has_next": has_next,
        "args": filter_args(),
        "filter_errors": filter_errors,
        "filtered": bool(filters),
        "trials": trials,
        "sites": sites,
        "kinds": REPORT_KINDS if every else ("site_enrollment",),
        "all_kinds": REPORT_KINDS,
        "titles": REPORT_TITLES,
        "statuses": REPORT_STATUSES,
        "schedules": plans,
        "defaults": schedules.DEFAULT_CRONS,
        "suggested": [
            (t, kind)
            for t in trials
            if t.status in ("open", "paused")
            for kind in REPORT_KINDS
            if (t.id, kind) not in scheduled
        ],
        "every": every,
        "coordinator": actor.role == COORDINATOR,
        "manager": actor.role in MANAGERS,
        "subscriber": actor.role in SUBSCRIBERS,
        "default_cut_off": default_cut_off(actor, now),
        "cut_off_today": cut_off_today(actor, None, now),
        "cut_off_latest": latest,
        "zone": getattr(actor, "timezone", None) or "UTC",
        "refusal": refusal,
        "errors": refusal.field_errors() if refusal else {},
        "values": values or {},
    }
    status = refusal.status if refusal else (422 if filter_errors else 200)
    return render_template("reports/list.html", **context), status


@bp.route("/reports")
@roles(*ARCHIVE_READERS)
def report_list() -> Any:
    return _page()


@bp.route("/reports/generate", methods=["POST"])
@roles(*ARCHIVE_READERS)
def report_generate() -> Any:
    """Generate now: the request is checked and restated first (kind, trial, scope, period
    and cut-off, and whether that report is already in the archive); the confirmation runs
    the same service as `POST /api/v1/reports`."""
    actor, now = current_actor(), utcnow()
    if not confirmed(request.form):
        restated = submit(
            "generate", lambda: _restate(actor, load_form(MonitoringReportIn(), request.form), now)
        )
        if isinstance(restated, Refusal):
            return _page(restated, request.form.to_dict())
        return render_template("pages/confirm.html", confirm=restated)
    result = submit(
        "generate",
        lambda: jobs.generate_now(actor, load_form(MonitoringReportIn(), request.form), now),
    )
    if isinstance(result, Refusal):
        return _page(result, request.form.to_dict())
    report, generated = result
    made = "generated" if generated else "was already in the archive"
    flash(
        f"Report #{report.id} ({REPORT_TITLES[report.kind]}, {report.trial.code}, data "
        f"cut-off {format_date(report.period_end)}) {made}.",
        "success",
    )
    return redirect(url_for("reports.report_list"))


def _restate(actor: Any, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What "generate" will produce, from the key the service will use (refused as the
    service would refuse it), before anything is written."""
    key = request_key(actor, data, now)
    trial = db.session.get(Trial, key.trial_id)
    assert trial is not None
    site = db.session.get(Site, key.site_id) if key.site_id is not None else None
    existing = archive.find(key)
    scope = f"site {site.code}" if site is not None else "all sites"
    cut_off = format_date(key.period_end)
    details = [
        f"Period {format_date(key.period_start)} to {cut_off}; {scope}.",
        f"Data cut-off {cut_off}: records dated on or before it and entered by the end of "
        "that day at their site.",
    ]
    if existing is not None:
        details.append(
            f"This report is already in the archive (#{existing.id}, {existing.status}): "
            "you get that one, not a new one. Choose another cut-off for a new report."
        )
    return {
        "title": f"generate the {REPORT_TITLES[key.kind]}",
        "summary": f"{REPORT_TITLES[key.kind]} of {trial.code}, data cut-off {cut_off}.",
        "details": details,
        "warning": None,
        "button": "Generate the report" if existing is None else "Open the archived report",
        "action": url_for("reports.report_generate"),
        "fields": replay_fields(request.form),
        "back": url_for("reports.report_list"),
    }


@bp.route("/reports/<int:archive_id>/pdf")
@roles(*ARCHIVE_READERS)
def report_pdf(archive_id: int) -> Response:
    return pdf_response(current_actor(), archive_id)


@bp.route("/reports/schedules", methods=["POST"])
@roles(*MANAGERS)
def schedule_new() -> Any:
    actor = current_actor()
    result = submit(
        "schedule",
        lambda: schedules.create_schedule(actor, load_form(ReportScheduleIn(), request.form)),
    )
    if isinstance(result, Refusal):
        return _page(result, request.form.to_dict())
    flash(
        f"{REPORT_TITLES[result.kind]} of {result.trial.code} scheduled: "
        f"{schedules.describe(result.cron)}.",
        "success",
    )
    return redirect(url_for("reports.report_list"))


@bp.route("/reports/schedules/<int:schedule_id>", methods=["POST"])
@roles(*MANAGERS)
def schedule_edit(schedule_id: int) -> Any:
    actor = current_actor()
    schedule = schedules.get_schedule(schedule_id)
    result = submit(
        f"schedule-{schedule_id}",
        lambda: schedules.update_schedule(
            actor, schedule, load_form(ReportSchedulePatch(), request.form)
        ),
    )
    if isinstance(result, Refusal):
        return _page(result, request.form.to_dict())
    flash(f"Schedule #{schedule_id} saved.", "success")
    return redirect(url_for("reports.report_list"))


@bp.route("/reports/schedules/<int:schedule_id>/subscribe", methods=["POST"])
@roles(*SUBSCRIBERS)
def schedule_subscribe(schedule_id: int) -> Any:
    actor = current_actor()
    schedule = schedules.get_schedule(schedule_id)
    result = submit(
        f"schedule-{schedule_id}", lambda: schedules.subscribe(actor, schedule, utcnow())
    )
    if isinstance(result, Refusal):
        return _page(result)
    flash(f"You will be told when a report of schedule #{schedule_id} is ready.", "success")
    return redirect(url_for("reports.report_list"))


@bp.route("/reports/schedules/<int:schedule_id>/unsubscribe", methods=["POST"])
@roles(*SUBSCRIBERS)
def schedule_unsubscribe(schedule_id: int) -> Any:
    actor = current_actor()
    schedule = schedules.get_schedule(schedule_id)
    result = submit(f"schedule-{schedule_id}", lambda: schedules.unsubscribe(actor, schedule))
    if isinstance(result, Refusal):
        return _page(result)
    flash(f"You left schedule #{schedule_id}.", "success")
    return redirect(url_for("reports.report_list"))
