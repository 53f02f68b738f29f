"""The site page's status changes: activation (rehearsed and restated before it runs),
suspension and closure. Registered on the partners blueprint."""

from __future__ import annotations

from typing import Any

from flask import request

from trialmgr.auth.policies import MANAGERS, roles
from trialmgr.clock import utcnow
from trialmgr.partners.models import Site
from trialmgr.partners.schemas import ActivateIn, StatusChangeIn
from trialmgr.partners.services import status as status_service
from trialmgr.partners.views import _load, bp, site_action
from trialmgr.templating import format_date


@bp.route("/sites/<int:site_id>/activate", methods=["POST"])
@roles(*MANAGERS)
def site_activate(site_id: int) -> Any:
    def act(actor: Any, site: Site) -> None:
        data = _load(ActivateIn(), request.form)
        status_service.activate_site(
            actor, site, utcnow(), data.get("activated_on"), data.get("reason")
        )

    def restate(site: Site) -> dict[str, Any]:
        on = site.status_changes[-1].on
        return {
            "title": f"activation of site {site.code}",
            "summary": f"Site {site.code} ({site.name}) opens on {format_date(on)}: from that "
            "day it screens, enrols and doses.",
            "details": [
                f"Approvals in force: {', '.join(a.kind.upper() for a in site.approvals)}.",
                f"Target enrolment: {site.target_enrollment}.",
                "Clinical dates at the site are checked against this activation date.",
            ],
            "warning": "An activation stays in the site's history; it can be suspended, "
            "not undone.",
            "button": f"Confirm: activate {site.code}",
        }

    return site_action(site_id, "activate", act, "Site {site.code} is active.", restate)


@bp.route("/sites/<int:site_id>/suspend", methods=["POST"])
@roles(*MANAGERS)
def site_suspend(site_id: int) -> Any:
    def act(actor: Any, site: Site) -> None:
        data = _load(StatusChangeIn(), request.form)
        status_service.suspend_site(actor, site, data["reason"], utcnow(), data.get("on"))

    return site_action(site_id, "suspend", act, "Site {site.code} is suspended.")


@bp.route("/sites/<int:site_id>/close", methods=["POST"])
@roles(*MANAGERS)
def site_close(site_id: int) -> Any:
    def act(actor: Any, site: Site) -> None:
        data = _load(StatusChangeIn(), request.form)
        status_service.close_site(actor, site, data["reason"], utcnow(), data.get("on"))

    return site_action(site_id, "close", act, "Site {site.code} is closed.")
