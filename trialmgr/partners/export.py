"""The partner directory as CSV."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response

from trialmgr.export import csv_response
from trialmgr.extensions import db

HEADER = [
    "id",
    "name",
    "short_name",
    "kind",
    "country",
    "contact_email",
    "website",
    "consortium_role",
    "active",
    "site_codes",
]


def partners_csv(query: sa.Select[Any]) -> Response:
    rows = (
        (
            p.id,
            p.name,
            p.short_name,
            p.kind,
            p.country,
            p.contact_email,
            p.website,
            p.consortium_role,
            "yes" if p.active else "no",
            " ".join(s.code for s in p.sites),
        )
        for p in db.session.execute(query).scalars()
    )
    return csv_response("partners.csv", HEADER, rows)
