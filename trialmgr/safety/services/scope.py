"""Who and what a safety dashboard reader sees: one trial, their sites (or the one site
asked for), all cohorts or one, an onset-date range; as WHERE conditions on the records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from trialmgr.auth.policies import site_scope
from trialmgr.enrollment.models import Cohort, Subject, Trial
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.errors import Invalid
from trialmgr.partners.services import sites as sites_service
from trialmgr.safety.models import AdverseEvent, LabResult


@dataclass(frozen=True)
class Scope:
    """What a dashboard reader sees: one trial, their sites (or the one site asked for), all
    cohorts or one, an onset-date range."""

    trial: Trial
    site_ids: tuple[int, ...] | None  # None: every site
    cohort_id: int | None = None
    since: date | None = None
    until: date | None = None

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


def soc_key(column: Any = AdverseEvent.soc) -> Any:
    return sa.func.lower(sa.func.trim(column))


def ae_conditions(scope: Scope) -> list[Any]:
    """The scope as WHERE conditions on adverse_event (all on its dashboard index)."""
    where = [AdverseEvent.trial_id == scope.trial.id]
    if scope.site_ids is not None:
        where.append(AdverseEvent.site_id.in_(scope.site_ids))
    if scope.cohort_id is not None:
        where.append(AdverseEvent.cohort_id == scope.cohort_id)
    if scope.since is not None:
        where.append(AdverseEvent.onset_date >= scope.since)
    if scope.until is not None:
        where.append(AdverseEvent.onset_date <= scope.until)
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
    return where


def cohorts_of(trial: Trial) -> dict[int, Cohort]:
    """The trial's cohorts by id (rows name them by label, in their sequence)."""
    return {c.id: c for c in trial.cohorts}
