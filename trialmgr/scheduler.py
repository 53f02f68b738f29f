"""`flask scheduler run`: the process that produces scheduled reports.

One scheduler is active at a time, however many run (two machines for availability): on
PostgreSQL the active one holds a session-level advisory lock on a connection of its own
for as long as it lives (the server releases it when the process or its connection dies);
on SQLite (one machine) it holds a lease row that it renews, which another takes over once
it has expired. The others stand by, trying every few seconds.

The active scheduler runs APScheduler 3 (BlockingScheduler) with its SQLAlchemy job store in
the application database: one job per active report schedule, synced from the
report_schedules table at start and every SCHEDULER_SYNC_SECONDS. Missed fire times are
coalesced and caught up once (misfire grace SCHEDULER_MISFIRE_GRACE_SECONDS). Report runs
go one at a time through their own executor; lease renewal and syncing through another,
so a long report never lets the lease lapse. Web workers never start a scheduler.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
from datetime import UTC, datetime
from typing import Any

import click
import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from trialmgr.auth.mail import flush_outgoing
from trialmgr.clock import utcnow
from trialmgr.extensions import db
from trialmgr.reports import jobs
from trialmgr.reports.leader import LeaderLock, make_lock
from trialmgr.reports.models import ReportSchedule
from trialmgr.reports.services import schedules

log = logging.getLogger("trialmgr.scheduler")

JOB_PREFIX = "report-schedule-"
JOB_FUNC = "trialmgr.scheduler:run_schedule_job"


# --- the active scheduler -------------------------------------------------------------


class Runtime:
    """The process's app and, while active, its APScheduler (jobs run in its threads)."""

    app: Flask | None = None
    scheduler: BaseScheduler | None = None
    stop = threading.Event()


def run_schedule_job(schedule_id: int) -> None:
    """APScheduler's job for a report schedule (kept by reference in the job store)."""
    app = Runtime.app
    if app is None:
        raise RuntimeError("the scheduler's app is not set")
    with app.app_context():
        try:
            result = jobs.run_schedule(schedule_id, utcnow())
        finally:
            db.session.remove()
    if result is not None:
        log.info("schedule %s: report %s %s", schedule_id, result.report_id, result.status)


def _in_context(app: Flask, work: Any, *args: Any) -> Any:
    with app.app_context():
        try:
            return work(*args)
        finally:
            db.session.remove()


def sync_jobs(app: Flask, scheduler: BaseScheduler) -> None:
    """Make the job store hold one job per active schedule, with its trigger."""

    def wanted_jobs() -> dict[str, tuple[int, str, str]]:
        rows = db.session.execute(
            sa.select(ReportSchedule).where(ReportSchedule.active.is_(True))
        ).scalars()
        return {f"{JOB_PREFIX}{s.id}": (s.id, s.cron, f"{s.kind} trial {s.trial_id}") for s in rows}

    wanted = _in_context(app, wanted_jobs)
    existing = {job.id: job for job in scheduler.get_jobs(jobstore="default")}
    for job_id in existing.keys() - wanted.keys():
        scheduler.remove_job(job_id, jobstore="default")
        log.info("removed job %s (schedule deleted or deactivated)", job_id)
    for job_id, (schedule_id, cron, name) in wanted.items():
        trigger = schedules.trigger_for(cron)
        job = existing.get(job_id)
        if job is None:
            scheduler.add_job(
                JOB_FUNC,
                trigger,
                args=[schedule_id],
                id=job_id,
                name=f"{name} ({cron})",
                jobstore="default",
                executor="default",
                replace_existing=True,
            )
            log.info("added job %s: %s", job_id, cron)
        elif str(job.trigger) != str(trigger):
            scheduler.reschedule_job(job_id, jobstore="default", trigger=trigger)
            scheduler.modify_job(job_id, jobstore="default", name=f"{name} ({cron})")
            log.info("rescheduled job %s: %s", job_id, cron)


def _heartbeat(lock: LeaderLock, scheduler: BaseScheduler) -> None:
    if not lock.renew():
        log.warning("lost the scheduler lock: standing down")
        scheduler.shutdown(wait=False)


def build_scheduler(app: Flask, engine: sa.Engine) -> BlockingScheduler:
    config = app.config
    return BlockingScheduler(
        jobstores={
            "default": SQLAlchemyJobStore(engine=engine, tablename="apscheduler_jobs"),
            "housekeeping": MemoryJobStore(),
        },
        executors={"default": ThreadPoolExecutor(1), "housekeeping": ThreadPoolExecutor(1)},
        job_defaults={
            "coalesce": True,
            "misfire_grace_time": config["SCHEDULER_MISFIRE_GRACE_SECONDS"],
            "max_instances": 1,
        },
        timezone=UTC,
    )


def serve(app: Flask, lock: LeaderLock) -> None:
    """Be the active scheduler until stopped or the lock is lost."""
    now = utcnow()
    _in_context(app, jobs.start_of_term, now)
    with app.app_context():
        engine = db.engine
    scheduler = build_scheduler(app, engine)
    config = app.config
    lease = config["SCHEDULER_LEASE_SECONDS"]
    housekeeping = {"jobstore": "housekeeping", "executor": "housekeeping"}
    scheduler.add_job(
        _heartbeat,
        "interval",
        seconds=max(lease / 3, 1),
        args=[lock, scheduler],
        id="heartbeat",
        **housekeeping,
    )
    scheduler.add_job(
        sync_jobs,
        "interval",
        seconds=config["SCHEDULER_SYNC_SECONDS"],
        args=[app, scheduler],
        id="sync",
        next_run_time=datetime.now(UTC),
        **housekeeping,
    )
    scheduler.add_job(
        lambda: _in_context(app, jobs.catch_up, utcnow()),
        "date",
        run_date=datetime.now(UTC),
        id="catch-up",
        jobstore="housekeeping",
        executor="default",
    )
    scheduler.add_job(
        lambda: _in_context(app, jobs.retry_failed, utcnow()),
        "interval",
        seconds=config["SCHEDULER_RETRY_SECONDS"],
        id="retry",
        jobstore="housekeeping",
        executor="default",
    )
    Runtime.scheduler = scheduler
    if Runtime.stop.is_set():
        return
    try:
        scheduler.start()
    finally:
        Runtime.scheduler = None


def run_once(app: Flask, lock: LeaderLock) -> bool:
    """For cron-less set-ups and tests: if no scheduler is active, do what one does at its
    start (clean up, catch up every schedule's latest period, retry what is due), once."""
    if not lock.acquire():
        return False
    try:
        now = utcnow()
        _in_context(app, jobs.start_of_term, now)
        _in_context(app, jobs.catch_up, now)
        _in_context(app, jobs.retry_failed, now)
    finally:
        lock.release()
    return True


def _stop(signum: int, frame: Any) -> None:
    log.info("signal %s: stopping", signum)
    Runtime.stop.set()
    if Runtime.scheduler is not None and Runtime.scheduler.running:
        Runtime.scheduler.shutdown(wait=False)


def run(app: Flask) -> None:
    """Stand by until this process holds the lock, then schedule; stand by again if the
    lock is lost; stop on SIGTERM or SIGINT (releasing the lock)."""
    Runtime.app = app
    Runtime.stop.clear()
    # Lease renewals and syncs every few seconds would drown the log.
    logging.getLogger("apscheduler.executors.housekeeping").setLevel(logging.WARNING)
    holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    lock = make_lock(app, holder)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    poll = app.config["SCHEDULER_POLL_SECONDS"]
    standing_by = False
    try:
        while not Runtime.stop.is_set():
            if lock.acquire():
                log.info("scheduler %s now active", holder)
                standing_by = False
                try:
                    serve(app, lock)
                finally:
                    lock.release()
                log.info("scheduler %s no longer active", holder)
                continue
            if not standing_by:
                log.info("scheduler %s standing by: another scheduler is active", holder)
                standing_by = True
            Runtime.stop.wait(poll)
    finally:
        lock.release()


scheduler_cli = AppGroup("scheduler", help="The report scheduler process.")


@scheduler_cli.command("run")
@click.option(
    "--once",
    is_flag=True,
    help="If no scheduler is active: clean up, produce each schedule's latest period and "
    "retry what is due, then exit (exit status 3 when another scheduler is active).",
)
@with_appcontext
def run_command(once: bool) -> None:
    """Run the report scheduler (one active at a time; others stand by)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if once:
        holder = f"{socket.gethostname()}:{os.getpid()}:once"
        if not run_once(app, make_lock(app, holder)):
            click.echo("another scheduler is active; nothing done", err=True)
            raise SystemExit(3)
        flush_outgoing()
        click.echo("scheduler: one pass done")
        return
    run(app)
