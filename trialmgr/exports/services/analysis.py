"""The de-identified analysis archive: one tidy CSV per domain (one row per observation),
two aggregate tables with small cells suppressed, the data dictionary of every column and a
README stating the method.

- Subjects appear by their pseudonymous code only; of the birth date, the year alone.
- Every date and instant of a subject is moved by that subject's secret offset
  (services/deid.py); study days are computed on the real dates, so they stay exact.
- Free text (verbatim terms, narratives, notes, reasons) is left out unless asked for and
  confirmed.
- Aggregate tables give any count below 5 as "<5".

Each table is streamed from the database into the archive (rows read in batches), so memory
does not grow with the trial."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from trialmgr.enrollment.models import Cohort, Subject, Trial
from trialmgr.exports.services import deid, dictionary
from trialmgr.exports.services.analysis_rows import text_cell
from trialmgr.exports.services.analysis_tables import TABLES, Col, Table
from trialmgr.exports.services.files import HashingSink
from trialmgr.exports.services.roster import roster
from trialmgr.extensions import db
from trialmgr.partners.models import Site
from trialmgr.safety.models import AdverseEvent


def _subjects_aggregate(trial: Trial) -> Iterator[list[Any]]:
    query = (
        sa.select(Site.code, Cohort.label, Subject.status, sa.func.count())
        .join(Site, Site.id == Subject.site_id)
        .join(Cohort, Cohort.id == Subject.cohort_id)
        .where(Subject.trial_id == trial.id)
        .group_by(Site.code, Cohort.label, Subject.status)
        .order_by(Site.code, Cohort.label, Subject.status)
    )
    for site, cohort, status, n in db.session.execute(query):
        yield [site, cohort, status, deid.small_cell(n)]


def _ae_aggregate(trial: Trial) -> Iterator[list[Any]]:
    per_subject = (
        sa.select(
            AdverseEvent.soc,
            AdverseEvent.cohort_id,
            sa.func.max(AdverseEvent.grade).label("worst"),
            sa.func.count().label("events"),
        )
        .where(AdverseEvent.trial_id == trial.id)
        .group_by(AdverseEvent.subject_id, AdverseEvent.soc, AdverseEvent.cohort_id)
        .subquery()
    )
    query = (
        sa.select(
            per_subject.c.soc,
            per_subject.c.worst,
            Cohort.label,
            sa.func.count(),
            sa.func.sum(per_subject.c.events),
        )
        .join(Cohort, Cohort.id == per_subject.c.cohort_id)
        .group_by(per_subject.c.soc, per_subject.c.worst, Cohort.label)
        .order_by(per_subject.c.soc, per_subject.c.worst, Cohort.label)
    )
    for soc, worst, cohort, subjects, events in db.session.execute(query):
        small = subjects < deid.SMALL
        yield [
            text_cell(soc),
            worst,
            cohort,
            deid.small_cell(subjects),
            deid.SUPPRESSED if small else deid.small_cell(int(events)),
        ]


AGGREGATES = (
    (
        "aggregate_subjects.csv",
        "Subjects by site, cohort and status",
        ["site", "cohort", "status", "subjects"],
        _subjects_aggregate,
    ),
    (
        "aggregate_adverse_events.csv",
        "Subjects and events by system organ class, worst grade and cohort",
        ["soc", "worst_grade", "cohort", "subjects", "events"],
        _ae_aggregate,
    ),
)


# --- writing ------------------------------------------------------------------------------


_BATCH = 1000


def _write_csv(archive: zipfile.ZipFile, name: str, header: list[str], rows: Iterable[Any]) -> int:
    count = 0
    rows = iter(rows)
    with archive.open(name, "w", force_zip64=True) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(header)
        # a batch of rows a call (None as "", dates as ISO: their str())
        while batch := list(islice(rows, _BATCH)):
            writer.writerows(batch)
            count += len(batch)
        text.flush()
        text.detach()
    return count


def columns(table: Table, free_text: bool) -> list[Col]:
    return [c for c in table.columns if free_text or not c.free_text]


def dictionary_rows(trial: Trial, free_text: bool) -> Iterator[list[Any]]:
    """The archive's data dictionary: each column's label, type, unit and code list, from
    the data-dictionary variable it carries where it has one."""
    variables = {(v.domain, v.name): v for v in dictionary.variables(trial)}
    for table in TABLES:
        for col in columns(table, free_text):
            var = variables.get(col.source) if col.source else None
            label = col.label or (var.label if var else col.name)
            kind = col.type or (var.type if var else "string")
            if col.shifted:
                kind += " (shifted per subject)"
            unit = col.unit or (var.unit if var and var.unit else "")
            codes = var.codelist if var else {}
            yield [
                table.file,
                col.name,
                label,
                kind,
                unit,
                "; ".join(f"{k}={v}" for k, v in codes.items()),
            ]
    for file, label, header, _ in AGGREGATES:
        for name in header:
            yield [file, name, f"{label}: {name}", "string or integer", "", ""]


README = """# {code}: de-identified analysis export

Trial {code} ({title}). Generated {generated} UTC. Free text {free_text}.

## Files

{files}
- `aggregate_subjects.csv`, `aggregate_adverse_events.csv`: counts; any count below 5 is
  given as "<5" (and a row's event count too when its subjects are fewer than 5).
- `data_dictionary.csv`: every column: file, variable, label, type, unit, code list.

## Method

- Subjects are known by their pseudonymous codes only (site code and a random part,
  never derived from a name or birth date). Of the birth date only the year is held.
- Every date and date-time of a subject is shifted by the same number of days, drawn at
  random for that subject (30 to 365 days, earlier or later, never zero) and kept secret in
  the database. Intervals within a subject are exact; re-exports shift the same way.
  Dates of different subjects cannot be compared.
- Study days (`*_day`, dosing day 0) are computed on the real dates in the site's time
  zone, so they are exact.
- Free-text fields (verbatim AE terms, narratives, visit notes, withdrawal and end
  reasons) are left out unless the export was asked for with them and confirmed.
- Layout: long and tidy, one row per observation; booleans `true`/`false`; dates ISO 8601;
  laboratory values in the canonical unit of each analyte.
"""


def write(
    sink: HashingSink, trial: Trial, free_text: bool, generated: datetime, offsets: dict[int, int]
) -> dict[str, int]:
    """Write the archive with these date offsets; returns row counts per file. Subjects
    without an offset (enrolled while the export runs) wait for the next export."""
    subjects = {k: v for k, v in roster(trial.id).items() if k in offsets}
    counts: dict[str, int] = {}
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:  # type: ignore[call-overload]
        for table in TABLES:
            cols = columns(table, free_text)
            rows: Iterable[Any] = table.rows(trial, subjects, offsets)
            if len(cols) < len(table.columns):  # free text left out
                rows = map(itemgetter(*(table.columns.index(c) for c in cols)), rows)
            counts[table.file] = _write_csv(archive, table.file, [c.name for c in cols], rows)
        for file, _, header, build in AGGREGATES:
            counts[file] = _write_csv(archive, file, header, build(trial))
        header = ["file", "variable", "label", "type", "unit", "codelist"]
        counts["data_dictionary.csv"] = _write_csv(
            archive, "data_dictionary.csv", header, dictionary_rows(trial, free_text)
        )
        files = "\n".join(f"- `{t.file}`: {t.label.lower()}." for t in TABLES)
        archive.writestr(
            "README.md",
            README.format(
                code=trial.code,
                title=trial.title,
                generated=generated.strftime("%Y-%m-%d %H:%M"),
                free_text="included (confirmed by the caller)" if free_text else "left out",
                files=files,
            ),
        )
    return counts
