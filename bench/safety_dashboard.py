"""`python -m bench.safety_dashboard` (`make bench-dashboard`): the safety dashboard at
scale (issue 12).

Builds a trial with 20 sites, 10,000 subjects and 1,000,000 adverse events (plus their
clocks and 80,000 lab draws) by bulk insert, brings the statistics up to date (VACUUM
ANALYZE on PostgreSQL: the state autovacuum keeps), then times, as a safety monitor (every
site) and as a coordinator of two sites:

- the equivalent hand-written SQL, run on a bare DBAPI cursor (the same numbers, fetched);
- the summary service (`safety.services.summary.safety_summary`);
- `GET /api/v1/trials/1/safety-summary` (token check, service, JSON).

Each is run 20 times (`--repeat`), the three taking turns run by run; the p95 is the 19th
of 20. The target is under 1.5x the hand-written SQL. Not part of the test suite.

    python -m bench.safety_dashboard                      # SQLite file in a temp directory
    python -m bench.safety_dashboard --postgres           # database trialmgr_bench on
                                                          # 127.0.0.1:5432 (dropped, re-made)
    python -m bench.safety_dashboard --postgres --reuse   # time the database built before
                                                          # (--database NAME: another one)
    python -m bench.safety_dashboard --keep DIR [--reuse] # SQLite in DIR, kept (or reused)
    python -m bench.safety_dashboard --events 100000 --detail   # smaller; per statement
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask_migrate import upgrade

from trialmgr import ROOT, create_app
from trialmgr.extensions import db

SOCS = (
    "Blood and lymphatic system disorders",
    "Cardiac disorders",
    "Congenital, familial and genetic disorders",
    "Ear and labyrinth disorders",
    "Endocrine disorders",
    "Eye disorders",
    "Gastrointestinal disorders",
    "General disorders and administration site conditions",
    "Hepatobiliary disorders",
    "Immune system disorders",
    "Infections and infestations",
    "Injury, poisoning and procedural complications",
    "Investigations",
    "Metabolism and nutrition disorders",
    "Musculoskeletal and connective tissue disorders",
    "Neoplasms benign, malignant and unspecified",
    "Nervous system disorders",
    "Psychiatric disorders",
    "Renal and urinary disorders",
    "Reproductive system and breast disorders",
    "Respiratory, thoracic and mediastinal disorders",
    "Skin and subcutaneous tissue disorders",
    "Social circumstances",
    "Surgical and medical procedures",
    "Vascular disorders",
    "Pregnancy, puerperium and perinatal conditions",
    "Product issues",
)
GRADE_WEIGHTS = ((1, 60), (2, 28), (3, 9), (4, 2.5), (5, 0.5))
AESI = ("hepatotoxicity", "tma_complement", "myocarditis", "infusion_reaction", "neurological")
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/"


def _insert(table: str, rows: list[dict[str, Any]], chunk: int = 20_000) -> None:
    target = db.metadata.tables[table]
    for i in range(0, len(rows), chunk):
        db.session.execute(sa.insert(target), rows[i : i + chunk])


def build(sites: int, subjects: int, events: int, seed: int = 12) -> int:
    """Bulk-insert the scale world (no services, no audit: this is a load generator)."""
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    today = now.date()
    stamp = {"created_at": now, "updated_at": now}
    _insert("partner", [{"id": i, "name": f"Hospital {i}", "short_name": f"H{i}",
                         "kind": "clinical_site", "country": "IT", "active": True, **stamp}
                        for i in range(1, sites + 1)])  # fmt: skip
    _insert("site", [{"id": i, "partner_id": i, "code": f"S{i:02d}", "name": f"Site {i}",
                      "country": "IT", "target_enrollment": subjects // sites, "status": "active",
                      "activated_on": today - timedelta(days=1500),
                      "timezone": "Europe/Rome" if i % 2 else "America/New_York", **stamp}
                     for i in range(1, sites + 1)])  # fmt: skip
    _insert("trial", [{"id": 1, "code": "GT-BENCH", "title": "Bench", "vector_type": "aav",
                       "ltfu_years": 5, "stagger_days": 0, "status": "open",
                       "accepted_orphacodes": [], "escalation_requires_full_cohort": False,
                       **stamp}])  # fmt: skip
    cohorts = 5
    _insert("cohort", [{"id": c, "trial_id": 1, "label": f"C{c}", "dose": f"{c}e13",
                        "dose_unit": "vg/kg", "capacity": subjects, "sequence": c,
                        "status": "open", **stamp} for c in range(1, cohorts + 1)])  # fmt: skip
    _insert("consent_version", [{"id": 1, "trial_id": 1, "version": "1.0",
                                 "approved_on": today - timedelta(days=1500),
                                 "reconsent_required": False, **stamp}])  # fmt: skip
    consented = today - timedelta(days=1200)
    screenings, people, dosings = [], [], []
    for s in range(1, subjects + 1):
        site = (s - 1) % sites + 1
        screenings.append({"id": s, "trial_id": 1, "site_id": site, "number": s,
                           "screened_on": consented, "orphacode": 98879, "birth_year": 2012,
                           "sex": "M", "answers": {}, "outcome": "eligible",
                           "failed_criteria": [], **stamp})  # fmt: skip
        dosed = s % 5 != 0
        people.append({"id": s, "code": f"S{site:02d}-{s:06d}", "trial_id": 1, "site_id": site,
                       "screening_id": s, "cohort_id": (s - 1) % cohorts + 1,
                       "status": "in_follow_up" if dosed else "enrolled", "enrolled_on": consented,
                       "consent_version_id": 1, "consented_on": consented,
                       "reconsent_due": False, **stamp})  # fmt: skip
        if dosed:
            dosings.append({"id": s, "subject_id": s, "cohort_id": (s - 1) % cohorts + 1,
                            "dosed_at": now - timedelta(days=rnd.randint(400, 1100)),
                            "dose": "1e13", "dose_unit": "vg/kg", "lot_number": "L1",
                            **stamp})  # fmt: skip
    _insert("screening", screenings)
    _insert("subject", people)
    _insert("dosing", dosings)
    grades = [g for g, _ in GRADE_WEIGHTS]
    weights = [w for _, w in GRADE_WEIGHTS]
    soc_weights = [1 + (i * 7) % 11 for i in range(len(SOCS))]
    batch: list[dict[str, Any]] = []
    reports: list[dict[str, Any]] = []
    for i in range(1, events + 1):
        subject = rnd.randint(1, subjects)
        grade = rnd.choices(grades, weights)[0]
        serious = grade == 5 or (grade >= 3 and rnd.random() < 0.25)
        suspected = rnd.random() < 0.4
        expected = rnd.random() < 0.8
        aesi = rnd.random() < 0.02
        onset = today - timedelta(days=rnd.randint(1, 1100))
        aware = datetime.combine(onset, datetime.min.time(), UTC) + timedelta(hours=10)
        row = {"id": i, "trial_id": 1, "subject_id": subject, "site_id": (subject - 1) % sites + 1,
               "cohort_id": (subject - 1) % cohorts + 1, "version": 1, "term": "Event",
               "soc": rnd.choices(SOCS, soc_weights)[0], "onset_date": onset,
               "resolution_date": None if rnd.random() < 0.1 else onset + timedelta(days=3),
               "grade": grade, "seriousness_criteria": ["hospitalisation"] if serious else [],
               "serious": serious, "causality": "possible" if suspected else "unlikely",
               "suspected": suspected, "expected": expected,
               "susar": serious and suspected and not expected, "aesi": aesi,
               "aesi_category": rnd.choice(AESI) if aesi else None,
               "outcome": "fatal" if grade == 5 else None, "site_awareness_at": aware,
               "sponsor_awareness_at": aware, **stamp}  # fmt: skip
        if grade == 5 and row["resolution_date"] is None:
            row["resolution_date"] = onset
        batch.append(row)
        if serious:
            authorities = ["sponsor"] + (["FDA", "EU", "IBC"] if row["susar"] else [])
            for authority in authorities:
                due = aware + (timedelta(hours=24) if authority == "sponsor" else timedelta(15))
                done = rnd.random() < 0.97
                reports.append({"adverse_event_id": i, "trial_id": 1, "site_id": row["site_id"],
                                "rule_id": 1, "authority": authority, "kind": "initial",
                                "clock_start": aware, "due_at": due,
                                "submitted_at": due - timedelta(hours=2) if done else None,
                                "late": False if done else None, **stamp})  # fmt: skip
        if len(batch) == 50_000:
            _insert("adverse_event", batch)
            batch = []
    _insert("adverse_event", batch)
    _insert("expedited_rule", [{"id": 1, "trial_id": 1, "authority": "sponsor",
                                "condition": "serious", "deadline_hours": 24, "active": True,
                                "description": "bench", **stamp}])  # fmt: skip
    _insert("expedited_report", reports)
    labs = []
    for d in dosings:
        for k in range(-1, 9):
            value = rnd.lognormvariate(3.4, 0.5)
            multiple = value / 40
            grade = 0 if multiple <= 1 else 1 if multiple <= 3 else 2 if multiple <= 5 else 3
            labs.append({"trial_id": 1, "subject_id": d["subject_id"],
                         "site_id": (d["subject_id"] - 1) % sites + 1, "analyte": "ALT",
                         "value": value, "unit": "U/L", "uln": 40, "value_canonical": value,
                         "canonical_unit": "U/L", "uln_multiple": multiple, "grade": grade,
                         "collected_at": d["dosed_at"] + timedelta(days=7 * k, hours=-2),
                         "hys_law": False, **stamp})  # fmt: skip
    _insert("lab_result", labs)
    db.session.commit()
    return len(labs)


# --- the hand-written SQL ----------------------------------------------------------------

HAND_WRITTEN = {
    "soc_grade_cohort": """
        SELECT soc, worst, cohort_id, count(*), sum(n) FROM (
          SELECT site_id, subject_id, soc, max(cohort_id) AS cohort_id, max(grade) AS worst,
                 count(*) AS n
          FROM adverse_event WHERE trial_id = 1 {sites}
          GROUP BY site_id, subject_id, soc) spelt
        GROUP BY soc, worst, cohort_id""",
    "grade_cohort": """
        SELECT cohort_id, grade, sum(n) FROM (
          SELECT site_id, cohort_id, grade, count(*) AS n FROM adverse_event
          WHERE trial_id = 1 {sites} GROUP BY site_id, cohort_id, grade) per_site
        GROUP BY cohort_id, grade""",
    "events": """
        SELECT count(*), sum(n) FROM (
          SELECT site_id, subject_id, count(*) AS n FROM adverse_event
          WHERE trial_id = 1 {sites} GROUP BY site_id, subject_id) per_subject""",
    "serious": """
        SELECT count(*), sum(CASE WHEN resolution_date IS NULL THEN 1 ELSE 0 END)
        FROM adverse_event WHERE trial_id = 1 AND serious = TRUE {sites}""",
    "susars": """
        SELECT count(*) FROM adverse_event WHERE trial_id = 1 AND susar = TRUE {sites}""",
    "clock_counts": """
        SELECT count(*), sum(CASE WHEN r.due_at < :now THEN 1 ELSE 0 END)
        FROM expedited_report r JOIN adverse_event ON adverse_event.id = r.adverse_event_id
        WHERE r.submitted_at IS NULL AND adverse_event.trial_id = 1 {sites}""",
    "clocks": """
        SELECT r.id, r.authority, r.kind, r.due_at, adverse_event.term, s.code, site.code,
               site.timezone
        FROM expedited_report r JOIN adverse_event ON adverse_event.id = r.adverse_event_id
        JOIN subject s ON s.id = adverse_event.subject_id JOIN site ON site.id = s.site_id
        WHERE r.submitted_at IS NULL AND adverse_event.trial_id = 1 {sites}
        ORDER BY r.due_at, r.id LIMIT 50""",
    "aesi_categories": """
        SELECT aesi_category, cohort_id, count(DISTINCT subject_id), count(*), max(grade)
        FROM adverse_event WHERE trial_id = 1 AND aesi = TRUE {sites}
        GROUP BY aesi_category, cohort_id""",
    "aesi_recent": """
        SELECT e.id, s.code, site.code, e.term, e.grade, e.onset_date FROM (
          SELECT id, subject_id, term, grade, onset_date FROM adverse_event
          WHERE trial_id = 1 AND aesi = TRUE {sites}
          ORDER BY onset_date DESC, id DESC LIMIT 50) e
        JOIN subject s ON s.id = e.subject_id JOIN site ON site.id = s.site_id
        ORDER BY e.onset_date DESC, e.id DESC""",
    "lab_shifts": """
        SELECT analyte, cohort_id, baseline_grade, worst, count(*) FROM (
          SELECT per.subject_id, per.cohort_id, per.analyte, per.worst,
                 (SELECT max(b.grade) FROM lab_result b WHERE b.subject_id = per.subject_id
                  AND b.analyte = per.analyte AND b.collected_at = per.baseline_at)
                 AS baseline_grade
          FROM (SELECT l.subject_id, max(s.cohort_id) AS cohort_id, l.analyte,
                       max(CASE WHEN l.collected_at < d.dosed_at THEN l.collected_at END)
                       AS baseline_at,
                       max(CASE WHEN l.collected_at >= d.dosed_at THEN l.grade END) AS worst
                FROM lab_result l JOIN subject s ON s.id = l.subject_id
                JOIN dosing d ON d.subject_id = l.subject_id
                WHERE l.trial_id = 1 {lab_sites}
                GROUP BY l.site_id, l.subject_id, l.analyte) per
          WHERE per.worst IS NOT NULL) shifts
        GROUP BY analyte, cohort_id, baseline_grade, worst""",
    "alt_top": """
        SELECT l.subject_id, max(l.uln_multiple) AS peak FROM lab_result l
        JOIN dosing d ON d.subject_id = l.subject_id
        WHERE l.trial_id = 1 AND l.analyte = 'ALT' AND l.uln_multiple IS NOT NULL {lab_sites}
        GROUP BY l.site_id, l.subject_id ORDER BY peak DESC, l.subject_id LIMIT 20""",
    "alt_points": """
        SELECT l.subject_id, l.collected_at, l.uln_multiple, l.grade, d.dosed_at, site.timezone
        FROM lab_result l JOIN dosing d ON d.subject_id = l.subject_id
        JOIN site ON site.id = l.site_id
        WHERE l.trial_id = 1 AND l.analyte = 'ALT' AND l.uln_multiple IS NOT NULL
          AND l.subject_id IN (SELECT subject_id FROM (
            SELECT l.subject_id, max(l.uln_multiple) AS peak FROM lab_result l
            JOIN dosing d ON d.subject_id = l.subject_id
            WHERE l.trial_id = 1 AND l.analyte = 'ALT' AND l.uln_multiple IS NOT NULL
              {lab_sites}
            GROUP BY l.site_id, l.subject_id ORDER BY peak DESC, l.subject_id LIMIT 20) top)
        ORDER BY l.subject_id, l.collected_at""",
    "trial": "SELECT * FROM trial WHERE id = 1",
    "cohorts": "SELECT * FROM cohort WHERE trial_id = 1 ORDER BY sequence",
    "pause": "SELECT * FROM trial_pause WHERE trial_id = 1 AND resumed_at IS NULL",
    "stopping": """
        SELECT r.id, r.kind, r.description, r.active, count(f.id), max(f.fired_at)
        FROM stopping_rule r LEFT JOIN stopping_rule_firing f ON f.rule_id = r.id
        WHERE r.trial_id = 1 GROUP BY r.id, r.kind, r.description, r.active""",
}


def hand_written(site_ids: list[int] | None) -> Callable[[], Any]:
    sites = f"AND adverse_event.site_id IN ({', '.join(map(str, site_ids))})" if site_ids else ""
    lab_sites = f"AND l.site_id IN ({', '.join(map(str, site_ids))})" if site_ids else ""
    statements = [sql.format(sites=sites, lab_sites=lab_sites) for sql in HAND_WRITTEN.values()]

    def run() -> None:
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            now = datetime.now(UTC)
            for sql in statements:
                if ":now" in sql:
                    if db.engine.dialect.name == "sqlite":
                        cursor.execute(sql.replace(":now", "?"), (now.replace(tzinfo=None),))
                    else:
                        cursor.execute(sql.replace(":now", "%s"), (now,))
                else:
                    cursor.execute(sql)
                cursor.fetchall()
            cursor.close()
            connection.rollback()
        finally:
            connection.close()

    return run


def detail(site_ids: list[int] | None = None) -> None:
    """Each hand-written statement and each section of the summary service, timed once
    (for every site, or for `site_ids` as the coordinator's scope)."""
    from trialmgr.clock import utcnow
    from trialmgr.enrollment.models import Trial
    from trialmgr.safety.services import lab_summary, summary
    from trialmgr.safety.services.scope import Scope

    connection = db.engine.raw_connection()
    cursor = connection.cursor()
    print(f"  scope: {'sites ' + str(site_ids) if site_ids else 'every site'}")
    sites = f"AND adverse_event.site_id IN ({', '.join(map(str, site_ids))})" if site_ids else ""
    lab_sites = f"AND l.site_id IN ({', '.join(map(str, site_ids))})" if site_ids else ""
    for name, sql in HAND_WRITTEN.items():
        sql = sql.format(sites=sites, lab_sites=lab_sites)
        start = time.perf_counter()
        if ":now" in sql:
            now = datetime.now(UTC)
            sqlite = db.engine.dialect.name == "sqlite"
            cursor.execute(sql.replace(":now", "?" if sqlite else "%s"),
                           (now.replace(tzinfo=None) if sqlite else now,))  # fmt: skip
        else:
            cursor.execute(sql)
        cursor.fetchall()
        print(f"  SQL {name:<30} {(time.perf_counter() - start) * 1000:8.1f} ms")
    connection.close()
    scope = Scope(db.session.get(Trial, 1), tuple(site_ids) if site_ids else None)
    now = utcnow()
    for name, fn in (
        ("headline", lambda: summary.headline(scope, now)),
        ("by_soc_grade_cohort", lambda: summary.by_soc_grade_cohort(scope)),
        ("by_grade_cohort", lambda: summary.by_grade_cohort(scope)),
        ("aesi_by_category", lambda: summary.aesi_by_category(scope)),
        ("recent_aesis", lambda: summary.recent_aesis(scope)),
        ("lab_shifts", lambda: lab_summary.lab_shifts(scope)),
        ("alt_series", lambda: lab_summary.alt_series(scope)),
        ("stopping_status", lambda: summary.stopping_status(scope.trial)),
        ("open_clocks", lambda: summary.open_clocks(scope, now)),
    ):
        start = time.perf_counter()
        fn()
        print(f"  service {name:<26} {(time.perf_counter() - start) * 1000:8.1f} ms")
    db.session.rollback()


def add_missing_indexes() -> None:
    """A reused database built before an index was added to the models gets it (the
    migration that adds it ran, or not, when the database was made; this is a bench)."""
    inspector = sa.inspect(db.engine)
    for table in db.metadata.sorted_tables:
        present = {ix["name"] for ix in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in present:
                start = time.perf_counter()
                index.create(db.engine)
                print(f"created {index.name} in {time.perf_counter() - start:.0f} s")


def _timed(fns: list[Callable[[], Any]], repeat: int) -> list[tuple[float, float]]:
    """(median, p95) of each function over `repeat` runs, after one warm-up run each. The
    functions take turns, run by run, so that a change in the shared machine's load lands
    on all of them alike rather than on whichever ran during it."""
    for fn in fns:
        fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, times in zip(fns, samples, strict=True):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    out = []
    for times in samples:
        times.sort()
        p95 = times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
        out.append((statistics.median(times), p95))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--detail", action="store_true", help="time each statement")
    parser.add_argument("--keep", help="keep the SQLite database in this directory")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="time the database already built (indexes the models have and it lacks are added)",
    )
    parser.add_argument("--database", default="trialmgr_bench", help="PostgreSQL database name")
    opts = parser.parse_args()
    if not opts.database.replace("_", "").isalnum():
        parser.error("--database: letters, digits and underscores only")
    with tempfile.TemporaryDirectory() as tmp:
        folder = opts.keep or tmp
        os.environ["TRIALMGR_INSTANCE"] = folder
        uri = f"sqlite:///{folder}/bench.db"
        if opts.postgres and not opts.reuse:
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {opts.database} WITH (FORCE)"))
                conn.execute(sa.text(f"CREATE DATABASE {opts.database}"))
            admin.dispose()
        if opts.postgres:
            uri = PG_SERVER + opts.database
        app = create_app(
            {"SQLALCHEMY_DATABASE_URI": uri, "RATELIMIT_ENABLED": False, "WTF_CSRF_ENABLED": False}
        )
        with app.app_context():
            if not opts.reuse:
                upgrade(directory=str(ROOT / "migrations"))
                start = time.perf_counter()
                labs = build(opts.sites, opts.subjects, opts.events)
                seconds = time.perf_counter() - start
                print(f"built {opts.events:,} events, {labs:,} lab draws in {seconds:.0f} s")
            else:
                add_missing_indexes()
            # the steady state autovacuum keeps: statistics, and the visibility map that
            # lets PostgreSQL answer from the index alone
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE" if opts.postgres else "ANALYZE"))
            if not opts.postgres:  # fold the bulk load's write-ahead log into the file
                db.session.remove()
                db.engine.dispose()
                raw = db.engine.raw_connection()  # outside any transaction
                raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                raw.close()
            print(f"database: {db.engine.dialect.name}")
        compare(app, opts)


def compare(app: Any, opts: argparse.Namespace) -> None:
    """Time the hand-written SQL, the service and the request, as a monitor (every site)
    and as a coordinator of two sites."""
    from tests.factories import PASSWORD, make_user

    run = f"{time.time_ns()}"
    monitor = make_user(app, "safety_monitor", email=f"monitor-{run}@example.org")
    coordinator = make_user(app, "coordinator", [1, 2], email=f"coordinator-{run}@example.org")
    client = app.test_client()

    def bearer(user: dict[str, Any]) -> dict[str, str]:
        resp = client.post(
            "/api/v1/auth/tokens", json={"email": user["email"], "password": PASSWORD}
        )
        return {"Authorization": f"Bearer {resp.json['token']}"}

    headers = {"monitor": bearer(monitor), "coordinator": bearer(coordinator)}
    # The first call seeds the trial's stopping rules (a write); time the reads after it.
    assert (
        client.get("/api/v1/trials/1/safety-summary", headers=headers["monitor"]).status_code == 200
    )

    def request(who: str) -> Callable[[], Any]:
        def call() -> None:
            resp = client.get("/api/v1/trials/1/safety-summary", headers=headers[who])
            assert resp.status_code == 200, resp.json

        return call

    def service(user: dict[str, Any]) -> Callable[[], Any]:
        from trialmgr.auth.models import User
        from trialmgr.clock import utcnow
        from trialmgr.enrollment.models import Trial
        from trialmgr.safety.services.summary import safety_summary

        def call() -> None:
            with app.app_context():
                actor = db.session.get(User, user["id"])
                safety_summary(actor, db.session.get(Trial, 1), {}, utcnow())
                db.session.rollback()

        return call

    def sql(site_ids: list[int] | None) -> Callable[[], Any]:
        run = hand_written(site_ids)

        def call() -> None:
            with app.app_context():
                run()

        return call

    if opts.detail:
        with app.app_context():
            detail()
            detail([1, 2])
    print(f"{'case':<52} {'median ms':>10} {'p95 ms':>8} {'x SQL':>7} {'p95 x':>7}")
    for who, user, site_ids in (
        ("monitor", monitor, None),
        ("coordinator", coordinator, [1, 2]),
    ):
        timed = _timed([sql(site_ids), service(user), request(who)], opts.repeat)
        base, base95 = timed[0]
        names = ("hand-written SQL", "summary service", "GET /api/v1/trials/1/safety-summary")
        rows = [(f"{name} ({who})", t) for name, t in zip(names, timed, strict=True)]
        for name, (median, p95) in rows:
            print(
                f"{name:<52} {median * 1000:>10.1f} {p95 * 1000:>8.1f} "
                f"{median / base:>7.2f} {p95 / base95:>7.2f}"
            )


if __name__ == "__main__":
    main()
