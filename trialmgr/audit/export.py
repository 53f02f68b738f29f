"""The audit trail as CSV."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import sqlalchemy as sa
from flask import Response

from trialmgr.audit import readable
from trialmgr.audit.chain import format_at
from trialmgr.export import csv_response, dated_filename
from trialmgr.extensions import db
from trialmgr.templating import date_formatter

HEADER = ["id", "at", "actor", "action", "entity", "entity_id", "changes", "reason", "hash"]


def audit_csv(query: sa.Select[Any]) -> Response:
    """The API's export: the stored fields as they are (ids, changes as JSON)."""

    def rows() -> Iterator[tuple[Any, ...]]:
        for e in db.session.execute(query.execution_options(yield_per=1000)).scalars():
            yield (
                e.id,
                format_at(e.at),
                e.actor,
                e.action,
                e.entity,
                e.entity_id,
                json.dumps(e.changes, sort_keys=True),
                e.reason,
                e.hash,
            )

    return csv_response("audit-trail.csv", HEADER, rows, bom=False)


READABLE_HEADER = [
    "Event",
    "When (UTC)",
    "Actor",
    "Action",
    "Record",
    "Field",
    "Before",
    "After",
    "Reason",
    "Hash",
]


def readable_audit_csv(query: sa.Select[Any], on: date) -> Response:
    """The page's export, as the page reads: records by their codes, fields by their labels,
    one row per changed field (dates in the reader's format, taken now: the rows are written
    after the request's session has ended)."""
    format_date = date_formatter()

    def rows() -> Iterator[tuple[Any, ...]]:
        result = db.session.execute(query.execution_options(yield_per=500)).scalars()
        for batch in result.partitions():
            for item in readable.readable(batch, format_date):
                e = item.event
                common = (e.id, format_at(e.at), e.actor, e.action, item.record)
                fields = [(c.label, c.old, c.new) for c in item.changes] or [("", "", "")]
                for field in fields:
                    yield (*common, *field, e.reason, e.hash)

    return csv_response(dated_filename("audit-trail", on), READABLE_HEADER, rows)
