"""Declarative base, column types and mixins shared by every domain's models, and the id
filter field every domain's list queries share (the databases' integer bound is here)."""

from __future__ import annotations

import contextvars
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from marshmallow import fields, validate
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry

from trialmgr import writelock
from trialmgr.clock import utcnow

# The largest id (and integer column value) both databases store as INTEGER.
INT_MAX = 2**31 - 1


class IdFilter(fields.Integer):
    """An id given to filter a list (`?trial_id=`, `?site_id=`, ...): a whole number from 1
    to INT_MAX. Anything else is refused while the request is read (422), never passed to
    the database: a number beyond its integer fails there as an overflow (and a streamed CSV
    runs its query only after the response has started), and no id is 0 or negative, so such
    a filter would silently match nothing."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            validate=validate.Range(
                min=1, max=INT_MAX, error="Not an id: ids are whole numbers from {min} to {max}."
            ),
            **kwargs,
        )


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite keeps no zone, so naive values coming back are UTC by construction;
    values going in must be aware and are normalised to UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; trialmgr stores aware UTC timestamps")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    registry = registry(
        metadata=sa.MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )


def one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK constraint's text: the column holds one of the given codes."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class IdMixin:
    id: Mapped[int] = mapped_column(primary_key=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- SQLite: foreign keys, WAL, and write transactions that lock first -------------
#
# pysqlite's own transaction handling is switched off so that we emit BEGIN
# ourselves. Requests that may write (and CLI commands) begin IMMEDIATE: the
# write lock is taken before the first read, so a check-then-insert (cohort
# capacity, audit chain head) can never act on a stale snapshot. (A request's
# bearer token is read first, in a read transaction of its own that ends before the
# write transaction begins: lifecycle.reading_before_writing.) Reads begin
# DEFERRED and run concurrently under WAL. Writers queue for BEGIN IMMEDIATE on a
# file lock, which hands over at once, rather than in SQLite's sleeping busy handler
# (trialmgr/writelock.py).

sqlite_begin_immediate: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sqlite_begin_immediate", default=True
)


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(writelock.BUSY_TIMEOUT_SECONDS * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


# --- PostgreSQL: streamed reads are read to the end --------------------------------
#
# Listings, exports and reports stream their rows through server-side cursors (yield_per).
# For a cursor the planner assumes by default that a tenth of the rows will be fetched
# (cursor_tuple_fraction 0.1) and picks fast-start plans: for the DSMB report's lab listing
# (49,000 of 200,000 draws, ordered by subject code) a nested walk of the subject index
# that took 48 s where the sorted plan a plain query gets takes 0.6 s. Every cursor here is
# read to its end, so each is planned for all of its rows.


@event.listens_for(Engine, "connect")
def _postgresql_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    if type(dbapi_connection).__module__.startswith("psycopg"):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET cursor_tuple_fraction = 1.0")
        dbapi_connection.commit()


@event.listens_for(Engine, "begin")
def _sqlite_on_begin(conn: sa.Connection) -> None:
    if conn.dialect.name == "sqlite":
        if sqlite_begin_immediate.get():
            writelock.take(conn.connection.info, conn.engine.url.database)
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def lock_rows(session: Any, model: type, *ids: int) -> None:
    """Serialise a check-then-write on the given parent rows.

    PostgreSQL: SELECT ... FOR UPDATE on the rows. SQLite: the transaction
    already holds the database write lock (BEGIN IMMEDIATE), nothing to add.
    Lock parents in one order everywhere: trial, then cohort, then the rest.
    """
    if session.get_bind().dialect.name == "sqlite":
        return
    # populate_existing: rows already loaded are re-read as locked, so the check that
    # follows sees what committed transactions wrote (call before changing them).
    session.execute(
        sa.select(model)
        .where(model.id.in_(ids))  # type: ignore[attr-defined]
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def paginate(session: Any, query: sa.Select[Any], pagination: Any) -> list[Any]:
    """Apply flask-smorest pagination parameters to a select and count the total."""
    total = session.execute(sa.select(sa.func.count()).select_from(query.order_by(None).subquery()))
    pagination.item_count = total.scalar_one()
    page_query = query.limit(pagination.page_size).offset(pagination.first_item)
    return list(session.execute(page_query).scalars())


class Audited:
    """Marks a model whose every insert, update and delete lands in the audit trail.

    `__audit_redact__` fields are logged as changed without their values;
    `__audit_allow_delete__` must be set for a row to be deletable at all
    (trial data is never hard-deleted: corrections are audited edits).
    """

    __audit_redact__: frozenset[str] = frozenset()
    __audit_skip__: frozenset[str] = frozenset({"created_at", "updated_at"})
    __audit_allow_delete__: bool = False


def render_migration_type(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Alembic: write UTCDateTime as a plain timezone-aware DateTime, so that
    migrations do not import application code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def today() -> date:
    """Today's date in UTC. Not for clinical rules, which ask a site's or a user's zone
    (trialmgr.clock); for reports' generation dates and the test suite's clock."""
    return utcnow().date()
