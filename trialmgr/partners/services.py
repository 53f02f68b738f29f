"""Partners, sites, approvals and the activation gate."""

from __future__ import annotations

import hashlib
import os
import tempfile
import zoneinfo
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app

from trialmgr.audit import services as audit
from trialmgr.errors import Conflict, Forbidden, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.models import APPROVAL_KINDS, Partner, Site, SiteApproval
from trialmgr.partners.policies import can_manage, may_see_site, scope_sites

EXPIRY_WARNING_DAYS = 30
DAYS_PER_MONTH = 365.25 / 12


def _require_manager(actor: Any) -> None:
    if not can_manage(actor):
        raise Forbidden("Only administrators and consortium leads manage partners and sites.")


def _check_not_future(field: str, value: date, today: date) -> None:
    if value > today:
        raise Invalid(
            "Dates cannot be in the future.", errors={field: ["Must not be in the future."]}
        )


# --- partners -------------------------------------------------------------------


def partner_query(filters: dict[str, Any]) -> sa.Select[tuple[Partner]]:
    """The directory: free-text search over name, short name and role; kind, country filters."""
    q = sa.select(Partner).order_by(Partner.name)
    if filters.get("q"):
        like = f"%{filters['q'].lower()}%"
        q = q.where(
            sa.or_(
                sa.func.lower(Partner.name).like(like),
                sa.func.lower(Partner.short_name).like(like),
                sa.func.lower(sa.func.coalesce(Partner.consortium_role, "")).like(like),
            )
        )
    for field in ("kind", "country", "active"):
        if field in filters and filters[field] is not None:
            q = q.where(getattr(Partner, field) == filters[field])
    return q


def get_partner(partner_id: int) -> Partner:
    partner = db.session.get(Partner, partner_id)
    if partner is None:
        raise NotFound(f"No partner {partner_id}.")
    return partner


def _unique_partner_name(name: str, exclude: int | None = None) -> None:
    q = sa.select(Partner.id).where(sa.func.lower(Partner.name) == name.lower())
    if exclude is not None:
        q = q.where(Partner.id != exclude)
    if db.session.execute(q).first():
        raise Conflict("A partner with this name exists.", errors={"name": ["Already used."]})


def create_partner(actor: Any, data: dict[str, Any]) -> Partner:
    """Add a consortium member; names are unique (case-insensitive)."""
    _require_manager(actor)
    _unique_partner_name(data["name"])
    with audit.audited(actor, action="partner.create"):
        partner = Partner(**data)
        db.session.add(partner)
    return partner


def update_partner(actor: Any, partner: Partner, data: dict[str, Any]) -> Partner:
    """Edit a partner; the reason is kept in the audit trail."""
    _require_manager(actor)
    data = dict(data)
    reason = data.pop("reason")
    if "name" in data:
        _unique_partner_name(data["name"], exclude=partner.id)
    with audit.audited(actor, reason=reason):
        for key, value in data.items():
            setattr(partner, key, value)
    return partner


def visible_sites_of(actor: Any, partner: Partner) -> list[Site]:
    return [s for s in partner.sites if may_see_site(actor, s.id)]


# --- sites ----------------------------------------------------------------------


def site_query(actor: Any, filters: dict[str, Any]) -> sa.Select[tuple[Site]]:
    q = scope_sites(actor, sa.select(Site).order_by(Site.code))
    for field in ("status", "partner_id", "country"):
        if filters.get(field) is not None:
            q = q.where(getattr(Site, field) == filters[field])
    return q


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
    _require_manager(actor)
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
    _require_manager(actor)
    data = dict(data)
    reason = data.pop("reason")
    with audit.audited(actor, reason=reason):
        for key, value in data.items():
            setattr(site, key, value)
    return site


def missing_approvals(site: Site, on: date) -> list[str]:
    """Approval kinds that are not current on `on`, in the order irb, ibc, contract, siv."""
    current = {a.kind for a in site.approvals if a.is_current(on)}
    return [kind for kind in APPROVAL_KINDS if kind not in current]


def activate_site(actor: Any, site: Site, today: date, activated_on: date | None = None) -> Site:
    """The activation gate: IRB, IBC, contract and SIV all current on the activation date
    (default today, never in the future; often recorded after the fact) and still today."""
    _require_manager(actor)
    activated_on = activated_on or today
    _check_not_future("activated_on", activated_on, today)
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
    _require_manager(actor)
    if site.status != "active":
        raise Conflict(f"Only an active site can be suspended (this one is {site.status}).")
    with audit.audited(actor, reason=reason, action="site.suspend"):
        site.status = "suspended"
        site.status_reason = reason
    return site


def close_site(actor: Any, site: Site, reason: str, today: date, on: date | None = None) -> Site:
    """Closing is final: no new screening, no re-activation."""
    _require_manager(actor)
    on = on or today
    _check_not_future("on", on, today)
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


def assert_site_open(site: Site, on: date) -> None:
    """Called by enrolment before a new screening: the site must be active with every
    approval current on the screening date. Follow-up of enrolled subjects does not call this."""
    if site.status != "active":
        raise Conflict(
            f"Site {site.code} is {site.status}; it does not accept new screenings.",
            title="Site not open",
            errors={"site": [f"Site is {site.status}."]},
        )
    missing = missing_approvals(site, on)
    if missing:
        raise Conflict(
            f"Site {site.code} is closed to new screenings: {', '.join(missing)} not current.",
            title="Site not open",
            errors={"missing": missing},
        )


def site_local_date(site: Site, moment: datetime) -> date:
    """The calendar day at the site when `moment` happened (dosing day 0, study days)."""
    return moment.astimezone(zoneinfo.ZoneInfo(site.timezone)).date()


def months_open(site: Site, until: date) -> float:
    """Months the site has been open since activation (to closure or `until`)."""
    if site.activated_on is None or site.activated_on > until:
        return 0.0
    end = min(until, site.closed_on) if site.closed_on else until
    return max((end - site.activated_on).days, 0) / DAYS_PER_MONTH


def approval_state(approval: SiteApproval, today: date) -> tuple[str, int | None]:
    """current / expiring (within 30 days) / expired / withdrawn / future, and days to expiry."""
    days = (approval.expires_on - today).days if approval.expires_on else None
    if approval.withdrawn_on is not None and approval.withdrawn_on <= today:
        return "withdrawn", days
    if approval.granted_on > today:
        return "future", days
    if days is not None and days < 0:
        return "expired", days
    if days is not None and days <= EXPIRY_WARNING_DAYS:
        return "expiring", days
    return "current", days


def approval_view(approval: SiteApproval, today: date) -> dict[str, Any]:
    state, days = approval_state(approval, today)
    view = {
        c: getattr(approval, c)
        for c in (
            "id",
            "site_id",
            "kind",
            "reference",
            "granted_on",
            "expires_on",
            "withdrawn_on",
            "withdrawn_reason",
            "document_name",
            "document_sha256",
            "document_size",
        )
    }
    return {**view, "state": state, "days_to_expiry": days}


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


# --- approvals ------------------------------------------------------------------


def add_approval(actor: Any, site: Site, data: dict[str, Any], today: date) -> SiteApproval:
    """Record an approval (IRB, IBC, contract, SIV); the grant date is not in the future."""
    _require_manager(actor)
    _check_not_future("granted_on", data["granted_on"], today)
    if site.status == "closed":
        raise Conflict("The site is closed.", title="Site closed")
    with audit.audited(actor, action="approval.create"):
        approval = SiteApproval(site=site, **data)
        db.session.add(approval)
    return approval


def get_approval(actor: Any, approval_id: int) -> SiteApproval:
    approval = db.session.get(SiteApproval, approval_id)
    if approval is None or not may_see_site(actor, approval.site_id):
        raise NotFound(f"No approval {approval_id}.")
    return approval


def update_approval(
    actor: Any, approval: SiteApproval, data: dict[str, Any], today: date
) -> SiteApproval:
    """Correct an approval, or record its withdrawal/suspension (which closes the site to
    new screening from that date)."""
    _require_manager(actor)
    data = dict(data)
    reason = data.pop("reason")
    if data.get("withdrawn_on"):
        _check_not_future("withdrawn_on", data["withdrawn_on"], today)
        if approval.withdrawn_on is not None:
            raise Conflict(
                "The approval is already withdrawn; record a new approval instead.",
                title="Already withdrawn",
            )
    expires = data.get("expires_on", approval.expires_on)
    if expires is not None and expires < approval.granted_on:
        raise Invalid(
            "Expiry before grant.", errors={"expires_on": ["Must be on or after the grant date."]}
        )
    with audit.audited(actor, reason=reason, action="approval.update"):
        for key, value in data.items():
            setattr(approval, key, value)
        if "withdrawn_on" in data:
            approval.withdrawn_reason = reason if data["withdrawn_on"] else None
    return approval


def document_dir() -> Path:
    return Path(current_app.instance_path) / "documents"


def attach_document(
    actor: Any, approval: SiteApproval, filename: str, content: bytes
) -> SiteApproval:
    """Store an approval letter: a PDF (by its first bytes, not its name), at most
    UPLOAD_MAX_BYTES, kept under instance/documents by sha256, written atomically."""
    _require_manager(actor)
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    if len(content) > limit:
        raise Invalid(
            "The file is too large.", errors={"file": [f"At most {limit // (1024 * 1024)} MB."]}
        )
    if not content.startswith(b"%PDF-"):
        raise Invalid("Only PDF documents are accepted.", errors={"file": ["Not a PDF file."]})
    digest = hashlib.sha256(content).hexdigest()
    folder = document_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{digest}.pdf"
    if not target.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    safe_name = Path(filename).name[:255] or "document.pdf"
    with audit.audited(actor, action="approval.document"):
        approval.document_name = safe_name
        approval.document_sha256 = digest
        approval.document_size = len(content)
    return approval


def document_path(approval: SiteApproval) -> Path:
    if not approval.document_sha256:
        raise NotFound("This approval has no document.")
    return document_dir() / f"{approval.document_sha256}.pdf"
