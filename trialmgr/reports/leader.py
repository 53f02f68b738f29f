"""The scheduler's leader lock: one active scheduler at a time.

PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) held on a connection of
the process's own for as long as the process lives; the server releases it when the process
or its connection dies. SQLite (one machine): a lease row that its holder renews; another
takes it over once it has expired.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from flask import Flask

from trialmgr.clock import utcnow
from trialmgr.db import sqlite_begin_immediate
from trialmgr.extensions import db
from trialmgr.reports.models import SchedulerLease

log = logging.getLogger("trialmgr.scheduler")

LOCK_NAME = "report-scheduler"
# pg_try_advisory_lock key: any constant unused elsewhere (the audit chain uses 0x7A0D17).
ADVISORY_KEY = 0x7A0D18


class LeaderLock(Protocol):
    def acquire(self) -> bool: ...

    def renew(self) -> bool: ...

    def release(self) -> None: ...


class AdvisoryLock:
    """PostgreSQL: a session-level advisory lock held on a dedicated connection."""

    def __init__(self, url: sa.URL) -> None:
        self.engine = sa.create_engine(
            url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT"
        )
        self.conn: sa.Connection | None = None

    def acquire(self) -> bool:
        if self.conn is not None:
            return True
        conn = self.engine.connect()
        got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY})
        if got.scalar_one():
            self.conn = conn
            return True
        conn.close()
        return False

    def renew(self) -> bool:
        """Still held while the connection lives; a lost connection lost the lock."""
        if self.conn is None:
            return False
        try:
            self.conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.DBAPIError:
            log.warning("the scheduler lock's connection was lost")
            self._close()
            return False

    def release(self) -> None:
        if self.conn is not None:
            # a connection already gone took the lock with it
            with contextlib.suppress(sa.exc.DBAPIError):
                self.conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
            self._close()
        self.engine.dispose()

    def _close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(sa.exc.DBAPIError):
                self.conn.close()
            self.conn = None


class LeaseLock:
    """SQLite: a lease row, renewed by its holder, taken over by another once expired."""

    def __init__(self, app: Flask, holder: str, lease: timedelta) -> None:
        self.app, self.holder, self.lease = app, holder, lease

    def _write(self) -> Any:
        return _WriteTransaction(self.app)

    def acquire(self) -> bool:
        with self._write():
            now = utcnow()
            row = db.session.get(SchedulerLease, LOCK_NAME, populate_existing=True)
            if row is None:
                db.session.add(
                    SchedulerLease(
                        name=LOCK_NAME,
                        holder=self.holder,
                        acquired_at=now,
                        expires_at=now + self.lease,
                    )
                )
                return True
            if row.holder == self.holder or row.expires_at <= now:
                if row.holder != self.holder:
                    log.info(
                        "taking over the lease of %s (expired %s)",
                        row.holder,
                        row.expires_at.isoformat(),
                    )
                    row.acquired_at = now
                row.holder, row.expires_at = self.holder, now + self.lease
                return True
            return False

    def renew(self) -> bool:
        with self._write():
            now = utcnow()
            done = db.session.execute(
                sa.update(SchedulerLease)
                .where(SchedulerLease.name == LOCK_NAME, SchedulerLease.holder == self.holder)
                .values(expires_at=now + self.lease)
            )
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def release(self) -> None:
        with self._write():
            db.session.execute(
                sa.delete(SchedulerLease).where(
                    SchedulerLease.name == LOCK_NAME, SchedulerLease.holder == self.holder
                )
            )


class _WriteTransaction:
    """An app context with one short write transaction (SQLite BEGIN IMMEDIATE), committed
    at the end (rolled back on error)."""

    def __init__(self, app: Flask) -> None:
        self.context = app.app_context()

    def __enter__(self) -> None:
        self.context.push()
        self.token = sqlite_begin_immediate.set(True)

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        try:
            if kind is None:
                db.session.commit()
            else:
                db.session.rollback()
        finally:
            db.session.remove()
            sqlite_begin_immediate.reset(self.token)
            self.context.pop()


def make_lock(app: Flask, holder: str) -> LeaderLock:
    with app.app_context():
        url = db.engine.url
    if url.get_backend_name() == "postgresql":
        return AdvisoryLock(url)
    return LeaseLock(app, holder, timedelta(seconds=app.config["SCHEDULER_LEASE_SECONDS"]))
