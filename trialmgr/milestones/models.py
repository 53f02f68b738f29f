"""Milestones of a trial (optionally of one site) and its progression criteria.

The feasibility metrics themselves are never stored: they are computed from the records
(services/metrics.py), so a number on a page cannot drift from the data behind it.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trialmgr.db import Audited, Base, IdMixin, TimestampMixin, one_of
from trialmgr.enrollment.models import Cohort
from trialmgr.partners.models import Site

# The milestones of a pilot, in the order they usually come.
MILESTONE_KINDS = (
    "protocol_approved",
    "first_site_activated",
    "first_subject_screened",
    "first_subject_dosed",
    "cohort_complete",
    "last_subject_dosed",
    "primary_follow_up_complete",
    "database_lock",
    "dsmb_meeting",
    "progression_review",
    "other",
)
MILESTONE_LABELS = {
    "protocol_approved": "Protocol approved",
    "first_site_activated": "First site activated",
    "first_subject_screened": "First subject screened",
    "first_subject_dosed": "First subject dosed",
    "cohort_complete": "Cohort complete",
    "last_subject_dosed": "Last subject dosed",
    "primary_follow_up_complete": "Primary follow-up complete",
    "database_lock": "Database lock",
    "dsmb_meeting": "DSMB meeting",
    "progression_review": "Progression review",
    "other": "Other",
}
# These complete themselves from the records (services/milestones.py says how); their
# achieved date is never typed in.
AUTOMATIC_KINDS = (
    "first_site_activated",
    "first_subject_screened",
    "first_subject_dosed",
    "cohort_complete",
    "last_subject_dosed",
)
# Kinds that make sense for one site (the others are trial-wide only).
SITE_KINDS = tuple(k for k in MILESTONE_KINDS if k not in ("cohort_complete", "last_subject_dosed"))

METRICS = (
    "recruitment_rate",
    "screen_to_enrol_ratio",
    "eligibility_rate",
    "consent_rate",
    "retention",
    "visit_adherence",
    "data_completeness",
    "sae_timeliness",
)


class Milestone(IdMixin, TimestampMixin, Audited, Base):
    __tablename__ = "milestone"
    __table_args__ = (
        sa.CheckConstraint(one_of("kind", MILESTONE_KINDS), name="kind_known"),
        sa.CheckConstraint(
            "(kind = 'cohort_complete') = (cohort_id IS NOT NULL)", name="cohort_iff_complete"
        ),
        sa.Index("ix_milestone_trial_id_planned_on", "trial_id", "planned_on"),
    )

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"))
    site_id: Mapped[int | None] = mapped_column(sa.ForeignKey("site.id"), index=True)
    cohort_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cohort.id"))
    kind: Mapped[str] = mapped_column(sa.String(30), default="other")
    name: Mapped[str] = mapped_column(sa.String(200))
    planned_on: Mapped[date]
    # Typed in for the milestones that do not complete themselves (None for automatic ones:
    # their date comes from the records).
    achieved_on: Mapped[date | None]
    notes: Mapped[str | None] = mapped_column(sa.Text)

    site: Mapped[Site | None] = relationship()
    cohort: Mapped[Cohort | None] = relationship()

    @property
    def automatic(self) -> bool:
        return self.kind in AUTOMATIC_KINDS


class ProgressionCriterion(IdMixin, TimestampMixin, Audited, Base):
    """A pre-specified progression criterion: a metric, its target, and the fraction of the
    target above which the light is amber rather than red (DOMAIN.md)."""

    __tablename__ = "progression_criterion"
    __table_args__ = (
        sa.UniqueConstraint("trial_id", "metric"),
        sa.CheckConstraint(one_of("metric", METRICS), name="metric_known"),
        sa.CheckConstraint("target > 0", name="target_positive"),
        sa.CheckConstraint(
            "amber_fraction > 0 AND amber_fraction <= 1", name="amber_fraction_range"
        ),
    )

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    metric: Mapped[str] = mapped_column(sa.String(30))
    # Exact decimals: a value exactly at the target (or the amber threshold) must compare
    # equal, which binary floats do not promise.
    target: Mapped[Decimal] = mapped_column(sa.Numeric(14, 6))
    amber_fraction: Mapped[Decimal] = mapped_column(
        sa.Numeric(7, 6), default=Decimal("0.5"), server_default="0.5"
    )
    notes: Mapped[str | None] = mapped_column(sa.Text)
