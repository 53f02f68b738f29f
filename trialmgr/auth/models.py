"""Users, roles, site memberships and API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship

from trialmgr.db import Audited, Base, IdMixin, TimestampMixin, one_of, utcnow

ADMIN = "admin"
CONSORTIUM_LEAD = "consortium_lead"
COORDINATOR = "coordinator"
SAFETY_MONITOR = "safety_monitor"
ROLES = (ADMIN, CONSORTIUM_LEAD, COORDINATOR, SAFETY_MONITOR)
ROLE_LABELS = {
    ADMIN: "Administrator",
    CONSORTIUM_LEAD: "Consortium lead",
    COORDINATOR: "Trial coordinator",
    SAFETY_MONITOR: "Safety monitor",
}

# How a user wants clinical dates shown; ISO 8601 is the default, DD-MMM-YYYY is
# the unambiguous form most CRFs use.
DATE_FORMATS = {
    "YYYY-MM-DD": "%Y-%m-%d",
    "DD-MMM-YYYY": "%d-%b-%Y",
    "DD/MM/YYYY": "%d/%m/%Y",
    "MM/DD/YYYY": "%m/%d/%Y",
}

# Memberships scope coordinators to sites. The site table belongs to the
# partners domain; only its name is known here (auth sits below partners).
site_membership = sa.Table(
    "site_membership",
    Base.metadata,
    sa.Column(
        "user_id",
        sa.ForeignKey("user_account.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "site_id", sa.ForeignKey("site.id", ondelete="CASCADE"), primary_key=True, index=True
    ),
)


class User(IdMixin, TimestampMixin, Audited, Base):
    __tablename__ = "user_account"
    __table_args__ = (sa.CheckConstraint(one_of("role", ROLES), name="role_known"),)
    __audit_redact__ = frozenset({"password_hash"})
    __audit_skip__ = frozenset(
        {"created_at", "updated_at", "failed_logins", "locked_until", "last_login_at"}
    )

    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    role: Mapped[str] = mapped_column(sa.String(32))
    active: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    date_format: Mapped[str] = mapped_column(sa.String(16), default="YYYY-MM-DD")
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    # Part of every browser session's id: moving it on ends all of the user's sessions
    # (logout, password or role change, deactivation, an admin's "sign out everywhere").
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    # Set when an administrator sets the password: the user must choose their own at the
    # first sign-in before doing anything else.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        # The session generation is part of the session id (auth/sessions.py): a session
        # issued before the generation moved on no longer names a user.
        return f"{self.id}:{self.session_generation}"

    @property
    def site_ids(self) -> list[int]:
        """The sites a coordinator belongs to; read once per loaded user (every scope check
        asks), forgotten when memberships change."""
        cached = self.__dict__.get("_site_ids")
        if cached is None:
            session = object_session(self)
            if session is None or self.id is None:
                return []
            rows = session.execute(
                sa.select(site_membership.c.site_id).where(site_membership.c.user_id == self.id)
            )
            cached = self.__dict__["_site_ids"] = sorted(r[0] for r in rows)
        return list(cached)

    def forget_site_ids(self) -> None:
        self.__dict__.pop("_site_ids", None)

    def know_site_ids(self, site_ids: list[int]) -> None:
        """The memberships, read in the statement that loaded the user (the bearer token's):
        `site_ids` needs no query of its own."""
        self.__dict__["_site_ids"] = sorted(site_ids)

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


class ApiToken(IdMixin, Base):
    __tablename__ = "api_token"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120), default="api")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")

    def is_valid(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now and self.user.active


@dataclass(frozen=True)
class SystemActor:
    """The actor for command-line and scheduler work, where no user is signed in."""

    email: str = "system"
    role: str = "system"
    id: None = None
    # Whose calendar "today" is for the dates it is given (None: UTC).
    timezone: str | None = None
