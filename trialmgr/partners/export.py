"""The partner directory as CSV."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response

from trialmgr.export import csv_response
from trialmgr.extensions import db
from trialmgr.partners.services.directory import visible_sites_of

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


def partners_csv(actor: Any, query: sa.Select[Any]) -> Response:
    """Site codes are listed only for the sites the actor may see."""
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
            " ".join(s.code for s in visible_sites_of(actor, p)),
        )
        for p in db.session.execute(query).scalars()
    )
    return csv_response("partners.csv", HEADER, rows)
