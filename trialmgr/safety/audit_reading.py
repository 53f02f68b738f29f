"""How the safety records read in the audit trail: an adverse event by its subject's code and
term, its versions, reviews, reporting clocks, labs and tasks by what they belong to, fields
by their labels and references by codes; and which of them belong to a subject (the audit
trail's subject-code filter). Registered on import."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from trialmgr.audit import readable
from trialmgr.enrollment.audit_reading import named_by_subject
from trialmgr.enrollment.models import Subject
from trialmgr.extensions import db
from trialmgr.safety.models import (
    AdverseEvent,
    AdverseEventReview,
    AdverseEventVersion,
    ExpeditedReport,
    LabResult,
    WorkItem,
)


def _events(ids: list[str]) -> dict[str, str]:
    query = (
        sa.select(AdverseEvent.id, Subject.code, AdverseEvent.term)
        .join(Subject, Subject.id == AdverseEvent.subject_id)
        .where(AdverseEvent.id.in_(readable.int_ids(ids)))
    )
    return {str(i): f"{code} {term} (#{i})" for i, code, term in db.session.execute(query)}


def _of_event(model: Any, what: Any) -> readable.Namer:
    """Records of one adverse event: named by the event's subject code and term, and `what`."""
    return readable.named_by(
        model,
        Subject.code,
        AdverseEvent.term,
        what,
        joins=[
            (AdverseEvent, AdverseEvent.id == model.adverse_event_id),
            (Subject, Subject.id == AdverseEvent.subject_id),
        ],
    )


REFERENCES = {
    "subject_id": "subject",
    "trial_id": "trial",
    "site_id": "site",
    "cohort_id": "cohort",
    "adverse_event_id": "adverse_event",
    "expedited_report_id": "expedited_report",
    "lab_result_id": "lab_result",
    "visit_id": "visit",
    "source_visit_id": "visit",
}
LABELS = {
    "term": "Reported term",
    "pt_term": "Preferred term",
    "pt_code": "PT code",
    "soc": "SOC",
    "onset_date": "Onset",
    "resolution_date": "Resolved on",
    "seriousness_criteria": "Seriousness criteria",
    "susar": "SUSAR",
    "aesi": "AESI",
    "aesi_category": "AESI category",
    "action_taken": "Action taken",
    "site_awareness_at": "Site aware at",
    "sponsor_awareness_at": "Sponsor aware at",
    "source_visit_id": "Source visit",
    "uln": "ULN",
    "lln": "LLN",
    "uln_multiple": "Multiple of ULN",
    "value_canonical": "Value (canonical unit)",
    "hys_law": "Hy's law",
    "collected_at": "Collected at",
    "clock_start": "Clock start",
    "due_at": "Due at",
    "submitted_at": "Submitted at",
    "signed_by": "Signed by",
    "signed_at": "Signed at",
    "signature_meaning": "Signature meaning",
    "due_on": "Due on",
    "closed_at": "Closed at",
    "closed_by": "Closed by",
}

readable.register("adverse_event", "adverse event", _events, LABELS, REFERENCES)
readable.register(
    "adverse_event_version",
    "version of",
    _of_event(AdverseEventVersion, sa.literal("v") + sa.cast(AdverseEventVersion.version, sa.Text)),
    LABELS,
    REFERENCES,
    nested={"data": "adverse_event"},  # the event's fields as this version recorded them
)
readable.register(
    "adverse_event_review",
    "review of",
    _of_event(AdverseEventReview, sa.literal("v") + sa.cast(AdverseEventReview.version, sa.Text)),
    LABELS,
    REFERENCES,
)
readable.register(
    "expedited_report",
    "reporting clock of",
    _of_event(ExpeditedReport, ExpeditedReport.authority),
    LABELS,
    REFERENCES,
)
readable.register(
    "lab_result", "lab of", named_by_subject(LabResult, LabResult.analyte), LABELS, REFERENCES
)
readable.register(
    "work_item",
    "task for",
    named_by_subject(WorkItem, WorkItem.kind),
    LABELS,
    REFERENCES,
    nested={"prefill": "adverse_event"},  # the event form's first values
)


def _subject_scope(code: str) -> list[tuple[str, list[str]]]:
    subject_id = db.session.execute(
        sa.select(Subject.id).where(Subject.code == code)
    ).scalar_one_or_none()
    if subject_id is None:
        return []

    def ids(query: sa.Select[tuple[int]]) -> list[str]:
        return [str(i) for i in db.session.execute(query).scalars()]

    events = sa.select(AdverseEvent.id).where(AdverseEvent.subject_id == subject_id)
    return [
        ("adverse_event", ids(events)),
        (
            "adverse_event_version",
            ids(
                sa.select(AdverseEventVersion.id).where(
                    AdverseEventVersion.adverse_event_id.in_(events)
                )
            ),
        ),
        (
            "adverse_event_review",
            ids(
                sa.select(AdverseEventReview.id).where(
                    AdverseEventReview.adverse_event_id.in_(events)
                )
            ),
        ),
        (
            "expedited_report",
            ids(sa.select(ExpeditedReport.id).where(ExpeditedReport.adverse_event_id.in_(events))),
        ),
        ("lab_result", ids(sa.select(LabResult.id).where(LabResult.subject_id == subject_id))),
        ("work_item", ids(sa.select(WorkItem.id).where(WorkItem.subject_id == subject_id))),
    ]


readable.subject_records(_subject_scope)
