"""Safety records: adverse events with their versions and medical reviews, lab results
graded by CTCAE v5.0, expedited-reporting clocks, stopping rules and their firings, the
follow-on work queue, in-app notifications, and a user-supplied MedDRA dictionary."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trialmgr.db import Audited, Base, IdMixin, TimestampMixin, one_of
from trialmgr.enrollment.models import Subject

# ICH E2A: serious if any of these.
SERIOUSNESS_CRITERIA = (
    "death",
    "life_threatening",
    "hospitalisation",
    "disability",
    "congenital_anomaly",
    "important_medical_event",
)
CAUSALITY = ("unrelated", "unlikely", "possible", "probable", "definite")
SUSPECTED = ("possible", "probable", "definite")  # "suspected": possible or above
OUTCOMES = (
    "recovering",
    "recovered",
    "recovered_with_sequelae",
    "not_recovered",
    "fatal",
    "unknown",
)
ACTIONS = ("none", "treatment_given", "procedure", "hospitalisation", "other")
# Adverse events of special interest for gene therapy (DOMAIN.md).
AESI_CATEGORIES = (
    "hepatotoxicity",
    "tma_complement",
    "myocarditis",
    "infusion_reaction",
    "malignancy",
    "neurological",
    "autoimmune",
    "haematological",
)
AUTHORITIES = ("sponsor", "FDA", "EU", "IBC")
# Which events a reporting rule covers.
CLOCK_CONDITIONS = (
    "serious",  # any serious adverse event (site to sponsor)
    "susar",  # serious, unexpected, suspected
    "susar_fatal_or_lt",  # ... and fatal or life-threatening
    "susar_other",  # ... and neither
)
REPORT_KINDS = ("initial", "follow_up")
STOPPING_KINDS = ("death_related", "grade4_related", "same_soc_grade3", "hys_law", "tma_aesi")
WORK_KINDS = (
    "follow_up_report",
    "medical_review",
    "death_report",
    "expedited_submission",
    "record_ae",
    "lab_ae",
)
WORK_STATUSES = ("open", "done", "cancelled")
ANALYTE_CODES = ("ALT", "AST", "BILI", "CREAT", "PLT", "ANC", "HGB", "WBC", "LYMPH")


class AdverseEvent(IdMixin, TimestampMixin, Audited, Base):
    """The current version of an adverse event; every earlier version is kept in
    AdverseEventVersion (follow-up information adds versions, never overwrites)."""

    __tablename__ = "adverse_event"
    __table_args__ = (
        sa.CheckConstraint("grade BETWEEN 1 AND 5", name="grade_range"),
        sa.CheckConstraint(one_of("causality", CAUSALITY), name="causality_known"),
        sa.CheckConstraint(
            f"outcome IS NULL OR {one_of('outcome', OUTCOMES)}", name="outcome_known"
        ),
        sa.CheckConstraint(
            f"aesi_category IS NULL OR {one_of('aesi_category', AESI_CATEGORIES)}",
            name="aesi_category_known",
        ),
        sa.CheckConstraint(
            f"action_taken IS NULL OR {one_of('action_taken', ACTIONS)}", name="action_known"
        ),
        sa.Index("ix_adverse_event_trial_soc_grade", "trial_id", "soc", "grade"),
        sa.Index("ix_adverse_event_trial_grade", "trial_id", "grade"),
        # The safety dashboard (safety/services/summary.py): its aggregates group one trial's
        # events by site, subject and SOC and read only these columns: an index-only scan in
        # grouping order, and a coordinator's sites are ranges of it.
        sa.Index(
            "ix_adverse_event_dashboard",
            "trial_id",
            "site_id",
            "subject_id",
            "soc",
            "grade",
            "cohort_id",
            "onset_date",
        ),
        # Its counts of serious (open) events, SUSARs and AESIs, per site.
        sa.Index(
            "ix_adverse_event_trial_serious", "trial_id", "serious", "site_id", "resolution_date"
        ),
        sa.Index("ix_adverse_event_trial_susar", "trial_id", "susar", "site_id"),
        sa.Index("ix_adverse_event_trial_aesi", "trial_id", "aesi", "site_id", "onset_date"),
        # The grade chart (events per cohort and grade, grouped per site first): read in
        # its grouping order from four narrow columns, rather than sorting the dashboard
        # index's rows.
        sa.Index("ix_adverse_event_grade_chart", "trial_id", "site_id", "cohort_id", "grade"),
    )

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subject.id"), index=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id"), index=True)
    cohort_id: Mapped[int] = mapped_column(sa.ForeignKey("cohort.id"), index=True)
    version: Mapped[int] = mapped_column(default=1)
    term: Mapped[str] = mapped_column(sa.String(200))  # verbatim, as reported
    pt_term: Mapped[str | None] = mapped_column(sa.String(200))  # MedDRA preferred term
    pt_code: Mapped[str | None] = mapped_column(sa.String(20))
    soc: Mapped[str] = mapped_column(sa.String(200))
    onset_date: Mapped[date]
    # End of the event; for a fatal outcome, the date of death.
    resolution_date: Mapped[date | None]
    grade: Mapped[int]
    seriousness_criteria: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    serious: Mapped[bool] = mapped_column(index=True)
    causality: Mapped[str] = mapped_column(sa.String(12))
    suspected: Mapped[bool]
    expected: Mapped[bool]
    susar: Mapped[bool] = mapped_column(index=True)
    aesi: Mapped[bool] = mapped_column(default=False)
    aesi_category: Mapped[str | None] = mapped_column(sa.String(30))
    action_taken: Mapped[str | None] = mapped_column(sa.String(30))
    outcome: Mapped[str | None] = mapped_column(sa.String(30))
    site_awareness_at: Mapped[datetime]
    # The regulatory clocks run from here (defaults to the site's awareness).
    sponsor_awareness_at: Mapped[datetime]
    source_visit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("visit.id"))
    narrative: Mapped[str | None] = mapped_column(sa.Text)

    subject: Mapped[Subject] = relationship()
    versions: Mapped[list[AdverseEventVersion]] = relationship(
        back_populates="adverse_event", order_by="AdverseEventVersion.version"
    )


class AdverseEventVersion(IdMixin, Audited, Base):
    """What an adverse event said at each version, with when the information became known."""

    __tablename__ = "adverse_event_version"
    __table_args__ = (sa.UniqueConstraint("adverse_event_id", "version"),)

    adverse_event_id: Mapped[int] = mapped_column(sa.ForeignKey("adverse_event.id"))
    version: Mapped[int]
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    awareness_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(sa.String(255))

    adverse_event: Mapped[AdverseEvent] = relationship(back_populates="versions")


class AdverseEventReview(IdMixin, Audited, Base):
    """A safety monitor's signed medical review of one version of an event; an edit after
    it makes the review outdated."""

    __tablename__ = "adverse_event_review"

    adverse_event_id: Mapped[int] = mapped_column(sa.ForeignKey("adverse_event.id"), index=True)
    version: Mapped[int]
    comment: Mapped[str | None] = mapped_column(sa.Text)
    signed_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    signed_by: Mapped[str] = mapped_column(sa.String(255))
    signed_at: Mapped[datetime]
    signature_meaning: Mapped[str] = mapped_column(sa.String(200))


class LabResult(IdMixin, TimestampMixin, Audited, Base):
    """One analyte of one draw, as entered and converted to the canonical unit, graded."""

    __tablename__ = "lab_result"
    __table_args__ = (
        sa.CheckConstraint(one_of("analyte", ANALYTE_CODES), name="analyte_known"),
        sa.CheckConstraint("grade BETWEEN 0 AND 4", name="grade_range"),
        sa.Index("ix_lab_result_subject_collected", "subject_id", "collected_at"),
        sa.Index("ix_lab_result_trial_analyte_grade", "trial_id", "analyte", "grade"),
        # Lab shifts and the ALT chart: per subject and analyte, baseline and worst grade.
        sa.Index(
            "ix_lab_result_trial_subject_analyte",
            "trial_id",
            "subject_id",
            "analyte",
            "collected_at",
            "grade",
        ),
        # The same per site (the dashboard groups by site, subject and analyte: a
        # coordinator's sites are ranges of it) with the ULN multiple the ALT chart ranks by:
        # both read without the table.
        sa.Index(
            "ix_lab_result_dashboard",
            "trial_id",
            "site_id",
            "subject_id",
            "analyte",
            "collected_at",
            "grade",
            "uln_multiple",
        ),
    )

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"))
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subject.id"))
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id"), index=True)
    analyte: Mapped[str] = mapped_column(sa.String(8))
    value: Mapped[Decimal] = mapped_column(sa.Numeric(18, 6))
    unit: Mapped[str] = mapped_column(sa.String(20))
    uln: Mapped[Decimal | None] = mapped_column(sa.Numeric(18, 6))
    lln: Mapped[Decimal | None] = mapped_column(sa.Numeric(18, 6))
    value_canonical: Mapped[Decimal] = mapped_column(sa.Numeric(18, 6))
    canonical_unit: Mapped[str] = mapped_column(sa.String(20))
    uln_multiple: Mapped[Decimal | None] = mapped_column(sa.Numeric(18, 6))
    grade: Mapped[int]
    collected_at: Mapped[datetime]
    hys_law: Mapped[bool] = mapped_column(default=False)
    adverse_event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("adverse_event.id"))

    subject: Mapped[Subject] = relationship()


class ExpeditedRule(IdMixin, TimestampMixin, Audited, Base):
    """One line of a trial's expedited-reporting table (seeded with the defaults of
    DOMAIN.md; administrators edit it)."""

    __tablename__ = "expedited_rule"
    __table_args__ = (
        sa.UniqueConstraint("trial_id", "authority", "condition"),
        sa.CheckConstraint(one_of("authority", AUTHORITIES), name="authority_known"),
        sa.CheckConstraint(one_of("condition", CLOCK_CONDITIONS), name="condition_known"),
        sa.CheckConstraint(
            "(deadline_hours IS NULL) <> (deadline_days IS NULL)", name="one_deadline"
        ),
    )

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    authority: Mapped[str] = mapped_column(sa.String(10))
    condition: Mapped[str] = mapped_column(sa.String(20))
    deadline_hours: Mapped[int | None]
    deadline_days: Mapped[int | None]
    follow_up_days: Mapped[int | None]  # EU: complete report within 8 more days
    active: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str] = mapped_column(sa.String(300))


class ExpeditedReport(IdMixin, TimestampMixin, Audited, Base):
    """A reporting clock: due date from the awareness date, submission date and reference,
    and whether it was on time."""

    __tablename__ = "expedited_report"
    __table_args__ = (
        sa.UniqueConstraint("adverse_event_id", "authority", "kind"),
        sa.CheckConstraint(one_of("authority", AUTHORITIES), name="authority_known"),
        sa.CheckConstraint(one_of("kind", REPORT_KINDS), name="kind_known"),
        sa.Index("ix_expedited_report_open_due", "submitted_at", "due_at"),
        sa.Index("ix_expedited_report_trial_open_due", "trial_id", "submitted_at", "due_at"),
    )

    adverse_event_id: Mapped[int] = mapped_column(sa.ForeignKey("adverse_event.id"), index=True)
    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id"), index=True)
    rule_id: Mapped[int] = mapped_column(sa.ForeignKey("expedited_rule.id"))
    authority: Mapped[str] = mapped_column(sa.String(10))
    kind: Mapped[str] = mapped_column(sa.String(10), default="initial")
    clock_start: Mapped[datetime]
    due_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    reference: Mapped[str | None] = mapped_column(sa.String(120))
    late: Mapped[bool | None]

    adverse_event: Mapped[AdverseEvent] = relationship()


class StoppingRule(IdMixin, TimestampMixin, Audited, Base):
    """A typed stopping rule with parameters (never code); any active rule that fires
    pauses dosing trial-wide."""

    __tablename__ = "stopping_rule"
    __table_args__ = (
        sa.UniqueConstraint("trial_id", "kind"),
        sa.CheckConstraint(one_of("kind", STOPPING_KINDS), name="kind_known"),
    )

    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(30))
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str] = mapped_column(sa.String(300))


class StoppingRuleFiring(IdMixin, Audited, Base):
    """A rule that fired, with the records that made it fire; the same records never fire
    the same rule twice."""

    __tablename__ = "stopping_rule_firing"

    rule_id: Mapped[int] = mapped_column(sa.ForeignKey("stopping_rule.id"), index=True)
    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"), index=True)
    fired_at: Mapped[datetime]
    triggers: Mapped[list[str]] = mapped_column(sa.JSON)
    reason: Mapped[str] = mapped_column(sa.Text)
    pause_id: Mapped[int] = mapped_column(sa.ForeignKey("trial_pause.id"))


class WorkItem(IdMixin, TimestampMixin, Audited, Base):
    """A task an event implies (follow-up report, medical review, death report, expedited
    submission, an AE to record from an LTFU answer, an RCR result or a graded lab), with
    its owner role and due date; closed by the record that fulfils it."""

    __tablename__ = "work_item"
    __table_args__ = (
        sa.CheckConstraint(one_of("kind", WORK_KINDS), name="kind_known"),
        sa.CheckConstraint(one_of("status", WORK_STATUSES), name="status_known"),
        sa.Index("ix_work_item_open", "status", "owner_role", "due_on"),
    )

    kind: Mapped[str] = mapped_column(sa.String(24))
    owner_role: Mapped[str] = mapped_column(sa.String(32))
    trial_id: Mapped[int] = mapped_column(sa.ForeignKey("trial.id"))
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id"), index=True)
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subject.id"), index=True)
    adverse_event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("adverse_event.id"))
    expedited_report_id: Mapped[int | None] = mapped_column(sa.ForeignKey("expedited_report.id"))
    lab_result_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lab_result.id"))
    visit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("visit.id"))
    title: Mapped[str] = mapped_column(sa.String(300))
    due_on: Mapped[date | None]
    status: Mapped[str] = mapped_column(sa.String(12), default="open")
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(sa.String(255))
    prefill: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)

    subject: Mapped[Subject] = relationship()
    # Tasks of a new event are added before the event is flushed (one flush for all).
    adverse_event: Mapped[AdverseEvent | None] = relationship()


class Notification(IdMixin, Base):
    """An in-app message to one user (a stopping rule fired, a report is ready)."""

    __tablename__ = "notification"
    __table_args__ = (sa.Index("ix_notification_user_unread", "user_id", "read_at"),)

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    kind: Mapped[str] = mapped_column(sa.String(40))
    title: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    link: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]


class MeddraTerm(IdMixin, Base):
    """A preferred term of the consortium's own MedDRA licence, imported from a CSV file
    (MedDRA is licensed: trialmgr ships none)."""

    __tablename__ = "meddra_term"

    pt_code: Mapped[str] = mapped_column(sa.String(20), unique=True)
    pt_term: Mapped[str] = mapped_column(sa.String(200), index=True)
    soc: Mapped[str] = mapped_column(sa.String(200))
    soc_code: Mapped[str | None] = mapped_column(sa.String(20))
