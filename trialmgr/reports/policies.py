"""Who may read, generate and schedule which reports.

Trial-wide reports are for consortium leads, safety monitors and administrators; a
coordinator sees only one-site reports of their own sites (any other report answers 404, so
its existence is not disclosed) and may generate those. Schedules are set by managers;
consortium leads and safety monitors subscribe to them.
"""

from __future__ import annotations

from typing import Any

from trialmgr.auth.models import ADMIN, CONSORTIUM_LEAD, COORDINATOR, SAFETY_MONITOR
from trialmgr.auth.policies import MANAGERS
from trialmgr.errors import Forbidden, Invalid
from trialmgr.partners.policies import may_see_site
from trialmgr.reports.models import SITE_SCOPED_KINDS

# Who reads (and generates) every report of a trial.
TRIAL_READERS = (ADMIN, CONSORTIUM_LEAD, SAFETY_MONITOR)
# Who reads the archive at all: coordinators their sites' one-site reports.
ARCHIVE_READERS = (*TRIAL_READERS, COORDINATOR)
SUBSCRIBERS = (CONSORTIUM_LEAD, SAFETY_MONITOR)


def sees_every_report(actor: Any) -> bool:
    return actor.role in TRIAL_READERS or actor.role == "system"


def may_see(actor: Any, report: Any) -> bool:
    if sees_every_report(actor):
        return True
    return (
        actor.role == COORDINATOR
        and report.site_id is not None
        and may_see_site(actor, report.site_id)
    )


def require_may_generate(actor: Any, kind: str, site_id: int | None) -> None:
    """Leads, safety monitors and administrators generate any report; coordinators the
    one-site report of a site of theirs."""
    if site_id is not None and kind not in SITE_SCOPED_KINDS:
        raise Invalid(
            "This report has no one-site variant.",
            errors={"site_id": ["Only the site enrolment report is made for one site."]},
        )
    if sees_every_report(actor):
        return
    if actor.role == COORDINATOR and site_id is not None and kind in SITE_SCOPED_KINDS:
        return
    raise Forbidden("Coordinators generate the site enrolment report of one of their sites.")


def require_schedule_manager(actor: Any) -> None:
    if actor.role not in MANAGERS and actor.role != "system":
        raise Forbidden("Only administrators and consortium leads manage report schedules.")


def require_subscriber(actor: Any) -> None:
    if actor.role not in SUBSCRIBERS:
        raise Forbidden("Consortium leads and safety monitors subscribe to report schedules.")
