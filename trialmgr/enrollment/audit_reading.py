"""How the enrolment records read in the audit trail (codes, labels), and which records
belong to a subject (the audit trail's subject-code filter). Registered on import."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from trialmgr.audit import readable
from trialmgr.enrollment.models import (
    Cohort,
    ConsentVersion,
    Deviation,
    Dosing,
    Screening,
    Subject,
    SubjectConsent,
    Trial,
    Visit,
)
from trialmgr.extensions import db
from trialmgr.partners.models import Site


def _names(query: sa.Select[tuple[int, str]]) -> dict[str, str]:
    return {str(k): v for k, v in db.session.execute(query)}


def _subjects(ids: list[str]) -> dict[str, str]:
    return _names(sa.select(Subject.id, Subject.code).where(Subject.id.in_(readable.int_ids(ids))))


def _trials(ids: list[str]) -> dict[str, str]:
    return _names(sa.select(Trial.id, Trial.code).where(Trial.id.in_(readable.int_ids(ids))))


def _cohorts(ids: list[str]) -> dict[str, str]:
    query = (
        sa.select(Cohort.id, Trial.code + " " + Cohort.label)
        .join(Trial, Trial.id == Cohort.trial_id)
        .where(Cohort.id.in_(readable.int_ids(ids)))
    )
    return _names(query)


def _versions(ids: list[str]) -> dict[str, str]:
    query = sa.select(ConsentVersion.id, ConsentVersion.version).where(
        ConsentVersion.id.in_(readable.int_ids(ids))
    )
    return {k: f"version {v}" for k, v in _names(query).items()}


def _screenings(ids: list[str]) -> dict[str, str]:
    query = (
        sa.select(Screening.id, Site.code, Screening.number)
        .join(Site, Site.id == Screening.site_id)
        .where(Screening.id.in_(readable.int_ids(ids)))
    )
    return {str(i): f"{code} #{n}" for i, code, n in db.session.execute(query)}


def named_by_subject(model: Any, *extra: Any) -> readable.Namer:
    """Records of one subject: named by the subject's code and the `extra` columns (a
    visit's name, a lab's analyte)."""
    return readable.named_by(
        model, Subject.code, *extra, joins=[(Subject, Subject.id == model.subject_id)]
    )


REFERENCES = {
    "subject_id": "subject",
    "trial_id": "trial",
    "site_id": "site",
    "cohort_id": "cohort",
    "consent_version_id": "consent_version",
    "screening_id": "screening",
}
LABELS = {
    "status": "Status",
    "done_on": "Done on",
    "notes": "Notes",
    "answers": "Answers",
    "result": "Result",
    "dosed_at": "Dosed at",
    "lot_number": "Lot number",
    "consented_on": "Consented on",
    "enrolled_on": "Enrolled on",
    "withdrawn_on": "Withdrawn on",
    "ended_on": "Ended on",
    "screened_on": "Screened on",
    "birth_year": "Birth year",
    "failed_criteria": "Unmet criteria",
    "fail_reason": "Screen-fail reason",
    "reconsent_due": "Re-consent due",
    "cancel_reason": "Why cancelled",
    "scheduled_on": "Scheduled on",
    "window_start": "Window opens",
    "window_end": "Window closes",
}

readable.register("subject", "subject", _subjects, LABELS, REFERENCES)
readable.register("trial", "trial", _trials, LABELS, REFERENCES)
readable.register("cohort", "cohort", _cohorts, LABELS, REFERENCES)
readable.register("consent_version", "consent", _versions, LABELS, REFERENCES)
readable.register("screening", "screening", _screenings, LABELS, REFERENCES)
readable.register("visit", "visit", named_by_subject(Visit, Visit.name), LABELS, REFERENCES)
readable.register("dosing", "dosing of", named_by_subject(Dosing), LABELS, REFERENCES)
readable.register("deviation", "deviation of", named_by_subject(Deviation), LABELS, REFERENCES)
readable.register(
    "subject_consent", "consent of", named_by_subject(SubjectConsent), LABELS, REFERENCES
)


def _subject_scope(code: str) -> list[tuple[str, list[str]]]:
    subject = db.session.execute(
        sa.select(Subject).where(Subject.code == code)
    ).scalar_one_or_none()
    if subject is None:
        return []

    def ids(model: type) -> list[str]:
        query = sa.select(model.id).where(model.subject_id == subject.id)  # type: ignore[attr-defined]
        return [str(i) for i in db.session.execute(query).scalars()]

    return [
        ("subject", [str(subject.id)]),
        ("screening", [str(subject.screening_id)]),
        ("visit", ids(Visit)),
        ("dosing", ids(Dosing)),
        ("deviation", ids(Deviation)),
        ("subject_consent", ids(SubjectConsent)),
    ]


readable.subject_records(_subject_scope)
