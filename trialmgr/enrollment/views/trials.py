"""Trial pages: list, design forms, safety reviews, pause and resume, the cohort board."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from trialmgr.auth.models import SAFETY_MONITOR
from trialmgr.auth.policies import ANY_ROLE, MANAGERS, current_actor, roles
from trialmgr.clock import actor_today, utcnow
from trialmgr.enrollment.models import (
    TRIAL_STATUSES,
    VECTOR_TYPES,
    ConsentVersion,
    Trial,
)
from trialmgr.enrollment.schemas import (
    CohortIn,
    ConsentSiteApprovalIn,
    ConsentVersionIn,
    CriterionIn,
    PauseIn,
    ResumeIn,
    SafetyReviewIn,
    TrialIn,
    TrialPatch,
    TrialQuery,
    VisitDefinitionIn,
)
from trialmgr.enrollment.services import consent as consent_service
from trialmgr.enrollment.services import dosing as dosing_service
from trialmgr.enrollment.services import oversight as oversight_service
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.enrollment.services.oversight import RESUME_MEANING, REVIEW_MEANING
from trialmgr.enrollment.views.common import (
    any_given,
    bp,
    flat_errors,
    load_prefixed,
    messages,
    site_choices,
    trial_choices,
)
from trialmgr.forms import (
    Refusal,
    cancelled,
    confirmed,
    filter_args,
    listing,
    load_filters,
    load_form,
    rehearse,
    replay_fields,
    returned,
    submit,
    typed_values,
)
from trialmgr.partners.policies import can_manage, may_see_site
from trialmgr.templating import format_date

# --- trials ---------------------------------------------------------------------


# The columns the trial list may be sorted by (?sort=).
TRIAL_SORTS = {
    "code": (Trial.code,),
    "title": (Trial.title,),
    "vector": (Trial.vector_type,),
    "stagger": (Trial.stagger_days,),
    "ltfu": (Trial.ltfu_years,),
    "status": (Trial.status,),
}


@bp.route("/trials")
@roles(*ANY_ROLE)
def trial_list() -> Any:
    filters, errors = load_filters(TrialQuery())
    rows = listing(trials_service.trial_query(filters), TRIAL_SORTS, "code", tiebreak=Trial.id)
    trials, page, has_next = rows.items, rows.page, rows.has_next
    return render_template(
        "enrollment/trial_list.html",
        trials=trials,
        listing=rows,
        statuses=TRIAL_STATUSES,
        args=filter_args(),
        filtered=bool(filters),
        page=page,
        has_next=has_next,
        errors=errors,
        manager=can_manage(current_actor()),
    ), (422 if errors else 200)


@bp.route("/trials/new", methods=["GET", "POST"])
@roles(*MANAGERS)
def trial_new() -> Any:
    refusal = None
    if request.method == "POST":
        trial = submit(
            "trial",
            lambda: trials_service.create_trial(
                current_actor(), load_form(TrialIn(), request.form)
            ),
        )
        if not isinstance(trial, Refusal):
            flash(f"Trial {trial.code} created; add its design, then open it.", "success")
            return redirect(url_for("enrollment.trial_detail", trial_id=trial.id))
        refusal = trial
    return render_template(
        "enrollment/trial_form.html",
        values=typed_values(request.form),
        refusal=refusal,
        vector_types=[(v, v.replace("_", " ")) for v in VECTOR_TYPES],
    ), (refusal.status if refusal else 200)


def _consent_rows(trial: Trial, sites: list[Any]) -> list[dict[str, Any]]:
    """Each consent version with its approvals at the sites the reader may see, the newest
    (by first approval) first; versions approved nowhere yet come first."""
    codes = {s.id: s.code for s in sites}
    rows = []
    for version in trial.consent_versions:
        approvals = [a for a in version.site_approvals if a.site_id in codes]
        first = min(
            [d for d in (version.approved_on, *(a.approved_on for a in approvals)) if d],
            default=None,
        )
        rows.append(
            {
                "version": version,
                "approvals": [(codes[a.site_id], a) for a in approvals],
                "first": first,
            }
        )
    return sorted(rows, key=lambda r: (r["first"] or date.max, r["version"].id), reverse=True)


def trial_page(trial: Trial, refusal: Refusal | None = None) -> tuple[str, int]:
    actor = current_actor()
    now = utcnow()
    sites = site_choices(actor)
    return render_template(
        "enrollment/trial_detail.html",
        trial=trial,
        pauses=oversight_service.pauses_of(trial),
        reviews=oversight_service.reviews_of(trial),
        current_version=consent_service.latest_version(trial),
        consent_rows=_consent_rows(trial, sites),
        site_options=[(s.id, f"{s.code} · {s.name}") for s in sites],
        version_options=[(v.id, f"Version {v.version}") for v in reversed(trial.consent_versions)],
        readiness=[dosing_service.escalation_readiness(trial, c, now) for c in trial.cohorts],
        cohort_options=[(c.id, f"{c.label} · {c.dose} {c.dose_unit}") for c in trial.cohorts],
        manager=can_manage(actor),
        monitor=actor.role == SAFETY_MONITOR,
        may_pause=actor.role == SAFETY_MONITOR,
        review_meaning=REVIEW_MEANING,
        resume_meaning=RESUME_MEANING,
        refusal=refusal,
        values=typed_values(request.form) if refusal else {},
        today=actor_today(actor, utcnow()),
        # This page has its own pause banner; the site-wide one lists the other trials.
        paused_trials=[t for t in trial_choices("paused") if t.id != trial.id],
    ), (refusal.status if refusal else 200)


@bp.route("/trials/<int:trial_id>")
@roles(*ANY_ROLE)
def trial_detail(trial_id: int) -> tuple[str, int]:
    return trial_page(trials_service.get_trial(trial_id))


def trial_action(
    trial_id: int,
    form: str,
    act: Callable[[Any, Trial], str],
    confirm: Callable[[Trial], dict[str, Any] | None] | None = None,
) -> Any:
    """Run one form of the trial page: PRG on success, the page with errors otherwise. An
    irreversible step (`confirm` restates it; None: nothing to confirm) is rehearsed and
    restated first, and runs once confirmed."""
    trial = trials_service.get_trial(trial_id)
    if confirm is not None and cancelled(request.form):
        return trial_page(trial, returned(form))
    if confirm is not None and not confirmed(request.form):
        restated = rehearse(form, lambda: act(current_actor(), trial), lambda _: confirm(trial))
        if isinstance(restated, Refusal):
            return trial_page(trial, restated)
        if restated is not None:
            restated.update(action=request.path, fields=replay_fields(request.form))
            return render_template("pages/confirm.html", confirm=restated)
    done = submit(form, lambda: act(current_actor(), trial))
    if isinstance(done, Refusal):
        return trial_page(trial, done)
    flash(done, "success")
    return redirect(url_for("enrollment.trial_detail", trial_id=trial.id))


@bp.route("/trials/<int:trial_id>/cohorts/new", methods=["POST"])
@roles(*MANAGERS)
def cohort_new(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        cohort = trials_service.add_cohort(actor, trial, load_form(CohortIn(), request.form))
        return f"Cohort {cohort.label} ({cohort.dose} {cohort.dose_unit}) added."

    return trial_action(trial_id, "cohort", act)


@bp.route("/trials/<int:trial_id>/criteria", methods=["POST"])
@roles(*MANAGERS)
def criterion_new(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        criterion = trials_service.add_criterion(
            actor, trial, load_form(CriterionIn(), request.form)
        )
        return f"Criterion {criterion.code} added."

    return trial_action(trial_id, "criterion", act)


APPROVAL_ROW = "approval_"


def _consent_version_data(form: Any) -> dict[str, Any]:
    """The consent-version form: the version, an optional trial-wide approval date, and one
    optional site approval row (inputs `approval_site_id`, `approval_approved_on`, ...)."""
    errors: dict[str, Any] = {}
    try:
        data = load_form(ConsentVersionIn(exclude=("site_approvals",)), form)
    except ValidationError as exc:
        data, errors = {}, flat_errors(exc)
    if any_given(form, *(f"{APPROVAL_ROW}{f}" for f in ("site_id", "approved_on", "language"))):
        row, row_errors = load_prefixed(ConsentSiteApprovalIn(), form, APPROVAL_ROW)
        errors.update(row_errors)
        data["site_approvals"] = [row]
    if errors:
        raise ValidationError(errors)
    return data


def _site_row_errors(refusal: Refusal, data_given: dict[str, Any]) -> Refusal:
    """A service's errors about the site approvals belong next to the site row's inputs (a
    site date in the future is reported as `approved_on`: the row's when no trial-wide date
    was given)."""
    errors = dict(refusal.errors)
    if "site_approvals" in errors:
        errors[f"{APPROVAL_ROW}site_id"] = messages(errors.pop("site_approvals"))
    if "approved_on" in errors and not data_given.get("approved_on", "").strip():
        errors[f"{APPROVAL_ROW}approved_on"] = messages(errors.pop("approved_on"))
    refusal.errors = errors
    return refusal


def _consent_restatement(trial: Trial, version: ConsentVersion) -> dict[str, Any] | None:
    """What adding a version that requires re-consent does (None for one that does not):
    where and from when it is approved, and the active subjects it asks to re-consent,
    counted by the service's own rule on the rehearsed version."""
    if not version.reconsent_required:
        return None
    asked = consent_service.asked_to_reconsent(version, utcnow())
    per_site: dict[str, int] = {}
    for subject in asked:
        per_site[subject.site.code] = per_site.get(subject.site.code, 0) + 1
    codes = {site.id: site.code for site in site_choices(current_actor())}
    where = []
    if version.approved_on:
        where.append(f"at every site from {format_date(version.approved_on)}")
    where += [
        f"at {codes.get(a.site_id, a.site_id)} from {format_date(a.approved_on)}"
        for a in version.site_approvals
    ]
    count = f"{len(asked)} active subject{'' if len(asked) == 1 else 's'}"
    by_site = ", ".join(f"{code}: {n}" for code, n in sorted(per_site.items()))
    return {
        "title": f"consent version {version.version} of {trial.code}",
        "summary": f"Version {version.version} of {trial.code} ({trial.title}) requires "
        f"re-consent: {count} will be asked to re-consent.",
        "details": [
            f"Approved {' and '.join(where)}."
            if where
            else "Not yet approved at any site: "
            "subjects are asked to re-consent once a site approves it.",
            f"Asked to re-consent now: {count}{f' ({by_site})' if by_site else ''}.",
            "Until they sign it, their dosing and non-safety procedures are refused.",
        ],
        "warning": "The re-consent requests go to the sites' worklists as soon as it is saved.",
        "button": f"Confirm: add version {version.version}",
    }


@bp.route("/trials/<int:trial_id>/consent-versions", methods=["POST"])
@roles(*MANAGERS)
def consent_version_new(trial_id: int) -> Any:
    trial = trials_service.get_trial(trial_id)
    if cancelled(request.form):
        return trial_page(trial, returned("consent"))

    def act() -> ConsentVersion:
        data = _consent_version_data(request.form)
        return consent_service.add_consent_version(current_actor(), trial, data, utcnow())

    if not confirmed(request.form):
        # A version requiring re-consent is rehearsed and restated first (whom it asks).
        restated = rehearse("consent", act, lambda v: _consent_restatement(trial, v))
        if isinstance(restated, Refusal):
            return trial_page(trial, _site_row_errors(restated, request.form))
        if restated is not None:
            restated.update(action=request.path, fields=replay_fields(request.form))
            return render_template("pages/confirm.html", confirm=restated)
    version = submit("consent", act)
    if isinstance(version, Refusal):
        return trial_page(trial, _site_row_errors(version, request.form))
    codes = {site.id: site.code for site in site_choices(current_actor())}
    where = (
        [f"at every site from {format_date(version.approved_on)}"] if version.approved_on else []
    )
    where += [
        f"at {codes.get(a.site_id)} from {format_date(a.approved_on)}"
        for a in version.site_approvals
    ]
    approved = f"approved {' and '.join(where)}" if where else "not yet approved at any site"
    due = " Active subjects on older versions there are now due for re-consent."
    flash(
        f"Consent version {version.version} added, {approved}."
        f"{due if version.reconsent_required and where else ''}",
        "success",
    )
    return redirect(url_for("enrollment.trial_detail", trial_id=trial.id))


@bp.route("/trials/<int:trial_id>/visit-definitions", methods=["POST"])
@roles(*MANAGERS)
def visit_definition_new(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        data = load_form(VisitDefinitionIn(), request.form)
        definition = trials_service.add_visit_definition(actor, trial, data)
        return f"Visit {definition.name} (day {definition.day}) added to the schedule."

    return trial_action(trial_id, "visit_definition", act)


@bp.route("/trials/<int:trial_id>/status", methods=["POST"])
@roles(*MANAGERS)
def trial_status(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        data = load_form(TrialPatch(only=("status", "reason")), request.form)
        if "status" not in data:
            raise ValidationError({"status": ["Choose open, closed or ended."]})
        trials_service.update_trial(actor, trial, data)
        if trial.status == "closed":
            return (
                f"Trial {trial.code} is closed to enrolment; follow-up, re-consent and "
                "safety reporting go on."
            )
        return f"Trial {trial.code} is {trial.status}."

    def restate(trial: Trial) -> dict[str, Any] | None:
        if trial.status != "open":
            return None
        cohorts = ", ".join(
            f"{c.label} {c.dose} {c.dose_unit} ({c.capacity})" for c in trial.cohorts
        )
        return {
            "title": f"opening {trial.code}",
            "summary": f"{trial.code} ({trial.title}) opens to enrolment; its design is then "
            "changed only by protocol amendments.",
            "details": [
                f"Cohorts: {cohorts}.",
                f"Sentinel stagger: {trial.stagger_days} days; long-term follow-up: "
                f"{trial.ltfu_years} years.",
                f"Visit schedule: {', '.join(d.name for d in trial.visit_definitions)}.",
            ],
            "warning": "Opening cannot be undone.",
            "button": f"Confirm: open {trial.code}",
        }

    status = request.form.get("status", "")
    form = f"status-{status}" if status in ("open", "closed", "ended") else "status-open"
    return trial_action(trial_id, form, act, restate)


@bp.route("/trials/<int:trial_id>/safety-reviews", methods=["POST"])
@roles(SAFETY_MONITOR)
def safety_review_new(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        data = load_form(SafetyReviewIn(exclude=("meaning",)), request.form)
        review = oversight_service.record_safety_review(actor, trial, data, utcnow())
        return f"Safety review of cohort {review.cohort.label} signed: {review.decision}."

    return trial_action(trial_id, "review", act)


@bp.route("/trials/<int:trial_id>/pause", methods=["POST"])
@roles(SAFETY_MONITOR)
def trial_pause(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        data = load_form(PauseIn(), request.form)
        oversight_service.pause_trial(actor, trial, data["reason"], utcnow())
        return f"Dosing in {trial.code} is paused trial-wide."

    return trial_action(trial_id, "pause", act)


@bp.route("/trials/<int:trial_id>/resume", methods=["POST"])
@roles(SAFETY_MONITOR)
def trial_resume(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        data = load_form(ResumeIn(), request.form)
        oversight_service.resume_trial(actor, trial, data["reason"], data["password"], utcnow())
        return f"Dosing in {trial.code} resumed."

    return trial_action(trial_id, "resume", act)


@bp.route("/trials/<int:trial_id>/cohorts")
@roles(*ANY_ROLE)
def cohort_board(trial_id: int) -> str:
    actor = current_actor()
    trial = trials_service.get_trial(trial_id)
    board = dosing_service.cohort_board(trial, utcnow())
    for row in board:
        row["visible"] = {s.id: may_see_site(actor, s.site_id) for s in row["subjects"]}
    return render_template("enrollment/cohort_board.html", trial=trial, board=board, now=utcnow())
