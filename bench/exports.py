"""`python -m bench.exports`: each export of a 10,000-subject trial against a bare SQL dump of
the same rows to CSV, in the same run (issue 15.6).

Builds the safety-dashboard world (bench/safety_dashboard.build: 20 sites, 10,000 subjects,
8,000 dosed, adverse events and ALT draws) and adds what the exports also carry: six visits
per subject (four done), each subject's consent, and four efficacy measurements per dosed
subject. Then, each in a fresh process (so its peak RSS is its own):

- `baseline`: every row of the seven exported tables, fetched on a bare DBAPI cursor and
  written with csv.writer to a file;
- `analysis`, `odm`, `fhir_json`, `fhir_ndjson`: the export as `flask export` makes it
  (build to a temporary file with sha256, audit row, commit).

Targets: peak RSS under 300 MB, time at most 3x the baseline.

    python -m bench.exports                    # SQLite file in a temp directory
    python -m bench.exports --postgres         # database trialmgr_bench_exports (re-made)
    python -m bench.exports --events 100000    # more adverse events
    python -m bench.exports --postgres --database NAME [--reuse]   # another database

Each row gives wall seconds and, beside them, the process's CPU seconds (on PostgreSQL the
server's work is not in them): on a shared machine the CPU ratio moves less than the wall
one.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask_migrate import upgrade

from bench.safety_dashboard import _insert, build
from trialmgr import ROOT, create_app
from trialmgr.extensions import db

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgresql+psycopg://postgres@127.0.0.1:5432/{}"
TABLES = (
    "subject",
    "subject_consent",
    "dosing",
    "visit",
    "adverse_event",
    "lab_result",
    "efficacy_measurement",
)
KINDS = {
    "analysis": ("analysis", {"include_free_text": False, "confirm": False}),
    "odm": ("odm", {"audit": False}),
    "fhir_json": ("fhir", {"format": "json", "base": "urn:bench"}),
    "fhir_ndjson": ("fhir", {"format": "ndjson", "base": "urn:bench"}),
}
VISITS = (("Baseline", -7), ("Day 7", 7), ("Week 4", 28), ("Week 12", 84), ("Week 26", 182))


def _app(uri: str) -> Any:
    return create_app({"SQLALCHEMY_DATABASE_URI": uri, "RATELIMIT_ENABLED": False})


def extend(subjects: int, seed: int = 15) -> dict[str, int]:
    """Visits, consents, an efficacy endpoint and measurements for the built world."""
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    stamp = {"created_at": now, "updated_at": now}
    for n, (name, day) in enumerate(VISITS, 1):
        _insert("visit_definition", [{"id": n, "trial_id": 1, "name": name, "day": day,
                                      "window_before": 3, "window_after": 3,
                                      "primary_endpoint": day == 84, "active": True,
                                      **stamp}])  # fmt: skip
    _insert("efficacy_endpoint", [{"id": 1, "trial_id": 1, "code": "FIX", "name": "Factor IX",
                                   "unit": "IU/dL", "direction": "higher_is_better",
                                   "primary": True, **stamp}])  # fmt: skip
    dosings = db.session.execute(sa.text("SELECT subject_id, dosed_at FROM dosing")).all()
    dosed = {sid: at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
             for sid, at in dosings}  # fmt: skip
    consents, visits, measurements = [], [], []
    for sid in range(1, subjects + 1):
        consents.append({"subject_id": sid, "consent_version_id": 1,
                         "consented_on": now.date() - timedelta(days=1200)})  # fmt: skip
        base = dosed[sid].date() if sid in dosed else now.date() + timedelta(days=30)
        for n, (name, day) in enumerate((*VISITS, ("LTFU year 1", 365)), 1):
            on = base + timedelta(days=day)
            done = sid in dosed and on < now.date()
            visits.append({"subject_id": sid, "definition_id": n if n <= len(VISITS) else None,
                           "kind": "protocol" if n <= len(VISITS) else "ltfu", "name": name,
                           "day": day, "scheduled_on": on, "window_start": on - timedelta(3),
                           "window_end": on + timedelta(3),
                           "status": "done" if done else "scheduled",
                           "done_on": on if done else None,
                           "notes": "Seen, well" if done and rnd.random() < 0.3 else None,
                           "primary_endpoint": day == 84, **stamp})  # fmt: skip
        if sid in dosed:
            for k, day in enumerate((-7, 28, 84, 182)):
                measurements.append({"trial_id": 1, "subject_id": sid,
                                     "site_id": (sid - 1) % 20 + 1,
                                     "cohort_id": (sid - 1) % 5 + 1, "endpoint_id": 1,
                                     "value": round(rnd.uniform(1, 40), 2),
                                     "measured_on": dosed[sid].date() + timedelta(days=day),
                                     "baseline": k == 0, **stamp})  # fmt: skip
    _insert("subject_consent", consents)
    _insert("visit", visits)
    _insert("efficacy_measurement", measurements)
    db.session.commit()
    return {"visits": len(visits), "consents": len(consents), "measurements": len(measurements)}


def _status_mb(field: str) -> float:
    """From /proc/self/status: VmHWM (peak) and VmRSS (now) of this process alone (getrusage's
    ru_maxrss carries the parent's peak across fork and exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(uri: str, kind: str, out: str) -> dict[str, Any]:
    """One measurement, in this (fresh) process."""
    app = _app(uri)
    with app.app_context():
        db.session.execute(sa.text("SELECT 1")).all()  # connect before the clock starts
        before = _status_mb("VmRSS")
        start, cpu = time.perf_counter(), time.process_time()
        if kind == "baseline":
            rows = 0
            conn = db.engine.raw_connection()
            try:
                with open(out, "w", newline="") as fh:
                    writer = csv.writer(fh)
                    for table in TABLES:
                        cursor = conn.cursor()
                        cursor.execute(f"SELECT * FROM {table}")
                        writer.writerow([c[0] for c in cursor.description])
                        while batch := cursor.fetchmany(5000):
                            writer.writerows(batch)
                            rows += len(batch)
            finally:
                conn.close()
            size = os.path.getsize(out)
            detail: dict[str, Any] = {"rows": rows}
        else:
            from trialmgr.auth.models import SystemActor
            from trialmgr.enrollment.models import Trial
            from trialmgr.exports import download

            name, options = KINDS[kind]
            trial = db.session.get_one(Trial, 1)
            export = download.BUILDERS[name](SystemActor(email="system:bench"), trial, options)
            db.session.commit()
            export.handle.close()
            size = export.size
            detail = {"rows": sum(export.rows.values())}
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "kind": kind,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rss_before_mb": before,
        "peak_rss_mb": _status_mb("VmHWM"),
        "bytes": size,
        **detail,
    }


def _measure(uri: str, kind: str, folder: str) -> dict[str, Any]:
    out = os.path.join(folder, f"{kind}.out")
    cmd = [sys.executable, "-m", "bench.exports", "--run", kind, "--uri", uri, "--out", out]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--keep", help="build the SQLite database in this folder and keep it")
    parser.add_argument("--reuse", action="store_true", help="time the database kept before")
    parser.add_argument("--database", default="trialmgr_bench_exports", help="PostgreSQL database")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.run:
        print(json.dumps(run_one(opts.uri, opts.run, opts.out)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = opts.keep or tmp
        os.environ["TRIALMGR_INSTANCE"] = folder
        uri = f"sqlite:///{folder}/bench.db"
        if opts.postgres and not opts.reuse:
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{opts.database}" WITH (FORCE)'))
                conn.execute(sa.text(f'CREATE DATABASE "{opts.database}"'))
            admin.dispose()
        if opts.postgres:
            uri = PG_BENCH.format(opts.database)
        app = _app(uri)
        with app.app_context():
            if opts.reuse:  # offsets are drawn again, as on a first export
                db.session.execute(sa.text("DELETE FROM subject_date_shift"))
                db.session.commit()
            else:
                upgrade(directory=str(ROOT / "migrations"))
                start = time.perf_counter()
                labs = build(20, opts.subjects, opts.events)
                extra = extend(opts.subjects)
                print(
                    f"built {opts.subjects:,} subjects, {opts.events:,} adverse events,"
                    f" {labs:,} labs, {extra['visits']:,} visits, {extra['measurements']:,}"
                    f" efficacy measurements in {time.perf_counter() - start:.0f} s"
                )
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.execute(sa.text("VACUUM ANALYZE" if opts.postgres else "ANALYZE"))
            print(f"database: {db.engine.dialect.name}")
            db.session.remove()
            db.engine.dispose()
        baseline = _measure(uri, "baseline", folder)
        print(
            f"{'kind':<12} {'seconds':>8} {'x SQL':>6} {'CPU s':>6} {'x SQL':>6}"
            f" {'peak RSS MB':>12} {'(before)':>9} {'MB out':>8} {'rows':>9}"
        )
        for kind in ("baseline", *KINDS):
            r = baseline if kind == "baseline" else _measure(uri, kind, folder)
            print(
                f"{kind:<12} {r['seconds']:>8.2f} {r['seconds'] / baseline['seconds']:>6.2f}"
                f" {r['cpu_seconds']:>6.2f} {r['cpu_seconds'] / baseline['cpu_seconds']:>6.2f}"
                f" {r['peak_rss_mb']:>12.0f} {r['rss_before_mb']:>9.0f}"
                f" {r['bytes'] / 1e6:>8.1f} {r['rows']:>9,}"
            )


if __name__ == "__main__":
    main()
