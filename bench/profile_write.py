"""`python -m bench.profile_write [--postgres] [--profile]`: the AE write in process, on a
small synthetic trial: the SQL statements one request runs (listed), and optionally a
pyinstrument profile of 200 requests (`pip install -e '.[bench]'`). Not part of the tests."""

from __future__ import annotations

import argparse
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import data
from bench.server import Database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--grade", type=int, default=1)
    opts = parser.parse_args()
    data.SCALES["tiny"] = data.Scale(2, 40, 100, 100, 100, 100)
    with (
        tempfile.TemporaryDirectory() as tmp,
        Database("postgres" if opts.postgres else "sqlite", Path(tmp)) as database,
    ):
        from bench.cases import _token, prepare

        os.environ["TRIALMGR_INSTANCE"] = str(Path(tmp) / "instance")
        ctx = prepare(database, "tiny", Path(tmp))
        world = ctx.world
        token = _token(ctx, world.coordinator_emails[world.site_ids[0]])
        codes = [c for c in world.subject_codes if c.startswith("B000-")]
        client = ctx.app.test_client()

        def post(i: int) -> Any:
            from trialmgr.clock import utcnow

            resp = client.post(
                "/api/v1/adverse-events",
                json={
                    "subject_code": codes[i % len(codes)],
                    "term": "Headache",
                    "soc": "Nervous system disorders",
                    "onset_date": (utcnow() - timedelta(days=2)).date().isoformat(),
                    "grade": opts.grade,
                    "causality": "unlikely",
                    "expected": True,
                    "site_awareness_at": (utcnow() - timedelta(days=1)).isoformat(),
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            assert resp.status_code == 201, resp.json
            return resp

        post(0)
        statements: list[str] = []
        with ctx.app.app_context():
            from trialmgr.extensions import db

            engine = db.engine

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        sa.event.listen(engine, "before_cursor_execute", count)
        post(1)
        sa.event.remove(engine, "before_cursor_execute", count)
        print(f"{len(statements)} statements per request:")
        for statement in statements:
            print("   ", " ".join(statement.split())[:150])
        if opts.profile:
            from pyinstrument import Profiler

            profiler = Profiler()
            profiler.start()
            for i in range(200):
                post(i + 2)
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
