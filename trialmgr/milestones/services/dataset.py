"""The records a trial's feasibility numbers are computed from, loaded once per request
and then read as of any date (the monthly trend reuses one load).

Which sites take part in a trial: sites know nothing of trials, so a site recruits for a
trial from the day the trial's consent form is approved there (a trial-wide approval date
approves it everywhere) and while it is open (active, every approval current: the
partners' `open_periods`/`months_open`). A site that screened for the trial counts too.
Coordinators' loads hold their own sites only; another site's `site_id` answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from trialmgr.clock import actor_today, check_not_future, local_date, zone
from trialmgr.enrollment.models import Screening, Subject, Trial, Visit
from trialmgr.errors import Invalid
from trialmgr.extensions import db
from trialmgr.partners.models import Site
from trialmgr.partners.policies import scope_sites
from trialmgr.partners.services import sites as sites_service
from trialmgr.partners.services.status import months_open, open_periods
from trialmgr.safety.models import ExpeditedReport


@dataclass(frozen=True)
class Dataset:
    trial: Trial
    sites: list[Site]  # the sites in the reader's scope (and filter)
    screenings: list[Screening]
    subjects: list[Subject]
    reports: list[ExpeditedReport]
    cohort_id: int | None = None

    def for_site(self, site: Site) -> Dataset:
        return replace(
            self,
            sites=[site],
            screenings=[s for s in self.screenings if s.site_id == site.id],
            subjects=[s for s in self.subjects if s.site_id == site.id],
            reports=[r for r in self.reports if r.site_id == site.id],
        )

    def for_cohort(self, cohort_id: int) -> Dataset:
        """Subjects of one cohort (screenings belong to no cohort: they are left out)."""
        subjects = [s for s in self.subjects if s.cohort_id == cohort_id]
        ids = {s.id for s in subjects}
        reports = [r for r in self.reports if r.adverse_event.subject_id in ids]
        return replace(self, screenings=[], subjects=subjects, reports=reports, cohort_id=cohort_id)


def load(
    actor: Any, trial: Trial, site_id: int | None = None, entered_by: date | None = None
) -> Dataset:
    """The trial's screenings, subjects (with dosing and visits) and expedited reports at the
    sites the actor sees; `site_id` narrows to one of them (404 if the actor may not see
    it). `entered_by` (a report's data cut-off): only screenings, subjects and clocks entered
    before that day ended at their site."""
    sites = scoped_sites(actor, site_id)
    site_ids = [site.id for site in sites]
    screenings = list(
        db.session.execute(
            sa.select(Screening).where(
                Screening.trial_id == trial.id, Screening.site_id.in_(site_ids)
            )
        ).scalars()
    )
    subjects = list(
        db.session.execute(
            sa.select(Subject)
            .where(Subject.trial_id == trial.id, Subject.site_id.in_(site_ids))
            .options(
                selectinload(Subject.dosing),
                selectinload(Subject.visits),
                selectinload(Subject.screening),
                selectinload(Subject.site),
            )
        ).scalars()
    )
    reports = list(
        db.session.execute(
            sa.select(ExpeditedReport)
            .where(ExpeditedReport.trial_id == trial.id, ExpeditedReport.site_id.in_(site_ids))
            .options(selectinload(ExpeditedReport.adverse_event))
        ).scalars()
    )
    data = Dataset(trial, sites, screenings, subjects, reports)
    return data if entered_by is None else _entered_by(data, entered_by)


def scoped_sites(actor: Any, site_id: int | None = None, history: bool = True) -> list[Site]:
    """The sites the actor sees (by code), with their status history and approvals unless
    `history` is false; or the one asked for (404 if the actor may not see it)."""
    if site_id is not None:
        site_ids = [sites_service.get_site(actor, site_id).id]
    else:
        site_ids = list(
            db.session.execute(scope_sites(actor, sa.select(Site.id).order_by(Site.code)))
            .scalars()
            .all()
        )
    return list(
        db.session.execute(
            sa.select(Site)
            .where(Site.id.in_(site_ids))
            .options(
                *(
                    (selectinload(Site.status_changes), selectinload(Site.approvals))
                    if history
                    else ()
                )
            )
            .order_by(Site.code)
        ).scalars()
    )


def _entered_by(data: Dataset, day: date) -> Dataset:
    """The records entered before `day` ended at their site (their dates are checked as of
    the review day by the metrics themselves)."""
    zones = {site.id: site.timezone for site in data.sites}

    def entered(record: Any) -> bool:
        return bool(record.created_at < end_of_day(day, zones.get(record.site_id)))

    return replace(
        data,
        screenings=[s for s in data.screenings if entered(s)],
        subjects=[s for s in data.subjects if entered(s)],
        reports=[r for r in data.reports if entered(r)],
    )


def resolve_as_of(actor: Any, now: datetime, as_of: date | None) -> date:
    """The review date: as given (not in the future), else today in the reader's zone
    (trial-level dates are the user's; site records are already site-local dates)."""
    today = actor_today(actor, now)
    if as_of is None:
        return today
    check_not_future("as_of", as_of, today)
    if as_of.year < 1900:
        raise Invalid("Give a real date.", errors={"as_of": ["Before 1900."]})
    return as_of


# --- sites taking part ---------------------------------------------------------------


def recruiting_from(trial: Trial, site: Site) -> date | None:
    """The first day the trial's consent form was approved at the site (None: not yet)."""
    dates = [d for v in trial.consent_versions if (d := v.approved_at(site.id)) is not None]
    return min(dates, default=None)


def site_months(trial: Trial, site: Site, as_of: date) -> float:
    """Months the site was open for the trial up to and including `as_of`: open by its status
    history with every approval current (`months_open`, suspensions and lapses do not
    count), from the day the trial's consent was approved there."""
    start = recruiting_from(trial, site)
    if start is None or start > as_of:
        return 0.0
    until = as_of + timedelta(days=1)
    return max(months_open(site, until) - months_open(site, start), 0.0)


def first_open_day(trial: Trial, site: Site, as_of: date) -> date | None:
    """The first day (on or before `as_of`) the site was open for the trial."""
    start = recruiting_from(trial, site)
    if start is None:
        return None
    for period_start, period_end in open_periods(site, as_of + timedelta(days=1)):
        if period_end > start:
            return max(period_start, start)
    return None


def taking_part(data: Dataset, as_of: date) -> list[Site]:
    """The sites of the load that recruited for the trial by `as_of`: open for it at some
    point, or having screened for it."""
    screened = {s.site_id for s in data.screenings if s.screened_on <= as_of}
    return [
        site
        for site in data.sites
        if site.id in screened or first_open_day(data.trial, site, as_of) is not None
    ]


# --- dates as of a review ----------------------------------------------------------


def dosed_on(subject: Subject) -> date | None:
    """The dosing day at the site (study day 0)."""
    if subject.dosing is None:
        return None
    return local_date(subject.dosing.dosed_at, subject.site.timezone)


def end_of_day(day: date, zone_name: str | None) -> datetime:
    """The first instant after `day` at a place: instants before it happened by that day."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone(zone_name))


def primary_visit(subject: Subject) -> Visit | None:
    return next((v for v in subject.visits if v.primary_endpoint), None)
