"""Who and what a safety dashboard reader sees: one trial, their sites (or the one site
asked for), all cohorts or one, an onset-date range; as WHERE conditions on the records.

A report adds a data cut-off (`CutOff`): then only records dated on or before the cut-off
day and entered before that day ended (each at its site's calendar) count, adverse events
as their version in force then (`scope.events`, see `as_of`). Without one (the pages),
the records as they stand now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from trialmgr.auth.policies import site_scope
from trialmgr.clock import zone
from trialmgr.enrollment.models import Cohort, Dosing, Subject, Trial
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.errors import Invalid
from trialmgr.extensions import db
from trialmgr.partners.models import Site
from trialmgr.partners.services import sites as sites_service
from trialmgr.safety.models import AdverseEvent, LabResult


@dataclass(frozen=True)
class CutOff:
    """A report's data cut-off: the day, and per site the first instant after it there."""

    day: date
    ends: tuple[tuple[int, datetime], ...]

    def end(self, site_id: Any) -> Any:
        """The first instant after the cut-off day at the row's site (SQL)."""
        latest = max((end for _, end in self.ends), default=_day_end(self.day, None))
        if not self.ends:
            return sa.literal(latest)
        return sa.case(dict(self.ends), value=site_id, else_=latest)

    def before_end(self, moment: Any, site_id: Any) -> Any:
        """The instant fell on or before the cut-off day at the row's site."""
        return moment < self.end(site_id)


def _day_end(day: date, zone_name: str | None) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone(zone_name)).astimezone(
        UTC
    )


def cut_off_at(day: date) -> CutOff:
    """The cut-off `day` at every site (each site's own calendar)."""
    sites = db.session.execute(sa.select(Site.id, Site.timezone).order_by(Site.id)).all()
    return CutOff(day, tuple((site_id, _day_end(day, name)) for site_id, name in sites))


@dataclass(frozen=True)
class Scope:
    """What a dashboard reader sees: one trial, their sites (or the one site asked for), all
    cohorts or one, an onset-date range; for a report, the data cut-off."""

    trial: Trial
    site_ids: tuple[int, ...] | None  # None: every site
    cohort_id: int | None = None
    since: date | None = None
    until: date | None = None
    cut_off: CutOff | None = None

    @cached_property
    def events(self) -> Any:
        """The adverse events to count: the table itself, or (with a cut-off) each event
        entered by then as its version in force then. One per scope, so that every part of
        a query names the same rows."""
        if self.cut_off is None:
            return AdverseEvent
        from trialmgr.safety.services.as_of import events_as_of

        return events_as_of(self.trial.id, self.cut_off)

    def args(self) -> dict[str, Any]:
        """The filters as query arguments (drill-down links carry them)."""
        given = {
            "cohort_id": self.cohort_id,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {k: v for k, v in given.items() if v is not None}


def scope_for(actor: Any, trial: Trial, filters: dict[str, Any]) -> Scope:
    """The reader's scope: a site they may not see answers 404, a cohort of another trial
    and a range that ends before it starts are field errors."""
    allowed = site_scope(actor)
    site_ids = None if allowed is None else tuple(allowed)
    if filters.get("site_id") is not None:
        site_ids = (sites_service.get_site(actor, filters["site_id"]).id,)
    if filters.get("cohort_id") is not None:
        trials_service.get_cohort(trial, filters["cohort_id"])
    since, until = filters.get("since"), filters.get("until")
    if since and until and until < since:
        raise Invalid("The date range ends before it starts.", errors={"until": ["Before since."]})
    return Scope(trial, site_ids, filters.get("cohort_id"), since, until)


def site_arg(filters: dict[str, Any]) -> dict[str, Any]:
    """The site filter as given (a coordinator's own scope is not a filter)."""
    return {"site_id": filters["site_id"]} if filters.get("site_id") is not None else {}


def report_scope(trial: Trial, day: date, site_id: int | None = None) -> Scope:
    """A report's scope: the whole trial (or one site) as of the data cut-off `day`."""
    return Scope(trial, None if site_id is None else (site_id,), cut_off=cut_off_at(day))


def soc_key(column: Any = AdverseEvent.soc) -> Any:
    return sa.func.lower(sa.func.trim(column))


def ae_conditions(scope: Scope) -> list[Any]:
    """The scope as WHERE conditions on `scope.events` (all on the dashboard index)."""
    ae = scope.events
    where = [ae.trial_id == scope.trial.id]
    if scope.site_ids is not None:
        where.append(ae.site_id.in_(scope.site_ids))
    if scope.cohort_id is not None:
        where.append(ae.cohort_id == scope.cohort_id)
    if scope.since is not None:
        where.append(ae.onset_date >= scope.since)
    if scope.until is not None:
        where.append(ae.onset_date <= scope.until)
    if scope.cut_off is not None:
        where.append(ae.onset_date <= scope.cut_off.day)
    return where


def lab_conditions(scope: Scope) -> list[Any]:
    """The scope on lab_result; the date range on collection time, [since, until] in UTC days."""
    where = [LabResult.trial_id == scope.trial.id]
    if scope.site_ids is not None:
        where.append(LabResult.site_id.in_(scope.site_ids))
    if scope.cohort_id is not None:
        where.append(Subject.cohort_id == scope.cohort_id)
    if scope.since is not None:
        where.append(LabResult.collected_at >= datetime.combine(scope.since, time(0), UTC))
    if scope.until is not None:
        end = datetime.combine(scope.until + timedelta(days=1), time(0), UTC)
        where.append(LabResult.collected_at < end)
    if scope.cut_off is not None:
        where.append(scope.cut_off.before_end(LabResult.collected_at, LabResult.site_id))
        where.append(scope.cut_off.before_end(LabResult.created_at, LabResult.site_id))
    return where


def dosed_by_cut_off(scope: Scope) -> list[Any]:
    """With a cut-off, dosings done by then (joined Dosing and Subject)."""
    if scope.cut_off is None:
        return []
    return [
        scope.cut_off.before_end(Dosing.dosed_at, Subject.site_id),
        scope.cut_off.before_end(Dosing.created_at, Subject.site_id),
    ]


def cohorts_of(trial: Trial) -> dict[int, Cohort]:
    """The trial's cohorts by id (rows name them by label, in their sequence)."""
    return {c.id: c for c in trial.cohorts}
