"""Trials and their design (cohorts, criteria, consent versions, visit schedule, safety
reviews, pauses), and the subjects: screening, consent, dosing, visits, deviations."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trialmgr.db import Audited, Base, IdMixin, TimestampMixin, one_of
from trialmgr.partners.models import Site

TRIAL_STATUSES = ("setup", "open", "paused", "closed")
VECTOR_TYPES = ("aav", "lentiviral", "gammaretroviral", "adenoviral", "genome_editing", "other")
# FDA LTFU guidance (2020): integrating vectors and genome editing up to 15 years,
# AAV and other non-integrating vectors up to 5.
LTFU_YEARS = {"lentiviral": 15, "gammaretroviral": 15, "genome_editing": 15}
LTFU_YEARS_DEFAULT = 5
# Replication-competent virus testing applies to retroviral and lentiviral vectors.
RCR_VECTORS = ("lentiviral", "gammaretroviral")
REVIEW_DECISIONS = ("escalate", "continue", "stop")


class Trial(IdMixin, TimestampMixin, Audited, Base):
    __tablename__ = "trial"
    __table_args__ = (
        sa.CheckConstraint(one_of("status", TRIAL_STATUSES), name="status_known"),
        sa.CheckConstraint(one_of("vector_type", VECTOR_TYPES), name="vector_known"),
        sa.CheckConstraint("stagger_days >= 0", name="stagger_not_negative"),
        sa.CheckConstraint("ltfu_years >= 0", name="ltfu_not_negative"),
    )

    code: Mapped[str] = mapped_column(sa.String(20), unique=True)
    title: Mapped[str] = mapped_column(sa.String(300))
    phase: Mapped[str | None] = mapped_column(sa.String(20))
    orphacode: Mapped[int | None]
    indication: Mapped[str | None] = mapped_column(sa.String(200))
    vector_type: Mapped[str] = mapped_column(sa.String(20))
    ltfu_years: Mapped[int]
    stagger_days: Mapped[int] = mapped_column(default=14)
    status: Mapped[str] = mapped_column(sa.String(16), default="setup", index=True)
    paused_reason: Mapped[str | None] = mapped_column(sa.Text)

    cohorts: Mapped[list[Cohort]] = relationship(back_populates="trial", order_by="Cohort.sequence")
    criteria: Mapped[list[EligibilityCriterion]] = relationship(
        back_populates="trial", order_by="EligibilityCriterion.sequence"
    )
    consent_versions: Mapped[list[ConsentVersion]] = relationship(
        back_populates="trial", order_by="ConsentVersion.approved_on"
    )
    visit_definitions: Mapped[list[VisitDefinition]] = relationship(
        back_populates="trial", order_by="VisitDefinition.day"
    )

    @property
    def rcr_testing(self) -> bool:
        return self.vector_type in RCR_VECTORS


class Cohort(IdMixin, TimestampMixin, Audited, Base):
    __tablename__ = "cohort"
    __table_args__ = (
        sa.UniqueConstraint("trial_id", "sequence"),
        sa.UniqueConstraint("trial_id", "label"),
        sa.CheckConstraint("capacity > 0", name="capacity_positive"),
    )

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    label: Mapped[str] = mapped_column(sa.String(20))
    dose: Mapped[str] = mapped_column(sa.String(40))
    dose_unit: Mapped[str] = mapped_column(sa.String(20))
    capacity: Mapped[int]
    sequence: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(16), default="open")

    trial: Mapped[Trial] = relationship(back_populates="cohorts")


class EligibilityCriterion(IdMixin, TimestampMixin, Audited, Base):
    __tablename__ = "eligibility_criterion"
    __table_args__ = (
        sa.UniqueConstraint("trial_id", "code"),
        sa.CheckConstraint("kind IN ('inclusion', 'exclusion')", name="kind_known"),
    )

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    code: Mapped[str] = mapped_column(sa.String(10))
    kind: Mapped[str] = mapped_column(sa.String(10))
    text: Mapped[str] = mapped_column(sa.Text)
    sequence: Mapped[int] = mapped_column(default=0)

    trial: Mapped[Trial] = relationship(back_populates="criteria")

    def met(self, answer: bool) -> bool:
        """An inclusion criterion is met when answered yes, an exclusion when answered no."""
        return answer if self.kind == "inclusion" else not answer


class ConsentVersion(IdMixin, TimestampMixin, Audited, Base):
    __tablename__ = "consent_version"
    __table_args__ = (sa.UniqueConstraint("trial_id", "version"),)

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    version: Mapped[str] = mapped_column(sa.String(20))
    approved_on: Mapped[date]
    reconsent_required: Mapped[bool] = mapped_column(default=False)

    trial: Mapped[Trial] = relationship(back_populates="consent_versions")


class VisitDefinition(IdMixin, TimestampMixin, Audited, Base):
    __tablename__ = "visit_definition"
    __table_args__ = (
        sa.UniqueConstraint("trial_id", "name"),
        sa.CheckConstraint("window_before >= 0 AND window_after >= 0", name="window_not_negative"),
    )

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(60))
    day: Mapped[int]
    window_before: Mapped[int] = mapped_column(default=0)
    window_after: Mapped[int] = mapped_column(default=0)
    # The visit at which the primary endpoint is assessed (retention counts it).
    primary_endpoint: Mapped[bool] = mapped_column(default=False)

    trial: Mapped[Trial] = relationship(back_populates="visit_definitions")


class SafetyReview(IdMixin, Audited, Base):
    """A DSMB/SRC decision on a cohort, e-signed by a safety monitor."""

    __tablename__ = "safety_review"
    __table_args__ = (
        sa.CheckConstraint(one_of("decision", REVIEW_DECISIONS), name="decision_known"),
    )

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    cohort_id: Mapped[int] = mapped_column(sa.ForeignKey("cohort.id"), index=True)
    decision: Mapped[str] = mapped_column(sa.String(16))
    rationale: Mapped[str] = mapped_column(sa.Text)
    signed_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    signed_by: Mapped[str] = mapped_column(sa.String(255))
    signed_at: Mapped[datetime]
    signature_meaning: Mapped[str] = mapped_column(sa.String(200))

    cohort: Mapped[Cohort] = relationship()


class TrialPause(IdMixin, Audited, Base):
    """A trial-wide dosing pause: automatic (a stopping rule) or by a safety monitor;
    lifted only by a safety monitor's signed decision."""

    __tablename__ = "trial_pause"

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    paused_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.String(40))  # "manual" or "rule:<name>"
    paused_by: Mapped[str] = mapped_column(sa.String(255))
    resumed_at: Mapped[datetime | None]
    resumed_by: Mapped[str | None] = mapped_column(sa.String(255))
    resume_reason: Mapped[str | None] = mapped_column(sa.Text)
    resume_signature_meaning: Mapped[str | None] = mapped_column(sa.String(200))


SCREENING_OUTCOMES = ("pending", "eligible", "screen_failed", "declined")
SUBJECT_STATUSES = (
    "enrolled",
    "dosed",
    "in_follow_up",
    "completed",
    "withdrawn",
    "lost_to_follow_up",
    "died",
)
# Statuses after which no new procedure happens.
ENDED_STATUSES = ("withdrawn", "lost_to_follow_up", "died")
VISIT_KINDS = ("protocol", "ltfu", "rcr")
VISIT_STATUSES = ("scheduled", "done", "missed", "cancelled")
# Asked at every yearly long-term follow-up contact (FDA LTFU guidance).
LTFU_QUESTIONS = {
    "new_malignancy": "New malignancy",
    "neurological": "New or worsened neurological disorder",
    "autoimmune": "New or worsened autoimmune or rheumatologic disorder",
    "haematological": "New haematological disorder",
}


class Screening(IdMixin, TimestampMixin, Audited, Base):
    __tablename__ = "screening"
    __table_args__ = (
        sa.UniqueConstraint("site_id", "number"),
        sa.CheckConstraint(one_of("outcome", SCREENING_OUTCOMES), name="outcome_known"),
        sa.CheckConstraint("sex IN ('F', 'M', 'U')", name="sex_known"),
    )

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id"), index=True)
    number: Mapped[int]  # per site: S01 screening 1, 2, 3...
    screened_on: Mapped[date]
    orphacode: Mapped[int]
    birth_year: Mapped[int]  # never a full date of birth
    sex: Mapped[str] = mapped_column(sa.String(1))
    answers: Mapped[dict[str, bool]] = mapped_column(sa.JSON, default=dict)
    outcome: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)
    failed_criteria: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    fail_reason: Mapped[str | None] = mapped_column(sa.Text)

    trial: Mapped[Trial] = relationship()
    site: Mapped[Site] = relationship()


class Subject(IdMixin, TimestampMixin, Audited, Base):
    __tablename__ = "subject"
    __table_args__ = (sa.CheckConstraint(one_of("status", SUBJECT_STATUSES), name="status_known"),)

    code: Mapped[str] = mapped_column(sa.String(20), unique=True)
    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id"), index=True)
    screening_id: Mapped[int] = mapped_column(sa.ForeignKey("screening.id"), unique=True)
    cohort_id: Mapped[int] = mapped_column(sa.ForeignKey("cohort.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="enrolled", index=True)
    enrolled_on: Mapped[date]
    consent_version_id: Mapped[int] = mapped_column(sa.ForeignKey("consent_version.id"))
    consented_on: Mapped[date]
    reconsent_due: Mapped[bool] = mapped_column(default=False)
    withdrawn_on: Mapped[date | None]
    withdrawal_kind: Mapped[str | None] = mapped_column(sa.String(20))
    withdrawal_reason: Mapped[str | None] = mapped_column(sa.Text)
    ended_on: Mapped[date | None]  # lost to follow-up or death
    end_reason: Mapped[str | None] = mapped_column(sa.Text)

    trial: Mapped[Trial] = relationship()
    site: Mapped[Site] = relationship()
    cohort: Mapped[Cohort] = relationship()
    screening: Mapped[Screening] = relationship()
    consent_version: Mapped[ConsentVersion] = relationship()
    dosing: Mapped[Dosing | None] = relationship(back_populates="subject", uselist=False)
    visits: Mapped[list[Visit]] = relationship(
        back_populates="subject", order_by="(Visit.scheduled_on, Visit.id)"
    )
    consents: Mapped[list[SubjectConsent]] = relationship(
        back_populates="subject", order_by="SubjectConsent.consented_on"
    )

    @property
    def active(self) -> bool:
        return self.status not in ENDED_STATUSES


class SubjectConsent(IdMixin, Audited, Base):
    """Each consent (and re-consent) a subject signed."""

    __tablename__ = "subject_consent"
    __table_args__ = (sa.UniqueConstraint("subject_id", "consent_version_id"),)

    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subject.id"), index=True)
    consent_version_id: Mapped[int] = mapped_column(sa.ForeignKey("consent_version.id"))
    consented_on: Mapped[date]

    consent_version: Mapped[ConsentVersion] = relationship()
    subject: Mapped[Subject] = relationship(back_populates="consents")


class Dosing(IdMixin, TimestampMixin, Audited, Base):
    __tablename__ = "dosing"

    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subject.id"), unique=True)
    cohort_id: Mapped[int] = mapped_column(sa.ForeignKey("cohort.id"), index=True)
    dosed_at: Mapped[datetime]
    dose: Mapped[str] = mapped_column(sa.String(40))
    dose_unit: Mapped[str] = mapped_column(sa.String(20))
    lot_number: Mapped[str] = mapped_column(sa.String(60))

    subject: Mapped[Subject] = relationship(back_populates="dosing")


class Visit(IdMixin, TimestampMixin, Audited, Base):
    __tablename__ = "visit"
    __table_args__ = (
        sa.UniqueConstraint("subject_id", "name"),
        sa.CheckConstraint(one_of("kind", VISIT_KINDS), name="kind_known"),
        sa.CheckConstraint(one_of("status", VISIT_STATUSES), name="status_known"),
        sa.Index("ix_visit_status_scheduled_on", "status", "scheduled_on"),
    )

    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subject.id"), index=True)
    definition_id: Mapped[int | None] = mapped_column(sa.ForeignKey("visit_definition.id"))
    kind: Mapped[str] = mapped_column(sa.String(10))
    name: Mapped[str] = mapped_column(sa.String(60))
    day: Mapped[int]  # study day: dosing day is day 0
    scheduled_on: Mapped[date]
    window_start: Mapped[date]
    window_end: Mapped[date]
    status: Mapped[str] = mapped_column(sa.String(12), default="scheduled")
    done_on: Mapped[date | None]
    answers: Mapped[dict[str, bool] | None] = mapped_column(sa.JSON)
    notes: Mapped[str | None] = mapped_column(sa.Text)
    primary_endpoint: Mapped[bool] = mapped_column(default=False)

    subject: Mapped[Subject] = relationship(back_populates="visits")

    def in_window(self, on: date) -> bool:
        return self.window_start <= on <= self.window_end


class Deviation(IdMixin, Audited, Base):
    """A protocol deviation: a visit out of window or missed."""

    __tablename__ = "deviation"

    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subject.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("visit.id"))
    kind: Mapped[str] = mapped_column(sa.String(40))
    description: Mapped[str] = mapped_column(sa.Text)
    occurred_on: Mapped[date]
    recorded_at: Mapped[datetime]
    voided_at: Mapped[datetime | None]
    void_reason: Mapped[str | None] = mapped_column(sa.Text)
