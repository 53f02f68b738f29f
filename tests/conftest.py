"""Fixtures: a fresh, migrated database per test, on SQLite or PostgreSQL.

Each test gets its own database copied from a template that was built once by
running the migrations: SQLite copies a file, PostgreSQL uses
CREATE DATABASE ... TEMPLATE (~13 ms). Tests therefore commit for real, run
the real triggers and can open concurrent connections, and nothing leaks
between tests (tests/test_isolation.py proves it).

TEST_DATABASE_URL=postgresql+psycopg://... selects PostgreSQL; if it is set
and the server does not answer, the run fails rather than skipping.
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import ApiClient
from trialmgr import ROOT, create_app
from trialmgr.extensions import db as _db

pytest_plugins = ["tests.smtp"]  # the smtp_server fixture (a real local SMTP server)

PG_URL = os.environ.get("TEST_DATABASE_URL")
_counter = itertools.count()


def _base_config(uri: str, tmp: Path) -> dict[str, Any]:
    import runpy

    cfg = {k: v for k, v in runpy.run_path(str(ROOT / "config" / "test.py")).items() if k.isupper()}
    cfg["SQLALCHEMY_DATABASE_URI"] = uri
    if uri.startswith("postgresql"):
        # Durability of a throwaway test database does not matter; commit latency does.
        options = "-c synchronous_commit=off"
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"options": options}}
    return cfg


def _migrate(uri: str, tmp: Path) -> None:
    from flask_migrate import upgrade

    app = create_app(_base_config(uri, tmp))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        _db.engine.dispose()


class _SqliteDatabases:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.template = tmp / "template.db"
        _migrate(f"sqlite:///{self.template}", tmp)

    def new(self) -> str:
        path = self.tmp / f"t{next(_counter)}.db"
        shutil.copyfile(self.template, path)
        return f"sqlite:///{path}"

    def drop(self, uri: str) -> None:
        path = Path(uri.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        pass


class _PostgresDatabases:
    """CREATE DATABASE ... TEMPLATE costs ~0.2 s on this server (its checkpoint), so a used
    database is emptied instead (DELETE from every table with triggers off, sequences
    restarted: ~20 ms) and handed to the next test in the state the migrations left it."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.url = sa.engine.make_url(url)
        self.admin = sa.create_engine(
            self.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
        )
        try:
            with self.admin.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.OperationalError as exc:
            raise pytest.UsageError(  # noqa: B904
                f"TEST_DATABASE_URL is set but PostgreSQL does not answer: {exc}"
            )
        self.prefix = f"tm_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.template = f"{self.prefix}_tpl"
        self._sql(f'CREATE DATABASE "{self.template}"')
        _migrate(self._uri(self.template), tmp)
        self.free: list[str] = []
        self.made: list[str] = []

    def _uri(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(False)

    def _sql(self, statement: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(statement))

    def new(self) -> str:
        if self.free:
            return self._uri(self.free.pop())
        name = f"{self.prefix}_{next(_counter)}"
        self._sql(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.made.append(name)
        return self._uri(name)

    def drop(self, uri: str) -> None:
        from trialmgr.db import Base

        tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
        name = sa.engine.make_url(uri).database or ""
        engine = sa.create_engine(uri, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            triggers = conn.execute(
                sa.text("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'audit_event_no_%'")
            ).scalar_one()
        if triggers != 2:  # a tampering test dropped them: this database is spoilt
            engine.dispose()
            self._sql(f'DROP DATABASE "{name}" WITH (FORCE)')
            self.made.remove(name)
            return
        with engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))  # no triggers
            for table in tables:
                conn.execute(sa.text(f'DELETE FROM "{table}"'))
            sequences = conn.execute(
                sa.text("SELECT sequence_name FROM information_schema.sequences")
            ).scalars()
            for seq in list(sequences):
                conn.execute(sa.text(f'ALTER SEQUENCE "{seq}" RESTART WITH 1'))
        engine.dispose()
        self.free.append(name)

    def close(self) -> None:
        for name in [*self.made, self.template]:
            self._sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("db")
    dbs = _PostgresDatabases(PG_URL, tmp) if PG_URL else _SqliteDatabases(tmp)
    yield dbs
    dbs.close()


@pytest.fixture()
def app_factory(databases: Any, tmp_path: Path) -> Iterator[Any]:
    """Build an app on a fresh database; extra config may be given."""
    made: list[tuple[Flask, str]] = []

    def make(**overrides: Any) -> Flask:
        uri = databases.new()
        cfg = _base_config(uri, tmp_path)
        cfg.update(overrides)
        os.environ["TRIALMGR_INSTANCE"] = str(tmp_path / f"instance{len(made)}")
        application = create_app(cfg)
        made.append((application, uri))
        return application

    yield make
    for application, uri in made:
        with application.app_context():
            _db.session.remove()
            _db.engine.dispose()
        databases.drop(uri)
    os.environ.pop("TRIALMGR_INSTANCE", None)


@pytest.fixture()
def app(app_factory: Any) -> Flask:
    return app_factory()  # type: ignore[no-any-return]


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture()
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


@pytest.fixture()
def api(app: Flask) -> ApiClient:
    """An API client; `api.as_role("admin")` returns one signed in with a new user."""
    return ApiClient(app)


@pytest.fixture()
def is_postgres() -> bool:
    return bool(PG_URL)
