"""Writing and checking the audit trail.

Every change to an `Audited` model is recorded by a session listener inside
the same transaction, with the actor and reason of the enclosing `audited()`
block; a flush of audited changes outside such a block is refused, so no
service can write trial data unaudited. Events that are not row changes
(logins, token use) go through `record()`.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from trialmgr.audit import walk
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

# A full walk of at least this many rows is split into stretches checked at the same time
# by this process and worker processes (audit/walk.py), one walker per CPU. Shorter walks,
# and every walk from the checkpoint (requests), stay in this process.
PARALLEL_MIN_ROWS = 100_000
_MAX_WALKERS = 8
# Stretches per walker: enough that a walker slowed by other work leaves its share to the
# others, few enough that each is a long read.
_STRETCHES_PER_WALKER = 8

log = logging.getLogger(__name__)


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


def _recompute(row_id: int, position: int, prev: str, stored: str) -> str | None:
    """A row whose fast hash does not match (a float orjson writes differently, a text the
    database escapes differently) is recomputed the reference way before it is called bad."""
    return walk.HASH_BROKEN if _reference_hash(row_id) != stored else None


def _stretch(prev: str, last_id: int, after_id: int, upto_id: int) -> walk.Stretch:
    """Check the rows `after_id < id <= upto_id` in this process, on the session's
    connection; `prev` and `last_id` are the stored hash and id of the row before them."""
    connection = db.session.connection()
    raw: Any = connection.connection.dbapi_connection
    rows = walk.batches(raw, connection.dialect.name, after_id, upto_id)
    return walk.walk_rows(rows, prev, last_id, _recompute)


def _walk(prev: str, after_id: int, checked: int) -> tuple[Verification, int]:
    """Verify the rows after `after_id` in this process; the outcome and the last row
    verified."""
    return _outcome([_stretch(prev, after_id, after_id, walk.LAST_ID)], prev, after_id, checked)


def _outcome(
    stretches: Iterable[walk.Stretch], prev: str, last_id: int, checked: int
) -> tuple[Verification, int]:
    """Consecutive stretches, in order, as one walk: the first bad row of the first
    stretch that has one (the rows before it all verified)."""
    for stretch in stretches:
        checked += stretch.checked
        if stretch.problem is not None:
            bad = Verification(False, checked, stretch.head, stretch.stopped_id, stretch.problem)
            return bad, last_id
        prev, last_id = stretch.head, stretch.last_id
    return Verification(True, checked, prev), last_id


def _walkers() -> int:
    return min(_MAX_WALKERS, len(os.sched_getaffinity(0)))


def _worker_connect(connection: sa.Connection) -> dict[str, Any] | None:
    """How a worker process connects to this database (DBAPI connect arguments), or None
    when it cannot (an in-memory SQLite database, another driver)."""
    url, dialect = connection.engine.url, connection.dialect
    if dialect.name == "sqlite":
        if not url.database or url.database == ":memory:" or url.query:
            return None
        return {"database": url.database}
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        return None
    _, params = dialect.create_connect_args(url)
    params.pop("context", None)  # SQLAlchemy's type adapters: the walk reads bytes and text
    options = current_app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})
    params = {**params, **options.get("connect_args", {})}
    try:
        json.dumps(params)
    except TypeError:
        return None
    return params


def _walk_full(prev: str, after_id: int, checked: int) -> tuple[Verification, int]:
    """Verify the rows after `after_id`, long walks split across processes.

    The id range is cut into stretches (several per CPU); each starts from the stored hash
    and id of the last row before it, exactly what the walk in one process has in hand
    there, so each stretch reports what that walk would report for its rows, and the first
    bad row of the whole walk is the first bad row of the first stretch that has one. This
    process and the workers take the stretches in order, each the next one when it is
    free (a walker slowed by other work on the machine takes fewer); once a stretch breaks,
    the ones after it are not started. Rows appended once the walk began are left to the
    next walk (the range ends at the newest row it saw); workers read what is committed,
    as audit rows always are (they are chained at commit)."""
    connection = db.session.connection()
    params = _worker_connect(connection)
    walkers = _walkers()
    table = AuditEvent.__table__
    top = connection.execute(sa.select(sa.func.max(table.c.id))).scalar_one_or_none()
    if params is None or walkers < 2 or top is None or top - after_id < PARALLEL_MIN_ROWS:
        return _walk(prev, after_id, checked)
    count = walkers * _STRETCHES_PER_WALKER
    bounds = [after_id + (top - after_id) * n // count for n in range(count + 1)]
    jobs = []
    for lower, upper in itertools.pairwise(bounds):
        before = connection.execute(
            sa.select(table.c.id, table.c.hash)
            .where(table.c.id > after_id, table.c.id <= lower)
            .order_by(table.c.id.desc())
            .limit(1)
        ).one_or_none()
        last_id, head = (before.id, before.hash) if before else (after_id, prev)
        jobs.append({"after_id": lower, "upto_id": upper, "prev": head, "last_id": last_id})
    setup = {
        "dialect": connection.dialect.name,
        "connect": params,
        "suspects_limit": walk.SUSPECTS_LIMIT,
    }
    results: list[walk.Stretch | dict[str, Any] | None] = [None] * count
    queue = collections.deque(range(count))
    workers = [_start_worker(setup) for _ in range(walkers - 1)]
    feeders = [
        threading.Thread(target=_feed, args=(worker, jobs, queue, results), daemon=True)
        for worker in workers
    ]
    try:
        for feeder in feeders:
            feeder.start()
        while True:
            try:
                n = queue.popleft()
            except IndexError:
                break
            job = jobs[n]
            results[n] = stretch = _stretch(
                job["prev"], job["last_id"], job["after_id"], job["upto_id"]
            )
            if stretch.problem is not None:
                queue.clear()  # the stretches after a bad row are not needed
        for feeder in feeders:
            feeder.join()
    finally:
        queue.clear()
        for worker in workers:
            if worker.poll() is None:
                worker.kill()  # only after a bad row or an error here
            worker.wait()
        for feeder in feeders:
            feeder.join()
    settled = (_settle(results[n], jobs[n]) for n in range(count))
    return _outcome(settled, prev, after_id, checked)


def _start_worker(setup: dict[str, Any]) -> subprocess.Popen[bytes]:
    worker = subprocess.Popen(
        [sys.executable, "-I", walk.__file__],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert worker.stdin is not None
    worker.stdin.write(json.dumps(setup).encode() + b"\n")  # the password by pipe, not argv
    worker.stdin.flush()
    return worker


def _feed(
    worker: subprocess.Popen[bytes],
    jobs: list[dict[str, Any]],
    queue: collections.deque[int],
    results: list[walk.Stretch | dict[str, Any] | None],
) -> None:
    """Hand a worker the next stretch each time it answers, until none is left (a thread
    per worker: it only waits on pipes). A worker that fails leaves its stretch unwalked."""
    assert worker.stdin is not None and worker.stdout is not None
    try:
        while True:
            try:
                n = queue.popleft()
            except IndexError:
                break
            worker.stdin.write(json.dumps(jobs[n]).encode() + b"\n")
            worker.stdin.flush()
            line = worker.stdout.readline()
            if not line:
                break
            results[n] = result = json.loads(line)
            if result["stretch"]["problem"] == walk.LINK_BROKEN:
                queue.clear()
    except (OSError, ValueError) as exc:
        # The worker is gone or answered garbage: its stretch has no result and is walked
        # in this process (_settle), and the stretches left go to the other walkers.
        log.info("an audit walk worker stopped answering (%s)", exc)
    finally:
        with contextlib.suppress(OSError):
            worker.stdin.close()


def _settle(result: walk.Stretch | dict[str, Any] | None, job: dict[str, Any]) -> walk.Stretch:
    """A stretch's outcome: a worker's with its suspects recomputed here; a stretch a
    worker failed to walk is walked here."""
    if isinstance(result, walk.Stretch):
        return result
    if result is None:
        log.warning("an audit walk worker failed; walking its stretch here")
        return _stretch(job["prev"], job["last_id"], job["after_id"], job["upto_id"])
    stretch = walk.Stretch(**result["stretch"])
    for row_id, position, before, stored in result["suspects"]:
        if _recompute(row_id, position, before, stored) is not None:
            return walk.Stretch(position, 0, before, row_id, walk.HASH_BROKEN)
    if stretch.problem != walk.SUSPECTS_FULL:
        return stretch
    assert stretch.stopped_id is not None
    # The worker stopped at its last suspect, which verified: go on from it here.
    stored = result["suspects"][-1][3]
    rest = _stretch(stored, stretch.stopped_id, stretch.stopped_id, job["upto_id"])
    rest.checked += stretch.checked
    return rest


def verify(full: bool = True, now: datetime | None = None) -> Verification:
    """Recompute every row's hash in order and report the first row that does not match.

    `full=False` (the API and the page) starts from the checkpoint left by the last full
    walk, after checking that its row still carries the hash it had, and verifies only the
    rows written since, in this process; the full walk (`flask audit verify`, the scheduler,
    a restore) starts from the genesis and splits a long chain across processes. A valid
    walk moves the checkpoint forward."""
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
    walker = _walk_full if full else _walk
    outcome, last_id = walker(start_prev, start_id, start_count)
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
