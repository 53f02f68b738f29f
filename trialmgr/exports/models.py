"""The secret per-subject date shift of the de-identified analysis export."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from trialmgr.db import Base, utcnow


class SubjectDateShift(Base):
    """How many days every date of one subject moves in the analysis export. Drawn once at
    random (never zero) on the subject's first export and kept, so a re-export shifts the
    same way; never shown, never exported, not written to the audit trail (its readers would
    learn it). Not trial data: a property of the export, so not `Audited`; the export's own
    audit row counts the offsets it drew."""

    __tablename__ = "subject_date_shift"
    __table_args__ = (sa.CheckConstraint("offset_days <> 0", name="offset_not_zero"),)

    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subject.id"), primary_key=True)
    offset_days: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
