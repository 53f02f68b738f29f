"""Visits due across the coordinator's sites."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import render_template
from sqlalchemy.orm import selectinload

from trialmgr.auth.policies import WORKLIST_READERS, current_actor, roles
from trialmgr.clock import actor_today, utcnow
from trialmgr.enrollment.models import (
    Subject,
    Visit,
)
from trialmgr.enrollment.services import visits as visits_service
from trialmgr.enrollment.views.common import (
    VISITS_AHEAD_DAYS,
    bp,
)
from trialmgr.forms import filter_args, listing
from trialmgr.partners.services.sites import site_today

# --- visits due and the coordinator's dashboard ----------------------------------


# The columns the visits-due list may be sorted by (?sort=); the query joins the subject.
VISIT_SORTS = {
    "subject": (Subject.code,),
    "visit": (Visit.name,),
    "scheduled_on": (Visit.scheduled_on,),
    "window_end": (Visit.window_end,),
}


@bp.route("/visits/due")
@roles(*WORKLIST_READERS)
def visits_due() -> str:
    now = utcnow()
    ref = actor_today(current_actor(), now)
    query = visits_service.visits_due(current_actor(), now, VISITS_AHEAD_DAYS).options(
        selectinload(Visit.subject).selectinload(Subject.site)
    )
    rows = listing(query, VISIT_SORTS, "window_end", tiebreak=Visit.id)
    visits, page, has_next = rows.items, rows.page, rows.has_next
    return render_template(
        "enrollment/visits_due.html",
        visits=[
            (v, visits_service.visit_state(v, day), _days_between(day, v))
            for v in visits
            for day in [site_today(v.subject.site, now)]
        ],
        listing=rows,
        days=VISITS_AHEAD_DAYS,
        today=ref,
        args=filter_args(),
        page=page,
        has_next=has_next,
    )


def _days_between(ref: date, visit: Visit) -> int:
    """Days past the window's end (positive) or until it opens (negative)."""
    if ref > visit.window_end:
        return (ref - visit.window_end).days
    return -max((visit.window_start - ref).days, 0)


@bp.app_context_processor
def enrollment_globals() -> dict[str, Any]:
    return {"visits_ahead_days": VISITS_AHEAD_DAYS}
