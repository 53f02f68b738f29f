"""The feasibility review of a trial: every metric with its interval, each progression
criterion's light, the decision, the per-site breakdown with the sites' enrolment targets,
and the trend per month. The API, the pages and the reports read this one function.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime
from typing import Any

from trialmgr.enrollment.models import Trial
from trialmgr.milestones.models import METRICS
from trialmgr.milestones.services import criteria as criteria_service
from trialmgr.milestones.services import dataset as ds
from trialmgr.milestones.services import metrics, tallies
from trialmgr.milestones.services.stats import Estimate

# The trend covers at most this many months (the latest ones).
TREND_MONTHS = 60


def review(
    actor: Any,
    trial: Trial,
    now: datetime,
    as_of: date | None = None,
    site_id: int | None = None,
    trend: bool = True,
    entered_by: date | None = None,
) -> dict[str, Any]:
    """The trial's feasibility as of a date (default: the reader's today), over the sites
    the reader sees (coordinators: their own), or one of them (`site_id`; another site's is
    404). Only records dated on or before `as_of` count, so a past review is reproduced; a
    report passes its cut-off as `entered_by` too (records entered after it are left out)."""
    day = ds.resolve_as_of(actor, now, as_of)
    read = tallies.reading(actor, trial, site_id, entered_by)
    tally = tallies.count(read, day)
    estimates = tallies.overall(read, tally, day)
    criteria = criteria_service.criteria_of(trial)
    judged = [criteria_service.criterion_view(c, estimates[c.metric]) for c in criteria]
    return {
        "trial_id": trial.id,
        "trial_code": trial.code,
        "as_of": day,
        "site_id": site_id,
        "metrics": [metrics.metric_view(m, estimates[m]) for m in METRICS],
        "criteria": judged,
        "decision": criteria_service.decision([c["light"] for c in judged]),
        "sites": [
            _site_row(read, tally, site, day, criteria)
            for site in tallies.taking_part(read, tally, day)
        ],
        "trend": _trend(read, tally, day) if trend else [],
    }


def _site_row(
    read: tallies.Reading, tally: tallies.Tally, site: Any, day: date, criteria: list[Any]
) -> dict[str, Any]:
    """One site: its enrolment against its target, its months open, its metrics and lights."""
    estimates = tallies.of_site(read, tally, site, day)
    enrolled = tally.site_total("enrolled", site.id)
    target = site.target_enrollment or 0
    return {
        "site_id": site.id,
        "site_code": site.code,
        "site_name": site.name,
        "country": site.country,
        "target_enrollment": target,
        "enrolled": enrolled,
        "percent_of_target": round(100 * enrolled / target, 1) if target else None,
        "months_open": round(tally.calendar.site_months(site, day), 2),
        "metrics": [metrics.metric_view(m, estimates[m]) for m in METRICS],
        "lights": {
            c.metric: criteria_service.light(
                c.metric, estimates[c.metric], c.target, c.amber_fraction
            )
            for c in criteria
        },
    }


def month_ends(first: date, last: date) -> list[date]:
    """The last day of each month from `first`'s month up to before `last`'s month, then
    `last` itself."""
    points = []
    year, month = first.year, first.month
    while (year, month) < (last.year, last.month):
        points.append(date(year, month, calendar.monthrange(year, month)[1]))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return [*points, last][-TREND_MONTHS:]


def _trend(read: tallies.Reading, tally: tallies.Tally, day: date) -> list[dict[str, Any]]:
    """Each metric's value at the end of every month since the first screening (or the
    first day a site could recruit), and as of the review date."""
    starts = [tally.earliest_screening] if tally.earliest_screening is not None else []
    calendar = tally.calendar
    starts += [d for site in read.sites if (d := calendar.first_open_day(site, day))]
    if not starts or min(starts) > day:
        return []
    points = []
    for point in month_ends(min(starts), day):
        estimates: dict[str, Estimate] = tallies.overall(read, tally, point)
        points.append(
            {
                "as_of": point,
                "values": {m: estimates[m].value for m in METRICS},
                "numerators": {m: estimates[m].numerator for m in METRICS},
                "denominators": {m: estimates[m].denominator for m in METRICS},
            }
        )
    return points


def decision_of(actor: Any, trial: Trial, now: datetime) -> dict[str, Any]:
    """The lights and decision alone (the lead's home page), from the same review."""
    result = review(actor, trial, now, trend=False)
    counts = {
        each: sum(c["light"] == each for c in result["criteria"])
        for each in criteria_service.LIGHTS
    }
    return {"decision": result["decision"], "lights": counts, "as_of": result["as_of"]}
