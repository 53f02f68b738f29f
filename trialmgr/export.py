"""CSV downloads for lists (partner directory, screening log, audit trail, safety listings).

A download streams: rows are read from the database and written out in chunks as the client
takes them, never gathered in memory first. Give `rows` as a callable that runs the query
when the response starts (a query run before the view returns would be closed by the
request's commit); an iterable of rows already built is streamed as it is.

Exports for people (the pages) open correctly in spreadsheet programs: UTF-8 with a byte
order mark (Excel otherwise reads accented names as Latin-1), human column headers, codes
rather than internal ids, and a dated file name. Every cell that a spreadsheet would run as
a formula is escaped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from typing import Any

from flask import Response, current_app

# Spreadsheet programs run cells that start with these as formulas.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
# Flush the buffer to the client once it holds this many characters.
CHUNK = 64 * 1024

Rows = Iterable[Sequence[Any]] | Callable[[], Iterable[Sequence[Any]]]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def dated_filename(subject: str, on: date, prefix: str | None = None) -> str:
    """`GT-01_screening-log_2026-12-01.csv`: what, for which trial, as of which day (ISO, so
    the files sort by date)."""
    parts = [p for p in (prefix, subject, on.isoformat()) if p]
    return "_".join(parts) + ".csv"


def _chunks(header: Sequence[str], rows: Rows, bom: bool) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if bom:
        buffer.write(BOM)
    writer.writerow(header)
    for row in rows() if callable(rows) else rows:
        writer.writerow([_cell(v) for v in row])
        if buffer.tell() >= CHUNK:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_response(filename: str, header: Sequence[str], rows: Rows, bom: bool = True) -> Response:
    """A streamed CSV download (`bom`: for people opening it in a spreadsheet; the API's
    machine-readable exports leave it out)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def body() -> Iterator[str]:
        # Rows are read after the request has ended, in an application context of their
        # own (its own database session). WSGI servers (and the test client) take a first
        # item as soon as the response starts: it is empty, so that context is entered only
        # when the download is actually read, and left when it ends or is closed.
        yield ""
        with app.app_context():
            yield from _chunks(header, rows, bom)

    response = Response(body(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
