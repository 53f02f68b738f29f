"""Consent: versions approved per site, which version a site uses on a date, who is due for
re-consent on a date, recording consent (at screening or enrolment) and re-consent.

Validity is judged on the date of the procedure, not the date of data entry: a subject's
consent is valid on a day unless a version requiring re-consent was approved at their site
on or before that day and they had not signed it (or a later one) by then.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.clock import Day, Phrase, actor_today, check_not_future
from trialmgr.enrollment.models import (
    ENDED_STATUSES,
    ConsentSiteApproval,
    ConsentVersion,
    Subject,
    SubjectConsent,
    Trial,
)
from trialmgr.enrollment.policies import require_manager
from trialmgr.errors import Conflict, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.models import Site
from trialmgr.partners.services.sites import site_today


def _order(version: ConsentVersion, site_id: int) -> tuple[date, int]:
    """Versions in the order a site approved them (same day: the later one)."""
    approved = version.approved_at(site_id)
    return (approved or date.max, version.id)


def current_consent_version(trial: Trial, site_id: int, on: date) -> ConsentVersion | None:
    """The newest version approved at the site on or before `on`."""
    approved = [
        v for v in trial.consent_versions if (d := v.approved_at(site_id)) is not None and d <= on
    ]
    return max(approved, key=lambda v: _order(v, site_id)) if approved else None


def latest_version(trial: Trial) -> ConsentVersion | None:
    """The newest approved version anywhere (by its first approval), for the trial page."""

    def first_approval(v: ConsentVersion) -> date | None:
        dates = [d for d in (v.approved_on, *(a.approved_on for a in v.site_approvals)) if d]
        return min(dates) if dates else None

    approved = [(d, v.id, v) for v in trial.consent_versions if (d := first_approval(v))]
    return max(approved, key=lambda x: (x[0], x[1]))[2] if approved else None


def consent_version_on(
    trial: Trial, site_id: int, version_id: int, on: date, field: str = "consent_version_id"
) -> ConsentVersion:
    """The version a consent signed at the site on `on` may be on: one of the trial's,
    approved at the site by then, and not superseded by a newer one approved there."""
    version = db.session.get(ConsentVersion, version_id)
    if version is None or version.trial_id != trial.id:
        raise Invalid("Unknown consent version.", errors={field: [f"No version {version_id}."]})
    approved = version.approved_at(site_id)
    if approved is None or approved > on:
        sentence = (
            Phrase(
                "Version {version} is approved at this site only from {on}.",
                version=version.version,
                on=Day(approved),
            )
            if approved
            else f"Version {version.version} is approved at this site not yet."
        )
        raise Invalid("Consent on a version the site had not approved.", errors={field: [sentence]})
    current = current_consent_version(trial, site_id, on)
    if current is not None and current.id != version.id:
        raise Conflict(
            f"Version {version.version} was superseded at this site; consent on version "
            f"{current.version}.",
            title="Consent version not current",
            errors={field: [f"Superseded by {current.version}."]},
        )
    return version


def reconsent_due_on(subject: Subject, on: date) -> ConsentVersion | None:
    """The version requiring re-consent that the subject had not signed by `on` (None when
    their consent was valid that day)."""
    site_id = subject.site_id
    signed = [c.consent_version for c in subject.consents if c.consented_on <= on]
    best = max((_order(v, site_id) for v in signed), default=(date.min, 0))
    due = [
        v
        for v in subject.trial.consent_versions
        if v.reconsent_required
        and (d := v.approved_at(site_id)) is not None
        and d <= on
        and _order(v, site_id) > best
    ]
    return max(due, key=lambda v: _order(v, site_id)) if due else None


def needs_reconsent(subject: Subject, on: date) -> bool:
    return reconsent_due_on(subject, on) is not None


def _due_today(subject: Subject, now: datetime) -> ConsentVersion | None:
    """The version the subject is to re-consent to today, at their site; ended subjects are
    never due."""
    if subject.status in ENDED_STATUSES:
        return None
    return reconsent_due_on(subject, site_today(subject.site, now))


def refresh_reconsent_flags(trial: Trial, now: datetime, site_id: int | None = None) -> None:
    """Keep `reconsent_due` (today's answer, for lists and worklists) in step after a
    version, a site approval or a consent changed; ended subjects are never due."""
    q = sa.select(Subject).where(Subject.trial_id == trial.id)
    if site_id is not None:
        q = q.where(Subject.site_id == site_id)
    for subject in db.session.execute(q).scalars():
        due = _due_today(subject, now) is not None
        if subject.reconsent_due != due:
            subject.reconsent_due = due


def asked_to_reconsent(version: ConsentVersion, now: datetime) -> list[Subject]:
    """The active subjects to re-consent to `version` today: the ones its approval put on
    the sites' re-consent worklists (the rule `refresh_reconsent_flags` applies)."""
    q = sa.select(Subject).where(Subject.trial_id == version.trial_id).order_by(Subject.code)
    return [
        s
        for s in db.session.execute(q).scalars()
        if (due := _due_today(s, now)) is not None and due.id == version.id
    ]


def _check_site_approvals(
    version: ConsentVersion | None, approvals: list[dict[str, Any]], now: datetime
) -> list[tuple[Site, dict[str, Any]]]:
    checked = []
    seen = {a.site_id for a in version.site_approvals} if version else set()
    for i, item in enumerate(approvals):
        site = db.session.get(Site, item["site_id"])
        if site is None:
            raise Invalid(
                "Unknown site.", errors={"site_approvals": {i: [f"No site {item['site_id']}."]}}
            )
        if site.id in seen:
            raise Conflict(
                f"Site {site.code} has already approved this version.",
                errors={"site_approvals": {i: ["Already approved at this site."]}},
            )
        seen.add(site.id)
        check_not_future("approved_on", item["approved_on"], site_today(site, now))
        checked.append((site, item))
    return checked


def _check_not_older(trial: Trial, site_id: int | None, on: date, field: str) -> None:
    """A new version cannot predate the one a site (or the whole trial) uses now."""
    dates = [
        d
        for v in trial.consent_versions
        if (d := (v.approved_at(site_id) if site_id else v.approved_on)) is not None
    ]
    if dates and on < max(dates):
        raise Invalid(
            "A new consent version cannot predate the current one.",
            errors={field: [Phrase("On or after {on}.", on=Day(max(dates)))]},
        )


def add_consent_version(
    actor: Any, trial: Trial, data: dict[str, Any], now: datetime
) -> ConsentVersion:
    """A new consent version, approved trial-wide (`approved_on`: every site) and/or per
    site (`site_approvals`). New versions may be added while long-term follow-up goes on
    after enrolment closed. With `reconsent_required`, active subjects at the sites that
    approved it become due for re-consent from that site's approval date."""
    require_manager(actor)
    if trial.status == "ended":
        raise Conflict("The trial has ended.", title="Trial ended")
    if any(v.version == data["version"] for v in trial.consent_versions):
        raise Conflict("This version exists.", errors={"version": ["Already used."]})
    approved_on = data.get("approved_on")
    if approved_on is not None:
        check_not_future("approved_on", approved_on, actor_today(actor, now))
        _check_not_older(trial, None, approved_on, "approved_on")
    approvals = _check_site_approvals(None, data.get("site_approvals") or [], now)
    for site, item in approvals:
        _check_not_older(trial, site.id, item["approved_on"], "site_approvals")
    with audit.audited(actor, action="consent_version.create"):
        version = ConsentVersion(
            trial=trial,
            version=data["version"],
            approved_on=approved_on,
            reconsent_required=data.get("reconsent_required", False),
        )
        db.session.add(version)
        for site, item in approvals:
            db.session.add(
                ConsentSiteApproval(
                    consent_version=version,
                    site_id=site.id,
                    approved_on=item["approved_on"],
                    language=item.get("language"),
                )
            )
    if version.reconsent_required:
        with audit.audited(
            actor, action="subject.reconsent_due", reason=f"consent version {version.version}"
        ):
            refresh_reconsent_flags(trial, now)
    return version


def get_consent_version(version_id: int) -> ConsentVersion:
    version = db.session.get(ConsentVersion, version_id)
    if version is None:
        raise NotFound(f"No consent version {version_id}.")
    return version


def add_site_approval(
    actor: Any, version: ConsentVersion, data: dict[str, Any], now: datetime
) -> ConsentSiteApproval:
    """One site's ethics approval of a version (date, optionally language): the site uses
    the version from that date; its subjects become due for re-consent if it requires it."""
    require_manager(actor)
    trial = version.trial
    if trial.status == "ended":
        raise Conflict("The trial has ended.", title="Trial ended")
    [(site, item)] = _check_site_approvals(version, [data], now)
    with audit.audited(actor, action="consent_version.site_approval"):
        approval = ConsentSiteApproval(
            consent_version=version,
            site_id=site.id,
            approved_on=item["approved_on"],
            language=item.get("language"),
        )
        db.session.add(approval)
    with audit.audited(
        actor, action="subject.reconsent_due", reason=f"consent version {version.version}"
    ):
        refresh_reconsent_flags(trial, now, site.id)
    return approval


def record_consent(
    actor: Any, subject: Subject, data: dict[str, Any], now: datetime
) -> SubjectConsent:
    """Re-consent to the version current at the subject's site on the consent date. It adds
    a consent record: the first consent date stays the lower bound for dosing."""
    today = site_today(subject.site, now)
    check_not_future("consented_on", data["consented_on"], today)
    if data["consented_on"] < subject.consented_on:
        raise Invalid(
            "Re-consent before the first consent.",
            errors={
                "consented_on": [
                    Phrase("Before the first consent ({on}).", on=Day(subject.consented_on))
                ]
            },
        )
    if subject.status in ENDED_STATUSES:
        raise Conflict(f"Subject {subject.code} is {subject.status}.", title="Subject not active")
    if subject.trial.status == "ended":
        raise Conflict("The trial has ended.", title="Trial ended")
    version = consent_version_on(
        subject.trial, subject.site_id, data["consent_version_id"], data["consented_on"]
    )
    if any(c.consent_version_id == version.id for c in subject.consents):
        raise Conflict(f"Subject {subject.code} already consented to version {version.version}.")
    with audit.audited(actor, action="subject.reconsent"):
        consent = SubjectConsent(
            subject=subject, consent_version=version, consented_on=data["consented_on"]
        )
        db.session.add(consent)
        if _order(version, subject.site_id) > _order(subject.consent_version, subject.site_id):
            subject.consent_version = version
        subject.reconsent_due = needs_reconsent(subject, today)
    return consent
