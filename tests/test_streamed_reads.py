"""PostgreSQL plans a server-side cursor (a streamed listing, export or report section) for
all of its rows, as a plain query is planned: every such cursor here is read to its end
(trialmgr/db.py)."""

import pytest
import sqlalchemy as sa

from trialmgr.extensions import db


def test_every_pooled_connection_plans_cursors_for_all_their_rows(app, is_postgres):
    if not is_postgres:
        pytest.skip("a PostgreSQL planner setting")
    with app.app_context():
        engine = db.engine
        connections = [engine.connect() for _ in range(3)]  # new ones from the pool
        try:
            for conn in connections:
                value = conn.execute(sa.text("SHOW cursor_tuple_fraction")).scalar_one()
                assert float(value) == 1.0
        finally:
            for conn in connections:
                conn.close()
