"""Sites: creation, the activation gate, suspension and closure, and what follows from a
site's state on a date."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.clock import check_not_future, local_date
from trialmgr.errors import Conflict, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.models import Partner, Site
from trialmgr.partners.policies import may_see_site, require_manager, scope_sites
from trialmgr.partners.services.approvals import approval_view, missing_approvals

DAYS_PER_MONTH = 365.25 / 12


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


def activate_site(actor: Any, site: Site, today: date, activated_on: date | None = None) -> Site:
    """The activation gate: IRB, IBC, contract and SIV all current on the activation date
    (default today, never in the future; often recorded after the fact) and still today."""
    require_manager(actor)
    activated_on = activated_on or today
    check_not_future("activated_on", activated_on, today)
    if site.status == "closed":
        raise Conflict("A closed site cannot be activated again.", title="Site closed")
    if site.status == "active":
        raise Conflict("The site is already active.", title="Already active")
    missing = missing_approvals(site, activated_on)
    for kind in missing_approvals(site, today):
        if kind not in missing:
            missing.append(kind)
    if missing:
        raise Conflict(
            f"The site cannot be activated on {activated_on.isoformat()}: "
            f"{', '.join(missing)} not current.",
            title="Activation gate closed",
            errors={"missing": missing},
        )
    with audit.audited(actor, action="site.activate"):
        site.status = "active"
        site.activated_on = activated_on if site.activated_on is None else site.activated_on
        site.status_reason = None
    return site


def suspend_site(actor: Any, site: Site, reason: str) -> Site:
    """Suspension closes the site to new screening; enrolled subjects continue follow-up."""
    require_manager(actor)
    if site.status != "active":
        raise Conflict(f"Only an active site can be suspended (this one is {site.status}).")
    with audit.audited(actor, reason=reason, action="site.suspend"):
        site.status = "suspended"
        site.status_reason = reason
    return site


def close_site(actor: Any, site: Site, reason: str, today: date, on: date | None = None) -> Site:
    """Closing is final: no new screening, no re-activation."""
    require_manager(actor)
    on = on or today
    check_not_future("on", on, today)
    if site.status == "closed":
        raise Conflict("The site is already closed.")
    opened = site.activated_on or site.created_at.date()
    if on < opened:
        raise Invalid(
            "A site cannot close before it opened (or, never activated, before it was recorded).",
            errors={"on": [f"Before {opened.isoformat()}."]},
        )
    with audit.audited(actor, reason=reason, action="site.close"):
        site.status = "closed"
        site.closed_on = on
        site.status_reason = reason
    return site


def open_for_screening(site: Site, on: date) -> bool:
    return site.status == "active" and not missing_approvals(site, on)


def assert_site_open(site: Site, on: date, operation: str) -> None:
    """The gate for a clinical event at the site: `operation` (screening, enrolment, dosing)
    happening on `on` needs the site active with every approval current on that date.
    The refusal names the operation. Follow-up of enrolled subjects does not call this."""
    if site.status != "active":
        raise Conflict(
            f"{operation.capitalize()} not allowed: site {site.code} is {site.status}.",
            title="Site not open",
            errors={"site": [f"Site is {site.status}."]},
        )
    missing = missing_approvals(site, on)
    if missing:
        raise Conflict(
            f"{operation.capitalize()} not allowed on {on.isoformat()}: site {site.code} has "
            f"{', '.join(missing)} not current.",
            title="Site not open",
            errors={"missing": missing},
        )


def site_local_date(site: Site, moment: datetime) -> date:
    """The calendar day at the site when `moment` happened (dosing day 0, study days)."""
    return local_date(moment, site.timezone)


def site_today(site: Site, now: datetime) -> date:
    """Today at the site: the reference for its "not in the future" and expiry checks."""
    return local_date(now, site.timezone)


def months_open(site: Site, until: date) -> float:
    """Months the site has been open since activation (to closure or `until`)."""
    if site.activated_on is None or site.activated_on > until:
        return 0.0
    end = min(until, site.closed_on) if site.closed_on else until
    return max((end - site.activated_on).days, 0) / DAYS_PER_MONTH


def site_view(site: Site, today: date) -> dict[str, Any]:
    """A site with what follows from today: open for screening, missing approvals, months open."""
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
        "open_for_screening": open_for_screening(site, today),
        "missing_approvals": missing_approvals(site, today),
        "months_open": round(months_open(site, today), 2),
        "approvals": [approval_view(a, today) for a in site.approvals],
    }


def check_not_before_activation(field: str, value: date, site: Site) -> None:
    """Clinical dates at a site cannot precede its activation."""
    if site.activated_on is None or value < site.activated_on:
        raise Invalid(
            "Clinical dates cannot precede the site's activation.",
            errors={field: [f"Before the site opened ({site.activated_on})."]},
        )
