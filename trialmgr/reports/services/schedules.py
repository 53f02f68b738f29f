"""Report schedules (cron expressions, evaluated in UTC), the period each run covers, and
the subscribers told when a scheduled report is ready.

Cron is the standard five-field crontab (minute hour day-of-month month day-of-week, 0 or 7
Sunday), validated with APScheduler's `CronTrigger.from_crontab`. APScheduler 3 numbers
weekdays from Monday, so the day-of-week field is translated to weekday names before the
trigger is built: "0 6 * * 1" runs on Mondays, as in crontab.

A run that fires at T covers the days from the previous fire time's day to the day before
T; that last day is the data cut-off. Monthly on the 1st at 06:00 covers the previous
calendar month; weekly on Monday covers Monday to Sunday. Runs fired twice on one day cover
the same period, so they make one report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from apscheduler.triggers.cron import CronTrigger
from flask import current_app

from trialmgr.audit import services as audit
from trialmgr.auth.models import User
from trialmgr.enrollment.services.trials import get_trial
from trialmgr.errors import Conflict, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.reports.models import REPORT_TITLES, Report, ReportSchedule, ReportSubscription
from trialmgr.reports.policies import (
    SUBSCRIBERS,
    require_schedule_manager,
    require_subscriber,
)
from trialmgr.safety.services.notify import notify_users

# What the schedule form offers for each kind.
DEFAULT_CRONS = {
    "dsmb_safety": ("0 6 1 * *", "monthly, on the 1st at 06:00 UTC"),
    "site_enrollment": ("0 6 * * 1", "weekly, on Mondays at 06:00 UTC"),
    "feasibility": ("0 6 1 * *", "monthly, on the 1st at 06:00 UTC"),
}
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_ITEM = re.compile(r"^(\*|[a-z0-9]+)(?:-([a-z0-9]+))?(?:/([0-9]+))?$")


# --- cron ---------------------------------------------------------------------------------


def _day_number(token: str) -> int:
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    if token[:3] in _DAY_NAMES and len(token) == 3:
        return _DAY_NAMES.index(token)
    raise ValueError(f"unknown day of week {token!r}")


def _days_of_week(field: str) -> str:
    """A crontab day-of-week field (0 or 7 Sunday, ranges, steps, names) as APScheduler
    weekday names."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for item in field.lower().split(","):
        match = _DAY_ITEM.match(item)
        if match is None:
            raise ValueError(f"bad day of week {item!r}")
        first, last, step = match.groups()
        if first == "*":
            low, high = 0, 6
        else:
            low = _day_number(first)
            # 7 ends a range as Sunday after Saturday (5-7: Friday to Sunday)
            high = (7 if last == "7" else _day_number(last)) if last else low
            if last is None and step:
                high = 6
        if high < low:
            raise ValueError(f"day-of-week range {item!r} runs backwards")
        days.update(d % 7 for d in range(low, high + 1, int(step or 1)))
    return ",".join(_DAY_NAMES[d] for d in sorted(days, key=lambda d: (d + 6) % 7))


def trigger_for(cron: str) -> CronTrigger:
    """The APScheduler trigger of a crontab expression, in UTC; 422 on `cron` if it is not
    a valid five-field expression, or restricts both the day of the month and the week
    (crontab runs on either, APScheduler only on both: refused rather than guessed)."""
    text = " ".join(cron.split())
    try:
        CronTrigger.from_crontab(text, timezone=UTC)
        minute, hour, day, month, weekday = text.split()
        if day != "*" and weekday != "*":
            raise ValueError("give a day of the month or a day of the week, not both")
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_days_of_week(weekday),
            timezone=UTC,
        )
    except ValueError as exc:
        raise Invalid(
            "Not a valid cron expression.",
            errors={"cron": [f"Five fields: minute hour day month weekday ({exc})."]},
        ) from exc


def fire_times(trigger: CronTrigger, start: datetime, end: datetime) -> Iterator[datetime]:
    """The trigger's fire times from `start` through `end`."""
    moment = trigger.get_next_fire_time(None, start)
    while moment is not None and moment <= end:
        yield moment
        moment = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))


def latest_fire(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The last fire time at or before `now` (looking back up to ten years), found in the
    narrowest window that holds one, so a cron firing every minute costs no more than a
    monthly one."""
    for window in (
        timedelta(hours=2),
        timedelta(days=2),
        timedelta(days=40),
        timedelta(days=400),
        timedelta(days=3700),
    ):
        last = None
        for last in fire_times(trigger, now - window, now):  # noqa: B007
            pass
        if last is not None:
            return last
    return None


def period_for(cron: str, fired_at: datetime) -> tuple[date, date] | None:
    """The period (first day, cut-off day) of the run fired at or last before `fired_at`:
    from the previous fire's day to the day before this fire; None before the first fire."""
    trigger = trigger_for(cron)
    fire = latest_fire(trigger, fired_at)
    if fire is None:
        return None
    cut_off = fire.date() - timedelta(days=1)
    previous = latest_fire(trigger, fire - timedelta(seconds=1))
    start = min(previous.date(), cut_off) if previous is not None else cut_off
    return start, cut_off


def describe(cron: str) -> str:
    """The form's words for a default cron; the expression itself otherwise."""
    for expression, words in DEFAULT_CRONS.values():
        if " ".join(cron.split()) == expression:
            return words
    return f"cron {cron} (UTC)"


# --- schedules --------------------------------------------------------------------------


def schedule_query(filters: dict[str, Any]) -> sa.Select[tuple[ReportSchedule]]:
    q = sa.select(ReportSchedule)
    for field in ("kind", "trial_id", "active"):
        if filters.get(field) is not None:
            q = q.where(getattr(ReportSchedule, field) == filters[field])
    return q.order_by(ReportSchedule.trial_id, ReportSchedule.kind, ReportSchedule.id)


def get_schedule(schedule_id: int) -> ReportSchedule:
    schedule = db.session.get(ReportSchedule, schedule_id)
    if schedule is None:
        raise NotFound(f"No report schedule {schedule_id}.")
    return schedule


def _unique(kind: str, trial_id: int, cron: str, exclude: int | None = None) -> None:
    q = sa.select(ReportSchedule.id).where(
        ReportSchedule.kind == kind,
        ReportSchedule.trial_id == trial_id,
        ReportSchedule.cron == cron,
    )
    if exclude is not None:
        q = q.where(ReportSchedule.id != exclude)
    if db.session.execute(q).first():
        raise Conflict(
            "The trial already has this report on this schedule.",
            errors={"cron": ["Already scheduled (reactivate it instead)."]},
        )


def create_schedule(actor: Any, data: dict[str, Any]) -> ReportSchedule:
    """A report on a cron schedule; the scheduler picks it up within its sync interval."""
    require_schedule_manager(actor)
    trial = get_trial(data["trial_id"])
    cron = " ".join(data["cron"].split())
    trigger_for(cron)
    _unique(data["kind"], trial.id, cron)
    with audit.audited(actor, action="report_schedule.create"):
        schedule = ReportSchedule(
            kind=data["kind"],
            trial_id=trial.id,
            cron=cron,
            active=data.get("active", True),
            created_by=actor.email,
        )
        db.session.add(schedule)
    return schedule


def update_schedule(actor: Any, schedule: ReportSchedule, data: dict[str, Any]) -> ReportSchedule:
    """Change the cron or (de)activate; the scheduler re-syncs within its interval."""
    require_schedule_manager(actor)
    data = dict(data)
    reason = data.pop("reason", None)
    if "cron" in data:
        data["cron"] = " ".join(data["cron"].split())
        trigger_for(data["cron"])
        _unique(schedule.kind, schedule.trial_id, data["cron"], exclude=schedule.id)
    with audit.audited(actor, reason=reason, action="report_schedule.update"):
        for key, value in data.items():
            setattr(schedule, key, value)
    return schedule


# --- subscriptions ------------------------------------------------------------------------


def subscription_of(schedule: ReportSchedule, user: Any) -> ReportSubscription | None:
    return db.session.execute(
        sa.select(ReportSubscription).where(
            ReportSubscription.schedule_id == schedule.id, ReportSubscription.user_id == user.id
        )
    ).scalar_one_or_none()


def subscribed_ids(user: Any) -> set[int]:
    return set(
        db.session.execute(
            sa.select(ReportSubscription.schedule_id).where(ReportSubscription.user_id == user.id)
        ).scalars()
    )


def subscribe(actor: Any, schedule: ReportSchedule, now: datetime) -> ReportSubscription:
    """Be told when a report of this schedule is ready (again: no change)."""
    require_subscriber(actor)
    existing = subscription_of(schedule, actor)
    if existing is not None:
        return existing
    with audit.audited(actor, action="report_subscription.create"):
        subscription = ReportSubscription(schedule_id=schedule.id, user_id=actor.id, created_at=now)
        db.session.add(subscription)
    return subscription


def unsubscribe(actor: Any, schedule: ReportSchedule) -> None:
    """Stop being told (not subscribed: no change)."""
    require_subscriber(actor)
    existing = subscription_of(schedule, actor)
    if existing is not None:
        with audit.audited(actor, action="report_subscription.delete"):
            db.session.delete(existing)


def schedule_view(schedule: ReportSchedule, actor: Any) -> dict[str, Any]:
    """A schedule as its readers see it: whether they subscribe, how many do."""
    fields = ("id", "kind", "trial_id", "cron", "active", "created_by", "created_at")
    return {
        **{f: getattr(schedule, f) for f in fields},
        "trial_code": schedule.trial.code,
        "subscribed": subscription_of(schedule, actor) is not None,
        "subscribers": len(schedule.subscriptions),
        "describe": describe(schedule.cron),
    }


def subscribers(schedule: ReportSchedule) -> list[User]:
    """Active subscribers still in a subscribing role (a user moved to another role is not
    told about trial-wide reports)."""
    return list(
        db.session.execute(
            sa.select(User)
            .join(ReportSubscription, ReportSubscription.user_id == User.id)
            .where(
                ReportSubscription.schedule_id == schedule.id,
                User.active.is_(True),
                User.role.in_(SUBSCRIBERS),
            )
            .order_by(User.id)
        ).scalars()
    )


def announce(report: Report, now: datetime) -> int:
    """Tell a scheduled report's subscribers it is ready: in the app, and by e-mail with a
    link (never the file) when mail is configured. Returns how many were told."""
    if report.schedule is None:
        return 0
    people = subscribers(report.schedule)
    if not people:
        return 0
    title = (
        f"{report.trial.code}: {REPORT_TITLES[report.kind]} to {report.period_end.isoformat()} "
        "is ready"
    )
    body = (
        f"The {REPORT_TITLES[report.kind].lower()} of {report.trial.code} for "
        f"{report.period_start.isoformat()} to {report.period_end.isoformat()} (data cut-off "
        f"{report.period_end.isoformat()}) is in the report archive. Sign in to download it."
    )
    link = f"/reports/{report.id}/pdf"
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return notify_users(people, "report_ready", title, body, link, now, mail_link=base + link)
