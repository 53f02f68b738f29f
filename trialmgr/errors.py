"""One place that turns exceptions into problem+json (API) or an HTML page.

Services raise the `Problem` subclasses below; routes never build error
responses by hand.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Protocol, runtime_checkable

from flask import Flask, Response, json, render_template, request
from marshmallow import Schema, ValidationError
from marshmallow import fields as ma
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError
from werkzeug.exceptions import HTTPException

log = logging.getLogger("trialmgr.errors")

PROBLEM_MIMETYPE = "application/problem+json"


class ProblemOut(Schema):
    """An error answer (RFC 9457 problem details): what the OpenAPI document promises for
    every 4xx and 5xx. Refusals may carry more members (e.g. a stagger's next moment)."""

    status = ma.Integer(required=True)
    title = ma.String(required=True)
    detail = ma.String(required=True)
    errors = ma.Dict(
        required=True, metadata={"description": "Field name to messages (empty if none)."}
    )
    reference = ma.String(metadata={"description": "Quote it to support (5xx, 503)."})


@runtime_checkable
class Phrased(Protocol):
    """A sentence that keeps its dates as values (`clock.Phrase`): `str()` gives the machine
    form, `render` the reader's."""

    def render(self, day: Any, moment: Any) -> str: ...


def machine_text(messages: Any) -> Any:
    """Field messages (nested dicts and lists) with every phrased sentence in its machine
    form."""
    if isinstance(messages, Phrased):
        return str(messages)
    if isinstance(messages, dict):
        return {key: machine_text(value) for key, value in messages.items()}
    if isinstance(messages, list):
        return [machine_text(m) for m in messages]
    return messages


class Problem(Exception):
    """A refusal a client can act on: carries status, title, detail, field errors."""

    status = 400
    title = "Bad request"
    headers: dict[str, str] = {}
    # Writes made before the refusal are committed anyway (e.g. a failed-signature count);
    # such a refusal is raised before the operation writes anything else.
    keep_writes = False
    # Shown next to the form that caused it (a page re-rendered with the refusal); False
    # for "not found" and "your role may not", which are error pages, not form errors.
    form_error = True

    def __init__(
        self,
        detail: str | Phrased | None = None,
        *,
        title: str | None = None,
        errors: dict[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(str(detail or self.title))
        if title:
            self.title = title
        # What the service said, dates kept as values (`clock.Phrase`); `detail` and
        # `errors` are its machine form, with ISO dates, for the API and logs. Pages read
        # `message` and `field_messages` through `templating.page_text`.
        self.message: str | Phrased = detail or self.title
        self.field_messages: dict[str, Any] = errors or {}
        self.detail = str(self.message)
        self.errors: dict[str, Any] = machine_text(self.field_messages)
        self.extra = extra


class Unauthorized(Problem):
    status = 401
    title = "Authentication required"
    headers = {"WWW-Authenticate": 'Bearer realm="trialmgr"'}


class Forbidden(Problem):
    status = 403
    title = "Forbidden"
    form_error = False


class NotFound(Problem):
    status = 404
    title = "Not found"
    form_error = False


class Conflict(Problem):
    """A rule forbids this now (gate closed, cohort full, trial paused, record locked)."""

    status = 409
    title = "Conflict"


class Invalid(Problem):
    """Field-level validation failed outside a schema (e.g. a cross-field rule)."""

    status = 422
    title = "Validation failed"


def wants_json() -> bool:
    return request.path.startswith("/api/")


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    errors: dict[str, Any] | None = None,
    reference: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if wants_json():
        body: dict[str, Any] = {"status": status, "title": title, "detail": detail or title}
        body["errors"] = errors or {}
        if reference:
            body["reference"] = reference
        if extra:
            body.update(extra)
        resp = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    else:
        html = render_template(
            "errors/error.html",
            status=status,
            title=title,
            detail=detail,
            errors=errors or {},
            reference=reference,
        )
        resp = Response(html, status=status, mimetype="text/html")
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def _flatten_webargs(messages: dict[str, Any]) -> dict[str, Any]:
    """webargs nests errors by location ({"json": {...}}); clients want fields."""
    flat: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            flat.update(fields)
        else:
            flat[location] = fields
    return flat


def handle_http_exception(exc: HTTPException) -> Response:
    _rollback()
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    errors = {}
    if "messages" in data:
        errors = _flatten_webargs(data["messages"])
    title = exc.name
    detail = exc.description
    if status == 422:
        title, detail = "Validation failed", "One or more fields are invalid."
    elif status == 400 and "json" in (data.get("messages") or {}):
        errors = _flatten_webargs(data["messages"])
    headers = dict(data.get("headers") or {})
    if status == 405 and exc.get_response().headers.get("Allow"):
        headers["Allow"] = exc.get_response().headers["Allow"]
    if status == 429:
        detail = "Too many attempts; wait a minute and try again."
    return problem_response(status, title, detail, errors, headers=headers)


def handle_problem(exc: Problem) -> Response:
    from trialmgr.lifecycle import settle_refusal

    try:
        settle_refusal(exc)
    except Exception as failed:  # the kept writes could not be committed
        return handle_unexpected(failed)
    if wants_json():
        return problem_response(
            exc.status, exc.title, exc.detail, exc.errors, extra=exc.extra, headers=exc.headers
        )
    # An error page is read by a person: the refusal's dates in their format.
    from trialmgr.templating import page_messages, page_text

    return problem_response(
        exc.status, exc.title, page_text(exc.message), page_messages(exc.field_messages)
    )


def handle_validation_error(exc: ValidationError) -> Response:
    _rollback()
    messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    return problem_response(422, "Validation failed", "One or more fields are invalid.", messages)


def _rollback() -> None:
    """A failed statement leaves the transaction unusable (PostgreSQL); the error page
    itself reads the database (navigation, pause banner), so start clean."""
    from trialmgr.extensions import db

    db.session.rollback()


def handle_out_of_range(exc: Exception) -> Response:
    """A number too large for the database (ids, codes, page numbers): the input is wrong."""
    _rollback()
    log.info("value out of range: %s", exc)
    return problem_response(422, "Validation failed", "A number is out of the accepted range.")


def handle_statement_error(exc: StatementError) -> Response:
    if isinstance(exc.orig, OverflowError):
        return handle_out_of_range(exc)
    return handle_unexpected(exc)


def handle_integrity_error(exc: IntegrityError) -> Response:
    # Services check uniqueness first; this catches the race that slips past.
    _rollback()
    log.warning("integrity error: %s", exc.orig)
    return problem_response(409, "Conflict", "The change conflicts with an existing record.")


def handle_unexpected(exc: Exception) -> Response:
    reference = uuid.uuid4().hex[:12]
    log.exception("unhandled error, reference %s", reference)
    _rollback()
    if isinstance(exc, OperationalError) and "locked" in str(exc.orig).lower():
        return problem_response(
            503, "Busy", "The database is busy; try again.", reference=reference
        )
    return problem_response(
        500,
        "Internal error",
        f"Something went wrong on our side. Quote reference {reference}.",
        reference=reference,
    )


def register_error_handlers(app: Flask) -> None:
    """Registered after flask-smorest so that its JSON error shape is replaced."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Problem, handle_problem)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(IntegrityError, handle_integrity_error)
    app.register_error_handler(DataError, handle_out_of_range)
    app.register_error_handler(OverflowError, handle_out_of_range)
    app.register_error_handler(StatementError, handle_statement_error)
    app.register_error_handler(Exception, handle_unexpected)
