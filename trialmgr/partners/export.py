"""The partner directory as CSV: for people (the page) with human headers and a dated file
name; for the API with its field names, as before."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import sqlalchemy as sa
from flask import Response
from sqlalchemy.orm import selectinload

from trialmgr.auth.policies import site_scope
from trialmgr.export import csv_response, dated_filename
from trialmgr.extensions import db
from trialmgr.partners.models import Partner

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
HUMAN_HEADER = [
    "Name",
    "Short name",
    "Kind",
    "Country",
    "Contact e-mail",
    "Website",
    "Consortium role",
    "Active",
    "Sites",
]


def _rows(
    visible: list[int] | None, query: sa.Select[Any], for_people: bool
) -> Iterator[tuple[Any, ...]]:
    """Site codes are listed only for the sites the actor may see (`visible`: None, all)."""
    query = query.options(selectinload(Partner.sites)).execution_options(yield_per=500)
    for p in db.session.execute(query).scalars():
        shown = (s for s in p.sites if visible is None or s.id in visible)
        sites = " ".join(s.code for s in shown)
        active = "yes" if p.active else "no"
        common = (p.name, p.short_name)
        if for_people:
            kind = p.kind.replace("_", " ")
            yield (
                *common,
                kind,
                p.country,
                p.contact_email,
                p.website,
                p.consortium_role,
                active,
                sites,
            )
        else:
            yield (
                p.id,
                *common,
                p.kind,
                p.country,
                p.contact_email,
                p.website,
                p.consortium_role,
                active,
                sites,
            )


# The rows are read while the download streams, after the request's session has ended: what
# they need of the reader (the sites they see) is taken before.
def partners_csv(actor: Any, query: sa.Select[Any]) -> Response:
    visible = site_scope(actor)
    return csv_response("partners.csv", HEADER, lambda: _rows(visible, query, False), bom=False)


def partners_csv_for_people(actor: Any, query: sa.Select[Any], on: date) -> Response:
    filename, visible = dated_filename("partners", on), site_scope(actor)
    return csv_response(filename, HUMAN_HEADER, lambda: _rows(visible, query, True))
