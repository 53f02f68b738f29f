"""Shared by the enrolment pages: the blueprint, page-only form schemas, form plumbing."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.datastructures import MultiDict

from trialmgr.auth.models import ADMIN, CONSORTIUM_LEAD, COORDINATOR
from trialmgr.auth.policies import current_actor
from trialmgr.enrollment import services
from trialmgr.enrollment.models import (
    Trial,
)
from trialmgr.enrollment.schemas import (
    ScreeningPatch,
    VisitPatch,
)
from trialmgr.errors import Forbidden, NotFound, Problem
from trialmgr.extensions import db
from trialmgr.forms import load_form
from trialmgr.partners import services as partners

bp = Blueprint("enrollment", __name__)

MANAGERS = (ADMIN, CONSORTIUM_LEAD)
SITE_WORK = (COORDINATOR, ADMIN)
SCREENING_READERS = (COORDINATOR, ADMIN, CONSORTIUM_LEAD)
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


# --- form plumbing --------------------------------------------------------------


@dataclass
class Refusal:
    """Why a form was not saved: shown above the page and next to the form's fields."""

    form: str
    status: int
    title: str
    detail: str
    errors: dict[str, Any] = field(default_factory=dict)


def _refused(form: str, exc: ValidationError | Problem) -> Refusal:
    """The attempt is rolled back first, so the page re-rendered in this request shows what
    is stored, not what was half-written. Not found and forbidden are not form errors."""
    db.session.rollback()
    if isinstance(exc, NotFound | Forbidden):
        raise exc
    if isinstance(exc, ValidationError):
        messages = exc.normalized_messages()
        return Refusal(form, 422, "Not saved", "Please correct the highlighted fields.", messages)
    return Refusal(form, exc.status, exc.title, exc.detail, dict(exc.errors))


def _load(schema: Schema, form: MultiDict[str, str], extra: dict[str, Any] | None = None) -> Any:
    return load_form(schema, form, extra)


def _without(form: MultiDict[str, str], *names: str) -> MultiDict[str, str]:
    trimmed: MultiDict[str, str] = MultiDict(form)
    for name in names:
        trimmed.poplist(name)
    return trimmed


def _typed(form: MultiDict[str, str]) -> dict[str, str]:
    """What the user typed, to put back in a re-rendered form (a checkbox's last value wins)."""
    return {name: form.getlist(name)[-1] for name in form}


def _yes_no(form: MultiDict[str, str], prefix: str, keys: Any) -> dict[str, bool]:
    """Answers of a group of yes/no radios named `<prefix><key>`; unanswered keys are absent."""
    answers = {}
    for key in keys:
        value = form.get(f"{prefix}{key}")
        if value in ("yes", "no"):
            answers[key] = value == "yes"
    return answers


def _count(query: sa.Select[Any]) -> int:
    subquery = query.order_by(None).subquery()
    return int(db.session.execute(sa.select(sa.func.count()).select_from(subquery)).scalar_one())


def _user_zone() -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(current_actor().timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _aware(value: str, name: str) -> str:
    """A datetime-local input is naive: it means the user's own time zone."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValidationError({name: ["Give a date and a time."]}) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_user_zone())
    return moment.isoformat()


def _trial_choices(status: str | None = None) -> list[Trial]:
    filters = {"status": status} if status else {}
    return list(db.session.execute(services.trial_query(filters)).scalars())


def _site_choices(actor: Any, active_only: bool = False) -> list[Any]:
    filters = {"status": "active"} if active_only else {}
    return list(db.session.execute(partners.site_query(actor, filters)).scalars())
