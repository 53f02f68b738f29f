"""Browser sessions: which user a session cookie names, and for how long.

The cookie holds `<user id>:<session generation>` (User.get_id) and the time of sign-in.
Every request that reads the signed-in user checks both against the server:

- the generation must still be the user's current one; logout, a password or role change,
  deactivation and an administrator's "sign out everywhere" move it on
  (services.end_sessions), so copies of an old cookie stop working;
- the sign-in must be less than PERMANENT_SESSION_LIFETIME ago. The cookie's own signature
  time is renewed whenever the session changes (a flash message is enough), so it cannot
  bound a session's life; the sign-in time does, however busy the session.
"""

from __future__ import annotations

import time

from flask import after_this_request, current_app, session
from flask_login import LoginManager, login_user, logout_user
from werkzeug.wrappers import Response

from trialmgr.auth.models import User
from trialmgr.extensions import db

SIGNED_IN_AT = "signed_in_at"
_LOGIN_KEYS = ("_user_id", "_fresh", "_id", SIGNED_IN_AT)


def install_user_loader(login_manager: LoginManager) -> None:
    """Called by the application factory."""
    login_manager.user_loader(load_user)


def load_user(session_id: str) -> User | None:
    user_id, _, generation = session_id.partition(":")
    user = None
    if user_id.isdigit() and generation.isdigit() and _within_lifetime():
        user = db.session.get(User, int(user_id))
    if user is None or not user.active or user.get_id() != session_id:
        for key in _LOGIN_KEYS:  # a dead session: drop it from the cookie
            session.pop(key, None)
        return None
    return user


def _within_lifetime() -> bool:
    started = session.get(SIGNED_IN_AT)
    if not isinstance(started, int | float):
        return False
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    return time.time() - started < lifetime


def sign_in(user: User) -> None:
    """Start a browser session for a user whose sign-in is already audited (flushed)."""
    login_user(user)
    session[SIGNED_IN_AT] = time.time()
    after_this_request(_forget_if_failed)


def _forget_if_failed(response: Response) -> Response:
    """A login never exists without its audit row: if the request fails after all (its
    commit fails, and the `login` row with it), the cookie must not name the user. Flask
    runs this again on the error response that replaces a failed one."""
    if response.status_code >= 400:
        for key in _LOGIN_KEYS:
            session.pop(key, None)
    return response


def renew(user: User) -> None:
    """Re-issue this session under the user's new generation (after their own password
    change ended every session), keeping the original sign-in time."""
    started = session.get(SIGNED_IN_AT)
    login_user(user)
    session[SIGNED_IN_AT] = started if isinstance(started, int | float) else time.time()


def sign_out() -> None:
    logout_user()
    session.pop(SIGNED_IN_AT, None)
