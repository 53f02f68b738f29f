"""Site approvals (IRB, IBC, contract, SIV): recording, withdrawal, and which are current."""

from __future__ import annotations

from datetime import date
from typing import Any

from trialmgr.audit import services as audit
from trialmgr.clock import check_not_future
from trialmgr.errors import Conflict, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.models import APPROVAL_KINDS, Site, SiteApproval
from trialmgr.partners.policies import may_see_site, require_manager

EXPIRY_WARNING_DAYS = 30


def missing_approvals(site: Site, on: date) -> list[str]:
    """Approval kinds that are not current on `on`, in the order irb, ibc, contract, siv."""
    current = {a.kind for a in site.approvals if a.is_current(on)}
    return [kind for kind in APPROVAL_KINDS if kind not in current]


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


def add_approval(actor: Any, site: Site, data: dict[str, Any], today: date) -> SiteApproval:
    """Record an approval (IRB, IBC, contract, SIV); the grant date is not in the future."""
    require_manager(actor)
    check_not_future("granted_on", data["granted_on"], today)
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
    require_manager(actor)
    data = dict(data)
    reason = data.pop("reason")
    if data.get("withdrawn_on"):
        check_not_future("withdrawn_on", data["withdrawn_on"], today)
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
