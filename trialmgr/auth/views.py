"""Pages: login, logout, own account, and user administration."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from trialmgr.audit import services as audit
from trialmgr.auth import services
from trialmgr.auth.models import ADMIN, DATE_FORMATS, ROLE_LABELS, ROLES, User
from trialmgr.auth.policies import ANY_ROLE, current_actor, public, roles
from trialmgr.auth.schemas import PasswordChangeIn, ProfileIn, UserIn, UserPatch
from trialmgr.db import utcnow
from trialmgr.errors import Problem, Unauthorized
from trialmgr.extensions import db, limiter
from trialmgr.forms import load_form

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: an open redirect would help phishing."""
    if target and target.startswith("/") and not target.startswith("//"):
        parsed = urlparse(target)
        if not parsed.netloc and not parsed.scheme:
            return target
    return url_for("dashboard.home")


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def login() -> Any:
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(url_for("dashboard.home"))
        return render_template("auth/login.html")
    email = request.form.get("email", "")[:255]
    try:
        user = services.authenticate(email, request.form.get("password", ""), utcnow(), "web")
    except Unauthorized as exc:
        db.session.commit()  # keep the failure count and the audit of the attempt
        return render_template("auth/login.html", error=exc.detail, email=email), 401
    login_user(user)
    return redirect(_safe_next(request.args.get("next")))


@bp.route("/logout", methods=["POST"])
@roles(*ANY_ROLE)
def logout() -> Response:
    services.record_logout(current_actor())
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@roles(*ANY_ROLE)
def account() -> Any:
    actor = current_actor()
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            if request.form.get("action") == "password":
                data = load_form(PasswordChangeIn(), request.form)
                services.change_password(actor, data["current_password"], data["new_password"])
                login_user(actor)  # the session id carries the password stamp
                flash("Password changed; other sessions are signed out.", "success")
            else:
                data = load_form(ProfileIn(), request.form)
                services.update_profile(actor, data)
                flash("Preferences saved.", "success")
            return redirect(url_for("auth.account"))
        except ValidationError as exc:
            errors = exc.normalized_messages()
        except Problem as exc:
            errors = exc.errors or {"_schema": [exc.detail]}
    status = 422 if errors else 200
    return render_template(
        "auth/account.html", user=actor, errors=errors, date_formats=list(DATE_FORMATS)
    ), status


@bp.route("/admin/users")
@roles(ADMIN)
def user_list() -> str:
    q = sa.select(User).order_by(User.role, User.email)
    role = request.args.get("role")
    if role in ROLES:
        q = q.where(User.role == role)
    users = db.session.execute(q).scalars().all()
    return render_template(
        "auth/users.html",
        users=users,
        roles=ROLES,
        role=role,
        role_labels=ROLE_LABELS,
        now=utcnow(),
    )


def _site_choices() -> list[Any]:
    # Sites belong to the partners domain, above auth: read by table name only.
    site = sa.table("site", sa.column("id"), sa.column("code"), sa.column("name"))
    query = sa.select(site.c.id, site.c.code, site.c.name).order_by(site.c.code)
    return list(db.session.execute(query))


@bp.route("/admin/users/new", methods=["GET", "POST"])
@roles(ADMIN)
def user_new() -> Any:
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            user = services.create_user(current_actor(), load_form(UserIn(), request.form))
            flash(f"Account {user.email} created.", "success")
            return redirect(url_for("auth.user_list"))
        except ValidationError as exc:
            errors = exc.normalized_messages()
        except Problem as exc:
            errors = exc.errors or {"_schema": [exc.detail]}
    return render_template(
        "auth/user_form.html",
        user=None,
        form=request.form,
        errors=errors,
        roles=ROLES,
        role_labels=ROLE_LABELS,
        sites=_site_choices(),
        member_of=[],
    ), (422 if errors else 200)


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@roles(ADMIN)
def user_edit(user_id: int) -> Any:
    user = services.get_user(user_id)
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            services.update_user(current_actor(), user, load_form(UserPatch(), request.form))
            flash(f"Account {user.email} updated.", "success")
            return redirect(url_for("auth.user_list"))
        except ValidationError as exc:
            errors = exc.normalized_messages()
        except Problem as exc:
            errors = exc.errors or {"_schema": [exc.detail]}
    history = (
        db.session.execute(
            audit.query(audit.AuditFilter(entity="user_account", entity_id=str(user.id))).limit(50)
        )
        .scalars()
        .all()
    )
    return render_template(
        "auth/user_form.html",
        user=user,
        form=request.form,
        errors=errors,
        roles=ROLES,
        role_labels=ROLE_LABELS,
        sites=_site_choices(),
        member_of=user.site_ids,
        history=history,
        now=utcnow(),
    ), (422 if errors else 200)
