"""One request lifecycle.

A request's writes are committed once, inside request handling and before the response
is finalised, so that a failed commit becomes an error response (problem+json or the error
page, with a reference id in the log) and never a response that already claimed success.
A refusal rolls the attempt back, except the writes the refusal must keep (a failed
signature or login counts toward the lockout): `settle_refusal` is the one place that
decides, used by the error handlers (API) and by the pages' form helper alike.

Input the database cannot hold or the parser cannot survive (NUL characters, lone
surrogates, JSON nested thousands deep) is refused at the door as 400 problem+json.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, request
from flask.typing import ResponseReturnValue
from werkzeug.routing import Rule

from trialmgr.db import sqlite_begin_immediate
from trialmgr.extensions import db

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# No clinical payload nests deeper than a few levels; parsers fail far below 50,000.
MAX_JSON_DEPTH = 64


class LazyBuildRule(Rule):
    """A URL rule that compiles its URL builders when `url_for` first builds it.

    Werkzeug compiles two builder functions per rule when the rule is added (Python source
    generated, parsed and compiled: most of the app factory's time for ~250 rules), though a
    process builds URLs for few of them (a CLI command, an API worker: none). Matching
    does not use them. The builder compiled is werkzeug's own, unchanged."""

    def _compile_builder(self, append_unknown: bool = True) -> Any:
        def build_on_first_use(rule: Rule, *args: Any, **kwargs: Any) -> Any:
            built = Rule._compile_builder(rule, append_unknown).__get__(rule, None)
            setattr(rule, "_build_unknown" if append_unknown else "_build", built)
            return built(*args, **kwargs)

        return build_on_first_use


class TrialmgrFlask(Flask):
    """Flask, with the request's commit between the view and the response."""

    url_rule_class = LazyBuildRule

    def dispatch_request(self) -> ResponseReturnValue:
        response = self.make_response(super().dispatch_request())
        if response.status_code < 400:
            db.session.commit()
        else:
            db.session.rollback()
        return response


def settle_refusal(exc: BaseException) -> None:
    """Undo a refused attempt, or commit it when the refusal carries writes that must last
    (`keep_writes`: raised before the operation wrote anything else)."""
    if getattr(exc, "keep_writes", False):
        db.session.commit()
    else:
        db.session.rollback()


def begin_writing() -> None:
    """For a GET that records something (a download in the audit trail): end the request's
    read transaction and begin the next as a writer (SQLite BEGIN IMMEDIATE), so the write
    never meets a newer commit through a stale read snapshot."""
    db.session.commit()
    sqlite_begin_immediate.set(True)


@contextmanager
def reading_before_writing() -> Iterator[None]:
    """SQLite, a request that may write: the statements inside (the bearer token's look-up)
    run in a read transaction of their own (BEGIN DEFERRED, no write lock), committed when
    the block ends; the request's next statement begins its write transaction (BEGIN
    IMMEDIATE, under the write lock). So a writer does not hold the database's write lock
    while it authenticates, and another can write meanwhile.

    What the block loaded stays loaded (it is not expired by that commit): the token and its
    user are as read at authentication, as on PostgreSQL, where the token's statement reads
    the newest commit (READ COMMITTED) and a write may commit between it and the request's
    own. A token revoked or expired by then is refused from the next request on; nothing the
    block reads is a check that a write of this request depends on (those are read under
    the write lock: trialmgr/db.py). Elsewhere (PostgreSQL, a read request, a request whose
    transaction has begun already) the block runs in the request's transaction as before."""
    session = db.session()
    if (
        not sqlite_begin_immediate.get()
        or session.in_transaction()
        or session.get_bind().dialect.name != "sqlite"
    ):
        yield
        return
    reset = sqlite_begin_immediate.set(False)
    try:
        yield
    finally:
        sqlite_begin_immediate.reset(reset)
    if session.in_transaction():
        # The read transaction wrote nothing: its commit only ends it (the audit listener's
        # before_commit finds no change and no pending row).
        expire, session.expire_on_commit = session.expire_on_commit, False
        try:
            session.commit()
        finally:
            session.expire_on_commit = expire


class BadInput(ValueError):
    """Input refused before any view sees it."""


def _check_text(value: str) -> None:
    if "\x00" in value:
        raise BadInput("NUL characters are not accepted.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadInput("Text must be valid Unicode (a lone surrogate was sent).") from exc


def _check_json_value(value: Any, depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        raise BadInput(f"JSON nested deeper than {MAX_JSON_DEPTH} levels is not accepted.")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, list):
        for item in value:
            _check_json_value(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_json_value(item, depth + 1)


def check_request_input() -> None:
    """Query string, form fields and JSON bodies (every JSON media type, `application/*+json`
    included) hold no NUL, no lone surrogate, and JSON is not absurdly deep."""
    for _, values in request.args.lists():
        for value in values:
            _check_text(value)
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for _, values in request.form.lists():
            for value in values:
                _check_text(value)
    elif request.is_json:
        raw = request.get_data(cache=True)
        try:
            parsed = json.loads(raw)
        except RecursionError as exc:
            raise BadInput(
                f"JSON nested deeper than {MAX_JSON_DEPTH} levels is not accepted."
            ) from exc
        except ValueError:
            return  # malformed JSON: the schema layer answers 400 with the parser's message
        _check_json_value(parsed)


def register_request_hooks(app: Flask) -> None:
    from trialmgr.errors import Problem

    @app.before_request
    def refuse_bad_input() -> None:
        try:
            check_request_input()
        except BadInput as exc:
            raise Problem(str(exc), title="Bad request") from exc

    @app.before_request
    def choose_transaction_mode() -> None:
        # SQLite: requests that may write take the write lock at BEGIN (see db.py).
        sqlite_begin_immediate.set(request.method not in ("GET", "HEAD", "OPTIONS"))

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if app.config["PRODUCTION"]:
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        # Pages, API answers and downloads (CSV, letters, reports) hold trial data: no
        # shared or browser cache keeps them. Vendored static files may be cached.
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.teardown_request
    def rollback_leftovers(exc: BaseException | None) -> None:
        if exc is not None:
            db.session.rollback()
        sqlite_begin_immediate.set(True)
