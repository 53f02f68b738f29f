"""The screening log as CSV: for people (the page) with human headers, codes and the
reader's date format; for the API with its field names, as before."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from flask import Response
from sqlalchemy.orm import selectinload

from trialmgr.enrollment.models import Screening
from trialmgr.enrollment.services import subjects as subjects_service
from trialmgr.export import csv_response, dated_filename
from trialmgr.extensions import db
from trialmgr.templating import date_formatter

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
HUMAN_HEADER = [
    "Trial",
    "Site",
    "Screening number",
    "Screened on",
    "ORPHAcode",
    "Birth year",
    "Sex",
    "Outcome",
    "Unmet criteria",
    "Reason",
    "Subject",
]
BATCH = 500


def _screenings(query: sa.Select[Any]) -> Iterator[Sequence[Screening]]:
    """The screenings in batches, with their site and trial loaded per batch."""
    query = query.options(selectinload(Screening.site), selectinload(Screening.trial))
    result = db.session.execute(query.execution_options(yield_per=BATCH)).scalars()
    yield from result.partitions()


def screening_csv(query: sa.Select[Any]) -> Response:
    def rows() -> Iterator[tuple[Any, ...]]:
        for batch in _screenings(query):
            for s in batch:
                yield (
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

    return csv_response("screening-log.csv", HEADER, rows, bom=False)


def screening_csv_for_people(query: sa.Select[Any], filename: str) -> Response:
    """Trial, site and subject codes, outcomes in words, dates in the reader's format (taken
    now: the rows are written after the request's session has ended)."""
    format_date = date_formatter()

    def rows() -> Iterator[tuple[Any, ...]]:
        for batch in _screenings(query):
            codes = subjects_service.codes_by_screening([s.id for s in batch])
            for s in batch:
                yield (
                    s.trial.code,
                    s.site.code,
                    s.number,
                    format_date(s.screened_on),
                    s.orphacode,
                    s.birth_year,
                    s.sex,
                    s.outcome.replace("_", " "),
                    " ".join(s.failed_criteria or []),
                    s.fail_reason,
                    codes.get(s.id, ""),
                )

    return csv_response(filename, HUMAN_HEADER, rows)


def screening_filename(trial_code: str | None, on: Any) -> str:
    return dated_filename("screening-log", on, trial_code or "all-trials")
