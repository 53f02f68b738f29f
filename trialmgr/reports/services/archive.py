"""The report archive: one row per (kind, trial, scope, period), its PDF under
instance/reports/, written so that a crash never leaves a partial file visible, and
checked against its sha256 before every download.

A report run has three steps (trialmgr/reports/jobs.py commits each): `request_report` and
`start` (the row, marked running), `store_pdf` (reads only: builds the PDF into a temporary
file in the reports folder, fsyncs it and renames it into place), then `finish` (done, with
size, sha256 and the audit head) or `fail` (the error, and when to try again).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload

from trialmgr.audit import services as audit
from trialmgr.auth.policies import site_scope as site_scope_of
from trialmgr.enrollment.models import Trial
from trialmgr.errors import Conflict, NotFound, Problem
from trialmgr.extensions import db
from trialmgr.reports.models import REPORT_TITLES, TRIAL_SCOPE, Report, site_scope
from trialmgr.reports.policies import may_see, sees_every_report

if TYPE_CHECKING:  # reportlab loads when a report is built, not with the app
    from trialmgr.reports.builders import ReportContext

log = logging.getLogger("trialmgr.reports")

TEMP_PREFIX = ".partial-"
TEMP_SUFFIX = ".pdf.tmp"
# A temporary file untouched this long belongs to no run in progress (a run writes its
# file in one go at the end of its build).
STRAY_AFTER = timedelta(minutes=10)
# A report still running after this long was interrupted (its process died).
STALE_RUNNING = timedelta(hours=2)
ERROR_LENGTH = 2000


@dataclass(frozen=True)
class ReportKey:
    """What makes a report one report: its kind, trial, scope and period of days."""

    kind: str
    trial_id: int
    site_id: int | None
    period_start: date
    period_end: date

    @property
    def scope(self) -> str:
        return TRIAL_SCOPE if self.site_id is None else site_scope(self.site_id)


@dataclass(frozen=True)
class StoredFile:
    file_path: str
    size: int
    sha256: str
    audit_head: str
    template: str


def report_dir() -> Path:
    return Path(current_app.instance_path) / "reports"


# --- finding and requesting ------------------------------------------------------------


def find(key: ReportKey) -> Report | None:
    return db.session.execute(
        sa.select(Report).where(
            Report.kind == key.kind,
            Report.trial_id == key.trial_id,
            Report.scope == key.scope,
            Report.period_start == key.period_start,
            Report.period_end == key.period_end,
        )
    ).scalar_one_or_none()


def request_report(
    actor: Any, key: ReportKey, now: datetime, schedule_id: int | None = None
) -> Report:
    """The report of this key: the existing row, or a new pending one. A concurrent request
    for the same key (another process, a retry) finds the row the first one made: the
    unique constraint on the key allows one."""
    existing = find(key)
    if existing is not None:
        return existing
    report = Report(
        kind=key.kind,
        trial_id=key.trial_id,
        scope=key.scope,
        site_id=key.site_id,
        period_start=key.period_start,
        period_end=key.period_end,
        status="pending",
        schedule_id=schedule_id,
        requested_by=actor.email,
        created_at=now,
        attempts=0,
    )
    try:
        with db.session.begin_nested(), audit.audited(actor, action="report.request"):
            db.session.add(report)
    except sa.exc.IntegrityError:
        found = find(key)
        if found is None:
            raise
        return found
    return report


def is_running(report: Report, now: datetime) -> bool:
    """Running in some process now (a run older than STALE_RUNNING was interrupted)."""
    return (
        report.status == "running"
        and report.started_at is not None
        and now - report.started_at < STALE_RUNNING
    )


def start(actor: Any, report: Report, now: datetime) -> None:
    """Mark the report running: one more attempt."""
    if is_running(report, now):
        raise Conflict(
            f"Report {report.id} is being generated (started {report.started_at:%H:%M} UTC).",
            title="Report running",
        )
    with audit.audited(actor, action="report.start"):
        report.status = "running"
        report.started_at = now
        report.attempts += 1
        report.next_attempt_at = None


# --- building and storing ---------------------------------------------------------------


def context_for(report: Report, now: datetime) -> ReportContext:
    """The report's build context; the audit head is taken now, before any data is read."""
    from trialmgr.reports import builders

    trial: Trial = report.trial
    schedule = report.schedule
    return builders.ReportContext(
        kind=report.kind,
        title=REPORT_TITLES[report.kind],
        trial=trial,
        site=report.site,
        period_start=report.period_start,
        cut_off=report.period_end,
        generated_at=now,
        audit_head=audit.head(),
        requested_by=report.requested_by,
        template=builders.TEMPLATE_VERSIONS[report.kind],
        report_id=report.id,
        schedule_cron=schedule.cron if schedule is not None else None,
    )


_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


def _file_name(report: Report) -> str:
    scope = "all" if report.site_id is None else f"site{report.site_id}"
    stamp = report.period_end.strftime("%Y%m%d")
    return f"{report.id:06d}-{report.kind}-{scope}-{stamp}-{secrets.token_hex(4)}.pdf"


def store_pdf(report: Report, now: datetime) -> StoredFile:
    """Build the PDF into a temporary file beside its final place, fsync it, then rename it
    into place (atomic): the final path holds the whole file or nothing. Reads only."""
    from trialmgr.reports import builders

    ctx = context_for(report, now)
    folder = report_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = _file_name(report)
    fd, temp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            builders.build(ctx, handle)
            handle.flush()
            _slow_down_for_tests()
            os.fsync(handle.fileno())
        digest, size = file_digest(Path(temp))
        os.replace(temp, folder / name)
        _fsync_dir(folder)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return StoredFile(name, size, digest, ctx.audit_head, ctx.template)


def _slow_down_for_tests() -> None:
    """REPORT_TEST_DELAY_SECONDS (tests only, 0 by default): hold a run between writing its
    temporary file and renaming it, so that a fault-injection test can kill the process
    mid-report (tests/e2e/test_fault_injection.py)."""
    delay = float(current_app.config.get("REPORT_TEST_DELAY_SECONDS") or 0)
    if delay > 0:
        log.warning("holding the report run %.1f s (REPORT_TEST_DELAY_SECONDS)", delay)
        time.sleep(delay)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (the directory entry)."""
    with contextlib.suppress(OSError):  # not every platform opens directories
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def file_digest(path: Path) -> tuple[str, int]:
    with path.open("rb") as handle:
        return _digest(handle)


def _digest(handle: IO[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def finish(actor: Any, report: Report, stored: StoredFile, now: datetime) -> None:
    """Record the stored file: done, with its size, sha256 and the audit head it shows."""
    with audit.audited(actor, action="report.generate"):
        report.status = "done"
        report.generated_at = now
        report.file_path = stored.file_path
        report.size = stored.size
        report.sha256 = stored.sha256
        report.audit_head = stored.audit_head
        report.template = stored.template
        report.error = None
        report.next_attempt_at = None


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the n-th failed attempt: base, 2x, 4x... (capped at 6 hours)."""
    base = current_app.config["REPORT_RETRY_SECONDS"]
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 6 * 3600))


def fail(
    actor: Any,
    report: Report,
    error: BaseException | str,
    now: datetime,
    retry_at: datetime | None = None,
) -> None:
    """Record a failed attempt and when the scheduler tries again: after a growing delay,
    and not after the last of REPORT_MAX_ATTEMPTS."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    more = report.attempts < current_app.config["REPORT_MAX_ATTEMPTS"]
    with audit.audited(actor, action="report.fail"):
        report.status = "failed"
        report.error = text[:ERROR_LENGTH]
        report.next_attempt_at = (retry_at or now + retry_delay(report.attempts)) if more else None


def retry_due(now: datetime) -> list[Report]:
    """Failed reports whose next attempt is due, and runs interrupted long ago."""
    return list(
        db.session.execute(
            sa.select(Report)
            .where(
                sa.or_(
                    sa.and_(Report.status == "failed", Report.next_attempt_at <= now),
                    sa.and_(Report.status == "running", Report.started_at < now - STALE_RUNNING),
                )
            )
            .order_by(Report.id)
        ).scalars()
    )


def mark_interrupted(actor: Any, now: datetime) -> int:
    """At the start of the (only) scheduler, runs still marked running were interrupted by a
    previous scheduler's end: they are failed now and retried at once."""
    reports = list(
        db.session.execute(sa.select(Report).where(Report.status == "running")).scalars()
    )
    for report in reports:
        fail(actor, report, "Interrupted: the scheduler stopped during generation.", now, now)
    return len(reports)


def clean_temp_files(now: float | None = None, older_than: timedelta = STRAY_AFTER) -> int:
    """Remove temporary files left by runs that died between writing and renaming."""
    folder = report_dir()
    if not folder.is_dir():
        return 0
    limit = (now or time.time()) - older_than.total_seconds()
    removed = 0
    for path in folder.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime <= limit:
                path.unlink()
                removed += 1
    return removed


# --- reading and downloading ------------------------------------------------------------


def report_query(actor: Any, filters: dict[str, Any]) -> sa.Select[tuple[Report]]:
    """The archive, newest first: every report for trial readers, a coordinator's own sites'
    one-site reports for a coordinator."""
    q = sa.select(Report).options(selectinload(Report.trial), selectinload(Report.site))
    if not sees_every_report(actor):
        q = q.where(Report.site_id.in_(site_scope_of(actor) or [-1]))
    for field in ("kind", "trial_id", "status", "site_id"):
        if filters.get(field) is not None:
            q = q.where(getattr(Report, field) == filters[field])
    return q.order_by(Report.period_end.desc(), Report.id.desc())


def get_report(actor: Any, report_id: int) -> Report:
    report = db.session.get(Report, report_id)
    if report is None or not may_see(actor, report):
        raise NotFound(f"No report {report_id}.")
    return report


class GenerationFailed(Problem):
    """An explicit request whose report could not be built: the failure is recorded on the
    report (committed by the run) and retried by the scheduler."""

    status = 500
    title = "Report generation failed"


class IntegrityFailed(Conflict):
    """The stored file does not match its recorded sha256. The audit event stands."""

    title = "Report file altered"
    keep_writes = True


def download_name(report: Report) -> str:
    """trial code, kind, scope and cut-off, in characters safe in any file system."""
    trial = _UNSAFE.sub("-", report.trial.code).strip("-") or "trial"
    scope = "all-sites" if report.site is None else _UNSAFE.sub("-", report.site.code)
    return f"{trial}-{report.kind.replace('_', '-')}-{scope}-{report.period_end.isoformat()}.pdf"


def open_verified(actor: Any, report: Report) -> IO[bytes]:
    """The report's file, open at its start once its bytes hash to the recorded sha256 (the
    same open file is then streamed, so what was checked is what is sent). A mismatch is
    recorded in the audit trail as `report.integrity_failed` and refused (409); a missing
    file is not found (404)."""
    if report.status != "done" or not report.file_path:
        raise Conflict(
            f"Report {report.id} is {report.status}; it has no file to download.",
            title="Report not ready",
        )
    path = report_dir() / report.file_path
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise NotFound(f"The file of report {report.id} is missing.") from None
    try:
        digest, size = _digest(handle)
        if digest != report.sha256:
            audit.record(
                actor,
                "report.integrity_failed",
                "report",
                report.id,
                {"expected_sha256": report.sha256, "found_sha256": digest, "size": size},
            )
            raise IntegrityFailed(
                f"The stored file of report {report.id} does not match its recorded sha256; "
                "it was changed after it was generated. The event is in the audit trail.",
            )
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return handle


def record_download(actor: Any, report: Report) -> None:
    audit.record(actor, "report.download", "report", report.id, {"sha256": report.sha256})
