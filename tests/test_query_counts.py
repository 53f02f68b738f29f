"""Lists load what they show in a fixed number of queries, whatever the number of rows
(no N+1 lazy loads in the API's out-schemas)."""

import contextlib

import sqlalchemy as sa

from tests.builders import days_ago, dose, eligible_screening, enrol, world
from trialmgr.extensions import db

PATHS = ("/visits/due", "/screenings", "/subjects")


@contextlib.contextmanager
def counted(app):
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def _counts(app, client):
    found = {}
    for path in PATHS:
        with counted(app) as statements:
            resp = client.get(path)
            assert resp.status_code == 200, resp.json
        found[path] = len(statements)
    return found


def test_lists_do_not_grow_with_their_rows(app, api):
    w = world(api, stagger_days=0, capacities=(8, 3, 3))
    coord = w["coord"]
    dose(coord, enrol(coord, w["trial"], w["site"]), days_ago(100))
    few = _counts(app, coord)
    for n in range(1, 6):
        dose(coord, enrol(coord, w["trial"], w["site"]), days_ago(100 - n))
        eligible_screening(coord, w["trial"], w["site"])
    assert _counts(app, coord) == few
