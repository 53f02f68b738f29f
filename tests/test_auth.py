"""Accounts, lockout, tokens, roles."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.factories import PASSWORD, login_page, make_user
from trialmgr.auth.models import ApiToken, User
from trialmgr.db import utcnow
from trialmgr.extensions import db


def _token(client, email, password=PASSWORD):
    return client.post("/api/v1/auth/tokens", json={"email": email, "password": password})


def test_token_login_and_bearer_auth(app, client):
    user = make_user(app, "consortium_lead")
    resp = _token(client, user["email"])
    assert resp.status_code == 201
    token = resp.json["token"]
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json["email"] == user["email"]
    assert "password_hash" not in me.json


def test_token_is_stored_hashed_not_in_clear(app, client):
    user = make_user(app, "admin")
    token = _token(client, user["email"]).json["token"]
    with app.app_context():
        stored = db.session.execute(sa.select(ApiToken.token_hash)).scalar_one()
    assert stored != token and len(stored) == 64


def test_wrong_password_gives_401_problem(app, client):
    user = make_user(app, "admin")
    resp = _token(client, user["email"], "wrong-password-xx")
    assert resp.status_code == 401
    assert resp.mimetype == "application/problem+json"


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(app, client):
    user = make_user(app, "coordinator")
    for _ in range(4):
        assert _token(client, user["email"], "wrong-password-xx").status_code == 401
    assert _token(client, user["email"]).status_code == 201  # 4 failures: not locked; resets
    for _ in range(5):
        assert _token(client, user["email"], "wrong-password-xx").status_code == 401
    locked = _token(client, user["email"])
    assert locked.status_code == 401  # answered like any refused login (see test_auth_lockout)
    with app.app_context():
        u = db.session.get(User, user["id"])
        remaining = u.locked_until - utcnow()
    assert timedelta(minutes=14) < remaining <= timedelta(minutes=15)


def test_lock_expires_after_fifteen_minutes(app, client):
    user = make_user(app, "coordinator")
    for _ in range(5):
        _token(client, user["email"], "wrong-password-xx")
    with app.app_context():
        u = db.session.get(User, user["id"])
        u.locked_until = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert _token(client, user["email"]).status_code == 201


def test_lockout_applies_to_the_login_page_too(app, client):
    user = make_user(app, "coordinator")
    for _ in range(5):
        assert login_page(client, user["email"], "wrong-password-xx").status_code == 401
    resp = login_page(client, user["email"])
    assert resp.status_code == 401
    assert b"locked" in resp.data


def test_admin_can_unlock(app, api):
    user = make_user(app, "coordinator")
    for _ in range(5):
        _token(api.client, user["email"], "wrong-password-xx")
    admin = api.as_role("admin")
    resp = admin.patch(
        f"/users/{user['id']}", json={"unlock": True, "reason": "called the helpdesk"}
    )
    assert resp.status_code == 200
    assert resp.json["locked_until"] is None
    assert _token(api.client, user["email"]).status_code == 201


def test_unknown_email_is_refused_like_a_wrong_password(app, client):
    user = make_user(app, "admin")
    unknown = _token(client, "nobody@example.org")
    wrong = _token(client, user["email"], "wrong-password-xx")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json["detail"] == wrong.json["detail"]
    assert unknown.json["detail"].startswith("Wrong e-mail or password")


def test_revoked_token_gets_401(app, api):
    lead = api.as_role("consortium_lead")
    assert lead.get("/auth/me").status_code == 200
    assert lead.delete("/auth/tokens/current").status_code == 204
    assert lead.get("/auth/me").status_code == 401


def test_revoking_a_token_by_id(app, api):
    lead = api.as_role("consortium_lead")
    tokens = lead.get("/auth/tokens").json
    assert lead.delete(f"/auth/tokens/{tokens[0]['id']}").status_code == 204
    assert lead.get("/auth/me").status_code == 401


def test_cannot_revoke_someone_elses_token(app, api):
    lead = api.as_role("consortium_lead")
    other = api.as_role("safety_monitor")
    their_id = other.get("/auth/tokens").json[0]["id"]
    assert lead.delete(f"/auth/tokens/{their_id}").status_code == 404
    assert other.get("/auth/me").status_code == 200


def test_expired_token_gets_401(app, api):
    lead = api.as_role("consortium_lead")
    with app.app_context():
        for token in db.session.execute(sa.select(ApiToken)).scalars():
            token.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert lead.get("/auth/me").status_code == 401


def test_deactivated_user_token_stops_working(app, api):
    coord = api.as_role("coordinator")
    admin = api.as_role("admin")
    assert admin.patch(f"/users/{coord.user['id']}", json={"active": False}).status_code == 422
    resp = admin.patch(f"/users/{coord.user['id']}", json={"active": False, "reason": "left"})
    assert resp.status_code == 200
    assert coord.get("/auth/me").status_code == 401


def test_garbage_bearer_gets_401(client):
    resp = client.get("/api/v1/auth/me", headers={"Authorization": "Bearer nonsense"})
    assert resp.status_code == 401


@pytest.mark.parametrize("role", ["consortium_lead", "coordinator", "safety_monitor"])
def test_only_admins_manage_users(api, role):
    other = api.as_role(role)
    assert other.get("/users").status_code == 403
    resp = other.post(
        "/users",
        json={
            "email": "z@example.org",
            "name": "Z",
            "role": "admin",
            "password": "long-enough-password",
        },
    )
    assert resp.status_code == 403


def test_admin_creates_user_and_email_is_unique_case_insensitively(api):
    admin = api.as_role("admin")
    body = {
        "email": "New.Person@Example.org",
        "name": "New",
        "role": "safety_monitor",
        "password": "long-enough-password",
    }
    resp = admin.post("/users", json=body)
    assert resp.status_code == 201
    assert resp.json["email"] == "new.person@example.org"
    assert "password" not in resp.json
    dup = admin.post("/users", json={**body, "email": "new.person@example.ORG"})
    assert dup.status_code == 409
    assert admin.get("/users?role=safety_monitor").json[0]["email"] == "new.person@example.org"


def test_password_policy_twelve_characters(api):
    admin = api.as_role("admin")
    body = {"email": "p@example.org", "name": "P", "role": "admin"}
    short = admin.post("/users", json={**body, "password": "violet-trac"})  # 11
    assert short.status_code == 422
    assert short.json["errors"]["password"] == ["Use at least 12 characters."]
    ok = admin.post("/users", json={**body, "password": "violet-tract"})  # 12
    assert ok.status_code == 201


def test_repeated_character_and_email_passwords_refused(api):
    admin = api.as_role("admin")
    body = {"name": "P", "role": "admin"}
    assert (
        admin.post(
            "/users", json={**body, "email": "a@example.org", "password": "a" * 14}
        ).status_code
        == 422
    )
    assert (
        admin.post(
            "/users",
            json={**body, "email": "longemail@example.org", "password": "longemail@example.org"},
        ).status_code
        == 422
    )


def test_role_change_is_audited(app, api):
    admin = api.as_role("admin")
    user = make_user(app, "coordinator")
    resp = admin.patch(
        f"/users/{user['id']}", json={"role": "safety_monitor", "reason": "moved teams"}
    )
    assert resp.status_code == 200
    events = admin.get(f"/audit?entity=user_account&entity_id={user['id']}").json
    change = next(e for e in events if e["action"] == "user.role_change")
    assert change["changes"]["role"] == {"old": "coordinator", "new": "safety_monitor"}
    assert change["reason"] == "moved teams"
    assert change["actor"] == admin.user["email"]


def test_site_ids_only_for_coordinators(api):
    admin = api.as_role("admin")
    resp = admin.post(
        "/users",
        json={
            "email": "m@example.org",
            "name": "M",
            "role": "safety_monitor",
            "password": "long-enough-password",
            "site_ids": [1],
        },
    )
    assert resp.status_code == 422
    assert "site_ids" in resp.json["errors"]


def test_password_change_ends_other_sessions(app, client):
    user = make_user(app, "consortium_lead")
    other = app.test_client()
    assert login_page(client, user["email"]).status_code == 302
    assert login_page(other, user["email"]).status_code == 302
    resp = client.post(
        "/account",
        data={
            "action": "password",
            "current_password": PASSWORD,
            "new_password": "a-brand-new-password",
        },
    )
    assert resp.status_code == 302
    assert client.get("/").status_code == 200
    assert other.get("/").status_code == 302  # signed out


def test_login_page_flow_and_logout(app, client):
    user = make_user(app, "safety_monitor")
    assert client.get("/login").status_code == 200
    resp = login_page(client, user["email"])
    assert resp.status_code == 302
    home = client.get("/")
    assert home.status_code == 200 and b"Sign out" in home.data
    assert client.post("/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_login_redirect_never_leaves_the_site(app, client):
    user = make_user(app, "admin")
    resp = client.post(
        "/login?next=https://evil.example.com/", data={"email": user["email"], "password": PASSWORD}
    )
    assert resp.headers["Location"] == "/"
    client.post("/logout")
    resp = client.post(
        "/login?next=//evil.example.com/", data={"email": user["email"], "password": PASSWORD}
    )
    assert resp.headers["Location"] == "/"


def test_login_form_requires_csrf_token(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=True)
    user = make_user(app, "admin")
    client = app.test_client()
    resp = login_page(client, user["email"])
    assert resp.status_code == 400
    page = client.get("/login").data.decode()
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    resp = client.post(
        "/login", data={"email": user["email"], "password": PASSWORD, "csrf_token": token}
    )
    assert resp.status_code == 302


def test_token_endpoint_is_rate_limited(app_factory):
    app = app_factory(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    codes = [_token(client, "who@example.org", "whatever-password").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    resp = _token(client, "who@example.org", "whatever-password")
    assert resp.mimetype == "application/problem+json"


def test_login_page_is_rate_limited(app_factory):
    app = app_factory(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="2 per minute")
    client = app.test_client()
    codes = [login_page(client, "who@example.org", "x").status_code for _ in range(3)]
    assert codes == [401, 401, 429]


def test_users_list_is_paginated(api):
    admin = api.as_role("admin")
    for i in range(3):
        make_user(api.app, "coordinator", email=f"c{i}@example.org")
    resp = admin.get("/users?page=2&page_size=2")
    assert resp.status_code == 200
    assert len(resp.json) == 2
    assert '"total": 4' in resp.headers["X-Pagination"]


def test_admin_assigns_sites_through_the_user_form(app, api, client):
    lead = api.as_role("consortium_lead")
    partner = lead.post(
        "/partners",
        json={"name": "Hospital", "short_name": "H", "kind": "clinical_site", "country": "IT"},
    ).json
    site = lead.post(
        "/sites",
        json={
            "partner_id": partner["id"],
            "code": "S01",
            "name": "Site",
            "country": "IT",
            "timezone": "Europe/Rome",
        },
    ).json
    admin = make_user(app, "admin")
    login_page(client, admin["email"])
    resp = client.post(
        "/admin/users/new",
        data={
            "email": "new.coord@example.org",
            "name": "New Coord",
            "role": "coordinator",
            "password": "long-enough-password",
            "site_ids": ["", str(site["id"])],
            "active": "true",
        },
    )
    assert resp.status_code == 302, resp.data
    with app.app_context():
        user = db.session.execute(
            sa.select(User).where(User.email == "new.coord@example.org")
        ).scalar_one()
        assert user.site_ids == [site["id"]]


def test_password_reset_by_admin_revokes_api_tokens(app, api):
    coord = api.as_role("coordinator")
    admin = api.as_role("admin")
    assert coord.get("/auth/me").status_code == 200
    resp = admin.patch(
        f"/users/{coord.user['id']}",
        json={"password": "a-fresh-password-1", "reason": "suspected compromise"},
    )
    assert resp.status_code == 200
    assert coord.get("/auth/me").status_code == 401


def test_own_password_change_revokes_api_tokens(app, api):
    coord = api.as_role("coordinator")
    client = app.test_client()
    login_page(client, coord.user["email"])
    client.post(
        "/account",
        data={
            "action": "password",
            "current_password": PASSWORD,
            "new_password": "a-brand-new-password",
        },
    )
    assert coord.get("/auth/me").status_code == 401
