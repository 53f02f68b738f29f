"""The audit walk's row loop, in the verifying process or in a worker process.

Each row's hash depends only on its own columns, and its link only on the stored hash of the
row before it, so a stretch of the chain (the rows with `after_id < id <= upto_id`) can be
checked on its own, given the stored hash of the last row before it. The full walk
(audit/services.py `verify`) cuts the chain into stretches and checks them in its own
process and in worker processes, whichever is free, each worker running this file as a
script with its own database connection (`python -I walk.py`, the stretches as JSON lines
on stdin, the outcomes as JSON lines on stdout):
a worker imports neither the application nor its settings, only the driver and orjson, so
it starts in milliseconds and shares nothing (no connection, no SQLite lock state) with the
process that started it. This module therefore imports nothing from trialmgr.

A row is read as two byte strings: the canonical JSON of its other fields, assembled by the
database with a 0 where `changes` goes (keys in sorted order, strings escaped as
json.dumps(ensure_ascii=False) escapes them: SQLite's json_object, one call a row, and
PostgreSQL's to_json write the same escapes), and the stored `changes`. Both come as bytes
(a BLOB, a bytea in binary format), so Python neither decodes nor re-encodes them: it puts
`changes` in its place and hashes. Rows store `changes` in canonical form since decision 0027;
older rows' `changes` are sorted first (orjson). Rows are read in small batches through
a server-side cursor (PostgreSQL) or fetchmany (SQLite): memory stays flat whatever the
chain's length.

A row whose fast hash differs from its stored hash is a suspect, not yet a bad row: the
database may escape a text differently from json.dumps, and for older rows orjson writes some
values differently (1e-05 as 0.00001, integers past 64 bits), so the verifying process
recomputes a suspect the reference way (chain.row_hash over the values as the ORM reads
them) before calling it bad. The fast path can only accept a row whose bytes hash to its
stored hash: it cannot pass a row the reference would fail unless sha256 collides.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import orjson

# Rows per fetch. Small batches keep the rows being hashed in the CPU's caches: on SQLite
# 256 rows a batch walk about a fifth faster than 10,000 (decision 0024); on PostgreSQL
# each batch is a round trip to the server, so batches are larger there.
BATCH = {"sqlite": 256, "postgresql": 2_000}
# Beyond every id: the upper bound of a walk to the end of the chain.
LAST_ID = 2**63 - 1

LINK_BROKEN = "prev_hash does not match"
HASH_BROKEN = "hash does not match contents"
# A worker stops when it has gathered this many suspects, for the verifying process to
# recompute before it goes on (bounded memory and output, even on a chain of odd rows).
SUSPECTS_LIMIT = 1_000
SUSPECTS_FULL = "suspects to recompute"

# The canonical JSON of every field but `changes`, whose place holds a 0 (keys sorted, so it
# is where `changes` goes). The first `"changes":0` in these bytes is that place: every
# quote inside a text value is escaped, so no value can hold that sequence.
CHANGES_PLACE = b'"changes":0'
CHANGES_KEY = b'"changes":'


def _json_text(column: str) -> str:
    """PostgreSQL: a text column's JSON string body, backslashes and double quotes escaped
    as JSON escapes them, for the short fields (cheaper for the server than to_json,
    decision 0027). A value with a control character comes out unescaped,
    which no canonical JSON contains, so its row cannot hash right and is recomputed the
    reference way; every other value comes out exactly as json.dumps writes it, so the
    bytes stay unambiguous (a field cannot pass for another)."""
    return f"""replace(replace({column}, '\\', '\\\\'), '"', '\\"')"""


SQL = {
    "sqlite": """
        SELECT id, prev_hash, hash,
          CAST(json_object('action', action, 'actor', actor, 'actor_id', actor_id,
                           'at', replace(CAST(at AS TEXT), ' ', 'T') || 'Z', 'changes', 0,
                           'entity', entity, 'entity_id', entity_id, 'prev_hash', prev_hash,
                           'reason', reason) AS BLOB),
          CAST(changes AS BLOB)
        FROM audit_event WHERE id > ? AND id <= ? ORDER BY id""",
    "postgresql": f"""
        SELECT id, prev_hash, hash,
          convert_to('{{"action":"' || {_json_text("action")}
          || '","actor":"' || {_json_text("actor")}
          || '","actor_id":' || coalesce(actor_id::text, 'null')
          || ',"at":"' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
          || 'Z","changes":0,"entity":"' || {_json_text("entity")}
          || '","entity_id":' || coalesce('"' || {_json_text("entity_id")} || '"', 'null')
          || ',"prev_hash":"' || prev_hash
          || '","reason":' || coalesce(to_json(reason)::text, 'null') || '}}', 'UTF8'),
          convert_to(changes::text, 'UTF8')
        FROM audit_event WHERE id > %s AND id <= %s ORDER BY id""",
}


@dataclass
class Stretch:
    """The outcome of checking the rows after `after_id`, up to a bound.

    `checked` counts the rows looked at (the stopping row included), `last_id` and `head`
    are the last row that verified and its hash (the stretch's start when none did).
    `stopped_id` is the row the walk stopped at, with `problem`: LINK_BROKEN or
    HASH_BROKEN (a bad row), SUSPECTS_FULL (a worker's list of suspects is full; the row is
    its last suspect)."""

    checked: int
    last_id: int
    head: str
    stopped_id: int | None = None
    problem: str | None = None


# Called with a suspect (row id, its position in the stretch, the hash before it, its
# stored hash): the problem to stop at, or None to go on.
Suspect = Callable[[int, int, str, str], str | None]


def batches(raw: Any, dialect: str, after_id: int, upto_id: int) -> Iterator[list[Any]]:
    """The rows `after_id < id <= upto_id` as the walk reads them, batch by batch, on a
    DBAPI connection (sqlite3 or psycopg)."""
    # PostgreSQL: server-side (rows come batch by batch), binary (the bytea pieces arrive as
    # bytes).
    postgresql = dialect == "postgresql"
    cursor = raw.cursor(name="audit_walk", binary=True) if postgresql else raw.cursor()
    size = BATCH[dialect]
    try:
        cursor.execute(SQL[dialect], (after_id, upto_id))
        while batch := cursor.fetchmany(size):
            yield batch
    finally:
        cursor.close()


def _resorted(fields: bytes, changes: bytes) -> str | None:
    """The fast hash of a row whose `changes` are not stored in canonical form (rows written
    before decision 0027): sorted by orjson and put in their place; None when orjson cannot
    write a value (an integer past 64 bits)."""
    try:
        sorted_changes = orjson.dumps(orjson.loads(changes), option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return None
    return hashlib.sha256(
        fields.replace(CHANGES_PLACE, CHANGES_KEY + sorted_changes, 1)
    ).hexdigest()


def walk_rows(rows: Iterable[list[Any]], prev: str, last_id: int, suspect: Suspect) -> Stretch:
    """Check each row's link to the stored hash before it, then its hash; `prev` and
    `last_id` are the stored hash and id of the row before the first one.

    Rows store `changes` in canonical form (decision 0027), so the stored bytes go into their
    place as they are; rows written before that store them as json.dumps wrote them by
    default and are re-sorted. The walk tries first whichever form the row before matched,
    the other when it does not match (a chain has one stretch of older rows, then newer)."""
    checked = 0
    sha256 = hashlib.sha256
    place, key = CHANGES_PLACE, CHANGES_KEY
    as_stored = True
    fast: str | None
    for batch in rows:
        for row_id, prev_hash, stored, fields, changes in batch:
            checked += 1
            if prev_hash != prev:
                return Stretch(checked, last_id, prev, row_id, LINK_BROKEN)
            if as_stored:
                fast = sha256(fields.replace(place, key + changes, 1)).hexdigest()
                if fast != stored:
                    fast = _resorted(fields, changes)
                    as_stored = fast != stored
            else:
                fast = _resorted(fields, changes)
                if fast != stored:
                    fast = sha256(fields.replace(place, key + changes, 1)).hexdigest()
                    as_stored = fast == stored
            if fast != stored:
                problem = suspect(row_id, checked, prev, stored)
                if problem is not None:
                    return Stretch(checked, last_id, prev, row_id, problem)
            prev, last_id = stored, row_id
    return Stretch(checked, last_id, prev)


def connect(dialect: str, params: dict[str, Any]) -> Any:
    """A worker's own read-only connection: `params` are the DBAPI connect arguments."""
    if dialect == "postgresql":
        import psycopg

        return psycopg.connect(**params)
    import sqlite3

    conn = sqlite3.connect(params["database"], isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={int(params.get('busy_timeout_ms', 15_000))}")
    conn.execute("PRAGMA query_only=1")
    return conn


def work(raw: Any, setup: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """One stretch in a worker: its rows checked, suspects gathered for the caller."""
    suspects: list[tuple[int, int, str, str]] = []
    limit = setup["suspects_limit"]

    def gather(row_id: int, position: int, prev: str, stored: str) -> str | None:
        suspects.append((row_id, position, prev, stored))
        return SUSPECTS_FULL if len(suspects) >= limit else None

    rows = batches(raw, setup["dialect"], job["after_id"], job["upto_id"])
    stretch = walk_rows(rows, job["prev"], job["last_id"], gather)
    return {"stretch": asdict(stretch), "suspects": suspects}


def serve() -> None:
    """A worker: the database and settings on stdin's first line, then one stretch a line,
    each answered by one line on stdout, until stdin ends."""
    setup = json.loads(sys.stdin.readline())
    raw = connect(setup["dialect"], setup["connect"])
    try:
        for line in sys.stdin:
            sys.stdout.write(json.dumps(work(raw, setup, json.loads(line))) + "\n")
            sys.stdout.flush()
    finally:
        raw.close()


if __name__ == "__main__":
    serve()
