"""One adverse event's page: the current version, what each version changed (with its
reason and the awareness time of the new information), the signed reviews, the reporting
clocks, the tasks; the coordinators' follow-up form and the safety monitors' signed review."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from trialmgr.auth.models import SAFETY_MONITOR
from trialmgr.auth.policies import ANY_ROLE, SITE_WORK, current_actor, roles
from trialmgr.clock import format_local, utcnow
from trialmgr.enrollment.views.common import aware_from_local, messages
from trialmgr.extensions import db
from trialmgr.forms import Refusal, load_form, submit, typed_values
from trialmgr.partners.services.sites import site_today
from trialmgr.safety.models import AdverseEvent
from trialmgr.safety.schemas import AdverseEventPatch, ReviewIn
from trialmgr.safety.services import adverse_events as ae_service
from trialmgr.safety.services import clocks as clock_service
from trialmgr.safety.services import work as work_service
from trialmgr.safety.services.adverse_events import RECORD_FIELDS, REVIEW_MEANING
from trialmgr.safety.views.common import (
    ACTIONS,
    AESI,
    CAUSALITY,
    FIELD_LABELS,
    GRADES,
    OUTCOMES,
    SERIOUSNESS,
    bp,
    local_input,
    options,
    task_link,
    zone_words,
)

# Coded values as the page words them, per field.
_WORDS: dict[str, dict[str, str]] = {
    "causality": CAUSALITY,
    "aesi_category": AESI,
    "action_taken": ACTIONS,
    "outcome": OUTCOMES,
}


def shown(field: str, value: Any, zone_name: str | None) -> str:
    """A stored value (a version's JSON or the record's own) as a reader would say it."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if field == "seriousness_criteria":
        return "; ".join(SERIOUSNESS.get(c, (c, ""))[0] for c in value)
    if field == "grade":
        return f"{value} ({GRADES.get(int(value), ('?', ''))[0].lower()})"
    if field.endswith("_at"):
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return format_local(moment, zone_name)
    if isinstance(value, date):
        return value.isoformat()
    return _WORDS.get(field, {}).get(str(value), str(value))


def _versions(ae: AdverseEvent) -> list[dict[str, Any]]:
    """Each version, newest first, with what it changed from the one before."""
    zone_name = ae.subject.site.timezone
    rows, previous = [], None
    for version in ae.versions:
        data = version.data or {}
        changes: list[tuple[str, str, str]] = []
        if previous is not None:
            changes = [
                (
                    FIELD_LABELS[f],
                    shown(f, previous.get(f), zone_name),
                    shown(f, data.get(f), zone_name),
                )
                for f in RECORD_FIELDS
                if previous.get(f) != data.get(f)
            ]
        rows.append({"version": version, "changes": changes})
        previous = data
    return list(reversed(rows))


def _current_values(ae: AdverseEvent) -> dict[str, str]:
    """The follow-up form starts from what the event says now."""
    values = {}
    for field in ("term", "soc", "causality", "aesi_category", "action_taken", "outcome"):
        values[field] = getattr(ae, field) or ""
    for field in ("onset_date", "resolution_date"):
        moment = getattr(ae, field)
        values[field] = moment.isoformat() if moment else ""
    values["grade"] = str(ae.grade)
    values["expected"] = "true" if ae.expected else "false"
    values["aesi"] = "true" if ae.aesi else "false"
    values["narrative"] = ae.narrative or ""
    values["awareness_at"] = local_input(utcnow(), ae.subject.site.timezone)
    return values


def ae_page(ae: AdverseEvent, refusal: Refusal | None = None) -> tuple[str, int]:
    actor = current_actor()
    now = utcnow()
    zone_name = ae.subject.site.timezone
    reports = db.session.execute(
        clock_service.report_query(actor, {"adverse_event_id": ae.id}, now)
    ).scalars()
    mine = refusal is not None and refusal.form == "follow-up"
    if refusal is not None:  # nested messages (a list's items) as sentences at their field
        refusal.errors = {k: messages(v) for k, v in refusal.errors.items()}
    return render_template(
        "safety/ae_detail.html",
        ae=ae,
        fields=[(FIELD_LABELS[f], shown(f, getattr(ae, f), zone_name)) for f in RECORD_FIELDS],
        versions=_versions(ae),
        reviews=ae_service.reviews_of(ae),
        review_state=ae_service.review_state(ae),
        clocks=[(r, clock_service.state(r, now)) for r in reports],
        tasks=[(t, *task_link(t, actor)) for t in work_service.tasks_about(adverse_event_id=ae.id)],
        site_worker=actor.role in SITE_WORK,
        monitor=actor.role == SAFETY_MONITOR,
        review_meaning=REVIEW_MEANING,
        refusal=refusal,
        values=typed_values(request.form) if mine else _current_values(ae),
        review_values=typed_values(request.form) if refusal else {},
        criteria=(
            request.form.getlist("seriousness_criteria") if mine else ae.seriousness_criteria
        ),
        today=site_today(ae.subject.site, now),
        now_local=local_input(now, zone_name),
        grades=GRADES,
        seriousness=SERIOUSNESS,
        causality=options(CAUSALITY),
        aesi_categories=options(AESI),
        actions=options(ACTIONS),
        outcomes=options(OUTCOMES),
        **zone_words(zone_name),
    ), (refusal.status if refusal else 200)


@bp.route("/adverse-events/<int:ae_id>")
@roles(*ANY_ROLE)
def ae_detail(ae_id: int) -> tuple[str, int]:
    return ae_page(ae_service.get(current_actor(), ae_id))


def _ae_action(ae_id: int, form: str, act: Callable[[Any, AdverseEvent], str]) -> Any:
    """Run one form of the event's page: PRG on success, the page with errors otherwise."""
    actor = current_actor()
    ae = ae_service.get(actor, ae_id)
    done = submit(form, lambda: act(actor, ae))
    if isinstance(done, Refusal):
        return ae_page(ae, done)
    flash(done, "success")
    return redirect(url_for("safety.ae_detail", ae_id=ae.id))


@bp.route("/adverse-events/<int:ae_id>/follow-up", methods=["POST"])
@roles(*SITE_WORK)
def ae_follow_up(ae_id: int) -> Any:
    """Follow-up information or a correction: a new version, with its reason and when the
    new information became known (site time): an upgrade opens its clocks from then."""

    def act(actor: Any, ae: AdverseEvent) -> str:
        extra = {}
        if request.form.get("awareness_at", "").strip():
            extra["awareness_at"] = aware_from_local(
                request.form["awareness_at"], "awareness_at", ae.subject.site.timezone
            )
        data = load_form(AdverseEventPatch(), request.form, extra, clearable=True)
        before = {r.id for r in _reports(actor, ae)}
        ae_service.update(actor, ae, data, utcnow())
        opened = [r for r in _reports(actor, ae) if r.id not in before]
        text = f"Version {ae.version} of the adverse event recorded."
        if opened:
            text += f" Clocks opened: {', '.join(f'{r.authority} {r.kind}' for r in opened)}."
        return text

    return _ae_action(ae_id, "follow-up", act)


def _reports(actor: Any, ae: AdverseEvent) -> list[Any]:
    db.session.flush()
    query = clock_service.report_query(actor, {"adverse_event_id": ae.id}, utcnow())
    return list(db.session.execute(query).scalars())


@bp.route("/adverse-events/<int:ae_id>/reviews", methods=["POST"])
@roles(SAFETY_MONITOR)
def ae_review(ae_id: int) -> Any:
    """The signed medical review of the version shown (password re-entry)."""

    def act(actor: Any, ae: AdverseEvent) -> str:
        review = ae_service.review(actor, ae, load_form(ReviewIn(), request.form), utcnow())
        return f"Review of version {review.version} signed: “{review.signature_meaning}”."

    return _ae_action(ae_id, "review", act)
