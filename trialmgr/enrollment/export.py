"""The screening log as CSV."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response

from trialmgr.export import csv_response
from trialmgr.extensions import db

HEADER = [
    "site",
    "number",
    "screened_on",
    "trial_id",
    "orphacode",
    "birth_year",
    "sex",
    "outcome",
    "failed_criteria",
    "fail_reason",
]


def screening_csv(query: sa.Select[Any]) -> Response:
    rows = (
        (
            s.site.code,
            s.number,
            s.screened_on.isoformat(),
            s.trial_id,
            s.orphacode,
            s.birth_year,
            s.sex,
            s.outcome,
            " ".join(s.failed_criteria or []),
            s.fail_reason,
        )
        for s in db.session.execute(query).scalars()
    )
    return csv_response("screening-log.csv", HEADER, rows)
