"""One error shape: problem+json for the API, a page for browsers, never a stack trace."""

import logging

import pytest

from trialmgr.auth.policies import public


def test_malformed_json_is_400_problem(api):
    admin = api.as_role("admin")
    resp = admin.client.post(
        "/api/v1/users",
        data="{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {admin.token}"},
    )
    assert resp.status_code == 400
    assert resp.mimetype == "application/problem+json"
    assert set(resp.json) >= {"status", "title", "detail", "errors"}


def test_unknown_field_is_422_with_field_errors(api):
    admin = api.as_role("admin")
    resp = admin.post(
        "/users",
        json={
            "email": "a@example.org",
            "name": "A",
            "role": "admin",
            "password": "long-enough-password",
            "shoe_size": 44,
        },
    )
    assert resp.status_code == 422
    assert resp.json["errors"] == {"shoe_size": ["Unknown field."]}


def test_wrong_type_is_422(api):
    admin = api.as_role("admin")
    resp = admin.post(
        "/users",
        json={
            "email": "a@example.org",
            "name": 5,
            "role": "admin",
            "password": "long-enough-password",
        },
    )
    assert resp.status_code == 422
    assert "name" in resp.json["errors"]


def test_unknown_api_route_is_404_problem(api):
    resp = api.as_role("admin").get("/no-such-thing")
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"


def test_wrong_method_is_405_problem(api):
    resp = api.as_role("admin").delete("/users")
    assert resp.status_code == 405
    assert resp.mimetype == "application/problem+json"


def test_unknown_page_is_html_404(client):
    resp = client.get("/no-such-page")
    assert resp.status_code == 404
    assert resp.mimetype == "text/html"


def test_crash_shows_only_a_reference_and_logs_the_traceback(app_factory, caplog):
    app = app_factory()

    @app.route("/api/v1/boom")
    @public
    def boom():
        raise RuntimeError("secret internals")

    with caplog.at_level(logging.ERROR):
        resp = app.test_client().get("/api/v1/boom")
    assert resp.status_code == 500
    body = resp.json
    assert "secret internals" not in resp.data.decode()
    assert len(body["reference"]) == 12
    assert body["reference"] in caplog.text
    assert "secret internals" in caplog.text


def test_security_headers(client):
    resp = client.get("/login")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"


def test_session_cookie_is_httponly_and_samesite(app, client):
    from tests.factories import login_page, make_user

    user = make_user(app, "admin")
    resp = login_page(client, user["email"])
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_production_refuses_to_start_without_secret_key(app_factory):
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        app_factory(PRODUCTION=True, SECRET_KEY=None)


def test_production_forces_secure_cookies(app_factory):
    app = app_factory(PRODUCTION=True, SECRET_KEY="x" * 40)
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_health_reports_database(client):
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.json == {"status": "ok", "database": "ok"}


def test_failed_request_leaves_nothing_half_written(app, api):
    """A 4xx after a flush rolls the whole request back: no user, no audit row."""
    import sqlalchemy as sa

    from trialmgr.audit.models import AuditEvent
    from trialmgr.extensions import db

    admin = api.as_role("admin")
    with app.app_context():
        before = db.session.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar_one()
    # user.create flushes the user, then the membership check refuses the site ids
    resp = admin.post(
        "/users",
        json={
            "email": "half@example.org",
            "name": "H",
            "role": "safety_monitor",
            "password": "long-enough-password",
            "site_ids": [99],
        },
    )
    assert resp.status_code == 422
    with app.app_context():
        after = db.session.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar_one()
        assert after == before
    assert admin.get("/users?q=half").json == []


def test_nul_characters_are_refused_everywhere(api):
    admin = api.as_role("admin")
    resp = admin.post(
        "/users",
        json={
            "email": "n@example.org",
            "name": "a\u0000b",
            "role": "admin",
            "password": "long-enough-password",
        },
    )
    assert resp.status_code == 400
    assert resp.mimetype == "application/problem+json"
    assert admin.get("/users?q=%00").status_code == 400
    assert admin.get("/users?q=ok").status_code == 200


def test_production_example_config_loads_with_a_secret_from_the_environment(monkeypatch, tmp_path):
    from trialmgr import ROOT, create_app

    monkeypatch.setenv("TRIALMGR_CONFIG", str(ROOT / "config" / "production.example.py"))
    monkeypatch.setenv("TRIALMGR_INSTANCE", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()
    monkeypatch.setenv("SECRET_KEY", "s" * 48)
    app = create_app()
    assert app.config["PRODUCTION"] and app.config["SESSION_COOKIE_SECURE"]
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
