"""Home page per role, health check and the API docs page."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, jsonify, render_template

from trialmgr.audit import services as audit
from trialmgr.auth.policies import ANY_ROLE, current_actor, public, roles
from trialmgr.extensions import db

bp = Blueprint("dashboard", __name__)


@bp.route("/")
@roles(*ANY_ROLE)
def home() -> str:
    actor = current_actor()
    return render_template(f"dashboard/{actor.role}.html", actor=actor)


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


def audit_head() -> str:
    return audit.head()
