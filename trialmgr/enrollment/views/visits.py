"""Visits due across the coordinator's sites, and the coordinator's dashboard numbers."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import render_template
from flask_login import current_user
from sqlalchemy.orm import selectinload

from trialmgr.auth.policies import WORKLIST_READERS, current_actor, roles
from trialmgr.clock import actor_today, utcnow
from trialmgr.enrollment.models import (
    Subject,
    Visit,
)
from trialmgr.enrollment.services import screening as screening_service
from trialmgr.enrollment.services import subjects as subjects_service
from trialmgr.enrollment.services import visits as visits_service
from trialmgr.enrollment.views.common import (
    VISITS_AHEAD_DAYS,
    bp,
    count_rows,
)
from trialmgr.extensions import db
from trialmgr.forms import page_of
from trialmgr.partners.services.sites import site_today

# --- visits due and the coordinator's dashboard ----------------------------------


@bp.route("/visits/due")
@roles(*WORKLIST_READERS)
def visits_due() -> str:
    now = utcnow()
    ref = actor_today(current_actor(), now)
    query = visits_service.visits_due(current_actor(), now, VISITS_AHEAD_DAYS).options(
        selectinload(Visit.subject).selectinload(Subject.site)
    )
    visits, page, has_next = page_of(query)
    return render_template(
        "enrollment/visits_due.html",
        visits=[
            (v, visits_service.visit_state(v, day), _days_between(day, v))
            for v in visits
            for day in [site_today(v.subject.site, now)]
        ],
        days=VISITS_AHEAD_DAYS,
        today=ref,
        args={},
        page=page,
        has_next=has_next,
    )


def _days_between(ref: date, visit: Visit) -> int:
    """Days past the window's end (positive) or until it opens (negative)."""
    if ref > visit.window_end:
        return (ref - visit.window_end).days
    return -max((visit.window_start - ref).days, 0)


def coordinator_summary() -> dict[str, int]:
    """Counts for the coordinator's home page, in the signed-in user's sites."""
    actor = current_user._get_current_object()
    now = utcnow()
    due = db.session.execute(visits_service.visits_due(actor, now, VISITS_AHEAD_DAYS)).scalars()
    states = [visits_service.visit_state(v, site_today(v.subject.site, now)) for v in due]
    return {
        "overdue": states.count("overdue"),
        "due": len(states) - states.count("overdue"),
        "reconsent_due": count_rows(subjects_service.subject_query(actor, {"reconsent_due": True})),
        "pending_screenings": count_rows(
            screening_service.screening_query(actor, {"outcome": "pending"})
        ),
    }


@bp.app_context_processor
def enrollment_globals() -> dict[str, Any]:
    return {"coordinator_summary": coordinator_summary, "visits_ahead_days": VISITS_AHEAD_DAYS}
