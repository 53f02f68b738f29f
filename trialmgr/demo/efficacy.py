"""Demo efficacy data: factor IX activity (the primary endpoint) and the annualised bleeding
rate for the dosed subjects of the AAV haemophilia B trials.

Factor IX activity starts below 2 IU/dL (severe haemophilia B) and rises after AAV gene
transfer over the first weeks, reaching a plateau of 20-40 IU/dL in GT-01 by week 12
(about 5-7 IU/dL at GT-00's low dose); GT-01's first subject loses some expression during
the week 6-10 transaminase rise (treated with prednisolone) and recovers part of it. One
subject has two baselines (screening and the dosing morning): the later one counts.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from trialmgr.auth.models import SystemActor
from trialmgr.auth.services import find_user_by_email
from trialmgr.clock import utcnow
from trialmgr.efficacy.services import endpoints as endpoint_service
from trialmgr.efficacy.services import measurements as measurement_service
from trialmgr.enrollment.models import Subject, Trial
from trialmgr.extensions import db

# Per subject, in dosing order: (FIX baseline, FIX plateau, ABR before dosing, ABR after).
GT01_PROFILES = (
    (0.8, 26.0, 9.0, 1.9),
    (1.4, 33.0, 6.0, 0.0),
    (1.1, 23.0, 12.0, 2.0),
    (0.9, 38.0, 8.0, 0.0),
)
GT00_PROFILES = ((0.7, 6.5, 10.0, 3.0), (1.2, 5.2, 7.0, 4.0))
# Small visit-to-visit assay variation (deterministic, so the demo is the same every time).
VARIATION = (1.0, 0.96, 1.04, 0.98, 1.03, 0.97)
ABR_VISITS = ("Week 12", "Week 26", "Week 52")


def _fix(day: int, baseline: float, plateau: float) -> float:
    """Factor IX activity on a study day: a delayed rise to the plateau (logistic, half-way
    at day 21, on the plateau by week 8-12)."""
    if day <= 0:
        return baseline
    return baseline + (plateau - baseline) / (1 + math.exp(-(day - 21) / 6))


def _endpoints(trial: Trial) -> tuple[Any, Any]:
    lead = SystemActor(email="system:demo")
    fix = endpoint_service.add_endpoint(
        lead,
        trial,
        {
            "code": "FIX",
            "name": "Factor IX activity",
            "unit": "IU/dL",
            "direction": "higher_is_better",
            "primary": True,
        },
    )
    abr = endpoint_service.add_endpoint(
        lead,
        trial,
        {
            "code": "ABR",
            "name": "Annualised bleeding rate",
            "unit": "bleeds/year",
            "direction": "lower_is_better",
            "primary": False,
        },
    )
    return fix, abr


def _coordinator(subject: Subject) -> Any:
    email = (
        "coordinator@example.org" if subject.site.code == "IT01" else "coordinator.fr@example.org"
    )
    return find_user_by_email(email)


def _record(
    actor: Any, subject: Subject, endpoint: Any, value: float, on: date, **more: Any
) -> None:
    data = {
        "subject_code": subject.code,
        "endpoint_id": endpoint.id,
        "value": Decimal(str(round(value, 1))),
        "measured_on": on,
        **more,
    }
    measurement_service.record(actor, data, utcnow())


def seed_trial(trial: Trial, profiles: tuple[tuple[float, ...], ...]) -> None:
    """Endpoints FIX and ABR, and for each dosed subject a baseline of both and a value at
    every protocol visit done (FIX) or at weeks 12, 26 and 52 (ABR)."""
    fix, abr = _endpoints(trial)
    dosed = [s for s in db.session.execute(
        sa.select(Subject).where(Subject.trial_id == trial.id).order_by(Subject.id)
    ).scalars() if s.dosing is not None]  # fmt: skip
    for index, (subject, profile) in enumerate(zip(dosed, profiles, strict=False)):
        fix0, plateau, abr_before, abr_after = profile
        actor = _coordinator(subject)
        day0 = measurement_service.dosed_on(subject)
        assert day0 is not None
        week_before = day0 - timedelta(days=7)
        if index == 1:  # a screening baseline, then the dosing morning's: the later counts
            screening = max(subject.consented_on, day0 - timedelta(days=14))
            _record(actor, subject, fix, fix0 + 0.3, screening, baseline=True)
            _record(actor, subject, fix, fix0, day0, baseline=True)
        else:
            _record(actor, subject, fix, fix0, week_before, baseline=True)
        _record(actor, subject, abr, abr_before, week_before, baseline=True)
        done = [v for v in subject.visits if v.kind == "protocol" and v.done_on is not None]
        for i, visit in enumerate(done):
            assert visit.done_on is not None
            value = _fix(visit.day, fix0, plateau) * VARIATION[(i + index) % len(VARIATION)]
            if trial.code == "GT-01" and index == 0 and 42 <= visit.day <= 70:
                value *= 0.72  # expression lost during the transaminase rise
            _record(actor, subject, fix, value, visit.done_on, visit_id=visit.id)
            if visit.name in ABR_VISITS:
                _record(actor, subject, abr, abr_after, visit.done_on, visit_id=visit.id)


def seed(trials: list[Trial]) -> None:
    """Efficacy data for the demo trials (GT-01: 20-40 IU/dL by week 12; GT-00: low dose)."""
    for trial in trials:
        seed_trial(trial, GT01_PROFILES if trial.code == "GT-01" else GT00_PROFILES)
