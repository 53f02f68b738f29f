"""Pages: the feasibility index and review (traffic lights, intervals, monthly trend chart,
per-site breakdown, criteria forms, the public-summary switch), the CONSORT diagram, the
milestone timeline with its forms, and the public summary (no login).

Every number comes from the same service functions the API calls; every form goes through
`trialmgr.forms.submit`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from trialmgr.auth.policies import ANY_ROLE, MANAGERS, current_actor, public, roles
from trialmgr.clock import actor_today, utcnow
from trialmgr.enrollment.models import Trial
from trialmgr.enrollment.schemas import TrialPatch
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.extensions import db
from trialmgr.forms import Refusal, load_filters, load_form, submit, typed_values
from trialmgr.milestones.models import METRICS, MILESTONE_KINDS, MILESTONE_LABELS
from trialmgr.milestones.schemas import (
    ConsortQuery,
    FeasibilityQuery,
    MilestoneIn,
    MilestonePatch,
    ProgressionCriterionIn,
    ProgressionCriterionPatch,
)
from trialmgr.milestones.services import consort as consort_service
from trialmgr.milestones.services import criteria as criteria_service
from trialmgr.milestones.services import feasibility as feasibility_service
from trialmgr.milestones.services import milestones as milestones_service
from trialmgr.milestones.services import public as public_service
from trialmgr.milestones.services import timeline as timeline_service
from trialmgr.milestones.services.metrics import LABELS
from trialmgr.partners.policies import can_manage
from trialmgr.partners.services import sites as sites_service
from trialmgr.templating import format_date

bp = Blueprint("milestones", __name__)


def _sites(actor: Any) -> list[Any]:
    return list(db.session.execute(sites_service.site_query(actor, {})).scalars())


def _trials() -> list[Trial]:
    return list(db.session.execute(trials_service.trial_query({})).scalars())


# --- feasibility ---------------------------------------------------------------------


@bp.route("/feasibility")
@roles(*ANY_ROLE)
def feasibility_index() -> str:
    """Every trial with its decision and lights (coordinators: from their sites' numbers)."""
    actor, now = current_actor(), utcnow()
    rows = [(t, feasibility_service.decision_of(actor, t, now)) for t in _trials()]
    return render_template("milestones/index.html", rows=rows)


def feasibility_page(trial: Trial, refusal: Refusal | None = None) -> tuple[str, int]:
    actor = current_actor()
    filters, errors = load_filters(FeasibilityQuery())
    status = refusal.status if refusal else (422 if errors else 200)
    review = feasibility_service.review(
        actor, trial, utcnow(), filters.get("as_of"), filters.get("site_id")
    )
    chart = {
        "labels": [p["as_of"].isoformat() for p in review["trend"]],
        "series": {m: [p["values"][m] for p in review["trend"]] for m in METRICS},
        "names": LABELS,
    }
    existing = {c["metric"] for c in review["criteria"]}
    return render_template(
        "milestones/feasibility.html",
        trial=trial,
        review=review,
        chart=chart,
        filters=filters,
        filter_errors=errors,
        sites=_sites(actor),
        labels=LABELS,
        metric_options=[(m, LABELS[m]) for m in METRICS if m not in existing],
        manager=can_manage(actor),
        today=actor_today(actor, utcnow()),
        refusal=refusal,
        values=typed_values(request.form) if refusal else {},
    ), status


@bp.route("/trials/<int:trial_id>/feasibility")
@roles(*ANY_ROLE)
def feasibility(trial_id: int) -> tuple[str, int]:
    return feasibility_page(trials_service.get_trial(trial_id))


def _feasibility_action(trial_id: int, form: str, act: Callable[[Any, Trial], str]) -> Any:
    trial = trials_service.get_trial(trial_id)
    done = submit(form, lambda: act(current_actor(), trial))
    if isinstance(done, Refusal):
        return feasibility_page(trial, done)
    flash(done, "success")
    return redirect(url_for("milestones.feasibility", trial_id=trial.id))


@bp.route("/trials/<int:trial_id>/progression-criteria", methods=["POST"])
@roles(*MANAGERS)
def criterion_new(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        criterion = criteria_service.create_criterion(
            actor, trial, load_form(ProgressionCriterionIn(), request.form)
        )
        return f"Progression criterion for {LABELS[criterion.metric].lower()} added."

    return _feasibility_action(trial_id, "criterion", act)


@bp.route("/progression-criteria/<int:criterion_id>", methods=["POST"])
@roles(*MANAGERS)
def criterion_edit(criterion_id: int) -> Any:
    criterion = criteria_service.get_criterion(criterion_id)

    def act(actor: Any, trial: Trial) -> str:
        data = load_form(ProgressionCriterionPatch(), request.form, clearable=True)
        criteria_service.update_criterion(actor, criterion, data)
        return f"Criterion for {LABELS[criterion.metric].lower()} changed."

    return _feasibility_action(criterion.trial_id, f"criterion-{criterion.id}", act)


@bp.route("/trials/<int:trial_id>/public-summary", methods=["POST"])
@roles(*MANAGERS)
def public_summary(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        data = load_form(TrialPatch(only=("public_summary", "reason")), request.form)
        if "public_summary" not in data:
            raise ValidationError({"public_summary": ["Choose to publish or withdraw."]})
        trials_service.update_trial(actor, trial, data)
        if trial.public_summary:
            return f"The public summary of {trial.code} is published."
        return f"The public summary of {trial.code} is withdrawn."

    return _feasibility_action(trial_id, "public-summary", act)


# --- CONSORT ---------------------------------------------------------------------------


@bp.route("/trials/<int:trial_id>/consort")
@roles(*ANY_ROLE)
def consort(trial_id: int) -> tuple[str, int]:
    actor = current_actor()
    trial = trials_service.get_trial(trial_id)
    filters, errors = load_filters(ConsortQuery())
    flow = consort_service.flow(
        actor,
        trial,
        utcnow(),
        filters.get("as_of"),
        filters.get("site_id"),
        filters.get("cohort_id"),
    )
    return render_template(
        "milestones/consort.html",
        trial=trial,
        flow=flow,
        filters=filters,
        filter_errors=errors,
        sites=_sites(actor),
    ), (422 if errors else 200)


# --- milestones --------------------------------------------------------------------------


def milestones_page(trial: Trial, refusal: Refusal | None = None) -> tuple[str, int]:
    actor, now = current_actor(), utcnow()
    views = milestones_service.views_of(actor, trial, now)
    today = actor_today(actor, now)
    return render_template(
        "milestones/timeline.html",
        trial=trial,
        milestones=views,
        chart=timeline_service.timeline(views, today),
        today=today,
        kinds=[(k, MILESTONE_LABELS[k]) for k in MILESTONE_KINDS],
        site_options=[(s.id, f"{s.code} · {s.name}") for s in _sites(actor)],
        cohort_options=[(c.id, f"{c.label} · {c.dose} {c.dose_unit}") for c in trial.cohorts],
        manager=can_manage(actor),
        refusal=refusal,
        values=typed_values(request.form) if refusal else {},
    ), (refusal.status if refusal else 200)


@bp.route("/trials/<int:trial_id>/milestones")
@roles(*ANY_ROLE)
def milestone_timeline(trial_id: int) -> tuple[str, int]:
    return milestones_page(trials_service.get_trial(trial_id))


def _milestone_action(trial_id: int, form: str, act: Callable[[Any, Trial], str]) -> Any:
    trial = trials_service.get_trial(trial_id)
    done = submit(form, lambda: act(current_actor(), trial))
    if isinstance(done, Refusal):
        return milestones_page(trial, done)
    flash(done, "success")
    return redirect(url_for("milestones.milestone_timeline", trial_id=trial.id))


@bp.route("/trials/<int:trial_id>/milestones", methods=["POST"])
@roles(*MANAGERS)
def milestone_new(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        data = load_form(MilestoneIn(), request.form)
        milestone = milestones_service.create_milestone(actor, trial, data, utcnow())
        how = " It completes itself from the records." if milestone.automatic else ""
        return f"Milestone {milestone.name} planned for {format_date(milestone.planned_on)}.{how}"

    return _milestone_action(trial_id, "milestone", act)


@bp.route("/milestones/<int:milestone_id>", methods=["POST"])
@roles(*MANAGERS)
def milestone_edit(milestone_id: int) -> Any:
    milestone = milestones_service.get_milestone(current_actor(), milestone_id)

    def act(actor: Any, trial: Trial) -> str:
        data = load_form(MilestonePatch(), request.form, clearable=True)
        milestones_service.update_milestone(actor, milestone, data, utcnow())
        return f"Milestone {milestone.name} saved."

    return _milestone_action(milestone.trial_id, f"milestone-{milestone.id}", act)


# --- the public summary ----------------------------------------------------------------


@bp.route("/public/trials/<code>")
@public
def public_trial(code: str) -> str:
    """No login: the pilot's aggregates for patient organisations (404 unless published)."""
    return render_template("milestones/public.html", summary=public_service.summary(code, utcnow()))
