"""Home page per role, the paused-trial banner on every page, health check, API docs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, jsonify, render_template
from flask_login import current_user

from trialmgr.auth.models import SAFETY_MONITOR
from trialmgr.auth.policies import ANY_ROLE, current_actor, public, roles
from trialmgr.dashboard import worklists
from trialmgr.db import utcnow
from trialmgr.enrollment.services import subjects as subjects_service
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.extensions import db
from trialmgr.milestones.services import feasibility as feasibility_service
from trialmgr.partners.services import approvals as approvals_service
from trialmgr.partners.services import sites as sites_service

bp = Blueprint("dashboard", __name__)


@bp.app_context_processor
def paused_trials() -> dict[str, Any]:
    """A pause is visible on every page for everyone signed in."""
    if not getattr(current_user, "is_authenticated", False):
        return {"paused_trials": []}
    paused = db.session.execute(trials_service.trial_query({"status": "paused"})).scalars().all()
    return {"paused_trials": paused}


def _site_rows(actor: Any) -> list[dict[str, Any]]:
    """Each visible site with its enrolment against target and the approvals in force needing
    attention, as of the site's own today."""
    now = utcnow()
    counts = subjects_service.enrolled_per_site()
    rows = []
    for site in db.session.execute(sites_service.site_query(actor, {})).scalars():
        on = sites_service.site_today(site, now)
        attention = [
            (a.kind, state, days)
            for a in site.approvals
            if approvals_service.in_force(site, a.kind, on) is a
            for state, days in [approvals_service.approval_state(a, on)]
            if state in ("expiring", "expired", "withdrawn")
        ]
        rows.append(
            {
                "site": site,
                "enrolled": counts.get(site.id, 0),
                "open": sites_service.open_for_screening(site, on),
                "missing": approvals_service.missing_approvals(site, on),
                "attention": attention,
            }
        )
    return rows


@bp.route("/")
@roles(*ANY_ROLE)
def home() -> str:
    actor = current_actor()
    now = utcnow()
    trials = db.session.execute(trials_service.trial_query({})).scalars().all()
    context: dict[str, Any] = {"actor": actor, "trials": trials}
    if actor.role in ("consortium_lead", "admin", "safety_monitor"):
        context["sites"] = _site_rows(actor)
    if actor.role == "coordinator":
        context["work"] = worklists.coordinator_worklist(actor, now)
    if actor.role == "consortium_lead":
        context["feasibility"] = [
            (t, feasibility_service.decision_of(actor, t, now))
            for t in trials
            if t.status != "setup"
        ]
        context["enrolment"] = worklists.enrolment_against_target(actor, trials, now)
        context["funnels"] = worklists.screening_funnel(actor, trials, now)
        context["expiring"] = worklists.approvals_expiring(actor, now)
        context["pending"] = worklists.sites_pending(actor, now)
        context["horizon"] = worklists.APPROVAL_HORIZON_DAYS
    if actor.role == "safety_monitor":
        context["workspace"] = worklists.safety_workspace(actor, trials, now)
    if actor.role == "admin":
        context.update(worklists.admin_overview(now))
    return render_template(f"dashboard/{actor.role}.html", **context)


@bp.route("/safety/workspace")
@roles(SAFETY_MONITOR)
def safety_workspace() -> str:
    """The safety monitor's work: pauses, reviews due, open serious events."""
    actor = current_actor()
    trials = db.session.execute(trials_service.trial_query({})).scalars().all()
    workspace = worklists.safety_workspace(actor, trials, utcnow())
    return render_template("dashboard/safety_workspace.html", workspace=workspace)


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
