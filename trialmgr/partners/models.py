"""Consortium partners, clinical sites and their approvals."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trialmgr.clock import utcnow
from trialmgr.db import Audited, Base, IdMixin, TimestampMixin, one_of

PARTNER_KINDS = (
    "sponsor",
    "clinical_site",
    "laboratory",
    "manufacturer",
    "patient_organisation",
    "academic",
    "regulatory",
)
SITE_STATUSES = ("pending", "active", "suspended", "closed")
# What happened to a site's status, and the status it leaves the site in from that date.
STATUS_CHANGES = {
    "activation": "active",
    "suspension": "suspended",
    "reactivation": "active",
    "closure": "closed",
}
# Ethics (IRB/EC), biosafety (IBC), a signed clinical trial agreement, and the
# site initiation visit: all four current before a site may screen.
APPROVAL_KINDS = ("irb", "ibc", "contract", "siv")
APPROVAL_LABELS = {
    "irb": "Ethics committee / IRB",
    "ibc": "Institutional Biosafety Committee",
    "contract": "Clinical trial agreement",
    "siv": "Site initiation visit",
}
SITE_CODE_PATTERN = r"^[A-Z0-9]{2,10}$"


def fold(text: str) -> str:
    """Text as the directory search compares it: accents removed, case folded ("Hôpital"
    and "hopital" fold alike), the same on SQLite and PostgreSQL because it is done here,
    not by the database."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class Partner(IdMixin, TimestampMixin, Audited, Base):
    __tablename__ = "partner"
    __table_args__ = (sa.CheckConstraint(one_of("kind", PARTNER_KINDS), name="kind_known"),)
    # Derived from the audited fields, refreshed on every write: not a change of its own.
    __audit_skip__ = frozenset({"created_at", "updated_at", "search_text"})

    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    short_name: Mapped[str] = mapped_column(sa.String(40))
    kind: Mapped[str] = mapped_column(sa.String(32), index=True)
    country: Mapped[str] = mapped_column(sa.String(2), index=True)
    contact_email: Mapped[str | None] = mapped_column(sa.String(255))
    website: Mapped[str | None] = mapped_column(sa.String(255))
    consortium_role: Mapped[str | None] = mapped_column(sa.Text)
    active: Mapped[bool] = mapped_column(default=True)
    # Name, short name and consortium role, folded (`fold`): what the directory search reads.
    search_text: Mapped[str] = mapped_column(sa.Text, default="", server_default="")

    sites: Mapped[list[Site]] = relationship(back_populates="partner", order_by="Site.code")

    def refresh_search_text(self) -> None:
        parts = (self.name, self.short_name, self.consortium_role)
        self.search_text = fold(" | ".join(p for p in parts if p))


@sa.event.listens_for(Partner, "before_insert")
@sa.event.listens_for(Partner, "before_update")
def _fold_search_text(mapper: Any, connection: Any, partner: Partner) -> None:
    partner.refresh_search_text()


class Site(IdMixin, TimestampMixin, Audited, Base):
    __tablename__ = "site"
    __table_args__ = (
        sa.CheckConstraint(one_of("status", SITE_STATUSES), name="status_known"),
        sa.CheckConstraint("target_enrollment >= 0", name="target_not_negative"),
    )

    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partner.id"), index=True)
    code: Mapped[str] = mapped_column(sa.String(10), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    country: Mapped[str] = mapped_column(sa.String(2))
    principal_investigator: Mapped[str | None] = mapped_column(sa.String(120))
    target_enrollment: Mapped[int] = mapped_column(default=0)
    # The status today and the dates of the first activation and the closure, kept in step
    # with `status_changes` (the history the clinical gate reads) for lists and filters.
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)
    activated_on: Mapped[date | None]
    closed_on: Mapped[date | None]
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    # IANA zone: the calendar day of a dosing (study day 0) is the site's local day.
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC", server_default="UTC")

    partner: Mapped[Partner] = relationship(back_populates="sites")
    approvals: Mapped[list[SiteApproval]] = relationship(
        back_populates="site",
        order_by="(SiteApproval.kind, SiteApproval.granted_on, SiteApproval.id)",
    )
    status_changes: Mapped[list[SiteStatusChange]] = relationship(
        back_populates="site", order_by="(SiteStatusChange.on, SiteStatusChange.id)"
    )


def _status_follows_change() -> str:
    return " OR ".join(
        f"(change = '{change}' AND status = '{status}')"
        for change, status in STATUS_CHANGES.items()
    )


class SiteStatusChange(IdMixin, Audited, Base):
    """One step of a site's status history: from `on` (a day at the site) the site is in
    `status`, until the next change. Appended, never edited: closing is final."""

    __tablename__ = "site_status_change"
    __table_args__ = (
        sa.CheckConstraint(one_of("change", tuple(STATUS_CHANGES)), name="change_known"),
        sa.CheckConstraint(one_of("status", SITE_STATUSES[1:]), name="status_known"),
        sa.CheckConstraint(_status_follows_change(), name="status_follows_change"),
        sa.Index("ix_site_status_change_site_id_on", "site_id", "on"),
    )

    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id"))
    change: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16))
    on: Mapped[date]
    reason: Mapped[str | None] = mapped_column(sa.Text)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by: Mapped[str] = mapped_column(sa.String(255))

    site: Mapped[Site] = relationship(back_populates="status_changes")


class SiteApproval(IdMixin, TimestampMixin, Audited, Base):
    __tablename__ = "site_approval"
    __table_args__ = (
        sa.CheckConstraint(one_of("kind", APPROVAL_KINDS), name="kind_known"),
        sa.CheckConstraint(
            "expires_on IS NULL OR expires_on >= granted_on", name="expiry_after_grant"
        ),
    )

    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    reference: Mapped[str] = mapped_column(sa.String(120))
    granted_on: Mapped[date]
    # Valid through this date; None for approvals that do not lapse (a signed
    # contract, a completed initiation visit).
    expires_on: Mapped[date | None]
    withdrawn_on: Mapped[date | None]
    withdrawn_reason: Mapped[str | None] = mapped_column(sa.Text)
    document_name: Mapped[str | None] = mapped_column(sa.String(255))
    document_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    document_size: Mapped[int | None]

    site: Mapped[Site] = relationship(back_populates="approvals")

    def is_current(self, on: date) -> bool:
        """Granted on or before `on`, not expired before it, not withdrawn by then."""
        if self.granted_on > on:
            return False
        if self.expires_on is not None and self.expires_on < on:
            return False
        return not (self.withdrawn_on is not None and self.withdrawn_on <= on)
