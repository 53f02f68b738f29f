"""The screening log: list, CSV export, new screening, outcome corrections."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from trialmgr.auth.policies import SCREENING_READERS, SITE_WORK, current_actor, roles
from trialmgr.clock import actor_today, utcnow
from trialmgr.enrollment.export import screening_csv_for_people, screening_filename
from trialmgr.enrollment.models import (
    SCREENING_OUTCOMES,
    Screening,
    Trial,
)
from trialmgr.enrollment.schemas import (
    ScreeningIn,
    ScreeningQuery,
)
from trialmgr.enrollment.services import screening as screening_service
from trialmgr.enrollment.services import subjects as subjects_service
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.enrollment.views.common import (
    ScreeningOutcomeForm,
    bp,
    consent_options,
    site_choices,
    trial_choices,
    without,
    yes_no,
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
from trialmgr.partners.services.sites import site_today
from trialmgr.templating import format_date

# --- screening ------------------------------------------------------------------


# The columns the screening log may be sorted by (?sort=).
SCREENING_SORTS = {
    "number": (Screening.site_id, Screening.number),
    "screened_on": (Screening.screened_on,),
    "orphacode": (Screening.orphacode,),
    "birth_year": (Screening.birth_year,),
    "sex": (Screening.sex,),
    "outcome": (Screening.outcome,),
}


@bp.route("/screenings")
@roles(*SCREENING_READERS)
def screening_list() -> Any:
    actor = current_actor()
    filters, errors = load_filters(ScreeningQuery())
    query = screening_service.screening_query(actor, filters).options(
        selectinload(Screening.site), selectinload(Screening.trial)
    )
    rows = listing(query, SCREENING_SORTS, "screened_on", "desc", tiebreak=Screening.id)
    screenings, page, has_next = rows.items, rows.page, rows.has_next
    enrolled = subjects_service.codes_by_screening([s.id for s in screenings])
    return render_template(
        "enrollment/screening_list.html",
        screenings=screenings,
        listing=rows,
        enrolled=enrolled,
        trials=trial_choices(),
        sites=site_choices(actor),
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
    actor = current_actor()
    trial = trials_service.get_trial(filters["trial_id"]) if filters.get("trial_id") else None
    filename = screening_filename(trial.code if trial else None, actor_today(actor, utcnow()))
    return screening_csv_for_people(screening_service.screening_query(actor, filters), filename)


def _screening_form(
    trial: Trial | None, values: dict[str, Any], refusal: Refusal | None
) -> tuple[str, int]:
    actor = current_actor()
    sites = site_choices(actor, active_only=True)
    # The consent versions of the chosen site (or, before one is chosen, of each of yours).
    chosen = [s for s in sites if str(s.id) == str(values.get("site_id", ""))] or sites
    today = site_today(chosen[0], utcnow()) if len(chosen) == 1 else actor_today(actor, utcnow())
    return render_template(
        "enrollment/screening_form.html",
        trial=trial,
        trials=trial_choices("open"),
        sites=sites,
        site_options=[(s.id, f"{s.code} · {s.name}") for s in sites],
        consent_options=consent_options(trial, chosen, today) if trial else [],
        accepted=[f"ORPHA:{c}" for c in accepted_orphacodes(trial)] if trial else [],
        values=values,
        refusal=refusal,
        proposal=_proposal(trial, values) if trial and refusal else None,
        today=actor_today(actor, utcnow()),
    ), (refusal.status if refusal else 200)


def _proposal(trial: Trial, values: dict[str, Any]) -> str:
    """The outcome the typed answers give, in words, shown next to the outcome choice."""
    answers = yes_no(MultiDict(values), "crit_", [c.code for c in trial.criteria])
    return _outcome_words(*screening_service.derived_outcome(trial, answers))


def accepted_orphacodes(trial: Trial) -> list[int]:
    """The ORPHAcodes a screening for the trial may carry (its own and the accepted ones)."""
    return sorted({c for c in (trial.orphacode, *(trial.accepted_orphacodes or [])) if c})


@bp.route("/screenings/new", methods=["GET", "POST"])
@roles(*SITE_WORK)
def screening_new() -> Any:
    """Choose the trial first (?trial_id=, or the only open one), then its criteria appear."""
    trial_id = request.values.get("trial_id", type=int)
    open_trials = trial_choices("open")
    trial = trials_service.get_trial(trial_id) if trial_id else None
    if trial is None and len(open_trials) == 1:
        trial = open_trials[0]
    if request.method == "GET":
        sites = site_choices(current_actor(), active_only=True)
        values = {
            "screened_on": actor_today(current_actor(), utcnow()).isoformat(),
            "orphacode": trial.orphacode if trial and trial.orphacode else "",
            "site_id": sites[0].id if len(sites) == 1 else "",
        }
        return _screening_form(trial, values, None)
    if cancelled(request.form):
        # Back from the confirmation: the form as it was typed, nothing saved.
        return _screening_form(trial, typed_values(request.form), returned("screening"))

    def outcome_of(form: Any) -> str:
        """The chosen outcome; none chosen proposes the one the answers give."""
        chosen = form.get("outcome", "")
        if chosen == "" and trial is not None and not confirmed(form):
            answers = yes_no(form, "crit_", [c.code for c in trial.criteria])
            return screening_service.derived_outcome(trial, answers)[0]
        return str(chosen)

    def act() -> Screening:
        if trial is None:
            raise ValidationError({"trial_id": ["Choose a trial."]})
        outcome = outcome_of(request.form)
        if outcome not in SCREENING_OUTCOMES:
            raise ValidationError({"outcome": ["Choose an outcome, or leave it pending."]})
        form = MultiDict(request.form)
        form.setlist("outcome", [outcome])
        form = without(form, "outcome") if outcome == "pending" else form
        answers = yes_no(request.form, "crit_", [c.code for c in trial.criteria])
        data = load_form(ScreeningIn(), form, {"trial_id": trial.id, "answers": answers})
        return screening_service.create_screening(current_actor(), data, utcnow())

    if not confirmed(request.form):
        # Rehearsed first: a proposed outcome, or a screening date more than
        # CONFIRM_DAYS_BACK days before the site's today, is restated and saved once
        # confirmed. A refusal goes through `submit` below like any other.
        restated = rehearse("screening", act, lambda s: _screening_restatement(s, request.form))
        if restated is not None and not isinstance(restated, Refusal):
            return render_template("pages/confirm.html", confirm=restated)

    screening = submit("screening", act)
    if isinstance(screening, Refusal):
        return _screening_form(trial, typed_values(request.form), screening)
    flash(
        f"Screening {screening.site.code} #{screening.number} logged: "
        f"{screening.outcome.replace('_', ' ')}.",
        "success",
    )
    return redirect(url_for("enrollment.screening_detail", screening_id=screening.id))


# A screening date further back than this asks for a confirmation restating it.
CONFIRM_DAYS_BACK = 30


def _outcome_words(outcome: str, failed: list[str], missing: list[str]) -> str:
    """An outcome in words, with the criteria that explain it."""
    words = outcome.replace("_", " ")
    if failed:
        words += f" (unmet: {', '.join(failed)})"
    elif missing:
        words += f" (unanswered: {', '.join(missing)})"
    return words


def _screening_restatement(screening: Screening, form: Any) -> dict[str, Any] | None:
    """What the confirmation of a new screening restates, or None when nothing needs
    confirming (an outcome chosen by the coordinator, a date within CONFIRM_DAYS_BACK)."""
    proposed = form.get("outcome", "") == ""
    today = site_today(screening.site, utcnow())
    days_back = (today - screening.screened_on).days
    if not proposed and days_back <= CONFIRM_DAYS_BACK:
        return None
    site = screening.site
    _, failed, missing = screening_service.derived_outcome(screening.trial, screening.answers)
    words = _outcome_words(screening.outcome, failed, missing)
    details = [
        f"Site {site.code} · {site.name}; trial {screening.trial.code}.",
        f"Outcome from the answers: {words}." if proposed else f"Outcome: {words}.",
    ]
    warning = None
    if days_back > CONFIRM_DAYS_BACK:
        warning = (
            f"Screened on {format_date(screening.screened_on)}: {days_back} days before "
            f"today at {site.code} ({format_date(today)}). Check the date before saving."
        )
    fields = [(k, v) for k, v in replay_fields(form) if k != "outcome"]
    fields.append(("outcome", screening.outcome))
    return {
        "title": f"new screening at {site.code}",
        "summary": (
            f"Outcome from the answers: {words} — confirm to log the screening."
            if proposed
            else f"Log the screening dated {format_date(screening.screened_on)}?"
        ),
        "details": details,
        "warning": warning,
        "action": url_for("enrollment.screening_new"),
        "fields": fields,
        # what was typed (an outcome left to the answers stays unchosen)
        "typed": replay_fields(form),
        "button": "Confirm: log the screening",
    }


def _screening_page(screening: Screening, refusal: Refusal | None = None) -> tuple[str, int]:
    actor = current_actor()
    subject = subjects_service.subject_of_screening(screening)
    today = site_today(screening.site, utcnow())
    return render_template(
        "enrollment/screening_detail.html",
        screening=screening,
        subject=subject,
        site_worker=actor.role in SITE_WORK,
        consent_options=consent_options(screening.trial, [screening.site], today),
        today=today,
        refusal=refusal,
        values=typed_values(request.form) if refusal else {},
    ), (refusal.status if refusal else 200)


@bp.route("/screenings/<int:screening_id>")
@roles(*SCREENING_READERS)
def screening_detail(screening_id: int) -> tuple[str, int]:
    return _screening_page(screening_service.get_screening(current_actor(), screening_id))


@bp.route("/screenings/<int:screening_id>/outcome", methods=["POST"])
@roles(*SITE_WORK)
def screening_outcome(screening_id: int) -> Any:
    actor = current_actor()
    screening = screening_service.get_screening(actor, screening_id)

    def act() -> Screening:
        codes = [c.code for c in screening.trial.criteria]
        extra = {"answers": yes_no(request.form, "crit_", codes)}
        data = load_form(ScreeningOutcomeForm(), request.form, extra)
        return screening_service.set_screening_outcome(actor, screening, data, utcnow())

    result = submit("outcome", act)
    if isinstance(result, Refusal):
        return _screening_page(screening, result)
    flash(f"Screening outcome: {screening.outcome.replace('_', ' ')}.", "success")
    return redirect(url_for("enrollment.screening_detail", screening_id=screening.id))


@bp.route("/screenings/<int:screening_id>/consent", methods=["POST"])
@roles(*SITE_WORK)
def screening_consent(screening_id: int) -> Any:
    """Consent recorded on the screening (ICH E6 4.8.8: it precedes any trial procedure);
    the same service as PATCH /screenings/{id} with the consent fields."""
    actor = current_actor()
    screening = screening_service.get_screening(actor, screening_id)

    def act() -> Screening:
        form = ScreeningOutcomeForm(only=("consented_on", "consent_version_id", "reason"))
        data = load_form(form, request.form)
        if "consented_on" not in data and "consent_version_id" not in data:
            raise ValidationError({"consented_on": ["Give the date the consent was signed."]})
        return screening_service.set_screening_outcome(actor, screening, data, utcnow())

    result = submit("consent", act)
    if isinstance(result, Refusal):
        return _screening_page(screening, result)
    version = screening.consent_version.version if screening.consent_version else "?"
    flash(f"Consent to version {version} recorded on the screening.", "success")
    return redirect(url_for("enrollment.screening_detail", screening_id=screening.id))
