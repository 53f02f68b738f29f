"""Home page per role, the paused-trial banner on every page, health check, API docs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, jsonify, render_template
from flask_login import current_user

from trialmgr.auth.models import User
from trialmgr.auth.policies import ANY_ROLE, current_actor, public, roles
from trialmgr.db import today, utcnow
from trialmgr.enrollment.models import Subject, Trial
from trialmgr.enrollment.services import pauses_of
from trialmgr.extensions import db
from trialmgr.partners import services as partners
from trialmgr.partners.models import Site

bp = Blueprint("dashboard", __name__)


@bp.app_context_processor
def paused_trials() -> dict[str, Any]:
    """A pause is visible on every page for everyone signed in."""
    if not getattr(current_user, "is_authenticated", False):
        return {"paused_trials": []}
    paused = db.session.execute(sa.select(Trial).where(Trial.status == "paused")).scalars().all()
    return {"paused_trials": paused}


def _site_rows(actor: Any) -> list[dict[str, Any]]:
    """Each visible site with its enrolment against target and approvals needing attention."""
    on = today()
    counted = db.session.execute(
        sa.select(Subject.site_id, sa.func.count()).group_by(Subject.site_id)
    ).tuples()
    counts: dict[int, int] = {site_id: n for site_id, n in counted}
    rows = []
    for site in db.session.execute(partners.site_query(actor, {})).scalars():
        attention = [
            (a.kind, state, days)
            for a in site.approvals
            for state, days in [partners.approval_state(a, on)]
            if state in ("expiring", "expired", "withdrawn")
        ]
        rows.append(
            {
                "site": site,
                "enrolled": counts.get(site.id, 0),
                "open": partners.open_for_screening(site, on),
                "missing": partners.missing_approvals(site, on),
                "attention": attention,
            }
        )
    return rows


@bp.route("/")
@roles(*ANY_ROLE)
def home() -> str:
    actor = current_actor()
    trials = db.session.execute(sa.select(Trial).order_by(Trial.code)).scalars().all()
    context: dict[str, Any] = {"actor": actor, "trials": trials}
    if actor.role in ("consortium_lead", "admin", "safety_monitor"):
        context["sites"] = _site_rows(actor)
    if actor.role == "safety_monitor":
        context["pauses"] = [(t, p) for t in trials for p in pauses_of(t)[:5]]
    if actor.role == "admin":
        now = utcnow()
        users = db.session.execute(sa.select(User)).scalars().all()
        context["user_count"] = len(users)
        context["locked"] = [u for u in users if u.is_locked(now)]
        context["pending_sites"] = db.session.execute(
            sa.select(sa.func.count()).select_from(Site).where(Site.status == "pending")
        ).scalar_one()
    return render_template(f"dashboard/{actor.role}.html", **context)


@bp.route("/health")
@public
def health() -> Any:
    try:
        db.session.execute(sa.text("SELECT 1"))
        return jsonify(status="ok", database="ok")
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        return jsonify(status="degraded", database="unreachable"), 503


@bp.route("/api/v1/docs")
@public
def api_docs() -> str:
    """Swagger UI from vendored files (no CDN), initialised by a static script."""
    return render_template("dashboard/api_docs.html")
