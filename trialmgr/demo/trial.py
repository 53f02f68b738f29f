"""Demo trial: an open AAV factor IX pilot with three dose cohorts, a visit schedule, a
screening log with screen failures, and subjects at several stages: the first cohort
dosed and in follow-up, the second cohort's sentinel dosed with its next dosing allowed
in a few days, one subject due for re-consent."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from trialmgr.auth.models import SystemActor
from trialmgr.auth.services import find_user_by_email
from trialmgr.clock import utcnow
from trialmgr.demo.accounts import DEMO_PASSWORD
from trialmgr.enrollment.models import Subject, Trial
from trialmgr.enrollment.services import consent as consent_service
from trialmgr.enrollment.services import dosing as dosing_service
from trialmgr.enrollment.services import oversight as oversight_service
from trialmgr.enrollment.services import screening as screening_service
from trialmgr.enrollment.services import subjects as subjects_service
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.enrollment.services import visits as visits_service
from trialmgr.partners.models import Site

COHORTS = [("C1", "1e13", 3), ("C2", "3e13", 3), ("C3", "1e14", 3)]
CRITERIA = [
    ("I1", "inclusion", "Male, 6 to 17 years, severe haemophilia B (FIX activity <= 2 IU/dL)"),
    ("I2", "inclusion", "At least 150 exposure days to FIX concentrates"),
    ("E1", "exclusion", "Neutralising antibodies to AAV8 above 1:5"),
    ("E2", "exclusion", "Active hepatitis B or C, or liver fibrosis stage 3-4"),
]
VISITS = [
    ("Day 1", 1, 0, 0, False),
    ("Day 7", 7, 1, 1, False),
    ("Week 2", 14, 2, 2, False),
    ("Week 4", 28, 3, 3, False),
    ("Week 8", 56, 4, 4, False),
    ("Week 12", 84, 7, 7, True),
    ("Week 26", 182, 14, 14, False),
    ("Week 52", 364, 14, 14, False),
]
ELIGIBLE = {"I1": True, "I2": True, "E1": False, "E2": False}


def _at(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def seed(sites: dict[str, Site], today: date) -> Trial:
    lead = SystemActor(email="system:demo")
    now = utcnow()
    ago = lambda n: today - timedelta(days=n)  # noqa: E731
    trial = trials_service.create_trial(
        lead,
        {
            "code": "GT-01",
            "title": "AAV8 factor IX gene transfer in severe haemophilia B: a first-in-human pilot",
            "phase": "1/2",
            "orphacode": 98879,
            "indication": "Haemophilia B",
            "vector_type": "aav",
            "stagger_days": 14,
        },
    )
    for seq, (label, dose, capacity) in enumerate(COHORTS, start=1):
        trials_service.add_cohort(
            lead,
            trial,
            {
                "label": label,
                "dose": dose,
                "dose_unit": "vg/kg",
                "capacity": capacity,
                "sequence": seq,
            },
        )
    for code, kind, text in CRITERIA:
        trials_service.add_criterion(lead, trial, {"code": code, "kind": kind, "text": text})
    consent_service.add_consent_version(
        lead, trial, {"version": "1.0", "approved_on": ago(320)}, now
    )
    for name, day, before, after, primary in VISITS:
        trials_service.add_visit_definition(
            lead,
            trial,
            {
                "name": name,
                "day": day,
                "window_before": before,
                "window_after": after,
                "primary_endpoint": primary,
            },
        )
    trials_service.update_trial(
        lead, trial, {"status": "open", "reason": "Ethics, IBC and CTA approvals in place"}
    )

    it_coord = find_user_by_email("coordinator@example.org")
    fr_coord = find_user_by_email("coordinator.fr@example.org")
    it, fr = sites["IT01"], sites["FR01"]
    _screen(
        it_coord,
        trial,
        it,
        ago(250),
        {"I1": True, "I2": False, "E1": False, "E2": False},
        "screen_failed",
    )
    _screen(
        it_coord,
        trial,
        it,
        ago(240),
        {"I1": True, "I2": True, "E1": True, "E2": False},
        "screen_failed",
    )
    _screen(it_coord, trial, it, ago(230), ELIGIBLE, "declined", "Family declined: travel burden")
    a = _enrol(it_coord, trial, it, 0, ago(225), now)
    b = _enrol(it_coord, trial, it, 0, ago(215), now)
    c = _enrol(fr_coord, trial, fr, 0, ago(170), now)
    _dose(it_coord, a, ago(200), now)
    _dose(it_coord, b, ago(186), now)
    _dose(fr_coord, c, ago(160), now)
    monitor = find_user_by_email("monitor@example.org")
    oversight_service.record_safety_review(
        monitor,
        trial,
        {
            "cohort_id": trial.cohorts[0].id,
            "decision": "escalate",
            "password": DEMO_PASSWORD,
            "rationale": "No dose-limiting toxicity in C1 through week 4; "
            "transaminases within 1.5x ULN.",
        },
        _at(ago(40), 15),
    )
    d = _enrol(fr_coord, trial, fr, 1, ago(30), now)
    e = _enrol(it_coord, trial, it, 1, ago(20), now)
    _dose(fr_coord, d, ago(11), now)
    _screen(
        fr_coord,
        trial,
        fr,
        ago(9),
        {"I1": False, "I2": True, "E1": False, "E2": False},
        "screen_failed",
    )
    _screen(it_coord, trial, it, ago(3), {"I1": True, "I2": True}, None)
    for subject in (a, b, c, d):
        _record_visits(it_coord if subject.site_id == it.id else fr_coord, subject, now)
    consent_service.add_consent_version(
        lead, trial, {"version": "1.1", "approved_on": ago(6), "reconsent_required": True}, now
    )
    v11 = trial.consent_versions[-1]
    for subject in (a, c, d, e):  # b stays due for re-consent
        actor = it_coord if subject.site_id == it.id else fr_coord
        consent_service.record_consent(
            actor, subject, {"consent_version_id": v11.id, "consented_on": ago(2)}, now
        )
    # An Italian-language revision approved by Rome's ethics committee, not yet by Lyon's.
    consent_service.add_consent_version(
        lead,
        trial,
        {
            "version": "1.2",
            "reconsent_required": False,
            "site_approvals": [{"site_id": it.id, "approved_on": ago(1), "language": "it"}],
        },
        now,
    )
    return trial


def seed_earlier_pilot(sites: dict[str, Site], today: date) -> Trial:
    """GT-00, the consortium's earlier low-dose pilot at Rome: two boys dosed about two
    years ago, closed to enrolment, in long-term follow-up (yearly contacts)."""
    lead = SystemActor(email="system:demo")
    now = utcnow()
    ago = lambda n: today - timedelta(days=n)  # noqa: E731
    trial = trials_service.create_trial(
        lead,
        {
            "code": "GT-00",
            "title": "AAV5 factor IX gene transfer, low dose: earlier pilot (follow-up only)",
            "phase": "1",
            "orphacode": 98879,
            "indication": "Haemophilia B",
            "vector_type": "aav",
            "stagger_days": 21,
        },
    )
    trials_service.add_cohort(
        lead,
        trial,
        {"label": "C1", "dose": "5e12", "dose_unit": "vg/kg", "capacity": 2, "sequence": 1},
    )
    for code, kind, text in CRITERIA:
        trials_service.add_criterion(lead, trial, {"code": code, "kind": kind, "text": text})
    consent_service.add_consent_version(
        lead, trial, {"version": "1.0", "approved_on": ago(880)}, now
    )
    for name, day, before, after, primary in VISITS:
        trials_service.add_visit_definition(
            lead,
            trial,
            {
                "name": name,
                "day": day,
                "window_before": before,
                "window_after": after,
                "primary_endpoint": primary,
            },
        )
    trials_service.update_trial(lead, trial, {"status": "open", "reason": "Approvals in place"})
    it_coord = find_user_by_email("coordinator@example.org")
    it = sites["IT01"]
    first = _enrol(it_coord, trial, it, 0, ago(800), now)
    second = _enrol(it_coord, trial, it, 0, ago(790), now)
    _dose(it_coord, first, ago(780), now)
    _dose(it_coord, second, ago(750), now)
    for subject in (first, second):
        _record_visits(it_coord, subject, now)
        for visit in subject.visits:
            if visit.kind == "ltfu" and visit.window_end < today:
                visits_service.record_visit(
                    it_coord,
                    visit,
                    {
                        "status": "done",
                        "done_on": visit.scheduled_on,
                        "answers": {
                            "new_malignancy": False,
                            "neurological": False,
                            "autoimmune": False,
                            "haematological": False,
                        },
                        "notes": "Yearly telephone contact: no delayed events.",
                    },
                    now,
                )
    trials_service.update_trial(
        lead, trial, {"status": "closed", "reason": "Both slots dosed; follow-up continues"}
    )
    return trial


def _screen(
    actor: Any,
    trial: Trial,
    site: Site,
    on: date,
    answers: dict[str, bool],
    outcome: str | None,
    reason: str | None = None,
) -> Any:
    data: dict[str, Any] = {
        "trial_id": trial.id,
        "site_id": site.id,
        "screened_on": on,
        "orphacode": 98879,
        "birth_year": 2012 + on.day % 6,
        "sex": "M",
        "answers": answers,
    }
    if outcome:
        data["outcome"] = outcome
    if reason:
        data["fail_reason"] = reason
    return screening_service.create_screening(actor, data, utcnow())


def _enrol(actor: Any, trial: Trial, site: Site, cohort: int, on: date, now: datetime) -> Subject:
    screening = _screen(actor, trial, site, on - timedelta(days=5), ELIGIBLE, "eligible")
    version = consent_service.current_consent_version(trial, site.id, on)
    assert version is not None
    return subjects_service.enrol(
        actor,
        {
            "screening_id": screening.id,
            "cohort_id": trial.cohorts[cohort].id,
            "consent_version_id": version.id,
            "consented_on": on,
            "enrolled_on": on,
        },
        now,
    )


def _dose(actor: Any, subject: Subject, on: date, now: datetime) -> None:
    dosing_service.record_dosing(
        actor,
        subject,
        {"dosed_at": _at(on), "dose": subject.cohort.dose, "lot_number": "VEC-AAV8-2026-03"},
        now,
    )


def _record_visits(actor: Any, subject: Subject, now: datetime) -> None:
    """Visits whose window has closed: done in window, except one late (a deviation)."""
    for visit in subject.visits:
        if (
            visit.kind != "protocol"
            or visit.window_end >= now.date()
            or visit.status != "scheduled"
        ):
            continue
        done_on = visit.scheduled_on
        if visit.name == "Week 8" and subject.code.startswith("IT01"):
            done_on = visit.window_end + timedelta(days=2)
        visits_service.record_visit(actor, visit, {"status": "done", "done_on": done_on}, now)
