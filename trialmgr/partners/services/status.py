"""A site's status history: activation, suspension, reactivation and closure, each from a day
at the site, appended in date order and never edited (closing is final).

The history answers what the site's status was on any day (`site_state_on`), which the
clinical gate judges an event by, and for how long the site was actually open
(`months_open`), which recruitment rates divide by. `Site.status`, `activated_on` and
`closed_on` follow the history, for lists and filters.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from trialmgr.audit import services as audit
from trialmgr.clock import Day, Phrase, check_not_future, local_date
from trialmgr.errors import Conflict, Invalid
from trialmgr.extensions import db
from trialmgr.partners.models import APPROVAL_KINDS, STATUS_CHANGES, Site, SiteStatusChange
from trialmgr.partners.policies import require_manager
from trialmgr.partners.services.approvals import current_periods, missing_approvals

DAYS_PER_MONTH = 365.25 / 12
# Half-open [start, end) periods of days; end None: still going.
Period = tuple[date, date | None]


# --- reading the history ------------------------------------------------------------


def change_in_effect(site: Site, day: date) -> SiteStatusChange | None:
    """The latest status change on or before `day` (None: the site was still pending)."""
    in_effect = None
    for change in site.status_changes:
        if change.on > day:
            break
        in_effect = change
    return in_effect


def next_change(site: Site, change: SiteStatusChange) -> SiteStatusChange | None:
    """The change that ended `change`'s status (None: it is still in effect)."""
    changes = site.status_changes
    index = changes.index(change)
    return changes[index + 1] if index + 1 < len(changes) else None


def site_state_on(site: Site, day: date) -> str:
    """The site's status on `day` (a day at the site): pending before its first activation,
    then active, suspended or closed as the history says."""
    change = change_in_effect(site, day)
    return "pending" if change is None else change.status


def first_activation(site: Site) -> date | None:
    """The day the site first opened (None: never activated)."""
    return next((c.on for c in site.status_changes if c.change == "activation"), None)


def _active_periods(site: Site) -> list[Period]:
    periods: list[Period] = []
    start: date | None = None
    for change in site.status_changes:
        if change.status == "active" and start is None:
            start = change.on
        elif change.status != "active" and start is not None:
            if change.on > start:
                periods.append((start, change.on))
            start = None
    if start is not None:
        periods.append((start, None))
    return periods


def _intersect(first: list[Period], second: list[Period]) -> list[Period]:
    out: list[Period] = []
    for a_start, a_end in first:
        for b_start, b_end in second:
            start = max(a_start, b_start)
            ends = [e for e in (a_end, b_end) if e is not None]
            end = min(ends) if ends else None
            if end is None or end > start:
                out.append((start, end))
    return sorted(out)


def open_periods(site: Site, until: date) -> list[tuple[date, date]]:
    """The periods [start, end) before `until` in which the site was open: active by its
    history with every approval kind current (suspensions and approval lapses do not count)."""
    periods = _active_periods(site)
    for kind in APPROVAL_KINDS:
        periods = _intersect(periods, current_periods(site, kind))
    clipped = [(start, min(end or until, until)) for start, end in periods]
    return [(start, end) for start, end in clipped if end > start]


def months_open(site: Site, until: date) -> float:
    """Site-months open before `until` (recruitment rates divide by this): only the days the
    site was active with its approvals current."""
    return sum((end - start).days for start, end in open_periods(site, until)) / DAYS_PER_MONTH


# --- changing the status --------------------------------------------------------------

_ACTIONS = {
    "activation": "site.activate",
    "reactivation": "site.reactivate",
    "suspension": "site.suspend",
    "closure": "site.close",
}


def _check_order(site: Site, field: str, on: date) -> None:
    """Changes are appended in date order: none before the latest one."""
    if site.status_changes and on < site.status_changes[-1].on:
        last = site.status_changes[-1]
        raise Invalid(
            Phrase(
                "The site's status history already has a {change} on {on}.",
                change=last.change,
                on=Day(last.on),
            ),
            errors={
                field: [
                    Phrase(
                        "Before the site's {change} on {on}.", change=last.change, on=Day(last.on)
                    )
                ]
            },
        )


def _lock(site: Site) -> None:
    """Serialise status changes of one site: lock its row (PostgreSQL; SQLite writes already
    hold the database lock) and read its status and history afresh."""
    db.session.refresh(site, with_for_update=True)
    db.session.expire(site, ["status_changes"])


def _record(
    actor: Any, site: Site, change: str, on: date, reason: str | None, now: datetime
) -> SiteStatusChange:
    status = STATUS_CHANGES[change]
    with audit.audited(actor, reason=reason, action=_ACTIONS[change]):
        row = SiteStatusChange(
            site=site,
            change=change,
            status=status,
            on=on,
            reason=reason,
            recorded_at=now,
            recorded_by=actor.email,
        )
        db.session.add(row)
        site.status = status
        site.status_reason = reason
        if change == "activation":
            site.activated_on = on
        if change == "closure":
            site.closed_on = on
    return row


def activate_site(
    actor: Any,
    site: Site,
    now: datetime,
    activated_on: date | None = None,
    reason: str | None = None,
) -> Site:
    """The activation gate: IRB, IBC, contract and SIV all current (their records in force)
    on the activation date and still today at the site. The date defaults to the site's today
    and is never in the future (often recorded after the fact). A suspended site is
    reactivated this way, from a date not before its suspension; a closed one never."""
    require_manager(actor)
    _lock(site)
    today = local_date(now, site.timezone)
    on = activated_on or today
    check_not_future("activated_on", on, today)
    if site.status == "closed":
        raise Conflict("A closed site cannot be activated again.", title="Site closed")
    if site.status == "active":
        raise Conflict("The site is already active.", title="Already active")
    _check_order(site, "activated_on", on)
    missing = missing_approvals(site, on)
    missing += [kind for kind in missing_approvals(site, today) if kind not in missing]
    if missing:
        raise Conflict(
            Phrase(
                "The site cannot be activated on {on}: {missing} not current.",
                on=Day(on),
                missing=", ".join(missing),
            ),
            title="Activation gate closed",
            errors={"missing": missing},
        )
    change = "reactivation" if site.status == "suspended" else "activation"
    _record(actor, site, change, on, reason, now)
    return site


def suspend_site(
    actor: Any, site: Site, reason: str, now: datetime, on: date | None = None
) -> Site:
    """Suspension closes the site to new clinical events from `on` (default: the site's today,
    never in the future); enrolled subjects continue follow-up. Events dated before it are
    still judged against the site as it was then."""
    require_manager(actor)
    _lock(site)
    today = local_date(now, site.timezone)
    on = on or today
    check_not_future("on", on, today)
    if site.status != "active":
        raise Conflict(
            f"Only an active site can be suspended (this one is {site.status}).",
            title="Site not active",
        )
    _check_order(site, "on", on)
    _record(actor, site, "suspension", on, reason, now)
    return site


def close_site(actor: Any, site: Site, reason: str, now: datetime, on: date | None = None) -> Site:
    """Closing is final: no new clinical events from `on` (default: the site's today, never in
    the future), no reactivation. Not before the site's last status change or, never
    activated, before it was recorded."""
    require_manager(actor)
    _lock(site)
    today = local_date(now, site.timezone)
    on = on or today
    check_not_future("on", on, today)
    if site.status == "closed":
        raise Conflict("The site is already closed.", title="Site closed")
    if not site.status_changes:
        recorded = local_date(site.created_at, site.timezone)
        if on < recorded:
            raise Invalid(
                "A site that never opened cannot close before it was recorded.",
                errors={"on": [Phrase("Before {on}.", on=Day(recorded))]},
            )
    _check_order(site, "on", on)
    _record(actor, site, "closure", on, reason, now)
    return site
