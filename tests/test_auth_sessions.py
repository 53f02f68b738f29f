"""Browser sessions end on the server: logout, password and role changes, deactivation and an
administrator's "sign out everywhere" end them; none outlives 8 hours from sign-in."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.factories import PASSWORD, ApiClient, login_page, make_user
from trialmgr.audit.models import AuditEvent
from trialmgr.auth.models import ApiToken
from trialmgr.extensions import db


def _signed_in(client: FlaskClient) -> bool:
    resp = client.get("/account")
    if resp.status_code == 302:
        assert "/login" in resp.headers["Location"]
        return False
    assert resp.status_code == 200
    return True


def _copy_of(app: Flask, client: FlaskClient) -> FlaskClient:
    """Another browser holding a copy of the client's session cookie."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    copy = app.test_client()
    copy.set_cookie("session", cookie.value)
    return copy


def _actions(app: Flask, user_id: int) -> list[str]:
    with app.app_context():
        query = (
            sa.select(AuditEvent.action)
            .where(AuditEvent.entity == "user_account", AuditEvent.entity_id == str(user_id))
            .order_by(AuditEvent.id)
        )
        return list(db.session.execute(query).scalars())


class _Clock:
    """Moves time.time() forward (cookie signatures and sign-in times both read it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0.0
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + self.offset)

    def advance(self, hours: float = 0, minutes: float = 0) -> None:
        self.offset += hours * 3600 + minutes * 60


# --- 3. sessions end on the server --------------------------------------------------------


def test_copied_session_cookie_stops_working_after_logout(app, client):
    user = make_user(app, "coordinator")
    assert login_page(client, user["email"]).status_code == 302
    copy = _copy_of(app, client)
    assert _signed_in(copy)
    assert client.post("/logout").status_code == 302
    assert not _signed_in(client)
    assert not _signed_in(copy)
    assert _actions(app, user["id"]).count("logout") == 1


def test_signing_in_again_after_logout_works(app, client):
    user = make_user(app, "coordinator")
    login_page(client, user["email"])
    client.post("/logout")
    assert login_page(client, user["email"]).status_code == 302
    assert _signed_in(client)


def test_session_ends_eight_hours_after_sign_in_however_active(app, client, monkeypatch):
    user = make_user(app, "coordinator")
    clock = _Clock(monkeypatch)
    assert login_page(client, user["email"]).status_code == 302
    clock.advance(hours=7)
    # A flashing POST re-issues the cookie, freshly signed; that must not extend the session.
    saved = client.post("/account", data={"action": "profile", "name": "Still Working"})
    assert saved.status_code == 302
    assert _signed_in(client)
    clock.advance(hours=1, minutes=1)
    assert not _signed_in(client)


def test_session_within_eight_hours_of_sign_in_works(app, client, monkeypatch):
    user = make_user(app, "coordinator")
    clock = _Clock(monkeypatch)
    login_page(client, user["email"])
    clock.advance(hours=7, minutes=59)
    assert _signed_in(client)


def test_role_change_ends_the_users_sessions(app, api, client):
    user = make_user(app, "coordinator")
    login_page(client, user["email"])
    admin = api.as_role("admin")
    resp = admin.patch(f"/users/{user['id']}", json={"role": "safety_monitor", "reason": "moved"})
    assert resp.status_code == 200
    assert not _signed_in(client)
    assert "sessions_revoked" in _actions(app, user["id"])


def test_password_reset_by_an_admin_ends_the_users_sessions(app, api, client):
    user = make_user(app, "coordinator")
    login_page(client, user["email"])
    admin = api.as_role("admin")
    resp = admin.patch(f"/users/{user['id']}", json={"password": "violet-tractor-harbour-47"})
    assert resp.status_code == 200
    assert not _signed_in(client)


def test_own_password_change_keeps_this_session_and_ends_the_others(app, client):
    user = make_user(app, "coordinator")
    login_page(client, user["email"])
    copy = _copy_of(app, client)
    resp = client.post(
        "/account",
        data={
            "action": "password",
            "current_password": PASSWORD,
            "new_password": "violet-tractor-harbour-47",
        },
    )
    assert resp.status_code == 302
    assert _signed_in(client)
    assert not _signed_in(copy)


def test_admin_signs_a_user_out_everywhere_through_the_api(app, api, client):
    coord = api.as_role("coordinator")
    login_page(client, coord.user["email"])
    admin = api.as_role("admin")
    resp = admin.post(f"/users/{coord.user['id']}/sessions/revoke", json={"reason": "lost laptop"})
    assert resp.status_code == 204
    assert not _signed_in(client)
    assert coord.get("/auth/me").status_code == 401  # API tokens too: "everywhere"
    events = admin.get(f"/audit?entity=user_account&entity_id={coord.user['id']}").json
    revoked = next(e for e in events if e["action"] == "sessions_revoked")
    assert revoked["reason"] == "lost laptop" and revoked["actor"] == admin.user["email"]
    assert admin.post(f"/users/{coord.user['id']}/sessions/revoke").status_code == 204


@pytest.mark.parametrize("role", ["consortium_lead", "coordinator", "safety_monitor"])
def test_only_admins_sign_others_out(api, role):
    other = api.as_role(role)
    victim = make_user(api.app, "coordinator")
    assert other.post(f"/users/{victim['id']}/sessions/revoke").status_code == 403


def test_admin_user_page_signs_a_user_out_everywhere(app, client):
    admin = make_user(app, "admin")
    user = make_user(app, "coordinator")
    victim = app.test_client()
    login_page(victim, user["email"])
    login_page(client, admin["email"])
    page = client.get(f"/admin/users/{user['id']}").get_data(as_text=True)
    assert f'action="/admin/users/{user["id"]}/sessions/revoke"' in page
    resp = client.post(f"/admin/users/{user['id']}/sessions/revoke")
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"/admin/users/{user['id']}"
    assert "signed out everywhere" in client.get(resp.headers["Location"]).get_data(as_text=True)
    assert not _signed_in(victim)
    assert _signed_in(client)


# --- 4. deactivation revokes, for good ----------------------------------------------------


def _set_active(admin: ApiClient, user_id: int, active: bool) -> None:
    resp = admin.patch(f"/users/{user_id}", json={"active": active, "reason": "staff change"})
    assert resp.status_code == 200, resp.json


def test_deactivation_revokes_tokens_and_sessions_and_reactivation_does_not_restore_them(
    app, api, client
):
    coord = api.as_role("coordinator")
    login_page(client, coord.user["email"])
    admin = api.as_role("admin")
    _set_active(admin, coord.user["id"], False)
    assert coord.get("/auth/me").status_code == 401
    assert not _signed_in(client)
    _set_active(admin, coord.user["id"], True)
    assert coord.get("/auth/me").status_code == 401
    assert not _signed_in(client)
    with app.app_context():
        tokens = db.session.execute(
            sa.select(ApiToken).where(ApiToken.user_id == coord.user["id"])
        ).scalars()
        assert all(t.revoked_at is not None for t in tokens)
    fresh = app.test_client()
    assert login_page(fresh, coord.user["email"]).status_code == 302  # a new sign-in works
    assert _signed_in(fresh)


def test_deactivation_through_the_admin_page_ends_sessions(app, client):
    admin = make_user(app, "admin")
    user = make_user(app, "coordinator")
    victim = app.test_client()
    login_page(victim, user["email"])
    login_page(client, admin["email"])
    resp = client.post(
        f"/admin/users/{user['id']}",
        data={"name": "Gone", "role": "coordinator", "active": "false", "reason": "left"},
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert not _signed_in(victim)


# --- 5. next= never breaks a login ------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/%0d%0aSet-Cookie:x",
        "/%0aLocation:%20https://evil.example.com",
        "/%5Cevil.example.com",
        "/%09/evil.example.com",
        "/%E2%80%AEmoc.elpmaxe",
        "javascript:alert(1)",
        "https://evil.example.com/",
        "//evil.example.com/",
    ],
)
def test_unsafe_next_falls_back_home_and_the_login_is_audited(app, client, target):
    user = make_user(app, "coordinator")
    resp = client.post(f"/login?next={target}", data={"email": user["email"], "password": PASSWORD})
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/"
    assert _actions(app, user["id"]).count("login") == 1
    assert _signed_in(client)


def test_safe_next_is_followed(app, client):
    user = make_user(app, "coordinator")
    resp = client.post(
        "/login?next=/subjects%3Fpage%3D2", data={"email": user["email"], "password": PASSWORD}
    )
    assert resp.headers["Location"] == "/subjects?page=2"


def test_login_whose_commit_fails_signs_nobody_in(app_factory, monkeypatch):
    """If the login's transaction does not commit, its audit row is gone: so is the login."""
    app = app_factory(PROPAGATE_EXCEPTIONS=False)
    user = make_user(app, "coordinator")
    client = app.test_client()

    def failing_commit(self: Session) -> None:
        raise sa.exc.OperationalError("COMMIT", {}, Exception("disk I/O error"))

    with monkeypatch.context() as patch:
        patch.setattr(Session, "commit", failing_commit)
        resp = login_page(client, user["email"])
    assert resp.status_code == 500
    assert "login" not in _actions(app, user["id"])
    assert not _signed_in(client)


def test_refused_login_with_unsafe_next_signs_nobody_in(app, client):
    user = make_user(app, "coordinator")
    resp: Any = client.post(
        "/login?next=/%0d%0aSet-Cookie:x", data={"email": user["email"], "password": "nope-nope"}
    )
    assert resp.status_code == 401
    assert not _signed_in(client)
