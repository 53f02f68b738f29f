"""Shared by the enrolment pages: the blueprint, page-only form schemas, form plumbing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.datastructures import MultiDict

from trialmgr.clock import zone
from trialmgr.enrollment.models import (
    Trial,
)
from trialmgr.enrollment.schemas import (
    ConsentSiteApprovalIn,
    ScreeningPatch,
    VisitPatch,
)
from trialmgr.enrollment.services import consent as consent_service
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.extensions import db
from trialmgr.forms import load_form, plain_messages
from trialmgr.partners.services import sites as sites_service
from trialmgr.templating import format_date

bp = Blueprint("enrollment", __name__)

VISITS_AHEAD_DAYS = 14


def _optional_reason() -> fields.String:
    return fields.String(validate=validate.Length(min=3, max=2000))


class ScreeningOutcomeForm(ScreeningPatch):
    """ScreeningPatch for the page: a first outcome needs no reason; the service asks for
    one when a recorded outcome is changed."""

    reason = _optional_reason()


class VisitForm(VisitPatch):
    """VisitPatch for the page: the first entry needs no reason; the service asks for one
    when a recorded visit is corrected."""

    reason = _optional_reason()


class SiteApprovalForm(ConsentSiteApprovalIn):
    """A site's approval of a consent version, from the trial page (the version chosen in
    the form rather than in the path)."""

    consent_version_id = fields.Integer(required=True, strict=True)


class AmendmentVisitChoice(Schema):
    """Which visit definition an amendment changes or removes (the amendments page)."""

    change_id = fields.Integer(strict=True)
    remove_id = fields.Integer(strict=True)


def consent_options(trial: Trial, sites: list[Any], today: date) -> list[tuple[int, str]]:
    """Consent versions a consent signed at one of `sites` may be on: those approved there
    (by the site's own ethics committee or trial-wide), newest first, with where and since
    when. One site: its versions; several: each version with the sites that approved it."""
    current = {
        s.id: getattr(consent_service.current_consent_version(trial, s.id, today), "id", None)
        for s in sites
    }
    options = []
    for version in sorted(trial.consent_versions, key=lambda v: v.id, reverse=True):
        places = [(s, d) for s in sites if (d := version.approved_at(s.id)) is not None]
        if not places:
            continue
        where = "; ".join(
            f"{'' if len(sites) == 1 else s.code + ' '}from {format_date(d)}" for s, d in places
        )
        now = " · current" if any(current[s.id] == version.id for s, _ in places) else ""
        options.append((version.id, f"Version {version.version} (approved {where}){now}"))
    return options


# --- form plumbing --------------------------------------------------------------


def without(form: MultiDict[str, str], *names: str) -> MultiDict[str, str]:
    trimmed: MultiDict[str, str] = MultiDict(form)
    for name in names:
        trimmed.poplist(name)
    return trimmed


def yes_no(form: MultiDict[str, str], prefix: str, keys: Any) -> dict[str, bool]:
    """Answers of a group of yes/no radios named `<prefix><key>`; unanswered keys are absent."""
    answers = {}
    for key in keys:
        value = form.get(f"{prefix}{key}")
        if value in ("yes", "no"):
            answers[key] = value == "yes"
    return answers


def count_rows(query: sa.Select[Any]) -> int:
    subquery = query.order_by(None).subquery()
    return int(db.session.execute(sa.select(sa.func.count()).select_from(subquery)).scalar_one())


def aware_from_local(value: str, name: str, zone_name: str | None) -> str:
    """A datetime-local input is naive: it means the wall-clock time in `zone_name`. For a
    dosing that is the site's zone (the infusion happened there, whoever types it in); a
    time the zone skips (clocks put forward) is refused rather than guessed."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValidationError({name: ["Give a date and a time."]}) from exc
    if moment.tzinfo is None:
        place = zone(zone_name)
        naive = moment
        moment = moment.replace(tzinfo=place)
        if moment.astimezone(UTC).astimezone(place).replace(tzinfo=None) != naive:
            raise ValidationError(
                {name: [f"{naive:%Y-%m-%d %H:%M} does not exist in {place.key} (clock change)."]}
            )
    return moment.isoformat()


def messages(value: Any) -> list[str]:
    """Every message in a (possibly nested) marshmallow or service error value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [m for v in value.values() for m in messages(v)]
    if isinstance(value, list | tuple):
        return [m for v in value for m in messages(v)]
    return [str(value)]


def flat_errors(exc: ValidationError) -> dict[str, list[str]]:
    """A schema's errors per input, nested ones (a list's items) flattened into sentences."""
    return {k: messages(v) for k, v in plain_messages(exc.normalized_messages()).items()}


def load_prefixed(
    schema: Schema, form: MultiDict[str, str], prefix: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One part of a form whose inputs are named `<prefix><field>`, read through `schema`:
    the data, and the errors keyed by the inputs' names (so they show next to them)."""
    part: MultiDict[str, str] = MultiDict(
        [(k[len(prefix) :], v) for k, v in form.items(multi=True) if k.startswith(prefix)]
    )
    try:
        return load_form(schema, part), {}
    except ValidationError as exc:
        return {}, {f"{prefix}{k}": v for k, v in flat_errors(exc).items()}


def any_given(form: MultiDict[str, str], *names: str) -> bool:
    return any(form.get(name, "").strip() for name in names)


def trial_choices(status: str | None = None) -> list[Trial]:
    filters = {"status": status} if status else {}
    return list(db.session.execute(trials_service.trial_query(filters)).scalars())


def site_choices(actor: Any, active_only: bool = False) -> list[Any]:
    filters = {"status": "active"} if active_only else {}
    return list(db.session.execute(sites_service.site_query(actor, filters)).scalars())
