"""Fixtures: one app per test session, a clean migrated database and instance folder per test,
on SQLite or PostgreSQL.

The migrations run once per session (per pytest-xdist worker) into a template database, and
the app is built once on a copy of it. After each test the copy goes back to the template's
state: SQLite restores the file; PostgreSQL empties every table (triggers off, identities
restarted) and re-creates the database from the template only when the test changed the
schema (the audit tests drop the append-only triggers). Tests therefore commit for real, run
the real triggers and can open concurrent connections, and nothing leaks between tests
(tests/test_isolation.py proves it).

`app_factory(**overrides)` builds another app, on its own fresh database, for the rare test
that needs other settings (CSRF or rate limits on, PRODUCTION...). Building an app rebinds
the module-level extension objects (flask-smorest's Api, the Limiter) to it, so after such a
test the shared app is built again before the next test uses it.

TEST_DATABASE_URL=postgresql+psycopg://... selects PostgreSQL; if it is set and the server
does not answer, the run fails rather than skipping.
"""

from __future__ import annotations

import functools
import itertools
import os
import runpy
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import ApiClient
from trialmgr import ROOT, create_app
from trialmgr.db import Base
from trialmgr.extensions import api as _smorest_api
from trialmgr.extensions import db as _db

pytest_plugins = ["tests.smtp"]  # the smtp_server fixture (a real local SMTP server)

PG_URL = os.environ.get("TEST_DATABASE_URL")


@functools.cache
def _test_settings() -> dict[str, Any]:
    settings = runpy.run_path(str(ROOT / "config" / "test.py"))
    return {k: v for k, v in settings.items() if k.isupper()}


def _base_config(uri: str) -> dict[str, Any]:
    cfg = dict(_test_settings())
    cfg["SQLALCHEMY_DATABASE_URI"] = uri
    if uri.startswith("postgresql"):
        # Durability of a throwaway test database does not matter; commit latency does.
        options = "-c synchronous_commit=off"
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"options": options}}
    return cfg


def _build_app(cfg: dict[str, Any], instance: Path) -> Flask:
    """create_app() with its instance folder under the test's tmp dir, never the repo's."""
    previous = os.environ.get("TRIALMGR_INSTANCE")
    os.environ["TRIALMGR_INSTANCE"] = str(instance)
    try:
        return create_app(cfg)
    finally:
        if previous is None:
            os.environ.pop("TRIALMGR_INSTANCE", None)
        else:
            os.environ["TRIALMGR_INSTANCE"] = previous


def _migrate(uri: str, tmp: Path) -> None:
    from flask_migrate import upgrade

    app = _build_app(_base_config(uri), tmp / "migrate-instance")
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        _db.engine.dispose()


def _close_connections(app: Flask) -> None:
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


class _SqliteDatabases:
    """Database files copied from a migrated template file."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.template = tmp / "template.db"
        self._names = itertools.count()
        _migrate(f"sqlite:///{self.template}", tmp)
        # closing the last connection folded the WAL into the file, which alone is copied
        assert not Path(f"{self.template}-wal").exists()

    def new(self) -> str:
        path = self.tmp / f"t{next(self._names)}.db"
        shutil.copyfile(self.template, path)
        return f"sqlite:///{path}"

    def reset(self, app: Flask, uri: str) -> None:
        """Put the template's file back; the WAL of the used file must not survive it."""
        _close_connections(app)
        path = Path(uri.removeprefix("sqlite:///"))
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        fresh = path.with_suffix(".fresh")
        shutil.copyfile(self.template, fresh)
        os.replace(fresh, path)

    def release(self, uri: str) -> None:
        path = uri.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        pass


class _PostgresDatabases:
    """Databases created from a migrated template (CREATE DATABASE ... TEMPLATE costs ~0.2 s on
    this server, its checkpoint), so a used one is emptied instead: every table deleted from
    with triggers off and every sequence restarted, in one round trip (a few ms; TRUNCATE of
    the 20 tables takes longer). Only a database whose schema a test changed is dropped and
    created again from the template."""

    # Tables, columns, constraints, functions and triggers (with their enabled state) of the
    # public schema: any change to them means the database is no longer the template.
    SCHEMA_SIGNATURE = sa.text(
        """
        SELECT md5(string_agg(item, ',' ORDER BY item)) FROM (
          SELECT 'r:' || c.relname || ':' || c.relkind::text FROM pg_class c
            WHERE c.relnamespace = 'public'::regnamespace
          UNION ALL
          SELECT 'a:' || c.relname || '.' || a.attname || ':' || format_type(a.atttypid, NULL)
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0
              AND NOT a.attisdropped
          UNION ALL
          SELECT 'c:' || conname FROM pg_constraint
            WHERE connamespace = 'public'::regnamespace
          UNION ALL
          SELECT 'f:' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
          UNION ALL
          SELECT 't:' || tgname || ':' || tgenabled::text FROM pg_trigger WHERE NOT tgisinternal
        ) AS schema_items (item)
        """
    )

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
        # The pid keeps the names of concurrent runs and of xdist workers apart.
        self.prefix = f"tm_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.template = f"{self.prefix}_tpl"
        self._names = itertools.count()
        self._sql(f'CREATE DATABASE "{self.template}"')
        try:
            _migrate(self._uri(self.template), tmp)
            engine = sa.create_engine(self._uri(self.template), poolclass=sa.pool.NullPool)
            with engine.connect() as conn:
                self.signature = conn.execute(self.SCHEMA_SIGNATURE).scalar_one()
            engine.dispose()
        except BaseException:  # no session teardown will drop it
            self._sql(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
            raise
        self.empty_all = self._empty_all_sql()
        self.free: list[str] = []
        self.made: list[str] = []

    def _uri(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(False)

    def _sql(self, statement: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(statement))

    @staticmethod
    def _empty_all_sql() -> str:
        statements = [
            "SET LOCAL lock_timeout = '10s'",
            # no triggers: the append-only audit table is emptied too, foreign keys unchecked
            "SET LOCAL session_replication_role = replica",
            *(f'DELETE FROM "{table.name}"' for table in Base.metadata.sorted_tables),
            "SELECT setval(c.oid, 1, false) FROM pg_class c"
            " WHERE c.relkind = 'S' AND c.relnamespace = 'public'::regnamespace",
        ]
        return ";\n".join(statements)

    def new(self) -> str:
        if self.free:
            return self._uri(self.free.pop())
        name = f"{self.prefix}_{next(self._names)}"
        self._sql(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.made.append(name)
        return self._uri(name)

    def _empty(self, engine: sa.Engine, name: str) -> None:
        with engine.begin() as conn:
            spoilt = conn.execute(self.SCHEMA_SIGNATURE).scalar_one() != self.signature
            if not spoilt:
                conn.exec_driver_sql(self.empty_all)
        if spoilt:
            engine.dispose()
            self._sql(f'DROP DATABASE "{name}" WITH (FORCE)')
            self._sql(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')

    def reset(self, app: Flask, uri: str) -> None:
        with app.app_context():
            _db.session.remove()
            self._empty(_db.engine, sa.engine.make_url(uri).database or "")

    def release(self, uri: str) -> None:
        engine = sa.create_engine(uri, poolclass=sa.pool.NullPool)
        self._empty(engine, sa.engine.make_url(uri).database or "")
        engine.dispose()
        self.free.append(sa.engine.make_url(uri).database or "")

    def close(self) -> None:
        for name in [*self.made, self.template]:
            self._sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()


class _SharedApp:
    """The session's app and its database."""

    def __init__(self, databases: Any, tmp: Path) -> None:
        self.databases = databases
        self.tmp = tmp
        self._instances = itertools.count()
        self.uri = databases.new()
        self.app = self._build()

    def _build(self) -> Flask:
        app = _build_app(_base_config(self.uri), self.tmp / "shared-instance")
        self.config = dict(app.config)
        return app

    def checkout(self) -> Flask:
        # Another create_app() (app_factory, a test of the factory itself) took over the
        # extension objects; build ours again so that none of its settings apply here.
        if _smorest_api._app is not self.app:
            _close_connections(self.app)
            self.app = self._build()
        # A folder of its own, made only if the test writes there (as the app makes its
        # subfolders): hundreds of empty folders cost seconds to make and clean up.
        self.app.instance_path = str(self.tmp / "instances" / str(next(self._instances)))
        return self.app

    def reset(self) -> None:
        self.databases.reset(self.app, self.uri)
        self.app.config.clear()
        self.app.config.update(self.config)

    def close(self) -> None:
        _close_connections(self.app)


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("db")
    dbs = _PostgresDatabases(PG_URL, tmp) if PG_URL else _SqliteDatabases(tmp)
    yield dbs
    dbs.close()


@pytest.fixture(scope="session")
def _shared_app(databases: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_SharedApp]:
    shared = _SharedApp(databases, tmp_path_factory.mktemp("app"))
    yield shared
    shared.close()


@pytest.fixture()
def app(_shared_app: _SharedApp) -> Iterator[Flask]:
    """The session's app, on a database in the migrations' state, with its own instance folder."""
    yield _shared_app.checkout()
    _shared_app.reset()


@pytest.fixture()
def app_factory(databases: Any, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build a separate app on a fresh database; extra config may be given."""
    apps: list[Flask] = []
    uris: list[str] = []

    def make(**overrides: Any) -> Flask:
        uris.append(databases.new())
        cfg = _base_config(uris[-1])
        cfg.update(overrides)
        application = _build_app(cfg, tmp_path / f"instance{len(uris)}")
        apps.append(application)
        return application

    yield make
    for application in apps:
        _close_connections(application)
    for uri in uris:
        databases.release(uri)


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
