"""The audit trail as CSV."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from flask import Response

from trialmgr.audit.chain import format_at
from trialmgr.export import csv_response
from trialmgr.extensions import db

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
