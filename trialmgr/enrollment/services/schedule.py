"""Visit schedules: protocol visits from the visit definitions, yearly long-term
follow-up contacts, and replication-competent virus tests for retro/lentiviral vectors.

Study day N is the dosing date + N days (dosing day is day 0); yearly and monthly
dates fall on the same calendar day, or the month's last day when it has none
(dosed 31 Jan → 30 Apr; dosed 29 Feb → 28 Feb)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta

from trialmgr.enrollment.models import Subject, Trial, Visit

LTFU_WINDOW_DAYS = 30
RCR_WINDOW_DAYS = 14
RCR_MONTHS = (3, 6, 12)


def plan(trial: Trial, dosed_on: date) -> list[dict[str, Any]]:
    """The visits a subject of `trial` dosed on `dosed_on` is due, in date order."""
    visits: list[dict[str, Any]] = []
    for d in trial.visit_definitions:
        on = dosed_on + timedelta(days=d.day)
        visits.append(
            {
                "kind": "protocol",
                "name": d.name,
                "day": d.day,
                "scheduled_on": on,
                "window_start": on - timedelta(days=d.window_before),
                "window_end": on + timedelta(days=d.window_after),
                "definition_id": d.id,
                "primary_endpoint": d.primary_endpoint,
            }
        )
    for year in range(1, trial.ltfu_years + 1):
        on = dosed_on + relativedelta(years=year)
        label = "visit" if year <= 5 else "contact"  # years 1-5 a visit; later a contact suffices
        visits.append(_window("ltfu", f"LTFU year {year} {label}", on, dosed_on, LTFU_WINDOW_DAYS))
    if trial.rcr_testing:
        months = list(RCR_MONTHS) + [12 * y for y in range(2, trial.ltfu_years + 1)]
        for month in months:
            on = dosed_on + relativedelta(months=month)
            visits.append(_window("rcr", f"RCR test month {month}", on, dosed_on, RCR_WINDOW_DAYS))
    return sorted(visits, key=lambda v: (v["scheduled_on"], v["name"]))


def _window(kind: str, name: str, on: date, dosed_on: date, days: int) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": name,
        "day": (on - dosed_on).days,
        "scheduled_on": on,
        "window_start": on - timedelta(days=days),
        "window_end": on + timedelta(days=days),
        "definition_id": None,
        "primary_endpoint": False,
    }


def generate(subject: Subject, dosed_on: date) -> list[Visit]:
    """Create the planned visits (called inside the dosing's audited block)."""
    from trialmgr.extensions import db

    visits = [Visit(subject=subject, **v) for v in plan(subject.trial, dosed_on)]
    db.session.add_all(visits)
    return visits
