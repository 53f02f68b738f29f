"""The migrations build exactly the schema the models describe, on this database."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from trialmgr.db import Base
from trialmgr.extensions import db


def test_no_drift_between_models_and_migrations(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_database_is_at_head(app):
    from alembic.script import ScriptDirectory
    from flask_migrate import Migrate  # noqa: F401  (configures alembic for this app)

    with app.app_context():
        config = app.extensions["migrate"].migrate.get_config()
        head = ScriptDirectory.from_config(config).get_current_head()
        current = db.session.execute(
            sa.text("SELECT version_num FROM alembic_version")
        ).scalar_one()
    assert current == head
