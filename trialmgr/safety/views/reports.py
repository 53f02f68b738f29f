"""Expedited-reporting clocks (the safety monitors record submissions) and a trial's safety
settings: its stopping rules (managers edit) and its reporting table (administrators edit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from marshmallow import ValidationError, fields, validate

from trialmgr.auth.models import ADMIN, SAFETY_MONITOR
from trialmgr.auth.policies import ANY_ROLE, MANAGERS, current_actor, roles
from trialmgr.clock import utcnow
from trialmgr.enrollment.models import Trial
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.enrollment.views.common import aware_from_local, flat_errors
from trialmgr.errors import NotFound
from trialmgr.forms import (
    Refusal,
    filter_args,
    load_filters,
    load_form,
    page_of,
    submit,
    typed_values,
)
from trialmgr.partners.policies import can_manage
from trialmgr.safety.models import AUTHORITIES
from trialmgr.safety.schemas import ReportQuery, RulePatch, StoppingRuleIn, SubmissionIn
from trialmgr.safety.services import clocks as clock_service
from trialmgr.safety.services import stopping as stopping_service
from trialmgr.safety.views.common import bp, local_input, trial_choices

# The parameters each kind of stopping rule takes (the others take none).
RULE_PARAMS = {kind: tuple(params) for kind, params, _ in stopping_service.DEFAULT_RULES}
RULE_KINDS = {
    "death_related": "Related death",
    "grade4_related": "Related grade 4 event",
    "same_soc_grade3": "Related grade 3 events, same SOC, one cohort",
    "hys_law": "Hy's law case",
    "tma_aesi": "TMA / complement-activation AESI",
}
CONDITIONS = {
    "serious": "Any serious adverse event",
    "susar": "SUSAR",
    "susar_fatal_or_lt": "SUSAR, fatal or life-threatening",
    "susar_other": "Other SUSAR",
}


# --- expedited-report clocks ---------------------------------------------------------


def _reports_page(refusal: Refusal | None = None) -> tuple[str, int]:
    actor = current_actor()
    now = utcnow()
    filters, errors = load_filters(ReportQuery())
    reports, page, has_next = page_of(clock_service.report_query(actor, filters, now))
    return render_template(
        "safety/report_list.html",
        reports=[(r, clock_service.state(r, now)) for r in reports],
        local_now={r.id: local_input(now, r.adverse_event.subject.site.timezone) for r in reports},
        trials=trial_choices(),
        authorities=AUTHORITIES,
        args=filter_args(),
        filtered=bool(filters),
        page=page,
        has_next=has_next,
        errors=errors,
        monitor=actor.role == SAFETY_MONITOR,
        refusal=refusal,
        values=typed_values(request.form) if refusal else {},
    ), (refusal.status if refusal else (422 if errors else 200))


@bp.route("/expedited-reports")
@roles(*ANY_ROLE)
def report_list() -> tuple[str, int]:
    return _reports_page()


@bp.route("/expedited-reports/<int:report_id>/submit", methods=["POST"])
@roles(SAFETY_MONITOR)
def report_submit(report_id: int) -> Any:
    """Record a submission: when (site time) and the authority's reference; after the due
    time it is recorded as late."""
    actor = current_actor()
    report = clock_service.get_report(actor, report_id)

    def act() -> Any:
        extra = {}
        if request.form.get("submitted_at", "").strip():
            zone_name = report.adverse_event.subject.site.timezone
            extra["submitted_at"] = aware_from_local(
                request.form["submitted_at"], "submitted_at", zone_name
            )
        data = load_form(SubmissionIn(), request.form, extra)
        return clock_service.submit(actor, report, data, utcnow())

    done = submit(f"report-{report.id}", act)
    if isinstance(done, Refusal):
        return _reports_page(done)
    late = " It was late." if done.late else ""
    flash(
        f"{done.authority} {done.kind.replace('_', '-')} report recorded: {done.reference}.{late}",
        "success",
    )
    back: dict[str, Any] = filter_args()
    return redirect(url_for("safety.report_list", **back))


# --- a trial's safety settings ---------------------------------------------------------


class StoppingRuleForm(StoppingRuleIn):
    """StoppingRuleIn for the page: the parameters are inputs of their own."""

    min_grade = fields.Integer(strict=True, validate=validate.Range(min=1, max=5))
    count = fields.Integer(strict=True, validate=validate.Range(min=1, max=5))


def _rules_page(trial: Trial, refusal: Refusal | None = None) -> tuple[str, int]:
    actor = current_actor()
    return render_template(
        "safety/trial_rules.html",
        trial=trial,
        stopping=stopping_service.ensure_rules(trial.id),
        firings=stopping_service.firings_of(trial),
        reporting=clock_service.ensure_rules(trial.id),
        rule_params=RULE_PARAMS,
        rule_kinds=RULE_KINDS,
        conditions=CONDITIONS,
        manager=can_manage(actor),
        admin=actor.role == ADMIN,
        refusal=refusal,
        values=typed_values(request.form) if refusal else {},
    ), (refusal.status if refusal else 200)


@bp.route("/trials/<int:trial_id>/safety-rules")
@roles(*ANY_ROLE)
def trial_rules(trial_id: int) -> tuple[str, int]:
    return _rules_page(trials_service.get_trial(trial_id))


def _rules_action(trial_id: int, form: str, act: Callable[[Any, Trial], str]) -> Any:
    trial = trials_service.get_trial(trial_id)
    done = submit(form, lambda: act(current_actor(), trial))
    if isinstance(done, Refusal):
        return _rules_page(trial, done)
    flash(done, "success")
    return redirect(url_for("safety.trial_rules", trial_id=trial.id))


@bp.route("/trials/<int:trial_id>/stopping-rules", methods=["POST"])
@roles(*MANAGERS)
def stopping_rule_save(trial_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        data = load_form(StoppingRuleForm(exclude=("params",)), request.form)
        given = {k: data.pop(k) for k in ("min_grade", "count") if k in data}
        if RULE_PARAMS.get(data["kind"]):
            data["params"] = {k: v for k, v in given.items() if k in RULE_PARAMS[data["kind"]]}
        try:  # the schema's rules on the parameters, said next to them
            data = StoppingRuleIn().load(data)
        except ValidationError as exc:
            raise ValidationError(flat_errors(exc)) from exc
        rule = stopping_service.save_rule(actor, trial, data)
        state = "active" if rule.active else "inactive"
        return f"Stopping rule “{rule.description}” saved ({state})."

    kind = request.form.get("kind", "")
    return _rules_action(trial_id, f"stop-{kind if kind in RULE_KINDS else 'rule'}", act)


@bp.route("/trials/<int:trial_id>/expedited-rules/<int:rule_id>", methods=["POST"])
@roles(ADMIN)
def expedited_rule_update(trial_id: int, rule_id: int) -> Any:
    def act(actor: Any, trial: Trial) -> str:
        rule = clock_service.get_rule(rule_id)
        if rule.trial_id != trial.id:
            raise NotFound(f"No reporting rule {rule_id} in {trial.code}.")
        data = load_form(RulePatch(), request.form, clearable=True)
        clock_service.update_rule(actor, rule, data)
        return f"Reporting rule {rule.authority} · {CONDITIONS[rule.condition]} saved."

    return _rules_action(trial_id, f"clock-{rule_id}", act)
