"""Writing and checking the audit trail.

Every change to an `Audited` model is recorded by a session listener inside
the same transaction, with the actor and reason of the enclosing `audited()`
block; a flush of audited changes outside such a block is refused, so no
service can write trial data unaudited. Events that are not row changes
(logins, token use) go through `record()`.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from trialmgr.audit.chain import jsonable, row_hash
from trialmgr.audit.models import GENESIS_HASH, AuditCheckpoint, AuditEvent
from trialmgr.db import Audited, utcnow
from trialmgr.extensions import db

# Any constant works: all writers to the chain take this lock on PostgreSQL.
_CHAIN_LOCK_KEY = 0x7A0D17


class Actor(Protocol):
    id: Any
    email: str


class AuditContextMissing(RuntimeError):
    """An audited row was written outside `audited()`: a programming error."""


@dataclass(frozen=True)
class _Context:
    actor: Actor | None
    reason: str | None
    action: str | None


def _label(actor: Actor | None) -> tuple[int | None, str]:
    if actor is None:
        return None, "anonymous"
    actor_id = actor.id if isinstance(actor.id, int) else None
    return actor_id, actor.email


@contextlib.contextmanager
def audited(
    actor: Actor | None, *, reason: str | None = None, action: str | None = None
) -> Iterator[None]:
    """Attribute every audited change made inside the block to `actor`, with `reason`."""
    session = db.session()
    session.flush()
    previous = session.info.get("audit_context")
    session.info["audit_context"] = _Context(actor, reason, action)
    try:
        yield
        session.flush()
    finally:
        session.info["audit_context"] = previous


def record(
    actor: Actor | None,
    action: str,
    entity: str,
    entity_id: Any = None,
    changes: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Append one event that is not a row change (login, logout, token issued...)."""
    actor_id, label = _label(actor)
    row = (actor_id, label, action, entity, entity_id, jsonable(changes or {}), reason)
    _append(db.session(), [row])


# Audit rows are gathered during the transaction and chained at its commit: the chain's
# head is read and extended only inside the commit, under a lock held that briefly
# (PostgreSQL: an advisory lock taken last, after every other lock of the transaction, so
# it cannot deadlock), instead of from the first audited write to the end of every
# request. Rows gathered inside a savepoint that rolls back are dropped with it.
_PENDING = "audit_pending"
_MARKS = "audit_savepoint_marks"


def _append(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Rows whose `changes` are already as stored (`jsonable`)."""
    at = utcnow()
    session.info.setdefault(_PENDING, []).extend((at, *row) for row in rows)


# Built once: every audited write runs them.
_CHAIN_LOCK = sa.text("SELECT pg_advisory_xact_lock(:k)")
_CHAIN_HEAD = sa.select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
_INSERT_ROWS = sa.insert(AuditEvent)


def _chain_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(_CHAIN_LOCK, {"k": _CHAIN_LOCK_KEY})
    prev = conn.execute(_CHAIN_HEAD).scalar_one_or_none() or GENESIS_HASH
    batch = []
    for at, actor_id, label, action, entity, entity_id, changes, reason in pending:
        values = {
            "at": at,
            "actor_id": actor_id,
            "actor": label,
            "action": action,
            "entity": entity,
            "entity_id": None if entity_id is None else str(entity_id),
            "changes": changes,
            "reason": reason,
            "prev_hash": prev,
        }
        values["hash"] = prev = row_hash(**values)
        batch.append(values)
    conn.execute(_INSERT_ROWS, batch)


def _before_commit(session: Session) -> None:
    session.flush()  # the last changes' audit rows join the pending ones
    _chain_pending(session)


def _transaction_created(session: Session, transaction: Any) -> None:
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[id(transaction)] = len(session.info.get(_PENDING, []))


def _rolled_back(session: Session, previous_transaction: Any) -> None:
    marks = session.info.get(_MARKS, {})
    if previous_transaction.nested and id(previous_transaction) in marks:
        del session.info.setdefault(_PENDING, [])[marks.pop(id(previous_transaction)) :]
    elif not previous_transaction.nested:
        session.info.pop(_PENDING, None)
        session.info.pop(_MARKS, None)


# Per audited class, its audited columns in the mapper's order with whether each is redacted:
# worked out once, not for every row of every flush.
_AUDITED_COLUMNS: dict[type, tuple[tuple[str, bool], ...]] = {}


def _audited_columns(cls: type[Audited], state: Any) -> tuple[tuple[str, bool], ...]:
    columns = _AUDITED_COLUMNS.get(cls)
    if columns is None:
        columns = _AUDITED_COLUMNS[cls] = tuple(
            (attr.key, attr.key in cls.__audit_redact__)
            for attr in state.mapper.column_attrs
            if attr.key not in cls.__audit_skip__ and attr.key != "id"
        )
    return columns


def _column_changes(obj: Audited, op: str, state: Any) -> dict[str, dict[str, Any]]:
    changes: dict[str, dict[str, Any]] = {}
    columns = _audited_columns(type(obj), state)
    if op == "create":
        # A new row: every column given a value (None is no value).
        values = state.dict
        for key, redact in columns:
            new = values.get(key)
            if new is not None:
                changes[key] = {"old": None, "new": "[redacted]" if redact else jsonable(new)}
        return changes
    attrs = state.attrs
    for key, redact in columns:
        hist = attrs[key].history
        if not hist.has_changes():
            continue
        old = hist.deleted[0] if hist.deleted else None
        new = hist.added[0] if hist.added else None
        if old == new:
            continue
        if redact:
            old, new = ("[redacted]" if old is not None else None), "[redacted]"
        changes[key] = {"old": jsonable(old), "new": jsonable(new)}
    return changes


def _before_flush(session: Session, flush_context: Any, instances: Any) -> None:
    for obj in session.deleted:
        if isinstance(obj, Audited) and not obj.__audit_allow_delete__:
            raise AuditContextMissing(
                f"{type(obj).__name__} rows are never deleted; record a correction instead"
            )


def _after_flush(session: Session, flush_context: Any) -> None:
    pending: list[tuple[str, Audited]] = []
    pending += [("create", o) for o in session.new if isinstance(o, Audited)]
    pending += [("update", o) for o in session.dirty if isinstance(o, Audited)]
    pending += [("delete", o) for o in session.deleted if isinstance(o, Audited)]
    rows = []
    context: _Context | None = session.info.get("audit_context")
    for op, obj in pending:
        state: Any = inspect(obj)
        changes = _column_changes(obj, op, state) if op != "delete" else {}
        if op == "update" and not changes:
            continue
        if context is None:
            raise AuditContextMissing(f"{op} of {type(obj).__name__} outside an audited() block")
        actor_id, label = _label(context.actor)
        key = [state.dict.get(prop.key) for prop in state.mapper.primary_key]
        entity_id = key[0] if len(key) == 1 else key
        table_name = type(obj).__table__.name  # type: ignore[attr-defined]
        action = context.action or op
        rows.append((actor_id, label, action, table_name, entity_id, changes, context.reason))
    if rows:
        _append(session, rows)


def install_listeners() -> None:
    """Attach the audit listeners to every ORM session (idempotent)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "before_flush", _before_flush)
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_transaction_create", _transaction_created)
        event.listen(Session, "after_soft_rollback", _rolled_back)


@dataclass
class Verification:
    valid: bool
    checked: int
    head: str
    first_bad_id: int | None = None
    problem: str | None = None
    # The checkpoint the walk started from (None: from the first row).
    since_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"valid": self.valid, "checked": self.checked, "head": self.head}
        out["from_checkpoint"] = self.since_id
        if not self.valid:
            out["first_bad"] = {"id": self.first_bad_id, "problem": self.problem}
        return out


CHECKPOINT_ID = 1


# The walk reads each row as three byte strings the database assembles: the canonical JSON
# before `changes` (action, actor, actor_id, at), the stored `changes` and the canonical
# JSON after it (entity, entity_id, prev_hash, reason): keys in sorted order, strings
# escaped as json.dumps(ensure_ascii=False) escapes them (SQLite's json_object, PostgreSQL's
# to_json write the same escapes). SQLite writes each piece with one json_object call
# (fewer function calls per row than quoting field by field); both send bytes (a BLOB, a
# bytea in binary format), so Python neither decodes nor re-encodes them: it only sorts
# `changes` (orjson) and hashes. Rows are read in batches through a server-side cursor
# (PostgreSQL) or fetchmany (SQLite): memory stays flat whatever the chain's length.
_WALK_BATCH = 10_000
_WALK_SQL = {
    "sqlite": """
        SELECT id, prev_hash, hash,
          CAST(rtrim(json_object('action', action, 'actor', actor, 'actor_id', actor_id,
                                 'at', replace(CAST(at AS TEXT), ' ', 'T') || 'Z'), '}')
               || ',"changes":' AS BLOB),
          CAST(changes AS BLOB),
          CAST(',' || ltrim(json_object('entity', entity, 'entity_id', entity_id,
                                        'prev_hash', prev_hash, 'reason', reason), '{')
               AS BLOB)
        FROM audit_event WHERE id > ? ORDER BY id""",
    "postgresql": """
        SELECT id, prev_hash, hash,
          convert_to('{"action":' || to_json(action)::text || ',"actor":' || to_json(actor)::text
          || ',"actor_id":' || coalesce(to_json(actor_id)::text, 'null')
          || ',"at":"' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
          || 'Z","changes":', 'UTF8'),
          convert_to(changes::text, 'UTF8'),
          convert_to(',"entity":' || to_json(entity)::text
          || ',"entity_id":' || coalesce(to_json(entity_id)::text, 'null')
          || ',"prev_hash":' || to_json(prev_hash)::text
          || ',"reason":' || coalesce(to_json(reason)::text, 'null') || '}', 'UTF8')
        FROM audit_event WHERE id > %s ORDER BY id""",
}


def _reference_hash(row_id: int) -> str:
    """The row's hash computed the reference way, from its values as the ORM reads them."""
    table = AuditEvent.__table__
    row = db.session.execute(sa.select(table).where(table.c.id == row_id)).mappings().one()
    return row_hash(
        at=row["at"],
        actor_id=row["actor_id"],
        actor=row["actor"],
        action=row["action"],
        entity=row["entity"],
        entity_id=row["entity_id"],
        changes=row["changes"],
        reason=row["reason"],
        prev_hash=row["prev_hash"],
    )


def _walk_batches(after_id: int) -> Iterator[list[tuple[Any, ...]]]:
    connection = db.session.connection()
    raw: Any = connection.connection.dbapi_connection
    dialect = connection.dialect.name
    if dialect == "postgresql":
        # Server-side (rows come batch by batch), binary (the bytea pieces arrive as bytes).
        cursor = raw.cursor(name="audit_walk", binary=True)
        cursor.itersize = _WALK_BATCH
    else:
        cursor = raw.cursor()
    try:
        cursor.execute(_WALK_SQL[dialect], (after_id,))
        while batch := cursor.fetchmany(_WALK_BATCH):
            yield batch
    finally:
        cursor.close()


def _walk(prev: str, after_id: int, checked: int) -> tuple[Verification, int]:
    """Verify the rows after `after_id`; the outcome and the last row verified.

    A row whose fast hash does not match (a float orjson writes differently, a text the
    database escapes differently) is recomputed the reference way before it is called
    bad."""
    last_id = after_id
    sha256 = hashlib.sha256
    dumps, loads, sort = orjson.dumps, orjson.loads, orjson.OPT_SORT_KEYS
    for batch in _walk_batches(after_id):
        for row_id, prev_hash, stored, head, changes, tail in batch:
            checked += 1
            if prev_hash != prev:
                return Verification(
                    False, checked, prev, row_id, "prev_hash does not match"
                ), last_id
            try:
                fast: str | None = sha256(
                    head + dumps(loads(changes), option=sort) + tail
                ).hexdigest()
            except (orjson.JSONDecodeError, orjson.JSONEncodeError):
                fast = None  # a value orjson cannot write (an integer past 64 bits)
            if fast != stored and _reference_hash(row_id) != stored:
                bad = Verification(False, checked, prev, row_id, "hash does not match contents")
                return bad, last_id
            prev, last_id = stored, row_id
    return Verification(True, checked, prev), last_id


def verify(full: bool = True, now: datetime | None = None) -> Verification:
    """Recompute every row's hash in order and report the first row that does not match.

    `full=False` (the API and the page) starts from the checkpoint left by the last full
    walk, after checking that its row still carries the hash it had, and verifies only the
    rows written since; the full walk (`flask audit verify`, the scheduler) starts from the
    genesis. A valid walk moves the checkpoint forward."""
    start_prev, start_id, start_count, since = GENESIS_HASH, 0, 0, None
    checkpoint = db.session.get(AuditCheckpoint, CHECKPOINT_ID)
    if not full and checkpoint is not None:
        anchored = db.session.execute(
            sa.select(AuditEvent.hash).where(AuditEvent.id == checkpoint.verified_id)
        ).scalar_one_or_none()
        if anchored != checkpoint.verified_hash:
            return Verification(
                False,
                checkpoint.verified_count,
                checkpoint.verified_hash,
                checkpoint.verified_id,
                "the verified row changed since the last full verification",
                checkpoint.verified_id,
            )
        start_prev, start_id = checkpoint.verified_hash, checkpoint.verified_id
        start_count, since = checkpoint.verified_count, checkpoint.verified_id
    outcome, last_id = _walk(start_prev, start_id, start_count)
    outcome.since_id = since
    if outcome.valid and last_id and (checkpoint is None or last_id > checkpoint.verified_id):
        if checkpoint is None:
            checkpoint = AuditCheckpoint(id=CHECKPOINT_ID)
            db.session.add(checkpoint)
        checkpoint.verified_id = last_id
        checkpoint.verified_hash = outcome.head
        checkpoint.verified_count = outcome.checked
        checkpoint.verified_at = now or utcnow()
        db.session.flush()
    return outcome


def head() -> str:
    """The newest row's hash: printed in every report's footer."""
    table = AuditEvent.__table__
    found = db.session.execute(
        sa.select(table.c.hash).order_by(table.c.id.desc()).limit(1)
    ).scalar_one_or_none()
    return found or GENESIS_HASH


@dataclass
class AuditFilter:
    entity: str | None = None
    entity_id: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # Any of these (entity, ids) pairs, e.g. a site and its approvals on one page.
    related: list[tuple[str, list[str]]] | None = None


def recent(filters: AuditFilter, limit: int) -> list[AuditEvent]:
    """The newest `limit` events matching the filters (a record's history on its page)."""
    return list(db.session.execute(query(filters).limit(limit)).scalars())


def query(filters: AuditFilter) -> sa.Select[tuple[AuditEvent]]:
    """Audit events matching the filters, newest first."""
    q = sa.select(AuditEvent)
    if filters.entity:
        q = q.where(AuditEvent.entity == filters.entity)
    if filters.entity_id:
        q = q.where(AuditEvent.entity_id == filters.entity_id)
    if filters.related:
        q = q.where(
            sa.or_(
                *(
                    sa.and_(AuditEvent.entity == entity, AuditEvent.entity_id.in_(ids))
                    for entity, ids in filters.related
                )
            )
        )
    if filters.actor:
        q = q.where(AuditEvent.actor == filters.actor.strip().lower())
    if filters.since:
        q = q.where(AuditEvent.at >= filters.since)
    if filters.until:
        q = q.where(AuditEvent.at < filters.until)
    return q.order_by(AuditEvent.id.desc())
