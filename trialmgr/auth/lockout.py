"""The failed-password count behind the lockout, kept in the database, not in Python.

Wrong passwords at login, when e-signing and when changing one's password all count:
LOGIN_MAX_FAILURES in a row lock the account for LOGIN_LOCKOUT_MINUTES. Parallel requests
each read the account before any of them writes, so the count is one UPDATE ... SET
failed_logins = failed_logins + 1 ... RETURNING, and "not locked" is a condition of the
UPDATE itself: a lock committed by a concurrent request is seen, whatever was read before.
(PostgreSQL re-checks the condition on the newest row version after waiting for the row
lock; on SQLite, the UPDATE runs under the database write lock, which a write request holds
from its first statement after authentication: an API request's user is read with its
bearer token just before, as on PostgreSQL.)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm.attributes import set_committed_value

from trialmgr.audit import services as audit
from trialmgr.auth import mail
from trialmgr.auth.models import User
from trialmgr.extensions import db

# Each kind of counted failure, and how an attempt of that kind is audited when the account
# is already locked.
REFUSED_WHILE_LOCKED = {
    "login_failed": "login_refused_locked",
    "signature_failed": "signature_refused_locked",
    "password_change_failed": "password_change_refused_locked",
}


def _not_locked(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(User.locked_until.is_(None), User.locked_until <= now)


def _update(user: User, now: datetime, values: dict[str, Any], returning: Any) -> Any:
    """UPDATE the user's row if it is not locked; the RETURNING row, or None when locked."""
    statement = (
        sa.update(User)
        .where(User.id == user.id, _not_locked(now))
        .values(**values)
        .returning(returning)
        .execution_options(synchronize_session=False)
    )
    return db.session.execute(statement).scalar_one_or_none()


def count_failure(user: User, now: datetime, channel: str, action: str) -> bool:
    """Count one wrong password and audit it (`action`, or `account_locked` for the one that
    locks). Returns False when nothing was counted because the account was locked already
    (by a concurrent failure since it was read): that attempt is audited as refused while
    locked. Flushed; the refusal that follows keeps it (keep_writes)."""
    cfg = current_app.config
    count = _update(user, now, {"failed_logins": User.failed_logins + 1}, User.failed_logins)
    if count is None:
        refuse_locked(user, channel, action)
        return False
    changes: dict[str, Any] = {"channel": channel, "failed_logins": count}
    locked = count >= cfg["LOGIN_MAX_FAILURES"]
    if locked:
        until = now + timedelta(minutes=cfg["LOGIN_LOCKOUT_MINUTES"])
        db.session.execute(
            sa.update(User)
            .where(User.id == user.id)
            .values(failed_logins=0, locked_until=until)
            .execution_options(synchronize_session=False)
        )
        set_committed_value(user, "locked_until", until)
        count = 0
        changes["locked_until"] = until
        action = "account_locked"
        mail.notify_account_locked(user.email, until)
    set_committed_value(user, "failed_logins", count)
    audit.record(user, action, "user_account", user.id, changes)
    return True


def refuse_locked(user: User, channel: str, failure: str) -> None:
    """An attempt on a locked account: refused without counting, but on the record."""
    action = REFUSED_WHILE_LOCKED[failure]
    audit.record(user, action, "user_account", user.id, {"channel": channel})


def clear_failures(user: User, now: datetime, **values: Any) -> bool:
    """After a right password: reset the count (and set `values`, e.g. last_login_at).
    Returns False, writing nothing, when the account is locked after all (a concurrent
    failure locked it since it was read)."""
    fresh = db.session.execute(
        sa.select(User.failed_logins, User.locked_until).where(User.id == user.id)
    ).one()
    if fresh.locked_until is not None and fresh.locked_until > now:
        return False
    if not values and not fresh.failed_logins and fresh.locked_until is None:
        return True  # nothing to reset: no row lock taken (the common signature case)
    cleared = {"failed_logins": 0, "locked_until": None, **values}
    if _update(user, now, cleared, User.id) is None:
        return False
    for key, value in cleared.items():
        set_committed_value(user, key, value)
    return True
