"""Shared by the safety pages: the blueprint, the words the forms use for coded values,
site-local time inputs, and what the safety domain adds to every page (the unread count in
the navbar) and to the subject page (its adverse events)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, url_for
from flask_login import current_user

from trialmgr.auth.policies import SITE_WORK
from trialmgr.clock import utcnow, zone
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.extensions import db
from trialmgr.partners.services import sites as sites_service
from trialmgr.safety.services import adverse_events as ae_service
from trialmgr.safety.services import notify as notify_service
from trialmgr.safety.services import work as work_service
from trialmgr.templating import format_date

bp = Blueprint("safety", __name__)

# CTCAE v5.0, general grade definitions.
GRADES = {
    1: (
        "Mild",
        "Asymptomatic or mild symptoms; clinical or diagnostic observations only; "
        "intervention not indicated.",
    ),
    2: (
        "Moderate",
        "Minimal, local or non-invasive intervention indicated; limiting "
        "age-appropriate instrumental activities of daily living.",
    ),
    3: (
        "Severe",
        "Severe or medically significant but not immediately life-threatening; "
        "hospitalisation or its prolongation indicated; disabling; limiting self-care.",
    ),
    4: ("Life-threatening", "Life-threatening consequences; urgent intervention indicated."),
    5: (
        "Death",
        "Death related to the adverse event: records the subject's death on the "
        "event's outcome date.",
    ),
}
# ICH E2A: an event is serious if any of these; one line each.
SERIOUSNESS = {
    "death": ("Death", "The event caused or contributed to the subject's death."),
    "life_threatening": (
        "Life-threatening",
        "The subject was at immediate risk of death from the event as it happened "
        "(not an event that might have caused death had it been worse).",
    ),
    "hospitalisation": (
        "In-patient hospitalisation or prolongation",
        "Admission as an in-patient, or a longer stay than planned, because of the event.",
    ),
    "disability": (
        "Persistent or significant disability",
        "A substantial disruption of the ability to carry out normal life functions.",
    ),
    "congenital_anomaly": (
        "Congenital anomaly / birth defect",
        "In a child of a subject exposed to the product.",
    ),
    "important_medical_event": (
        "Other important medical event",
        "Medical judgement: it may jeopardise the subject or need intervention to prevent "
        "one of the outcomes above.",
    ),
}
CAUSALITY = {
    "unrelated": "Unrelated",
    "unlikely": "Unlikely related",
    "possible": "Possibly related",
    "probable": "Probably related",
    "definite": "Definitely related",
}
AESI = {
    "hepatotoxicity": "Hepatotoxicity",
    "tma_complement": "Thrombotic microangiopathy / complement activation",
    "myocarditis": "Myocarditis",
    "infusion_reaction": "Infusion reaction",
    "malignancy": "New malignancy",
    "neurological": "New or worsened neurological disorder",
    "autoimmune": "New or worsened autoimmune disorder",
    "haematological": "New or worsened haematological disorder",
}
ACTIONS = {
    "none": "None",
    "treatment_given": "Treatment given",
    "procedure": "Procedure",
    "hospitalisation": "Hospitalisation",
    "other": "Other",
}
OUTCOMES = {
    "recovering": "Recovering / resolving",
    "recovered": "Recovered / resolved",
    "recovered_with_sequelae": "Recovered with sequelae",
    "not_recovered": "Not recovered / not resolved",
    "fatal": "Fatal",
    "unknown": "Unknown",
}
# How each field of an adverse event is named on the pages (versions, CSV, forms).
FIELD_LABELS = {
    "term": "Verbatim term",
    "pt_term": "MedDRA preferred term",
    "pt_code": "MedDRA code",
    "soc": "System organ class",
    "onset_date": "Onset",
    "resolution_date": "Resolution / date of death",
    "grade": "Grade",
    "seriousness_criteria": "Seriousness criteria",
    "serious": "Serious",
    "causality": "Causality",
    "suspected": "Suspected",
    "expected": "Expected",
    "susar": "SUSAR",
    "aesi": "AESI",
    "aesi_category": "AESI category",
    "action_taken": "Action taken",
    "outcome": "Outcome",
    "site_awareness_at": "Site awareness",
    "sponsor_awareness_at": "Sponsor awareness",
    "narrative": "Narrative",
}


def options(labels: dict[str, str]) -> list[tuple[str, str]]:
    return list(labels.items())


def local_input(moment: datetime | None, zone_name: str | None) -> str:
    """A datetime-local input's value: the moment on the wall clock of `zone_name`."""
    if moment is None:
        return ""
    return moment.astimezone(zone(zone_name)).strftime("%Y-%m-%dT%H:%M")


def zone_words(zone_name: str | None) -> dict[str, str]:
    """The zone's name and its abbreviation now, for a label: "Europe/Rome (CET now)"."""
    place = zone(zone_name)
    return {"zone": place.key, "zone_abbreviation": utcnow().astimezone(place).tzname() or ""}


def trial_choices() -> list[Any]:
    return list(db.session.execute(trials_service.trial_query({})).scalars())


def site_choices(actor: Any) -> list[Any]:
    return list(db.session.execute(sites_service.site_query(actor, {})).scalars())


def task_link(item: Any, actor: Any) -> tuple[str, str]:
    """Where a task is done (the form that closes it) for its owner; where its record is
    read for anyone else: (href, words)."""
    own = actor.role == item.owner_role and item.status == "open"
    code = item.subject.code
    if item.kind in ("record_ae", "lab_ae"):
        if own:
            return url_for("safety.ae_new", subject=code, task=item.id), "Record the adverse event"
        if item.adverse_event_id:
            return url_for("safety.ae_detail", ae_id=item.adverse_event_id), "Adverse event"
        return url_for("enrollment.subject_detail", code=code), "Subject"
    event = url_for("safety.ae_detail", ae_id=item.adverse_event_id)
    if not own:
        return event, "Adverse event"
    if item.kind == "expedited_submission":
        clocks = url_for("safety.report_list", adverse_event_id=item.adverse_event_id)
        return f"{clocks}#report-{item.expedited_report_id}", "Record the submission"
    if item.kind == "medical_review":
        return f"{event}#review", "Sign the review"
    if item.kind == "death_report":
        return f"{event}#follow-up", "Complete the death report"
    return f"{event}#follow-up", "Add the follow-up"


def actor_or_none() -> Any:
    return current_user if getattr(current_user, "is_authenticated", False) else None


@bp.app_template_filter("site_time_short")
def site_time_short(moment: datetime | None, zone_name: str | None) -> str:
    """An instant on the site's wall clock, for tables whose header names the zone: the
    reader's date format and the abbreviation for that date, `10/02/2026 10:00 CET`."""
    if moment is None:
        return ""
    local = moment.astimezone(zone(zone_name))
    return f"{format_date(local.date())} {local:%H:%M} {local.tzname()}"


@bp.app_context_processor
def safety_context() -> dict[str, Any]:
    """The unread notifications in the navbar, on every page for everyone signed in."""
    user = actor_or_none()
    if user is None:
        return {"unread_notifications": 0}
    return {"unread_notifications": notify_service.unread_count(user)}


@bp.app_template_global()
def subject_safety(subject: Any) -> dict[str, Any]:
    """What the subject page shows of safety: the subject's adverse events and the open
    tasks to record one (read through the services, in the reader's sites)."""
    user = actor_or_none()
    if user is None:
        return {"events": [], "tasks": [], "site_worker": False}
    events = db.session.execute(ae_service.query(user, {"subject_code": subject.code})).scalars()
    tasks = [
        t
        for t in work_service.tasks_about(include_done=False, subject_id=subject.id)
        if t.kind in ("record_ae", "lab_ae")
    ]
    return {"events": list(events), "tasks": tasks, "site_worker": user.role in SITE_WORK}
