"""`python -m bench.profile_write [--postgres] [--profile] [--cpu N]`: the AE write in
process, on a small synthetic trial: the SQL statements one request runs (listed), the CPU
time of one request against the baseline service's (`bench.baseline`, the same row through
bare Flask + SQLAlchemy), in rounds of N requests (default 300) that alternate, and
optionally a pyinstrument profile of 200 requests (`pip install -e '.[bench]'`). Not part of
the tests."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
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
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cprofile", action="store_true", help="cProfile of 500 requests")
    parser.add_argument("--cpu", type=int, default=300, help="requests per CPU round (0: none)")
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

        def body(i: int) -> dict[str, Any]:
            from trialmgr.clock import utcnow

            return {
                "subject_code": codes[i % len(codes)],
                "term": "Headache",
                "soc": "Nervous system disorders",
                "onset_date": (utcnow() - timedelta(days=2)).date().isoformat(),
                "grade": opts.grade,
                "causality": "unlikely",
                "expected": True,
                "site_awareness_at": (utcnow() - timedelta(days=1)).isoformat(),
            }

        def post(i: int) -> Any:
            resp = client.post(
                "/api/v1/adverse-events",
                json=body(i),
                headers={"Authorization": f"Bearer {token}"},
            )
            assert resp.status_code == 201, resp.json
            return resp

        post(0)
        statements: list[str] = []
        began: list[float] = []
        took: list[float] = []
        with ctx.app.app_context():
            from trialmgr.extensions import db

            engine = db.engine

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)
            began.append(time.perf_counter())

        def done(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            took.append(time.perf_counter() - began[len(took)])

        sa.event.listen(engine, "before_cursor_execute", count)
        sa.event.listen(engine, "after_cursor_execute", done)
        t0 = time.perf_counter()
        post(1)
        total = time.perf_counter() - t0
        sa.event.remove(engine, "before_cursor_execute", count)
        sa.event.remove(engine, "after_cursor_execute", done)
        print(
            f"{len(statements)} statements per request (wall ms each; the request "
            f"{total * 1000:.1f} ms, the statements {sum(took) * 1000:.1f} ms):"
        )
        for statement, seconds in zip(statements, took, strict=True):
            print(f"    {seconds * 1000:6.2f}", " ".join(statement.split())[:140])
        if opts.cpu:
            os.environ["DATABASE_URL"] = database.url
            from bench import baseline

            bare = baseline.app.test_client()

            def post_bare(i: int) -> Any:
                resp = bare.post("/adverse-events", json=body(i))
                assert resp.status_code == 201, resp.json
                return resp

            def cpu_ms(send: Any, start: int) -> float:
                began = time.process_time()
                for i in range(opts.cpu):
                    send(start + i)
                return (time.process_time() - began) * 1000 / opts.cpu

            import gc

            gc_time = [0.0, 0]
            gc_began: list[float] = []

            def on_gc(phase: str, info: dict[str, Any]) -> None:
                if phase == "start":
                    gc_began.append(time.process_time())
                elif gc_began:
                    gc_time[0] += time.process_time() - gc_began.pop()
                    gc_time[1] += 1

            gc.callbacks.append(on_gc)
            ours_ms, bare_ms = [], []
            for r in range(opts.rounds):
                ours_ms.append(cpu_ms(post, 1000 + r * opts.cpu))
                bare_ms.append(cpu_ms(post_bare, 1000 + r * opts.cpu))
            # The machine may be shared: the fastest round of each side, and the ratio of each
            # pair of rounds run back to back (their median).
            ours, base = min(ours_ms), min(bare_ms)
            paired = statistics.median(b / o for o, b in zip(ours_ms, bare_ms, strict=True))
            print(
                f"CPU per request: ours {ours:.2f} ms, baseline {base:.2f} ms (fastest rounds), "
                f"ratio {paired:.2f} (median of paired rounds; rounds: ours "
                f"{[round(x, 2) for x in ours_ms]}, baseline {[round(x, 2) for x in bare_ms]})"
            )
            gc.callbacks.remove(on_gc)
            print(
                f"garbage collection: {gc_time[1]} runs, {gc_time[0] * 1000:.0f} ms in all "
                f"({gc_time[0] * 1000 / (2 * opts.rounds * opts.cpu):.3f} ms per request, "
                "either side)"
            )
        if opts.cprofile:
            import cProfile
            import pstats

            with cProfile.Profile() as prof:
                for i in range(500):
                    post(5000 + i)
            stats = pstats.Stats(prof)
            stats.sort_stats("tottime").print_stats(45)
            stats.sort_stats("cumulative").print_stats(80)
        if opts.profile:
            from pyinstrument import Profiler

            profiler = Profiler()
            profiler.start()
            for i in range(200):
                post(i + 2)
            profiler.stop()
            every_frame = bool(os.environ.get("PROFILE_ALL"))  # SQLAlchemy's and Flask's too
            print(profiler.output_text(unicode=False, color=False, show_all=every_frame))


if __name__ == "__main__":
    main()
