"""Accounts: passwords, lockout, tokens, roles and site memberships."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from trialmgr.audit import services as audit
from trialmgr.auth.models import COORDINATOR, ROLES, ApiToken, User, site_membership
from trialmgr.db import utcnow
from trialmgr.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from trialmgr.extensions import db

_site_table = sa.table("site", sa.column("id"))


def _hasher() -> PasswordHasher:
    params = current_app.config.get("PASSWORD_HASH_PARAMS") or {}
    return PasswordHasher(**params)  # argon2id by default


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def check_password_policy(password: str, email: str | None = None) -> None:
    """Passwords: at least PASSWORD_MIN_LENGTH characters, not the e-mail address,
    not one repeated character."""
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    problems = []
    if len(password) < minimum:
        problems.append(f"Must be at least {minimum} characters.")
    if len(password) > 256:
        problems.append("Must be at most 256 characters.")
    if email and password.strip().lower() == email.strip().lower():
        problems.append("Must not be the e-mail address.")
    if password and len(set(password)) == 1:
        problems.append("Must not be one repeated character.")
    if problems:
        raise Invalid("The password does not meet the policy.", errors={"password": problems})


def _verify_hash(stored: str, password: str) -> bool:
    try:
        return _hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


# A real hash to verify against when the e-mail is unknown, so that the
# response time does not tell which e-mails have accounts.
_dummy_hash: str | None = None


def _burn_time(password: str) -> None:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password("not-a-real-password-0000")
    _verify_hash(_dummy_hash, password)


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


def create_user(actor: Any, data: dict[str, Any]) -> User:
    """Create an account; e-mails are unique (case-insensitive) and passwords meet the policy."""
    email = data["email"].strip().lower()
    if data["role"] not in ROLES:
        raise Invalid("Unknown role.", errors={"role": [f"Must be one of {', '.join(ROLES)}."]})
    check_password_policy(data["password"], email)
    if find_user_by_email(email):
        raise Conflict("An account with this e-mail exists.", errors={"email": ["Already used."]})
    with audit.audited(actor, action="user.create"):
        user = User(
            email=email,
            name=data["name"].strip(),
            role=data["role"],
            active=data.get("active", True),
            password_hash=hash_password(data["password"]),
        )
        db.session.add(user)
    _set_sites(actor, user, data.get("site_ids") or [], None)
    return user


def update_user(actor: Any, user: User, data: dict[str, Any]) -> User:
    """Admin edit: name, role, active, password, site memberships, unlock."""
    reason = data.get("reason")
    role_change = "role" in data and data["role"] != user.role
    with audit.audited(actor, reason=reason, action="user.role_change" if role_change else None):
        for field in ("name", "role", "active", "date_format", "timezone"):
            if field in data:
                setattr(user, field, data[field])
        if data.get("password"):
            check_password_policy(data["password"], user.email)
            user.password_hash = hash_password(data["password"])
            user.password_changed_at = utcnow()
            _revoke_all_tokens(actor, user, user.password_changed_at)
        if data.get("unlock") and user.locked_until is not None:
            user.locked_until = None
            user.failed_logins = 0
            audit.record(actor, "user.unlock", "user_account", user.id, {}, reason)
    if "site_ids" in data:
        _set_sites(actor, user, data["site_ids"], reason)
    elif role_change and user.role != COORDINATOR:
        _set_sites(actor, user, [], reason)
    return user


class LoginRefused(Unauthorized):
    """Refused credentials; the failure count and its audit row are kept."""

    keep_writes = True


def authenticate(email: str, password: str, now: datetime, channel: str) -> User:
    """Check credentials with lockout: LOGIN_MAX_FAILURES in a row lock the account
    for LOGIN_LOCKOUT_MINUTES; a locked account is refused even with the right password.

    Failures are written (flushed) before the refusal is raised and kept even though the
    request fails (LoginRefused.keep_writes).
    """
    user = find_user_by_email(email or "")
    if user is None:
        _burn_time(password or "")
        audit.record(
            None,
            "login_failed",
            "user_account",
            None,
            {"email": (email or "")[:255], "channel": channel},
        )
        raise LoginRefused("Invalid e-mail or password.")
    if user.is_locked(now):
        audit.record(user, "login_refused_locked", "user_account", user.id, {"channel": channel})
        raise LoginRefused(
            "Account locked after repeated failed logins; try again later or ask an administrator.",
            title="Account locked",
        )
    if not _verify_hash(user.password_hash, password or "") or not user.active:
        _count_failure(user, now, channel, "login_failed")
        raise LoginRefused("Invalid e-mail or password.")
    if _hasher().check_needs_rehash(user.password_hash):
        with audit.audited(user, action="password_rehash"):
            user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(user, "login", "user_account", user.id, {"channel": channel})
    return user


def record_logout(user: User) -> None:
    audit.record(user, "logout", "user_account", user.id, {})


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


def resolve_token(clear: str, now: datetime) -> ApiToken | None:
    token = db.session.execute(
        sa.select(ApiToken).where(ApiToken.token_hash == _token_digest(clear))
    ).scalar_one_or_none()
    if token is None or not token.is_valid(now):
        return None
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


def change_password(actor: User, current: str, new: str) -> None:
    """Changing one's password needs the current one; it ends every other session."""
    if not _verify_hash(actor.password_hash, current):
        raise Invalid(
            "The current password is wrong.", errors={"current_password": ["Does not match."]}
        )
    check_password_policy(new, actor.email)
    with audit.audited(actor, action="user.password_change"):
        actor.password_hash = hash_password(new)
        actor.password_changed_at = utcnow()
    _revoke_all_tokens(actor, actor, actor.password_changed_at)


def _count_failure(user: User, now: datetime, channel: str, action: str) -> None:
    """A wrong password, at login or when signing: LOGIN_MAX_FAILURES in a row lock the
    account for LOGIN_LOCKOUT_MINUTES. Audited and flushed; the caller keeps it written."""
    cfg = current_app.config
    user.failed_logins += 1
    changes: dict[str, Any] = {"channel": channel, "failed_logins": user.failed_logins}
    if user.failed_logins >= cfg["LOGIN_MAX_FAILURES"]:
        user.locked_until = now + timedelta(minutes=cfg["LOGIN_LOCKOUT_MINUTES"])
        user.failed_logins = 0
        changes["locked_until"] = user.locked_until
        action = "account_locked"
    audit.record(user, action, "user_account", user.id, changes)
    db.session.flush()


class SignatureFailed(Invalid):
    """A wrong signature password: refused, but the failure count must be kept."""

    keep_writes = True


def verify_signature(actor: User, password: str, now: datetime | None = None) -> None:
    """An electronic signature: the signer re-enters their password (21 CFR 11.200).
    Wrong passwords count toward the same lockout as logins; a locked account cannot sign."""
    now = now or utcnow()
    if actor.is_locked(now):
        raise Forbidden(
            "Signing is locked after repeated wrong passwords; try again later.",
            title="Signature locked",
        )
    if not _verify_hash(actor.password_hash, password or ""):
        _count_failure(actor, now, "signature", "signature_failed")
        raise SignatureFailed(
            "The signature password does not match.",
            title="Signature not verified",
            errors={"password": ["Re-enter your own password to sign."]},
        )
    actor.failed_logins = 0


def account_summary(now: datetime) -> dict[str, Any]:
    """The administrator's home numbers: how many accounts, which are locked now."""
    users = db.session.execute(sa.select(User).order_by(User.email)).scalars().all()
    return {"user_count": len(users), "locked": [u for u in users if u.is_locked(now)]}
