"""Who may manage partners and sites, and which sites an actor sees.

Coordinators see only the sites they belong to; another site answers 404
(not 403), so its existence is not disclosed.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from trialmgr.auth.policies import MANAGERS, site_scope
from trialmgr.errors import Forbidden
from trialmgr.partners.models import Site


def can_manage(actor: Any) -> bool:
    return actor.role in MANAGERS or actor.role == "system"


def scope_sites(actor: Any, query: sa.Select[Any], site_column: Any = Site.id) -> sa.Select[Any]:
    """Restrict a query to the sites the actor may see."""
    allowed = site_scope(actor)
    if allowed is None:
        return query
    return query.where(site_column.in_(allowed))


def may_see_site(actor: Any, site_id: int) -> bool:
    allowed = site_scope(actor)
    return allowed is None or site_id in allowed


def require_manager(actor: Any) -> None:
    if not can_manage(actor):
        raise Forbidden("Only administrators and consortium leads manage partners and sites.")
