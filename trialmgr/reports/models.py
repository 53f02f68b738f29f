"""The report archive, report schedules and their subscribers, and the scheduler's own
tables (the leader lease and APScheduler's job store)."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trialmgr.clock import utcnow
from trialmgr.db import Audited, Base, IdMixin, TimestampMixin, one_of
from trialmgr.enrollment.models import Trial
from trialmgr.partners.models import Site

REPORT_KINDS = ("dsmb_safety", "site_enrollment", "feasibility")
REPORT_TITLES = {
    "dsmb_safety": "DSMB safety report (open session)",
    "site_enrollment": "Site enrolment report",
    "feasibility": "Feasibility report",
}
# Kinds that have a one-site variant (coordinators may download theirs).
SITE_SCOPED_KINDS = ("site_enrollment",)
REPORT_STATUSES = ("pending", "running", "done", "failed")
TRIAL_SCOPE = "trial"


def site_scope(site_id: int) -> str:
    """The scope key of a one-site report (`site:<id>`); trial-wide reports are `trial`."""
    return f"site:{site_id}"


class Report(IdMixin, Audited, Base):
    """One generated (or attempted) report: what it covers and where its file is.

    A report is identified by (kind, trial, scope, period): a second scheduler, a retry or a
    second "generate now" for the same period finds this row instead of making another.
    The period is a span of calendar days; its last day is the data cut-off (events dated
    on or before it, on each site's calendar).
    """

    __tablename__ = "report"
    __table_args__ = (
        sa.UniqueConstraint("kind", "trial_id", "scope", "period_start", "period_end"),
        sa.CheckConstraint(one_of("kind", REPORT_KINDS), name="kind_known"),
        sa.CheckConstraint(one_of("status", REPORT_STATUSES), name="status_known"),
        sa.CheckConstraint(
            "(scope = 'trial' AND site_id IS NULL) OR scope = ('site:' || site_id)",
            name="scope_matches_site",
        ),
        sa.CheckConstraint("period_start <= period_end", name="period_ordered"),
        sa.Index("ix_report_trial_id_kind", "trial_id", "kind"),
        sa.Index("ix_report_status_next_attempt_at", "status", "next_attempt_at"),
    )

    kind: Mapped[str] = mapped_column(sa.String(20))
    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"))
    scope: Mapped[str] = mapped_column(sa.String(20))
    site_id: Mapped[int | None] = mapped_column(sa.ForeignKey("site.id"), index=True)
    period_start: Mapped[date]
    period_end: Mapped[date]  # the data cut-off
    status: Mapped[str] = mapped_column(sa.String(10), default="pending")
    schedule_id: Mapped[int | None] = mapped_column(sa.ForeignKey("report_schedule.id"))
    requested_by: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    generated_at: Mapped[datetime | None]
    template: Mapped[str | None] = mapped_column(sa.String(40))
    # Relative to instance/reports/.
    file_path: Mapped[str | None] = mapped_column(sa.String(255))
    size: Mapped[int | None] = mapped_column(sa.BigInteger)
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    audit_head: Mapped[str | None] = mapped_column(sa.String(64))
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]

    trial: Mapped[Trial] = relationship()
    site: Mapped[Site | None] = relationship()
    schedule: Mapped[ReportSchedule | None] = relationship()

    @property
    def cut_off(self) -> date:
        return self.period_end


class ReportSchedule(IdMixin, TimestampMixin, Audited, Base):
    """A report produced on a cron schedule (evaluated in UTC) by the scheduler process."""

    __tablename__ = "report_schedule"
    __table_args__ = (
        sa.UniqueConstraint("kind", "trial_id", "cron"),
        sa.CheckConstraint(one_of("kind", REPORT_KINDS), name="kind_known"),
    )

    kind: Mapped[str] = mapped_column(sa.String(20))
    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    cron: Mapped[str] = mapped_column(sa.String(120))
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(sa.String(255))

    trial: Mapped[Trial] = relationship()
    subscriptions: Mapped[list[ReportSubscription]] = relationship(
        back_populates="schedule", order_by="ReportSubscription.id"
    )


class ReportSubscription(IdMixin, Audited, Base):
    """A user told (in-app, and by e-mail when mail is configured) when a report of the
    schedule is ready."""

    __tablename__ = "report_subscription"
    __table_args__ = (sa.UniqueConstraint("schedule_id", "user_id"),)
    __audit_allow_delete__ = True  # leaving a subscription is a preference, not trial data

    schedule_id: Mapped[int] = mapped_column(sa.ForeignKey("report_schedule.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    schedule: Mapped[ReportSchedule] = relationship(back_populates="subscriptions")


class SchedulerLease(Base):
    """The leader lease of the scheduler on SQLite: the holder renews it; another scheduler
    takes over once it has expired. (PostgreSQL uses a session-level advisory lock.)"""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(120))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


# APScheduler 3's SQLAlchemyJobStore table, declared here with exactly its columns so that
# the migrations create it and `flask db check` knows it (the store itself would otherwise
# create it on first start, outside the migrations).
apscheduler_jobs = sa.Table(
    "apscheduler_jobs",
    Base.metadata,
    sa.Column("id", sa.Unicode(191), primary_key=True),
    sa.Column("next_run_time", sa.Float(25), index=True),
    sa.Column("job_state", sa.LargeBinary, nullable=False),
)
