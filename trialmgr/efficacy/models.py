"""Efficacy endpoints (what a trial measures, in which unit, which way is better) and the
measurements of them per subject and visit, one flagged as the baseline."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trialmgr.db import Audited, Base, IdMixin, TimestampMixin, one_of
from trialmgr.enrollment.models import Subject, Visit

DIRECTIONS = ("higher_is_better", "lower_is_better")


class EfficacyEndpoint(IdMixin, TimestampMixin, Audited, Base):
    """An efficacy endpoint of a trial (e.g. FIX, factor IX activity in IU/dL)."""

    __tablename__ = "efficacy_endpoint"
    __table_args__ = (
        sa.UniqueConstraint("trial_id", "code"),
        sa.CheckConstraint(one_of("direction", DIRECTIONS), name="direction_known"),
    )

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    code: Mapped[str] = mapped_column(sa.String(20))
    name: Mapped[str] = mapped_column(sa.String(200))
    unit: Mapped[str] = mapped_column(sa.String(30))
    direction: Mapped[str] = mapped_column(sa.String(20))
    primary: Mapped[bool] = mapped_column(default=False)


class EfficacyMeasurement(IdMixin, TimestampMixin, Audited, Base):
    """One value of one endpoint for one subject, on the day it was measured (the site's
    calendar), at a visit or unscheduled. Baselines are flagged: the latest one on or before
    the dosing day is the one change from baseline is computed against. Trial, site and
    cohort are the subject's, copied so that summaries and site scoping need no join."""

    __tablename__ = "efficacy_measurement"
    __table_args__ = (
        sa.Index(
            "ix_efficacy_measurement_subject_endpoint", "subject_id", "endpoint_id", "measured_on"
        ),
        sa.Index("ix_efficacy_measurement_endpoint_cohort", "endpoint_id", "cohort_id"),
    )

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subject.id"))
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id"), index=True)
    cohort_id: Mapped[int] = mapped_column(sa.ForeignKey("cohort.id"))
    endpoint_id: Mapped[int] = mapped_column(sa.ForeignKey("efficacy_endpoint.id"))
    visit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("visit.id"))
    value: Mapped[Decimal] = mapped_column(sa.Numeric(18, 6))
    measured_on: Mapped[date]
    baseline: Mapped[bool] = mapped_column(default=False)

    subject: Mapped[Subject] = relationship()
    endpoint: Mapped[EfficacyEndpoint] = relationship()
    visit: Mapped[Visit | None] = relationship()
