"""De-identification: each subject's secret date shift, and the small-cell rule.

Every date of one subject moves by the same number of days, drawn at random on the
subject's first analysis export (never zero, 30 to 365 days either way) and kept, so study
days stay exact and a re-export shifts the same way. The offsets are never shown, exported
or written to the audit trail."""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from trialmgr.clock import utcnow
from trialmgr.enrollment.models import Subject
from trialmgr.exports.models import SubjectDateShift
from trialmgr.extensions import db

MIN_SHIFT_DAYS = 30
MAX_SHIFT_DAYS = 365
SMALL = 5
SUPPRESSED = "<5"
_BATCH = 5000


def draw_offset() -> int:
    """A random shift of 30 to 365 days, earlier or later (never zero)."""
    magnitude = MIN_SHIFT_DAYS + secrets.randbelow(MAX_SHIFT_DAYS - MIN_SHIFT_DAYS + 1)
    return magnitude if secrets.randbelow(2) else -magnitude


def _insert_ignoring_existing(rows: list[dict[str, Any]]) -> None:
    """Insert offsets; a subject given one by a concurrent export keeps that one."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(rows), _BATCH):
        stmt = insert(SubjectDateShift).on_conflict_do_nothing(index_elements=["subject_id"])
        db.session.execute(stmt, rows[start : start + _BATCH])


def offsets_for(trial_id: int) -> tuple[dict[int, int], int]:
    """Every subject's offset in the trial (drawing the missing ones), and how many were
    drawn now."""
    subject_ids = sa.select(Subject.id).where(Subject.trial_id == trial_id)
    missing = db.session.execute(
        subject_ids.where(~sa.exists().where(SubjectDateShift.subject_id == Subject.id)).order_by(
            Subject.id
        )
    ).scalars()
    now = utcnow()
    rows = [{"subject_id": sid, "offset_days": draw_offset(), "created_at": now} for sid in missing]
    if rows:
        _insert_ignoring_existing(rows)
    rows_now = db.session.execute(
        sa.select(SubjectDateShift.subject_id, SubjectDateShift.offset_days).where(
            SubjectDateShift.subject_id.in_(subject_ids)
        )
    )
    offsets = {subject_id: offset for subject_id, offset in rows_now}
    return offsets, len(rows)


def small_cell(count: int) -> int | str:
    """A count as published in an aggregate table: itself from 5 up, "<5" below."""
    return count if count >= SMALL else SUPPRESSED
