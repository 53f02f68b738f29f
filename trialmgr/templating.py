"""Jinja filters and globals: dates in the user's chosen format and zone, navigation by role."""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from flask import Flask
from flask_login import current_user

from trialmgr.auth.models import DATE_FORMATS, ROLE_LABELS
from trialmgr.clock import utcnow, zone
from trialmgr.errors import Phrased, Problem

# (label, endpoint, roles); endpoints that are not registered yet are skipped,
# so a domain's menu entry appears when the domain does.
NAVIGATION: list[tuple[str, str, tuple[str, ...]]] = [
    ("Home", "dashboard.home", ("admin", "consortium_lead", "coordinator", "safety_monitor")),
    ("Safety workspace", "dashboard.safety_workspace", ("safety_monitor",)),
    (
        "Partners",
        "partners.partner_list",
        ("admin", "consortium_lead", "coordinator", "safety_monitor"),
    ),
    ("Sites", "partners.site_list", ("admin", "consortium_lead", "coordinator", "safety_monitor")),
    (
        "Trials",
        "enrollment.trial_list",
        ("admin", "consortium_lead", "coordinator", "safety_monitor"),
    ),
    ("Screening", "enrollment.screening_list", ("admin", "consortium_lead", "coordinator")),
    (
        "Subjects",
        "enrollment.subject_list",
        ("admin", "consortium_lead", "coordinator", "safety_monitor"),
    ),
    ("Visits due", "enrollment.visits_due", ("coordinator", "admin")),
    (
        "Adverse events",
        "safety.ae_list",
        ("admin", "consortium_lead", "coordinator", "safety_monitor"),
    ),
    (
        "Safety reports",
        "safety.report_list",
        ("admin", "consortium_lead", "coordinator", "safety_monitor"),
    ),
    ("Tasks", "safety.task_list", ("admin", "consortium_lead", "coordinator", "safety_monitor")),
    (
        "Feasibility",
        "milestones.feasibility_index",
        ("admin", "consortium_lead", "coordinator", "safety_monitor"),
    ),
    (
        "Reports",
        "reports.report_list",
        ("admin", "consortium_lead", "safety_monitor", "coordinator"),
    ),
    (
        "Safety dashboard",
        "safety_dashboard.index",
        ("safety_monitor", "consortium_lead", "coordinator", "admin"),
    ),
    ("Efficacy", "efficacy.index", ("admin", "consortium_lead", "coordinator", "safety_monitor")),
    ("Data export", "exports.export_page", ("admin", "consortium_lead")),
    ("Users", "auth.user_list", ("admin",)),
    ("Audit trail", "audit.audit_list", ("admin", "consortium_lead")),
]


def _user_pref(name: str, default: str) -> str:
    if current_user and getattr(current_user, "is_authenticated", False):
        return getattr(current_user, name, default) or default
    return default


def format_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = _localise(value).date()
    return value.strftime(DATE_FORMATS.get(_user_pref("date_format", "YYYY-MM-DD"), "%Y-%m-%d"))


def date_formatter() -> Callable[[date | None], str]:
    """The reader's date format as a function that no longer needs the request: for CSV rows
    written while a download streams."""
    pattern = DATE_FORMATS.get(_user_pref("date_format", "YYYY-MM-DD"), "%Y-%m-%d")

    def fmt(value: date | None) -> str:
        return value.strftime(pattern) if value is not None else ""

    return fmt


def _localise(value: datetime) -> datetime:
    try:
        zone = zoneinfo.ZoneInfo(_user_pref("timezone", "UTC"))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    return value.astimezone(zone)


def format_datetime(value: datetime | None) -> str:
    return " ".join(datetime_parts(value))


def datetime_parts(value: datetime | None) -> tuple[str, ...]:
    """An instant as the reader's date and the time with its zone, apart (a narrow column
    prints them on two lines); empty for None."""
    if value is None:
        return ()
    local = _localise(value)
    return format_date(local.date()), f"{local.strftime('%H:%M')} {local.tzname()}"


def zone_label(zone_name: str | None, moment: datetime) -> str:
    """A zone as people say it, with its abbreviation at `moment`: "Rome, CET"."""
    place = zone(zone_name)
    if place.key == "UTC":
        return "UTC"
    city = place.key.rsplit("/", 1)[-1].replace("_", " ")
    return f"{city}, {moment.astimezone(place).tzname()}"


def zone_names(zone_name: str | None) -> str:
    """The zone's abbreviations by UTC offset in minutes, as JSON, for the date read-back
    script: the browser's own names are often "GMT-8" where the pages say "PST"."""
    place = zone(zone_name)
    year = utcnow().year
    names: dict[str, str] = {}
    for y in (year - 1, year, year + 1):
        for month in range(1, 13):
            moment = datetime(y, month, 15, 12, tzinfo=place)
            offset = moment.utcoffset()
            if offset is not None:
                names[str(int(offset.total_seconds() // 60))] = moment.tzname() or ""
    return json.dumps(names, sort_keys=True)


def format_site_moment(moment: datetime | None, zone_name: str | None) -> str:
    """An instant in a site's zone, labelled, the date in the reader's format:
    "4 Dec 2026 09:00 (Rome, CET)"."""
    if moment is None:
        return ""
    local = moment.astimezone(zone(zone_name))
    return f"{format_date(local.date())} {local:%H:%M} ({zone_label(zone_name, moment)})"


def format_moment(moment: datetime, zone_name: str | None) -> str:
    """An instant in a sentence on a page: on the site's clock, labelled, when the sentence
    names the site's zone; else on the reader's own clock, labelled."""
    if zone_name:
        return format_site_moment(moment, zone_name)
    return format_datetime(moment)


def page_text(message: Any) -> str:
    """What a service said (a refusal's sentence or a field message), as a page shows it:
    the dates in the reader's format, instants with their zone label. Every refusal a page
    shows, flashes or re-renders passes here; the API prints the same sentence's machine form
    (`str()`, ISO dates)."""
    if isinstance(message, Phrased):
        return message.render(format_date, format_moment)
    if isinstance(message, Problem):
        return page_text(message.message)
    return str(message)


def page_messages(messages: Any) -> Any:
    """Field messages (nested dicts and lists) with `page_text` applied to each sentence."""
    if isinstance(messages, dict):
        return {key: page_messages(value) for key, value in messages.items()}
    if isinstance(messages, list):
        return [page_messages(m) for m in messages]
    if isinstance(messages, str | Phrased):
        return page_text(messages)
    return messages


def register_templating(app: Flask) -> None:
    app.jinja_env.filters["d"] = format_date
    app.jinja_env.filters["dt"] = format_datetime
    app.jinja_env.filters["dt_parts"] = datetime_parts
    # An instant as the site saw it, whoever reads it, in the reader's date format and with
    # the zone's label for that date: `dosed_at | site_time(site.timezone)` reads
    # "04/12/2026 09:00 (Rome, CET)".
    app.jinja_env.filters["site_time"] = format_site_moment
    app.jinja_env.filters["site_moment"] = format_site_moment
    # A service's sentence (a Problem, a Phrase, text) with its dates in the reader's format.
    app.jinja_env.filters["said"] = page_text
    # A site's zone as a label for its wall-clock inputs: "Rome, CET" (the abbreviation now).
    app.jinja_env.filters["zone_now"] = lambda name: zone_label(name, utcnow())
    app.jinja_env.filters["zone_names"] = zone_names
    app.jinja_env.globals["user_date_format"] = lambda: _user_pref("date_format", "YYYY-MM-DD")

    @app.context_processor
    def navigation() -> dict[str, Any]:
        items = []
        if getattr(current_user, "is_authenticated", False):
            items = [
                (label, endpoint)
                for label, endpoint, allowed in NAVIGATION
                if current_user.role in allowed and endpoint in app.view_functions
            ]
        return {
            "nav_items": items,
            "role_labels": ROLE_LABELS,
            "nav_endpoints": app.view_functions,
        }
