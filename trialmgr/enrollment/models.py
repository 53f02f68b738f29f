"""Trials and their design (cohorts, criteria, consent versions, visit schedule, safety
reviews, pauses), and the subjects: screening, consent, dosing, visits, deviations."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trialmgr.db import Audited, Base, IdMixin, TimestampMixin, one_of
from trialmgr.partners.models import Site

# setup → open → closed (to enrolment; follow-up, re-consent and safety go on) → ended;
# paused (dosing and enrolment stopped by a safety pause) is lifted back to open.
TRIAL_STATUSES = ("setup", "open", "paused", "closed", "ended")
VECTOR_TYPES = (
    "aav",
    "lentiviral",
    "gammaretroviral",
    "transposon",
    "adenoviral",
    "genome_editing",
    "other",
)
# FDA LTFU guidance (2020): integrating vectors (gammaretroviral, lentiviral, transposon) and
# genome editing up to 15 years, AAV and other non-integrating vectors up to 5; "other"
# must state its length (nothing defaults silently).
LTFU_YEARS = {
    "lentiviral": 15,
    "gammaretroviral": 15,
    "transposon": 15,
    "genome_editing": 15,
    "aav": 5,
    "adenoviral": 5,
}
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
    # Other ORPHAcodes a screening may carry (e.g. subtypes); the trial's own always counts.
    accepted_orphacodes: Mapped[list[int]] = mapped_column(
        sa.JSON, default=list, server_default=sa.text("'[]'")
    )
    # What `escalate` needs before it can be signed: every slot of the cohort dosed, and
    # this many days of observation (DLT window) since its last dosing.
    escalation_requires_full_cohort: Mapped[bool] = mapped_column(
        default=False, server_default=sa.false()
    )
    dlt_window_days: Mapped[int | None]
    # Opt-in: a public page (no login) shows the pilot's aggregates, small counts suppressed.
    public_summary: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

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
    __audit_allow_delete__ = True  # removable while the trial is in setup

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
    __audit_allow_delete__ = True  # removable while the trial is in setup

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
    """A consent form version. Each site's ethics committee approves it (with its own date,
    often its own language); `approved_on`, when given, approves it at every site."""

    __tablename__ = "consent_version"
    __table_args__ = (sa.UniqueConstraint("trial_id", "version"),)

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    version: Mapped[str] = mapped_column(sa.String(20))
    approved_on: Mapped[date | None]
    reconsent_required: Mapped[bool] = mapped_column(default=False)

    trial: Mapped[Trial] = relationship(back_populates="consent_versions")
    site_approvals: Mapped[list[ConsentSiteApproval]] = relationship(
        back_populates="consent_version", order_by="ConsentSiteApproval.approved_on"
    )

    def approved_at(self, site_id: int) -> date | None:
        """The date from which the site may use this version (None: not approved there)."""
        own = [a.approved_on for a in self.site_approvals if a.site_id == site_id]
        return own[0] if own else self.approved_on


class ConsentSiteApproval(IdMixin, TimestampMixin, Audited, Base):
    """One site's ethics approval of a consent version."""

    __tablename__ = "consent_site_approval"
    __table_args__ = (sa.UniqueConstraint("consent_version_id", "site_id"),)

    consent_version_id: Mapped[int] = mapped_column(sa.ForeignKey("consent_version.id"))
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id"), index=True)
    approved_on: Mapped[date]
    language: Mapped[str | None] = mapped_column(sa.String(35))

    consent_version: Mapped[ConsentVersion] = relationship(back_populates="site_approvals")


class VisitDefinition(IdMixin, TimestampMixin, Audited, Base):
    __tablename__ = "visit_definition"
    __table_args__ = (
        sa.UniqueConstraint("trial_id", "name"),
        sa.CheckConstraint("window_before >= 0 AND window_after >= 0", name="window_not_negative"),
    )
    __audit_allow_delete__ = True  # removable while the trial is in setup (design, not data)

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(60))
    # Study day: dosing day is day 0; negative days are pre-dose (baseline) visits.
    day: Mapped[int]
    window_before: Mapped[int] = mapped_column(default=0)
    window_after: Mapped[int] = mapped_column(default=0)
    # The visit at which the primary endpoint is assessed (retention counts it).
    primary_endpoint: Mapped[bool] = mapped_column(default=False)
    # False once an amendment removed it (its visits already done stay on record).
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())

    trial: Mapped[Trial] = relationship(back_populates="visit_definitions")


class Amendment(IdMixin, Audited, Base):
    """A protocol amendment: after a trial opens, its design changes only through one,
    with a version, an effective date and a reason. `changes` records what changed (old
    and new) and `rescheduled` the subjects whose future visits were recomputed."""

    __tablename__ = "amendment"
    __table_args__ = (sa.UniqueConstraint("trial_id", "version"),)

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    version: Mapped[str] = mapped_column(sa.String(20))
    effective_on: Mapped[date]
    reason: Mapped[str] = mapped_column(sa.Text)
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(sa.String(255))
    changes: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    rescheduled: Mapped[list[str]] = mapped_column(sa.JSON, default=list)


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
    # The status the trial returns to when resumed (open, or closed to enrolment).
    resumes_to: Mapped[str] = mapped_column(sa.String(16), default="open", server_default="open")


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
# Why a scheduled visit was cancelled: an exit after its date, or an amendment.
CANCEL_REASONS = ("withdrawn", "lost_to_follow_up", "died", "amendment")
# Replication-competent virus test results; a positive one is a serious adverse event.
RCR_RESULTS = ("negative", "positive", "indeterminate")
DEVIATION_KINDS = ("visit_out_of_window", "visit_missed", "consent", "dosing_error")
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
    # Written consent comes before any trial-specific procedure (ICH E6 4.8.8), so it may be
    # recorded here; a subject who consented and then failed screening counts as consented.
    consented_on: Mapped[date | None]
    consent_version_id: Mapped[int | None] = mapped_column(sa.ForeignKey("consent_version.id"))

    trial: Mapped[Trial] = relationship()
    site: Mapped[Site] = relationship()
    consent_version: Mapped[ConsentVersion | None] = relationship()


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
    # The version of the latest consent; `consented_on` is the first consent, the lower
    # bound for dosing, never overwritten by a re-consent (those are SubjectConsent rows).
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
        sa.CheckConstraint(
            f"result IS NULL OR {one_of('result', RCR_RESULTS)}", name="result_known"
        ),
        sa.CheckConstraint(
            f"cancel_reason IS NULL OR {one_of('cancel_reason', CANCEL_REASONS)}",
            name="cancel_reason_known",
        ),
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
    result: Mapped[str | None] = mapped_column(sa.String(16))  # RCR tests
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(20))

    subject: Mapped[Subject] = relationship(back_populates="visits")

    def in_window(self, on: date) -> bool:
        return self.window_start <= on <= self.window_end


class Deviation(IdMixin, Audited, Base):
    """A protocol deviation: a visit out of window or missed, a procedure done while
    re-consent was due, a dose more than 10 % away from the cohort's (shown to safety
    monitors)."""

    __tablename__ = "deviation"
    __table_args__ = (sa.CheckConstraint(one_of("kind", DEVIATION_KINDS), name="kind_known"),)

    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subject.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("visit.id"))
    kind: Mapped[str] = mapped_column(sa.String(40))
    description: Mapped[str] = mapped_column(sa.Text)
    occurred_on: Mapped[date]
    recorded_at: Mapped[datetime]
    voided_at: Mapped[datetime | None]
    void_reason: Mapped[str | None] = mapped_column(sa.Text)
