"""The audit trail: one append-only, hash-chained table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column

from trialmgr.audit.chain import canonical_text
from trialmgr.db import Base

GENESIS_HASH = "0" * 64


class CanonicalJSON(sa.TypeDecorator[Any]):
    """A JSON column whose text is stored in the chain's canonical form (`canonical_text`:
    sorted keys, compact separators, UTF-8), so the bytes stored are the bytes hashed and
    the full walk need not re-sort them. Read back as JSON; the column is plain JSON in the
    database (json on PostgreSQL, which keeps the text as given)."""

    impl = sa.JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            from psycopg.types.json import Json

            return lambda value: None if value is None else Json(value, dumps=canonical_text)
        return lambda value: None if value is None else canonical_text(value)


class AuditEvent(Base):
    __tablename__ = "audit_event"
    __table_args__ = (sa.Index("ix_audit_event_entity_entity_id", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    at: Mapped[datetime] = mapped_column(index=True)
    actor_id: Mapped[int | None]
    actor: Mapped[str] = mapped_column(sa.String(255), index=True)
    action: Mapped[str] = mapped_column(sa.String(64))
    entity: Mapped[str] = mapped_column(sa.String(64))
    entity_id: Mapped[str | None] = mapped_column(sa.String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(CanonicalJSON)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64), unique=True)


class AuditCheckpoint(Base):
    """How far the chain is known to be intact: the last row a full walk verified (and its
    hash). Requests verify from here; the CLI and the scheduler walk the whole chain and
    move it. A checkpoint is a cache of verification work, not trial data."""

    __tablename__ = "audit_checkpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    verified_id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"))
    verified_hash: Mapped[str] = mapped_column(sa.String(64))
    verified_count: Mapped[int]
    verified_at: Mapped[datetime]
