"""The numbers of the site enrolment report, as of a data cut-off date.

A report counts the events dated on or before its cut-off (each site's own calendar
dates), as recorded when the report is generated: a screening dated before the cut-off and
entered after it counts; a status change dated after it does not. Outcomes (eligible,
screen failed) are the ones recorded at generation. The site rules themselves (the status
on a date, the approval in force, a visit's window state) come from the partners and
enrolment services, not from here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from trialmgr.enrollment.models import (
    Cohort,
    Dosing,
    EligibilityCriterion,
    Screening,
    Subject,
    Trial,
    Visit,
)
from trialmgr.enrollment.services.subjects import exit_date
from trialmgr.enrollment.services.visits import visit_state
from trialmgr.extensions import db
from trialmgr.partners.models import APPROVAL_KINDS, APPROVAL_LABELS, Site, SiteStatusChange
from trialmgr.partners.services.approvals import approval_state, in_force
from trialmgr.partners.services.sites import open_for_screening, site_local_date
from trialmgr.partners.services.status import change_in_effect, months_open, site_state_on

UPCOMING_DAYS = 14
# Trials that still recruit report on every site not closed; a trial closed to enrolment
# (or ended) reports on the sites that screened for it.
RECRUITING = ("setup", "open", "paused")


@dataclass
class ApprovalLine:
    kind: str
    label: str
    reference: str
    granted_on: date
    expires_on: date | None
    withdrawn_on: date | None
    state: str
    days_to_expiry: int | None
    in_force: bool


@dataclass
class ScreeningSummary:
    screened: int = 0
    pending: int = 0
    eligible: int = 0
    screen_failed: int = 0
    declined: int = 0
    consented: int = 0
    enrolled: int = 0
    # (reason, screenings): an unmet criterion ("I2: At least 150 exposure days") or a
    # stated reason; a screening failing two criteria counts under both.
    fail_reasons: list[tuple[str, int]] = field(default_factory=list)
    decline_reasons: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class SubjectLine:
    code: str
    cohort: str
    enrolled_on: date
    dosed_on: date | None
    status: str


@dataclass
class VisitLine:
    subject: str
    name: str
    window_start: date
    window_end: date
    state: str  # due / overdue
    days_overdue: int


@dataclass
class VisitSummary:
    done_in_period: int = 0
    due: int = 0
    overdue: int = 0
    upcoming: int = 0
    missed: int = 0
    open_visits: list[VisitLine] = field(default_factory=list)


@dataclass
class SiteEnrolment:
    site: Site
    status: str
    status_since: date | None
    history: list[SiteStatusChange]
    open_for_screening: bool
    months_open: float
    approvals: list[ApprovalLine]
    screening: ScreeningSummary
    target: int
    subjects: list[SubjectLine]
    visits: VisitSummary

    @property
    def enrolled(self) -> int:
        return len(self.subjects)

    @property
    def dosed(self) -> int:
        return sum(1 for s in self.subjects if s.dosed_on is not None)

    @property
    def exited(self) -> int:
        return sum(1 for s in self.subjects if s.status.startswith(("withdrawn", "lost", "died")))


def trial_sites(trial: Trial, cut_off: date) -> list[Site]:
    """The sites a trial's reports cover: every site not closed by the cut-off while the
    trial recruits, and every site that screened for the trial by then."""
    screened = sa.select(Screening.site_id).where(
        Screening.trial_id == trial.id, Screening.screened_on <= cut_off
    )
    query = sa.select(Site).order_by(Site.code)
    if trial.status in RECRUITING:
        query = query.where(
            sa.or_(Site.id.in_(screened), Site.closed_on.is_(None), Site.closed_on > cut_off)
        )
    else:
        query = query.where(Site.id.in_(screened))
    return list(db.session.execute(query).scalars())


def site_enrolment(trial: Trial, site: Site, period_start: date, cut_off: date) -> SiteEnrolment:
    """One site's part of the report, as of `cut_off` (a day at the site)."""
    change = change_in_effect(site, cut_off)
    subjects = subject_lines(trial, site, cut_off)
    return SiteEnrolment(
        site=site,
        status=site_state_on(site, cut_off),
        status_since=change.on if change else None,
        history=[c for c in site.status_changes if c.on <= cut_off],
        open_for_screening=open_for_screening(site, cut_off),
        months_open=months_open(site, cut_off + timedelta(days=1)),
        approvals=approval_lines(site, cut_off),
        screening=screening_summary(trial, site, cut_off),
        target=site.target_enrollment,
        subjects=subjects,
        visits=visit_summary(trial, site, period_start, cut_off),
    )


def approval_lines(site: Site, cut_off: date) -> list[ApprovalLine]:
    """Approvals granted by the cut-off, per kind oldest first: their state on that day and
    whether each is the record in force or superseded by a later grant."""
    lines = []
    for kind in APPROVAL_KINDS:
        current = in_force(site, kind, cut_off)
        for approval in site.approvals:
            if approval.kind != kind or approval.granted_on > cut_off:
                continue
            state, days = approval_state(approval, cut_off)
            withdrawn = approval.withdrawn_on
            lines.append(
                ApprovalLine(
                    kind=kind,
                    label=APPROVAL_LABELS[kind],
                    reference=approval.reference,
                    granted_on=approval.granted_on,
                    expires_on=approval.expires_on,
                    withdrawn_on=withdrawn if withdrawn and withdrawn <= cut_off else None,
                    state=state,
                    days_to_expiry=days if state in ("current", "expiring") else None,
                    in_force=approval is current,
                )
            )
    return lines


def screening_summary(trial: Trial, site: Site, cut_off: date) -> ScreeningSummary:
    """The site's screening log for the trial up to the cut-off: screenings by outcome,
    consents recorded on them by then, enrolments, and why screenings failed or declined."""
    rows = db.session.execute(
        sa.select(
            Screening.id,
            Screening.outcome,
            Screening.failed_criteria,
            Screening.fail_reason,
            Screening.consented_on,
        ).where(
            Screening.trial_id == trial.id,
            Screening.site_id == site.id,
            Screening.screened_on <= cut_off,
        )
    ).all()
    criteria = {
        c.code: c.text
        for c in db.session.execute(
            sa.select(EligibilityCriterion).where(EligibilityCriterion.trial_id == trial.id)
        ).scalars()
    }
    summary = ScreeningSummary(screened=len(rows))
    failed: Counter[str] = Counter()
    declined: Counter[str] = Counter()
    for row in rows:
        setattr(summary, row.outcome, getattr(summary, row.outcome) + 1)
        if row.consented_on is not None and row.consented_on <= cut_off:
            summary.consented += 1
        if row.outcome == "screen_failed":
            for code in row.failed_criteria or []:
                failed[f"{code}: {criteria.get(code, 'criterion not met')}"] += 1
            if row.fail_reason:
                failed[row.fail_reason.strip()] += 1
        elif row.outcome == "declined":
            declined[(row.fail_reason or "No reason recorded").strip()] += 1
    summary.enrolled = int(
        db.session.execute(
            sa.select(sa.func.count()).where(
                Subject.trial_id == trial.id,
                Subject.site_id == site.id,
                Subject.enrolled_on <= cut_off,
            )
        ).scalar_one()
    )
    summary.fail_reasons = sorted(failed.items(), key=lambda kv: (-kv[1], kv[0]))
    summary.decline_reasons = sorted(declined.items(), key=lambda kv: (-kv[1], kv[0]))
    return summary


def status_on(subject: Any, dosed_on: date | None, visits: list[Any], on: date) -> str:
    """The subject's status on `on`, from the dates recorded (an exit dated later had not
    happened yet; a reinstatement clears the loss)."""
    if subject.ended_on is not None and subject.ended_on <= on:
        return subject.status.replace("_", " ")
    if subject.withdrawn_on is not None and subject.withdrawn_on <= on:
        if subject.withdrawal_kind == "full" or dosed_on is None:
            return "withdrawn"
        return "withdrawn from procedures (safety follow-up)"
    if dosed_on is None or dosed_on > on:
        return "enrolled"
    done = [v for v in visits if v.status == "done" and v.done_on and v.done_on <= on]
    if any(v.primary_endpoint for v in done):
        return "completed"
    return "in follow-up" if any(v.day > 0 for v in done) else "dosed"


def subject_lines(trial: Trial, site: Site, cut_off: date) -> list[SubjectLine]:
    """Subjects enrolled at the site by the cut-off (codes only), with their status then."""
    subjects = db.session.execute(
        sa.select(Subject, Cohort.label, Dosing.dosed_at)
        .join(Cohort, Cohort.id == Subject.cohort_id)
        .outerjoin(Dosing, Dosing.subject_id == Subject.id)
        .where(
            Subject.trial_id == trial.id,
            Subject.site_id == site.id,
            Subject.enrolled_on <= cut_off,
        )
        .options(selectinload(Subject.visits))
        .order_by(Subject.enrolled_on, Subject.code)
    ).all()
    lines = []
    for subject, cohort, dosed_at in subjects:
        dosed_on = site_local_date(site, dosed_at) if dosed_at else None
        if dosed_on is not None and dosed_on > cut_off:
            dosed_on = None
        status = status_on(subject, dosed_on, subject.visits, cut_off)
        lines.append(SubjectLine(subject.code, cohort, subject.enrolled_on, dosed_on, status))
    return lines


def _state_on(visit: Any, subject: Any, on: date) -> str | None:
    """A visit's state on `on`: done (by then), cancelled (by an exit dated by then), or its
    window state then (scheduled / due / overdue / missed); None for visits cancelled by an
    amendment."""
    if visit.status == "done" and visit.done_on is not None and visit.done_on <= on:
        return "done"
    if visit.status == "cancelled":
        if visit.cancel_reason == "amendment":
            return None
        exit_on = exit_date(subject, visit.kind)
        if exit_on is None or exit_on <= on:
            return "cancelled"
    if visit.status == "missed" and visit.window_end < on:
        return "missed"
    # Not done by then (or done later): judged as the scheduled visit it still was.
    as_scheduled: Any = SimpleNamespace(**_window(visit), status="scheduled")
    return visit_state(as_scheduled, on)


def _window(visit: Any) -> dict[str, Any]:
    return {"window_start": visit.window_start, "window_end": visit.window_end}


def visit_summary(trial: Trial, site: Site, period_start: date, cut_off: date) -> VisitSummary:
    """Visits of the site's subjects on the cut-off: done in the period, due (window open),
    overdue (window passed, not done), opening within 14 days, missed; the due and overdue
    ones listed."""
    rows = db.session.execute(
        sa.select(Visit, Subject)
        .join(Subject, Subject.id == Visit.subject_id)
        .where(Subject.trial_id == trial.id, Subject.site_id == site.id)
        .order_by(Visit.window_end, Subject.code, Visit.id)
    ).all()
    summary = VisitSummary()
    horizon = cut_off + timedelta(days=UPCOMING_DAYS)
    for visit, subject in rows:
        state = _state_on(visit, subject, cut_off)
        if state == "done" and visit.done_on >= period_start:
            summary.done_in_period += 1
        elif state == "missed":
            summary.missed += 1
        elif state in ("due", "overdue"):
            setattr(summary, state, getattr(summary, state) + 1)
            late = (cut_off - visit.window_end).days if state == "overdue" else 0
            summary.open_visits.append(
                VisitLine(
                    subject.code, visit.name, visit.window_start, visit.window_end, state, late
                )
            )
        elif state == "scheduled" and visit.window_start <= horizon:
            summary.upcoming += 1
    summary.open_visits.sort(key=lambda v: (-v.days_overdue, v.window_end, v.subject))
    return summary
