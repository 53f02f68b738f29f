"""The audit trail as CSV."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask import Response

from trialmgr.audit.chain import format_at
from trialmgr.export import csv_response
from trialmgr.extensions import db

HEADER = ["id", "at", "actor", "action", "entity", "entity_id", "changes", "reason", "hash"]


def audit_csv(query: sa.Select[Any]) -> Response:
    rows = (
        (
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
        for e in db.session.execute(query).scalars()
    )
    return csv_response("audit-trail.csv", HEADER, rows)
