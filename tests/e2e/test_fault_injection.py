"""Fault injection through real processes: while 10 clients write adverse events and
enrolments through gunicorn (3 workers), one worker is killed with SIGKILL; then the report
scheduler (`flask scheduler run`) is killed with SIGKILL in the middle of a report. After
that: every 201 answer's record exists, whole; no record is half-written; the cohort cap
held; `flask audit verify` passes; the next scheduler run completes the report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.builders import at, days_ago, dose, eligible_screening, enrol, world
from trialmgr import ROOT
from trialmgr.extensions import db
from trialmgr.reports.models import Report, ReportSchedule, SchedulerLease
from trialmgr.reports.services import archive

SECRET = "fault-injection-secret-0123456789abcdef"
CLIENTS = 10
CAPACITY = 4


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(app, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": SECRET,
        "TRIALMGR_INSTANCE": app.instance_path,
        "FLASK_APP": "wsgi",
        **extra,
    }


@contextmanager
def _gunicorn(app) -> Iterator[tuple[str, subprocess.Popen]]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "3", "-b", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT,
        env=_env(app),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # starting is not under test; a busy machine is slow
        while len(_children(proc.pid)) < 3 or not _healthy(base):
            assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=120)


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _post(base: str, path: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{base}/api/v1{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except OSError:  # the worker died with the request: no answer, nothing acknowledged
        return 0, None


def _scheduler(app, tmp_path: Path, name: str, *args: str, **config: Any) -> subprocess.Popen:
    settings = {"SCHEDULER_LEASE_SECONDS": 2, "SCHEDULER_POLL_SECONDS": 0.3, **config}
    path = tmp_path / f"{name}.py"
    path.write_text("".join(f"{key} = {value!r}\n" for key, value in settings.items()))
    log = (tmp_path / f"{name}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "scheduler", "run", *args],
        cwd=ROOT,
        env=_env(app, TRIALMGR_CONFIG=str(path)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _wait_for_the_lease_to_expire(app) -> None:
    with app.app_context():
        expires = db.session.execute(sa.select(SchedulerLease.expires_at)).scalar_one_or_none()
        db.session.rollback()
    if expires is not None:
        time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)


def _report_state(app) -> tuple[str | None, list[Path]]:
    with app.app_context():
        status = db.session.execute(sa.select(Report.status)).scalar_one_or_none()
        db.session.rollback()
    folder = Path(app.instance_path) / "reports"
    return status, sorted(folder.glob("*")) if folder.exists() else []


def test_killed_workers_and_scheduler_lose_nothing_acknowledged(app, api, tmp_path):
    w = world(api, capacities=(3, CAPACITY, 3))
    coord, trial, site = w["coord"], w["trial"], w["site"]
    dosed = [enrol(coord, trial, site) for _ in range(2)]
    assert dose(coord, dosed[0], days_ago(100)).status_code == 201
    assert dose(coord, dosed[1], days_ago(80)).status_code == 201
    screenings = [eligible_screening(coord, trial, site) for _ in range(12)]
    with app.app_context():
        from tests.test_reports_scheduler import _schedule

        _schedule(app, trial["id"], cron="0 0 * * *", kind="dsmb_safety")
    enrol_body = {
        "cohort_id": trial["cohorts"][1]["id"],
        "consent_version_id": trial["consent_versions"][0]["id"],
        "consented_on": days_ago(290).isoformat(),
    }
    answers: list[tuple[str, int, Any, dict[str, Any]]] = []
    lock = threading.Lock()

    def client(i: int, base: str) -> None:
        for n in range(6):
            if i % 2:  # an adverse event
                body = {
                    "subject_code": dosed[n % 2]["code"],
                    "term": f"Headache {i}-{n}",
                    "soc": "Nervous system disorders",
                    "onset_date": days_ago(5).isoformat(),
                    "grade": 1,
                    "causality": "unlikely",
                    "expected": True,
                    "site_awareness_at": at(days_ago(4)),
                }
                status, out = _post(base, "/adverse-events", coord.token, body)
                kind = "ae"
            else:  # an enrolment, into a cohort of CAPACITY
                screening = screenings[(i // 2 * 3 + n) % len(screenings)]
                body = {**enrol_body, "screening_id": screening["id"]}
                status, out = _post(base, "/subjects", coord.token, body)
                kind = "subject"
            with lock:
                answers.append((kind, status, out, body))

    with _gunicorn(app) as (base, master):
        threads = [threading.Thread(target=client, args=(i, base)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        victim = _children(master.pid)[0]
        os.kill(victim, signal.SIGKILL)  # a worker dies, whatever it was doing
        for thread in threads:
            thread.join(120)
        assert master.poll() is None  # the master replaced the worker
        after = [_post(base, "/adverse-events", coord.token, {}) for _ in range(3)]
        assert [status for status, _ in after] == [422] * 3  # served by the workers left

    # the scheduler, killed in the middle of the day's report
    slow = _scheduler(app, tmp_path, "slow", REPORT_TEST_DELAY_SECONDS=60)
    try:
        deadline = time.monotonic() + 180
        while True:
            status, files = _report_state(app)
            if status == "running" and any(f.name.startswith(archive.TEMP_PREFIX) for f in files):
                break
            assert slow.poll() is None and time.monotonic() < deadline, (
                tmp_path / "slow.log"
            ).read_text()
            time.sleep(0.2)
        slow.send_signal(signal.SIGKILL)
        slow.wait(10)
    finally:
        if slow.poll() is None:
            slow.kill()
    status, files = _report_state(app)
    assert status == "running" and not [f for f in files if f.suffix == ".pdf"]

    # nothing acknowledged is lost, nothing is half-written
    with app.app_context():
        conn = db.session.connection()
        aes = {
            row.id: row
            for row in conn.execute(sa.text("SELECT id, term, subject_id FROM adverse_event"))
        }
        versions = dict(
            conn.execute(
                sa.text("SELECT adverse_event_id, count(*) FROM adverse_event_version GROUP BY 1")
            ).all()
        )
        subjects = {
            row.code: row
            for row in conn.execute(sa.text("SELECT code, screening_id, cohort_id FROM subject"))
        }
        screened = dict(conn.execute(sa.text("SELECT id, outcome FROM screening")).all())
        subject_ids = dict(conn.execute(sa.text("SELECT code, id FROM subject")).all())
        audited = {
            (entity, entity_id)
            for entity, entity_id in conn.execute(
                sa.text("SELECT entity, entity_id FROM audit_event")
            )
        }
        db.session.rollback()
    acknowledged = [(kind, out, body) for kind, status, out, body in answers if status == 201]
    lost = [
        out
        for kind, out, body in acknowledged
        if (kind == "ae" and (out["id"] not in aes or aes[out["id"]].term != body["term"]))
        or (kind == "subject" and out["code"] not in subjects)
    ]
    assert lost == []
    assert all(versions.get(ae_id, 0) >= 1 for ae_id in aes)  # every AE with its version
    assert all(("adverse_event", str(ae_id)) in audited for ae_id in aes)
    assert all(row.screening_id in screened for row in subjects.values())
    assert all(("subject", str(subject_ids[code])) in audited for code in subjects)
    statuses = [status for _, status, _, _ in answers]
    assert set(statuses) <= {0, 201, 409}, statuses  # no 5xx, whatever died
    in_cohort = [s for s in subjects.values() if s.cohort_id == enrol_body["cohort_id"]]
    assert len(in_cohort) == CAPACITY  # the cap held (12 tried for 4 places)
    ae_answers = [s for kind, s, _, _ in answers if kind == "ae"]
    print(
        f"\nfault injection: {len(answers)} requests ({statuses.count(0)} unanswered when the "
        f"worker died), {len(acknowledged)} acknowledged and found; {len(aes)} adverse events "
        f"({ae_answers.count(201)} acknowledged), {len(subjects)} subjects, "
        f"{len(in_cohort)}/{CAPACITY} in the capped cohort"
    )

    verified = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert verified.exit_code == 0, verified.output

    # the next scheduler run completes the interrupted report, once the killed scheduler's
    # lease has run out (SQLite; on PostgreSQL the server released its lock with it): a run
    # that starts while it is still valid rightly does nothing
    _wait_for_the_lease_to_expire(app)
    again = _scheduler(app, tmp_path, "again", "--once")
    assert again.wait(120) == 0, (tmp_path / "again.log").read_text()
    with app.app_context():
        report = db.session.execute(sa.select(Report)).scalar_one()
        stored = Path(app.instance_path) / "reports" / (report.file_path or "missing")
        assert (report.status, report.attempts) == ("done", 2)
        assert archive.file_digest(stored) == (report.sha256, report.size)
        schedules = db.session.execute(sa.select(ReportSchedule)).scalars().all()
        assert len(schedules) == 1
    assert datetime.now(UTC) - report.generated_at < timedelta(minutes=5)
