"""Who may do what to which enrolment record: trial design by managers, safety decisions
by safety monitors, site work by the coordinators of the subject's site.

Route decorators (`auth.policies.roles`) admit roles; these checks repeat the rule in the
service, so that a service called from the CLI or another domain enforces it too.
"""

from __future__ import annotations

from typing import Any

from trialmgr.auth.models import COORDINATOR, SAFETY_MONITOR
from trialmgr.errors import Forbidden
from trialmgr.partners.policies import can_manage, may_see_site


def require_manager(actor: Any) -> None:
    if not can_manage(actor):
        raise Forbidden("Only administrators and consortium leads change the trial design.")


def require_safety_monitor(actor: Any, what: str) -> None:
    if actor.role != SAFETY_MONITOR:
        raise Forbidden(f"Only a safety monitor {what}.")


def require_site_worker(actor: Any, site_id: int) -> None:
    """Clinical data entry is coordinators' work, at their own sites (administrators read it
    but do not enter clinical data)."""
    if actor.role != COORDINATOR:
        raise Forbidden("Only the site's coordinators enter clinical data.")
    if not may_see_site(actor, site_id):
        raise Forbidden("You do not work at this site.")
