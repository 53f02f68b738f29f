"""Adverse events as they stood at a report's data cut-off.

An event counts when it was entered before the cut-off day ended at its site, and it
counts as its version in force then: follow-up information recorded later (a grade
raised, seriousness added, a term corrected) is not in a report cut off before it. Every
version snapshots the clinical fields (`RECORD_FIELDS`); the current row is the latest.

Set-based, so the dashboard's aggregates run unchanged over it: the events not changed
since the cut-off are read from `adverse_event` as they are (the row's `updated_at` is
before the cut-off's end: every new version updates the row), the others take the fields
a version records from the version in force at the cut-off (the highest recorded before
its end). Fields no version records (ids, site, cohort, links) and the awareness instants
(which the reports do not count: the clocks carry their own) are the row's own.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from trialmgr.extensions import db
from trialmgr.safety.models import AdverseEvent, AdverseEventVersion
from trialmgr.safety.services.scope import CutOff

# Versioned fields and how to read each back from a version's JSON snapshot.
_TEXT = (
    "term",
    "pt_term",
    "pt_code",
    "soc",
    "causality",
    "aesi_category",
    "action_taken",
    "outcome",
    "narrative",
)
_BOOL = ("serious", "suspected", "expected", "susar", "aesi")
_DATES = ("onset_date", "resolution_date")


def _typed(data: Any, name: str, column: Any) -> Any:
    """One field of a snapshot with its column's type (dates are ISO strings in JSON:
    PostgreSQL casts them; SQLite stores dates as those same strings)."""
    if name in _TEXT:
        return data[name].as_string()
    if name in _BOOL:
        return data[name].as_boolean()
    if name == "grade":
        return data[name].as_integer()
    if name == "seriousness_criteria":
        return data[name].as_json()
    text = data[name].as_string()
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.cast(text, column.type)
    return sa.type_coerce(text, column.type)


def events_as_of(trial_id: int, cut_off: CutOff) -> Any:
    """The trial's adverse events at the cut-off, as an entity to select from (aliased
    AdverseEvent: `events.grade`, `select(events)` as with the table)."""
    table = AdverseEvent.__table__
    end = cut_off.end(table.c.site_id)
    entered = sa.and_(table.c.trial_id == trial_id, table.c.created_at < end)
    unchanged = sa.select(*table.c).where(entered, table.c.updated_at < end)
    version = AdverseEventVersion.__table__
    earlier = version.alias("earlier")
    in_force = (
        sa.select(sa.func.max(earlier.c.version))
        .where(earlier.c.adverse_event_id == table.c.id, earlier.c.recorded_at < end)
        .correlate(table)
        .scalar_subquery()
    )
    versioned = {
        *_TEXT,
        *_BOOL,
        *_DATES,
        "grade",
        "seriousness_criteria",
    }
    columns = [
        _typed(version.c.data, c.name, c).label(c.name)
        if c.name in versioned
        else (version.c.version.label("version") if c.name == "version" else c)
        for c in table.c
    ]
    changed = (
        sa.select(*columns)
        .select_from(table)
        .join(
            version,
            sa.and_(version.c.adverse_event_id == table.c.id, version.c.version == in_force),
        )
        .where(entered, table.c.updated_at >= end)
    )
    rows = sa.union_all(unchanged, changed).subquery("adverse_event_as_of")
    return aliased(AdverseEvent, rows, adapt_on_names=True)
