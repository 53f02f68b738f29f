"""Schedules and the scheduler: cron and the periods it makes, one report per period however
often it runs, crash-safe files, retries, and one active scheduler at a time."""

import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.builders import TODAY, world
from trialmgr import ROOT
from trialmgr.errors import Invalid
from trialmgr.extensions import db
from trialmgr.reports.models import Report, ReportSchedule
from trialmgr.reports.services import archive
from trialmgr.reports.services.schedules import period_for, trigger_for

# --- cron and periods ---------------------------------------------------------------------


def _at(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "cron, moment, period",
    [
        # monthly on the 1st at 06:00: the previous calendar month, whenever it runs late
        ("0 6 1 * *", "2026-12-01T06:00:00", ("2026-11-01", "2026-11-30")),
        ("0 6 1 * *", "2026-12-15T10:00:00", ("2026-11-01", "2026-11-30")),
        ("0 6 1 * *", "2026-12-01T05:59:00", ("2026-10-01", "2026-10-31")),
        # weekly on Mondays (crontab 1): Monday to Sunday
        ("0 6 * * 1", "2026-12-07T06:00:00", ("2026-11-30", "2026-12-06")),
        ("0 6 * * mon", "2026-12-09T00:00:00", ("2026-11-30", "2026-12-06")),
        # Sundays (crontab 0)
        ("30 2 * * 0", "2026-12-06T03:00:00", ("2026-11-29", "2026-12-05")),
        # daily: the day before
        ("0 0 * * *", "2026-12-02T00:00:00", ("2026-12-01", "2026-12-01")),
        # several runs a day make one period: yesterday
        ("0 * * * *", "2026-12-02T10:30:00", ("2026-12-01", "2026-12-01")),
        ("*/5 * * * *", "2026-12-02T00:07:00", ("2026-12-01", "2026-12-01")),
    ],
)
def test_period_of_a_run(cron, moment, period):
    start, end = period_for(cron, _at(moment))
    assert (start.isoformat(), end.isoformat()) == period


def test_crontab_weekdays_are_crontab_weekdays():
    tuesday = _at("2026-12-01T07:00:00")
    assert tuesday.strftime("%A") == "Tuesday"
    for cron, weekday in (
        ("0 6 * * 1", "Monday"),
        ("0 6 * * 0", "Sunday"),
        ("0 6 * * 1-5", "Wednesday"),
        ("0 6 * * 5,6", "Friday"),
        ("0 6 * * sat", "Saturday"),
    ):
        fire = trigger_for(cron).get_next_fire_time(None, tuesday)
        assert fire.strftime("%A") == weekday, cron


@pytest.mark.parametrize(
    "cron", ["", "* * *", "61 * * * *", "0 25 * * *", "0 6 1 * 1", "0 6 * * 9", "every monday"]
)
def test_invalid_cron_is_refused(cron):
    with pytest.raises(Invalid) as refused:
        trigger_for(cron)
    assert "cron" in refused.value.errors


# --- the schedules API ------------------------------------------------------------------


def test_schedules_are_created_validated_changed_and_subscribed(app, api):
    w = world(api)
    lead, trial_id = w["lead"], w["trial"]["id"]
    created = lead.post(
        "/report-schedules", json={"kind": "dsmb_safety", "trial_id": trial_id, "cron": "0 6 1 * *"}
    )
    assert created.status_code == 201, created.json
    assert created.json["active"] and not created.json["subscribed"]
    schedule_id = created.json["id"]
    bad = lead.post(
        "/report-schedules",
        json={"kind": "dsmb_safety", "trial_id": trial_id, "cron": "0 6 32 * *"},
    )
    assert bad.status_code == 422 and "cron" in bad.json["errors"]
    same = lead.post(
        "/report-schedules",
        json={"kind": "dsmb_safety", "trial_id": trial_id, "cron": "0  6 1 * *"},
    )
    assert same.status_code == 409
    changed = lead.patch(f"/report-schedules/{schedule_id}", json={"cron": "0 7 1 * *"})
    assert changed.status_code == 200 and changed.json["cron"] == "0 7 1 * *"
    assert lead.patch(f"/report-schedules/{schedule_id}", json={"cron": "x"}).status_code == 422
    off = lead.patch(f"/report-schedules/{schedule_id}", json={"active": False})
    assert off.json["active"] is False
    monitor = api.as_role("safety_monitor")
    assert monitor.post(f"/report-schedules/{schedule_id}/subscription").status_code == 200
    assert monitor.post(f"/report-schedules/{schedule_id}/subscription").status_code == 200
    listed = monitor.get("/report-schedules").json
    assert listed[0]["subscribed"] is True and listed[0]["subscribers"] == 1
    assert monitor.delete(f"/report-schedules/{schedule_id}/subscription").status_code == 204
    assert monitor.get("/report-schedules").json[0]["subscribed"] is False
    assert w["coord"].get("/report-schedules").status_code == 403
    assert (
        monitor.patch(f"/report-schedules/{schedule_id}", json={"active": True}).status_code == 403
    )
    assert lead.post("/report-schedules/999/subscription").status_code == 404


# --- runs ---------------------------------------------------------------------------------


def _schedule(app, trial_id, cron="0 0 * * *", kind="site_enrollment"):
    """A schedule made long enough ago that its latest run is due."""
    from trialmgr.auth.models import SystemActor
    from trialmgr.reports.services import schedules

    with app.app_context():
        schedule = schedules.create_schedule(
            SystemActor(email="system:test"), {"kind": kind, "trial_id": trial_id, "cron": cron}
        )
        db.session.flush()
        db.session.execute(
            sa.update(ReportSchedule)
            .where(ReportSchedule.id == schedule.id)
            .values(created_at=datetime.now(UTC) - timedelta(days=3))
        )
        db.session.commit()
        return schedule.id


def _reports(app):
    with app.app_context():
        return [
            (r.kind, r.period_start, r.period_end, r.status, r.error, r.file_path, r.attempts)
            for r in db.session.execute(sa.select(Report).order_by(Report.id)).scalars()
        ]


def _folder(app):
    return Path(app.instance_path) / "reports"


def test_two_scheduler_runs_for_the_same_period_make_one_report(app, api, runner):
    w = world(api)
    schedule_id = _schedule(app, w["trial"]["id"])
    first = runner.invoke(args=["scheduler", "run", "--once"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["scheduler", "run", "--once"])
    assert second.exit_code == 0, second.output
    reports = _reports(app)
    yesterday = TODAY - timedelta(days=1)
    assert [(k, s, e, st) for k, s, e, st, *_ in reports] == [
        ("site_enrollment", yesterday, yesterday, "done")
    ]
    from trialmgr.reports import jobs

    with app.app_context():
        again = jobs.run_schedule(schedule_id, datetime.now(UTC))
    assert again.status == "done" and again.generated is False
    assert len(_reports(app)) == 1
    assert len(list(_folder(app).glob("*.pdf"))) == 1


def test_a_crash_between_write_and_rename_leaves_no_partial_report(app_factory, api, monkeypatch):
    app = app_factory(REPORT_RETRY_SECONDS=1)
    runner = app.test_cli_runner()
    from tests.factories import ApiClient

    w = world(ApiClient(app))
    _schedule(app, w["trial"]["id"])
    real_replace = os.replace
    calls = []

    def crash_once(src, dst):
        calls.append(dst)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(archive.os, "replace", crash_once)
    assert runner.invoke(args=["scheduler", "run", "--once"]).exit_code == 0
    ((_, _, _, status, error, file_path, attempts),) = _reports(app)
    assert (status, file_path, attempts) == ("failed", None, 1)
    assert error.startswith("OSError: [Errno 28] No space left on device")
    folder = _folder(app)
    assert not Path(calls[0]).exists()  # nothing at the final path
    assert list(folder.glob("*.pdf")) == []
    assert list(folder.glob(f"{archive.TEMP_PREFIX}*")) == []  # the run removed its temp file
    # a process killed at that moment leaves its temp file: the next start removes it (once it
    # is older than any run could still be writing it), and the next run succeeds
    stray = folder / f"{archive.TEMP_PREFIX}killed{archive.TEMP_SUFFIX}"
    stray.write_bytes(b"%PDF-1.4 half a report")
    old = time.time() - 3600
    os.utime(stray, (old, old))
    fresh = folder / f"{archive.TEMP_PREFIX}writing{archive.TEMP_SUFFIX}"
    fresh.write_bytes(b"%PDF-1.4 being written now")
    time.sleep(1.1)  # the retry is due
    result = runner.invoke(args=["scheduler", "run", "--once"])
    assert result.exit_code == 0, result.output
    assert not stray.exists() and fresh.exists()
    ((_, _, _, status, error, file_path, attempts),) = _reports(app)
    assert (status, error, attempts) == ("done", None, 2)
    stored = folder / file_path
    with app.app_context():
        report = db.session.execute(sa.select(Report)).scalar_one()
        assert archive.file_digest(stored) == (report.sha256, report.size)
    cleaned = runner.invoke(args=["reports", "clean", "--all-temp"])
    assert cleaned.exit_code == 0 and not fresh.exists()


def test_failures_are_retried_with_growing_delays_until_the_last_attempt(app, api, monkeypatch):
    from trialmgr.reports import builders, jobs
    from trialmgr.reports.services.archive import ReportKey

    w = world(api)
    monkeypatch.setattr(builders, "build", lambda *a: 1 / 0)
    key = ReportKey("feasibility", w["trial"]["id"], None, date(2026, 1, 1), TODAY)
    now = datetime.now(UTC)
    with app.app_context():
        assert jobs.run_report(jobs.SCHEDULER, key, now).status == "failed"
        report = archive.find(key)
        assert report.next_attempt_at == now + timedelta(seconds=300)
        # not due yet: a scheduled run leaves it alone
        assert jobs.run_report(jobs.SCHEDULER, key, now + timedelta(seconds=10)).status == "waiting"
        delays = [300]
        for attempt in range(2, 6):
            due = archive.find(key).next_attempt_at
            results = jobs.retry_failed(due)
            assert [r.status for r in results] == ["failed"]
            report = archive.find(key)
            assert report.attempts == attempt
            if attempt < 5:
                delays.append(int((report.next_attempt_at - due).total_seconds()))
        assert delays == [300, 600, 1200, 2400]
        assert report.next_attempt_at is None  # the fifth attempt was the last
        assert jobs.retry_failed(now + timedelta(days=1)) == []


def test_interrupted_runs_are_retried_by_the_next_scheduler(app, api, runner):
    from trialmgr.auth.models import SystemActor
    from trialmgr.reports.services.archive import ReportKey

    w = world(api)
    key = ReportKey("site_enrollment", w["trial"]["id"], None, TODAY.replace(day=1), TODAY)
    with app.app_context():
        actor = SystemActor(email="system:test")
        report = archive.request_report(actor, key, datetime.now(UTC))
        archive.start(actor, report, datetime.now(UTC))
        db.session.commit()  # then the process died
    result = runner.invoke(args=["scheduler", "run", "--once"])
    assert result.exit_code == 0, result.output
    ((_, _, _, status, _, _, attempts),) = _reports(app)
    assert (status, attempts) == ("done", 2)


# --- one active scheduler -----------------------------------------------------------------


def test_only_one_scheduler_holds_the_lock_and_another_takes_over(app, is_postgres):
    from trialmgr.reports.leader import AdvisoryLock, LeaseLock, make_lock

    app.config["SCHEDULER_LEASE_SECONDS"] = 1
    first, second = make_lock(app, "first"), make_lock(app, "second")
    assert isinstance(first, AdvisoryLock if is_postgres else LeaseLock)
    try:
        assert first.acquire() is True
        assert second.acquire() is False
        assert first.renew() is True
        first.release()
        assert second.acquire() is True
        assert first.acquire() is False
        # the holder dies without releasing: its connection drops (PostgreSQL) or its lease
        # runs out unrenewed (SQLite); the other takes over within the lease
        if is_postgres:
            second.conn.invalidate()
            second.conn = None
            assert first.acquire() is True
        else:
            assert first.acquire() is False
            time.sleep(1.2)
            assert first.acquire() is True
            assert second.renew() is False  # the old holder learns it lost the lock
    finally:
        first.release()
        second.release()


def _scheduler_process(app, tmp_path, name):
    config = tmp_path / "scheduler_config.py"
    config.write_text(
        "SCHEDULER_LEASE_SECONDS = 2\nSCHEDULER_POLL_SECONDS = 0.3\nSCHEDULER_SYNC_SECONDS = 1\n"
    )
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": "scheduler-test-secret-0123456789abcdef",
        "TRIALMGR_INSTANCE": app.instance_path,
        "TRIALMGR_CONFIG": str(config),
        "FLASK_APP": "wsgi",
    }
    log = (tmp_path / f"{name}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "scheduler", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, tmp_path / f"{name}.log"


def _wait_for(path, text, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in path.read_text():
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in {path.name}:\n{path.read_text()}")


def test_two_scheduler_processes_one_active_the_other_takes_over(app, api, tmp_path):
    w = world(api)
    _schedule(app, w["trial"]["id"], cron="* * * * *")
    a, a_log = _scheduler_process(app, tmp_path, "a")
    b = None
    try:
        _wait_for(a_log, "now active")
        _wait_for(a_log, "done (")  # the day's report, caught up at the start
        b, b_log = _scheduler_process(app, tmp_path, "b")
        _wait_for(b_log, "standing by")
        with app.app_context():
            jobs = db.session.execute(sa.text("SELECT id FROM apscheduler_jobs")).scalars().all()
        assert jobs == [f"report-schedule-{_only_schedule(app)}"]
        a.kill()  # no goodbye: the lock goes with the process (or its lease runs out)
        a.wait(10)
        killed = time.monotonic()
        taken = _wait_for(b_log, "now active", seconds=30)
        # within the lease (2 s) and a poll (0.3 s), with slack for a busy 2-core machine
        assert taken - killed < 2 + 0.3 + 6
        time.sleep(1.5)  # b catches up: the day's report exists, nothing is made twice
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(60)
    reports = _reports(app)
    assert len(reports) == 1 and reports[0][3] == "done"
    assert "done (" not in b_log.read_text()
    assert "no longer active" in b_log.read_text()  # SIGTERM: released and stopped
    with app.app_context():
        # the schedule ran once: one generation in the audit trail, and the standby took
        # over the one job of the shared job store instead of adding its own
        generated = db.session.execute(
            sa.text("SELECT count(*) FROM audit_event WHERE action = 'report.generate'")
        ).scalar_one()
        jobs_after = db.session.execute(sa.text("SELECT id FROM apscheduler_jobs")).scalars()
        assert (generated, list(jobs_after)) == (1, jobs)


def _only_schedule(app):
    with app.app_context():
        return db.session.execute(sa.select(ReportSchedule.id)).scalar_one()


def test_jobs_follow_the_schedules_table(app, api):
    from apscheduler.schedulers.background import BackgroundScheduler

    from trialmgr.reports.services.schedules import trigger_for
    from trialmgr.scheduler import JOB_PREFIX, build_scheduler, sync_jobs

    w = world(api)
    schedule_id = _schedule(app, w["trial"]["id"], cron="0 6 * * 1")
    with app.app_context():
        engine = db.engine
    blocking = build_scheduler(app, engine)
    scheduler = BackgroundScheduler(
        jobstores=blocking._jobstores,
        executors={},
        timezone=UTC,
        job_defaults=blocking._job_defaults,
    )
    scheduler.start(paused=True)
    try:
        sync_jobs(app, scheduler)
        (job,) = scheduler.get_jobs(jobstore="default")
        assert job.id == f"{JOB_PREFIX}{schedule_id}"
        assert str(job.trigger) == str(trigger_for("0 6 * * 1"))
        assert job.next_run_time.strftime("%A %H:%M") == "Monday 06:00"
        assert (job.coalesce, job.misfire_grace_time) == (True, 31 * 24 * 3600)
        w["lead"].patch(f"/report-schedules/{schedule_id}", json={"cron": "0 6 1 * *"})
        sync_jobs(app, scheduler)
        (job,) = scheduler.get_jobs(jobstore="default")
        assert job.next_run_time.day == 1
        w["lead"].patch(f"/report-schedules/{schedule_id}", json={"active": False})
        sync_jobs(app, scheduler)
        assert scheduler.get_jobs(jobstore="default") == []
    finally:
        scheduler.shutdown(wait=False)


def test_the_job_apscheduler_fires_makes_the_period_report(app, api):
    from trialmgr.scheduler import Runtime, run_schedule_job

    w = world(api)
    schedule_id = _schedule(app, w["trial"]["id"], cron="0 0 * * *")
    Runtime.app = app
    try:
        run_schedule_job(schedule_id)
        run_schedule_job(schedule_id)
    finally:
        Runtime.app = None
    yesterday = TODAY - timedelta(days=1)
    assert [(k, s, e, st) for k, s, e, st, *_ in _reports(app)] == [
        ("site_enrollment", yesterday, yesterday, "done")
    ]
