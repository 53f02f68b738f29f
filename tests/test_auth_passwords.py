"""Password policy (NIST SP 800-63B): length, no common or breached passwords, nothing of the
user's own name or e-mail, and not the published demo password outside the demo."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.factories import PASSWORD, login_page, make_user
from trialmgr.auth import passwords
from trialmgr.auth import services as auth_services
from trialmgr.auth.models import SystemActor, User
from trialmgr.errors import Invalid
from trialmgr.extensions import db

ACCEPTED = [
    "violet-tractor-harbour-47",
    "correct-horse-battery",
    "long-enough-password",
    "Meine Katze heißt Mimi",
    "x" * 3 + "-pineapple-orbit-17",
    "when the moon rises over the harbour the old fishermen sing of storms and of the "
    "sea",  # longer than zxcvbn reads (72)
    "q7#Lm" * 51,  # 255 characters
]

REFUSED = [
    # (password, a piece of the message the user reads)
    ("short-pass1", "Use at least 12 characters."),
    ("p" + "w-" * 200, "Use at most 256 characters."),
    ("password1234", "easy to guess"),
    ("qwertyuiop123", "easy to guess"),
    ("Password1234!", "easy to guess"),
    ("iloveyou12345", "easy to guess"),
    ("abcdefghijkl", "easy to guess"),
    ("password" * 30, "easy to guess"),
    ("aaaaaaaaaaaaaaaa", "easy to guess"),
    ("123456789012", "easy to guess"),
    ("maria.rossi-is-here", "Do not use your name or e-mail address in your password."),
    ("the-rossi-family-garden", "Do not use your name or e-mail address in your password."),
    ("MARIA-likes-long-walks", "Do not use your name or e-mail address in your password."),
    (
        "demo-password-2026",
        "This is the published demo password. Choose a password of your own.",
    ),
]


def _check(app, password, **kw):
    with app.app_context():
        passwords.check_password_policy(
            password, email="maria.rossi@example.org", name="Maria Rossi", **kw
        )


@pytest.mark.parametrize("password", ACCEPTED)
def test_good_passwords_are_accepted(app, password):
    _check(app, password)


@pytest.mark.parametrize(("password", "message"), REFUSED)
def test_weak_passwords_are_refused_with_a_plain_sentence(app, password, message):
    with pytest.raises(Invalid) as refused:
        _check(app, password)
    problems = refused.value.errors["password"]
    assert any(message in p for p in problems), problems
    for sentence in problems:
        assert sentence[0].isupper() and sentence.endswith("."), sentence


def test_short_names_do_not_refuse_ordinary_words(app):
    with app.app_context():
        passwords.check_password_policy(
            "canada-goose-flight-7", email="ada@example.org", name="Ada Li"
        )


def test_the_demo_seed_alone_may_use_the_demo_password(app):
    _check(app, "demo-password-2026", allow_demo_password=True)
    with pytest.raises(Invalid):  # the exemption covers that one rule, nothing else
        _check(app, "password1234", allow_demo_password=True)


def test_api_refuses_a_common_password_for_a_new_user(api):
    admin = api.as_role("admin")
    body = {"email": "p@example.org", "name": "P", "role": "admin", "password": "password1234"}
    resp = admin.post("/users", json=body)
    assert resp.status_code == 422
    assert "easy to guess" in " ".join(resp.json["errors"]["password"])


def test_api_refuses_the_demo_password_outside_the_demo(api):
    admin = api.as_role("admin")
    body = {
        "email": "p@example.org",
        "name": "P",
        "role": "admin",
        "password": "demo-password-2026",
    }
    assert admin.post("/users", json=body).status_code == 422
    reset = admin.patch(f"/users/{admin.user['id']}", json={"password": "demo-password-2026"})
    assert reset.status_code == 422


def test_api_refuses_a_password_with_the_users_name(api):
    admin = api.as_role("admin")
    body = {
        "email": "maria.rossi@example.org",
        "name": "Maria Rossi",
        "role": "coordinator",
        "password": "rossi-family-garden",
    }
    resp = admin.post("/users", json=body)
    assert resp.status_code == 422
    assert resp.json["errors"]["password"] == [
        "Do not use your name or e-mail address in your password."
    ]


def test_account_page_refuses_a_common_new_password(app, client):
    user = make_user(app, "coordinator")
    login_page(client, user["email"])
    resp = client.post(
        "/account",
        data={"action": "password", "current_password": PASSWORD, "new_password": "password1234"},
    )
    assert resp.status_code == 422
    assert "easy to guess" in resp.get_data(as_text=True)
    assert login_page(app.test_client(), user["email"]).status_code == 302  # unchanged


def test_cli_refuses_the_demo_password(app, runner):
    result = runner.invoke(
        args=[
            *("users", "create", "--email", "r@example.org", "--name", "R", "--role", "admin"),
            "--password-stdin",
        ],
        input="demo-password-2026\n",
    )
    assert result.exit_code != 0
    assert "published demo password" in result.output


def test_demo_seed_still_creates_its_accounts(app, runner):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        count = db.session.execute(sa.select(sa.func.count()).select_from(User)).scalar_one()
    assert count >= 5
    assert (
        login_page(app.test_client(), "admin@example.org", "demo-password-2026").status_code == 302
    )


def test_service_refuses_the_demo_password_unless_asked_by_the_demo(app):
    with app.app_context():
        with pytest.raises(Invalid):
            auth_services.create_user(
                SystemActor(email="system:test"),
                {
                    "email": "x@example.org",
                    "name": "X",
                    "role": "admin",
                    "password": "demo-password-2026",
                },
            )
        db.session.rollback()
