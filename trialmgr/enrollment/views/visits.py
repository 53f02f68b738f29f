"""Visits due across the coordinator's sites, and the coordinator's dashboard numbers."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import render_template
from flask_login import current_user
from sqlalchemy.orm import selectinload

from trialmgr.auth.policies import current_actor, roles
from trialmgr.db import today
from trialmgr.enrollment import services
from trialmgr.enrollment.models import (
    Subject,
    Visit,
)
from trialmgr.enrollment.views.common import (
    SITE_WORK,
    VISITS_AHEAD_DAYS,
    _count,
    bp,
)
from trialmgr.extensions import db
from trialmgr.forms import page_of

# --- visits due and the coordinator's dashboard ----------------------------------


@bp.route("/visits/due")
@roles(*SITE_WORK)
def visits_due() -> str:
    ref = today()
    query = services.visits_due(current_actor(), ref, VISITS_AHEAD_DAYS).options(
        selectinload(Visit.subject).selectinload(Subject.site)
    )
    visits, page, has_next = page_of(query)
    return render_template(
        "enrollment/visits_due.html",
        visits=[(v, services.visit_state(v, ref), _days_between(ref, v)) for v in visits],
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
    ref = today()
    due = db.session.execute(services.visits_due(actor, ref, VISITS_AHEAD_DAYS)).scalars()
    states = [services.visit_state(v, ref) for v in due]
    return {
        "overdue": states.count("overdue"),
        "due": len(states) - states.count("overdue"),
        "reconsent_due": _count(services.subject_query(actor, {"reconsent_due": True})),
        "pending_screenings": _count(services.screening_query(actor, {"outcome": "pending"})),
    }


@bp.app_context_processor
def enrollment_globals() -> dict[str, Any]:
    return {"coordinator_summary": coordinator_summary, "visits_ahead_days": VISITS_AHEAD_DAYS}
