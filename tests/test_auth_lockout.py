"""Lockout: one atomic failure count shared by logins, e-signatures and password changes;
a locked account looks like an unknown one; its owner is told."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.builders import world
from tests.factories import PASSWORD, login_page, make_user
from trialmgr.audit.models import AuditEvent
from trialmgr.auth import services
from trialmgr.auth.models import User
from trialmgr.db import utcnow
from trialmgr.errors import Problem
from trialmgr.extensions import db

WRONG = "wrong-password-xx"


def _token(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/tokens", json={"email": email, "password": password})


def _user(app: Flask, user_id: int) -> User:
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None
        db.session.expunge(user)
        return user


def _actions(app: Flask, user_id: int) -> list[str]:
    with app.app_context():
        query = (
            sa.select(AuditEvent.action)
            .where(AuditEvent.entity == "user_account", AuditEvent.entity_id == str(user_id))
            .order_by(AuditEvent.id)
        )
        return list(db.session.execute(query).scalars())


def _in_parallel(app: Flask, n: int, attempt: Callable[[FlaskClient], int]) -> list[int]:
    """n requests at once, each from its own thread with its own client (and so its own
    database session and connection), released together by a barrier."""
    barrier = threading.Barrier(n)
    codes: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        client = app.test_client()
        try:
            barrier.wait(timeout=30)
            codes.append(attempt(client))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return codes


# --- 1. the count is atomic -------------------------------------------------------------


@pytest.mark.parametrize("channel", ["api", "web"])
def test_parallel_wrong_passwords_lock_the_account(app, channel):
    user = make_user(app, "coordinator")
    burst = 2 * app.config["LOGIN_MAX_FAILURES"] + 1

    def wrong(client: FlaskClient) -> int:
        if channel == "api":
            return _token(client, user["email"], WRONG).status_code
        return login_page(client, user["email"], WRONG).status_code

    assert _in_parallel(app, burst, wrong) == [401] * burst
    assert _token(app.test_client(), user["email"]).status_code == 401
    assert login_page(app.test_client(), user["email"]).status_code == 401
    locked = _user(app, user["id"])
    assert locked.locked_until is not None and locked.locked_until > utcnow()
    actions = _actions(app, user["id"])
    assert actions.count("account_locked") == 1
    # Every attempt left its row: counted failures, the lock, refusals once locked.
    counted = actions.count("login_failed") + actions.count("account_locked")
    assert counted == app.config["LOGIN_MAX_FAILURES"]
    assert counted + actions.count("login_refused_locked") == burst + 2


def test_parallel_wrong_signatures_lock_the_account(app, api):
    w = world(api)
    monitor = api.as_role("safety_monitor")
    headers = {"Authorization": f"Bearer {monitor.token}"}
    sign = f"/api/v1/trials/{w['trial']['id']}/safety-reviews"
    review = {"cohort_id": w["trial"]["cohorts"][0]["id"], "decision": "continue"}
    burst = 2 * app.config["LOGIN_MAX_FAILURES"] + 1

    def wrong(client: FlaskClient) -> int:
        body = {**review, "rationale": "no DLT", "password": WRONG}
        return client.post(sign, json=body, headers=headers).status_code

    codes = _in_parallel(app, burst, wrong)
    assert codes.count(422) == app.config["LOGIN_MAX_FAILURES"]
    assert codes.count(403) == burst - app.config["LOGIN_MAX_FAILURES"]  # refused: locked
    right = monitor.post(sign, json={**review, "rationale": "no DLT", "password": PASSWORD})
    assert right.status_code == 403 and right.json["title"] == "Signature locked"
    assert _actions(app, monitor.user["id"]).count("account_locked") == 1


def test_right_password_after_a_lock_committed_meanwhile_is_refused(app, is_postgres):
    """A request that read the account before a concurrent request locked it must not let
    the right password through (the check happens in the database, not on the stale read)."""
    if not is_postgres:
        pytest.skip("SQLite serialises write requests (BEGIN IMMEDIATE): no stale read")
    user = make_user(app, "coordinator")
    with app.app_context():
        stale = services.find_user_by_email(user["email"])
        assert stale is not None and not stale.is_locked(utcnow())
        other = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
        with other.begin() as conn:
            conn.execute(
                sa.update(User.__table__)
                .where(User.__table__.c.id == user["id"])
                .values(locked_until=utcnow() + timedelta(minutes=15))
            )
        other.dispose()
        with pytest.raises(services.LoginRefused):
            services.authenticate(user["email"], PASSWORD, utcnow(), "api")
        db.session.rollback()


# --- 2. one lockout for logins, signatures and password changes, on every channel ----------


def test_wrong_signature_keeps_its_count_and_audit_row_through_the_refusal(app):
    user = make_user(app, "safety_monitor")
    with app.test_request_context():
        actor = db.session.get(User, user["id"])
        with pytest.raises(Problem) as refused:
            services.verify_signature(actor, WRONG, utcnow())
        assert refused.value.keep_writes
        assert refused.value.status == 422
    assert _user(app, user["id"]).failed_logins == 0  # never committed: the caller decides
    with app.test_request_context():
        actor = db.session.get(User, user["id"])
        with pytest.raises(Problem):
            services.verify_signature(actor, WRONG, utcnow())
        db.session.commit()  # what the request boundary does for a keep_writes refusal
    assert _user(app, user["id"]).failed_logins == 1
    assert _actions(app, user["id"]) == ["user.create", "signature_failed"]


def test_wrong_current_password_on_the_account_page_counts_and_is_kept(app, client):
    user = make_user(app, "coordinator")
    assert login_page(client, user["email"]).status_code == 302
    body = {"action": "password", "current_password": WRONG, "new_password": "violet-tractor-47"}
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        resp = client.post("/account", data=body)
        assert resp.status_code == 422
        assert "The current password is wrong." in resp.get_data(as_text=True)
    actions = _actions(app, user["id"])
    assert actions.count("password_change_failed") == 4 and actions.count("account_locked") == 1
    assert _user(app, user["id"]).is_locked(utcnow())
    right = client.post("/account", data={**body, "current_password": PASSWORD})
    assert right.status_code == 403  # locked: not even the right password changes it
    assert "Your account is locked" in right.get_data(as_text=True)
    assert _actions(app, user["id"])[-1] == "password_change_refused_locked"
    assert _token(client, user["email"]).status_code == 401


def test_logins_signatures_and_password_changes_share_one_lockout(app, api):
    w = world(api)
    monitor = api.as_role("safety_monitor")
    email, user_id = monitor.user["email"], monitor.user["id"]
    page = app.test_client()
    assert login_page(page, email).status_code == 302
    review = {
        "cohort_id": w["trial"]["cohorts"][0]["id"],
        "decision": "continue",
        "rationale": "no DLT",
    }
    sign = f"/trials/{w['trial']['id']}/safety-reviews"

    assert _token(api.client, email, WRONG).status_code == 401  # 1: API login
    assert login_page(app.test_client(), email, WRONG).status_code == 401  # 2: page login
    assert monitor.post(sign, json={**review, "password": WRONG}).status_code == 422  # 3
    wrong_current = {"action": "password", "current_password": WRONG, "new_password": "x" * 20}
    assert page.post("/account", data=wrong_current).status_code == 422  # 4: /account
    assert monitor.post(sign, json={**review, "password": WRONG}).status_code == 422  # 5

    assert _token(api.client, email).status_code == 401
    locked = monitor.post(sign, json={**review, "password": PASSWORD})
    assert locked.status_code == 403 and locked.json["title"] == "Signature locked"
    actions = _actions(app, user_id)
    assert actions.count("login_failed") == 2
    assert actions.count("signature_failed") == 1
    assert actions.count("password_change_failed") == 1
    assert actions.count("account_locked") == 1
    assert "signature_refused_locked" in actions
    assert w["lead"].get(f"/trials/{w['trial']['id']}/safety-reviews").json == []


def test_right_signature_resets_the_count(app, api):
    w = world(api)
    monitor = api.as_role("safety_monitor")
    review = {
        "cohort_id": w["trial"]["cohorts"][0]["id"],
        "decision": "continue",
        "rationale": "no DLT",
    }
    sign = f"/trials/{w['trial']['id']}/safety-reviews"
    for _ in range(4):
        bad = monitor.post(sign, json={**review, "password": WRONG})
        assert bad.status_code == 422 and bad.json["title"] == "Signature not verified"
    assert _user(app, monitor.user["id"]).failed_logins == 4
    ok = monitor.post(sign, json={**review, "password": PASSWORD})
    assert ok.status_code == 201
    assert _user(app, monitor.user["id"]).failed_logins == 0


# --- 6. a locked account answers like an unknown e-mail, and its owner is told -------------


def _lock(app: Flask, email: str) -> None:
    client = app.test_client()
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert _token(client, email, WRONG).status_code == 401


def test_locked_account_answers_the_api_like_an_unknown_email(app, client):
    user = make_user(app, "coordinator")
    _lock(app, user["email"])
    answers = [
        _token(client, "nobody@example.org"),
        _token(client, "nobody@example.org", WRONG),
        _token(client, user["email"]),
        _token(client, user["email"], WRONG),
    ]
    shapes = {
        (r.status_code, r.json["title"], r.json["detail"], r.headers.get("WWW-Authenticate"))
        for r in answers
    }
    assert len(shapes) == 1
    status, title, _, _ = shapes.pop()
    assert status == 401 and "locked" not in title.lower()


def test_locked_account_answers_the_login_page_like_an_unknown_email(app, client):
    user = make_user(app, "coordinator")
    _lock(app, user["email"])

    def alert(resp: Any) -> tuple[int, str]:
        html = resp.get_data(as_text=True)
        return resp.status_code, html.split('role="alert">')[1].split("</div>")[0]

    unknown = alert(login_page(client, "nobody@example.org"))
    locked = alert(login_page(client, user["email"]))
    assert unknown == locked
    assert unknown[0] == 401


def _median_seconds(call: Callable[[], Any], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def test_locked_account_takes_as_long_as_an_unknown_email(app_factory):
    """With a hash that costs what it costs in production, the answer's time does not tell a
    locked account from an unknown e-mail: both verify a password hash."""
    app = app_factory(PASSWORD_HASH_PARAMS={"time_cost": 2, "memory_cost": 32768})
    user = make_user(app, "coordinator")
    _lock(app, user["email"])
    other = make_user(app, "coordinator")
    client = app.test_client()
    _token(client, "warm-up@example.org")
    # Interleaved, so that a busy machine slows the three kinds alike; the bug this guards
    # against made the locked answer 15x faster.
    calls = {
        "wrong": lambda: _token(client, other["email"], WRONG),
        "unknown": lambda: _token(client, "nobody@example.org"),
        "locked": lambda: _token(client, user["email"]),
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(5):
        for name, call in calls.items():
            if name == "wrong" and len(times["wrong"]) >= 3:
                continue  # more wrong passwords would lock this account too
            times[name].append(_median_seconds(call, runs=1))
    wrong, unknown, locked = (statistics.median(times[n]) for n in ("wrong", "unknown", "locked"))
    assert 1 / 4 < unknown / wrong < 4, (unknown, wrong)
    assert 1 / 4 < locked / wrong < 4, (locked, wrong)


def test_owner_of_a_locked_account_is_told_by_email_and_in_the_audit(app_factory, smtp_server):
    port, inbox = smtp_server
    app = app_factory(
        MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_DEFAULT_SENDER="trialmgr@example.org"
    )
    user = make_user(app, "coordinator")
    _lock(app, user["email"])
    (envelope,) = inbox.wait(1)
    assert envelope.mail_from == "trialmgr@example.org"
    assert envelope.rcpt_tos == [user["email"]]
    text = envelope.content.decode()
    assert "Subject: Your trialmgr account is locked" in text
    assert "5 failed" in text and "15 minutes" in text
    assert _actions(app, user["id"]).count("account_locked") == 1
    _token(app.test_client(), user["email"])  # refused while locked: no second message
    time.sleep(0.3)
    assert len(inbox.messages) == 1


def test_lock_is_audited_when_no_mail_is_configured(app):
    user = make_user(app, "coordinator")
    assert not app.config.get("MAIL_SERVER")
    _lock(app, user["email"])
    assert _actions(app, user["id"]).count("account_locked") == 1
