"""De-identification: each subject's secret date shift, and the small-cell rule.

Every date of one subject moves by the same number of days, drawn at random on the
subject's first analysis export (never zero, 30 to 365 days either way) and kept, so study
days stay exact and a re-export shifts the same way. The offsets are never shown, exported
or written to the audit trail."""

from __future__ import annotations

import secrets

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


def draw_missing(trial_id: int) -> tuple[dict[int, int], dict[int, int]]:
    """Every subject's offset: the stored ones, and new ones drawn (not yet stored) for
    subjects that have none. Returns (all offsets, the newly drawn)."""
    rows = db.session.execute(
        sa.select(Subject.id, SubjectDateShift.offset_days)
        .outerjoin(SubjectDateShift, SubjectDateShift.subject_id == Subject.id)
        .where(Subject.trial_id == trial_id)
        .order_by(Subject.id)
    )
    offsets: dict[int, int] = {}
    drawn: dict[int, int] = {}
    for subject_id, offset in rows:
        if offset is None:
            offset = drawn[subject_id] = draw_offset()
        offsets[subject_id] = offset
    return offsets, drawn


def store(drawn: dict[int, int]) -> dict[int, int]:
    """Store newly drawn offsets; a subject given one meanwhile by a concurrent export keeps
    that one. Returns the offsets now stored for these subjects (call inside the write
    transaction)."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    rows = [{"subject_id": k, "offset_days": v, "created_at": now} for k, v in drawn.items()]
    stored: dict[int, int] = {}
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        stmt = insert(SubjectDateShift).on_conflict_do_nothing(index_elements=["subject_id"])
        db.session.execute(stmt, batch)
        ids = [r["subject_id"] for r in batch]
        found = db.session.execute(
            sa.select(SubjectDateShift.subject_id, SubjectDateShift.offset_days).where(
                SubjectDateShift.subject_id.in_(ids)
            )
        )
        stored.update({subject_id: offset for subject_id, offset in found})
    return stored


def small_cell(count: int) -> int | str:
    """A count as published in an aggregate table: itself from 5 up, "<5" below."""
    return count if count >= SMALL else SUPPRESSED
