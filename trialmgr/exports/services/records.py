"""Every record of a chunk of subjects, one query per kind, as plain rows grouped by
subject: what the ODM and FHIR exports walk subject by subject."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from trialmgr.efficacy.models import EfficacyEndpoint, EfficacyMeasurement
from trialmgr.enrollment.models import (
    ConsentVersion,
    Dosing,
    Screening,
    Subject,
    SubjectConsent,
    Visit,
)
from trialmgr.extensions import db
from trialmgr.safety.models import AdverseEvent, LabResult

Records = dict[str, dict[int, list[Any]]]


def _by_subject(query: sa.Select[Any]) -> dict[int, list[Any]]:
    """The rows grouped by subject. Read on the session's connection (its transaction) as a
    Core statement: the same rows and values (each column's type converts them), without
    the ORM's result layer."""
    out: dict[int, list[Any]] = defaultdict(list)
    result = db.session.connection().execute(query)
    at = list(result.keys()).index("subject_id")
    for row in result:
        out[row[at]].append(row)
    return out


def records_of(ids: list[int], kinds: Collection[str] | None = None) -> Records:
    """Every record of these subjects, grouped by subject (plain rows, one query a kind);
    of the given kinds only (subject, consent, dosing, visit, adverse_event, lab_result,
    efficacy_measurement) if asked."""
    queries = _queries(ids)
    return {k: _by_subject(q) for k, q in queries.items() if kinds is None or k in kinds}


def _queries(ids: list[int]) -> dict[str, sa.Select[Any]]:
    ae = AdverseEvent.__table__
    return {
        "subject": (
            sa.select(
                Subject.id.label("subject_id"),
                Subject.screening_id,
                Subject.enrolled_on,
                Subject.consented_on,
                Subject.withdrawn_on,
                Subject.withdrawal_kind,
                Subject.withdrawal_reason,
                Subject.ended_on,
                Subject.end_reason,
                Screening.screened_on,
                Screening.orphacode,
                Screening.outcome,
                Screening.fail_reason,
            )
            .join(Screening, Screening.id == Subject.screening_id)
            .where(Subject.id.in_(ids))
        ),
        "consent": (
            sa.select(
                SubjectConsent.id,
                SubjectConsent.subject_id,
                ConsentVersion.version,
                SubjectConsent.consented_on,
            )
            .join(ConsentVersion, ConsentVersion.id == SubjectConsent.consent_version_id)
            .where(SubjectConsent.subject_id.in_(ids))
            .order_by(SubjectConsent.consented_on, SubjectConsent.id)
        ),
        "dosing": (
            sa.select(
                Dosing.id,
                Dosing.subject_id,
                Dosing.dosed_at,
                Dosing.dose,
                Dosing.dose_unit,
                Dosing.lot_number,
            ).where(Dosing.subject_id.in_(ids))
        ),
        "visit": (
            sa.select(
                Visit.id,
                Visit.subject_id,
                Visit.name,
                Visit.scheduled_on,
                Visit.status,
                Visit.done_on,
                Visit.result,
                Visit.notes,
            )
            .where(Visit.subject_id.in_(ids))
            .order_by(Visit.day, Visit.id)
        ),
        # what the ODM items and the FHIR AdverseEvent read (not the row's bookkeeping)
        "adverse_event": sa.select(
            ae.c.id,
            ae.c.subject_id,
            ae.c.term,
            ae.c.pt_term,
            ae.c.pt_code,
            ae.c.soc,
            ae.c.onset_date,
            ae.c.resolution_date,
            ae.c.grade,
            ae.c.seriousness_criteria,
            ae.c.serious,
            ae.c.causality,
            ae.c.expected,
            ae.c.aesi,
            ae.c.aesi_category,
            ae.c.action_taken,
            ae.c.outcome,
            ae.c.site_awareness_at,
            ae.c.narrative,
        )
        .where(ae.c.subject_id.in_(ids))
        .order_by(ae.c.id),
        "lab_result": (
            sa.select(
                LabResult.id,
                LabResult.subject_id,
                LabResult.analyte,
                LabResult.value,
                LabResult.unit,
                LabResult.uln,
                LabResult.lln,
                LabResult.collected_at,
                LabResult.value_canonical,
                LabResult.grade,
                LabResult.hys_law,
            )
            .where(LabResult.subject_id.in_(ids))
            .order_by(LabResult.collected_at, LabResult.id)
        ),
        "efficacy_measurement": (
            sa.select(
                EfficacyMeasurement.id,
                EfficacyMeasurement.subject_id,
                EfficacyEndpoint.code.label("endpoint"),
                EfficacyEndpoint.name.label("endpoint_name"),
                EfficacyEndpoint.unit,
                EfficacyMeasurement.value,
                EfficacyMeasurement.measured_on,
                EfficacyMeasurement.baseline,
                Visit.name.label("visit"),
            )
            .join(EfficacyEndpoint, EfficacyEndpoint.id == EfficacyMeasurement.endpoint_id)
            .outerjoin(Visit, Visit.id == EfficacyMeasurement.visit_id)
            .where(EfficacyMeasurement.subject_id.in_(ids))
            .order_by(EfficacyMeasurement.measured_on, EfficacyMeasurement.id)
        ),
    }
