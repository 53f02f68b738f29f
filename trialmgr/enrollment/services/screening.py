"""The screening log: screenings at open sites, eligibility from the criteria answers,
outcomes and their corrections."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from trialmgr.audit import services as audit
from trialmgr.clock import check_not_future
from trialmgr.db import lock_rows
from trialmgr.enrollment.models import ConsentVersion, Screening, Subject, Trial
from trialmgr.enrollment.policies import require_site_worker
from trialmgr.enrollment.services.consent import consent_version_on
from trialmgr.enrollment.services.trials import get_trial
from trialmgr.errors import Conflict, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.models import Site
from trialmgr.partners.policies import may_see_site, scope_sites
from trialmgr.partners.services.sites import (
    assert_site_open,
    check_not_before_activation,
    site_today,
)


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


def derived_outcome(trial: Trial, answers: dict[str, bool]) -> tuple[str, list[str], list[str]]:
    """The outcome the criteria answers give, with the unmet and the unanswered criteria:
    every criterion answered and met is eligible, an unmet one a screen failure, and
    otherwise the screening stays pending. The page proposes it; the coordinator confirms."""
    failed, missing = _evaluate(trial, answers)
    if failed:
        return "screen_failed", failed, missing
    return ("pending" if missing else "eligible"), failed, missing


def _check_plausible(trial: Trial, data: dict[str, Any], screened_on: date) -> None:
    """A birth year after the screening year, or a disease other than the trial's (or one it
    lists as accepted), is a typing error, not a screening."""
    errors: dict[str, list[str]] = {}
    if "birth_year" in data and data["birth_year"] > screened_on.year:
        errors["birth_year"] = [f"After the screening year ({screened_on.year})."]
    accepted = {c for c in (trial.orphacode, *(trial.accepted_orphacodes or [])) if c}
    if "orphacode" in data and accepted and data["orphacode"] not in accepted:
        listed = ", ".join(f"ORPHA:{c}" for c in sorted(accepted))
        errors["orphacode"] = [f"This trial accepts {listed}."]
    if errors:
        raise Invalid("The screening does not fit the trial.", errors=errors)


def _consent_at_screening(
    screening_site: Site, trial: Trial, data: dict[str, Any], today: date
) -> tuple[date, ConsentVersion] | None:
    """Consent recorded on the screening: date and version together, the date not in the
    future nor before the site opened, the version the site used that day."""
    on, version_id = data.get("consented_on"), data.get("consent_version_id")
    if on is None and version_id is None:
        return None
    if on is None or version_id is None:
        field = "consented_on" if on is None else "consent_version_id"
        raise Invalid("Give the consent date and version together.", errors={field: ["Required."]})
    check_not_future("consented_on", on, today)
    check_not_before_activation("consented_on", on, screening_site)
    return on, consent_version_on(trial, screening_site.id, version_id, on)


def create_screening(actor: Any, data: dict[str, Any], now: datetime) -> Screening:
    """Log a screening at a site open on the screening date and today, for an open trial
    (a paused trial's screening log stays open: approaches are still counted); numbers run
    per site. Consent may be recorded on it (ICH E6 4.8.8: consent comes first)."""
    trial = get_trial(data["trial_id"])
    site = db.session.get(Site, data["site_id"])
    if site is None or not may_see_site(actor, site.id):
        raise Invalid("Unknown site.", errors={"site_id": [f"No site {data['site_id']}."]})
    require_site_worker(actor, site.id)
    if trial.status not in ("open", "paused"):
        raise Conflict(
            f"The trial is {trial.status}; screening needs an open trial.", title="Trial not open"
        )
    today = site_today(site, now)
    check_not_future("screened_on", data["screened_on"], today)
    _check_plausible(trial, data, data["screened_on"])
    lock_rows(db.session, Site, site.id)  # numbers per site stay gap-free and unique
    assert_site_open(site, data["screened_on"], "screening")
    check_not_before_activation("screened_on", data["screened_on"], site)
    assert_site_open(site, today, "screening")
    consent = _consent_at_screening(site, trial, data, today)
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
            consented_on=consent[0] if consent else None,
            consent_version=consent[1] if consent else None,
        )
        db.session.add(screening)
    if data.get("outcome"):
        set_screening_outcome(actor, screening, data, now, initial=True)
    return screening


def set_screening_outcome(
    actor: Any, screening: Screening, data: dict[str, Any], now: datetime, initial: bool = False
) -> Screening:
    """eligible needs every criterion answered and met; screen_failed records the unmet
    criteria (or a stated reason); declined counts the approached who said no. Consent may
    be recorded here too. Changing a recorded outcome or consent needs a reason; once the
    subject is enrolled the screening is locked."""
    require_site_worker(actor, screening.site_id)
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
    # A stated reason stands while the outcome stays (adding consent to a screen failure
    # explained by a reason, e.g. AAV antibodies, does not ask for the reason again).
    if "fail_reason" in data:
        fail_reason = data["fail_reason"]
    else:
        fail_reason = screening.fail_reason if outcome == screening.outcome else None
    if outcome in ("screen_failed", "declined") and not failed and not fail_reason:
        errors["fail_reason"] = ["Give the reason (or the unmet criteria in answers)."]
    if outcome == "pending" and screening.outcome != "pending":
        errors["outcome"] = ["A recorded outcome cannot go back to pending."]
    if errors:
        raise Invalid("The screening outcome does not fit the answers.", errors=errors)
    consent = _consent_at_screening(
        screening.site, screening.trial, data, site_today(screening.site, now)
    )
    reason = data.get("reason")
    corrects = screening.outcome != "pending" or (
        consent is not None and screening.consented_on is not None
    )
    if not initial and corrects and not reason:
        raise Invalid(
            "Corrections need a reason.",
            errors={"reason": ["Required to change a recorded outcome or consent."]},
        )
    with audit.audited(actor, reason=reason, action="screening.outcome"):
        screening.answers = answers
        screening.failed_criteria = failed
        screening.outcome = outcome
        if "fail_reason" in data:
            screening.fail_reason = data["fail_reason"]
        if consent is not None:
            screening.consented_on, screening.consent_version = consent
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
    q = q.options(selectinload(Screening.site), selectinload(Screening.trial))
    return q.order_by(Screening.screened_on.desc(), Screening.id.desc())


def get_screening(actor: Any, screening_id: int) -> Screening:
    screening = db.session.get(Screening, screening_id)
    if screening is None or not may_see_site(actor, screening.site_id):
        raise NotFound(f"No screening {screening_id}.")
    return screening
