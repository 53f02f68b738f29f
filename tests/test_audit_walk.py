"""The full audit walk split across processes (decision 0024): the first stretch of the chain
is checked in the verifying process, the others by worker processes, and the outcome is
exactly the walk's in one process, whatever row or column was tampered with."""

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.factories import make_user
from tests.test_audit import _chain_of, _drop_triggers, _odd_rows
from trialmgr.audit import services as audit
from trialmgr.audit import walk
from trialmgr.audit.chain import jsonable, row_hash
from trialmgr.audit.models import AuditCheckpoint, AuditEvent
from trialmgr.extensions import db

WALKERS = 3


def _rows(n, start=0):
    at = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    return [
        {
            "at": at + timedelta(minutes=k),
            "actor_id": k % 3 or None,
            "actor": f"coordinator{k}@example.org",
            "action": "update",
            "entity": "visit",
            "entity_id": str(k),
            "changes": {"status": {"old": "scheduled", "new": "done"}, "n": {"old": k, "new": 1}},
            "reason": ("entered late", None)[k % 2],
        }
        for k in range(start, start + n)
    ]


@pytest.fixture
def split(monkeypatch):
    """Every full walk split into WALKERS stretches; the workers started are counted."""
    started = []
    original = audit._start_worker

    def start(job):
        started.append(job)
        return original(job)

    monkeypatch.setattr(audit, "PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(audit, "_walkers", lambda: WALKERS)
    monkeypatch.setattr(audit, "_start_worker", start)
    return started


def _both_ways(monkeypatch):
    """The full walk split across processes, then in this process alone (as dicts)."""
    split = audit.verify(full=True)
    db.session.rollback()
    monkeypatch.setattr(audit, "PARALLEL_MIN_ROWS", 10**12)
    alone = audit.verify(full=True)
    db.session.rollback()
    monkeypatch.setattr(audit, "PARALLEL_MIN_ROWS", 0)
    return split, alone


def _ids():
    table = AuditEvent.__table__
    return db.session.execute(sa.select(table.c.id).order_by(table.c.id)).scalars().all()


def test_a_split_walk_verifies_the_whole_chain_and_moves_the_checkpoint(app, split, monkeypatch):
    here, settled = [], []
    stretch, settle = audit._stretch, audit._settle

    def slowly(*args):  # so that the workers surely take some stretches
        here.append(args)
        time.sleep(0.05)
        return stretch(*args)

    monkeypatch.setattr(audit, "_stretch", slowly)
    monkeypatch.setattr(audit, "_settle", lambda r, job: settled.append(r) or settle(r, job))
    make_user(app, "admin")
    with app.app_context():
        _chain_of(_rows(30))
        ids = _ids()
        newest = db.session.execute(
            sa.select(AuditEvent.hash).where(AuditEvent.id == ids[-1])
        ).scalar_one()
        outcome = audit.verify(full=True)
        db.session.commit()
        checkpoint = db.session.get(AuditCheckpoint, audit.CHECKPOINT_ID)
        assert outcome.valid and outcome.checked == len(ids) and outcome.head == newest
        assert (checkpoint.verified_id, checkpoint.verified_hash) == (ids[-1], newest)
        assert checkpoint.verified_count == len(ids)
    assert len(split) == WALKERS - 1
    # every stretch walked once: some here, some by the workers, none left by a worker
    assert len(settled) == WALKERS * audit._STRETCHES_PER_WALKER
    assert None not in settled
    from_workers = [r for r in settled if isinstance(r, dict)]
    assert from_workers and len(here) + len(from_workers) == len(settled)


def test_requests_and_short_walks_stay_in_this_process(app, split, monkeypatch):
    make_user(app, "admin")
    with app.app_context():
        _chain_of(_rows(10))
        assert audit.verify(full=False).valid
        db.session.rollback()
        monkeypatch.setattr(audit, "PARALLEL_MIN_ROWS", 1_000)
        assert audit.verify(full=True).valid
        db.session.rollback()
    assert split == []


COLUMNS = {
    "at": lambda row: row["at"] + timedelta(microseconds=1),
    "actor_id": lambda row: 12345,
    "actor": lambda row: "someone.else@example.org",
    "action": lambda row: "delete",
    "entity": lambda row: "site",
    "entity_id": lambda row: "999",
    "changes": lambda row: {**row["changes"], "status": {"old": "scheduled", "new": "missed"}},
    "reason": lambda row: "edited",
    "prev_hash": lambda row: "f" * 64,
    "hash": lambda row: "e" * 64,
}


@pytest.mark.parametrize("column", COLUMNS)
def test_a_change_to_any_column_is_found_at_its_row_as_by_one_process(
    app, split, monkeypatch, column
):
    make_user(app, "admin")
    with app.app_context():
        _chain_of(_rows(30))
        ids = _ids()
        table = AuditEvent.__table__
        _drop_triggers()
        # rows in the last stretch (a worker's), and the rows on both sides of its start
        for target in (ids[-3], ids[len(ids) * 2 // 3], ids[len(ids) * 2 // 3 + 1]):
            row = db.session.execute(sa.select(table).where(table.c.id == target)).mappings().one()
            db.session.execute(
                sa.update(table).where(table.c.id == target).values({column: COLUMNS[column](row)})
            )
            db.session.commit()
            split_walk, alone = _both_ways(monkeypatch)
            assert split_walk.as_dict() == alone.as_dict()
            assert not split_walk.valid and split_walk.first_bad_id == target
            assert split_walk.checked == ids.index(target) + 1
            expected = "prev_hash does not match" if column == "prev_hash" else "hash does not"
            assert split_walk.problem.startswith(expected)
            # put the row back: the next target is found on its own
            db.session.execute(sa.update(table).where(table.c.id == target).values(dict(row)))
            db.session.commit()
            assert audit.verify(full=True).valid
            db.session.rollback()


def test_every_boundary_a_tampered_hash_or_a_deleted_row_is_found_as_by_one_process(
    app, split, monkeypatch
):
    make_user(app, "admin")
    with app.app_context():
        _chain_of(_rows(11))
        ids = _ids()
        table = AuditEvent.__table__
        _drop_triggers()
        db.session.commit()
        for target in ids:
            row = db.session.execute(sa.select(table).where(table.c.id == target)).mappings().one()
            db.session.execute(sa.update(table).where(table.c.id == target).values(hash="e" * 64))
            db.session.commit()
            split_walk, alone = _both_ways(monkeypatch)
            assert split_walk.as_dict() == alone.as_dict()
            assert split_walk.first_bad_id == target
            db.session.execute(sa.delete(table).where(table.c.id == target))
            db.session.commit()
            split_walk, alone = _both_ways(monkeypatch)
            assert split_walk.as_dict() == alone.as_dict()
            assert split_walk.valid is (target == ids[-1])  # the newest row: nothing follows
            if target != ids[-1]:
                assert split_walk.first_bad_id == ids[ids.index(target) + 1]
                assert split_walk.problem == "prev_hash does not match"
            db.session.execute(sa.insert(table), [dict(row)])
            db.session.commit()
            assert audit.verify(full=True).valid
            db.session.rollback()


def test_an_inserted_row_is_found_as_by_one_process(app, split, monkeypatch):
    """A row slipped between two others, with a hash of its own that verifies: the row
    after it no longer links to the row before it."""
    make_user(app, "admin")
    with app.app_context():
        _chain_of(_rows(20))
        ids = _ids()
        table = AuditEvent.__table__
        # leave a gap in the ids, then slip a well-formed row into it
        _drop_triggers()
        after = ids[len(ids) * 2 // 3]
        rows = (
            db.session.execute(sa.select(table).where(table.c.id > after).order_by(table.c.id))
            .mappings()
            .all()
        )
        db.session.execute(sa.delete(table).where(table.c.id > after))
        db.session.execute(sa.insert(table), [{**r, "id": r["id"] + 1} for r in rows])
        before = db.session.execute(sa.select(table).where(table.c.id == after)).mappings().one()
        forged = {
            **{k: v for k, v in before.items() if k not in ("id", "hash")},
            "entity_id": "forged",
            "changes": jsonable({"status": {"old": None, "new": "done"}}),
            "prev_hash": before["hash"],
        }
        forged["hash"] = row_hash(**forged)
        db.session.execute(sa.insert(table), [{**forged, "id": after + 1}])
        db.session.commit()
        split_walk, alone = _both_ways(monkeypatch)
    assert split_walk.as_dict() == alone.as_dict()
    assert split_walk.first_bad_id == after + 2 and split_walk.problem == "prev_hash does not match"


def test_rows_a_worker_cannot_write_fast_are_recomputed_here(app, split, monkeypatch):
    """Rows orjson writes differently (1e-05, an integer past 64 bits) are suspects in a
    worker and verified the reference way by the walk; with a full list of suspects the walk
    goes on from the last one itself; a tampered one is still the first bad row."""
    make_user(app, "admin")
    with app.app_context():
        # rows stored before decision 0027: orjson sorts their changes (stored canonically,
        # they would hash as stored and be no suspects)
        _chain_of(_rows(12) + _odd_rows() * 4 + _rows(6, start=12), legacy=True)
        ids = _ids()
        total = len(ids)
        recomputed = []
        recompute = audit._recompute
        monkeypatch.setattr(audit, "_recompute", lambda *a: recomputed.append(a) or recompute(*a))
        for limit in (walk.SUSPECTS_LIMIT, 1, 2):
            monkeypatch.setattr(walk, "SUSPECTS_LIMIT", limit)
            recomputed.clear()
            outcome = audit.verify(full=True)
            db.session.rollback()
            assert outcome.valid and outcome.checked == total
            assert len(recomputed) >= 4  # the float rows were suspects
        odd = (
            db.session.execute(
                sa.select(AuditEvent.id).where(AuditEvent.entity == "lab").order_by(AuditEvent.id)
            )
            .scalars()
            .all()
        )
        target = odd[-2]  # a float row in the last stretch
        _drop_triggers()
        db.session.execute(sa.update(AuditEvent).where(AuditEvent.id == target).values(reason="x"))
        db.session.commit()
        for limit in (walk.SUSPECTS_LIMIT, 1):
            monkeypatch.setattr(walk, "SUSPECTS_LIMIT", limit)
            split_walk, alone = _both_ways(monkeypatch)
            assert split_walk.as_dict() == alone.as_dict()
            assert split_walk.first_bad_id == target


def test_a_failed_worker_leaves_its_stretch_to_the_walk(app, split, monkeypatch):
    make_user(app, "admin")
    with app.app_context():
        _chain_of(_rows(15))
        ids = _ids()

        def broken(setup):
            split.append(setup)
            return subprocess.Popen(
                [sys.executable, "-c", "import sys; sys.exit(3)"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )

        monkeypatch.setattr(audit, "_start_worker", broken)
        outcome = audit.verify(full=True)
        db.session.rollback()
    assert outcome.valid and outcome.checked == len(ids)
    assert len(split) == WALKERS - 1
