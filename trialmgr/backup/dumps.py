"""The database half of a backup, per engine: a consistent copy of the database, the
numbers of that same copy, and loading it back.

SQLite: the online backup API (`sqlite3.Connection.backup`) copies the live database page by
page into a file while writers go on; the copy is one consistent state, and its numbers are
read from the copy itself. PostgreSQL: `pg_dump -Fc` run on a snapshot exported by a
REPEATABLE READ transaction that reads the numbers first (`pg_export_snapshot()`), so the
dump and the manifest describe the same instant; `pg_restore` loads it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3

# pg_dump and pg_restore run with argument lists, never through a shell
import subprocess  # nosec B404
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from trialmgr.audit.models import GENESIS_HASH, AuditEvent
from trialmgr.reports.models import Report

SQLITE_MEMBER = "database.sqlite"
PG_MEMBER = "database.pgdump"


class DumpError(RuntimeError):
    """A database tool failed or is missing."""


@dataclass
class Numbers:
    """What a database holds at one instant: rows per table, the audit chain's length and
    head, the Alembic revision, and the report files its done reports point to."""

    tables: dict[str, int]
    audit_rows: int
    audit_head: str
    revision: str | None
    report_files: dict[str, tuple[str, int]] = field(default_factory=dict)


def read_numbers(conn: sa.Connection) -> Numbers:
    """The numbers of the database `conn` sees (in its current transaction)."""
    names = sorted(sa.inspect(conn).get_table_names())
    tables = {
        name: int(conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one())
        for name in names
    }
    head, revision, files = GENESIS_HASH, None, {}
    if AuditEvent.__tablename__ in tables:
        last = conn.execute(
            sa.select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
        ).scalar_one_or_none()
        head = last or GENESIS_HASH
    if "alembic_version" in tables:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    if Report.__tablename__ in tables:
        rows = conn.execute(
            sa.select(Report.file_path, Report.sha256, Report.size).where(
                Report.status == "done", Report.file_path.is_not(None)
            )
        )
        files = {str(path): (str(sha), int(size or 0)) for path, sha, size in rows}
    return Numbers(tables, tables.get(AuditEvent.__tablename__, 0), head, revision, files)


def holds_data(conn: sa.Connection) -> bool:
    """A database is fresh while no table but Alembic's has a row."""
    names = sa.inspect(conn).get_table_names()
    for name in names:
        if name == "alembic_version":
            continue
        if conn.execute(sa.select(sa.literal(1)).select_from(sa.table(name)).limit(1)).first():
            return True
    return False


# --- SQLite -----------------------------------------------------------------------------


def sqlite_path(url: sa.URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise DumpError("an in-memory SQLite database cannot be backed up or restored")
    return Path(url.database)


def sqlite_dump(url: sa.URL, target: Path) -> Numbers:
    """Copy the live database into `target` (online backup API) and read the copy's numbers."""
    source = sqlite3.connect(sqlite_path(url), timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    engine = sa.create_engine(f"sqlite:///{target}", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            numbers = read_numbers(conn)
    finally:
        engine.dispose()
    # no write-ahead log beside the copy: the archive holds the one file
    copy = sqlite3.connect(target)
    try:
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()
    return numbers


def sqlite_load(dump: Path, url: sa.URL) -> None:
    """Replace the database at `url` with the copy (the online backup API again, so a
    database file already open elsewhere is rewritten consistently)."""
    source = sqlite3.connect(dump)
    target = sqlite3.connect(sqlite_path(url), timeout=30)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


# --- PostgreSQL -------------------------------------------------------------------------


def _libpq(url: sa.URL) -> tuple[str, dict[str, str]]:
    """The URL as libpq takes it, and an environment carrying the password (not argv)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise DumpError(f"{name} is not installed (PostgreSQL client tools are needed)")
    return found


def _run(args: list[str], env: dict[str, str]) -> None:
    # the tool's absolute path and our own arguments, no shell
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # nosec B603
    if done.returncode != 0:
        raise DumpError(f"{Path(args[0]).name} failed: {done.stderr.strip()[-2000:]}")


@contextmanager
def _snapshot(engine: sa.Engine) -> Iterator[tuple[str, Numbers]]:
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
            yield str(snapshot), read_numbers(conn)


def pg_dump(engine: sa.Engine, target: Path) -> Numbers:
    """`pg_dump -Fc` of the database on the snapshot whose numbers are returned."""
    dsn, env = _libpq(engine.url)
    with _snapshot(engine) as (snapshot, numbers):
        _run([_tool("pg_dump"), "-Fc", f"--snapshot={snapshot}", f"--file={target}", dsn], env)
    return numbers


def pg_load(dump: Path, url: sa.URL) -> None:
    """`pg_restore` in one transaction: all of it or nothing. Objects of the dump that exist
    already (an emptied or --force'd database) are dropped first."""
    dsn, env = _libpq(url)
    args = [
        _tool("pg_restore"),
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={dsn}",
        str(dump),
    ]
    _run(args, env)
