"""A synthetic trial at a chosen scale, from a seeded generator.

The skeleton (accounts, partners, sites and their approvals, the trial and its design) is
made through the services, so it is exactly what the application would hold; the bulk
(screenings, subjects, dosings, visits, adverse events, lab results, reporting clocks, and
audit rows continuing the hash chain) is inserted with bulk Core inserts, untimed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.audit.chain import jsonable, row_hash
from trialmgr.audit.models import GENESIS_HASH, AuditEvent
from trialmgr.auth import services as auth_services
from trialmgr.auth.models import SystemActor
from trialmgr.clock import utcnow
from trialmgr.enrollment.models import (
    Dosing,
    Screening,
    Subject,
    SubjectConsent,
    Visit,
)
from trialmgr.enrollment.services import consent as consent_service
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.extensions import db
from trialmgr.partners.services import approvals as approvals_service
from trialmgr.partners.services import directory as directory_service
from trialmgr.partners.services import sites as sites_service
from trialmgr.partners.services import status as status_service
from trialmgr.safety.models import AdverseEvent, ExpeditedReport, LabResult
from trialmgr.safety.services import clocks, stopping

PASSWORD = "Granite-Meadow-Lantern-47"
SOCS = (
    "Investigations",
    "Hepatobiliary disorders",
    "General disorders and administration site conditions",
    "Nervous system disorders",
    "Gastrointestinal disorders",
    "Infections and infestations",
    "Blood and lymphatic system disorders",
    "Skin and subcutaneous tissue disorders",
)
TERMS = ("ALT increased", "Pyrexia", "Headache", "Nausea", "Fatigue", "Rash", "Hepatitis")
ANALYTES = (("ALT", "U/L", 41, None), ("AST", "U/L", 40, None), ("PLT", "10^9/L", None, 150))
CHUNK = 20_000


@dataclass(frozen=True)
class Scale:
    sites: int
    subjects: int
    adverse_events: int
    labs: int
    visits: int
    audit_rows: int


SCALES = {
    "small": Scale(5, 500, 10_000, 20_000, 5_000, 20_000),
    "medium": Scale(10, 2_000, 100_000, 200_000, 40_000, 200_000),
    "large": Scale(20, 10_000, 1_000_000, 2_000_000, 200_000, 1_000_000),
}


@dataclass
class World:
    trial_id: int
    site_ids: list[int]
    cohort_ids: list[int]
    coordinator_emails: dict[int, str]
    lead_email: str
    monitor_email: str
    subject_codes: list[str]
    spare_cohort_id: int  # capacity 3, empty: for the concurrent enrolment case
    spare_screening_ids: list[int]


def _bulk(table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        db.session.execute(sa.insert(table), rows[start : start + CHUNK])


def _skeleton(scale: Scale, today: date) -> tuple[Any, list[Any], list[Any], dict[int, str]]:
    actor: Any = SystemActor(email="system:bench")
    now = utcnow()
    for role, email in (
        ("consortium_lead", "lead@bench.org"),
        ("safety_monitor", "monitor@bench.org"),
    ):
        name = role.replace("_", " ").title()
        auth_services.create_user(
            actor, {"email": email, "name": name, "role": role, "password": PASSWORD}
        )
    sites = []
    emails = {}
    for n in range(scale.sites):
        partner = directory_service.create_partner(
            actor,
            {
                "name": f"Bench hospital {n:03d}",
                "short_name": f"BH{n}",
                "kind": "clinical_site",
                "country": "IT",
            },
        )
        site = sites_service.create_site(
            actor,
            {
                "partner_id": partner.id,
                "code": f"B{n:03d}",
                "name": f"Bench site {n:03d}",
                "country": "IT",
                "timezone": "Europe/Rome",
                "target_enrollment": scale.subjects // scale.sites,
            },
        )
        for kind in ("irb", "ibc", "contract", "siv"):
            approvals_service.add_approval(
                actor,
                site,
                {
                    "kind": kind,
                    "reference": f"{site.code}-{kind}",
                    "granted_on": today - timedelta(days=1500),
                },
                now,
            )
        status_service.activate_site(actor, site, now, today - timedelta(days=1400))
        email = f"coordinator{n:03d}@bench.org"
        auth_services.create_user(
            actor,
            {
                "email": email,
                "name": f"Coordinator {n}",
                "role": "coordinator",
                "password": PASSWORD,
                "site_ids": [site.id],
            },
        )
        sites.append(site)
        emails[site.id] = email
    trial = trials_service.create_trial(
        actor,
        {
            "code": "BENCH-1",
            "title": "Synthetic pilot for benchmarks",
            "vector_type": "aav",
            "stagger_days": 0,
            "orphacode": 98879,
        },
    )
    cohorts = []
    per_cohort = scale.subjects // 4 + 1
    for seq, dose in enumerate(("1e13", "3e13", "1e14", "3e14"), start=1):
        cohorts.append(
            trials_service.add_cohort(
                actor,
                trial,
                {
                    "label": f"C{seq}",
                    "dose": dose,
                    "dose_unit": "vg/kg",
                    "capacity": per_cohort,
                    "sequence": seq,
                },
            )
        )
    spare = trials_service.add_cohort(
        actor,
        trial,
        {"label": "SPARE", "dose": "1e12", "dose_unit": "vg/kg", "capacity": 3, "sequence": 9},
    )
    cohorts.append(spare)
    trials_service.add_criterion(
        actor, trial, {"code": "I1", "kind": "inclusion", "text": "Severe disease"}
    )
    consent_service.add_consent_version(
        actor, trial, {"version": "1.0", "approved_on": today - timedelta(days=1450)}, now
    )
    for name, day, window in (
        ("Day 7", 7, 1),
        ("Week 4", 28, 3),
        ("Week 12", 84, 7),
        ("Week 26", 182, 14),
    ):
        trials_service.add_visit_definition(
            actor,
            trial,
            {
                "name": name,
                "day": day,
                "window_before": window,
                "window_after": window,
                "primary_endpoint": day == 84,
            },
        )
    trials_service.update_trial(actor, trial, {"status": "open", "reason": "benchmark"})
    clocks.ensure_rules(trial.id)
    stopping.ensure_rules(trial.id)
    # The rules would pause the synthetic trial at its first severe related event.
    with audit.audited(actor, action="stopping_rule.save", reason="benchmark"):
        for rule in stopping.rules_of(trial.id):
            rule.active = False
    db.session.commit()
    return trial, sites, cohorts, emails


def generate(scale_name: str, seed: int = 20261201) -> World:
    """Build the world; commits."""
    scale = SCALES[scale_name]
    rng = random.Random(seed)
    today = utcnow().date()
    trial, sites, cohorts, emails = _skeleton(scale, today)
    version_id = trial.consent_versions[0].id
    definitions = trial.visit_definitions
    site_ids = [s.id for s in sites]
    dosing_cohorts = cohorts[:4]
    screenings, subjects, consents, dosings = [], [], [], []
    per_site_number: dict[int, int] = {}
    start_screen = today - timedelta(days=1300)
    for n in range(scale.subjects):
        site_id = site_ids[n % len(site_ids)]
        per_site_number[site_id] = per_site_number.get(site_id, 0) + 1
        screened = start_screen + timedelta(days=rng.randrange(0, 900))
        screenings.append(
            {
                "id": n + 1,
                "trial_id": trial.id,
                "site_id": site_id,
                "number": per_site_number[site_id],
                "screened_on": screened,
                "orphacode": 98879,
                "birth_year": 2010,
                "sex": "M",
                "answers": {"I1": True},
                "outcome": "eligible",
                "failed_criteria": [],
                "consented_on": screened,
                "consent_version_id": version_id,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
        )
        cohort = dosing_cohorts[n % 4]
        code = f"B{site_ids.index(site_id):03d}-{n:05d}"
        subjects.append(
            {
                "id": n + 1,
                "code": code,
                "trial_id": trial.id,
                "site_id": site_id,
                "screening_id": n + 1,
                "cohort_id": cohort.id,
                "status": "in_follow_up",
                "enrolled_on": screened + timedelta(days=3),
                "consent_version_id": version_id,
                "consented_on": screened,
                "reconsent_due": False,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
        )
        consents.append(
            {"subject_id": n + 1, "consent_version_id": version_id, "consented_on": screened}
        )
        dosed = datetime.combine(screened + timedelta(days=10), time(9), tzinfo=UTC)
        dosings.append(
            {
                "subject_id": n + 1,
                "cohort_id": cohort.id,
                "dosed_at": dosed,
                "dose": cohort.dose,
                "dose_unit": "vg/kg",
                "lot_number": "BENCH",
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
        )
    spare_screenings = []
    for k in range(60):
        sid = scale.subjects + k + 1
        site_id = site_ids[0]
        per_site_number[site_id] += 1
        spare_screenings.append(sid)
        screenings.append(
            {
                "id": sid,
                "trial_id": trial.id,
                "site_id": site_id,
                "number": per_site_number[site_id],
                "screened_on": today - timedelta(days=5),
                "orphacode": 98879,
                "birth_year": 2010,
                "sex": "M",
                "answers": {"I1": True},
                "outcome": "eligible",
                "failed_criteria": [],
                "consented_on": today - timedelta(days=5),
                "consent_version_id": version_id,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
        )
    _bulk(Screening.__table__, screenings)
    _bulk(Subject.__table__, subjects)
    _bulk(SubjectConsent.__table__, consents)
    _bulk(Dosing.__table__, dosings)
    visits = []
    for n in range(scale.visits):
        subject = subjects[n % len(subjects)]
        definition = definitions[(n // len(subjects)) % len(definitions)]
        dosed_on = dosings[subject["id"] - 1]["dosed_at"].date()
        on = dosed_on + timedelta(days=definition.day)
        if (n // len(subjects)) >= len(definitions):
            continue
        visits.append(
            {
                "subject_id": subject["id"],
                "definition_id": definition.id,
                "kind": "protocol",
                "name": definition.name,
                "day": definition.day,
                "scheduled_on": on,
                "window_start": on - timedelta(days=definition.window_before),
                "window_end": on + timedelta(days=definition.window_after),
                "status": "done" if on < today else "scheduled",
                "done_on": on if on < today else None,
                "primary_endpoint": definition.primary_endpoint,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
        )
    _bulk(Visit.__table__, visits)
    aes = []
    for _ in range(scale.adverse_events):
        subject = subjects[rng.randrange(len(subjects))]
        onset = dosings[subject["id"] - 1]["dosed_at"].date() + timedelta(
            days=rng.randrange(1, 300)
        )
        onset = min(onset, today - timedelta(days=1))
        grade = rng.choices((1, 2, 3, 4), weights=(70, 22, 7, 1))[0]
        serious = grade >= 3 and rng.random() < 0.3
        causality = rng.choice(("unrelated", "unlikely", "possible", "probable"))
        aware = datetime.combine(onset, time(12), tzinfo=UTC)
        aes.append(
            {
                "trial_id": trial.id,
                "subject_id": subject["id"],
                "site_id": subject["site_id"],
                "cohort_id": subject["cohort_id"],
                "version": 1,
                "term": rng.choice(TERMS),
                "soc": rng.choice(SOCS),
                "onset_date": onset,
                "grade": grade,
                "seriousness_criteria": ["hospitalisation"] if serious else [],
                "serious": serious,
                "causality": causality,
                "suspected": causality in ("possible", "probable"),
                "expected": rng.random() < 0.7,
                "susar": False,
                "aesi": False,
                "site_awareness_at": aware,
                "sponsor_awareness_at": aware,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
        )
        aes[-1]["susar"] = serious and not aes[-1]["expected"] and aes[-1]["suspected"]
    _bulk(AdverseEvent.__table__, aes)
    if scale.adverse_events:
        rule_id = db.session.execute(
            sa.select(sa.func.min(sa.text("id"))).select_from(sa.text("expedited_rule"))
        ).scalar_one()
        serious_ids = db.session.execute(
            sa.select(AdverseEvent.id, AdverseEvent.site_id, AdverseEvent.site_awareness_at).where(
                AdverseEvent.serious
            )
        ).all()
        reports = [
            {
                "adverse_event_id": ae_id,
                "trial_id": trial.id,
                "site_id": site_id,
                "rule_id": rule_id,
                "authority": "sponsor",
                "kind": "initial",
                "clock_start": aware,
                "due_at": aware + timedelta(hours=24),
                "submitted_at": aware + timedelta(hours=rng.choice((6, 20, 30)))
                if rng.random() < 0.9
                else None,
                "reference": "R",
                "late": None,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
            for ae_id, site_id, aware in serious_ids
        ]
        for report in reports:
            if report["submitted_at"] is not None:
                report["late"] = report["submitted_at"] > report["due_at"]
        _bulk(ExpeditedReport.__table__, reports)
    labs = []
    for n in range(scale.labs):
        subject = subjects[n % len(subjects)]
        analyte, unit, uln, lln = ANALYTES[(n // len(subjects)) % len(ANALYTES)]
        collected = dosings[subject["id"] - 1]["dosed_at"] + timedelta(
            days=7 * ((n // (len(subjects) * 3)) + 1)
        )
        if uln:
            value = Decimal(rng.randrange(15, 300))
            multiple = value / Decimal(uln)
            grade = 0 if multiple <= 1 else 1 if multiple <= 3 else 2 if multiple <= 5 else 3
        else:
            value = Decimal(rng.randrange(40, 400))
            grade = 0 if value >= lln else 1 if value >= 75 else 2 if value >= 50 else 3
            multiple = None
        labs.append(
            {
                "trial_id": trial.id,
                "subject_id": subject["id"],
                "site_id": subject["site_id"],
                "analyte": analyte,
                "value": value,
                "unit": unit,
                "uln": uln,
                "lln": lln,
                "value_canonical": value,
                "canonical_unit": unit,
                "uln_multiple": multiple,
                "grade": grade,
                "collected_at": collected,
                "hys_law": False,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
        )
    _bulk(LabResult.__table__, labs)
    _fix_sequences()
    db.session.commit()
    extend_audit_chain(scale.audit_rows, rng)
    spare = next(c for c in cohorts if c.label == "SPARE")
    return World(
        trial_id=trial.id,
        site_ids=site_ids,
        cohort_ids=[c.id for c in dosing_cohorts],
        coordinator_emails=emails,
        lead_email="lead@bench.org",
        monitor_email="monitor@bench.org",
        subject_codes=[s["code"] for s in subjects],
        spare_cohort_id=spare.id,
        spare_screening_ids=spare_screenings,
    )


def _fix_sequences() -> None:
    """Rows inserted with explicit ids leave PostgreSQL's sequences behind: move them on."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    for table in ("screening", "subject"):
        db.session.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        )


def extend_audit_chain(rows: int, rng: random.Random) -> None:
    """Append `rows` well-formed events to the hash chain (what years of edits leave)."""
    table = AuditEvent.__table__
    prev = (
        db.session.execute(
            sa.select(table.c.hash).order_by(table.c.id.desc()).limit(1)
        ).scalar_one_or_none()
        or GENESIS_HASH
    )
    start = utcnow() - timedelta(days=900)
    batch = []
    for n in range(rows):
        values = {
            "at": start + timedelta(seconds=60 * n),
            "actor_id": None,
            "actor": "coordinator000@bench.org",
            "action": "update",
            "entity": "visit",
            "entity_id": str(n),
            "changes": jsonable(
                {
                    "status": {"old": "scheduled", "new": "done"},
                    "done_on": {"old": None, "new": "2026-01-01"},
                }
            ),
            "reason": rng.choice((None, "entered late", "corrected date")),
            "prev_hash": prev,
        }
        values["hash"] = prev = row_hash(**values)
        batch.append(values)
        if len(batch) >= CHUNK:
            db.session.execute(sa.insert(table), batch)
            batch = []
    if batch:
        db.session.execute(sa.insert(table), batch)
    db.session.commit()
