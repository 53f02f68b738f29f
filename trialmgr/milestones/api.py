"""/api/v1 milestones, progression criteria, feasibility, the CONSORT flow, and the public
summary (no login)."""

from __future__ import annotations

from typing import Any

from trialmgr.auth.policies import ANY_ROLE, MANAGERS, current_actor, public, roles
from trialmgr.clock import utcnow
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.extensions import ApiBlueprint
from trialmgr.milestones.schemas import (
    AsOfQuery,
    ConsortOut,
    ConsortQuery,
    FeasibilityOut,
    FeasibilityQuery,
    MilestoneIn,
    MilestoneOut,
    MilestonePatch,
    ProgressionCriterionIn,
    ProgressionCriterionOut,
    ProgressionCriterionPatch,
    PublicSummaryOut,
)
from trialmgr.milestones.services import consort as consort_service
from trialmgr.milestones.services import criteria as criteria_service
from trialmgr.milestones.services import feasibility as feasibility_service
from trialmgr.milestones.services import milestones as milestones_service
from trialmgr.milestones.services import public as public_service

blp = ApiBlueprint(
    "milestones_api", __name__, url_prefix="/api/v1", description="Feasibility and milestones"
)


# --- milestones -------------------------------------------------------------------------


@blp.route("/trials/<int:trial_id>/milestones", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(AsOfQuery, location="query")
@blp.response(200, MilestoneOut(many=True))
def list_milestones(args: dict[str, Any], trial_id: int) -> Any:
    """The trial's milestones (coordinators: the trial's and their sites'), with their
    status on `as_of` (default today)."""
    trial = trials_service.get_trial(trial_id)
    return milestones_service.views_of(current_actor(), trial, utcnow(), args.get("as_of"))


@blp.route("/trials/<int:trial_id>/milestones", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(MilestoneIn)
@blp.response(201, MilestoneOut)
def create_milestone(data: dict[str, Any], trial_id: int) -> Any:
    actor, now = current_actor(), utcnow()
    trial = trials_service.get_trial(trial_id)
    milestone = milestones_service.create_milestone(actor, trial, data, now)
    return milestones_service.milestone_view(actor, milestone, trial, now)


@blp.route("/milestones/<int:milestone_id>", methods=["PATCH"])
@roles(*MANAGERS)
@blp.arguments(MilestonePatch)
@blp.response(200, MilestoneOut)
def update_milestone(data: dict[str, Any], milestone_id: int) -> Any:
    """Re-plan or record a milestone (reason required); automatic ones take no achieved date."""
    actor, now = current_actor(), utcnow()
    milestone = milestones_service.get_milestone(actor, milestone_id)
    milestones_service.update_milestone(actor, milestone, data, now)
    trial = trials_service.get_trial(milestone.trial_id)
    return milestones_service.milestone_view(actor, milestone, trial, now)


# --- progression criteria ------------------------------------------------------------------


@blp.route("/trials/<int:trial_id>/progression-criteria", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, ProgressionCriterionOut(many=True))
def list_criteria(trial_id: int) -> Any:
    return criteria_service.criteria_of(trials_service.get_trial(trial_id))


@blp.route("/trials/<int:trial_id>/progression-criteria", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(ProgressionCriterionIn)
@blp.response(201, ProgressionCriterionOut)
def create_criterion(data: dict[str, Any], trial_id: int) -> Any:
    """One criterion per metric: target and amber fraction (default 0.5)."""
    trial = trials_service.get_trial(trial_id)
    return criteria_service.create_criterion(current_actor(), trial, data)


@blp.route("/progression-criteria/<int:criterion_id>", methods=["PATCH"])
@roles(*MANAGERS)
@blp.arguments(ProgressionCriterionPatch)
@blp.response(200, ProgressionCriterionOut)
def update_criterion(data: dict[str, Any], criterion_id: int) -> Any:
    """Change a target or amber fraction (reason required)."""
    criterion = criteria_service.get_criterion(criterion_id)
    return criteria_service.update_criterion(current_actor(), criterion, data)


# --- feasibility and CONSORT ----------------------------------------------------------------


@blp.route("/trials/<int:trial_id>/feasibility", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(FeasibilityQuery, location="query")
@blp.response(200, FeasibilityOut)
def feasibility(args: dict[str, Any], trial_id: int) -> Any:
    """Metrics with exact 95 % intervals, criteria lights, decision, per-site breakdown and
    monthly trend, as of `as_of` (default today); coordinators see their own sites only."""
    trial = trials_service.get_trial(trial_id)
    return feasibility_service.review(
        current_actor(), trial, utcnow(), args.get("as_of"), args.get("site_id")
    )


@blp.route("/trials/<int:trial_id>/consort", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(ConsortQuery, location="query")
@blp.response(200, ConsortOut)
def consort(args: dict[str, Any], trial_id: int) -> Any:
    """The CONSORT flow: counts and reasons at each step, overall, by site or by cohort."""
    trial = trials_service.get_trial(trial_id)
    return consort_service.flow(
        current_actor(),
        trial,
        utcnow(),
        args.get("as_of"),
        args.get("site_id"),
        args.get("cohort_id"),
    )


# --- public summary -----------------------------------------------------------------------


@blp.route("/public/trials/<code>", methods=["GET"])
@public
@blp.doc(security=[])
@blp.response(200, PublicSummaryOut)
def public_trial(code: str) -> Any:
    """No login. 404 unless the trial publishes its summary; aggregates only, any count
    below 5 given as "<5"."""
    return public_service.summary(code, utcnow())
