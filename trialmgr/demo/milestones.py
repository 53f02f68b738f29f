"""Demo feasibility plan for GT-01: milestones (most done, several completed by the records
themselves, one progression review overdue, one DSMB meeting within 30 days) and the
pre-specified progression criteria, whose lights on the demo data show all three colours
(eligibility amber, data completeness red: the protocol visits carry no notes yet; the
rest green). The public summary is published for patient organisations."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from trialmgr.auth.models import SystemActor
from trialmgr.enrollment.models import Trial
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.milestones.services import criteria as criteria_service
from trialmgr.milestones.services import milestones as milestones_service
from trialmgr.partners.models import Site

# (metric, target, amber fraction)
CRITERIA = (
    ("recruitment_rate", "0.25", "0.5"),
    ("screen_to_enrol_ratio", "2", "0.5"),
    ("eligibility_rate", "0.8", "0.5"),
    ("consent_rate", "0.8", "0.5"),
    ("retention", "0.9", "0.5"),
    ("visit_adherence", "0.85", "0.5"),
    ("data_completeness", "0.9", "0.6"),
    ("sae_timeliness", "1", "0.8"),
)


def seed(trial: Trial, sites: dict[str, Site], today: date, now: datetime) -> None:
    lead = SystemActor(email="system:demo")
    ago = lambda n: today - timedelta(days=n)  # noqa: E731
    ahead = lambda n: today + timedelta(days=n)  # noqa: E731
    c1, c2 = trial.cohorts[0].id, trial.cohorts[1].id
    plan: list[dict[str, Any]] = [
        {
            "name": "Protocol approved",
            "kind": "protocol_approved",
            "planned_on": ago(340),
            "achieved_on": ago(335),
            "notes": "Ethics and regulatory approval of protocol 1.0.",
        },
        {"name": "First site activated", "planned_on": ago(330)},
        {"name": "First subject screened", "planned_on": ago(260)},
        {
            "name": "First subject screened at Lyon",
            "kind": "first_subject_screened",
            "site_id": sites["FR01"].id,
            "planned_on": ago(200),
        },
        {"name": "First subject dosed", "planned_on": ago(210)},
        {
            "name": "Cohort C1 complete",
            "kind": "cohort_complete",
            "cohort_id": c1,
            "planned_on": ago(150),
        },
        {
            "name": "DSMB meeting: escalation from C1",
            "kind": "dsmb_meeting",
            "planned_on": ago(45),
            "achieved_on": ago(40),
        },
        {
            "name": "Interim progression review",
            "kind": "progression_review",
            "planned_on": ago(14),
            "notes": "Waiting for the data completeness review.",
        },
        {"name": "DSMB meeting: C2 sentinel", "kind": "dsmb_meeting", "planned_on": ahead(21)},
        {
            "name": "Cohort C2 complete",
            "kind": "cohort_complete",
            "cohort_id": c2,
            "planned_on": ahead(60),
        },
        {"name": "Last subject dosed", "planned_on": ahead(200)},
        {"name": "Primary follow-up complete", "planned_on": ahead(290)},
        {"name": "Database lock", "planned_on": ahead(330)},
    ]
    for milestone in plan:
        milestones_service.create_milestone(lead, trial, milestone, now)
    for metric, target, fraction in CRITERIA:
        criteria_service.create_criterion(
            lead,
            trial,
            {"metric": metric, "target": Decimal(target), "amber_fraction": Decimal(fraction)},
        )
    trials_service.update_trial(
        lead,
        trial,
        {"public_summary": True, "reason": "Agreed with the patient organisation"},
    )
