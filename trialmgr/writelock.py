"""SQLite: writers queue on a file lock, not in SQLite's busy handler.

A BEGIN IMMEDIATE that meets another writer's lock waits in SQLite's busy handler, which
sleeps in growing steps (up to 100 ms) and does not wake when the lock comes free: with two
web workers writing, the waiting one spends most of its wait asleep after the other has
committed, and eight clients wrote fewer events per second than one (decision 0013).

So a writer first takes an exclusive `flock` on `<database>-writelock`, then begins; it lets
go when its connection returns to the pool (after COMMIT or ROLLBACK). Waiting writers try
the lock in short steps, so the next one begins within a fraction of a millisecond of the
release, in whichever process or thread it runs (each connection opens the lock file
itself, and flock excludes every other open file, in this process or another).

SQLite's own lock stays the authority: a writer that does not take the file lock (the
sqlite3 shell, a backup) is still excluded by it, and a writer that has waited the busy
timeout for the file lock goes on to BEGIN IMMEDIATE and SQLite's busy handler, as every
writer did before. The lock is never needed for correctness, only for prompt hand-over.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import Pool

log = logging.getLogger(__name__)

# How long SQLite's busy handler waits (PRAGMA busy_timeout), and the file lock as long.
BUSY_TIMEOUT_SECONDS = 15.0
# Between two tries of a held lock.
STEP_SECONDS = 0.0005

_FD = "trialmgr_writelock_fd"
_HELD = "trialmgr_writelock_held"


def lock_path(database: str | None) -> str | None:
    """The lock file beside a database file; None for an in-memory or URI database."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}-writelock"


def take(info: dict[str, Any], database: str | None, timeout: float | None = None) -> bool:
    """Take the write lock for the connection whose pool record `info` is given (held until
    it returns to the pool). False if it was not taken within `timeout` (default: the busy
    timeout): the writer goes on without it, to SQLite's busy handler."""
    if info.get(_HELD):
        return True
    fd = info.get(_FD)
    if fd is None:
        path = lock_path(database)
        if path is None:
            return False
        fd = info[_FD] = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    wait = BUSY_TIMEOUT_SECONDS if timeout is None else timeout
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() >= deadline:
                log.warning("write lock %s not free after %.1f s", lock_path(database), wait)
                return False
            time.sleep(STEP_SECONDS)
            continue
        info[_HELD] = True
        return True


def release(info: dict[str, Any]) -> None:
    if info.pop(_HELD, False):
        fcntl.flock(info[_FD], fcntl.LOCK_UN)


def _forget(info: dict[str, Any]) -> None:
    """The connection is closed: closing the file lets go of a lock still held."""
    info.pop(_HELD, None)
    fd = info.pop(_FD, None)
    if fd is not None:
        os.close(fd)


@event.listens_for(Pool, "checkin")
def _on_checkin(dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        release(record.info)


@event.listens_for(Pool, "close")
def _on_close(dbapi_connection: Any, record: Any) -> None:
    _forget(record.info)


@event.listens_for(Pool, "invalidate")
def _on_invalidate(dbapi_connection: Any, record: Any, exception: Any) -> None:
    _forget(record.info)


@event.listens_for(Pool, "detach")
def _on_detach(dbapi_connection: Any, record: Any) -> None:
    _forget(record.info)
