"""The public summary of a pilot for patient organisations: opt-in per trial
(`public_summary`, off by default), no login, aggregates only.

Suppression rule (DOMAIN.md, Privacy): every count published here that is below 5 is
given as the string "<5" — subjects, and also the counts of sites, countries and planned
places, since the contract makes no exception. Nothing about any subject is published
(no codes, dates, ages, sexes, cohorts, events).

Differencing: a suppressed count must not be recoverable as "all minus the others". Here
the only count of subjects is the trial's total. Per-site subject counts are published only
when none of them would be suppressed: every site taking part has 5 or more subjects, and
there are 5 or more such sites (so that listing them does not reveal a site count below
5). Then every published cell is at least 5 and the total is their exact sum, so there is
nothing hidden to derive. As soon as one site has fewer than 5, no site's count is
published at all (not only the small site's): with the others' counts withheld, the total
minus the published counts reveals nothing. The enrolment bar's percentage is given only
with an exact total (5 or more) and an exact planned size: a percentage of a known size
would otherwise disclose the suppressed count.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from trialmgr.auth.models import SystemActor
from trialmgr.clock import local_date
from trialmgr.enrollment.models import Trial
from trialmgr.errors import NotFound
from trialmgr.extensions import db
from trialmgr.milestones.services import dataset as ds
from trialmgr.milestones.services import metrics
from trialmgr.partners.services.sites import open_for_screening, site_today

SMALL = 5
SUPPRESSED = "<5"
STATUS_LABELS = {
    "setup": "in preparation",
    "open": "open to enrolment",
    "paused": "enrolment and dosing paused for a safety review",
    "closed": "closed to enrolment, follow-up continuing",
    "ended": "ended",
}
# Reads every site: the published numbers are the consortium's, not a user's share.
PUBLIC_READER = SystemActor(email="system:public-summary")


def shown(count: int) -> int | str:
    """A count as published: itself from 5 up, "<5" below."""
    return count if count >= SMALL else SUPPRESSED


def published_trial(code: str) -> Trial:
    """The trial with this code, if its summary is public; any other answers 404 (an unknown
    code and a private trial look the same)."""
    trial = db.session.execute(
        sa.select(Trial).where(Trial.code == code.strip().upper())
    ).scalar_one_or_none()
    if trial is None or not trial.public_summary:
        raise NotFound(f"No public summary for {code}.")
    return trial


def summary(code: str, now: datetime) -> dict[str, Any]:
    """The published aggregates (module docstring for the suppression rule)."""
    trial = published_trial(code)
    today = local_date(now, "UTC")
    data = ds.load(PUBLIC_READER, trial)
    sites = ds.taking_part(data, today)
    active = [s for s in sites if open_for_screening(s, site_today(s, now))]
    enrolled = len(metrics.enrolled(data, today))
    planned = sum(c.capacity for c in trial.cohorts)
    per_site = {s.id: sum(1 for x in data.subjects if x.site_id == s.id) for s in sites}
    publish_sites = len(sites) >= SMALL and all(n >= SMALL for n in per_site.values())
    exact = enrolled >= SMALL and planned >= SMALL
    return {
        "code": trial.code,
        "title": trial.title,
        "indication": trial.indication,
        "phase": trial.phase,
        "status": trial.status,
        "status_label": STATUS_LABELS.get(trial.status, trial.status),
        "as_of": today,
        "active_sites": shown(len(active)),
        "countries": shown(len({s.country for s in active})),
        "enrolled": shown(enrolled),
        "planned": shown(planned),
        "percent_enrolled": min(round(100 * enrolled / planned), 100) if exact else None,
        "sites": [{"name": s.name, "country": s.country, "enrolled": per_site[s.id]} for s in sites]
        if publish_sites
        else [],
        "note": 'Counts below 5 are shown as "<5"; per-site numbers appear only when no '
        "site has fewer than 5 participants.",
    }
