"""Which report a request means: kind, trial, scope and period, checked against who asks.

An on-demand report covers the days from `period_start` (default: the first day of the
cut-off's month) to the cut-off (default: yesterday, the last complete day); the cut-off is
never in the future. Yesterday and today are the site's days for a one-site report, the
requester's for a trial-wide one (its sites may be in several zones; each record is still
judged against the cut-off on its own site's calendar). The same request twice means the
same report; another cut-off is another report.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from trialmgr.clock import actor_today, local_date
from trialmgr.enrollment.services.trials import get_trial
from trialmgr.errors import Invalid
from trialmgr.extensions import db
from trialmgr.partners.models import Site
from trialmgr.partners.policies import may_see_site
from trialmgr.reports.policies import require_may_generate
from trialmgr.reports.services.archive import ReportKey


def cut_off_today(actor: Any, site: Site | None, now: datetime) -> date:
    """The latest cut-off allowed: today at the report's one site, else the requester's."""
    return local_date(now, site.timezone) if site is not None else actor_today(actor, now)


def default_cut_off(actor: Any, now: datetime, site: Site | None = None) -> date:
    """Yesterday (see `cut_off_today`): the last day whose data is complete."""
    return cut_off_today(actor, site, now) - timedelta(days=1)


def request_key(actor: Any, data: dict[str, Any], now: datetime) -> ReportKey:
    """The key of a "generate now" request, once the requester may have it: trial readers
    any report, coordinators the one-site report of a site of theirs (another site is
    unknown to them: 422 on `site_id`, as for any other record they cannot see)."""
    trial = get_trial(data["trial_id"])
    site_id = data.get("site_id")
    site = None
    if site_id is not None:
        site = db.session.get(Site, site_id)
        if site is None or not may_see_site(actor, site.id):
            raise Invalid("Unknown site.", errors={"site_id": [f"No site {site_id}."]})
    require_may_generate(actor, data["kind"], site_id)
    today = cut_off_today(actor, site, now)
    cut_off = data.get("cut_off") or today - timedelta(days=1)
    if cut_off > today:
        raise Invalid(
            "The cut-off is in the future.",
            errors={
                "cut_off": [
                    f"Not after today ({today.isoformat()}): a report holds only data that exist."
                ]
            },
        )
    start = data.get("period_start") or cut_off.replace(day=1)
    if start > cut_off:
        raise Invalid(
            "The period starts after its cut-off.",
            errors={"period_start": ["On or before the cut-off."]},
        )
    return ReportKey(data["kind"], trial.id, site_id, start, cut_off)
