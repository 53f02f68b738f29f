"""The screening log: list, CSV export, new screening, outcome corrections."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from trialmgr.auth.policies import current_actor, roles
from trialmgr.db import today
from trialmgr.enrollment import services
from trialmgr.enrollment.export import screening_csv
from trialmgr.enrollment.models import (
    SCREENING_OUTCOMES,
    Screening,
    Subject,
    Trial,
)
from trialmgr.enrollment.schemas import (
    ScreeningIn,
    ScreeningQuery,
)
from trialmgr.enrollment.views.common import (
    SCREENING_READERS,
    SITE_WORK,
    Refusal,
    ScreeningOutcomeForm,
    _load,
    _refused,
    _site_choices,
    _trial_choices,
    _typed,
    _without,
    _yes_no,
    bp,
)
from trialmgr.errors import Problem
from trialmgr.extensions import db
from trialmgr.forms import filter_args, load_filters, page_of

# --- screening ------------------------------------------------------------------


@bp.route("/screenings")
@roles(*SCREENING_READERS)
def screening_list() -> Any:
    actor = current_actor()
    filters, errors = load_filters(ScreeningQuery())
    query = services.screening_query(actor, filters).options(
        selectinload(Screening.site), selectinload(Screening.trial)
    )
    screenings, page, has_next = page_of(query)
    codes = sa.select(Subject.screening_id, Subject.code).where(
        Subject.screening_id.in_([s.id for s in screenings])
    )
    enrolled: dict[int, str] = {row.screening_id: row.code for row in db.session.execute(codes)}
    return render_template(
        "enrollment/screening_list.html",
        screenings=screenings,
        enrolled=enrolled,
        trials=_trial_choices(),
        sites=_site_choices(actor),
        outcomes=SCREENING_OUTCOMES,
        args=filter_args(),
        filtered=bool(filters),
        page=page,
        has_next=has_next,
        errors=errors,
        site_worker=actor.role in SITE_WORK,
    ), (422 if errors else 200)


@bp.route("/screenings/export.csv")
@roles(*SCREENING_READERS)
def screening_export() -> Response:
    """The screening log as filtered on the page, every page."""
    filters, errors = load_filters(ScreeningQuery())
    if errors:
        raise ValidationError(errors)
    return screening_csv(services.screening_query(current_actor(), filters))


def _screening_form(
    trial: Trial | None, values: dict[str, Any], refusal: Refusal | None
) -> tuple[str, int]:
    sites = _site_choices(current_actor(), active_only=True)
    return render_template(
        "enrollment/screening_form.html",
        trial=trial,
        trials=_trial_choices("open"),
        sites=sites,
        site_options=[(s.id, f"{s.code} · {s.name}") for s in sites],
        values=values,
        refusal=refusal,
        today=today(),
    ), (refusal.status if refusal else 200)


@bp.route("/screenings/new", methods=["GET", "POST"])
@roles(*SITE_WORK)
def screening_new() -> Any:
    """Choose the trial first (?trial_id=, or the only open one), then its criteria appear."""
    trial_id = request.values.get("trial_id", type=int)
    open_trials = _trial_choices("open")
    trial = services.get_trial(trial_id) if trial_id else None
    if trial is None and len(open_trials) == 1:
        trial = open_trials[0]
    if request.method == "GET":
        sites = _site_choices(current_actor(), active_only=True)
        values = {
            "screened_on": today().isoformat(),
            "orphacode": trial.orphacode if trial and trial.orphacode else "",
            "site_id": sites[0].id if len(sites) == 1 else "",
        }
        return _screening_form(trial, values, None)
    try:
        if trial is None:
            raise ValidationError({"trial_id": ["Choose a trial."]})
        outcome = request.form.get("outcome", "")
        if outcome not in SCREENING_OUTCOMES:
            raise ValidationError({"outcome": ["Choose an outcome, or leave it pending."]})
        form = _without(request.form, "outcome") if outcome == "pending" else request.form
        answers = _yes_no(request.form, "crit_", [c.code for c in trial.criteria])
        data = _load(ScreeningIn(), form, {"trial_id": trial.id, "answers": answers})
        screening = services.create_screening(current_actor(), data, today())
    except (ValidationError, Problem) as exc:
        return _screening_form(trial, _typed(request.form), _refused("screening", exc))
    flash(
        f"Screening {screening.site.code} #{screening.number} logged: "
        f"{screening.outcome.replace('_', ' ')}.",
        "success",
    )
    return redirect(url_for("enrollment.screening_detail", screening_id=screening.id))


def _screening_page(screening: Screening, refusal: Refusal | None = None) -> tuple[str, int]:
    actor = current_actor()
    subject = db.session.execute(
        sa.select(Subject).where(Subject.screening_id == screening.id)
    ).scalar_one_or_none()
    return render_template(
        "enrollment/screening_detail.html",
        screening=screening,
        subject=subject,
        site_worker=actor.role in SITE_WORK,
        refusal=refusal,
        values=_typed(request.form) if refusal else {},
    ), (refusal.status if refusal else 200)


@bp.route("/screenings/<int:screening_id>")
@roles(*SCREENING_READERS)
def screening_detail(screening_id: int) -> tuple[str, int]:
    return _screening_page(services.get_screening(current_actor(), screening_id))


@bp.route("/screenings/<int:screening_id>/outcome", methods=["POST"])
@roles(*SITE_WORK)
def screening_outcome(screening_id: int) -> Any:
    actor = current_actor()
    screening = services.get_screening(actor, screening_id)
    try:
        codes = [c.code for c in screening.trial.criteria]
        extra = {"answers": _yes_no(request.form, "crit_", codes)}
        data = _load(ScreeningOutcomeForm(), request.form, extra)
        services.set_screening_outcome(actor, screening, data)
    except (ValidationError, Problem) as exc:
        return _screening_page(screening, _refused("outcome", exc))
    flash(f"Screening outcome: {screening.outcome.replace('_', ' ')}.", "success")
    return redirect(url_for("enrollment.screening_detail", screening_id=screening.id))
