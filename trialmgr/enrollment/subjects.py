"""Screening, enrolment, consent, withdrawal and end of participation."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from trialmgr.audit import services as audit
from trialmgr.db import lock_rows
from trialmgr.enrollment.models import (
    ENDED_STATUSES,
    Cohort,
    ConsentVersion,
    Screening,
    Subject,
    SubjectConsent,
    Trial,
    Visit,
)
from trialmgr.enrollment.trials import (
    counts_against_capacity,
    current_consent_version,
    get_cohort,
    needs_reconsent,
)
from trialmgr.errors import Conflict, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.models import Site
from trialmgr.partners.policies import may_see_site, scope_sites
from trialmgr.partners.services import assert_site_open

# No I, O, 0 or 1: codes are read aloud and copied by hand.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 5


def _not_future(field: str, value: date, today: date) -> None:
    if value > today:
        raise Invalid(
            "Clinical dates cannot be in the future.",
            errors={field: ["Must not be in the future."]},
        )


def _not_before_activation(field: str, value: date, site: Site) -> None:
    if site.activated_on is None or value < site.activated_on:
        raise Invalid(
            "Clinical dates cannot precede the site's activation.",
            errors={field: [f"Before the site opened ({site.activated_on})."]},
        )


# --- screening ---------------------------------------------------------------------


def _evaluate(trial: Trial, answers: dict[str, bool]) -> tuple[list[str], list[str]]:
    """Which criteria are unmet by the answers, and which are unanswered."""
    codes = {c.code: c for c in trial.criteria}
    unknown = sorted(set(answers) - set(codes))
    if unknown:
        raise Invalid(
            "Unknown criteria.", errors={"answers": [f"No criterion {c}." for c in unknown]}
        )
    failed = [c.code for c in trial.criteria if c.code in answers and not c.met(answers[c.code])]
    missing = [c.code for c in trial.criteria if c.code not in answers]
    return failed, missing


def create_screening(actor: Any, data: dict[str, Any], today: date) -> Screening:
    """Log a screening at an open site of an open trial; numbers run per site."""
    from trialmgr.enrollment.trials import get_trial

    trial = get_trial(data["trial_id"])
    site = db.session.get(Site, data["site_id"])
    if site is None or not may_see_site(actor, site.id):
        raise Invalid("Unknown site.", errors={"site_id": [f"No site {data['site_id']}."]})
    if trial.status != "open":
        raise Conflict(
            f"The trial is {trial.status}; screening needs an open trial.", title="Trial not open"
        )
    _not_future("screened_on", data["screened_on"], today)
    lock_rows(db.session, Site, site.id)  # numbers per site stay gap-free and unique
    assert_site_open(site, data["screened_on"])
    _not_before_activation("screened_on", data["screened_on"], site)
    assert_site_open(site, today)
    answers = data.get("answers") or {}
    failed, _ = _evaluate(trial, answers)
    number = (
        db.session.execute(
            sa.select(sa.func.max(Screening.number)).where(Screening.site_id == site.id)
        ).scalar_one()
        or 0
    ) + 1
    with audit.audited(actor, action="screening.create"):
        screening = Screening(
            trial=trial,
            site=site,
            number=number,
            screened_on=data["screened_on"],
            orphacode=data["orphacode"],
            birth_year=data["birth_year"],
            sex=data["sex"],
            answers=answers,
            failed_criteria=failed,
        )
        db.session.add(screening)
    if data.get("outcome"):
        set_screening_outcome(actor, screening, data, initial=True)
    return screening


def set_screening_outcome(
    actor: Any, screening: Screening, data: dict[str, Any], initial: bool = False
) -> Screening:
    """eligible needs every criterion answered and met; screen_failed records the unmet
    criteria (or a stated reason); declined counts the approached who said no. Changing a
    recorded outcome needs a reason; once the subject is enrolled it is locked."""
    lock_rows(db.session, Screening, screening.id)  # not while an enrolment reads it
    if db.session.execute(
        sa.select(Subject.id).where(Subject.screening_id == screening.id)
    ).first():
        raise Conflict("The subject is enrolled; the screening is locked.", title="Record locked")
    answers = {**screening.answers, **(data.get("answers") or {})}
    failed, missing = _evaluate(screening.trial, answers)
    outcome = data.get("outcome", screening.outcome)
    errors: dict[str, list[str]] = {}
    if outcome == "eligible" and (failed or missing):
        errors["outcome"] = [
            f"Not eligible: unmet {', '.join(failed)}"
            if failed
            else f"Unanswered criteria: {', '.join(missing)}"
        ]
    if outcome in ("screen_failed", "declined") and not failed and not data.get("fail_reason"):
        errors["fail_reason"] = ["Give the reason (or the unmet criteria in answers)."]
    if outcome == "pending" and screening.outcome != "pending":
        errors["outcome"] = ["A recorded outcome cannot go back to pending."]
    if errors:
        raise Invalid("The screening outcome does not fit the answers.", errors=errors)
    reason = data.get("reason")
    if not initial and screening.outcome != "pending" and not reason:
        raise Invalid(
            "Corrections need a reason.",
            errors={"reason": ["Required to change a recorded outcome."]},
        )
    with audit.audited(actor, reason=reason, action="screening.outcome"):
        screening.answers = answers
        screening.failed_criteria = failed
        screening.outcome = outcome
        if "fail_reason" in data:
            screening.fail_reason = data["fail_reason"]
    return screening


def screening_query(actor: Any, filters: dict[str, Any]) -> sa.Select[tuple[Screening]]:
    q = scope_sites(actor, sa.select(Screening), Screening.site_id)
    for field in ("trial_id", "site_id", "outcome"):
        if filters.get(field) is not None:
            q = q.where(getattr(Screening, field) == filters[field])
    if filters.get("since"):
        q = q.where(Screening.screened_on >= filters["since"])
    if filters.get("until"):
        q = q.where(Screening.screened_on <= filters["until"])
    return q.order_by(Screening.screened_on.desc(), Screening.id.desc())


def get_screening(actor: Any, screening_id: int) -> Screening:
    screening = db.session.get(Screening, screening_id)
    if screening is None or not may_see_site(actor, screening.site_id):
        raise NotFound(f"No screening {screening_id}.")
    return screening


# --- enrolment ---------------------------------------------------------------------


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
    _not_future("consented_on", consented_on, today)
    _not_future("enrolled_on", enrolled_on, today)
    _not_before_activation("consented_on", consented_on, site)
    if consented_on < screening.screened_on:
        raise Invalid(
            "Consent before screening.", errors={"consented_on": ["Before the screening date."]}
        )
    if enrolled_on < consented_on:
        raise Invalid(
            "Enrolment before consent.", errors={"enrolled_on": ["Before the consent date."]}
        )
    assert_site_open(site, enrolled_on)
    version = _consent_version(trial, data["consent_version_id"], consented_on)
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


def _consent_version(trial: Trial, version_id: int, on: date) -> ConsentVersion:
    version = db.session.get(ConsentVersion, version_id)
    if version is None or version.trial_id != trial.id:
        raise Invalid(
            "Unknown consent version.", errors={"consent_version_id": [f"No version {version_id}."]}
        )
    current = current_consent_version(trial, on)
    if version.approved_on > on:
        raise Invalid(
            "Consent on a version not yet approved.",
            errors={"consent_version_id": [f"Approved only on {version.approved_on}."]},
        )
    if current is not None and version.id != current.id:
        raise Conflict(
            f"Version {version.version} is superseded; consent on version {current.version}.",
            title="Consent version not current",
        )
    return version


def get_subject(actor: Any, code: str) -> Subject:
    """A subject the actor may see by code; another site's subject answers 404."""
    subject = db.session.execute(
        sa.select(Subject).where(Subject.code == code.upper())
    ).scalar_one_or_none()
    if subject is None or not may_see_site(actor, subject.site_id):
        raise NotFound(f"No subject {code}.")
    return subject


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


def record_consent(
    actor: Any, subject: Subject, data: dict[str, Any], today: date
) -> SubjectConsent:
    """Re-consent to the current version: clears the re-consent block."""
    _not_future("consented_on", data["consented_on"], today)
    if data["consented_on"] < subject.consented_on:
        raise Invalid(
            "Re-consent before the first consent.", errors={"consented_on": ["Too early."]}
        )
    if not subject.active:
        raise Conflict(f"Subject {subject.code} is {subject.status}.", title="Subject not active")
    version = _consent_version(subject.trial, data["consent_version_id"], data["consented_on"])
    if version.id == subject.consent_version_id:
        raise Conflict(f"Subject {subject.code} already consented to version {version.version}.")
    with audit.audited(actor, action="subject.reconsent"):
        consent = SubjectConsent(
            subject=subject, consent_version=version, consented_on=data["consented_on"]
        )
        db.session.add(consent)
        subject.consent_version = version
        subject.consented_on = data["consented_on"]
        subject.reconsent_due = needs_reconsent(subject, today)
    return consent


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
    _not_future("withdrawn_on", data["withdrawn_on"], today)
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
    _not_future("on", on, today)
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


def subject_visits(subject: Subject) -> list[Visit]:
    return list(subject.visits)
