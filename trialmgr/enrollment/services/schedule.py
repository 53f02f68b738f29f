"""Visit schedules: protocol visits from the visit definitions, yearly long-term
follow-up contacts, and replication-competent virus tests for retro/lentiviral vectors.

Study day N is the dosing date + N days (dosing day is day 0; negative days are pre-dose,
baseline visits); yearly and monthly dates fall on the same calendar day, or the month's
last day when it has none (dosed 31 Jan → 30 Apr; dosed 29 Feb → 28 Feb). An amendment
recomputes the future visits of every subject in follow-up from their dosing date.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta

from trialmgr.enrollment.models import Subject, Trial, Visit
from trialmgr.extensions import db

LTFU_WINDOW_DAYS = 30
RCR_WINDOW_DAYS = 14
RCR_MONTHS = (3, 6, 12)
RCR_PRETREATMENT = "RCR pre-treatment sample"


def plan(trial: Trial, dosed_on: date) -> list[dict[str, Any]]:
    """The visits a subject of `trial` dosed on `dosed_on` is due, in date order."""
    visits: list[dict[str, Any]] = []
    for d in trial.visit_definitions:
        if d.active is False:  # removed by an amendment
            continue
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
        # A sample taken before treatment, up to 30 days before dosing, then 3, 6, 12 months
        # and yearly while follow-up lasts.
        pre = _window("rcr", RCR_PRETREATMENT, dosed_on, dosed_on, 0)
        pre["window_start"] = dosed_on - timedelta(days=LTFU_WINDOW_DAYS)
        visits.append(pre)
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
    visits = [Visit(subject=subject, **v) for v in plan(subject.trial, dosed_on)]
    db.session.add_all(visits)
    return visits


def _key(visit: dict[str, Any] | Visit) -> tuple[str, Any]:
    """Protocol visits are matched by their definition, generated ones by name."""
    get = visit.get if isinstance(visit, dict) else lambda k: getattr(visit, k)
    return ("def", get("definition_id")) if get("kind") == "protocol" else ("name", get("name"))


TIMING = ("name", "day", "scheduled_on", "window_start", "window_end", "primary_endpoint")


def reschedule(subject: Subject, dosed_on: date, effective_on: date) -> bool:
    """Bring the subject's visits scheduled from `effective_on` on in line with the trial's
    current design: changed timings updated, new visits added, removed ones cancelled.
    Visits done, missed or dated before the effective date are untouched, and nothing is
    added after the subject's exit (or protocol visits after a procedures withdrawal).
    Returns whether anything changed."""
    from trialmgr.enrollment.services.subjects import exit_date

    wanted = {_key(v): v for v in plan(subject.trial, dosed_on)}
    changed = False
    for visit in subject.visits:
        target = wanted.pop(_key(visit), None)
        if visit.status != "scheduled" or visit.scheduled_on < effective_on:
            continue
        if target is None:
            visit.status, visit.cancel_reason = "cancelled", "amendment"
            changed = True
        elif any(getattr(visit, f) != target[f] for f in TIMING):
            for field in TIMING:
                setattr(visit, field, target[field])
            changed = True
    by_name = {v.name: v for v in subject.visits}
    for target in wanted.values():
        exit_on = exit_date(subject, target["kind"])
        if target["scheduled_on"] < effective_on or (exit_on and target["scheduled_on"] > exit_on):
            continue
        same_name = by_name.get(target["name"])
        if same_name is None:
            db.session.add(Visit(subject=subject, **target))
        elif same_name.status == "cancelled" and same_name.cancel_reason == "amendment":
            for field, value in target.items():  # a removed visit put back by a later one
                setattr(same_name, field, value)
            same_name.status, same_name.cancel_reason = "scheduled", None
        else:
            continue
        changed = True
    return changed
