"""Shared by the enrolment pages: the blueprint, page-only form schemas, form plumbing."""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint
from marshmallow import ValidationError, fields, validate
from werkzeug.datastructures import MultiDict

from trialmgr.auth.policies import current_actor
from trialmgr.enrollment.models import (
    Trial,
)
from trialmgr.enrollment.schemas import (
    ScreeningPatch,
    VisitPatch,
)
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.extensions import db
from trialmgr.partners.services import sites as sites_service

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


def user_zone() -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(current_actor().timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def aware_from_local(value: str, name: str) -> str:
    """A datetime-local input is naive: it means the user's own time zone."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValidationError({name: ["Give a date and a time."]}) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=user_zone())
    return moment.isoformat()


def trial_choices(status: str | None = None) -> list[Trial]:
    filters = {"status": status} if status else {}
    return list(db.session.execute(trials_service.trial_query(filters)).scalars())


def site_choices(actor: Any, active_only: bool = False) -> list[Any]:
    filters = {"status": "active"} if active_only else {}
    return list(db.session.execute(sites_service.site_query(actor, filters)).scalars())
