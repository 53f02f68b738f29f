"""Sites: creation, the clinical gate, and what follows from a site's state on a date.

Status changes (activation, suspension, reactivation, closure) are in `status`; the gate
here reads that history and the approvals in force on the event's date.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.clock import Day, Phrase, local_date
from trialmgr.errors import Conflict, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.models import Partner, Site, SiteStatusChange
from trialmgr.partners.policies import may_see_site, require_manager, scope_sites
from trialmgr.partners.services.approvals import approval_view, missing_approvals, why_not_current
from trialmgr.partners.services.status import (
    change_in_effect,
    first_activation,
    months_open,
    next_change,
    site_state_on,
)


def site_query(actor: Any, filters: dict[str, Any]) -> sa.Select[tuple[Site]]:
    q = scope_sites(actor, sa.select(Site).order_by(Site.code))
    for field in ("status", "partner_id", "country"):
        if filters.get(field) is not None:
            q = q.where(getattr(Site, field) == filters[field])
    return q


def count_by_status() -> dict[str, int]:
    """How many sites are in each status (pending, active, suspended, closed)."""
    rows = db.session.execute(sa.select(Site.status, sa.func.count()).group_by(Site.status))
    return {status: n for status, n in rows.tuples()}


def get_site(actor: Any, site_id: int) -> Site:
    """A site the actor may see; any other answers 404."""
    site = db.session.get(Site, site_id)
    if site is None or not may_see_site(actor, site.id):
        raise NotFound(f"No site {site_id}.")
    return site


def get_site_by_code(actor: Any, code: str) -> Site:
    site = db.session.execute(sa.select(Site).where(Site.code == code.upper())).scalar_one_or_none()
    if site is None or not may_see_site(actor, site.id):
        raise NotFound(f"No site {code}.")
    return site


def create_site(actor: Any, data: dict[str, Any]) -> Site:
    """A new site starts pending; its code is unique and becomes the subject-code prefix."""
    require_manager(actor)
    partner = db.session.get(Partner, data["partner_id"])
    if partner is None:
        raise Invalid(
            "Unknown partner.", errors={"partner_id": [f"No partner {data['partner_id']}."]}
        )
    code = data["code"].upper()
    if db.session.execute(sa.select(Site.id).where(Site.code == code)).first():
        raise Conflict("A site with this code exists.", errors={"code": ["Already used."]})
    with audit.audited(actor, action="site.create"):
        site = Site(**{**data, "code": code, "status": "pending"})
        db.session.add(site)
    return site


def update_site(actor: Any, site: Site, data: dict[str, Any]) -> Site:
    """Edit a site's details (not its code or status); the reason is audited."""
    require_manager(actor)
    data = dict(data)
    reason = data.pop("reason")
    with audit.audited(actor, reason=reason):
        for key, value in data.items():
            setattr(site, key, value)
    return site


def open_for_screening(site: Site, on: date) -> bool:
    """Whether a clinical event dated `on` would pass the gate: active that day by the history,
    with every approval in force current."""
    return site_state_on(site, on) == "active" and not missing_approvals(site, on)


# The date field each gated operation is judged on: a date before the site first opened is
# a wrong date (422 on that field), not a closed gate.
OPERATION_DATE_FIELDS = {
    "screening": "screened_on",
    "enrolment": "enrolled_on",
    "dosing": "dosed_at",
}


def assert_site_open(site: Site, on: date, operation: str) -> None:
    """The gate for a clinical event at the site: `operation` (screening, enrolment, dosing)
    happening on `on` (a day at the site) needs the site active on that day by its status
    history, with the approval in force of every kind current on that day. Late entry of an
    event done while the site was open is accepted whatever the site's status today; whether
    the site must also be open today is the caller's rule. The refusal names the operation and
    the cause with its date. Follow-up of enrolled subjects does not call this."""
    name = operation.capitalize()
    change = change_in_effect(site, on)
    if change is None:
        first = first_activation(site)
        if first is not None:
            field = OPERATION_DATE_FIELDS.get(operation, "on")
            raise Invalid(
                Phrase(
                    "{name} not allowed on {on}: site {code} opened only on {first}.",
                    name=name,
                    on=Day(on),
                    code=site.code,
                    first=Day(first),
                ),
                errors={field: [Phrase("Before the site opened ({first}).", first=Day(first))]},
            )
        raise Conflict(
            f"{name} not allowed: site {site.code} has not been activated.",
            title="Site not open",
            errors={"site": ["Site is pending."]},
        )
    if change.status == "suspended":
        ended = next_change(site, change)
        if ended is None:
            since = Phrase(
                "{name} not allowed: site {code} suspended since {since}.",
                name=name,
                code=site.code,
                since=Day(change.on),
            )
            raise _not_open(since, change)
        between = Phrase(
            "{name} not allowed on {on}: site {code} was suspended from {since} until its "
            "{change} on {until}.",
            name=name,
            on=Day(on),
            code=site.code,
            since=Day(change.on),
            change=ended.change,
            until=Day(ended.on),
        )
        raise _not_open(between, change)
    if change.status == "closed":
        closed = Phrase(
            "{name} not allowed: site {code} closed on {on}.",
            name=name,
            code=site.code,
            on=Day(change.on),
        )
        raise _not_open(closed, change)
    missing = missing_approvals(site, on)
    if missing:
        causes = Phrase.joined("; ", [why_not_current(site, kind, on) for kind in missing])
        raise Conflict(
            Phrase("{name} not allowed on {on}: {causes}.", name=name, on=Day(on), causes=causes),
            title="Site not open",
            errors={"missing": missing},
        )


def _not_open(detail: Phrase, change: SiteStatusChange) -> Conflict:
    return Conflict(
        detail,
        title="Site not open",
        errors={
            "site": [Phrase("Site {status} since {on}.", status=change.status, on=Day(change.on))]
        },
    )


def site_local_date(site: Site, moment: datetime) -> date:
    """The calendar day at the site when `moment` happened (dosing day 0, study days)."""
    return local_date(moment, site.timezone)


def site_today(site: Site, now: datetime) -> date:
    """Today at the site: the reference for its "not in the future" and expiry checks."""
    return local_date(now, site.timezone)


def site_view(site: Site, now: datetime) -> dict[str, Any]:
    """A site with what follows from its today (its local date at `now`): open for screening,
    missing approvals, months open, the approvals with the ones in force."""
    today = site_today(site, now)
    latest = site.status_changes[-1] if site.status_changes else None
    fields = (
        "id",
        "partner_id",
        "code",
        "name",
        "country",
        "timezone",
        "principal_investigator",
        "target_enrollment",
        "status",
        "status_reason",
        "activated_on",
        "closed_on",
    )
    return {
        **{f: getattr(site, f) for f in fields},
        "today": today,
        "status_since": latest.on if latest else None,
        "open_for_screening": open_for_screening(site, today),
        "missing_approvals": missing_approvals(site, today),
        "months_open": round(months_open(site, today), 2),
        "approvals": [approval_view(a, now) for a in site.approvals],
    }


def check_not_before_activation(field: str, value: date, site: Site) -> None:
    """Clinical dates at a site cannot precede its first activation (by its status history)."""
    first = first_activation(site)
    if first is None or value < first:
        raise Invalid(
            "Clinical dates cannot precede the site's activation.",
            errors={field: [f"Before the site opened ({first})."]},
        )
