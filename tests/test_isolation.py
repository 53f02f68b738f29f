"""Each test starts from an empty, migrated database and a fresh instance folder, on the shared
app with its own settings: nothing one test does leaks into the next.

The tests come in pairs, the second checking what the first left behind; the xdist group
keeps this module on one worker, in this order.
"""

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.factories import login_page, make_user
from trialmgr.audit.models import AuditEvent
from trialmgr.auth.models import User
from trialmgr.extensions import db

pytestmark = pytest.mark.xdist_group("isolation")


def _count_users(app):
    with app.app_context():
        return db.session.execute(sa.select(sa.func.count()).select_from(User)).scalar_one()


def test_first_test_commits_a_user(app):
    assert _count_users(app) == 0
    make_user(app, "admin", email="leak-check@example.org")
    assert _count_users(app) == 1


def test_second_test_does_not_see_it(app):
    assert _count_users(app) == 0


def test_identities_start_again_at_one(app):
    assert make_user(app, "admin")["id"] == 1


def test_two_apps_in_one_test_have_separate_databases(app_factory):
    first, second = app_factory(), app_factory()
    make_user(first, "admin")
    assert _count_users(first) == 1
    assert _count_users(second) == 0


def test_a_test_writes_into_its_instance_folder(app):
    documents = Path(app.instance_path, "documents")
    documents.mkdir(parents=True)
    (documents / "letter.pdf").write_bytes(b"%PDF-")


def test_the_next_test_has_an_empty_instance_folder(app):
    assert list(Path(app.instance_path).rglob("*")) == []


def test_a_test_changes_the_app_config(app):
    app.config["UPLOAD_MAX_BYTES"] = 1


def test_the_next_test_has_the_config_back(app):
    assert app.config["UPLOAD_MAX_BYTES"] > 1


def _drop_audit_triggers():
    if db.engine.dialect.name == "postgresql":
        db.session.execute(sa.text("DROP TRIGGER audit_event_no_update_delete ON audit_event"))
    else:
        db.session.execute(sa.text("DROP TRIGGER audit_event_no_update"))


def test_a_test_drops_the_audit_triggers(app):
    with app.app_context():
        _drop_audit_triggers()
        db.session.commit()


def test_the_next_test_has_them_back(app):
    make_user(app, "admin")
    with app.app_context():
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            db.session.execute(sa.update(AuditEvent).values(reason="tampered"))
        db.session.rollback()


def test_a_test_signs_a_browser_in(app, client):
    user = make_user(app, "admin")
    assert login_page(client, user["email"]).status_code == 302
    assert client.get("/").status_code == 200


def test_the_next_test_starts_signed_out(client):
    assert client.get("/").status_code == 302


def test_a_test_builds_apps_with_csrf_and_rate_limits_on(app_factory):
    protected = app_factory(WTF_CSRF_ENABLED=True)
    assert login_page(protected.test_client(), "who@example.org").status_code == 400
    # built last, so the module-level Limiter is left enabled by this app
    guarded = app_factory(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="1 per minute")
    body = {"email": "who@example.org", "password": "whatever-password"}
    codes = [guarded.test_client().post("/api/v1/auth/tokens", json=body) for _ in range(2)]
    assert [resp.status_code for resp in codes] == [401, 429]


def test_the_next_test_has_neither(app, client):
    app.config["LOGIN_RATE_LIMIT"] = "1 per minute"  # bites at the second request if limits apply
    body = {"email": "who@example.org", "password": "whatever-password"}
    codes = [client.post("/api/v1/auth/tokens", json=body).status_code for _ in range(3)]
    assert codes == [401, 401, 401]
    assert login_page(client, "who@example.org").status_code == 401
