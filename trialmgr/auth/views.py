"""Pages: login, logout, own account, and user administration."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from trialmgr.audit import services as audit
from trialmgr.auth import services, sessions
from trialmgr.auth.models import ADMIN, DATE_FORMATS, ROLE_LABELS, ROLES, User
from trialmgr.auth.policies import ANY_ROLE, current_actor, public, roles
from trialmgr.auth.schemas import PasswordChangeIn, ProfileIn, SignOutIn, UserIn, UserPatch
from trialmgr.db import utcnow
from trialmgr.extensions import limiter
from trialmgr.forms import Refusal, filter_args, listing, load_form, submit

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
    user = submit(
        "login",
        lambda: services.authenticate(email, request.form.get("password", ""), utcnow(), "web"),
    )
    if isinstance(user, Refusal):  # the failure count and its audit row are kept
        return render_template("auth/login.html", error=user.detail, email=email), user.status
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
    status = 200
    if request.method == "POST":

        def act() -> str:
            if request.form.get("action") == "password":
                data = load_form(PasswordChangeIn(), request.form)
                services.change_password(actor, data["current_password"], data["new_password"])
                sessions.renew(actor)  # this session goes on under the new generation
                return "Password changed; other sessions are signed out."
            services.update_profile(actor, load_form(ProfileIn(), request.form))
            return "Preferences saved."

        done = submit("account", act)
        if not isinstance(done, Refusal):
            flash(done, "success")
            return redirect(url_for("auth.account"))
        errors, status = (done.errors or {"_schema": [done.detail]}), done.status
    return render_template(
        "auth/account.html", user=actor, errors=errors, date_formats=list(DATE_FORMATS)
    ), status


# The columns the account list may be sorted by (?sort=).
USER_SORTS = {
    "email": (User.email,),
    "name": (User.name,),
    "role": (User.role,),
    "active": (User.active,),
    "last_login_at": (User.last_login_at,),
}


@bp.route("/admin/users")
@roles(ADMIN)
def user_list() -> str:
    role = request.args.get("role")
    filters = {"role": role} if role in ROLES else {}
    rows = listing(services.user_query(filters), USER_SORTS, "email", tiebreak=User.id)
    return render_template(
        "auth/users.html",
        users=rows.items,
        listing=rows,
        page=rows.page,
        has_next=rows.has_next,
        args=filter_args(),
        site_codes={site_id: code for site_id, code, _ in services.site_choices()},
        roles=ROLES,
        role=role,
        role_labels=ROLE_LABELS,
        now=utcnow(),
    )


@bp.route("/admin/users/new", methods=["GET", "POST"])
@roles(ADMIN)
def user_new() -> Any:
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        user = submit(
            "user",
            lambda: services.create_user(current_actor(), load_form(UserIn(), request.form)),
        )
        if not isinstance(user, Refusal):
            flash(f"Account {user.email} created.", "success")
            return redirect(url_for("auth.user_list"))
        errors, status = user.field_errors(), user.status
    return render_template(
        "auth/user_form.html",
        user=None,
        form=request.form,
        errors=errors,
        roles=ROLES,
        role_labels=ROLE_LABELS,
        sites=services.site_choices(),
        member_of=[],
    ), status


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@roles(ADMIN)
def user_edit(user_id: int) -> Any:
    user = services.get_user(user_id)
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        done = submit(
            "user",
            lambda: services.update_user(
                current_actor(), user, load_form(UserPatch(), request.form)
            ),
        )
        if not isinstance(done, Refusal):
            flash(f"Account {user.email} updated.", "success")
            return redirect(url_for("auth.user_list"))
        errors, status = done.field_errors(), done.status
    # read after a refusal was rolled back: the history shows what is stored
    history = audit.recent(audit.AuditFilter(entity="user_account", entity_id=str(user.id)), 50)
    return render_template(
        "auth/user_form.html",
        user=user,
        form=request.form,
        errors=errors,
        roles=ROLES,
        role_labels=ROLE_LABELS,
        sites=services.site_choices(),
        member_of=user.site_ids,
        history=history,
        now=utcnow(),
    ), status


@bp.route("/admin/users/<int:user_id>/sessions/revoke", methods=["POST"])
@roles(ADMIN)
def user_sign_out_everywhere(user_id: int) -> Response:
    user = services.get_user(user_id)
    done = submit(
        "sign_out",
        lambda: services.sign_out_everywhere(
            current_actor(), user, load_form(SignOutIn(), request.form).get("reason")
        ),
    )
    if isinstance(done, Refusal):
        flash(done.detail, "danger")
        return redirect(url_for("auth.user_edit", user_id=user.id))
    flash(f"{user.email} is signed out everywhere: sessions ended, API tokens revoked.", "success")
    return redirect(url_for("auth.user_edit", user_id=user.id))
