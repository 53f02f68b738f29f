"""The benchmarks: each measures the application and a baseline in the same run, on the
same database, and compares the ratio with the target of issue 16."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask_migrate import upgrade

from bench import data, dsmb, load
from bench.server import ROOT, Database, gunicorn


@dataclass
class Context:
    database: Database
    scale: str
    tmp: Path
    world: data.World
    app: Any


def prepare(database: Database, scale: str, tmp: Path) -> Context:
    import os

    from trialmgr import create_app
    from trialmgr.extensions import db

    os.environ["TRIALMGR_INSTANCE"] = str(tmp / "instance")
    app = create_app({"SQLALCHEMY_DATABASE_URI": database.url, "SECRET_KEY": "b" * 48})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        world = data.generate(scale)
        db.session.remove()
    return Context(database, scale, tmp, world, app)


def _token(ctx: Context, email: str) -> str:
    from trialmgr.auth import services
    from trialmgr.auth.models import User
    from trialmgr.clock import utcnow
    from trialmgr.extensions import db

    with ctx.app.app_context():
        user = db.session.execute(sa.select(User).where(User.email == email)).scalar_one()
        _, clear = services.issue_token(user, utcnow())
        db.session.commit()
        return clear


def _row(
    name: str, ours: str, baseline: str, ratio: float | None, target: str, ok: bool, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "ours": ours,
        "baseline": baseline,
        "ratio": None if ratio is None else round(ratio, 2),
        "target": target,
        "pass": ok,
        **extra,
    }


# --- 1. the adverse-event write path -------------------------------------------------


def ae_write(ctx: Context) -> list[dict[str, Any]]:
    """POST /api/v1/adverse-events through the whole stack (token, validation, audit chain,
    clocks, stopping rules) against bare Flask + SQLAlchemy inserting the same row."""
    world = ctx.world
    site_id = world.site_ids[0]
    token = _token(ctx, world.coordinator_emails[site_id])
    codes = [c for c in world.subject_codes if c.startswith("B000-")]
    rng = random.Random(7)
    total, clients = 400, 8

    def body(i: int) -> dict[str, Any]:
        from trialmgr.clock import utcnow

        onset = (utcnow() - timedelta(days=2)).date()
        return {
            "subject_code": codes[i % len(codes)],
            "term": "Headache",
            "soc": "Nervous system disorders",
            "onset_date": onset.isoformat(),
            "grade": rng.choice((1, 2)),
            "causality": "unlikely",
            "expected": True,
            "site_awareness_at": (utcnow() - timedelta(days=1)).isoformat(),
        }

    instance = ctx.tmp / "instance"

    def ours_request(i: int) -> tuple[str, str, dict[str, Any], dict[str, str]]:
        return ("POST", "/api/v1/adverse-events", body(i), {"Authorization": f"Bearer {token}"})

    def bare_request(i: int) -> tuple[str, str, dict[str, Any], dict[str, str]]:
        return ("POST", "/adverse-events", body(i), {})

    # Both servers run side by side and take turns, in rounds whose order rotates, so that
    # a change in the shared machine's load between two long runs does not land on one side
    # of the ratio. Each side's figures are its rounds taken together.
    rounds = 4
    runs: dict[str, list[load.LoadResult]] = {"ours": [], "bare": [], "single": []}
    with (
        gunicorn("wsgi:app", ctx.database.url, instance) as ours_base,
        gunicorn("bench.baseline:app", ctx.database.url, instance) as bare_base,
    ):
        load.run(ours_base, ours_request, 20, 2)  # warm both workers (imports, connection)
        load.run(bare_base, bare_request, 20, 2)
        turns = [
            ("ours", ours_base, ours_request, total // rounds, clients),
            ("bare", bare_base, bare_request, total // rounds, clients),
            ("single", ours_base, ours_request, total // 4 // rounds, 1),
        ]
        for r in range(rounds):
            for name, base, request, n, c in turns[r % 3 :] + turns[: r % 3]:
                runs[name].append(load.run(base, request, n, c))
    ours, bare, single = (load.LoadResult.merge(runs[k]) for k in ("ours", "bare", "single"))
    ratio = ours.rps / bare.rps
    p95 = ours.pct(95) / bare.pct(95)
    ok = ratio >= 0.5 and p95 <= 2 and ours.errors == 0
    return [
        _row(
            "AE write (8 clients)",
            f"{ours.rps:.0f} req/s",
            f"{bare.rps:.0f} req/s",
            ratio,
            ">= 0.5",
            ok,
            note=f"p95 {ours.pct(95) * 1000:.0f} ms vs {bare.pct(95) * 1000:.0f} ms "
            f"(x{p95:.2f}, target <= 2); errors {ours.errors}; ours {ours.summary()}, "
            f"baseline {bare.summary()}",
        ),
        _row(
            "AE write, 8 clients vs 1",
            f"{ours.rps:.0f} req/s",
            f"{single.rps:.0f} req/s",
            ours.rps / single.rps,
            "report",
            single.errors == 0,
            note=f"gain of 8 clients over 1 on 2 sync workers; 1 client {single.summary()}",
        ),
    ]


# --- 5. audit verification ------------------------------------------------------------


# The issue's chain length; BENCH_VERIFY_ROWS=200000 (say) for a shorter run while iterating.
VERIFY_ROWS = int(os.environ.get("BENCH_VERIFY_ROWS", 1_000_000))


# Every column of every row as the database stores it, with no type conversion (a timestamp
# and a JSON document as text): the least a walk must read.
_BARE_READ = {
    "sqlite": "SELECT * FROM audit_event ORDER BY id",
    "postgresql": """
        SELECT id, at::text, actor_id, actor, action, entity, entity_id, changes::text,
               reason, prev_hash, hash
        FROM audit_event ORDER BY id""",
}


def _bare_read(connection: Any) -> float:
    """Seconds to read every audit row on the bare DBAPI cursor, in batches of 10,000 (a
    server-side cursor on PostgreSQL, as a script reading a million rows would use)."""
    raw = connection.connection.dbapi_connection
    dialect = connection.dialect.name
    cursor = raw.cursor(name="bare_read") if dialect == "postgresql" else raw.cursor()
    started = time.perf_counter()
    cursor.execute(_BARE_READ[dialect])
    while cursor.fetchmany(10_000):
        pass
    seconds = time.perf_counter() - started
    cursor.close()
    return seconds


def audit_verify(ctx: Context) -> list[dict[str, Any]]:
    """The full walk of a 1,000,000-row hash chain against two baselines: hashing the same
    canonical bytes with hashlib in a loop (the bytes prepared beforehand, batch by batch,
    untimed), the issue's baseline; and that plus reading the same rows on the bare DBAPI
    cursor, which the walk cannot avoid."""
    import resource

    from trialmgr.audit import services as audit
    from trialmgr.audit.chain import format_at
    from trialmgr.audit.models import AuditEvent
    from trialmgr.extensions import db

    with ctx.app.app_context():
        have = db.session.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar_one()
        if have < VERIFY_ROWS:  # untimed: the chain the walk checks
            started = time.perf_counter()
            data.extend_audit_chain(VERIFY_ROWS - have, random.Random(5))
            extended = time.perf_counter() - started
            print(f"audit chain extended by {VERIFY_ROWS - have} rows in {extended:.0f} s")
        db.session.remove()
        if db.engine.dialect.name == "postgresql":
            # The chain as it stands after a while, not just after a bulk insert: whichever
            # read comes first (the walk) would otherwise pay for setting every row's hint
            # bits, and the planner would know nothing of the table.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM (ANALYZE) audit_event")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        outcome = audit.verify(full=True)
        ours = time.perf_counter() - started
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        db.session.rollback()
        table = AuditEvent.__table__
        bare = 0.0
        result = db.session.execute(
            sa.select(table).order_by(table.c.id).execution_options(yield_per=50_000)
        )
        for batch in result.mappings().partitions():
            blobs = [
                json.dumps(
                    {
                        "at": format_at(row["at"]),
                        "actor_id": row["actor_id"],
                        "actor": row["actor"],
                        "action": row["action"],
                        "entity": row["entity"],
                        "entity_id": row["entity_id"],
                        "changes": row["changes"],
                        "reason": row["reason"],
                        "prev_hash": row["prev_hash"],
                    },
                    sort_keys=True,
                    separators=(",", ":"),
                    ensure_ascii=False,
                ).encode()
                for row in batch
            ]
            started = time.perf_counter()
            for blob in blobs:
                hashlib.sha256(blob).hexdigest()
            bare += time.perf_counter() - started
        db.session.rollback()
        read = _bare_read(db.session.connection())
        db.session.rollback()
    ratio = ours / bare
    with_read = ours / (bare + read)
    return [
        _row(
            f"audit verify ({outcome.checked} rows)",
            f"{ours:.2f} s",
            f"{bare:.2f} s",
            ratio,
            "<= 3",
            outcome.valid and ratio <= 3,
            note=f"baseline: sha256 of the same canonical bytes, prepared beforehand; "
            f"peak RSS grew {grown:.0f} MiB during the walk (this process)",
        ),
        _row(
            "audit verify vs read + sha256",
            f"{ours:.2f} s",
            f"{bare + read:.2f} s",
            with_read,
            "<= 3",
            outcome.valid and with_read <= 3,
            note=f"baseline: the same rows read on the bare DBAPI cursor ({read:.2f} s) "
            f"plus the sha256 loop above ({bare:.2f} s)",
        ),
    ]


# --- 3. feasibility metrics and CONSORT -----------------------------------------------

# The same numbers the endpoints compute, counted by the database, by site and by month
# (the review shows each site's metrics and a trend of month-ends): the screening log by
# state and consent, enrolments, screened-then-enrolled, each subject's first
# primary-endpoint visit, visits due, done in their window and their required fields,
# expedited reports due and on time by their day at the site, and what site-months are
# computed from (status history, approvals). `{month:x}` and friends are spelled per
# database below; `:d` is the review date, `:end` the instant after it (UTC).
FEASIBILITY_SQL = {
    "screening": """
        SELECT site_id, outcome,
               CASE WHEN outcome = 'declined' AND {has_items:failed_criteria} THEN 1 ELSE 0 END,
               {month:screened_on},
               CASE WHEN consented_on <= :d THEN {month:consented_on} END, count(*)
        FROM screening WHERE trial_id = :t AND screened_on <= :d
        GROUP BY 1, 2, 3, 4, 5""",
    "first_screening": "SELECT min(screened_on) FROM screening WHERE trial_id = :t",
    "enrolled": """
        SELECT site_id, {month:enrolled_on}, count(*) FROM subject
        WHERE trial_id = :t AND enrolled_on <= :d GROUP BY 1, 2""",
    "screened_enrolled": """
        SELECT s.site_id, sc.site_id, {month:s.enrolled_on}, {month:sc.screened_on}, count(*)
        FROM subject s JOIN screening sc ON sc.id = s.screening_id
        WHERE s.trial_id = :t AND sc.trial_id = :t AND s.enrolled_on <= :d
          AND sc.screened_on <= :d AND sc.outcome IN ('eligible', 'screen_failed', 'declined')
        GROUP BY 1, 2, 3, 4""",
    "retention": """
        SELECT s.site_id, {month:s.enrolled_on}, {month:p.due_from},
               CASE WHEN p.status = 'done' AND p.done_on <= :d THEN {month:p.done_on} END,
               count(*)
        FROM subject s JOIN (
            SELECT p.subject_id, p.status, p.done_on,
                   CASE WHEN p.status = 'done' AND p.done_on IS NOT NULL
                             THEN {earlier:p.done_on:{day_after:p.window_end}}
                        WHEN p.status <> 'cancelled'
                          OR p.cancel_reason IN ('withdrawn', 'lost_to_follow_up', 'died')
                             THEN {day_after:p.window_end} END AS due_from
            FROM visit p WHERE p.primary_endpoint = TRUE AND NOT EXISTS ({earlier_primary})
            ) p ON p.subject_id = s.id
        WHERE s.trial_id = :t AND s.enrolled_on <= :d AND p.due_from <= :d
        GROUP BY 1, 2, 3, 4""",
    "visits": """
        SELECT site_id, kind, {month:due_from}, done_month, in_window, count(*), sum(filled)
        FROM (
            SELECT s.site_id, v.kind,
                   CASE WHEN v.status = 'done' AND v.done_on IS NOT NULL
                             THEN {earlier:v.done_on:{day_after:v.window_end}}
                        WHEN v.status <> 'cancelled' THEN {day_after:v.window_end} END
                       AS due_from,
                   CASE WHEN v.status = 'done' AND v.done_on <= :d THEN {month:v.done_on} END
                       AS done_month,
                   CASE WHEN v.status = 'done' AND v.done_on <= :d
                         AND v.done_on BETWEEN v.window_start AND v.window_end
                        THEN 1 ELSE 0 END AS in_window,
                   CASE v.kind
                        WHEN 'protocol' THEN 1 + CASE WHEN {trim:v.notes} <> '' THEN 1 ELSE 0 END
                        WHEN 'rcr' THEN 1 + CASE WHEN {trim:v.result} <> '' THEN 1 ELSE 0 END
                        WHEN 'ltfu' THEN 1
                            + CASE WHEN {answer:new_malignancy} IS NOT NULL THEN 1 ELSE 0 END
                            + CASE WHEN {answer:neurological} IS NOT NULL THEN 1 ELSE 0 END
                            + CASE WHEN {answer:autoimmune} IS NOT NULL THEN 1 ELSE 0 END
                        ELSE 1 END AS filled
            FROM visit v JOIN subject s ON s.id = v.subject_id WHERE s.trial_id = :t) due
        WHERE due_from <= :d
        GROUP BY 1, 2, 3, 4, 5""",
    "sae_timeliness": """
        SELECT r.site_id, {local_month:r.first:site.timezone},
               CASE WHEN r.submitted_at <= r.due_at
                    THEN {local_month:r.submitted_at:site.timezone} END, count(*)
        FROM (SELECT site_id, due_at, submitted_at,
                     CASE WHEN submitted_at < due_at THEN submitted_at ELSE due_at END AS first
              FROM expedited_report WHERE trial_id = :t) r
        JOIN site ON site.id = r.site_id
        WHERE r.first < :end GROUP BY 1, 2, 3""",
    "site_months": """
        SELECT site.id, site.timezone, c.change, c."on" FROM site
        LEFT JOIN site_status_change c ON c.site_id = site.id ORDER BY site.id""",
    "approvals": "SELECT * FROM site_approval",
}
CONSORT_SQL = {
    "screening": """
        SELECT sc.outcome,
               CASE WHEN sc.outcome = 'declined' AND {has_items:sc.failed_criteria}
                    THEN 1 ELSE 0 END AS failing,
               CASE WHEN sc.consented_on <= :d THEN 1 ELSE 0 END,
               CASE WHEN sc.outcome = 'screen_failed'
                      OR (sc.outcome = 'declined' AND {has_items:sc.failed_criteria})
                    THEN CAST(sc.failed_criteria AS TEXT) END,
               CASE WHEN sc.outcome IN ('screen_failed', 'declined') THEN sc.fail_reason END,
               CASE WHEN sc.outcome = 'eligible' AND EXISTS (
                    SELECT 1 FROM subject s WHERE s.screening_id = sc.id AND s.trial_id = :t
                      AND s.enrolled_on <= :d) THEN 1 ELSE 0 END,
               count(*)
        FROM screening sc WHERE sc.trial_id = :t AND sc.screened_on <= :d
        GROUP BY 1, 2, 3, 4, 5, 6""",
    "subjects": """
        SELECT CASE WHEN d.dosed_at < :end THEN 1 ELSE 0 END,
               CASE WHEN p.status = 'done' AND p.done_on <= :d THEN 1 ELSE 0 END,
               CASE WHEN s.status = 'died' AND s.ended_on <= :d THEN 'died'
                    WHEN s.status = 'lost_to_follow_up' AND s.ended_on <= :d THEN 'lost'
                    WHEN s.withdrawn_on <= :d THEN 'withdrawn' END AS left_as,
               s.withdrawal_kind, s.withdrawal_reason, count(*)
        FROM subject s
        LEFT JOIN dosing d ON d.subject_id = s.id
        LEFT JOIN visit p ON p.subject_id = s.id AND p.primary_endpoint = TRUE
          AND NOT EXISTS ({earlier_primary})
        WHERE s.trial_id = :t AND s.enrolled_on <= :d
        GROUP BY 1, 2, 3, 4, 5""",
    "criteria": "SELECT code, text FROM eligibility_criterion WHERE trial_id = :t",
}


# a subject's first primary-endpoint visit (by date) is `p`: no earlier one
EARLIER_PRIMARY = """SELECT 1 FROM visit e WHERE e.subject_id = p.subject_id
    AND e.primary_endpoint = TRUE AND (e.scheduled_on < p.scheduled_on
    OR (e.scheduled_on = p.scheduled_on AND e.id < p.id))"""


def _spelled(sql: str, dialect: str) -> str:
    """The `{name:args}` parts of a hand-written statement in the database's own SQL."""
    import re

    sqlite = dialect == "sqlite"
    sql = sql.replace("{earlier_primary}", EARLIER_PRIMARY)
    forms = {
        "month": lambda x: f"strftime('%Y-%m', {x})" if sqlite else f"to_char({x}, 'YYYY-MM')",
        "day_after": lambda x: f"date({x}, '+1 day')" if sqlite else f"({x} + 1)",
        "earlier": lambda a, b: f"CASE WHEN {a} <= {b} THEN {a} ELSE {b} END",
        "has_items": lambda x: (
            f"coalesce(json_array_length({x}), 0) > 0"
            if sqlite
            else f"(CASE WHEN json_typeof({x}) = 'array' THEN json_array_length({x}) "
            "ELSE 0 END) > 0"
        ),
        "trim": lambda x: (
            f"trim({x}, ' ' || char(9, 10, 11, 12, 13))"
            if sqlite
            else f"btrim({x}, E' \\t\\n\\r\\f\\v')"
        ),
        "answer": lambda q: (
            f"json_extract(v.answers, '$.{q}')" if sqlite else f"(v.answers ->> '{q}')"
        ),
        # SQLite keeps no zones: the instants come back as they are (the service finds
        # their day at the site in Python there).
        "local_month": lambda x, tz: x if sqlite else f"to_char(timezone({tz}, {x}), 'YYYY-MM')",
    }
    pattern = re.compile(r"\{(\w+):([^{}]*)\}")
    while True:
        changed = pattern.sub(lambda m: forms[m.group(1)](*m.group(2).split(":")), sql)
        if changed == sql:
            return changed
        sql = changed


def _hand_written(
    ctx: Context, statements: dict[str, str], into: dict[str, list[Any]] | None = None
) -> Callable[[], None]:
    from datetime import UTC, datetime

    from trialmgr.extensions import db

    today = datetime.now(UTC).date()
    # the instant after the review day (the service takes it at each site; one instant here,
    # the generated doses and reports are nowhere near midnight)
    end = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    with ctx.app.app_context():
        dialect = db.engine.dialect.name
    if dialect == "sqlite":
        end = end.replace(tzinfo=None)  # stored naive (UTC) there
    params = {"t": ctx.world.trial_id, "d": today, "end": end}
    texts = [sa.text(_spelled(sql, dialect)) for sql in statements.values()]

    def run() -> None:
        with ctx.app.app_context():
            for key, sql in zip(statements, texts, strict=True):
                rows = db.session.execute(sql, params).all()
                if into is not None:
                    into[key] = rows
            db.session.rollback()

    return run


def _totals_differ(body: dict[str, Any], rows: dict[str, list[Any]]) -> list[str]:
    """Where the hand-written SQL's totals differ from the endpoint's numbers (it must do
    the same work to be a fair baseline)."""
    if "metrics" in body:
        got = {m["metric"]: m for m in body["metrics"]}
        visits = rows["visits"]
        pairs = {
            "enrolled": (sum(r[2] for r in rows["enrolled"]), "recruitment_rate", "numerator"),
            "assessed": (
                sum(
                    r[5]
                    for r in rows["screening"]
                    if r[1] in ("eligible", "screen_failed", "declined")
                ),
                "eligibility_rate",
                "denominator",
            ),
            "primary due": (sum(r[4] for r in rows["retention"]), "retention", "denominator"),
            "visits due": (sum(r[5] for r in visits), "visit_adherence", "denominator"),
            "in window": (
                sum(r[5] for r in visits if r[3] is not None and r[4]),
                "visit_adherence",
                "numerator",
            ),
            "fields filled": (
                sum(r[6] for r in visits if r[3] is not None),
                "data_completeness",
                "numerator",
            ),
            "reports due": (
                sum(r[3] for r in rows["sae_timeliness"]),
                "sae_timeliness",
                "denominator",
            ),
        }
        return [
            f"{label}: {ours} != {got[metric][part]}"
            for label, (ours, metric, part) in pairs.items()
            if ours != got[metric][part]
        ]
    pairs_flow = {
        "approached": sum(r[6] for r in rows["screening"]),
        "enrolled": sum(r[5] for r in rows["subjects"]),
        "dosed": sum(r[5] for r in rows["subjects"] if r[0]),
    }
    return [f"{k}: {v} != {body[k]}" for k, v in pairs_flow.items() if v != body[k]]


def _endpoint_vs_sql(ctx: Context, name: str, path: str, statements: dict[str, str]) -> Any:
    token = _token(ctx, ctx.world.lead_email)
    client = ctx.app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def call() -> None:
        resp = client.get(path, headers=headers)
        assert resp.status_code == 200, resp.json

    ours = load.median_seconds(call, repeat=3)
    bare = load.median_seconds(_hand_written(ctx, statements), repeat=3)
    rows: dict[str, list[Any]] = {}
    _hand_written(ctx, statements, rows)()
    differ = _totals_differ(client.get(path, headers=headers).json, rows)
    ratio = ours / bare
    return _row(
        name,
        f"{ours * 1000:.0f} ms",
        f"{bare * 1000:.0f} ms",
        ratio,
        "<= 2",
        ratio <= 2 and not differ,
        note="in process (token, service, JSON) against the same counts (by site and month) in "
        "hand-written SQL; medians of 3; "
        + (f"totals DIFFER: {'; '.join(differ)}" if differ else "same totals as the endpoint"),
    )


def feasibility(ctx: Context) -> dict[str, Any]:
    """GET /trials/{id}/feasibility (eight metrics with exact intervals) against the SQL
    counting the same numerators and denominators."""
    path = f"/api/v1/trials/{ctx.world.trial_id}/feasibility"
    return _endpoint_vs_sql(ctx, "feasibility metrics", path, FEASIBILITY_SQL)


def consort(ctx: Context) -> dict[str, Any]:
    """GET /trials/{id}/consort against the SQL counting each step."""
    path = f"/api/v1/trials/{ctx.world.trial_id}/consort"
    return _endpoint_vs_sql(ctx, "CONSORT flow", path, CONSORT_SQL)


# --- 6. concurrent enrolment -------------------------------------------------------------


def concurrent_enrolment(ctx: Context) -> dict[str, Any]:
    """50 parallel enrolments into a cohort of 3: exactly 3, no 5xx."""
    from trialmgr.clock import utcnow

    world = ctx.world
    token = _token(ctx, world.coordinator_emails[world.site_ids[0]])
    with ctx.app.app_context():
        from trialmgr.enrollment.models import Trial
        from trialmgr.extensions import db

        version = db.session.get(Trial, world.trial_id).consent_versions[0].id
    today = utcnow().date()

    def request(i: int) -> tuple[str, str, dict[str, Any], dict[str, str]]:
        return (
            "POST",
            "/api/v1/subjects",
            {
                "screening_id": world.spare_screening_ids[i],
                "cohort_id": world.spare_cohort_id,
                "consent_version_id": version,
                "consented_on": (today - timedelta(days=5)).isoformat(),
            },
            {"Authorization": f"Bearer {token}"},
        )

    with gunicorn("wsgi:app", ctx.database.url, ctx.tmp / "instance") as base:
        result = load.run(base, request, 50, 50, ok=(201, 409))
    enrolled = result.statuses.get(201, 0)
    server_errors = sum(n for status, n in result.statuses.items() if status >= 500 or status == 0)
    return _row(
        "concurrent enrolment (50 on 3)",
        f"{enrolled} enrolled",
        "3 slots",
        None,
        "exactly 3",
        enrolled == 3 and server_errors == 0,
        note=f"statuses {result.statuses}; p95 {result.pct(95) * 1000:.0f} ms",
    )


# --- 7. start-up -------------------------------------------------------------------------


_CPU: dict[int, float] = {}  # id(args) -> the median CPU seconds of the last _run_seconds


def _run_seconds(args: list[str], env: dict[str, str] | None = None) -> float:
    """The median wall time of five runs (the median CPU time, user + system, in `_CPU`:
    steadier than wall time on a shared machine)."""
    import resource

    samples, cpu = [], []
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(args, cwd=ROOT, check=True, capture_output=True, env=env)
        samples.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    _CPU[id(args)] = sorted(cpu)[2]
    return sorted(samples)[2]


# The baseline: Flask with the extensions the app runs on (Flask-SQLAlchemy with its engine,
# flask-smorest, Flask-Login, Flask-WTF's CSRF, Flask-Limiter), none of the app's own code.
# Flask-Migrate is not among them: the app loads it only for `flask db`.
_BARE_APP = (
    "import os, flask, flask_sqlalchemy, flask_smorest, flask_login, flask_wtf, flask_limiter\n"
    "from flask_limiter.util import get_remote_address\n"
    "bare = flask.Flask('bare')\n"
    "bare.config.update(SQLALCHEMY_DATABASE_URI=os.environ['DATABASE_URL'], API_TITLE='bare', "
    "API_VERSION='1', OPENAPI_VERSION='3.0.2', RATELIMIT_STORAGE_URI='memory://', "
    "SECRET_KEY='x')\n"
    "flask_sqlalchemy.SQLAlchemy().init_app(bare)\n"
    "flask_smorest.Api(bare)\n"
    "flask_login.LoginManager(bare)\n"
    "flask_wtf.CSRFProtect(bare)\n"
    "flask_limiter.Limiter(get_remote_address, app=bare)\n"
)
_BARE_FIRST_REQUEST = (
    _BARE_APP + "bare.route('/health')(lambda: 'ok')\n"
    "assert bare.test_client().get('/health').status_code == 200\n"
)
_OUR_FIRST_REQUEST = (
    "from wsgi import app; assert app.test_client().get('/health').status_code == 200"
)


def startup(ctx: Context) -> list[dict[str, Any]]:
    """`flask --help` (every CLI command pays it) and a worker's first request (import, app
    factory, one request) against a bare Flask app with the same extensions (and one request),
    in fresh processes (the median of five). `import flask` alone is in the note: an app
    that talks to a database through SQLAlchemy cannot start in twice that."""
    import os

    env = {
        **os.environ,
        "DATABASE_URL": ctx.database.url,
        "TRIALMGR_INSTANCE": str(ctx.tmp / "instance"),
        "PYTHONPATH": str(ROOT),
    }
    flask_bin = str(Path(sys.executable).parent / "flask")
    # The libraries the baseline loads are byte-compiled (pip did it); the app's own modules
    # are too, as a deployment's would be after its first start (with PYTHONDONTWRITEBYTECODE
    # set, as on the development machines, every start would compile ~170 modules again).
    compiled = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "trialmgr", "wsgi.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env=compiled,
    )
    flask_args = [sys.executable, "-c", "import flask; flask.Flask('bare')"]
    flask_only = _run_seconds(flask_args, env)
    flask_cpu = _CPU[id(flask_args)]
    rows = []
    for name, ours_args, base_args in (
        (
            "start-up (flask --help)",
            [flask_bin, "--app", "wsgi", "--help"],
            [sys.executable, "-c", _BARE_APP],
        ),
        (
            "start-up (first request)",
            [sys.executable, "-c", _OUR_FIRST_REQUEST],
            [sys.executable, "-c", _BARE_FIRST_REQUEST],
        ),
    ):
        base = _run_seconds(base_args, env)
        ours = _run_seconds(ours_args, env)
        ours_cpu, base_cpu = _CPU[id(ours_args)], _CPU[id(base_args)]
        ratio = ours / base
        note = (
            f"CPU {ours_cpu:.2f} s vs {base_cpu:.2f} s ({ours_cpu / base_cpu:.2f}x); "
            f"import flask alone: {flask_only:.2f} s, CPU {flask_cpu:.2f} s "
            f"({ours / flask_only:.1f}x wall, {ours_cpu / flask_cpu:.1f}x CPU)"
        )
        rows.append(
            _row(name, f"{ours:.2f} s", f"{base:.2f} s", ratio, "<= 2", ratio <= 2, note=note)
        )
    return rows


CASES: dict[str, Callable[[Context], dict[str, Any] | list[dict[str, Any]]]] = {
    "ae_write": ae_write,
    "audit_verify": audit_verify,
    "concurrent_enrolment": concurrent_enrolment,
    "startup": startup,
    "feasibility": feasibility,
    "consort": consort,
    "dsmb_report": dsmb.dsmb_report,
}
