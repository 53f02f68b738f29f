"""The rows of the analysis archive's tables, streamed from the database (read in batches,
never a whole table in memory), with each subject's dates shifted by its offset and the
study days computed on the real dates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from trialmgr.clock import zone
from trialmgr.efficacy.models import EfficacyEndpoint, EfficacyMeasurement
from trialmgr.enrollment.models import ConsentVersion, Dosing, Subject, SubjectConsent, Trial, Visit
from trialmgr.exports.services.roster import SubjectInfo
from trialmgr.extensions import db
from trialmgr.safety.models import AdverseEvent, LabResult

_YIELD = 2000
# One row of a table: its values in the order of the table's columns (analysis_tables.py).
Rows = Iterator[tuple[Any, ...]]


def _stream(query: sa.Select[Any], subjects: dict[int, SubjectInfo]) -> Iterator[Any]:
    """The query's rows (plain tuples, subject id first) in batches, of the subjects in the
    export only (a subject enrolled while the export runs waits for the next one). Read on
    the session's connection (its transaction) as a Core statement: the values are the same
    (each column's type converts them), without the ORM's result layer (about half the
    reading time)."""
    rows = db.session.connection().execute(query.execution_options(yield_per=_YIELD)).tuples()
    return (r for r in rows if r[0] in subjects)


def _shifts(offsets: dict[int, int]) -> dict[int, timedelta]:
    """Each subject's offset as the interval added to its dates (made once per table, not
    once per value)."""
    return {sid: timedelta(days=days) for sid, days in offsets.items()}


_BOOL = {True: "true", False: "false", None: None}
# Spreadsheet programs run text cells that start with these as formulas.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str | None) -> str | None:
    """Text typed by people, never run as a spreadsheet formula."""
    if value and value.startswith(_FORMULA_START):
        return "'" + value
    return value


# The rows below spell out per value what a helper would do, so that a value costs no
# function call (each table walks tens of thousands of rows, decision 0025): a shifted
# date is `None if on is None else on + shift`; a study day is None without a date or a
# dosing, else whole days from the dosing day (`SubjectInfo.study_day`); a decimal is
# written as plain digits (100, not 1E+2). tests/test_exports_analysis.py holds them to
# the real dates.


def subjects(trial: Trial, subjects: dict[int, SubjectInfo], offsets: dict[int, int]) -> Rows:
    query = sa.select(
        Subject.id,
        Subject.enrolled_on,
        Subject.consented_on,
        Subject.withdrawn_on,
        Subject.withdrawal_kind,
        Subject.withdrawal_reason,
        Subject.ended_on,
        Subject.end_reason,
    ).where(Subject.trial_id == trial.id)
    shifts = _shifts(offsets)
    for sid, enrolled, consented, withdrawn, kind, reason, ended, end_reason in _stream(
        query.order_by(Subject.id), subjects
    ):
        s, off, d0 = subjects[sid], shifts[sid], subjects[sid].dosed_on
        yield (
            s.code,
            s.site_code,
            s.cohort_label,
            s.status,
            s.sex,
            s.birth_year,
            None if enrolled is None else enrolled + off,
            None if enrolled is None or d0 is None else (enrolled - d0).days,
            None if consented is None else consented + off,
            None if consented is None or d0 is None else (consented - d0).days,
            None if d0 is None else d0 + off,
            None if withdrawn is None else withdrawn + off,
            None if withdrawn is None or d0 is None else (withdrawn - d0).days,
            kind,
            text_cell(reason),
            None if ended is None else ended + off,
            None if ended is None or d0 is None else (ended - d0).days,
            text_cell(end_reason),
        )


def consents(trial: Trial, subjects: dict[int, SubjectInfo], offsets: dict[int, int]) -> Rows:
    query = (
        sa.select(SubjectConsent.subject_id, ConsentVersion.version, SubjectConsent.consented_on)
        .join(ConsentVersion, ConsentVersion.id == SubjectConsent.consent_version_id)
        .join(Subject, Subject.id == SubjectConsent.subject_id)
        .where(Subject.trial_id == trial.id)
        .order_by(SubjectConsent.subject_id, SubjectConsent.consented_on)
    )
    shifts = _shifts(offsets)
    for sid, version, on in _stream(query, subjects):
        d0 = subjects[sid].dosed_on
        yield (
            subjects[sid].code,
            version,
            None if on is None else on + shifts[sid],
            None if on is None or d0 is None else (on - d0).days,
        )


def dosing(trial: Trial, subjects: dict[int, SubjectInfo], offsets: dict[int, int]) -> Rows:
    query = (
        sa.select(Dosing.subject_id, Dosing.dosed_at, Dosing.dose, Dosing.dose_unit)
        .join(Subject, Subject.id == Dosing.subject_id)
        .where(Subject.trial_id == trial.id)
        .order_by(Dosing.subject_id)
    )
    shifts = _shifts(offsets)
    for sid, dosed_at, dose, unit in _stream(query, subjects):
        s = subjects[sid]
        yield (
            s.code,
            s.cohort_label,
            None if dosed_at is None else (dosed_at + shifts[sid]).isoformat(),
            dose,
            unit,
        )


def visits(trial: Trial, subjects: dict[int, SubjectInfo], offsets: dict[int, int]) -> Rows:
    query = (
        sa.select(
            Visit.subject_id,
            Visit.name,
            Visit.kind,
            Visit.day,
            Visit.scheduled_on,
            Visit.window_start,
            Visit.window_end,
            Visit.status,
            Visit.done_on,
            Visit.result,
            Visit.cancel_reason,
            Visit.primary_endpoint,
            Visit.notes,
        )
        .join(Subject, Subject.id == Visit.subject_id)
        .where(Subject.trial_id == trial.id)
        .order_by(Visit.subject_id, Visit.day, Visit.id)
    )
    shifts = _shifts(offsets)
    bools = _BOOL
    for (
        sid,
        name,
        kind,
        day,
        scheduled,
        opens,
        closes,
        status,
        done,
        result,
        cancel_reason,
        primary,
        notes,
    ) in _stream(query, subjects):
        s, off = subjects[sid], shifts[sid]
        d0 = s.dosed_on
        yield (
            s.code,
            text_cell(name),
            kind,
            day,
            None if scheduled is None else scheduled + off,
            None if opens is None else opens + off,
            None if closes is None else closes + off,
            status,
            None if done is None else done + off,
            None if done is None or d0 is None else (done - d0).days,
            result,
            cancel_reason,
            bools[primary],
            text_cell(notes),
        )


def adverse_events(trial: Trial, subjects: dict[int, SubjectInfo], offsets: dict[int, int]) -> Rows:
    c = AdverseEvent.__table__.c
    query = (
        sa.select(
            c.subject_id,
            c.id,
            c.version,
            c.pt_term,
            c.pt_code,
            c.soc,
            c.onset_date,
            c.resolution_date,
            c.grade,
            c.serious,
            c.seriousness_criteria,
            c.causality,
            c.suspected,
            c.expected,
            c.susar,
            c.aesi,
            c.aesi_category,
            c.action_taken,
            c.outcome,
            c.term,
            c.narrative,
        )
        .where(c.trial_id == trial.id)
        .order_by(c.subject_id, c.id)
    )
    shifts = _shifts(offsets)
    bools = _BOOL
    for (
        sid,
        event,
        version,
        pt_term,
        pt_code,
        soc,
        onset,
        resolved,
        grade,
        serious,
        criteria,
        causality,
        suspected,
        expected,
        susar,
        aesi,
        aesi_category,
        action_taken,
        outcome,
        term,
        narrative,
    ) in _stream(query, subjects):
        s, off = subjects[sid], shifts[sid]
        d0 = s.dosed_on
        # every criterion's row repeats the event's values
        head = (
            s.code,
            event,
            version,
            text_cell(pt_term),
            text_cell(pt_code),
            text_cell(soc),
            None if onset is None else onset + off,
            None if onset is None or d0 is None else (onset - d0).days,
            None if resolved is None else resolved + off,
            None if resolved is None or d0 is None else (resolved - d0).days,
            grade,
            bools[serious],
        )
        tail = (
            causality,
            bools[suspected],
            bools[expected],
            bools[susar],
            bools[aesi],
            aesi_category,
            action_taken,
            outcome,
            text_cell(term),
            text_cell(narrative),
        )
        for criterion in criteria or [""]:
            yield (*head, criterion or None, *tail)


def labs(trial: Trial, subjects: dict[int, SubjectInfo], offsets: dict[int, int]) -> Rows:
    query = (
        sa.select(
            LabResult.subject_id,
            LabResult.analyte,
            LabResult.value_canonical,
            LabResult.canonical_unit,
            LabResult.uln_multiple,
            LabResult.grade,
            LabResult.collected_at,
            LabResult.hys_law,
        )
        .where(LabResult.trial_id == trial.id)
        .order_by(LabResult.subject_id, LabResult.collected_at, LabResult.id)
    )
    shifts = _shifts(offsets)
    zones = {name: zone(name) for name in {s.site_zone for s in subjects.values()}}
    bools = _BOOL
    for sid, analyte, value, unit, uln_multiple, grade, at, hys_law in _stream(query, subjects):
        s = subjects[sid]
        d0 = s.dosed_on
        # the study day of a draw: its calendar day at the site (SubjectInfo.local)
        yield (
            s.code,
            analyte,
            None if value is None else format(value.normalize(), "f"),
            unit,
            None if uln_multiple is None else format(uln_multiple.normalize(), "f"),
            grade,
            None if at is None else (at + shifts[sid]).isoformat(),
            None
            if at is None or d0 is None
            else (at.astimezone(zones[s.site_zone]).date() - d0).days,
            bools[hys_law],
        )


def efficacy(trial: Trial, subjects: dict[int, SubjectInfo], offsets: dict[int, int]) -> Rows:
    query = (
        sa.select(
            EfficacyMeasurement.subject_id,
            EfficacyEndpoint.code,
            EfficacyEndpoint.unit,
            EfficacyMeasurement.value,
            EfficacyMeasurement.measured_on,
            EfficacyMeasurement.baseline,
            Visit.name,
        )
        .join(EfficacyEndpoint, EfficacyEndpoint.id == EfficacyMeasurement.endpoint_id)
        .outerjoin(Visit, Visit.id == EfficacyMeasurement.visit_id)
        .where(EfficacyMeasurement.trial_id == trial.id)
        .order_by(EfficacyMeasurement.subject_id, EfficacyMeasurement.measured_on)
    )
    shifts = _shifts(offsets)
    bools = _BOOL
    for sid, endpoint, unit, value, on, baseline, visit in _stream(query, subjects):
        s = subjects[sid]
        d0 = s.dosed_on
        yield (
            s.code,
            endpoint,
            None if value is None else format(value.normalize(), "f"),
            unit,
            None if on is None else on + shifts[sid],
            None if on is None or d0 is None else (on - d0).days,
            bools[baseline],
            text_cell(visit),
        )
