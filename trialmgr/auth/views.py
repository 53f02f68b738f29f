"""Pages: login, logout, own account, and user administration."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from trialmgr.audit import services as audit
from trialmgr.auth import services, sessions
from trialmgr.auth.models import ADMIN, DATE_FORMATS, ROLE_LABELS, ROLES, User
from trialmgr.auth.policies import ANY_ROLE, current_actor, public, roles
from trialmgr.auth.schemas import PasswordChangeIn, ProfileIn, SignOutIn, UserIn, UserPatch
from trialmgr.db import utcnow
from trialmgr.errors import Problem
from trialmgr.extensions import db, limiter
from trialmgr.forms import load_form

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths of plain printable ASCII: an open redirect would help
    phishing, and control characters (CR/LF) cannot go into a Location header at all."""
    home = url_for("dashboard.home")
    if not target or not all("!" <= c <= "~" for c in target) or "\\" in target:
        return home
    if not target.startswith("/") or target.startswith("//"):
        return home
    parsed = urlparse(target)
    return home if parsed.netloc or parsed.scheme else target


def _keep_writes_of(exc: Problem) -> None:
    """A refusal that must leave its trace (a counted wrong password and its audit row) is
    committed by the request boundary although the page answers with an error, as
    errors.handle_problem does for the API."""
    if exc.keep_writes:
        g.commit_despite_error = True


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
    target = _safe_next(request.args.get("next"))  # before signing anyone in
    email = request.form.get("email", "")[:255]
    try:
        user = services.authenticate(email, request.form.get("password", ""), utcnow(), "web")
    except services.LoginRefused as exc:
        _keep_writes_of(exc)
        return render_template("auth/login.html", error=exc.detail, email=email), 401
    sessions.sign_in(user)  # last: the `login` audit row is already written
    return redirect(target)


@bp.route("/logout", methods=["POST"])
@roles(*ANY_ROLE)
def logout() -> Response:
    services.record_logout(current_actor())
    sessions.sign_out()
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
                sessions.renew(actor)  # this session goes on under the new generation
                flash("Password changed; other sessions are signed out.", "success")
            else:
                data = load_form(ProfileIn(), request.form)
                services.update_profile(actor, data)
                flash("Preferences saved.", "success")
            return redirect(url_for("auth.account"))
        except ValidationError as exc:
            errors = exc.normalized_messages()
        except Problem as exc:
            _keep_writes_of(exc)
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


@bp.route("/admin/users/<int:user_id>/sessions/revoke", methods=["POST"])
@roles(ADMIN)
def user_sign_out_everywhere(user_id: int) -> Response:
    user = services.get_user(user_id)
    data = load_form(SignOutIn(), request.form)
    services.sign_out_everywhere(current_actor(), user, data.get("reason"))
    flash(f"{user.email} is signed out everywhere: sessions ended, API tokens revoked.", "success")
    return redirect(url_for("auth.user_edit", user_id=user.id))
