"""The migrations build exactly the schema the models describe, on this database."""

import re

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


# --- CHECK constraints and the migration round trip ----------------------------------

_LITERAL = re.compile(r"'((?:[^']|'')*)'")


def _check_name(table: sa.Table, constraint: sa.CheckConstraint) -> str:
    name = str(constraint.name)
    return name if name.startswith("ck_") else f"ck_{table.name}_{name}"


def check_constraint_drift(conn, metadata) -> list[str]:
    """CHECK constraints the models declare vs. those in the database, compared by name and
    by the quoted literals they allow (enumerations), which autogenerate does not compare."""
    inspector = sa.inspect(conn)
    problems = []
    for table in metadata.sorted_tables:
        in_db = {
            c["name"]: set(_LITERAL.findall(c["sqltext"]))
            for c in inspector.get_check_constraints(table.name)
        }
        for constraint in table.constraints:
            if not isinstance(constraint, sa.CheckConstraint):
                continue
            name = _check_name(table, constraint)
            wanted = set(_LITERAL.findall(str(constraint.sqltext)))
            if name not in in_db:
                problems.append(f"{name}: missing in the database")
            elif in_db[name] != wanted:
                problems.append(
                    f"{name}: database allows {sorted(in_db[name])}, model {sorted(wanted)}"
                )
    return problems


def test_check_constraints_match_the_models(app):
    with app.app_context(), db.engine.connect() as conn:
        assert check_constraint_drift(conn, Base.metadata) == []


def test_an_enumeration_value_added_without_migration_is_caught(app):
    changed = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(changed)
    trial = changed.tables["trial"]
    status = next(c for c in trial.constraints if str(c.name).endswith("status_known"))
    trial.constraints.remove(status)
    trial.append_constraint(
        sa.CheckConstraint(
            "status IN ('setup', 'open', 'paused', 'closed', 'archived')", name=status.name
        )
    )
    with app.app_context(), db.engine.connect() as conn:
        problems = check_constraint_drift(conn, changed)
    assert problems and "archived" in problems[0]


def test_upgrade_downgrade_upgrade_round_trip(app_factory):
    from flask_migrate import downgrade, upgrade

    fresh = app_factory()
    with fresh.app_context():
        downgrade(revision="base")
        with db.engine.connect() as conn:
            left = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
        assert left == set()
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            assert check_constraint_drift(conn, Base.metadata) == []
