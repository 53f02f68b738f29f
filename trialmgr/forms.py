"""Pages' forms: read through the same marshmallow schemas the API uses, and submitted
through one helper.

WTForms is only there for CSRF; a form's fields are loaded into a schema, so a rule about
a field is written once for the API and the page. Every page that writes calls `submit`:
it runs the operation, and on a refusal settles the transaction the one way the API does
(roll back, keeping the writes a refusal must keep) before the page is re-rendered with
the refusal, so the page shows what is stored, never what was half-written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, TypeVar

from marshmallow import Schema, ValidationError, fields
from werkzeug.datastructures import MultiDict

from trialmgr.errors import Problem
from trialmgr.lifecycle import settle_refusal

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Refusal:
    """Why a form was not saved: shown above the page and next to the form's fields."""

    form: str
    status: int
    title: str
    detail: str
    errors: dict[str, Any] = dataclass_field(default_factory=dict)
    # A rule's refusal (409, or a 422 raised by a service) has a sentence of its own.
    by_rule: bool = True

    def field_errors(self) -> dict[str, Any]:
        """The errors, with a rule's sentence under `_schema` (forms showing one list)."""
        if not self.by_rule:
            return dict(self.errors)
        return {"_schema": [self.detail], **self.errors}


def submit(form: str, act: Callable[[], T]) -> T | Refusal:
    """Run one form's operation. Success returns its result (the request commits it);
    a refusal (field validation or a rule) returns a `Refusal` after settling the attempt.
    Not found and "your role may not" are not form errors: they propagate to the error
    pages."""
    try:
        return act()
    except ValidationError as exc:
        settle_refusal(exc)
        return refusal_of(form, exc)
    except Problem as exc:
        if not exc.form_error:
            raise
        settle_refusal(exc)
        return refusal_of(form, exc)


def refusal_of(form: str, exc: ValidationError | Problem) -> Refusal:
    """The one way a page turns a refused operation into what it shows (the error summary,
    field errors, a flash): library wording in plain sentences, and the service's dates in
    the reader's format and, for instants, on the site's clock with its zone label
    (`templating.page_text`). The API shows the same refusal with ISO dates."""
    from trialmgr.templating import page_messages, page_text

    if isinstance(exc, ValidationError):
        messages = plain_messages(exc.normalized_messages())
        detail = "Please correct the highlighted fields."
        return Refusal(form, 422, "Not saved", detail, messages, by_rule=False)
    errors = page_messages(dict(exc.field_messages))
    return Refusal(form, exc.status, exc.title, page_text(exc.message), errors)


# marshmallow's own wording, as a person filling in a form would say it. The API keeps the
# library's messages (clients may match them); pages show these.
_PLAIN: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), text)
    for p, text in [
        (r"Missing data for required field\.", "This field is required."),
        (r"Field may not be null\.", "This field is required."),
        (r"Not a valid integer\.", "Enter a whole number, in digits (for example 12)."),
        (r"Not a valid number\.", "Enter a number, in digits (for example 2.5)."),
        (r"Number too large\.", "This number is too large."),
        (r"Special numeric values .*", "Enter a number, in digits (for example 2.5)."),
        (r"Not a valid date\.", "Enter a real date, as year-month-day (for example 2026-02-10)."),
        (r"Not a valid (naive |aware )?datetime\.", "Enter a real date and time."),
        (r"Not a valid time\.", "Enter a real time, as hours:minutes (for example 09:30)."),
        (r"Not a valid email address\.", "Enter an e-mail address such as name@example.org."),
        (r"Not a valid boolean\.", "Choose yes or no."),
        (
            r"Not a valid (string|list|mapping type|tuple|utf-8 string)\.",
            "This value is not valid.",
        ),
        (r"Unknown field\.", "This form does not have this field."),
        (r"Must be one of: (.*)\.", r"Choose one of: \1."),
        (r"One or more of the choices you made was not in: (.*)\.", r"Choose only from: \1."),
        (r"Shorter than minimum length (\d+)\.", r"Use at least \1 characters."),
        (r"Longer than maximum length (\d+)\.", r"Use at most \1 characters."),
        (r"Length must be between (\d+) and (\d+)\.", r"Use from \1 to \2 characters."),
        (r"Length must be (\d+)\.", r"Use exactly \1 characters."),
        (
            r"Must be greater than or equal to (\S+) and less than or equal to (\S+)\.",
            r"Enter a value from \1 to \2.",
        ),
        (r"Must be greater than or equal to (\S+)\.", r"Enter \1 or more."),
        (r"Must be less than or equal to (\S+)\.", r"Enter \1 or less."),
        (r"Must be greater than (\S+)\.", r"Enter more than \1."),
        (r"Must be less than (\S+)\.", r"Enter less than \1."),
        (r"String does not match expected pattern\.", "This is not in the expected format."),
        (r"Invalid (value|input|input type|type)\.", "This value is not valid."),
    ]
]


def plain_message(message: str) -> str:
    """One marshmallow message in plain words (messages of our own pass unchanged)."""
    for pattern, text in _PLAIN:
        if pattern.fullmatch(message):
            return pattern.sub(text, message)
    return message


def plain_messages(messages: Any) -> Any:
    """A ValidationError's messages (nested dicts and lists) with `plain_message` applied."""
    if isinstance(messages, str):
        return plain_message(messages)
    if isinstance(messages, dict):
        return {key: plain_messages(value) for key, value in messages.items()}
    if isinstance(messages, list):
        return [plain_messages(m) for m in messages]
    return messages


def rehearse(form: str, act: Callable[[], T], describe: Callable[[T], R]) -> R | Refusal:
    """Run one form's operation inside a savepoint, describe what it did, and roll it back:
    the confirmation of an irreversible step restates what the service would really do (or
    shows its refusal) without keeping anything. The audit rows gathered in the savepoint
    are dropped with it."""
    from trialmgr.extensions import db

    savepoint = db.session.begin_nested()
    try:
        result = act()
        db.session.flush()
        description = describe(result)
    except ValidationError as exc:
        savepoint.rollback()
        return refusal_of(form, exc)
    except Problem as exc:
        savepoint.rollback()
        if not exc.form_error:
            raise
        return refusal_of(form, exc)
    savepoint.rollback()
    return description


def confirmed(form: MultiDict[str, str]) -> bool:
    """Whether the user has seen the restated consequences and confirmed them."""
    return form.get("confirmed") == "yes"


def cancelled(form: MultiDict[str, str]) -> bool:
    """Whether the user cancelled a confirmation: the form comes back as they typed it,
    and nothing runs (not even a rehearsal)."""
    return form.get("confirmed") == "no"


def returned(form: str) -> Refusal:
    """A form given back to its user filled as they typed it, with nothing to report (a
    cancelled confirmation): the pages' forms take their typed values from the refusal of
    the form that was submitted, and an empty one shows no error summary."""
    return Refusal(form, 200, "", "", {}, by_rule=False)


# Fields a confirmation never carries: the form's token, the confirmation itself, and a
# password (a page must not hold one in a hidden input).
_NOT_REPLAYED = {"csrf_token", "confirmed", "password"}


def replay_fields(form: MultiDict[str, str]) -> list[tuple[str, str]]:
    """The submitted fields, to carry through a confirmation page unchanged."""
    return [(k, v) for k, v in form.items(multi=True) if k not in _NOT_REPLAYED]


def typed_values(form: MultiDict[str, str]) -> dict[str, str]:
    """What the user typed, to put back in a re-rendered form (a checkbox's last value wins)."""
    return {name: form.getlist(name)[-1] for name in form if name not in _NOT_REPLAYED}


_TRUE = {"on", "true", "1", "yes", "y"}
_INTEGER = re.compile(r"-?[0-9]{1,12}")


def _value(field: fields.Field, raw: str) -> Any:
    """A form's text as the schema's strict fields expect it: digits become integers
    for Integer fields; anything else stays text for the schema to judge."""
    text = raw.strip()
    if isinstance(field, fields.Integer) and _INTEGER.fullmatch(text):
        return int(text)
    return raw if isinstance(field, fields.String) else text


def load_form(
    schema: Schema,
    form: MultiDict[str, str],
    extra: dict[str, Any] | None = None,
    clearable: bool = False,
) -> Any:
    """Empty inputs count as absent (on an edit form, `clearable`, an emptied optional field
    means None); a checkbox follows a hidden "false" input of the same name, so the last
    value wins; a list field present with only empty values clears the list."""
    data: dict[str, Any] = {}
    for name, field in schema.fields.items():
        if field.dump_only:
            continue
        key = field.data_key or name
        if key not in form:
            continue
        if isinstance(field, fields.List):
            inner = field.inner
            data[key] = [_value(inner, v) for v in form.getlist(key) if v.strip() != ""]
        elif isinstance(field, fields.Boolean):
            data[key] = form.getlist(key)[-1].strip().lower() in _TRUE
        else:
            raw = form.get(key, "")
            if raw.strip() != "":
                data[key] = _value(field, raw)
            elif clearable and field.allow_none:
                data[key] = None
    data.update(extra or {})
    return schema.load(data)


# --- list pages -------------------------------------------------------------------

PAGE_SIZE = 50
MAX_PAGE = 100_000


def filter_args() -> dict[str, str]:
    """The list's filters as given in the query string, without the page and empty ones."""
    from flask import request

    return {k: v for k, v in request.args.items() if k != "page" and v.strip() != ""}


def load_filters(schema: Schema) -> tuple[dict[str, Any], dict[str, Any]]:
    """A list page's filters through its schema; bad ones are reported and ignored."""
    from marshmallow import ValidationError

    try:
        return load_form(schema, MultiDict(filter_args())), {}
    except ValidationError as exc:
        return {}, plain_messages(exc.normalized_messages())


PAGE_SIZES = (25, 50, 100, 200)


def page_size_arg(default: int = PAGE_SIZE) -> int:
    """`?page_size=` when it is one of the offered sizes, else the default."""
    from flask import request

    size = request.args.get("page_size", type=int)
    return size if size in PAGE_SIZES else default


def page_of(
    query: Any, page_size: int | None = None, *, mappings: bool = False
) -> tuple[list[Any], int, bool]:
    """The `?page=` of a list: its rows (the entity each selects; with `mappings`, each row's
    columns by name), the page number, whether another page follows. The page size is the
    `?page_size=` chosen on the page (one of PAGE_SIZES)."""
    from flask import request

    from trialmgr.extensions import db

    page_size = page_size or page_size_arg()
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)
    rows = db.session.execute(query.limit(page_size + 1).offset((page - 1) * page_size))
    items = list(rows.mappings() if mappings else rows.scalars())
    return items[:page_size], page, len(items) > page_size


@dataclass
class Listing:
    """One page of a sortable list, with what its header shows: the total, the sort, the
    page size."""

    items: list[Any]
    page: int
    has_next: bool
    total: int
    page_size: int
    sort: str
    direction: str
    sort_keys: tuple[str, ...]
    sizes: tuple[int, ...] = PAGE_SIZES


def listing(
    query: Any,
    sorts: dict[str, tuple[Any, ...]],
    default: str,
    default_direction: str = "asc",
    tiebreak: Any = None,
) -> Listing:
    """Sort a list's query server-side by `?sort=` (only the keys of `sorts`, each naming its
    columns: anything else falls back to `default`) and `?dir=asc|desc`, count it, and take
    the requested page. `tiebreak` (a unique column) keeps pages stable."""
    import sqlalchemy as sa
    from flask import request

    from trialmgr.extensions import db

    key = request.args.get("sort", default)
    if key not in sorts:
        key = default
    direction = request.args.get("dir", default_direction if key == default else "asc")
    if direction not in ("asc", "desc"):
        direction = "asc"
    order = [c.desc() if direction == "desc" else c.asc() for c in sorts[key]]
    if tiebreak is not None:
        order.append(tiebreak.desc() if direction == "desc" else tiebreak.asc())
    total = db.session.execute(
        sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
    ).scalar_one()
    size = page_size_arg()
    items, page, has_next = page_of(query.order_by(None).order_by(*order), size)
    return Listing(items, page, has_next, int(total), size, key, direction, tuple(sorts))
