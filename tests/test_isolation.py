"""Each test starts from an empty, migrated database: nothing leaks between tests."""

import sqlalchemy as sa

from tests.factories import make_user
from trialmgr.auth.models import User
from trialmgr.extensions import db


def _count_users(app):
    with app.app_context():
        return db.session.execute(sa.select(sa.func.count()).select_from(User)).scalar_one()


def test_first_test_commits_a_user(app):
    assert _count_users(app) == 0
    make_user(app, "admin", email="leak-check@example.org")
    assert _count_users(app) == 1


def test_second_test_does_not_see_it(app):
    assert _count_users(app) == 0


def test_two_apps_in_one_test_have_separate_databases(app_factory):
    first, second = app_factory(), app_factory()
    make_user(first, "admin")
    assert _count_users(first) == 1
    assert _count_users(second) == 0
