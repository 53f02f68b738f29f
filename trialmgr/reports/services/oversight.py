"""The DSMB report's sections that existing records give exactly, as of a cut-off date:
enrolment against the plan per site and cohort, the dosing timeline with its stagger gaps
and the escalation decisions, stopping rules with their firings and the pauses, expedited
reports with their timeliness, protocol deviations.

As everywhere in the reports, an event counts when it is dated on or before the cut-off
(instants: their day at the site) and was entered before the cut-off day ended at its site
(`created_at`; deviations, which carry no entry time, by their date alone).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from trialmgr.clock import format_local, local_date
from trialmgr.enrollment.models import (
    Cohort,
    Deviation,
    Dosing,
    SafetyReview,
    Subject,
    Trial,
    TrialPause,
)
from trialmgr.extensions import db
from trialmgr.milestones.services.dataset import end_of_day
from trialmgr.partners.models import Site
from trialmgr.safety.models import AdverseEvent, ExpeditedReport, StoppingRule, StoppingRuleFiring


@dataclass
class CohortPlan:
    label: str
    dose: str
    dose_unit: str
    capacity: int
    enrolled: int
    dosed: int
    left_before_dosing: int

    @property
    def holding(self) -> int:
        """Slots held at the cut-off: the dosed, and the undosed who had not left."""
        return self.enrolled - self.left_before_dosing


@dataclass
class SitePlan:
    code: str
    target: int
    enrolled: int
    dosed: int
    by_cohort: dict[str, int]


def _exited_by(subject: Any, on: date) -> bool:
    return any(d is not None and d <= on for d in (subject.withdrawn_on, subject.ended_on))


def entered(created_at: datetime, cut_off: date, site: Site) -> bool:
    """The record was entered before the cut-off day ended at its site."""
    return created_at < end_of_day(cut_off, site.timezone)


_Enrolled = list[tuple[Subject, str, Site, datetime | None]]


def _enrolment(trial: Trial, cut_off: date) -> _Enrolled:
    """Subjects enrolled and entered by the cut-off, with their dosing time if the dosing
    was entered by then too."""
    rows = db.session.execute(
        sa.select(Subject, Cohort.label, Site, Dosing.dosed_at, Dosing.created_at)
        .join(Cohort, Cohort.id == Subject.cohort_id)
        .join(Site, Site.id == Subject.site_id)
        .outerjoin(Dosing, Dosing.subject_id == Subject.id)
        .where(Subject.trial_id == trial.id, Subject.enrolled_on <= cut_off)
        .order_by(Subject.code)
    ).tuples()
    return [
        (subject, label, site, dosed_at if dosed_at and entered(dosed_in, cut_off, site) else None)
        for subject, label, site, dosed_at, dosed_in in rows
        if entered(subject.created_at, cut_off, site)
    ]


def _dosed_by(site: Site, dosed_at: datetime | None, cut_off: date) -> bool:
    return dosed_at is not None and local_date(dosed_at, site.timezone) <= cut_off


def enrolment_plans(
    trial: Trial, sites: list[Site], cut_off: date
) -> tuple[list[CohortPlan], list[SitePlan]]:
    """The cohort and the site plans from one read of the subjects enrolled by the cut-off
    (the DSMB report shows both)."""
    enrolled = _enrolment(trial, cut_off)
    return cohort_plan(trial, cut_off, enrolled), site_plan(trial, sites, cut_off, enrolled)


def cohort_plan(trial: Trial, cut_off: date, enrolled: _Enrolled | None = None) -> list[CohortPlan]:
    """Each cohort's capacity against the subjects enrolled and dosed by the cut-off; an exit
    before dosing (by then) frees the slot. `enrolled`: `_enrolment` already read."""
    plans = {
        c.label: CohortPlan(c.label, c.dose, c.dose_unit, c.capacity, 0, 0, 0)
        for c in trial.cohorts
    }
    for subject, label, site, dosed_at in (
        _enrolment(trial, cut_off) if enrolled is None else enrolled
    ):
        plan = plans[label]
        plan.enrolled += 1
        if _dosed_by(site, dosed_at, cut_off):
            plan.dosed += 1
        elif _exited_by(subject, cut_off):
            plan.left_before_dosing += 1
    return list(plans.values())


def site_plan(
    trial: Trial, sites: list[Site], cut_off: date, enrolled: _Enrolled | None = None
) -> list[SitePlan]:
    """Each site's enrolment target against the subjects enrolled and dosed by the cut-off,
    per cohort. `enrolled`: `_enrolment` already read."""
    labels = [c.label for c in trial.cohorts]
    plans = {
        s.id: SitePlan(s.code, s.target_enrollment, 0, 0, dict.fromkeys(labels, 0)) for s in sites
    }
    for _subject, label, site, dosed_at in (
        _enrolment(trial, cut_off) if enrolled is None else enrolled
    ):
        plan = plans.setdefault(
            site.id, SitePlan(site.code, site.target_enrollment, 0, 0, dict.fromkeys(labels, 0))
        )
        plan.enrolled += 1
        plan.by_cohort[label] += 1
        if _dosed_by(site, dosed_at, cut_off):
            plan.dosed += 1
    return sorted(plans.values(), key=lambda p: p.code)


@dataclass
class DosingLine:
    cohort: str
    number: int
    subject: str
    site: str
    dosed_at: datetime
    dosed_local: str
    gap_days: float | None
    below_stagger: bool


def dosing_timeline(trial: Trial, cut_off: date) -> list[DosingLine]:
    """Every dosing by the cut-off, per cohort in time order, with the gap since the cohort's
    previous dosing (the sentinel stagger is `trial.stagger_days`, in exact hours)."""
    rows = db.session.execute(
        sa.select(Dosing.dosed_at, Subject.code, Site, Cohort.label, Dosing.created_at)
        .join(Subject, Subject.id == Dosing.subject_id)
        .join(Site, Site.id == Subject.site_id)
        .join(Cohort, Cohort.id == Dosing.cohort_id)
        .where(Subject.trial_id == trial.id)
        .order_by(Cohort.sequence, Dosing.dosed_at)
    ).tuples()
    lines: list[DosingLine] = []
    previous: dict[str, datetime] = {}
    counts: dict[str, int] = {}
    for dosed_at, code, site, label, dosed_in in rows:
        if local_date(dosed_at, site.timezone) > cut_off or not entered(dosed_in, cut_off, site):
            continue
        before = previous.get(label)
        gap = (dosed_at - before).total_seconds() / 86400 if before else None
        number = counts[label] = counts.get(label, 0) + 1
        lines.append(
            DosingLine(
                cohort=label,
                number=number,
                subject=code,
                site=site.code,
                dosed_at=dosed_at,
                dosed_local=format_local(dosed_at, site.timezone),
                gap_days=gap,
                below_stagger=gap is not None and gap < trial.stagger_days,
            )
        )
        previous[label] = dosed_at
    return lines


def safety_reviews(trial: Trial, cut_off: date) -> list[SafetyReview]:
    """Signed DSMB/SRC decisions by the cut-off (UTC days: decisions are trial-wide)."""
    return [
        r
        for r in db.session.execute(
            sa.select(SafetyReview)
            .where(SafetyReview.trial_id == trial.id)
            .order_by(SafetyReview.signed_at)
        ).scalars()
        if r.signed_at.date() <= cut_off
    ]


def stopping_rules(trial: Trial) -> list[StoppingRule]:
    """The rules as configured at generation (their changes are in the audit trail)."""
    return list(
        db.session.execute(
            sa.select(StoppingRule)
            .where(StoppingRule.trial_id == trial.id)
            .order_by(StoppingRule.id)
        ).scalars()
    )


def firings(trial: Trial, cut_off: date) -> list[tuple[StoppingRuleFiring, str]]:
    rows = db.session.execute(
        sa.select(StoppingRuleFiring, StoppingRule.kind)
        .join(StoppingRule, StoppingRule.id == StoppingRuleFiring.rule_id)
        .where(StoppingRuleFiring.trial_id == trial.id)
        .order_by(StoppingRuleFiring.fired_at)
    ).tuples()
    return [(f, kind) for f, kind in rows if f.fired_at.date() <= cut_off]


def pauses(trial: Trial, cut_off: date) -> list[TrialPause]:
    """Pauses begun by the cut-off; a resumption after it shows as still paused then."""
    return [
        p
        for p in db.session.execute(
            sa.select(TrialPause)
            .where(TrialPause.trial_id == trial.id)
            .order_by(TrialPause.paused_at)
        ).scalars()
        if p.paused_at.date() <= cut_off
    ]


def resumed_by(pause: TrialPause, cut_off: date) -> datetime | None:
    if pause.resumed_at is not None and pause.resumed_at.date() <= cut_off:
        return pause.resumed_at
    return None


@dataclass
class ClockLine:
    adverse_event_id: int
    subject: str
    term: str
    authority: str
    kind: str
    clock_start: datetime
    due_at: datetime
    submitted_at: datetime | None
    reference: str | None
    timeliness: str  # on time / late / overdue / open


TIMELINESS = ("on time", "late", "overdue", "open")


def expedited_clocks(trial: Trial, cut_off: date) -> Iterator[ClockLine]:
    """Reporting clocks started by the cut-off, with their timeliness then: submitted on
    time or late (submissions dated by the cut-off), overdue (due by then, not submitted
    by then), open (not due yet)."""
    rows = db.session.execute(
        sa.select(ExpeditedReport, Subject.code, AdverseEvent.term, Site)
        .join(AdverseEvent, AdverseEvent.id == ExpeditedReport.adverse_event_id)
        .join(Subject, Subject.id == AdverseEvent.subject_id)
        .join(Site, Site.id == ExpeditedReport.site_id)
        .where(ExpeditedReport.trial_id == trial.id)
        .order_by(ExpeditedReport.due_at, ExpeditedReport.id)
        .execution_options(yield_per=500)
    ).tuples()
    for report, code, term, site in rows:
        zone_name = site.timezone
        if local_date(report.clock_start, zone_name) > cut_off:
            continue
        if not entered(report.created_at, cut_off, site):
            continue
        submitted = report.submitted_at
        if submitted is not None and local_date(submitted, zone_name) > cut_off:
            submitted = None
        if submitted is not None:
            timeliness = "late" if submitted > report.due_at else "on time"
        elif local_date(report.due_at, zone_name) <= cut_off:
            timeliness = "overdue"
        else:
            timeliness = "open"
        yield ClockLine(
            report.adverse_event_id,
            code,
            term,
            report.authority,
            report.kind,
            report.clock_start,
            report.due_at,
            submitted,
            report.reference if submitted else None,
            timeliness,
        )


def deviations(trial: Trial, cut_off: date) -> Iterator[tuple[Deviation, str, str]]:
    """Protocol deviations as they stood at the cut-off, with the subject's code and site:
    dated by the cut-off and recorded by the end of that day at the site, and not voided
    (corrected) by then, as every other record of the report."""
    rows = db.session.execute(
        sa.select(Deviation, Subject.code, Site)
        .join(Subject, Subject.id == Deviation.subject_id)
        .join(Site, Site.id == Subject.site_id)
        .where(Subject.trial_id == trial.id, Deviation.occurred_on <= cut_off)
        .order_by(Deviation.occurred_on, Deviation.id)
        .execution_options(yield_per=500)
    ).tuples()
    for deviation, code, site in rows:
        voided = deviation.voided_at is not None and entered(deviation.voided_at, cut_off, site)
        if entered(deviation.recorded_at, cut_off, site) and not voided:
            yield deviation, code, site.code
