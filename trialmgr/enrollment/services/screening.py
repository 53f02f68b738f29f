"""The screening log: screenings at open sites, eligibility from the criteria answers,
outcomes and their corrections."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.clock import check_not_future
from trialmgr.db import lock_rows
from trialmgr.enrollment.models import Screening, Subject, Trial
from trialmgr.enrollment.services.trials import get_trial
from trialmgr.errors import Conflict, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.models import Site
from trialmgr.partners.policies import may_see_site, scope_sites
from trialmgr.partners.services.sites import assert_site_open, check_not_before_activation


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
    trial = get_trial(data["trial_id"])
    site = db.session.get(Site, data["site_id"])
    if site is None or not may_see_site(actor, site.id):
        raise Invalid("Unknown site.", errors={"site_id": [f"No site {data['site_id']}."]})
    if trial.status != "open":
        raise Conflict(
            f"The trial is {trial.status}; screening needs an open trial.", title="Trial not open"
        )
    check_not_future("screened_on", data["screened_on"], today)
    lock_rows(db.session, Site, site.id)  # numbers per site stay gap-free and unique
    assert_site_open(site, data["screened_on"], "screening")
    check_not_before_activation("screened_on", data["screened_on"], site)
    assert_site_open(site, today, "screening")
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
