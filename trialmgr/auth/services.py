"""Accounts: lockout, tokens, sessions, roles and site memberships."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from trialmgr.audit import services as audit
from trialmgr.auth import lockout
from trialmgr.auth.models import COORDINATOR, ROLES, ApiToken, User, site_membership
from trialmgr.auth.passwords import (
    burn_time,
    check_password_policy,
    hash_password,
    needs_rehash,
    policy_problems,
    verify,
)
from trialmgr.db import utcnow
from trialmgr.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from trialmgr.extensions import db

_site_table = sa.table("site", sa.column("id"))


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user {user_id}.")
    return user


def find_user_by_email(email: str) -> User | None:
    return db.session.execute(
        sa.select(User).where(User.email == email.strip().lower())
    ).scalar_one_or_none()


def site_ids_of(user: Any) -> list[int]:
    return list(user.site_ids) if isinstance(user, User) else []


def _set_sites(actor: Any, user: User, site_ids: list[int], reason: str | None) -> None:
    wanted = sorted(set(site_ids))
    if wanted and user.role != COORDINATOR:
        raise Invalid(
            "Site memberships apply to coordinators only.",
            errors={"site_ids": ["Only coordinators belong to sites."]},
        )
    if wanted:
        found = {
            r[0]
            for r in db.session.execute(
                sa.select(_site_table.c.id).where(_site_table.c.id.in_(wanted))
            )
        }
        missing = [s for s in wanted if s not in found]
        if missing:
            raise Invalid("Unknown site.", errors={"site_ids": [f"No site {s}." for s in missing]})
    current = site_ids_of(user)
    if current == wanted:
        return
    user.forget_site_ids()
    db.session.execute(site_membership.delete().where(site_membership.c.user_id == user.id))
    if wanted:
        db.session.execute(
            site_membership.insert(), [{"user_id": user.id, "site_id": s} for s in wanted]
        )
    audit.record(
        actor,
        "user.sites",
        "user_account",
        user.id,
        {"site_ids": {"old": current, "new": wanted}},
        reason,
    )


def create_user(actor: Any, data: dict[str, Any], *, allow_demo_password: bool = False) -> User:
    """Create an account; e-mails are unique (case-insensitive) and passwords meet the policy
    (`allow_demo_password` is for the demo seed alone)."""
    email = data["email"].strip().lower()
    # Every problem at once: an administrator fixing the password should not only then learn
    # that the e-mail address is taken.
    errors: dict[str, list[str]] = {}
    if data["role"] not in ROLES:
        errors["role"] = [f"Must be one of {', '.join(ROLES)}."]
    problems = policy_problems(
        data["password"], email=email, name=data["name"], allow_demo_password=allow_demo_password
    )
    if problems:
        errors["password"] = problems
    if find_user_by_email(email):
        errors["email"] = ["Already used by another account."]
    if list(errors) == ["email"]:
        raise Conflict("An account with this e-mail exists.", errors=errors)
    if errors:
        raise Invalid("The account cannot be created as given.", errors=errors)
    by_person = isinstance(actor, User)
    if by_person:
        _check_coordinator_sites(data["role"], data.get("site_ids") or [])
    with audit.audited(actor, action="user.create"):
        user = User(
            email=email,
            name=data["name"].strip(),
            role=data["role"],
            active=data.get("active", True),
            password_hash=hash_password(data["password"]),
            # a password an administrator chose is replaced by the user's own at first
            # sign-in (`flask users create` and the demo seed set the user's own)
            must_change_password=by_person,
        )
        db.session.add(user)
    _set_sites(actor, user, data.get("site_ids") or [], None)
    return user


def _check_coordinator_sites(role: str, site_ids: list[int]) -> None:
    """A coordinator works at sites: an account without one could do nothing."""
    if role == COORDINATOR and not site_ids:
        raise Invalid(
            "A coordinator needs at least one site.",
            errors={"site_ids": ["Choose the coordinator's sites."]},
        )


def update_user(actor: Any, user: User, data: dict[str, Any]) -> User:
    """Admin edit: name, role, active, password, site memberships, unlock. Access changes
    (role, sites, deactivation) need a reason, kept in the audit trail; a coordinator keeps
    at least one site. A new password, a new role or deactivation ends the user's sessions;
    a new password or deactivation also revokes their API tokens (re-activation brings back
    neither); a password set by someone else must be changed at the next sign-in."""
    reason = data.get("reason")
    role_change = "role" in data and data["role"] != user.role
    deactivation = data.get("active") is False and user.active
    sites_change = "site_ids" in data and sorted(set(data["site_ids"])) != site_ids_of(user)
    if (role_change or deactivation or sites_change) and not (reason and reason.strip()):
        raise Invalid(
            "Access changes need a reason.",
            errors={"reason": ["Say why the role, sites or activation change."]},
        )
    if role_change or sites_change:
        role = data.get("role", user.role)
        sites = data.get("site_ids", site_ids_of(user) if not role_change else [])
        _check_coordinator_sites(role, sites)
    new_password = data.get("password")
    if new_password:
        check_password_policy(new_password, email=user.email, name=data.get("name", user.name))
    with audit.audited(actor, reason=reason, action="user.role_change" if role_change else None):
        for field in ("name", "role", "active", "date_format", "timezone"):
            if field in data:
                setattr(user, field, data[field])
        if new_password:
            user.password_hash = hash_password(new_password)
            user.password_changed_at = utcnow()
            user.must_change_password = getattr(actor, "id", None) != user.id
        if data.get("unlock") and user.locked_until is not None:
            user.locked_until = None
            user.failed_logins = 0
            audit.record(actor, "user.unlock", "user_account", user.id, {}, reason)
    if new_password or deactivation:
        _revoke_all_tokens(actor, user, utcnow())
    if new_password or deactivation or role_change:
        end_sessions(actor, user, "sessions_revoked", reason)
    if "site_ids" in data:
        _set_sites(actor, user, data["site_ids"], reason)
    elif role_change and user.role != COORDINATOR:
        _set_sites(actor, user, [], reason)
    return user


def end_sessions(actor: Any, user: User, action: str, reason: str | None = None) -> None:
    """End every browser session of `user`: the session generation in their session ids
    moves on, atomically (auth/sessions.py refuses the old ones)."""
    generation = db.session.execute(
        sa.update(User)
        .where(User.id == user.id)
        .values(session_generation=User.session_generation + 1)
        .returning(User.session_generation)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    set_committed_value(user, "session_generation", generation)
    changes = {"session_generation": {"old": generation - 1, "new": generation}}
    audit.record(actor, action, "user_account", user.id, changes, reason)


def sign_out_everywhere(actor: Any, user: User, reason: str | None = None) -> None:
    """An administrator ends all of a user's access at once: browser sessions and API tokens
    (e.g. a lost laptop). The user signs in again with their password."""
    _revoke_all_tokens(actor, user, utcnow())
    end_sessions(actor, user, "sessions_revoked", reason)


class LoginRefused(Unauthorized):
    """Refused credentials; the failure count and its audit row are kept."""

    keep_writes = True


def _login_refused() -> LoginRefused:
    # One answer for an unknown e-mail, a wrong password and a locked account, so that the
    # answer does not tell which e-mails have accounts, or which are locked.
    cfg = current_app.config
    return LoginRefused(
        "Wrong e-mail or password, or the account is locked: after "
        f"{cfg['LOGIN_MAX_FAILURES']} failed attempts it stays locked for "
        f"{cfg['LOGIN_LOCKOUT_MINUTES']} minutes."
    )


def authenticate(email: str, password: str, now: datetime, channel: str) -> User:
    """Check credentials with lockout: LOGIN_MAX_FAILURES wrong passwords in a row (logins,
    signatures and password changes together) lock the account for LOGIN_LOCKOUT_MINUTES;
    a locked account is refused even with the right password.

    An unknown e-mail, a wrong password and a locked account get the same answer after the
    same work (one password hash verified). Every attempt is audited; failures are flushed
    before the refusal is raised and kept although the request fails (keep_writes).
    """
    user = find_user_by_email(email or "")
    if user is None:
        burn_time(password or "")
        audit.record(
            None,
            "login_failed",
            "user_account",
            None,
            {"email": (email or "")[:255], "channel": channel},
        )
        raise _login_refused()
    password_ok = verify(user.password_hash, password or "")
    if user.is_locked(now):
        lockout.refuse_locked(user, channel, "login_failed")
        raise _login_refused()
    if not password_ok or not user.active:
        lockout.count_failure(user, now, channel, "login_failed")
        raise _login_refused()
    if not lockout.clear_failures(user, now, last_login_at=now):
        lockout.refuse_locked(user, channel, "login_failed")
        raise _login_refused()
    if channel == "api" and user.must_change_password:
        raise Forbidden(
            "Sign in on the web page and choose your own password before using the API.",
            title="Password change required",
        )
    if needs_rehash(user.password_hash):
        with audit.audited(user, action="password_rehash"):
            user.password_hash = hash_password(password)
    audit.record(user, "login", "user_account", user.id, {"channel": channel})
    return user


def record_logout(user: User) -> None:
    """Signing out ends every browser session of the user, not only this one's cookie."""
    end_sessions(user, user, "logout")


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(user: User, now: datetime, name: str | None = None) -> tuple[ApiToken, str]:
    """A random bearer token; only its sha256 is stored, so the clear token is shown once."""
    clear = secrets.token_urlsafe(32)
    hours = current_app.config["API_TOKEN_TTL_HOURS"]
    token = ApiToken(
        user=user,
        token_hash=_token_digest(clear),
        name=(name or "api")[:120],
        created_at=now,
        expires_at=now + timedelta(hours=hours),
    )
    db.session.add(token)
    db.session.flush()
    audit.record(user, "token_issued", "api_token", token.id, {"expires_at": token.expires_at})
    return token, clear


# The token, its user and the user's sites in one statement: every API request asks for
# all three (the sites scope a coordinator's every request). Built once: a statement built
# per request costs more Python than the database spends answering it.
_TOKEN_WITH_USER_AND_SITES = (
    sa.select(
        ApiToken,
        sa.select(sa.func.aggregate_strings(sa.cast(site_membership.c.site_id, sa.String), ","))
        .where(site_membership.c.user_id == ApiToken.user_id)
        .scalar_subquery(),
    )
    .where(ApiToken.token_hash == sa.bindparam("digest"))
    .options(joinedload(ApiToken.user))
)


def resolve_token(clear: str, now: datetime) -> ApiToken | None:
    found = db.session.execute(
        _TOKEN_WITH_USER_AND_SITES, {"digest": _token_digest(clear)}
    ).one_or_none()
    if found is None:
        return None
    token, sites = found
    if not token.is_valid(now):
        return None
    token.user.know_site_ids([int(s) for s in sites.split(",")] if sites else [])
    return token


def revoke_token(actor: Any, token: ApiToken, now: datetime) -> None:
    """Revoked tokens answer 401 from then on; revoking twice is harmless."""
    if token.revoked_at is None:
        token.revoked_at = now
        db.session.flush()
        audit.record(actor, "token_revoked", "api_token", token.id, {"user_id": token.user_id})


def _revoke_all_tokens(actor: Any, user: User, now: datetime) -> None:
    """A new password ends every API token issued under the old one."""
    for token in tokens_of(user):
        revoke_token(actor, token, now)


def tokens_of(user: User) -> list[ApiToken]:
    return list(
        db.session.execute(
            sa.select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
        ).scalars()
    )


def get_token_of(actor: Any, token_id: int) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    if token is None or (token.user_id != actor.id and actor.role != "admin"):
        raise NotFound(f"No token {token_id}.")
    return token


def update_profile(actor: User, data: dict[str, Any]) -> User:
    """A user's own name, date format and time zone."""
    with audit.audited(actor, action="user.profile"):
        for field in ("name", "date_format", "timezone"):
            if field in data:
                setattr(actor, field, data[field])
    return actor


class PasswordCheckFailed(Invalid):
    """A wrong current password when changing it: counted like a failed login, and kept."""

    keep_writes = True


class AccountLocked(Forbidden):
    """A locked account cannot sign or change its password; the attempt is on the record."""

    keep_writes = True
    form_error = True


def _account_locked() -> AccountLocked:
    return AccountLocked(
        "Your account is locked after repeated wrong passwords; try again later.",
        title="Account locked",
    )


def change_password(actor: User, current: str, new: str, now: datetime | None = None) -> None:
    """Changing one's password needs the current one: a wrong one counts toward the lockout,
    and a locked account cannot change it. The change ends every session (the caller renews
    its own) and revokes every API token."""
    now = now or utcnow()
    if actor.is_locked(now):
        lockout.refuse_locked(actor, "web", "password_change_failed")
        raise _account_locked()
    if not verify(actor.password_hash, current or ""):
        if not lockout.count_failure(actor, now, "web", "password_change_failed"):
            raise _account_locked()
        raise PasswordCheckFailed(
            "The current password is wrong.",
            errors={"current_password": ["The current password is wrong."]},
        )
    if not lockout.clear_failures(actor, now):
        lockout.refuse_locked(actor, "web", "password_change_failed")
        raise _account_locked()
    check_password_policy(new, email=actor.email, name=actor.name)
    with audit.audited(actor, action="user.password_change"):
        actor.password_hash = hash_password(new)
        actor.password_changed_at = now
        actor.must_change_password = False
    _revoke_all_tokens(actor, actor, now)
    end_sessions(actor, actor, "sessions_revoked")


class SignatureFailed(Invalid):
    """A wrong signature password: refused, but the failure count must be kept."""

    keep_writes = True


def _signature_locked() -> AccountLocked:
    return AccountLocked(
        "Signing is locked after repeated wrong passwords; try again later.",
        title="Signature locked",
    )


def verify_signature(actor: User, password: str, now: datetime | None = None) -> None:
    """An electronic signature: the signer re-enters their password (21 CFR 11.200).
    Wrong passwords count toward the same lockout as logins; a locked account cannot sign.
    Every refusal is audited and kept (keep_writes)."""
    now = now or utcnow()
    if actor.is_locked(now):
        lockout.refuse_locked(actor, "signature", "signature_failed")
        raise _signature_locked()
    if not verify(actor.password_hash, password or ""):
        if not lockout.count_failure(actor, now, "signature", "signature_failed"):
            raise _signature_locked()
        raise SignatureFailed(
            "The signature password does not match.",
            title="Signature not verified",
            errors={"password": ["Re-enter your own password to sign."]},
        )
    if not lockout.clear_failures(actor, now):
        lockout.refuse_locked(actor, "signature", "signature_failed")
        raise _signature_locked()


def account_summary(now: datetime) -> dict[str, Any]:
    """The administrator's home numbers: how many accounts, which are locked now."""
    users = db.session.execute(sa.select(User).order_by(User.email)).scalars().all()
    return {"user_count": len(users), "locked": [u for u in users if u.is_locked(now)]}


def users(role: str | None = None) -> list[User]:
    """Accounts for the administrators' list, by role then e-mail."""
    q = sa.select(User).order_by(User.role, User.email)
    if role is not None:
        q = q.where(User.role == role)
    return list(db.session.execute(q).scalars())


def site_choices() -> list[Any]:
    """(id, code, name) of every site, for site memberships. Sites belong to the partners
    domain, above auth: read by table name only."""
    site = sa.table("site", sa.column("id"), sa.column("code"), sa.column("name"))
    return list(
        db.session.execute(sa.select(site.c.id, site.c.code, site.c.name).order_by(site.c.code))
    )


def user_query(filters: dict[str, Any]) -> sa.Select[tuple[User]]:
    """The API's account list: by e-mail, filtered by role, active, free text."""
    q = sa.select(User).order_by(User.email)
    if "role" in filters:
        q = q.where(User.role == filters["role"])
    if "active" in filters:
        q = q.where(User.active == filters["active"])
    if filters.get("q"):
        like = f"%{filters['q'].lower()}%"
        q = q.where(sa.or_(sa.func.lower(User.name).like(like), User.email.like(like)))
    return q
