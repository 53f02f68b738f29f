"""Pages: login, logout, own account, and user administration."""

from __future__ import annotations

import zoneinfo
from typing import Any
from urllib.parse import urlparse

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from trialmgr.audit import services as audit
from trialmgr.auth import (
    audit_reading,  # noqa: F401  (registers the audit labels)
    services,
    sessions,
)
from trialmgr.auth.models import ADMIN, DATE_FORMATS, ROLE_LABELS, ROLES, User
from trialmgr.auth.policies import ANY_ROLE, current_actor, public, roles
from trialmgr.auth.schemas import PasswordChangeIn, ProfileIn, SignOutIn, UserIn, UserPatch
from trialmgr.db import utcnow
from trialmgr.extensions import limiter
from trialmgr.forms import (
    Refusal,
    cancelled,
    confirmed,
    filter_args,
    listing,
    load_form,
    rehearse,
    replay_fields,
    submit,
)

bp = Blueprint("auth", __name__)

# What an account whose password an administrator set may reach before choosing its own.
BEFORE_PASSWORD_CHANGE = {"auth.account", "auth.logout", "auth.login", "static"}


@bp.before_app_request
def password_change_first() -> Any:
    """A password an administrator set is changed at the first sign-in: until then every
    page leads to the account page (the API refuses tokens to such accounts)."""
    if request.path.startswith("/api/") or request.endpoint in BEFORE_PASSWORD_CHANGE:
        return None
    if getattr(current_user, "is_authenticated", False) and current_user.must_change_password:
        flash("Choose your own password: the one you were given was set by an administrator.")
        return redirect(url_for("auth.account"))
    return None


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
        "auth/account.html",
        user=actor,
        errors=errors,
        date_formats=list(DATE_FORMATS),
        timezones=sorted(zoneinfo.available_timezones()),
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
    member_of = user.site_ids
    if request.method == "POST" and cancelled(request.form):
        # Back from the confirmation: the form as typed, nothing changed.
        member_of = [int(v) for v in request.form.getlist("site_ids") if v.isdigit()]
    elif request.method == "POST":
        actor = current_actor()
        if not confirmed(request.form):
            # A role or site change is rehearsed and restated first. A password is never
            # carried through a confirmation page, so the rehearsal goes without it; a
            # refusal goes through `submit` below like any other.
            before = (user.role, [code for _, code in _site_codes(user.site_ids)])
            typed = MultiDict(replay_fields(request.form))
            restated = rehearse(
                "user",
                lambda: services.update_user(actor, user, load_form(UserPatch(), typed)),
                lambda u: _access_restatement(u, before, request.form),
            )
            user.forget_site_ids()
            if restated is not None and not isinstance(restated, Refusal):
                restated.update(action=request.path, fields=replay_fields(request.form))
                return render_template("pages/confirm.html", confirm=restated)
        done = submit(
            "user",
            lambda: services.update_user(actor, user, load_form(UserPatch(), request.form)),
        )
        if not isinstance(done, Refusal):
            flash(f"Account {user.email} updated.", "success")
            return redirect(url_for("auth.user_list"))
        errors, status = done.field_errors(), done.status
        user.forget_site_ids()
        member_of = user.site_ids
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
        member_of=member_of,
        history=history,
        now=utcnow(),
    ), status


def _site_codes(site_ids: list[int]) -> list[tuple[int, str]]:
    codes = {site_id: code for site_id, code, _ in services.site_choices()}
    return [(i, codes.get(i, f"#{i}")) for i in site_ids]


def _access_restatement(
    user: User, before: tuple[str, list[str]], form: MultiDict[str, str]
) -> dict[str, Any] | None:
    """What a rehearsed change of an account's role or sites does (None when neither
    changes): the account, old and new role, the sites added and removed, the reason."""
    old_role, old_sites = before
    new_sites = [code for _, code in _site_codes(user.site_ids)]
    added = [c for c in new_sites if c not in old_sites]
    removed = [c for c in old_sites if c not in new_sites]
    if user.role == old_role and not added and not removed:
        return None
    details = [f"Role: {ROLE_LABELS[old_role]} → {ROLE_LABELS[user.role]}."]
    if user.role == old_role:
        details[0] = f"Role: {ROLE_LABELS[old_role]} (unchanged)."
    details.append(f"Sites added: {', '.join(added) if added else 'none'}.")
    details.append(f"Sites removed: {', '.join(removed) if removed else 'none'}.")
    details.append(f"Sites afterwards: {', '.join(new_sites) if new_sites else 'none'}.")
    details.append(f"Reason: {form.get('reason', '').strip()}")
    if user.role != old_role:
        details.append("The account's browser sessions end: the user signs in again.")
    if form.get("password"):
        details.append(
            "The new password typed is not sent with this confirmation: set it in a separate save."
        )
    return {
        "title": f"access of {user.email}",
        "summary": f"Change the access of {user.name} ({user.email}).",
        "details": details,
        "warning": "Access changes take effect at once and stay in the audit trail.",
        "button": f"Confirm: change the access of {user.email}",
    }


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
