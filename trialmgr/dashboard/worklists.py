"""What each role has to do next, read from the domains' own services.

A worklist row is work, not a count: it names the record (subject and trial, site, cohort)
and links to the form that does the work. Every judgement (a visit overdue, a dosing the
gates would admit, an approval in force expiring) is the owning service's, asked with the
record's own local date, so the home page never disagrees with the form it links to.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from trialmgr.audit import services as audit_services
from trialmgr.auth import services as auth_services
from trialmgr.enrollment.models import Subject, Trial
from trialmgr.enrollment.services import dosing as dosing_service
from trialmgr.enrollment.services import screening as screening_service
from trialmgr.enrollment.services import subjects as subjects_service
from trialmgr.enrollment.services import visits as visits_service
from trialmgr.enrollment.services.oversight import pauses_of
from trialmgr.errors import Problem
from trialmgr.extensions import db
from trialmgr.milestones.services import consort as consort_service
from trialmgr.partners.services import approvals as approvals_service
from trialmgr.partners.services import sites as sites_service
from trialmgr.safety.models import AdverseEvent, WorkItem
from trialmgr.safety.services import adverse_events as ae_service
from trialmgr.safety.services import work as work_service

# How far ahead a consortium lead is warned of an approval in force running out.
APPROVAL_HORIZON_DAYS = 60
# Rows per worklist section on the home page (each section links to its full list).
SECTION_ROWS = 25


# --- coordinator -----------------------------------------------------------------------


def coordinator_worklist(actor: Any, now: datetime) -> dict[str, list[Any]]:
    """Visits due today (window open) or overdue, re-consents due, screenings without an
    outcome, subjects the dosing gates would admit now and adverse events to follow up, in
    the actor's sites."""
    visits = []
    for visit in db.session.execute(visits_service.visits_due(actor, now, 0)).scalars():
        state = visits_service.visit_state(visit, sites_service.site_today(visit.subject.site, now))
        if state in ("due", "overdue"):
            visits.append({"visit": visit, "state": state, "subject": visit.subject})
    reconsent = list(
        db.session.execute(
            subjects_service.subject_query(actor, {"reconsent_due": True})
            .options(selectinload(Subject.trial))
            .limit(SECTION_ROWS)
        ).scalars()
    )
    pending = list(
        db.session.execute(
            screening_service.screening_query(actor, {"outcome": "pending"}).limit(SECTION_ROWS)
        ).scalars()
    )
    return {
        "visits": visits[:SECTION_ROWS],
        "reconsent": reconsent,
        "pending_screenings": pending,
        "dosing_allowed": dosable_subjects(actor, now),
        "events": events_to_follow(actor),
    }


# Severe (CTCAE grade 3 or more) events are followed to resolution like serious ones.
FOLLOW_UP_GRADE = 3


def events_to_follow(actor: Any) -> list[AdverseEvent]:
    """Adverse events without a resolution date that are serious or of grade 3 or more, in
    the actor's sites, newest onset first: the site follows them until they resolve (and
    the sponsor expects the follow-up information)."""
    query = (
        ae_service.query(actor, {})
        .where(
            AdverseEvent.resolution_date.is_(None),
            sa.or_(AdverseEvent.serious.is_(True), AdverseEvent.grade >= FOLLOW_UP_GRADE),
        )
        .options(selectinload(AdverseEvent.subject))
        .limit(SECTION_ROWS)
    )
    return list(db.session.execute(query).scalars())


def dosable_subjects(actor: Any, now: datetime) -> list[Subject]:
    """Enrolled, undosed subjects whom every dosing gate (stagger, escalation review, consent,
    site open, trial open) would admit for a dose given now."""
    query = (
        subjects_service.subject_query(actor, {"status": "enrolled"})
        .where(Subject.withdrawal_kind.is_(None))
        .options(selectinload(Subject.trial))
    )
    allowed = []
    for subject in db.session.execute(query).scalars():
        if subject.dosing is not None:
            continue
        try:
            dosing_service.check_gates(subject, now, now)
        except Problem:
            continue
        allowed.append(subject)
    return allowed[:SECTION_ROWS]


# --- consortium lead -------------------------------------------------------------------


def enrolment_against_target(actor: Any, trials: Sequence[Trial], now: datetime) -> dict[str, Any]:
    """Enrolled against target per site, and slots filled against capacity per cohort of
    every trial past set-up: the chart's data and the table beside it."""
    counts = subjects_service.enrolled_per_site()
    sites = [
        {
            "label": s.code,
            "name": s.name,
            "value": counts.get(s.id, 0),
            "target": s.target_enrollment,
        }
        for s in db.session.execute(sites_service.site_query(actor, {})).scalars()
    ]
    cohorts = [
        {
            "label": f"{t.code} {row['cohort'].label}",
            "name": f"{row['cohort'].dose} {row['cohort'].dose_unit}",
            "value": row["filled"],
            "target": row["cohort"].capacity,
        }
        for t in trials
        if t.status != "setup"
        for row in dosing_service.cohort_board(t, now)
    ]
    return {"sites": sites, "cohorts": cohorts}


FUNNEL_STEPS = (
    ("screened", "Screened"),
    ("eligible", "Eligible"),
    ("consented", "Consented"),
    ("enrolled", "Enrolled"),
    ("dosed", "Dosed"),
)


def screening_funnel(actor: Any, trials: Sequence[Trial], now: datetime) -> list[dict[str, Any]]:
    """The CONSORT counts from screening to dosing, per trial past set-up."""
    funnels = []
    for trial in trials:
        if trial.status == "setup":
            continue
        flow = consort_service.flow(actor, trial, now)
        funnels.append(
            {"trial": trial, "steps": [(label, flow.get(key) or 0) for key, label in FUNNEL_STEPS]}
        )
    return funnels


def approvals_expiring(actor: Any, now: datetime) -> list[dict[str, Any]]:
    """Approvals in force at a site that expire within the horizon (or already have), judged
    on the site's own today; soonest first."""
    rows = []
    for site in db.session.execute(sites_service.site_query(actor, {})).scalars():
        on = sites_service.site_today(site, now)
        for approval in site.approvals:
            if approvals_service.in_force(site, approval.kind, on) is not approval:
                continue
            if approval.expires_on is None:
                continue
            days = (approval.expires_on - on).days
            if days <= APPROVAL_HORIZON_DAYS:
                rows.append({"site": site, "approval": approval, "days": days})
    return sorted(rows, key=lambda r: (r["days"], r["site"].code))


def sites_pending(actor: Any, now: datetime) -> list[dict[str, Any]]:
    """Sites not yet activated, with the approvals they still miss on their today."""
    rows = []
    for site in db.session.execute(
        sites_service.site_query(actor, {"status": "pending"})
    ).scalars():
        on = sites_service.site_today(site, now)
        rows.append({"site": site, "missing": approvals_service.missing_approvals(site, on)})
    return rows


# --- safety monitor --------------------------------------------------------------------


def safety_workspace(actor: Any, trials: Sequence[Trial], now: datetime) -> dict[str, Any]:
    """Pauses (open ones first), reviews due (cohorts waiting for an escalation review and
    the monitor's open review tasks) and open serious adverse events not yet reviewed at
    their latest version."""
    pauses = sorted(
        ((t, p) for t in trials for p in pauses_of(t)[:5]),
        key=lambda tp: (tp[1].resumed_at is not None, -tp[1].paused_at.timestamp()),
    )
    waiting = [
        {"trial": t, "cohort": row["cohort"], "why": row["waiting_review"]}
        for t in trials
        if t.status in ("open", "closed", "paused")
        for row in dosing_service.cohort_board(t, now)
        if row["waiting_review"] and row["filled"]
    ]
    tasks = list(
        db.session.execute(
            work_service.queue_for(actor)
            .options(selectinload(WorkItem.subject))
            .limit(SECTION_ROWS)
        ).scalars()
    )
    open_events = [
        {"event": ae, "review": ae_service.review_state(ae)}
        for ae in db.session.execute(
            ae_service.query(actor, {"serious": True})
            .where(AdverseEvent.resolution_date.is_(None))
            .limit(SECTION_ROWS)
        ).scalars()
    ]
    return {
        "pauses": pauses,
        "reviews_waiting": waiting,
        "tasks": tasks,
        "open_events": open_events,
    }


# --- administrator ---------------------------------------------------------------------


def admin_overview(now: datetime) -> dict[str, Any]:
    """Accounts, locked accounts, and the audit chain as verified now (incrementally, from
    the checkpoint of the last full walk): the status shown is the verification's outcome."""
    summary = auth_services.account_summary(now)
    summary["chain"] = audit_services.verify(full=False, now=now)
    summary["pending_sites"] = sites_service.count_by_status().get("pending", 0)
    return summary
