"""Start-up (issue 16, target 7): building the app, `flask --help` and a worker's first
request load no library only one command or one export uses. Flask-Migrate (and alembic,
mako, pygments with it) loads for `flask db`, APScheduler's schedulers for `flask scheduler`,
odmlib and lxml for the ODM export; the commands still work."""

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from trialmgr import ROOT
from trialmgr.db import Base
from trialmgr.extensions import db

# Loaded only by the command or export that needs them.
LAZY = ("alembic", "flask_migrate", "mako", "apscheduler.schedulers", "odmlib", "lxml")

_LOADED = (
    "import sys; lazy = {lazy!r}; "
    "print('LOADED=' + ','.join(sorted(m for m in sys.modules "
    "if any(m == n or m.startswith(n + '.') for n in lazy))))"
)


def _probe(tmp_path: Path, code: str) -> tuple[str, str]:
    """Run `code` in a fresh interpreter; (its output, the lazy modules it had loaded)."""
    env = {
        **os.environ,
        "TRIALMGR_INSTANCE": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path}/probe.db",
        "PYTHONPATH": str(ROOT),
    }
    out = subprocess.run(
        [sys.executable, "-c", code + "\n" + _LOADED.format(lazy=LAZY)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    loaded = out.rsplit("LOADED=", 1)[1].strip()
    return out, loaded


def test_building_the_app_and_a_first_request_load_no_migration_scheduler_or_odm_library(
    tmp_path,
):
    _, loaded = _probe(
        tmp_path,
        "from wsgi import app\nassert app.test_client().get('/health').status_code == 200",
    )
    assert loaded == ""
    # the probe sees them when they are loaded
    _, loaded = _probe(tmp_path, "import flask_migrate, apscheduler.schedulers.base, odmlib")
    assert {"alembic", "flask_migrate", "apscheduler.schedulers", "odmlib"} <= set(
        loaded.split(",")
    )


def test_flask_help_lists_db_and_scheduler_without_loading_them(tmp_path):
    out, loaded = _probe(
        tmp_path,
        "import sys\nfrom flask.cli import main\n"
        "sys.argv = ['flask', '--app', 'wsgi', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass",
    )
    assert "db         Perform database migrations." in out
    assert "scheduler  The report scheduler process." in out
    assert loaded == ""


def test_the_db_and_scheduler_groups_resolve_their_commands_when_invoked(app, runner):
    result = runner.invoke(args=["db", "--help"])
    assert result.exit_code == 0, result.output
    assert "upgrade" in result.output and "downgrade" in result.output
    result = runner.invoke(args=["scheduler", "run", "--help"])
    assert result.exit_code == 0, result.output
    assert "--once" in result.output


def test_flask_db_upgrade_migrates_from_the_command_line(app_factory):
    """`flask db downgrade` to before the dashboard indexes (0016), then `flask db upgrade`:
    the indexes come back and the schema is the models' again."""
    fresh = app_factory()
    runner = fresh.test_cli_runner()
    dashboard_indexes = {"ix_adverse_event_grade_chart", "ix_lab_result_dashboard"}

    def indexes() -> set[str]:
        with fresh.app_context(), db.engine.connect() as conn:
            inspector = sa.inspect(conn)
            return {
                ix["name"]
                for table in ("adverse_event", "lab_result")
                for ix in inspector.get_indexes(table)
            }

    def version() -> str:
        with fresh.app_context():
            db.session.remove()
            return db.session.execute(
                sa.text("SELECT version_num FROM alembic_version")
            ).scalar_one()

    with fresh.app_context():
        config = fresh.extensions["migrate"].migrate.get_config()
        head = ScriptDirectory.from_config(config).get_current_head()
    result = runner.invoke(args=["db", "downgrade", "0015"])
    assert result.exit_code == 0, result.output
    assert version() == "0015"
    assert not dashboard_indexes & indexes()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert version() == head
    assert dashboard_indexes <= indexes()
    with fresh.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def _sample_values(rule) -> dict[str, object]:
    """A value for each of the rule's arguments, of the type its converter takes."""
    from werkzeug.routing import IntegerConverter

    return {
        name: 7 if isinstance(rule._converters.get(name), IntegerConverter) else "x y"
        for name in rule.arguments
    }


def test_every_rule_builds_the_url_werkzeugs_own_rule_builds(app):
    """The app's rules compile their URL builders on first use (LazyBuildRule): every one
    builds what werkzeug's Rule builds, with and without query arguments, built twice."""
    from werkzeug.routing import Map, Rule

    from trialmgr.lifecycle import LazyBuildRule

    rules = list(app.url_map.iter_rules())
    assert len(rules) > 200 and all(isinstance(r, LazyBuildRule) for r in rules)
    for lazy in rules:
        plain = Rule(lazy.rule, endpoint=lazy.endpoint, methods=lazy.methods)
        Map([plain], converters=app.url_map.converters)
        values = _sample_values(lazy)
        for extra in ({}, {"page": 2, "q": "é&"}):
            expected = plain.build({**values, **extra})
            assert lazy.build({**values, **extra}) == expected
            assert lazy.build({**values, **extra}) == expected  # the compiled builder


def test_url_for_builds_site_urls_after_the_app_is_built(app):
    from flask import url_for

    with app.test_request_context():
        assert url_for("static", filename="app.css") == "/static/app.css"
        assert url_for("static", filename="app.css", v=3) == "/static/app.css?v=3"


def test_the_entry_point_builds_the_app_with_collection_paused_and_resumes_it(tmp_path):
    """wsgi.py (gunicorn's and the flask command's entry): the objects made while the app is
    built are frozen out of later collections, and collection is on again afterwards."""
    out, _ = _probe(
        tmp_path,
        "import gc, wsgi; print('ENABLED', gc.isenabled()); print('FROZEN', gc.get_freeze_count())",
    )
    assert "ENABLED True" in out
    frozen = int(out.split("FROZEN ")[1].split()[0])
    assert frozen > 50_000  # the app's modules, classes, mappers, schemas and routes
