"""SQLite writers queue on `<database>-writelock` (trialmgr/writelock.py) before BEGIN
IMMEDIATE, so a waiting writer begins as soon as the other commits instead of sleeping in
SQLite's busy handler. These tests use their own SQLite file whichever database the suite
runs on: the lock belongs to the SQLite engine, not to the app's database."""

import itertools
import json
import subprocess
import sys
import time

import sqlalchemy as sa

from trialmgr import ROOT, writelock
from trialmgr.db import sqlite_begin_immediate

# Try the lock file from another process: exit 0 if it was free.
_TRY_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    sys.exit(3)
"""

# A writer process: `n` write transactions through SQLAlchemy (the app's engine events),
# each holding the write lock for `hold` seconds. SQLite's busy handler is switched off
# (busy_timeout 0): a writer that met another's lock in BEGIN IMMEDIATE would fail at once
# with "database is locked", so only the file lock can make the writers wait for each other.
_WRITER = """
import os, sys, time
import sqlalchemy as sa
import trialmgr.db  # the engine events: the write lock, BEGIN IMMEDIATE
url, n, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
engine = sa.create_engine(url)

@sa.event.listens_for(engine, "connect")
def no_busy_handler(dbapi_connection, record):
    dbapi_connection.execute("PRAGMA busy_timeout=0")

for _ in range(n):
    with engine.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 0
        start = time.time()
        time.sleep(hold)
        conn.execute(
            sa.text("INSERT INTO spans (pid, start, stop) VALUES (:p, :a, :b)"),
            {"p": os.getpid(), "a": start, "b": time.time()},
        )
print("done")
"""


def _engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/w.db")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE spans (pid INTEGER, start REAL, stop REAL)"))
    return engine


def _lock_is_free(tmp_path) -> bool:
    done = subprocess.run(
        [sys.executable, "-c", _TRY_LOCK, f"{tmp_path}/w.db-writelock"], check=False
    )
    assert done.returncode in (0, 3)
    return done.returncode == 0


def test_a_writer_holds_the_lock_file_until_its_connection_returns_to_the_pool(tmp_path):
    engine = _engine(tmp_path)
    with engine.connect() as conn:
        conn.execute(sa.text("INSERT INTO spans VALUES (1, 0, 0)"))  # BEGIN IMMEDIATE
        assert not _lock_is_free(tmp_path)
        conn.commit()
    assert _lock_is_free(tmp_path)
    # a write that is not committed lets go of it too (rolled back as the connection returns)
    with engine.connect() as conn:
        conn.execute(sa.text("INSERT INTO spans VALUES (1, 0, 0)"))
        assert not _lock_is_free(tmp_path)
    assert _lock_is_free(tmp_path)
    engine.dispose()


def test_readers_do_not_take_the_lock(tmp_path):
    engine = _engine(tmp_path)
    token = sqlite_begin_immediate.set(False)  # as a GET request does
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM spans")).scalar_one() == 0
            assert _lock_is_free(tmp_path)
    finally:
        sqlite_begin_immediate.reset(token)
    engine.dispose()


def test_writers_of_two_processes_take_turns_on_the_lock_without_database_is_locked(tmp_path):
    engine = _engine(tmp_path)
    url = engine.url.render_as_string(False)
    n, hold = 8, 0.03
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, url, str(n), str(hold)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in writers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        assert "database is locked" not in err
        assert out.strip() == "done"
    with engine.connect() as conn:
        spans = conn.execute(sa.text("SELECT pid, start, stop FROM spans ORDER BY start")).all()
    engine.dispose()
    assert len(spans) == 2 * n
    assert len({pid for pid, _, _ in spans}) == 2
    # one writer at a time: each span ends before the next begins
    for earlier, later in itertools.pairwise(spans):
        assert earlier.stop <= later.start, json.dumps([list(earlier), list(later)])


def test_a_writer_that_waited_the_busy_timeout_goes_on_to_sqlites_own_lock(tmp_path, monkeypatch):
    """The file lock is never needed for correctness: held too long by another (here a
    process that holds the file but not the database), a writer proceeds without it."""
    engine = _engine(tmp_path)
    monkeypatch.setattr(writelock, "BUSY_TIMEOUT_SECONDS", 0.2)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(30)\n",
            f"{tmp_path}/w.db-writelock",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with engine.begin() as conn:  # SQLite's lock is free: the write goes through
            conn.execute(sa.text("INSERT INTO spans VALUES (1, 0, 0)"))
        assert 0.2 <= time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM spans")).scalar_one() == 1
    engine.dispose()
