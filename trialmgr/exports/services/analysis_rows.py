"""The rows of the analysis archive's tables, streamed from the database (read in batches,
never a whole table in memory), with each subject's dates shifted by its offset and the
study days computed on the real dates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from trialmgr.efficacy.models import EfficacyEndpoint, EfficacyMeasurement
from trialmgr.enrollment.models import ConsentVersion, Dosing, Subject, SubjectConsent, Trial, Visit
from trialmgr.exports.services.roster import SubjectInfo
from trialmgr.extensions import db
from trialmgr.safety.models import AdverseEvent, LabResult

_YIELD = 2000
Rows = Iterator[dict[str, Any]]


def _stream(query: sa.Select[Any]) -> Iterator[Any]:
    return iter(db.session.execute(query.execution_options(yield_per=_YIELD)))


def _number(value: Decimal | None) -> str | None:
    """A stored decimal as plain digits (100, not 1E+2)."""
    return None if value is None else format(value.normalize(), "f")


def _shift(value: date | datetime | None, offset: int) -> date | datetime | None:
    return None if value is None else value + timedelta(days=offset)


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
    for r in _stream(query.order_by(Subject.id)):
        s, off = subjects[r.id], offsets[r.id]
        yield {
            "subject": s.code,
            "site": s.site_code,
            "cohort": s.cohort_label,
            "status": s.status,
            "sex": s.sex,
            "birth_year": s.birth_year,
            "enrolled_on": _shift(r.enrolled_on, off),
            "enrolled_day": s.study_day(r.enrolled_on),
            "consented_on": _shift(r.consented_on, off),
            "consented_day": s.study_day(r.consented_on),
            "dosed_on": _shift(s.dosed_on, off),
            "withdrawn_on": _shift(r.withdrawn_on, off),
            "withdrawn_day": s.study_day(r.withdrawn_on),
            "withdrawal_kind": r.withdrawal_kind,
            "withdrawal_reason": r.withdrawal_reason,
            "ended_on": _shift(r.ended_on, off),
            "ended_day": s.study_day(r.ended_on),
            "end_reason": r.end_reason,
        }


def consents(trial: Trial, subjects: dict[int, SubjectInfo], offsets: dict[int, int]) -> Rows:
    query = (
        sa.select(SubjectConsent.subject_id, ConsentVersion.version, SubjectConsent.consented_on)
        .join(ConsentVersion, ConsentVersion.id == SubjectConsent.consent_version_id)
        .join(Subject, Subject.id == SubjectConsent.subject_id)
        .where(Subject.trial_id == trial.id)
        .order_by(SubjectConsent.subject_id, SubjectConsent.consented_on)
    )
    for sid, version, on in _stream(query):
        s = subjects[sid]
        yield {
            "subject": s.code,
            "consent_version": version,
            "consented_on": _shift(on, offsets[sid]),
            "consented_day": s.study_day(on),
        }


def dosing(trial: Trial, subjects: dict[int, SubjectInfo], offsets: dict[int, int]) -> Rows:
    query = (
        sa.select(Dosing.subject_id, Dosing.dosed_at, Dosing.dose, Dosing.dose_unit)
        .join(Subject, Subject.id == Dosing.subject_id)
        .where(Subject.trial_id == trial.id)
        .order_by(Dosing.subject_id)
    )
    for sid, dosed_at, dose, unit in _stream(query):
        s = subjects[sid]
        yield {
            "subject": s.code,
            "cohort": s.cohort_label,
            "dosed_at": _shift(dosed_at, offsets[sid]),
            "dose": dose,
            "dose_unit": unit,
        }


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
    for r in _stream(query):
        s, off = subjects[r.subject_id], offsets[r.subject_id]
        yield {
            "subject": s.code,
            "visit": r.name,
            "kind": r.kind,
            "planned_day": r.day,
            "scheduled_on": _shift(r.scheduled_on, off),
            "window_start": _shift(r.window_start, off),
            "window_end": _shift(r.window_end, off),
            "status": r.status,
            "done_on": _shift(r.done_on, off),
            "done_day": s.study_day(r.done_on),
            "result": r.result,
            "cancel_reason": r.cancel_reason,
            "primary_endpoint": r.primary_endpoint,
            "notes": r.notes,
        }


def adverse_events(trial: Trial, subjects: dict[int, SubjectInfo], offsets: dict[int, int]) -> Rows:
    table = AdverseEvent.__table__
    query = (
        sa.select(*table.c)
        .where(table.c.trial_id == trial.id)
        .order_by(table.c.subject_id, table.c.id)
    )
    for r in _stream(query):
        s, off = subjects[r.subject_id], offsets[r.subject_id]
        for criterion in r.seriousness_criteria or [""]:
            yield {
                "subject": s.code,
                "event": r.id,
                "version": r.version,
                "pt_term": r.pt_term,
                "pt_code": r.pt_code,
                "soc": r.soc,
                "onset_date": _shift(r.onset_date, off),
                "onset_day": s.study_day(r.onset_date),
                "resolution_date": _shift(r.resolution_date, off),
                "resolution_day": s.study_day(r.resolution_date),
                "grade": r.grade,
                "serious": r.serious,
                "seriousness_criterion": criterion or None,
                "causality": r.causality,
                "suspected": r.suspected,
                "expected": r.expected,
                "susar": r.susar,
                "aesi": r.aesi,
                "aesi_category": r.aesi_category,
                "action_taken": r.action_taken,
                "outcome": r.outcome,
                "term": r.term,
                "narrative": r.narrative,
            }


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
    for r in _stream(query):
        s, off = subjects[r.subject_id], offsets[r.subject_id]
        yield {
            "subject": s.code,
            "analyte": r.analyte,
            "value": _number(r.value_canonical),
            "unit": r.canonical_unit,
            "uln_multiple": _number(r.uln_multiple),
            "grade": r.grade,
            "collected_at": _shift(r.collected_at, off),
            "collected_day": s.study_day(s.local(r.collected_at)),
            "hys_law": r.hys_law,
        }


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
    for sid, endpoint, unit, value, on, baseline, visit in _stream(query):
        s = subjects[sid]
        yield {
            "subject": s.code,
            "endpoint": endpoint,
            "value": _number(value),
            "unit": unit,
            "measured_on": _shift(on, offsets[sid]),
            "measured_day": s.study_day(on),
            "baseline": baseline,
            "visit": visit,
        }
