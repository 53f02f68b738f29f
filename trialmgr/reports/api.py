"""/api/v1/reports (the archive, "generate now", downloads) and /api/v1/report-schedules
(schedules and subscriptions)."""

from __future__ import annotations

from typing import Any

from trialmgr.auth.policies import MANAGERS, current_actor, roles
from trialmgr.clock import utcnow
from trialmgr.db import paginate
from trialmgr.extensions import ApiBlueprint, db
from trialmgr.reports import jobs
from trialmgr.reports.download import pdf_response
from trialmgr.reports.policies import ARCHIVE_READERS, SUBSCRIBERS, TRIAL_READERS
from trialmgr.reports.schemas import (
    MonitoringReportIn,
    MonitoringReportOut,
    MonitoringReportQuery,
    ReportScheduleIn,
    ReportScheduleOut,
    ReportSchedulePatch,
    ReportScheduleQuery,
    SubscriptionOut,
)
from trialmgr.reports.services import archive, schedules

blp = ApiBlueprint("reports_api", __name__, url_prefix="/api/v1", description="Reports")


@blp.route("/reports", methods=["GET"])
@roles(*ARCHIVE_READERS)
@blp.arguments(MonitoringReportQuery, location="query")
@blp.response(200, MonitoringReportOut(many=True))
@blp.paginate()
def list_reports(filters: dict[str, Any], pagination_parameters: Any) -> Any:
    """The archive, newest cut-off first (coordinators: their sites' one-site reports)."""
    return paginate(
        db.session, archive.report_query(current_actor(), filters), pagination_parameters
    )


@blp.route("/reports", methods=["POST"])
@roles(*ARCHIVE_READERS)
@blp.arguments(MonitoringReportIn)
@blp.response(201, MonitoringReportOut)
@blp.alt_response(200, schema=MonitoringReportOut, description="This period's report existed.")
def generate_report(data: dict[str, Any]) -> Any:
    """Generate a report now: 201 with the new report, or 200 with the existing done report
    of the same kind, trial, scope and period. Leads, safety monitors and administrators:
    any report; coordinators: the one-site site enrolment report of a site of theirs."""
    report, generated = jobs.generate_now(current_actor(), data, utcnow())
    return report, (201 if generated else 200)


@blp.route("/reports/<int:archive_id>", methods=["GET"])
@roles(*ARCHIVE_READERS)
@blp.response(200, MonitoringReportOut)
def get_report(archive_id: int) -> Any:
    """A report's status (pending, running, done, failed), file size, sha256, audit head."""
    return archive.get_report(current_actor(), archive_id)


@blp.route("/reports/<int:archive_id>/pdf", methods=["GET"])
@roles(*ARCHIVE_READERS)
@blp.response(200, content_type="application/pdf")
def download_report(archive_id: int) -> Any:
    """The PDF, after checking it against its recorded sha256: a mismatch answers 409 and
    is recorded in the audit trail (`report.integrity_failed`)."""
    return pdf_response(current_actor(), archive_id)


# --- schedules --------------------------------------------------------------------------


@blp.route("/report-schedules", methods=["GET"])
@roles(*TRIAL_READERS)
@blp.arguments(ReportScheduleQuery, location="query")
@blp.response(200, ReportScheduleOut(many=True))
def list_schedules(filters: dict[str, Any]) -> Any:
    actor = current_actor()
    found = db.session.execute(schedules.schedule_query(filters)).scalars()
    return [schedules.schedule_view(s, actor) for s in found]


@blp.route("/report-schedules", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(ReportScheduleIn)
@blp.response(201, ReportScheduleOut)
def create_schedule(data: dict[str, Any]) -> Any:
    """A report on a cron schedule (UTC), e.g. `0 6 1 * *`: the scheduler makes each
    period's report once; 422 for an invalid cron."""
    actor = current_actor()
    return schedules.schedule_view(schedules.create_schedule(actor, data), actor)


@blp.route("/report-schedules/<int:schedule_id>", methods=["PATCH"])
@roles(*MANAGERS)
@blp.arguments(ReportSchedulePatch)
@blp.response(200, ReportScheduleOut)
def update_schedule(data: dict[str, Any], schedule_id: int) -> Any:
    """Change the cron, or deactivate (`active: false`) and reactivate."""
    actor = current_actor()
    schedule = schedules.update_schedule(actor, schedules.get_schedule(schedule_id), data)
    return schedules.schedule_view(schedule, actor)


@blp.route("/report-schedules/<int:schedule_id>/subscription", methods=["POST"])
@roles(*SUBSCRIBERS)
@blp.response(200, SubscriptionOut)
def subscribe(schedule_id: int) -> Any:
    """Be told (in the app; by e-mail with a link when mail is configured) when a report
    of this schedule is ready."""
    schedule = schedules.get_schedule(schedule_id)
    schedules.subscribe(current_actor(), schedule, utcnow())
    return {"schedule_id": schedule.id, "subscribed": True}


@blp.route("/report-schedules/<int:schedule_id>/subscription", methods=["DELETE"])
@roles(*SUBSCRIBERS)
@blp.response(204)
def unsubscribe(schedule_id: int) -> None:
    schedules.unsubscribe(current_actor(), schedules.get_schedule(schedule_id))
