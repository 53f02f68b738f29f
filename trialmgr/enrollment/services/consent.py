"""Consent versions and the subjects' consents: which version is current, who is due
for re-consent, recording a re-consent."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.clock import check_not_future
from trialmgr.enrollment.models import (
    ENDED_STATUSES,
    ConsentVersion,
    Subject,
    SubjectConsent,
    Trial,
)
from trialmgr.enrollment.policies import require_manager
from trialmgr.enrollment.services.trials import design_locked
from trialmgr.errors import Conflict, Invalid
from trialmgr.extensions import db


def current_consent_version(trial: Trial, on: date) -> ConsentVersion | None:
    """The newest version approved on or before `on`."""
    approved = [v for v in trial.consent_versions if v.approved_on <= on]
    return max(approved, key=lambda v: (v.approved_on, v.id)) if approved else None


def needs_reconsent(subject: Subject, on: date) -> bool:
    """Whether a version approved after the subject's own, on or before `on`, requires
    re-consent: the subject is then blocked from dosing and non-safety procedures."""
    own = subject.consent_version
    return any(
        v.reconsent_required and v.id != own.id and own.approved_on < v.approved_on <= on
        for v in subject.trial.consent_versions
    )


def add_consent_version(
    actor: Any, trial: Trial, data: dict[str, Any], today: date
) -> ConsentVersion:
    """A new approved consent version. With `reconsent_required`, every active subject on an
    older version becomes due for re-consent (dosing and non-safety entry blocked until then)."""
    require_manager(actor)
    design_locked(trial)
    if data["approved_on"] > today:
        raise Invalid(
            "Dates cannot be in the future.", errors={"approved_on": ["Must not be in the future."]}
        )
    if any(v.version == data["version"] for v in trial.consent_versions):
        raise Conflict("This version exists.", errors={"version": ["Already used."]})
    latest = max((v.approved_on for v in trial.consent_versions), default=None)
    if latest is not None and data["approved_on"] < latest:
        raise Invalid(
            "A new consent version cannot predate the current one.",
            errors={"approved_on": [f"On or after {latest.isoformat()}."]},
        )
    with audit.audited(actor, action="consent_version.create"):
        version = ConsentVersion(trial=trial, **data)
        db.session.add(version)
    if version.reconsent_required:
        due = db.session.execute(
            sa.select(Subject).where(
                Subject.trial_id == trial.id,
                Subject.status.not_in(ENDED_STATUSES),
                Subject.consent_version_id != version.id,
            )
        ).scalars()
        with audit.audited(
            actor, action="subject.reconsent_due", reason=f"consent version {version.version}"
        ):
            for subject in due:
                subject.reconsent_due = True
    return version


def consent_version_on(trial: Trial, version_id: int, on: date) -> ConsentVersion:
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


def record_consent(
    actor: Any, subject: Subject, data: dict[str, Any], today: date
) -> SubjectConsent:
    """Re-consent to the current version: clears the re-consent block."""
    check_not_future("consented_on", data["consented_on"], today)
    if data["consented_on"] < subject.consented_on:
        raise Invalid(
            "Re-consent before the first consent.", errors={"consented_on": ["Too early."]}
        )
    if not subject.active:
        raise Conflict(f"Subject {subject.code} is {subject.status}.", title="Subject not active")
    version = consent_version_on(subject.trial, data["consent_version_id"], data["consented_on"])
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
