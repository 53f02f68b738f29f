"""Subjects: enrolment from an eligible screening into a cohort with room, pseudonymous
codes, withdrawal and end of participation."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from trialmgr.audit import services as audit
from trialmgr.clock import check_not_future
from trialmgr.db import lock_rows
from trialmgr.enrollment.models import (
    ENDED_STATUSES,
    Cohort,
    Screening,
    Subject,
    SubjectConsent,
)
from trialmgr.enrollment.services.consent import consent_version_on, needs_reconsent
from trialmgr.enrollment.services.screening import get_screening
from trialmgr.enrollment.services.trials import get_cohort
from trialmgr.errors import Conflict, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.models import Site
from trialmgr.partners.policies import may_see_site, scope_sites
from trialmgr.partners.services.sites import assert_site_open, check_not_before_activation

# No I, O, 0 or 1: codes are read aloud and copied by hand.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 5


def _new_code(site: Site) -> str:
    """Site code + random part: pseudonymous, never derived from personal data."""
    while True:
        code = f"{site.code}-{''.join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))}"
        if not db.session.execute(sa.select(Subject.id).where(Subject.code == code)).first():
            return code


def enrol(actor: Any, data: dict[str, Any], today: date) -> Subject:
    """Enrol from an eligible screening with a signed, current consent version into a cohort
    with room. Capacity is a hard cap: the cohort row is locked (PostgreSQL) or the write lock
    is held (SQLite) from the count to the insert."""
    screening = get_screening(actor, data["screening_id"])
    trial = screening.trial
    cohort = get_cohort(trial, data["cohort_id"])
    lock_rows(db.session, Cohort, cohort.id)
    lock_rows(db.session, Screening, screening.id)
    if db.session.execute(
        sa.select(Subject.id).where(Subject.screening_id == screening.id)
    ).first():
        raise Conflict("This screening is already enrolled.", title="Already enrolled")
    if screening.outcome != "eligible":
        raise Conflict(
            f"The screening outcome is {screening.outcome}, not eligible.", title="Not eligible"
        )
    if trial.status != "open":
        raise Conflict(
            f"The trial is {trial.status}; enrolment needs an open trial.", title="Trial not open"
        )
    site = screening.site
    consented_on = data["consented_on"]
    enrolled_on = data.get("enrolled_on") or today
    check_not_future("consented_on", consented_on, today)
    check_not_future("enrolled_on", enrolled_on, today)
    check_not_before_activation("consented_on", consented_on, site)
    if consented_on < screening.screened_on:
        raise Invalid(
            "Consent before screening.", errors={"consented_on": ["Before the screening date."]}
        )
    if enrolled_on < consented_on:
        raise Invalid(
            "Enrolment before consent.", errors={"enrolled_on": ["Before the consent date."]}
        )
    assert_site_open(site, enrolled_on, "enrolment")
    version = consent_version_on(trial, data["consent_version_id"], consented_on)
    taken = sum(
        1
        for s in db.session.execute(
            sa.select(Subject).where(Subject.cohort_id == cohort.id)
        ).scalars()
        if counts_against_capacity(s)
    )
    if taken >= cohort.capacity:
        raise Conflict(
            f"Cohort {cohort.label} is full ({cohort.capacity} of {cohort.capacity}).",
            title="Cohort full",
        )
    with audit.audited(actor, action="subject.enrol"):
        subject = Subject(
            code=_new_code(site),
            trial=trial,
            site_id=site.id,
            screening=screening,
            cohort=cohort,
            status="enrolled",
            enrolled_on=enrolled_on,
            consent_version=version,
            consented_on=consented_on,
        )
        # consent given (back-dated) on a version later superseded by one requiring re-consent
        subject.reconsent_due = needs_reconsent(subject, today)
        db.session.add(subject)
        db.session.add(
            SubjectConsent(subject=subject, consent_version=version, consented_on=consented_on)
        )
    return subject


def get_subject(actor: Any, code: str) -> Subject:
    """A subject the actor may see by code; another site's subject answers 404."""
    subject = db.session.execute(
        sa.select(Subject).where(Subject.code == code.upper())
    ).scalar_one_or_none()
    if subject is None or not may_see_site(actor, subject.site_id):
        raise NotFound(f"No subject {code}.")
    return subject


def subject_of_screening(screening: Screening) -> Subject | None:
    """The subject enrolled from this screening, if any."""
    return db.session.execute(
        sa.select(Subject).where(Subject.screening_id == screening.id)
    ).scalar_one_or_none()


def codes_by_screening(screening_ids: list[int]) -> dict[int, str]:
    """Subject codes of the enrolled among these screenings (the screening log's links)."""
    rows = db.session.execute(
        sa.select(Subject.screening_id, Subject.code).where(Subject.screening_id.in_(screening_ids))
    )
    return {row.screening_id: row.code for row in rows}


def enrolled_per_site() -> dict[int, int]:
    """Subjects enrolled per site id, all trials."""
    rows = db.session.execute(sa.select(Subject.site_id, sa.func.count()).group_by(Subject.site_id))
    return {site_id: n for site_id, n in rows.tuples()}


def subject_query(actor: Any, filters: dict[str, Any]) -> sa.Select[tuple[Subject]]:
    q = scope_sites(actor, sa.select(Subject), Subject.site_id)
    for field in ("trial_id", "site_id", "cohort_id", "status"):
        if filters.get(field) is not None:
            q = q.where(getattr(Subject, field) == filters[field])
    if filters.get("reconsent_due") is not None:
        q = q.where(Subject.reconsent_due == filters["reconsent_due"])
    # what SubjectOut reads, loaded in a few queries rather than several per subject
    q = q.options(
        selectinload(Subject.site),
        selectinload(Subject.cohort),
        selectinload(Subject.consent_version),
        selectinload(Subject.screening),
        selectinload(Subject.dosing),
    )
    return q.order_by(Subject.code)


def assert_may_enter_data(subject: Subject) -> None:
    """Non-safety data entry (protocol visits, efficacy) waits for re-consent; safety
    follow-up never does."""
    if subject.reconsent_due:
        raise Conflict(
            f"Subject {subject.code} must re-consent to the current version before this entry.",
            title="Re-consent required",
        )
    if subject.status in ENDED_STATUSES or subject.withdrawal_kind == "procedures":
        raise Conflict(
            f"Subject {subject.code} is {subject.status}; no further procedures.",
            title="Subject not active",
        )


def withdraw(actor: Any, subject: Subject, data: dict[str, Any], today: date) -> Subject:
    """Withdrawal of consent: `full` ends participation (scheduled visits cancelled);
    `procedures` stops protocol procedures but keeps safety follow-up (LTFU, RCR)."""
    check_not_future("withdrawn_on", data["withdrawn_on"], today)
    if data["withdrawn_on"] < subject.enrolled_on:
        raise Invalid(
            "Withdrawal before enrolment.", errors={"withdrawn_on": ["Before enrolment."]}
        )
    kind = data["kind"]
    if not subject.active or subject.withdrawal_kind == "full":
        raise Conflict(f"Subject {subject.code} has already left ({subject.status}).")
    if subject.withdrawal_kind == kind:
        raise Conflict(f"Subject {subject.code} already withdrew from further procedures.")
    with audit.audited(actor, reason=data["reason"], action="subject.withdraw"):
        subject.withdrawn_on = data["withdrawn_on"]
        subject.withdrawal_kind = kind
        subject.withdrawal_reason = data["reason"]
        if kind == "full":
            subject.status = "withdrawn"
        for visit in subject.visits:
            if visit.status == "scheduled" and (kind == "full" or visit.kind == "protocol"):
                visit.status = "cancelled"
    return subject


def end_participation(
    actor: Any, subject: Subject, status: str, on: date, reason: str, today: date
) -> Subject:
    """Lost to follow-up, or died (the safety domain calls this for a grade 5 event)."""
    check_not_future("on", on, today)
    if on < subject.enrolled_on:
        raise Invalid(
            "Before enrolment.", errors={"on": [f"Before enrolment ({subject.enrolled_on})."]}
        )
    if status not in ("lost_to_follow_up", "died"):
        raise Invalid(
            "Unknown end of participation.", errors={"status": ["lost_to_follow_up or died."]}
        )
    if subject.status == "died":
        raise Conflict(f"Subject {subject.code} is recorded as deceased.")
    with audit.audited(actor, reason=reason, action=f"subject.{status}"):
        subject.status = status
        subject.ended_on = on
        subject.end_reason = reason
        for visit in subject.visits:
            if visit.status == "scheduled":
                visit.status = "cancelled"
    return subject


def counts_against_capacity(subject: Subject) -> bool:
    """A subject withdrawn before dosing frees the slot; any dosed subject keeps it."""
    return not (subject.status == "withdrawn" and subject.dosing is None)
