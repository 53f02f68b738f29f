"""The audit trail as a monitor reads it: records by their codes ("subject S01-K7QM4",
"site IT01"), fields by their labels, references by the code of what they point at, and the
subject-code filter.

The audit knows no domain: each domain registers how its records read (`register`) and
which of its records belong to a subject (`subject_records`), when it is imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from trialmgr.audit.models import AuditEvent
from trialmgr.db import Base
from trialmgr.extensions import db

# ids (as stored: text) -> {id: name}, read in one query per entity and page.
Namer = Callable[[list[str]], dict[str, str]]


@dataclass
class Reading:
    noun: str
    namer: Namer | None = None
    labels: dict[str, str] = field(default_factory=dict)
    # field -> the entity its value points at ("site_id" -> "site")
    references: dict[str, str] = field(default_factory=dict)
    # a JSON field holding another record's fields -> that record's entity, whose labels
    # and column order its keys are shown with (a version's "data" -> "adverse_event")
    nested: dict[str, str] = field(default_factory=dict)


READINGS: dict[str, Reading] = {}
# subject code -> the (entity, ids) of the records about that subject
SUBJECT_SCOPES: list[Callable[[str], list[tuple[str, list[str]]]]] = []


def int_ids(ids: list[str]) -> list[int]:
    """The ids (as stored: text) that are integers, for a namer's query."""
    return [int(i) for i in ids if i.isdigit()]


def named_by(model: Any, *columns: Any, joins: Sequence[tuple[Any, Any]] = ()) -> Namer:
    """Records of `model` named by `columns` of the rows they belong to, joined by `joins`
    (target, on clause), in order, separated by spaces: "IT01-3SFY6 Arthralgia v2"."""

    def name(ids: list[str]) -> dict[str, str]:
        query = sa.select(model.id, *columns)
        for target, on in joins:
            query = query.join(target, on)
        query = query.where(model.id.in_(int_ids(ids)))
        return {str(row[0]): " ".join(str(v) for v in row[1:]) for row in db.session.execute(query)}

    return name


def register(
    entity: str,
    noun: str,
    namer: Namer | None = None,
    labels: dict[str, str] | None = None,
    references: dict[str, str] | None = None,
    nested: dict[str, str] | None = None,
) -> None:
    READINGS[entity] = Reading(noun, namer, labels or {}, references or {}, nested or {})


def subject_records(fn: Callable[[str], list[tuple[str, list[str]]]]) -> None:
    SUBJECT_SCOPES.append(fn)


def records_of_subject(code: str) -> list[tuple[str, list[str]]]:
    """Every registered (entity, ids) about the subject with this code (none: unknown code)."""
    found = []
    for scope in SUBJECT_SCOPES:
        found += [(entity, ids) for entity, ids in scope(code.strip().upper()) if ids]
    return found


# table -> {column: its place in the mapper's order}: the order a record's changes are shown
# in (they are stored with sorted keys, decision 0027). Worked out once.
_COLUMN_ORDER: dict[str, dict[str, int]] = {}


def _in_column_order(entity: str, changes: dict[str, Any]) -> list[tuple[str, Any]]:
    """The changes of a record in its columns' order (as its form lists them); keys that
    are not columns (events that are not row changes) after them, in stored order."""
    if not _COLUMN_ORDER:
        for mapper in Base.registry.mappers:
            table = getattr(mapper.local_table, "name", None)
            if table is not None:
                order = {attr.key: n for n, attr in enumerate(mapper.column_attrs)}
                _COLUMN_ORDER.setdefault(table, order)
    order = _COLUMN_ORDER.get(entity, {})
    last = len(order)
    return sorted(changes.items(), key=lambda item: order.get(item[0], last))


def _label(field_name: str) -> str:
    return field_name.removesuffix("_id").replace("_", " ").capitalize()


@dataclass
class Change:
    label: str
    old: str
    new: str


@dataclass
class ReadableEvent:
    event: AuditEvent
    record: str
    changes: list[Change]


def _fields(value: dict[str, Any], entity: str | None) -> list[tuple[str, Any]]:
    """A nested record's fields: labelled and in the column order of `entity`, the record
    its keys describe; otherwise by generic labels, as stored."""
    if entity is None:
        return [(_label(k), v) for k, v in value.items()]
    labels = READINGS[entity].labels if entity in READINGS else {}
    return [(labels.get(k) or _label(k), v) for k, v in _in_column_order(entity, value)]


def _text(
    value: Any,
    names: dict[str, str] | None,
    format_date: Callable[[Any], str],
    format_instant: Callable[[datetime], str] | None = None,
    nested: str | None = None,
) -> str:
    if value is None or value == "":
        return "—"
    if names is not None and not isinstance(value, (list, dict)):
        return names.get(str(value), f"#{value}")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (date, datetime)):
        return format_date(value)
    if isinstance(value, str) and len(value) == 10 and value[4:5] == "-" and value[7:8] == "-":
        try:
            return format_date(date.fromisoformat(value))
        except ValueError:
            return value
    if format_instant is not None and isinstance(value, str) and _INSTANT.fullmatch(value):
        # an instant as the audit stores it (UTC, "2026-12-01T18:21:09.480082Z")
        return format_instant(datetime.fromisoformat(value))
    if isinstance(value, list):
        return ", ".join(_text(v, names, format_date, format_instant) for v in value) or "—"
    if isinstance(value, dict):
        return (
            "; ".join(
                f"{label}: {_text(v, None, format_date, format_instant)}"
                for label, v in _fields(value, nested)
            )
            or "—"
        )
    return str(value)


_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")


def _split(value: Any) -> tuple[Any, Any, bool]:
    if isinstance(value, dict) and set(value) <= {"old", "new"} and value:
        return value.get("old"), value.get("new"), True
    return None, value, False


def readable(
    events: Iterable[AuditEvent],
    format_date: Callable[[Any], str],
    format_instant: Callable[[datetime], str] | None = None,
) -> list[ReadableEvent]:
    """The events with their records named and their changes labelled, old beside new;
    dates in the reader's format, and instants too when `format_instant` is given (the page;
    the CSV keeps them as stored, in UTC)."""
    events = list(events)
    wanted: dict[str, set[str]] = {}
    for e in events:
        reading = READINGS.get(e.entity)
        if reading is None:
            continue
        if e.entity_id is not None:
            wanted.setdefault(e.entity, set()).add(str(e.entity_id))
        for name, value in (e.changes or {}).items():
            target = reading.references.get(name)
            if target:
                for v in _split(value)[:2]:
                    if v is not None and not isinstance(v, (list, dict)):
                        wanted.setdefault(target, set()).add(str(v))
    names: dict[str, dict[str, str]] = {}
    for entity, ids in wanted.items():
        reading = READINGS.get(entity)
        if reading is not None and reading.namer is not None:
            names[entity] = reading.namer(sorted(ids))
    out = []
    for e in events:
        reading = READINGS.get(e.entity) or Reading(e.entity.replace("_", " "))
        own = names.get(e.entity, {})
        record = reading.noun
        if e.entity_id is not None:
            record += " " + own.get(str(e.entity_id), f"#{e.entity_id}")
        changes = []
        for name, value in _in_column_order(e.entity, e.changes or {}):
            old, new, paired = _split(value)
            target = reading.references.get(name)
            lookup = names.get(target, {}) if target else None
            label = reading.labels.get(name) or _label(name)
            nested = reading.nested.get(name)
            changes.append(
                Change(
                    label,
                    _text(old, lookup, format_date, format_instant, nested) if paired else "",
                    _text(new, lookup, format_date, format_instant, nested),
                )
            )
        out.append(ReadableEvent(e, record, changes))
    return out
