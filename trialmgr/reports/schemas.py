"""Reports and report schedules: what clients send and get back."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from trialmgr.db import IdFilter
from trialmgr.reports.models import REPORT_KINDS, REPORT_STATUSES

CUT_OFF = (
    "Last day of data: events dated on or before it at each site. Default: yesterday (your "
    "time zone), the last complete day; never in the future."
)
PERIOD_START = "First day of the period (default: the first day of the cut-off's month)."


class MonitoringReportIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(REPORT_KINDS))
    trial_id = fields.Integer(required=True, strict=True)
    site_id = fields.Integer(
        strict=True,
        allow_none=True,
        metadata={"description": "One site's site enrolment report (coordinators: theirs)."},
    )
    cut_off = fields.Date(metadata={"description": CUT_OFF})
    period_start = fields.Date(metadata={"description": PERIOD_START})


class MonitoringReportQuery(Schema):
    kind = fields.String(validate=validate.OneOf(REPORT_KINDS))
    trial_id = IdFilter()
    site_id = IdFilter()
    status = fields.String(validate=validate.OneOf(REPORT_STATUSES))


def _trial_code(report: Any) -> str:
    return str(report.trial.code)


def _site_code(report: Any) -> str | None:
    return report.site.code if report.site is not None else None


def _pdf_url(report: Any) -> str | None:
    return f"/api/v1/reports/{report.id}/pdf" if report.status == "done" else None


class MonitoringReportOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    trial_id = fields.Integer()
    trial_code = fields.Function(_trial_code)
    scope = fields.String(metadata={"description": "`trial`, or `site:<site_id>`."})
    site_id = fields.Integer(allow_none=True)
    site_code = fields.Function(_site_code)
    period_start = fields.Date()
    period_end = fields.Date()
    cut_off = fields.Date(metadata={"description": "The period's last day."})
    status = fields.String(metadata={"description": "pending, running, done or failed."})
    schedule_id = fields.Integer(allow_none=True)
    requested_by = fields.String()
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    generated_at = fields.DateTime(allow_none=True)
    template = fields.String(allow_none=True)
    size = fields.Integer(allow_none=True)
    sha256 = fields.String(allow_none=True)
    audit_head = fields.String(
        allow_none=True, metadata={"description": "The audit chain head the report shows."}
    )
    error = fields.String(allow_none=True)
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    pdf_url = fields.Function(_pdf_url)


CRON = (
    "Five-field crontab (minute hour day-of-month month day-of-week; 0 or 7 is Sunday), "
    "evaluated in UTC, e.g. `0 6 1 * *` (monthly on the 1st at 06:00)."
)


class ReportScheduleIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(REPORT_KINDS))
    trial_id = fields.Integer(required=True, strict=True)
    cron = fields.String(
        required=True, validate=validate.Length(min=9, max=120), metadata={"description": CRON}
    )
    active = fields.Boolean(load_default=True)


class ReportSchedulePatch(Schema):
    cron = fields.String(validate=validate.Length(min=9, max=120), metadata={"description": CRON})
    active = fields.Boolean()
    reason = fields.String(validate=validate.Length(min=3, max=2000))


class ReportScheduleQuery(Schema):
    kind = fields.String(validate=validate.OneOf(REPORT_KINDS))
    trial_id = IdFilter()
    active = fields.Boolean()


class ReportScheduleOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    trial_id = fields.Integer()
    trial_code = fields.String()
    cron = fields.String()
    active = fields.Boolean()
    created_by = fields.String()
    created_at = fields.DateTime()
    subscribed = fields.Boolean(
        metadata={"description": "Whether you are told when its reports are ready."}
    )
    subscribers = fields.Integer()


class SubscriptionOut(Schema):
    schedule_id = fields.Integer()
    subscribed = fields.Boolean()
