"""The adverse-event list as CSV (cells that a spreadsheet would run as formulas are
escaped by `csv_response`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response

from trialmgr.export import csv_response
from trialmgr.extensions import db
from trialmgr.safety.services.adverse_events import review_state

HEADER = [
    "id",
    "version",
    "trial_id",
    "site",
    "subject",
    "cohort_id",
    "term",
    "pt_term",
    "pt_code",
    "soc",
    "onset_date",
    "resolution_date",
    "grade",
    "serious",
    "seriousness_criteria",
    "causality",
    "suspected",
    "expected",
    "susar",
    "aesi",
    "aesi_category",
    "action_taken",
    "outcome",
    "site_awareness_at",
    "sponsor_awareness_at",
    "review",
]


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def adverse_events_csv(query: sa.Select[Any]) -> Response:
    def rows() -> Any:
        return (
            (
                ae.id,
                ae.version,
                ae.trial_id,
                ae.subject.site.code,
                ae.subject.code,
                ae.cohort_id,
                ae.term,
                ae.pt_term,
                ae.pt_code,
                ae.soc,
                _iso(ae.onset_date),
                _iso(ae.resolution_date),
                ae.grade,
                ae.serious,
                " ".join(ae.seriousness_criteria or []),
                ae.causality,
                ae.suspected,
                ae.expected,
                ae.susar,
                ae.aesi,
                ae.aesi_category,
                ae.action_taken,
                ae.outcome,
                _iso(ae.site_awareness_at),
                _iso(ae.sponsor_awareness_at),
                review_state(ae),
            )
            for ae in db.session.execute(query).scalars()
        )

    return csv_response("adverse-events.csv", HEADER, rows)
