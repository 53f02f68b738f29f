"""/api/v1/adverse-events, /labs, /expedited-reports, stopping rules, the work queue,
notifications and the MedDRA dictionary."""

from __future__ import annotations

from typing import Any

from flask import request

from trialmgr.auth.models import ADMIN, SAFETY_MONITOR
from trialmgr.auth.policies import ANY_ROLE, MANAGERS, SITE_WORK, current_actor, roles
from trialmgr.clock import utcnow
from trialmgr.db import paginate
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.errors import Invalid
from trialmgr.extensions import ApiBlueprint, db
from trialmgr.safety.schemas import (
    AdverseEventIn,
    AdverseEventOut,
    AdverseEventPatch,
    AdverseEventQuery,
    FiringOut,
    GradeQuery,
    LabIn,
    LabOut,
    LabQuery,
    MeddraOut,
    MeddraQuery,
    NotificationOut,
    NotificationQuery,
    ReportOut,
    ReportQuery,
    ReviewIn,
    ReviewOut,
    RuleOut,
    RulePatch,
    SafetySummaryOut,
    SignalsOut,
    StoppingRuleIn,
    StoppingRuleOut,
    SubmissionIn,
    SummaryQuery,
    VersionOut,
    WorkItemOut,
    WorkQuery,
)
from trialmgr.safety.services import adverse_events as ae_service
from trialmgr.safety.services import clocks as clock_service
from trialmgr.safety.services import dictionary as dictionary_service
from trialmgr.safety.services import labs as lab_service
from trialmgr.safety.services import notify as notify_service
from trialmgr.safety.services import stopping as stopping_service
from trialmgr.safety.services import summary as summary_service
from trialmgr.safety.services import work as work_service

blp = ApiBlueprint("safety_api", __name__, url_prefix="/api/v1", description="Safety")


# --- adverse events ----------------------------------------------------------------


@blp.route("/adverse-events", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(AdverseEventQuery, location="query")
@blp.response(200, AdverseEventOut(many=True))
@blp.paginate()
def list_adverse_events(filters: dict[str, Any], pagination_parameters: Any) -> Any:
    query = ae_service.query(current_actor(), filters)
    return paginate(db.session, query, pagination_parameters)


@blp.route("/adverse-events", methods=["POST"])
@roles(*SITE_WORK)
@blp.arguments(AdverseEventIn)
@blp.response(201, AdverseEventOut)
def record_adverse_event(data: dict[str, Any]) -> Any:
    """Record an adverse event: opens its reporting clocks and tasks and runs the stopping
    rules in the same transaction (a rule that fires pauses the trial at once)."""
    return ae_service.record(current_actor(), data, utcnow())


@blp.route("/adverse-events/<int:ae_id>", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, AdverseEventOut)
def get_adverse_event(ae_id: int) -> Any:
    return ae_service.get(current_actor(), ae_id)


@blp.route("/adverse-events/<int:ae_id>", methods=["PATCH"])
@roles(*SITE_WORK)
@blp.arguments(AdverseEventPatch)
@blp.response(200, AdverseEventOut)
def update_adverse_event(data: dict[str, Any], ae_id: int) -> Any:
    """Follow-up information or a correction (reason required): a new version."""
    actor = current_actor()
    return ae_service.update(actor, ae_service.get(actor, ae_id), data, utcnow())


@blp.route("/adverse-events/<int:ae_id>/versions", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, VersionOut(many=True))
def list_versions(ae_id: int) -> Any:
    return ae_service.get(current_actor(), ae_id).versions


@blp.route("/adverse-events/<int:ae_id>/reviews", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, ReviewOut(many=True))
def list_reviews(ae_id: int) -> Any:
    return ae_service.reviews_of(ae_service.get(current_actor(), ae_id))


@blp.route("/adverse-events/<int:ae_id>/reviews", methods=["POST"])
@roles(SAFETY_MONITOR)
@blp.arguments(ReviewIn)
@blp.response(201, ReviewOut)
def review_adverse_event(data: dict[str, Any], ae_id: int) -> Any:
    """A signed medical review of the version you saw (password re-entry)."""
    actor = current_actor()
    return ae_service.review(actor, ae_service.get(actor, ae_id), data, utcnow())


# --- labs ------------------------------------------------------------------------------


@blp.route("/labs", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(LabQuery, location="query")
@blp.response(200, LabOut(many=True))
@blp.paginate()
def list_labs(filters: dict[str, Any], pagination_parameters: Any) -> Any:
    return paginate(db.session, lab_service.query(current_actor(), filters), pagination_parameters)


@blp.route("/labs", methods=["POST"])
@roles(*SITE_WORK)
@blp.arguments(LabIn)
@blp.response(201, LabOut)
def record_lab(data: dict[str, Any]) -> Any:
    """A lab result, converted to the canonical unit and graded by CTCAE v5.0; Hy's law is
    screened per draw; grade 3 or more opens a task to record or link an adverse event."""
    return lab_service.record(current_actor(), data, utcnow())


@blp.route("/labs/grade", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(GradeQuery, location="query")
@blp.response(200)
def grade_preview(args: dict[str, Any]) -> Any:
    """The grade a value would get (for the lab form, as it is typed); nothing is stored."""
    return lab_service.preview(args)


# --- expedited reports -------------------------------------------------------------------


@blp.route("/expedited-reports", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(ReportQuery, location="query")
@blp.response(200, ReportOut(many=True))
@blp.paginate()
def list_expedited_reports(filters: dict[str, Any], pagination_parameters: Any) -> Any:
    query = clock_service.report_query(current_actor(), filters, utcnow())
    return paginate(db.session, query, pagination_parameters)


@blp.route("/expedited-reports/<int:report_id>", methods=["PATCH"])
@roles(SAFETY_MONITOR)
@blp.arguments(SubmissionIn)
@blp.response(200, ReportOut)
def submit_expedited_report(data: dict[str, Any], report_id: int) -> Any:
    """Record the submission (date-time, reference); after the due time it is late."""
    actor = current_actor()
    report = clock_service.get_report(actor, report_id)
    return clock_service.submit(actor, report, data, utcnow())


@blp.route("/trials/<int:trial_id>/expedited-rules", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, RuleOut(many=True))
def list_expedited_rules(trial_id: int) -> Any:
    """The trial's reporting table (the defaults of DOMAIN.md until an administrator edits it)."""
    return clock_service.ensure_rules(trials_service.get_trial(trial_id).id)


@blp.route("/expedited-rules/<int:rule_id>", methods=["PATCH"])
@roles(ADMIN)
@blp.arguments(RulePatch)
@blp.response(200, RuleOut)
def update_expedited_rule(data: dict[str, Any], rule_id: int) -> Any:
    return clock_service.update_rule(current_actor(), clock_service.get_rule(rule_id), data)


# --- stopping rules -------------------------------------------------------------------


@blp.route("/trials/<int:trial_id>/stopping-rules", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, StoppingRuleOut(many=True))
def list_stopping_rules(trial_id: int) -> Any:
    return stopping_service.ensure_rules(trials_service.get_trial(trial_id).id)


@blp.route("/trials/<int:trial_id>/stopping-rules", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(StoppingRuleIn)
@blp.response(201, StoppingRuleOut)
def save_stopping_rule(data: dict[str, Any], trial_id: int) -> Any:
    """Set one rule of the trial (one per kind): parameters, active, description."""
    trial = trials_service.get_trial(trial_id)
    return stopping_service.save_rule(current_actor(), trial, data)


@blp.route("/trials/<int:trial_id>/stopping-rule-firings", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, FiringOut(many=True))
def list_firings(trial_id: int) -> Any:
    return stopping_service.firings_of(trials_service.get_trial(trial_id))


# --- work queue, notifications ----------------------------------------------------------


@blp.route("/work-items", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(WorkQuery, location="query")
@blp.response(200, WorkItemOut(many=True))
@blp.paginate()
def list_work_items(args: dict[str, Any], pagination_parameters: Any) -> Any:
    """Your role's open tasks in your sites, by due date."""
    query = work_service.queue_for(current_actor(), args["include_done"])
    return paginate(db.session, query, pagination_parameters)


@blp.route("/notifications", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(NotificationQuery, location="query")
@blp.response(200, NotificationOut(many=True))
@blp.paginate()
def list_notifications(args: dict[str, Any], pagination_parameters: Any) -> Any:
    query = notify_service.inbox(current_actor(), args["unread"])
    return paginate(db.session, query, pagination_parameters)


@blp.route("/notifications/<int:notification_id>/read", methods=["POST"])
@roles(*ANY_ROLE)
@blp.response(200, NotificationOut)
def read_notification(notification_id: int) -> Any:
    return notify_service.mark_read(current_actor(), notification_id, utcnow())


# --- MedDRA dictionary -------------------------------------------------------------------


@blp.route("/meddra", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(MeddraQuery, location="query")
@blp.response(200, MeddraOut(many=True))
def search_meddra(args: dict[str, Any]) -> Any:
    return dictionary_service.search(args["q"])


@blp.route("/meddra/import", methods=["POST"])
@roles(ADMIN)
@blp.response(200)
def import_meddra() -> Any:
    """Upload the consortium's own MedDRA preferred terms (multipart `file`, CSV with
    pt_code, pt_term, soc, soc_code)."""
    upload = request.files.get("file")
    if upload is None:
        raise Invalid("Attach the CSV file.", errors={"file": ["Required."]})
    return dictionary_service.import_csv(current_actor(), upload.read())


# --- the safety dashboard's numbers ------------------------------------------------------


@blp.route("/trials/<int:trial_id>/safety-summary", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(SummaryQuery, location="query")
@blp.response(200, SafetySummaryOut)
def safety_summary(filters: dict[str, Any], trial_id: int) -> Any:
    """The safety dashboard: open SAEs, SUSARs, overdue clocks, pause; AEs by SOC x worst
    grade x cohort (each subject once, at their worst grade in the SOC); AESIs; lab shifts;
    ALT over study days; stopping rules; clocks by due date. Coordinators: their sites."""
    trial = trials_service.get_trial(trial_id)
    return summary_service.safety_summary(current_actor(), trial, filters, utcnow())


@blp.route("/trials/<int:trial_id>/safety-signals", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(SummaryQuery, location="query")
@blp.response(200, SignalsOut)
def safety_signals(filters: dict[str, Any], trial_id: int) -> Any:
    """Per cohort: incidence among dosed subjects of any event, grade 3+, serious, related,
    SUSAR, AESI, each SOC and AESI category, with exact 95 % intervals, and days from dosing
    to the first such event."""
    trial = trials_service.get_trial(trial_id)
    return summary_service.signal_table(current_actor(), trial, filters)
