"""Expedited-reporting clocks (DOMAIN.md; 21 CFR 312.32, Reg. 536/2014 art. 42, NIH
Guidelines): which reports an adverse event needs, due when, and whether they were on time.

Day 0 is the day the sponsor first knows the minimum criteria; deadlines are calendar days
counted on the site's calendar and end at the end of the due day there; the site-to-sponsor
report is due 24 hours after the site became aware. A rule table per trial holds the
defaults and is editable by administrators. An event that becomes reportable later (e.g.
upgraded to serious) opens its clocks from the awareness of that new information.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.auth.models import SystemActor
from trialmgr.clock import Moment, Phrase, local_date, zone
from trialmgr.errors import Conflict, Forbidden, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.policies import scope_sites
from trialmgr.safety.models import AdverseEvent, ExpeditedReport, ExpeditedRule
from trialmgr.safety.services import work

# (authority, condition, hours, days, follow-up days, description)
DEFAULT_RULES = (
    ("sponsor", "serious", 24, None, None, "Any serious adverse event: site to sponsor, 24 hours"),
    ("FDA", "susar_fatal_or_lt", None, 7, None, "SUSAR, fatal or life-threatening: 7 days"),
    ("FDA", "susar_other", None, 15, None, "Other SUSAR: 15 days"),
    (
        "EU",
        "susar_fatal_or_lt",
        None,
        7,
        8,
        "SUSAR, fatal or life-threatening: 7 days, complete report within 8 more",
    ),
    ("EU", "susar_other", None, 15, None, "Other SUSAR: 15 days"),
    (
        "IBC",
        "susar_fatal_or_lt",
        None,
        7,
        None,
        "Serious, unexpected, associated with the product; fatal or life-threatening: 7 days",
    ),
    ("IBC", "susar_other", None, 15, None, "Serious, unexpected, associated: 15 days"),
)


def seed_rules(trial_id: int) -> None:
    """Give a trial the default reporting table (called when the table is first needed)."""
    exists = db.session.execute(
        sa.select(ExpeditedRule.id).where(ExpeditedRule.trial_id == trial_id).limit(1)
    ).first()
    if exists:
        return
    for authority, condition, hours, days, follow_up, description in DEFAULT_RULES:
        db.session.add(
            ExpeditedRule(
                trial_id=trial_id,
                authority=authority,
                condition=condition,
                deadline_hours=hours,
                deadline_days=days,
                follow_up_days=follow_up,
                description=description,
            )
        )


SEED_ACTOR: Any = SystemActor(email="system:reporting-rules")


def ensure_rules(trial_id: int) -> list[ExpeditedRule]:
    """The trial's reporting table, seeded with the defaults the first time it is needed."""
    if not rules_of(trial_id):
        with audit.audited(SEED_ACTOR, action="expedited_rule.seed"):
            seed_rules(trial_id)
    return rules_of(trial_id)


def rules_of(trial_id: int) -> list[ExpeditedRule]:
    return list(
        db.session.execute(
            sa.select(ExpeditedRule)
            .where(ExpeditedRule.trial_id == trial_id)
            .order_by(ExpeditedRule.authority, ExpeditedRule.condition)
        ).scalars()
    )


def fatal_or_life_threatening(ae: AdverseEvent) -> bool:
    criteria = set(ae.seriousness_criteria or [])
    return bool({"death", "life_threatening"} & criteria) or ae.grade >= 4 or ae.outcome == "fatal"


def conditions(ae: AdverseEvent) -> set[str]:
    """The reporting conditions the event meets now."""
    met = set()
    if ae.serious:
        met.add("serious")
    if ae.susar:
        met.add("susar")
        met.add("susar_fatal_or_lt" if fatal_or_life_threatening(ae) else "susar_other")
    return met


def _end_of_day(day: date, zone_name: str) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone(zone_name)) - timedelta(
        microseconds=1
    )


def due_at(
    rule: ExpeditedRule, start: datetime, zone_name: str, follow_up: bool = False
) -> datetime:
    if rule.deadline_hours is not None and not follow_up:
        return start + timedelta(hours=rule.deadline_hours)
    days = (rule.deadline_days or 0) + ((rule.follow_up_days or 0) if follow_up else 0)
    return _end_of_day(local_date(start, zone_name) + timedelta(days=days), zone_name)


def open_clocks(ae: AdverseEvent, awareness_at: datetime) -> list[ExpeditedReport]:
    """Open the clocks the event needs and does not have yet, from `awareness_at` (the
    first awareness for a new event, the awareness of the new information for an upgrade);
    a clock whose deadline tightens (a SUSAR that becomes fatal) takes the earlier due
    time. Returns the clocks opened."""
    ensure_rules(ae.trial_id)
    met = conditions(ae)
    zone_name = ae.subject.site.timezone
    existing = {
        (r.authority, r.kind): r
        for r in db.session.execute(
            sa.select(ExpeditedReport).where(ExpeditedReport.adverse_event_id == ae.id)
        ).scalars()
    }
    opened = []
    for rule in rules_of(ae.trial_id):
        if not rule.active or rule.condition not in met:
            continue
        start = awareness_at if rule.deadline_hours is None else ae.site_awareness_at
        if rule.deadline_hours is not None and ("sponsor", "initial") in existing:
            continue
        wanted = [("initial", due_at(rule, start, zone_name))]
        if rule.follow_up_days:
            wanted.append(("follow_up", due_at(rule, start, zone_name, follow_up=True)))
        for kind, due in wanted:
            report = existing.get((rule.authority, kind))
            if report is None:
                report = ExpeditedReport(
                    adverse_event_id=ae.id,
                    trial_id=ae.trial_id,
                    site_id=ae.site_id,
                    rule_id=rule.id,
                    authority=rule.authority,
                    kind=kind,
                    # in UTC, as they read back (the answer of the request shows them)
                    clock_start=start.astimezone(UTC),
                    due_at=due.astimezone(UTC),
                )
                db.session.add(report)
                existing[(rule.authority, kind)] = report
                opened.append(report)
            elif report.submitted_at is None and due < report.due_at:
                report.rule_id, report.due_at = rule.id, due.astimezone(UTC)
    return opened


def state(report: ExpeditedReport, now: datetime) -> dict[str, Any]:
    """Days left (on the site's calendar), overdue, and the status open/overdue/submitted."""
    zone_name = report.adverse_event.subject.site.timezone
    return state_of(report.due_at, report.submitted_at, zone_name, now)


def state_of(
    due_at: datetime, submitted_at: datetime | None, zone_name: str | None, now: datetime
) -> dict[str, Any]:
    """`state` of a clock due at `due_at` at a site in `zone_name`."""
    days_left = (local_date(due_at, zone_name) - local_date(now, zone_name)).days
    overdue = submitted_at is None and now > due_at
    status = "submitted" if submitted_at else ("overdue" if overdue else "open")
    return {"days_left": days_left, "overdue": overdue, "status": status}


def report_query(actor: Any, filters: dict[str, Any], now: datetime) -> sa.Select[Any]:
    """Clocks in the actor's sites, by due time; `status` open (not submitted, overdue
    included), overdue, submitted."""
    q = scope_sites(actor, sa.select(ExpeditedReport), ExpeditedReport.site_id)
    status = filters.get("status")
    if status == "open":
        q = q.where(ExpeditedReport.submitted_at.is_(None))
    elif status == "overdue":
        q = q.where(ExpeditedReport.submitted_at.is_(None), ExpeditedReport.due_at < now)
    elif status == "submitted":
        q = q.where(ExpeditedReport.submitted_at.is_not(None))
    for field in ("trial_id", "adverse_event_id", "authority"):
        if filters.get(field) is not None:
            q = q.where(getattr(ExpeditedReport, field) == filters[field])
    return q.order_by(ExpeditedReport.due_at, ExpeditedReport.id)


def get_report(actor: Any, report_id: int) -> ExpeditedReport:
    from trialmgr.partners.policies import may_see_site

    report = db.session.get(ExpeditedReport, report_id)
    if report is None or not may_see_site(actor, report.site_id):
        raise NotFound(f"No expedited report {report_id}.")
    return report


def submit(
    actor: Any, report: ExpeditedReport, data: dict[str, Any], now: datetime
) -> ExpeditedReport:
    """Record the submission (date-time and reference); a submission after the due time is
    recorded as late. Correcting a recorded submission needs the reason like any edit."""
    from trialmgr.auth.models import SAFETY_MONITOR

    if actor.role != SAFETY_MONITOR:
        raise Forbidden("Only a safety monitor records expedited submissions.")
    submitted = data["submitted_at"]
    if submitted > now:
        raise Invalid("Submissions cannot be in the future.", errors={"submitted_at": ["Future."]})
    if submitted < report.clock_start:
        raise Invalid(
            "Submitted before the clock started.",
            errors={"submitted_at": [Phrase("Before {start}.", start=Moment(report.clock_start))]},
        )
    if report.submitted_at is not None and not data.get("reason"):
        raise Conflict("The report is already submitted; give a reason to correct it.")
    with audit.audited(actor, reason=data.get("reason"), action="expedited_report.submit"):
        report.submitted_at = submitted
        report.reference = data["reference"]
        report.late = submitted > report.due_at
        work.after_submission(report, actor.email, now)
    return report


def update_rule(actor: Any, rule: ExpeditedRule, data: dict[str, Any]) -> ExpeditedRule:
    """Administrators edit a trial's reporting table (deadlines, active); reason audited.
    Clocks already open keep their due times."""
    from trialmgr.auth.models import ADMIN

    if actor.role != ADMIN:
        raise Forbidden("Only administrators edit the reporting table.")
    data = dict(data)
    reason = data.pop("reason")
    hours = data.get("deadline_hours", rule.deadline_hours)
    days = data.get("deadline_days", rule.deadline_days)
    if (hours is None) == (days is None):
        raise Invalid(
            "A rule has a deadline in hours or in days, not both.",
            errors={"deadline_days": ["Give hours or days."]},
        )
    with audit.audited(actor, reason=reason, action="expedited_rule.update"):
        for key, value in data.items():
            setattr(rule, key, value)
    return rule


def get_rule(rule_id: int) -> ExpeditedRule:
    rule = db.session.get(ExpeditedRule, rule_id)
    if rule is None:
        raise NotFound(f"No reporting rule {rule_id}.")
    return rule
