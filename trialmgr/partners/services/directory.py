"""The consortium directory: partners (sponsor, sites, laboratories, manufacturer, patient
organisations...)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.errors import Conflict, NotFound
from trialmgr.extensions import db
from trialmgr.partners.models import Partner, Site, fold
from trialmgr.partners.policies import may_see_site, require_manager


def partner_query(filters: dict[str, Any]) -> sa.Select[tuple[Partner]]:
    """The directory: free-text search over name, short name and role, ignoring accents and
    case ("hopital" finds "Hôpital"); kind, country filters."""
    q = sa.select(Partner).order_by(Partner.name)
    if filters.get("q"):
        term = fold(filters["q"]).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        q = q.where(Partner.search_text.like(f"%{term}%", escape="\\"))
    for field in ("kind", "country", "active"):
        if field in filters and filters[field] is not None:
            q = q.where(getattr(Partner, field) == filters[field])
    return q


def partner_countries() -> list[str]:
    """The countries in the directory, for its filter."""
    return list(
        db.session.execute(
            sa.select(Partner.country).distinct().order_by(Partner.country)
        ).scalars()
    )


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
    require_manager(actor)
    _unique_partner_name(data["name"])
    with audit.audited(actor, action="partner.create"):
        partner = Partner(**data)
        db.session.add(partner)
    return partner


def update_partner(actor: Any, partner: Partner, data: dict[str, Any]) -> Partner:
    """Edit a partner; the reason is kept in the audit trail."""
    require_manager(actor)
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
