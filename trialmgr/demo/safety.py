"""Demo safety history for GT-01: mild adverse events, a graded ALT rise with its adverse
event, one SUSAR with its clocks (the sponsor and FDA reports submitted on time, the EU
and IBC ones still open), and a work queue with one overdue follow-up report. Nothing here
fires a stopping rule: the demo trial stays open."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from trialmgr.auth.services import find_user_by_email
from trialmgr.clock import zone
from trialmgr.demo.accounts import DEMO_PASSWORD
from trialmgr.enrollment.models import Subject, Trial
from trialmgr.extensions import db
from trialmgr.safety.models import ExpeditedReport
from trialmgr.safety.services import adverse_events as ae_service
from trialmgr.safety.services import clocks as clock_service
from trialmgr.safety.services import labs as lab_service


def _at(subject: Subject, day: Any, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=zone(subject.site.timezone))


def seed(trial: Trial, now: datetime) -> None:
    dosed = list(
        db.session.execute(
            sa.select(Subject)
            .where(Subject.trial_id == trial.id, Subject.status != "enrolled")
            .order_by(Subject.id)
        ).scalars()
    )
    it_coord = find_user_by_email("coordinator@example.org")
    fr_coord = find_user_by_email("coordinator.fr@example.org")
    monitor = find_user_by_email("monitor@example.org")
    today = now.date()

    def coord(subject: Subject) -> Any:
        return it_coord if subject.site.code == "IT01" else fr_coord

    first, second, third = dosed[0], dosed[1], dosed[2]
    reviewed = []
    # Mild, expected events after the infusion.
    for subject, term, soc, days in (
        (first, "Headache", "Nervous system disorders", 198),
        (second, "Pyrexia", "General disorders and administration site conditions", 185),
    ):
        onset = today - timedelta(days=days)
        event = ae_service.record(
            coord(subject),
            {
                "subject_code": subject.code,
                "term": term,
                "soc": soc,
                "onset_date": onset,
                "resolution_date": onset + timedelta(days=2),
                "grade": 1,
                "causality": "possible",
                "expected": True,
                "outcome": "recovered",
                "site_awareness_at": _at(subject, onset + timedelta(days=1), 10),
            },
            _at(subject, onset + timedelta(days=3), 11),  # entered once it had resolved
        )
        reviewed.append((event, _at(subject, onset + timedelta(days=5), 14)))
    # A transaminase rise in the first subject, week 6 to week 10, with its event.
    draws = ((158, 52), (151, 118), (144, 171), (137, 96), (130, 49))
    for days, alt in draws:
        collected = _at(first, today - timedelta(days=days), 8)
        lab_service.record(
            it_coord,
            {
                "subject_code": first.code,
                "analyte": "ALT",
                "value": Decimal(alt),
                "unit": "U/L",
                "uln": Decimal(41),
                "collected_at": collected,
            },
            collected + timedelta(hours=6),
        )
    alt_event = ae_service.record(
        it_coord,
        {
            "subject_code": first.code,
            "term": "Alanine aminotransferase increased",
            "soc": "Investigations",
            "onset_date": today - timedelta(days=151),
            "resolution_date": today - timedelta(days=130),
            "grade": 2,
            "causality": "probable",
            "expected": True,
            "aesi": True,
            "aesi_category": "hepatotoxicity",
            "action_taken": "treatment_given",
            "outcome": "recovered",
            "narrative": "Oral prednisolone from week 6, tapered over 4 weeks.",
            "site_awareness_at": _at(first, today - timedelta(days=151), 16),
        },
        _at(first, today - timedelta(days=129), 9),
    )
    reviewed.append((alt_event, _at(first, today - timedelta(days=125), 10)))
    for event, signed_at in reviewed:  # the monitor has reviewed the older events
        ae_service.review(monitor, event, {"version": 1, "password": DEMO_PASSWORD}, signed_at)
    # A SUSAR at Lyon ten days ago: hospitalised for hepatitis, unexpected, possibly related.
    onset = today - timedelta(days=11)
    aware = _at(third, today - timedelta(days=10), 9)
    susar = ae_service.record(
        fr_coord,
        {
            "subject_code": third.code,
            "term": "Autoimmune hepatitis",
            "soc": "Hepatobiliary disorders",
            "onset_date": onset,
            "grade": 3,
            "seriousness_criteria": ["hospitalisation"],
            "causality": "possible",
            "expected": False,
            "aesi": True,
            "aesi_category": "hepatotoxicity",
            "action_taken": "hospitalisation",
            "outcome": "recovering",
            "site_awareness_at": aware,
        },
        aware + timedelta(hours=2),  # entered then: its follow-up report is now overdue
    )
    reports = {
        r.authority: r
        for r in db.session.execute(
            sa.select(ExpeditedReport).where(ExpeditedReport.adverse_event_id == susar.id)
        ).scalars()
    }
    for authority, after, reference in (
        ("sponsor", timedelta(hours=20), "LGT-SAE-2026-014"),
        ("FDA", timedelta(days=6), "IND-31877-SR-0007"),
    ):
        clock_service.submit(
            monitor,
            reports[authority],
            {"submitted_at": aware + after, "reference": reference},
            aware + after + timedelta(minutes=5),
        )
