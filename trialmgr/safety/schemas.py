"""Safety: what clients send and get back."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from trialmgr.clock import format_local, utcnow
from trialmgr.db import IdFilter
from trialmgr.enrollment.schemas import reason_field
from trialmgr.safety.models import (
    ACTIONS,
    AESI_CATEGORIES,
    ANALYTE_CODES,
    AUTHORITIES,
    CAUSALITY,
    OUTCOMES,
    SERIOUSNESS_CRITERIA,
    STOPPING_KINDS,
)


def _aware(metadata: str) -> fields.AwareDateTime:
    return fields.AwareDateTime(metadata={"description": metadata})


class AdverseEventIn(Schema):
    subject_code = fields.String(required=True, validate=validate.Length(min=3, max=20))
    term = fields.String(
        required=True,
        validate=validate.Length(min=2, max=200),
        metadata={"description": "Verbatim term as reported."},
    )
    pt_term = fields.String(validate=validate.Length(max=200))
    pt_code = fields.String(
        validate=validate.Length(max=20),
        metadata={
            "description": "MedDRA code; fills pt_term and soc from the imported dictionary."
        },
    )
    soc = fields.String(
        validate=validate.Length(max=200), metadata={"description": "System organ class."}
    )
    onset_date = fields.Date(required=True)
    resolution_date = fields.Date(
        metadata={"description": "End of the event; for a fatal outcome, the date of death."}
    )
    grade = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=5))
    serious = fields.Boolean(
        metadata={"description": "Optional: follows from seriousness_criteria; must agree."}
    )
    seriousness_criteria = fields.List(
        fields.String(validate=validate.OneOf(SERIOUSNESS_CRITERIA)), load_default=list
    )
    causality = fields.String(required=True, validate=validate.OneOf(CAUSALITY))
    expected = fields.Boolean(
        required=True, metadata={"description": "Against the reference safety information."}
    )
    aesi = fields.Boolean(load_default=False)
    aesi_category = fields.String(validate=validate.OneOf(AESI_CATEGORIES))
    action_taken = fields.String(validate=validate.OneOf(ACTIONS))
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    site_awareness_at = _aware("When the site first knew; default now.")
    sponsor_awareness_at = _aware(
        "When the sponsor first knew (the clocks' day 0); default: site's."
    )
    narrative = fields.String(validate=validate.Length(max=10000))
    source_visit_id = fields.Integer(strict=True)
    task_id = fields.Integer(
        strict=True, metadata={"description": "The work-queue task this fulfils."}
    )
    lab_result_id = fields.Integer(
        strict=True, metadata={"description": "A graded lab it explains."}
    )


class AdverseEventPatch(Schema):
    term = fields.String(validate=validate.Length(min=2, max=200))
    pt_term = fields.String(validate=validate.Length(max=200), allow_none=True)
    pt_code = fields.String(validate=validate.Length(max=20), allow_none=True)
    soc = fields.String(validate=validate.Length(min=2, max=200))
    onset_date = fields.Date()
    resolution_date = fields.Date(allow_none=True)
    grade = fields.Integer(strict=True, validate=validate.Range(min=1, max=5))
    serious = fields.Boolean()
    seriousness_criteria = fields.List(fields.String(validate=validate.OneOf(SERIOUSNESS_CRITERIA)))
    causality = fields.String(validate=validate.OneOf(CAUSALITY))
    expected = fields.Boolean()
    aesi = fields.Boolean()
    aesi_category = fields.String(validate=validate.OneOf(AESI_CATEGORIES), allow_none=True)
    action_taken = fields.String(validate=validate.OneOf(ACTIONS), allow_none=True)
    outcome = fields.String(validate=validate.OneOf(OUTCOMES), allow_none=True)
    narrative = fields.String(validate=validate.Length(max=10000), allow_none=True)
    awareness_at = _aware("When this information became known (default now): clocks start here.")
    reason = reason_field()


class ReportOut(Schema):
    id = fields.Integer()
    adverse_event_id = fields.Integer()
    trial_id = fields.Integer()
    authority = fields.String()
    kind = fields.String()
    clock_start = fields.DateTime()
    due_at = fields.DateTime()
    submitted_at = fields.DateTime(allow_none=True)
    reference = fields.String(allow_none=True)
    late = fields.Boolean(allow_none=True)
    days_left = fields.Method("_days_left")
    overdue = fields.Method("_overdue")
    status = fields.Method("_status")
    subject_code = fields.Function(lambda r: r.adverse_event.subject.code)
    term = fields.Function(lambda r: r.adverse_event.term)

    def _state(self, report: Any) -> dict[str, Any]:
        from trialmgr.safety.services.clocks import state

        return state(report, utcnow())

    def _days_left(self, report: Any) -> int:
        return int(self._state(report)["days_left"])

    def _overdue(self, report: Any) -> bool:
        return bool(self._state(report)["overdue"])

    def _status(self, report: Any) -> str:
        return str(self._state(report)["status"])


# An event's clocks in its answer: one schema instance for every answer (building one
# deep-copies its fields).
_REPORTS_OUT = ReportOut(many=True)


class AdverseEventOut(Schema):
    id = fields.Integer()
    trial_id = fields.Integer()
    subject_code = fields.Function(lambda e: e.subject.code)
    site_id = fields.Integer()
    cohort_id = fields.Integer()
    version = fields.Integer()
    term = fields.String()
    pt_term = fields.String(allow_none=True)
    pt_code = fields.String(allow_none=True)
    soc = fields.String()
    onset_date = fields.Date()
    resolution_date = fields.Date(allow_none=True)
    grade = fields.Integer()
    serious = fields.Boolean()
    seriousness_criteria = fields.List(fields.String())
    causality = fields.String()
    suspected = fields.Boolean()
    expected = fields.Boolean()
    susar = fields.Boolean()
    aesi = fields.Boolean()
    aesi_category = fields.String(allow_none=True)
    action_taken = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    site_awareness_at = fields.DateTime()
    sponsor_awareness_at = fields.DateTime()
    narrative = fields.String(allow_none=True)
    review = fields.Method("_review")
    expedited_reports = fields.Method("_reports")

    def _review(self, ae: Any) -> str:
        from trialmgr.safety.services.adverse_events import fresh_reports, review_state

        if fresh_reports(ae) is not None:  # recorded in this request: nobody reviewed it
            return "unreviewed"
        return review_state(ae)

    def _reports(self, ae: Any) -> list[dict[str, Any]]:
        import sqlalchemy as sa

        from trialmgr.extensions import db
        from trialmgr.safety.models import ExpeditedReport
        from trialmgr.safety.services.adverse_events import fresh_reports

        fresh = fresh_reports(ae)
        if fresh is not None:
            return _REPORTS_OUT.dump(fresh)
        reports = db.session.execute(
            sa.select(ExpeditedReport)
            .where(ExpeditedReport.adverse_event_id == ae.id)
            .order_by(ExpeditedReport.due_at, ExpeditedReport.id)
        ).scalars()
        return _REPORTS_OUT.dump(list(reports))


class VersionOut(Schema):
    version = fields.Integer()
    data = fields.Dict()
    reason = fields.String(allow_none=True)
    awareness_at = fields.DateTime()
    recorded_at = fields.DateTime()
    recorded_by = fields.String()


class AdverseEventQuery(Schema):
    trial_id = IdFilter()
    site_id = IdFilter()
    cohort_id = IdFilter()
    subject_code = fields.String(validate=validate.Length(max=20))
    serious = fields.Boolean()
    susar = fields.Boolean()
    aesi = fields.Boolean()
    grade = fields.Integer(validate=validate.Range(min=1, max=5))
    min_grade = fields.Integer(validate=validate.Range(min=1, max=5))
    soc = fields.String(validate=validate.Length(max=200))
    since = fields.Date()
    until = fields.Date()


class ReviewIn(Schema):
    version = fields.Integer(
        required=True, strict=True, metadata={"description": "The version you reviewed."}
    )
    comment = fields.String(validate=validate.Length(max=4000))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=256))


class ReviewOut(Schema):
    id = fields.Integer()
    adverse_event_id = fields.Integer()
    version = fields.Integer()
    comment = fields.String(allow_none=True)
    signed_by = fields.String()
    signed_at = fields.DateTime()
    signature_meaning = fields.String()


class ReportQuery(Schema):
    status = fields.String(validate=validate.OneOf(["open", "overdue", "submitted"]))
    trial_id = IdFilter()
    adverse_event_id = IdFilter()
    authority = fields.String(validate=validate.OneOf(AUTHORITIES))


class SubmissionIn(Schema):
    submitted_at = fields.AwareDateTime(required=True)
    reference = fields.String(required=True, validate=validate.Length(min=1, max=120))
    reason = fields.String(validate=validate.Length(min=3, max=2000))


class RuleOut(Schema):
    id = fields.Integer()
    trial_id = fields.Integer()
    authority = fields.String()
    condition = fields.String()
    deadline_hours = fields.Integer(allow_none=True)
    deadline_days = fields.Integer(allow_none=True)
    follow_up_days = fields.Integer(allow_none=True)
    active = fields.Boolean()
    description = fields.String()


class RulePatch(Schema):
    deadline_hours = fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(min=1, max=720)
    )
    deadline_days = fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(min=1, max=90)
    )
    follow_up_days = fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(min=1, max=90)
    )
    active = fields.Boolean()
    description = fields.String(validate=validate.Length(min=3, max=300))
    reason = reason_field()


class StoppingRuleIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(STOPPING_KINDS))
    params = fields.Dict(
        keys=fields.String(validate=validate.OneOf(["count", "min_grade"])),
        values=fields.Integer(strict=True, validate=validate.Range(min=1, max=5)),
        metadata={"description": "min_grade (3-5) and, for same_soc_grade3, count (2-5)."},
    )
    active = fields.Boolean()
    description = fields.String(validate=validate.Length(min=3, max=300))
    reason = fields.String(validate=validate.Length(min=3, max=2000))

    @validates("params")
    def _params(self, value: dict[str, int], **_: Any) -> None:
        if value.get("min_grade", 3) < 3:
            raise ValidationError("min_grade is 3 or more (rules watch severe events).")
        if value.get("count", 2) < 2:
            raise ValidationError("count is 2 or more.")


class StoppingRuleOut(Schema):
    id = fields.Integer()
    trial_id = fields.Integer()
    kind = fields.String()
    params = fields.Dict()
    active = fields.Boolean()
    description = fields.String()


class FiringOut(Schema):
    id = fields.Integer()
    rule_id = fields.Integer()
    fired_at = fields.DateTime()
    triggers = fields.List(fields.String())
    reason = fields.String()
    pause_id = fields.Integer()


class WorkItemOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    owner_role = fields.String()
    trial_id = fields.Integer()
    site_id = fields.Integer()
    subject_code = fields.Function(lambda w: w.subject.code)
    adverse_event_id = fields.Integer(allow_none=True)
    expedited_report_id = fields.Integer(allow_none=True)
    lab_result_id = fields.Integer(allow_none=True)
    visit_id = fields.Integer(allow_none=True)
    title = fields.String()
    due_on = fields.Date(allow_none=True)
    status = fields.String()
    closed_at = fields.DateTime(allow_none=True)
    closed_by = fields.String(allow_none=True)
    prefill = fields.Dict()


class WorkQuery(Schema):
    include_done = fields.Boolean(load_default=False)


class NotificationOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    title = fields.String()
    body = fields.String()
    link = fields.String(allow_none=True)
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)


class NotificationQuery(Schema):
    unread = fields.Boolean(load_default=False)


class LabIn(Schema):
    subject_code = fields.String(required=True, validate=validate.Length(min=3, max=20))
    analyte = fields.String(required=True, validate=validate.OneOf(ANALYTE_CODES))
    value = fields.Decimal(required=True, as_string=False, places=6, allow_nan=False)
    unit = fields.String(required=True, validate=validate.Length(min=1, max=20))
    uln = fields.Decimal(places=6, allow_nan=False)
    lln = fields.Decimal(places=6, allow_nan=False)
    collected_at = fields.AwareDateTime(required=True)


class LabOut(Schema):
    id = fields.Integer()
    subject_code = fields.Function(lambda lab: lab.subject.code)
    analyte = fields.String()
    value = fields.Decimal(as_string=False)
    unit = fields.String()
    uln = fields.Decimal(as_string=False, allow_none=True)
    lln = fields.Decimal(as_string=False, allow_none=True)
    value_canonical = fields.Decimal(as_string=False)
    canonical_unit = fields.String()
    uln_multiple = fields.Decimal(as_string=False, allow_none=True)
    grade = fields.Integer()
    collected_at = fields.DateTime()
    hys_law = fields.Boolean()
    adverse_event_id = fields.Integer(allow_none=True)


class LabQuery(Schema):
    subject_code = fields.String(validate=validate.Length(max=20))
    trial_id = IdFilter()
    analyte = fields.String(validate=validate.OneOf(ANALYTE_CODES))
    min_grade = fields.Integer(validate=validate.Range(min=0, max=4))


class GradeQuery(Schema):
    analyte = fields.String(required=True, validate=validate.OneOf(ANALYTE_CODES))
    value = fields.Decimal(required=True, allow_nan=False)
    unit = fields.String(required=True, validate=validate.Length(min=1, max=20))
    uln = fields.Decimal(allow_nan=False)
    lln = fields.Decimal(allow_nan=False)


class MeddraOut(Schema):
    pt_code = fields.String()
    pt_term = fields.String()
    soc = fields.String()
    soc_code = fields.String(allow_none=True)


class MeddraQuery(Schema):
    q = fields.String(required=True, validate=validate.Length(min=2, max=100))


# --- the safety dashboard (GET /trials/{id}/safety-summary, /safety-signals) ----------


class SummaryQuery(Schema):
    site_id = IdFilter(metadata={"description": "One of your sites (404 otherwise)."})
    cohort_id = IdFilter()
    since = fields.Date(metadata={"description": "Events with onset on or after (labs: drawn)."})
    until = fields.Date(metadata={"description": "Events with onset on or before (labs: drawn)."})


class SocGradeCohortOut(Schema):
    soc = fields.String()
    worst_grade = fields.Integer(
        metadata={"description": "Each subject once, at their worst grade in the SOC."}
    )
    cohort = fields.String()
    cohort_id = fields.Integer()
    subjects = fields.Integer()
    events = fields.Integer(metadata={"description": "All of those subjects' events in the SOC."})


class GradeCohortOut(Schema):
    cohort = fields.String()
    cohort_id = fields.Integer()
    grade = fields.Integer()
    events = fields.Integer()


class AesiCategoryOut(Schema):
    category = fields.String(allow_none=True)
    cohort = fields.String()
    cohort_id = fields.Integer()
    subjects = fields.Integer()
    events = fields.Integer()
    worst_grade = fields.Integer()


class DashboardEventOut(Schema):
    id = fields.Integer()
    subject_code = fields.String()
    site = fields.String()
    cohort_id = fields.Integer()
    term = fields.String()
    soc = fields.String()
    grade = fields.Integer()
    onset_date = fields.Date()
    resolution_date = fields.Date(allow_none=True)
    serious = fields.Boolean()
    susar = fields.Boolean()
    aesi = fields.Boolean()
    aesi_category = fields.String(allow_none=True)
    causality = fields.String()
    outcome = fields.String(allow_none=True)


class LabShiftOut(Schema):
    analyte = fields.String()
    cohort = fields.String()
    cohort_id = fields.Integer()
    baseline_grade = fields.Integer(
        allow_none=True, metadata={"description": "Last draw before dosing; null: none."}
    )
    worst_grade = fields.Integer(metadata={"description": "Worst grade after dosing."})
    subjects = fields.Integer()


class AltPointOut(Schema):
    day = fields.Integer(metadata={"description": "Study day (dosing day 0)."})
    uln_multiple = fields.Float()
    grade = fields.Integer()


class AltSeriesOut(Schema):
    subject_code = fields.String()
    cohort = fields.String()
    peak = fields.Float()
    points = fields.List(fields.Nested(AltPointOut))


class StoppingStatusOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    description = fields.String()
    params = fields.Dict()
    active = fields.Boolean()
    firings = fields.Integer()
    last_fired_at = fields.DateTime(allow_none=True)


class ClockOut(Schema):
    id = fields.Integer()
    adverse_event_id = fields.Integer()
    subject_code = fields.String()
    site = fields.String()
    site_timezone = fields.String(metadata={"description": "The site's IANA time zone."})
    term = fields.String()
    authority = fields.String()
    kind = fields.String()
    clock_start = fields.DateTime()
    due_at = fields.DateTime()
    due_at_local = fields.Function(
        lambda c: format_local(c["due_at"], c["site_timezone"]),
        metadata={
            "description": "The due time on the site's clock, e.g. 2026-12-06 23:59 CET "
            "(Europe/Paris); days left count the site's days."
        },
    )
    submitted_at = fields.DateTime(allow_none=True)
    reference = fields.String(allow_none=True)
    late = fields.Boolean(allow_none=True)
    days_left = fields.Integer()
    overdue = fields.Boolean()
    status = fields.String()


class SafetySummaryOut(Schema):
    trial = fields.Dict()
    filters = fields.Dict()
    as_of = fields.DateTime()
    events = fields.Integer()
    subjects_with_events = fields.Integer()
    open_saes = fields.Integer(metadata={"description": "Serious, no resolution date."})
    saes = fields.Integer()
    susars = fields.Integer()
    aesis = fields.Integer()
    deaths = fields.Integer()
    open_reports = fields.Integer()
    overdue_reports = fields.Integer()
    paused = fields.Boolean()
    paused_reason = fields.String(allow_none=True)
    paused_at = fields.DateTime(allow_none=True)
    by_soc_grade_cohort = fields.List(fields.Nested(SocGradeCohortOut))
    by_grade_cohort = fields.List(fields.Nested(GradeCohortOut))
    aesi_by_category = fields.List(fields.Nested(AesiCategoryOut))
    aesi = fields.List(fields.Nested(DashboardEventOut), metadata={"description": "Newest 50."})
    lab_shifts = fields.List(fields.Nested(LabShiftOut))
    alt_series = fields.List(
        fields.Nested(AltSeriesOut), metadata={"description": "The 20 highest ALT peaks."}
    )
    stopping_rules = fields.List(fields.Nested(StoppingStatusOut))
    clocks = fields.List(
        fields.Nested(ClockOut), metadata={"description": "Not submitted, soonest due first."}
    )


class SignalCellOut(Schema):
    cohort_id = fields.Integer()
    subjects = fields.Integer()
    dosed = fields.Integer()
    percent = fields.Float(allow_none=True)
    ci_low = fields.Float(allow_none=True, metadata={"description": "Exact 95 % (percent)."})
    ci_high = fields.Float(allow_none=True)
    onset_median = fields.Float(allow_none=True, metadata={"description": "Days from dosing."})
    onset_min = fields.Integer(allow_none=True)
    onset_max = fields.Integer(allow_none=True)


class SignalRowOut(Schema):
    group = fields.String(metadata={"description": "measure | soc | aesi"})
    key = fields.String()
    label = fields.String()
    listing = fields.Dict()
    cells = fields.List(fields.Nested(SignalCellOut))


class SignalCohortOut(Schema):
    id = fields.Integer()
    label = fields.String()
    dose = fields.String()
    dose_unit = fields.String()
    dosed = fields.Integer()


class SignalsOut(Schema):
    cohorts = fields.List(fields.Nested(SignalCohortOut))
    rows = fields.List(fields.Nested(SignalRowOut))
