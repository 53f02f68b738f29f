"""Milestones of a trial, optionally of one of its sites: planned and achieved dates and a
status, and the Gantt-like timeline's rows.

Status on a day: done (achieved by then); late (not achieved and its planned date has
passed); at risk (not achieved and planned within the next 30 days, the planned day itself
included); on track (planned later). "The day" is the review date when one is given,
otherwise today in the site's zone for a site's milestone and in the reader's zone for a
trial's.

Some milestones complete themselves from the records and say so (`automatic`): the first
site open for the trial (active, approvals current, the trial's consent approved there),
the first screening, the first dosing, a cohort complete (as many dosed as its capacity)
and the last subject dosed (every slot of every cohort dosed); their achieved date is the
day it happened at the site, and cannot be typed in.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.clock import actor_today, check_not_future, local_date
from trialmgr.enrollment.models import Dosing, Screening, Subject, Trial
from trialmgr.enrollment.policies import require_manager
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.errors import Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.milestones.models import (
    AUTOMATIC_KINDS,
    MILESTONE_LABELS,
    SITE_KINDS,
    Milestone,
)
from trialmgr.milestones.services import dataset as ds
from trialmgr.partners.models import Site
from trialmgr.partners.policies import may_see_site
from trialmgr.partners.services.sites import site_today

AT_RISK_DAYS = 30


def status_on(planned_on: date, achieved_on: date | None, today: date) -> str:
    """done / late / at_risk / on_track on `today` (module docstring)."""
    if achieved_on is not None and achieved_on <= today:
        return "done"
    if planned_on < today:
        return "late"
    if planned_on <= today + timedelta(days=AT_RISK_DAYS):
        return "at_risk"
    return "on_track"


# --- dates from the records ---------------------------------------------------------


def _dosing_days(trial: Trial, site_id: int | None, cohort_id: int | None) -> list[date]:
    q = (
        sa.select(Dosing.dosed_at, Site.timezone)
        .join(Subject, Dosing.subject_id == Subject.id)
        .join(Site, Subject.site_id == Site.id)
        .where(Subject.trial_id == trial.id)
    )
    if site_id is not None:
        q = q.where(Subject.site_id == site_id)
    if cohort_id is not None:
        q = q.where(Dosing.cohort_id == cohort_id)
    rows = db.session.execute(q.order_by(Dosing.dosed_at)).all()
    return sorted(local_date(at, zone_name) for at, zone_name in rows)


def _nth(days: list[date], n: int, as_of: date) -> date | None:
    """The day the n-th of these happened, if by `as_of`."""
    happened = [d for d in days if d <= as_of]
    return happened[n - 1] if n > 0 and len(happened) >= n else None


def achieved_from_records(milestone: Milestone, trial: Trial, as_of: date) -> date | None:
    """The day an automatic milestone was reached, by the records dated on or before
    `as_of` (None: not yet)."""
    kind, site_id = milestone.kind, milestone.site_id
    if kind == "first_site_activated":
        sites = (
            [milestone.site] if milestone.site else db.session.execute(sa.select(Site)).scalars()
        )
        days = [d for site in sites if site and (d := ds.first_open_day(trial, site, as_of))]
        return min(days, default=None)
    if kind == "first_subject_screened":
        q = sa.select(sa.func.min(Screening.screened_on)).where(
            Screening.trial_id == trial.id, Screening.screened_on <= as_of
        )
        if site_id is not None:
            q = q.where(Screening.site_id == site_id)
        first: date | None = db.session.execute(q).scalar_one()
        return first
    if kind == "first_subject_dosed":
        return _nth(_dosing_days(trial, site_id, None), 1, as_of)
    if kind == "cohort_complete" and milestone.cohort is not None:
        return _nth(
            _dosing_days(trial, None, milestone.cohort_id), milestone.cohort.capacity, as_of
        )
    if kind == "last_subject_dosed":
        slots = sum(c.capacity for c in trial.cohorts)
        return _nth(_dosing_days(trial, None, None), slots, as_of)
    return None


# --- reading ----------------------------------------------------------------------


def _today(actor: Any, milestone: Milestone, now: datetime, as_of: date | None) -> date:
    if as_of is not None:
        return as_of
    if milestone.site is not None:
        return site_today(milestone.site, now)
    return actor_today(actor, now)


def milestone_view(
    actor: Any, milestone: Milestone, trial: Trial, now: datetime, as_of: date | None = None
) -> dict[str, Any]:
    """A milestone with its achieved date (typed in, or from the records), its status on
    the day, and how many days it came (or is) after its plan."""
    today = _today(actor, milestone, now, as_of)
    if milestone.automatic:
        achieved = achieved_from_records(milestone, trial, today)
    else:
        achieved = (
            milestone.achieved_on
            if milestone.achieved_on and milestone.achieved_on <= today
            else None
        )
    status = status_on(milestone.planned_on, achieved, today)
    if achieved is not None:
        slip = (achieved - milestone.planned_on).days
    else:
        slip = max((today - milestone.planned_on).days, 0)
    return {
        "id": milestone.id,
        "trial_id": milestone.trial_id,
        "kind": milestone.kind,
        "kind_label": MILESTONE_LABELS[milestone.kind],
        "name": milestone.name,
        "site_id": milestone.site_id,
        "site_code": milestone.site.code if milestone.site else None,
        "cohort_id": milestone.cohort_id,
        "cohort_label": milestone.cohort.label if milestone.cohort else None,
        "planned_on": milestone.planned_on,
        "achieved_on": achieved,
        "automatic": milestone.automatic,
        "achieved_from": ("records" if milestone.automatic else "entry") if achieved else None,
        "status": status,
        "days_after_plan": slip,
        "notes": milestone.notes,
        "as_of": today,
    }


def milestones_of(actor: Any, trial: Trial) -> list[Milestone]:
    """The trial's milestones the actor sees: the trial's own and those of their sites."""
    rows = db.session.execute(
        sa.select(Milestone)
        .where(Milestone.trial_id == trial.id)
        .order_by(Milestone.planned_on, Milestone.id)
    ).scalars()
    return [m for m in rows if m.site_id is None or may_see_site(actor, m.site_id)]


def views_of(
    actor: Any, trial: Trial, now: datetime, as_of: date | None = None
) -> list[dict[str, Any]]:
    if as_of is not None:
        as_of = ds.resolve_as_of(actor, now, as_of)
    return [milestone_view(actor, m, trial, now, as_of) for m in milestones_of(actor, trial)]


def get_milestone(actor: Any, milestone_id: int) -> Milestone:
    milestone = db.session.get(Milestone, milestone_id)
    if milestone is None or (
        milestone.site_id is not None and not may_see_site(actor, milestone.site_id)
    ):
        raise NotFound(f"No milestone {milestone_id}.")
    return milestone


# --- writing ----------------------------------------------------------------------


def _kind_from(data: dict[str, Any]) -> str:
    """The kind given, else the one whose standard name the milestone has ("First subject
    dosed" completes itself from the records), else other."""
    if data.get("kind"):
        return str(data["kind"])
    name = " ".join(data.get("name", "").split()).casefold()
    return next((k for k, label in MILESTONE_LABELS.items() if label.casefold() == name), "other")


def _site_of(data: dict[str, Any]) -> Site | None:
    if data.get("site_id") is None:
        return None
    site = db.session.get(Site, data["site_id"])
    if site is None:
        raise Invalid("Unknown site.", errors={"site_id": [f"No site {data['site_id']}."]})
    return site


def _check_achieved(
    actor: Any, kind: str, site: Site | None, achieved_on: date | None, now: datetime
) -> None:
    if achieved_on is None:
        return
    if kind in AUTOMATIC_KINDS:
        raise Invalid(
            "This milestone completes itself from the records.",
            errors={"achieved_on": ["Not typed in: it comes from the records."]},
        )
    today = site_today(site, now) if site is not None else actor_today(actor, now)
    check_not_future("achieved_on", achieved_on, today)


def create_milestone(actor: Any, trial: Trial, data: dict[str, Any], now: datetime) -> Milestone:
    """A planned milestone of the trial or of one site (site milestones: not a cohort's or
    the last dosing). A cohort's completion names its cohort. Only milestones that do not
    complete themselves take an achieved date, never in the future."""
    require_manager(actor)
    kind = _kind_from(data)
    site = _site_of(data)
    errors: dict[str, list[str]] = {}
    if site is not None and kind not in SITE_KINDS:
        errors["site_id"] = [f"A {MILESTONE_LABELS[kind].lower()} milestone is trial-wide."]
    cohort = None
    if kind == "cohort_complete":
        if data.get("cohort_id") is None:
            errors["cohort_id"] = ["Name the cohort."]
        else:
            cohort = trials_service.get_cohort(trial, data["cohort_id"])
    elif data.get("cohort_id") is not None:
        errors["cohort_id"] = ["Only a cohort's completion names a cohort."]
    if errors:
        raise Invalid("The milestone does not fit its kind.", errors=errors)
    _check_achieved(actor, kind, site, data.get("achieved_on"), now)
    with audit.audited(actor, action="milestone.create"):
        milestone = Milestone(
            trial_id=trial.id,
            kind=kind,
            name=" ".join(data["name"].split()),
            site=site,
            cohort=cohort,
            planned_on=data["planned_on"],
            achieved_on=data.get("achieved_on"),
            notes=data.get("notes"),
        )
        db.session.add(milestone)
    return milestone


def update_milestone(
    actor: Any, milestone: Milestone, data: dict[str, Any], now: datetime
) -> Milestone:
    """Re-plan, rename, annotate, or record (or clear) the achieved date of a milestone that
    does not complete itself; the reason is audited."""
    require_manager(actor)
    data = dict(data)
    reason = data.pop("reason")
    _check_achieved(actor, milestone.kind, milestone.site, data.get("achieved_on"), now)
    with audit.audited(actor, reason=reason, action="milestone.update"):
        for key, value in data.items():
            setattr(milestone, key, " ".join(value.split()) if key == "name" else value)
    return milestone
