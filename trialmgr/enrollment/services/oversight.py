"""Safety oversight of dosing: e-signed safety review decisions (DSMB/SRC) and trial-wide
pauses, lifted only by a safety monitor's signed decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.auth.services import verify_signature
from trialmgr.clock import Phrase
from trialmgr.db import lock_rows
from trialmgr.enrollment.models import SafetyReview, Trial, TrialPause
from trialmgr.enrollment.policies import require_safety_monitor
from trialmgr.enrollment.services.dosing import escalation_readiness
from trialmgr.enrollment.services.trials import get_cohort
from trialmgr.errors import Conflict
from trialmgr.extensions import db

REVIEW_MEANING = "I confirm this safety review decision"
RESUME_MEANING = "I authorise resuming dosing in this trial"


def record_safety_review(
    actor: Any, trial: Trial, data: dict[str, Any], now: datetime
) -> SafetyReview:
    """A DSMB/SRC decision on a cohort, e-signed by a safety monitor re-entering their
    password. `escalate` on cohort n opens the first dosing of cohort n+1; it needs someone
    dosed in cohort n and, if the trial says so, every slot dosed and its DLT window over."""
    require_safety_monitor(actor, "records safety review decisions")
    verify_signature(actor, data["password"], now)
    cohort = get_cohort(trial, data["cohort_id"])
    if data["decision"] == "escalate":
        readiness = escalation_readiness(trial, cohort, now)
        if readiness["blockers"]:
            raise Conflict(
                Phrase.joined(" ", readiness["blockers"]),
                title="Nothing to review" if not readiness["dosed"] else "Escalation not ready",
                errors={"decision": readiness["blockers"]},
            )
    with audit.audited(actor, action="safety_review.sign", reason=data["rationale"]):
        review = SafetyReview(
            trial_id=trial.id,
            cohort=cohort,
            decision=data["decision"],
            rationale=data["rationale"],
            signed_by_id=actor.id,
            signed_by=actor.email,
            signed_at=now,
            signature_meaning=data.get("meaning") or REVIEW_MEANING,
        )
        db.session.add(review)
    if review.decision == "stop" and trial.status == "open":
        reason = f"Safety review of cohort {cohort.label} decided to stop: {review.rationale}"
        pause_trial(actor, trial, reason, now, source="review:stop")
    return review


def reviews_of(trial: Trial) -> list[SafetyReview]:
    return list(
        db.session.execute(
            sa.select(SafetyReview)
            .where(SafetyReview.trial_id == trial.id)
            .order_by(SafetyReview.signed_at)
        ).scalars()
    )


def open_pause(trial: Trial) -> TrialPause | None:
    return db.session.execute(
        sa.select(TrialPause)
        .where(TrialPause.trial_id == trial.id, TrialPause.resumed_at.is_(None))
        .order_by(TrialPause.id)
        .limit(1)
    ).scalar_one_or_none()


def pause_trial(
    actor: Any, trial: Trial, reason: str, now: datetime, source: str = "manual"
) -> TrialPause:
    """Pause all dosing trial-wide (and enrolment): immediate and audited. Safety rules call
    this with source "rule:<name>"; by hand only a safety monitor pauses. A rule or review
    that fires while the trial is already paused adds its reason to the open pause: a
    safety write never fails because the trial is paused."""
    if source != "manual" and not source.startswith(("rule:", "review:")):
        raise ValueError(f"unknown pause source {source}")
    if source == "manual":
        require_safety_monitor(actor, "pauses a trial")
    lock_rows(db.session, Trial, trial.id)
    if trial.status == "paused":
        current = open_pause(trial)
        if source == "manual" or current is None:
            raise Conflict("The trial is already paused.", title="Already paused")
        with audit.audited(actor, reason=reason, action="trial.pause_reason"):
            current.reason = f"{current.reason}\n{reason}"
            current.source = (
                current.source if source in current.source else f"{current.source},{source}"[:40]
            )
            trial.paused_reason = current.reason
        return current
    if trial.status not in ("open", "closed"):
        raise Conflict(f"Only an open trial can be paused (this one is {trial.status}).")
    with audit.audited(actor, reason=reason, action="trial.pause"):
        pause = TrialPause(
            trial_id=trial.id,
            paused_at=now,
            reason=reason,
            source=source,
            paused_by=actor.email,
            resumes_to=trial.status,
        )
        trial.status = "paused"
        trial.paused_reason = reason
        db.session.add(pause)
    return pause


def resume_trial(actor: Any, trial: Trial, reason: str, password: str, now: datetime) -> Trial:
    """Only a safety monitor resumes, with a signed decision (password re-entry) and a reason;
    the trial returns to the status it was paused from."""
    require_safety_monitor(actor, "resumes a paused trial")
    if trial.status != "paused":
        raise Conflict("The trial is not paused.")
    verify_signature(actor, password, now)
    open_pauses = list(
        db.session.execute(
            sa.select(TrialPause).where(
                TrialPause.trial_id == trial.id, TrialPause.resumed_at.is_(None)
            )
        ).scalars()
    )
    with audit.audited(actor, reason=reason, action="trial.resume"):
        for pause in open_pauses:
            pause.resumed_at = now
            pause.resumed_by = actor.email
            pause.resume_reason = reason
            pause.resume_signature_meaning = RESUME_MEANING
        trial.status = open_pauses[0].resumes_to if open_pauses else "open"
        trial.paused_reason = None
    return trial


def pauses_of(trial: Trial) -> list[TrialPause]:
    return list(
        db.session.execute(
            sa.select(TrialPause)
            .where(TrialPause.trial_id == trial.id)
            .order_by(TrialPause.paused_at.desc())
        ).scalars()
    )
