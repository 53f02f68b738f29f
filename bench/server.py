"""The database under test and the gunicorn servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class Database:
    """A fresh SQLite file, or a fresh PostgreSQL database dropped afterwards."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind, self.tmp = kind, tmp
        if kind == "sqlite":
            self.url = f"sqlite:///{tmp}/bench.db"
        else:
            self.name = f"bench_{uuid.uuid4().hex[:8]}"
            self.admin = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
            self.url = sa.engine.make_url(PG_SERVER).set(database=self.name).render_as_string(False)

    def __enter__(self) -> Database:
        if self.kind != "sqlite":
            with self.admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.kind != "sqlite":
            with self.admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            self.admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(app: str, database_url: str, instance: Path, workers: int = 2) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789",
        "TRIALMGR_INSTANCE": str(instance),
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--timeout",
            "120",
            "--log-level",
            "warning",
            app,
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180  # a busy shared machine starts workers slowly
    probe = "/health" if app == "wsgi:app" else "/"
    while True:
        try:
            urllib.request.urlopen(f"{base}{probe}", timeout=2)
            break
        except urllib.error.HTTPError:
            break  # answering (the baseline has no / route)
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.terminate()  # no orphaned workers when it starts too slowly
                proc.wait(timeout=30)
                raise RuntimeError(f"{app} did not start") from None
            time.sleep(0.2)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
