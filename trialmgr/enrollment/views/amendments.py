"""The amendments page: a trial's protocol amendments (what changed, old → new, and whose
schedules were recomputed) and, for managers, the form recording a new one."""

from __future__ import annotations

import re
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from trialmgr.auth.policies import ANY_ROLE, MANAGERS, current_actor, roles
from trialmgr.clock import actor_today, utcnow
from trialmgr.enrollment.models import Amendment, Subject, Trial
from trialmgr.enrollment.schemas import AmendmentIn, VisitDefinitionIn, VisitDefinitionPatch
from trialmgr.enrollment.services import amendments as amendments_service
from trialmgr.enrollment.services import subjects as subjects_service
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.enrollment.views.common import (
    AmendmentVisitChoice,
    any_given,
    bp,
    flat_errors,
    load_prefixed,
)
from trialmgr.extensions import db
from trialmgr.forms import Refusal, load_form, submit, typed_values
from trialmgr.partners.policies import can_manage

# The trial's own design fields, as the amendments list names them (label, unit).
FIELD_LABELS = {
    "stagger_days": ("Sentinel stagger", " days"),
    "ltfu_years": ("Long-term follow-up", " years"),
    "accepted_orphacodes": ("Accepted ORPHAcodes", ""),
    "escalation_requires_full_cohort": ("Escalation needs every slot dosed", ""),
    "dlt_window_days": ("DLT observation window", " days"),
}
ATTRIBUTE_LABELS = {
    "window_before": "window before",
    "window_after": "window after",
    "primary_endpoint": "primary endpoint",
    "dose_unit": "unit",
}
ADD_VISIT = "add_"
CHANGE_VISIT = "change_"
TRIAL_FIELDS = AmendmentIn(exclude=("visit_definitions", "criteria", "cohorts"))


def _shown(value: Any, unit: str = "") -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(f"ORPHA:{v}" for v in value) or "none"
    return f"{value}{unit}"


def _details(new: dict[str, Any]) -> str:
    if "day" in new:
        before, after = new.get("window_before", 0), new.get("window_after", 0)
        return f"day {new['day']}, window \u2212{before} / +{after} days"
    if "dose" in new:
        return f"{new['dose']} {new.get('dose_unit', '')}, capacity {new.get('capacity')}"
    return f"{new.get('kind', '')}: {new.get('text', '')}"


def describe_change(key: str, change: dict[str, Any]) -> str:
    """One recorded change in words: "Sentinel stagger: 14 days → 21 days", "Visit Week 12:
    day 84 → 90", "Visit Week 16 added (day 112, ...)", "Visit Day 7 removed"."""
    old, new = change.get("old"), change.get("new")
    if key in FIELD_LABELS:
        label, unit = FIELD_LABELS[key]
        return f"{label}: {_shown(old, unit)} → {_shown(new, unit)}"
    what = key[:1].upper() + key[1:]
    if old is None and isinstance(new, dict):
        return f"{what} added ({_details(new)})"
    if new == "removed":
        return f"{what} removed"
    if isinstance(old, dict) and isinstance(new, dict):
        parts = [
            f"{ATTRIBUTE_LABELS.get(k, k)} {_shown(old.get(k))} → {_shown(v)}"
            for k, v in new.items()
        ]
        return f"{what}: {'; '.join(parts)}"
    return f"{what}: {_shown(old)} → {_shown(new)}"


def _visible_codes(trial: Trial, amendments: list[Amendment]) -> set[str]:
    """The rescheduled subjects the reader may open (others' sites are not disclosed)."""
    codes = {c for a in amendments for c in a.rescheduled}
    if not codes:
        return set()
    query = subjects_service.subject_query(current_actor(), {"trial_id": trial.id})
    return {s.code for s in db.session.execute(query.where(Subject.code.in_(codes))).scalars()}


def _design_values(trial: Trial) -> dict[str, Any]:
    """The form starts from the current design: change what the amendment changes."""
    return {
        "effective_on": actor_today(current_actor(), utcnow()).isoformat(),
        "stagger_days": trial.stagger_days,
        "ltfu_years": trial.ltfu_years,
        "dlt_window_days": "" if trial.dlt_window_days is None else trial.dlt_window_days,
        "escalation_requires_full_cohort": "true" if trial.escalation_requires_full_cohort else "",
        "accepted_orphacodes": ", ".join(str(c) for c in trial.accepted_orphacodes or []),
    }


def _amendments_page(trial: Trial, refusal: Refusal | None = None) -> tuple[str, int]:
    amendments = amendments_service.amendments_of(trial)
    return render_template(
        "enrollment/amendments.html",
        trial=trial,
        amendments=[(a, [describe_change(k, v) for k, v in a.changes.items()]) for a in amendments],
        visible=_visible_codes(trial, amendments),
        manager=can_manage(current_actor()),
        amendable=trial.status in amendments_service.AMENDABLE,
        visit_options=[
            (d.id, f"{d.name} (day {d.day}, \u2212{d.window_before} / +{d.window_after})")
            for d in trial.visit_definitions
            if d.active
        ],
        refusal=refusal,
        values=typed_values(request.form) if refusal else _design_values(trial),
    ), (refusal.status if refusal else 200)


@bp.route("/trials/<int:trial_id>/amendments")
@roles(*ANY_ROLE)
def amendment_list(trial_id: int) -> tuple[str, int]:
    return _amendments_page(trials_service.get_trial(trial_id))


_ORPHACODE = re.compile(r"^(?:orpha:)?\s*", re.IGNORECASE)


def _orphacodes_as_list(form: MultiDict[str, str]) -> MultiDict[str, str]:
    """ "98880, ORPHA:98881" → the list field's items; an emptied input clears the list."""
    trimmed: MultiDict[str, str] = MultiDict(form)
    if "accepted_orphacodes" in form:
        text = form.get("accepted_orphacodes", "")
        items = [_ORPHACODE.sub("", t) for t in re.split(r"[\s,;]+", text) if t.strip()]
        trimmed.setlist("accepted_orphacodes", items or [""])
    return trimmed


def amendment_data(form: MultiDict[str, str]) -> dict[str, Any]:
    """The amendment form as AmendmentIn's data, every part read through the API's schemas;
    all errors at once, each next to its input. One visit may be added, one changed and
    one removed per amendment (the API takes lists)."""
    errors: dict[str, Any] = {}
    try:
        data = load_form(TRIAL_FIELDS, _orphacodes_as_list(form), clearable=True)
    except ValidationError as exc:
        data, errors = {}, flat_errors(exc)
    try:
        choice = load_form(AmendmentVisitChoice(), form)
    except ValidationError as exc:
        choice, errors = {}, {**errors, **flat_errors(exc)}
    visits: dict[str, list[Any]] = {}
    add_inputs = [f"{ADD_VISIT}{f}" for f in ("name", "day", "window_before", "window_after")]
    if any_given(form, *add_inputs):
        added, add_errors = load_prefixed(VisitDefinitionIn(), form, ADD_VISIT)
        errors.update(add_errors)
        visits["add"] = [added]
    change_inputs = [f"{CHANGE_VISIT}{f}" for f in ("day", "window_before", "window_after")]
    if any_given(form, *change_inputs) or choice.get("change_id") is not None:
        timing = VisitDefinitionPatch(only=("day", "window_before", "window_after"))
        changed, change_errors = load_prefixed(timing, form, CHANGE_VISIT)
        errors.update(change_errors)
        if "change_id" not in choice and "change_id" not in errors:
            errors["change_id"] = ["Choose the visit to change."]
        elif not change_errors and not changed:
            errors["change_day"] = ["Give the new study day or window."]
        visits["change"] = [{"id": choice.get("change_id"), **changed}]
    if choice.get("remove_id") is not None:
        visits["remove"] = [choice["remove_id"]]
    if errors:
        raise ValidationError(errors)
    if visits:
        data["visit_definitions"] = visits
    return data


@bp.route("/trials/<int:trial_id>/amendments", methods=["POST"])
@roles(*MANAGERS)
def amendment_new(trial_id: int) -> Any:
    trial = trials_service.get_trial(trial_id)

    def act() -> Amendment:
        data = amendment_data(request.form)
        return amendments_service.record_amendment(current_actor(), trial, data, utcnow())

    amendment = submit("amendment", act)
    if isinstance(amendment, Refusal):
        return _amendments_page(trial, amendment)
    changed = len(amendment.changes)
    rescheduled = len(amendment.rescheduled)
    flash(
        f"Amendment {amendment.version} recorded ({changed} change{'s' * (changed != 1)}); "
        f"future visits of {rescheduled} subject{'s' * (rescheduled != 1)} recomputed.",
        "success",
    )
    return redirect(url_for("enrollment.amendment_list", trial_id=trial.id))
