"""The audit trail: written with the change, append-only, hash-chained, verifiable."""

import csv
import io
import json

import pytest
import sqlalchemy as sa

from tests.factories import make_user
from trialmgr.audit import services as audit
from trialmgr.audit.models import AuditEvent
from trialmgr.auth.models import SystemActor, User
from trialmgr.extensions import db


def _actions(app):
    with app.app_context():
        return [
            e.action
            for e in db.session.execute(sa.select(AuditEvent).order_by(AuditEvent.id)).scalars()
        ]


def test_logins_failures_tokens_and_logouts_are_audited(app, client):
    user = make_user(app, "admin")
    client.post(
        "/api/v1/auth/tokens", json={"email": user["email"], "password": "wrong-password-x"}
    )
    client.post("/login", data={"email": user["email"], "password": "correct-horse-battery"})
    client.post("/logout")
    client.post(
        "/api/v1/auth/tokens", json={"email": user["email"], "password": "correct-horse-battery"}
    )
    assert _actions(app) == [
        "user.create",
        "login_failed",
        "login",
        "logout",
        "login",
        "token_issued",
    ]


def test_password_hash_never_enters_the_trail(app):
    user = make_user(app, "admin")
    with app.app_context():
        event = db.session.execute(sa.select(AuditEvent)).scalars().first()
        assert event.changes["password_hash"] == {"old": None, "new": "[redacted]"}
        assert event.entity_id == str(user["id"])


def test_audited_row_written_outside_a_context_is_refused(app):
    with app.app_context():
        db.session.add(User(email="x@example.org", name="X", role="admin", password_hash="x"))
        with pytest.raises(audit.AuditContextMissing):
            db.session.flush()
        db.session.rollback()


def test_audited_rows_cannot_be_deleted_through_the_orm(app):
    user = make_user(app, "admin")
    with app.app_context():
        db.session.delete(db.session.get(User, user["id"]))
        with pytest.raises(audit.AuditContextMissing):
            db.session.flush()
        db.session.rollback()


def test_fresh_chain_verifies(app, runner):
    make_user(app, "admin")
    make_user(app, "coordinator")
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "audit chain valid: 2 rows" in result.output


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET reason = 'tampered'",
        "DELETE FROM audit_event",
    ],
)
def test_database_refuses_update_and_delete(app, statement):
    make_user(app, "admin")
    with app.app_context():
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            db.session.execute(sa.text(statement))
        db.session.rollback()
        assert (
            db.session.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar_one() == 1
        )


def _drop_triggers():
    if db.engine.dialect.name == "postgresql":
        db.session.execute(sa.text("DROP TRIGGER audit_event_no_update_delete ON audit_event"))
    else:
        db.session.execute(sa.text("DROP TRIGGER audit_event_no_update"))
        db.session.execute(sa.text("DROP TRIGGER audit_event_no_delete"))


def test_tampering_with_a_row_breaks_verification(app, runner, api):
    for role in ("admin", "coordinator", "safety_monitor"):
        make_user(app, role)
    with app.app_context():
        _drop_triggers()
        db.session.execute(sa.text("UPDATE audit_event SET reason = 'edited' WHERE id = 2"))
        db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at row 2" in result.output
    lead = api.as_role("consortium_lead")
    body = lead.get("/audit/verify").json
    assert body["valid"] is False
    assert body["first_bad"]["id"] == 2


def test_deleting_a_row_breaks_verification(app, runner):
    for role in ("admin", "coordinator", "safety_monitor"):
        make_user(app, role)
    with app.app_context():
        _drop_triggers()
        db.session.execute(sa.text("DELETE FROM audit_event WHERE id = 2"))
        db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at row 3" in result.output


def test_verify_endpoint_reports_head(api):
    lead = api.as_role("consortium_lead")
    body = lead.get("/audit/verify").json
    assert body["valid"] is True
    assert body["checked"] >= 2
    with api.app.app_context():
        assert body["head"] == audit.head()


def test_audit_list_filters(app, api):
    admin = api.as_role("admin")
    target = make_user(app, "coordinator", email="target@example.org")
    admin.patch(f"/users/{target['id']}", json={"name": "Renamed", "reason": "typo"})
    rows = admin.get(f"/audit?entity=user_account&entity_id={target['id']}").json
    assert [r["action"] for r in rows] == ["update", "user.create"]
    assert rows[0]["changes"] == {"name": {"old": "Target", "new": "Renamed"}}
    assert rows[0]["reason"] == "typo"
    by_actor = admin.get(f"/audit?actor={admin.user['email']}").json
    assert {r["actor"] for r in by_actor} == {admin.user["email"]}
    assert admin.get("/audit?since=2999-01-01").json == []
    assert len(admin.get("/audit?until=2999-01-01").json) == len(admin.get("/audit").json)


def test_audit_list_bad_filter_is_422(api):
    lead = api.as_role("consortium_lead")
    assert lead.get("/audit?since=yesterday").status_code == 422


@pytest.mark.parametrize("role", ["coordinator", "safety_monitor"])
def test_audit_is_for_admin_and_lead_only(api, role):
    assert api.as_role(role).get("/audit").status_code == 403


def test_audit_csv_export(app, api):
    lead = api.as_role("consortium_lead")
    make_user(app, "coordinator", email="=cmd@example.org")
    resp = lead.get("/audit/export?entity=user_account")
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    lines = resp.data.decode().splitlines()
    assert lines[0] == "id,at,actor,action,entity,entity_id,changes,reason,hash"
    assert len(lines) >= 3
    assert all(",user_account," in line for line in lines[1:])


def test_csv_cells_cannot_start_a_formula(app, api):
    admin = api.as_role("admin")
    target = make_user(app, "coordinator")
    admin.patch(f"/users/{target['id']}", json={"name": "x", "reason": '=HYPERLINK("x")'})
    rows = list(csv.DictReader(io.StringIO(admin.get("/audit/export").data.decode())))
    assert rows[0]["reason"] == '\'=HYPERLINK("x")'


def test_system_actor_is_named(app):
    with app.app_context():
        audit.record(SystemActor(email="system:scheduler"), "job", "report", 1, {"k": 1})
        db.session.commit()
        event = db.session.execute(sa.select(AuditEvent)).scalar_one()
        assert (event.actor, event.actor_id) == ("system:scheduler", None)


def test_audit_page_renders_and_exports(app, client):
    lead = make_user(app, "consortium_lead")
    client.post("/login", data={"email": lead["email"], "password": "correct-horse-battery"})
    page = client.get("/audit")
    assert page.status_code == 200
    assert b"Audit trail" in page.data and b"login" in page.data
    assert client.get("/audit?format=csv").mimetype == "text/csv"
    assert b"intact" in client.get("/audit/verify").data


def test_requests_verify_from_the_last_full_walk_and_the_walk_moves_it(app, runner, api):
    lead = api.as_role("consortium_lead")
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    with app.app_context():
        total = db.session.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar_one()
        last = db.session.execute(sa.select(sa.func.max(AuditEvent.id))).scalar_one()
    make_user(app, "admin")  # rows written after the full walk
    body = lead.get("/audit/verify").json
    assert body["valid"] is True and body["from_checkpoint"] == last
    with app.app_context():
        now_total = db.session.execute(
            sa.select(sa.func.count()).select_from(AuditEvent)
        ).scalar_one()
    assert body["checked"] == now_total > total


def test_tampering_after_the_checkpoint_is_found_by_a_request(app, runner, api):
    lead = api.as_role("consortium_lead")
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    make_user(app, "coordinator")
    with app.app_context():
        newest = db.session.execute(sa.select(sa.func.max(AuditEvent.id))).scalar_one()
        _drop_triggers()
        db.session.execute(
            sa.text("UPDATE audit_event SET reason = 'edited' WHERE id = :id"), {"id": newest}
        )
        db.session.commit()
    body = lead.get("/audit/verify").json
    assert body["valid"] is False and body["first_bad"]["id"] == newest


def test_tampering_with_the_checkpoint_row_is_found_and_older_rows_by_the_full_walk(
    app, runner, api
):
    lead = api.as_role("consortium_lead")
    make_user(app, "coordinator")
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    with app.app_context():
        _drop_triggers()
        db.session.execute(sa.text("UPDATE audit_event SET reason = 'edited' WHERE id = 1"))
        db.session.commit()
    assert lead.get("/audit/verify").json["valid"] is True  # before the checkpoint: not walked
    full = runner.invoke(args=["audit", "verify"])
    assert full.exit_code == 1 and "BROKEN at row 1" in full.output
    with app.app_context():
        checkpoint = db.session.execute(sa.select(sa.func.max(AuditEvent.id))).scalar_one()
        db.session.execute(
            sa.text("UPDATE audit_event SET hash = :h WHERE id = :id"),
            {"h": "f" * 64, "id": checkpoint},
        )
        db.session.commit()
    body = lead.get("/audit/verify").json
    assert (
        body["valid"] is False
        and "changed since the last full verification" in (body["first_bad"]["problem"])
    )


def test_rows_of_a_rolled_back_savepoint_or_transaction_never_reach_the_chain(app):
    from trialmgr.partners.models import Partner

    actor = SystemActor(email="system:test")
    with app.app_context():
        with audit.audited(actor, action="partner.create"):
            db.session.add(Partner(name="Kept", short_name="K", kind="academic", country="IT"))
        savepoint = db.session.begin_nested()
        with audit.audited(actor, action="partner.create"):
            db.session.add(Partner(name="Dropped", short_name="D", kind="academic", country="IT"))
        savepoint.rollback()
        db.session.commit()
        with audit.audited(actor, action="partner.create"):
            db.session.add(Partner(name="Rolled", short_name="R", kind="academic", country="IT"))
        db.session.rollback()
        names = [
            e.changes.get("name", {}).get("new")
            for e in db.session.execute(sa.select(AuditEvent)).scalars()
        ]
        assert audit.verify().valid
    assert names == ["Kept"]


@pytest.fixture
def fallbacks(monkeypatch):
    """The rows the walk recomputes the reference way (suspects), in order."""
    seen = []
    original = audit._reference_hash
    monkeypatch.setattr(
        audit, "_reference_hash", lambda row_id: seen.append(row_id) or original(row_id)
    )
    return seen


def _chain_of(rows, legacy=False):
    """Append rows (values without hashes) to the chain the reference way, as data.py and
    older releases did; returns their ids. `legacy`: `changes` stored as json.dumps writes
    them by default (keys in the order given, spaces after separators), as every row
    written before decision 0027 is."""
    import json

    from trialmgr.audit.chain import jsonable, row_hash
    from trialmgr.audit.models import GENESIS_HASH

    table = AuditEvent.__table__
    prev = (
        db.session.execute(
            sa.select(table.c.hash).order_by(table.c.id.desc()).limit(1)
        ).scalar_one_or_none()
        or GENESIS_HASH
    )
    insert = sa.insert(table)
    if legacy:
        text = sa.bindparam("legacy_changes", type_=sa.Text)
        as_json = sa.cast(text, sa.JSON) if db.engine.dialect.name == "postgresql" else text
        insert = insert.values(changes=as_json)
    for values in rows:
        values = {**values, "changes": jsonable(values["changes"]), "prev_hash": prev}
        values["hash"] = prev = row_hash(**values)
        if legacy:
            values["legacy_changes"] = json.dumps(values.pop("changes"))
        db.session.execute(insert, [values])
    db.session.commit()


def _stored_changes():
    """Every row's `changes` as the database holds the text, by id."""
    cast = "changes::text" if db.engine.dialect.name == "postgresql" else "CAST(changes AS TEXT)"
    found = db.session.execute(sa.text(f"SELECT id, {cast} FROM audit_event ORDER BY id"))
    return dict(found.all())


def _odd_rows():
    from datetime import UTC, datetime

    base = {"actor_id": None, "actor": "a@example.org", "action": "update", "entity": "lab"}
    return [
        # orjson writes these two values differently from json.dumps (0.00001, a TypeError)
        {**base, "at": datetime(2026, 3, 1, 8, 0, tzinfo=UTC), "entity_id": "1",
         "changes": {"value": {"old": 1e-05, "new": 2**70}}, "reason": None},
        # a whole second (no microseconds), non-ASCII text, control characters, nesting
        {**base, "at": datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC), "entity_id": "2",
         "changes": {"z": {"old": "é\u2028\x01", "new": {"b": [1, 2.5], "a": None}}},
         "reason": "corrigé\n"},
    ]  # fmt: skip


@pytest.mark.parametrize("legacy", [False, True], ids=["stored canonical", "older rows"])
def test_the_fast_walk_writes_the_reference_bytes_for_what_the_app_stores(
    app, monkeypatch, legacy, fallbacks
):
    """The bytes the database assembles (with `changes` as stored, or sorted by orjson for
    rows written before decision 0027) are the reference canonical bytes for rows the app
    writes, odd text included: no row needs the reference fallback."""
    make_user(app, "admin")
    with app.app_context():
        _chain_of(_odd_rows()[1:], legacy=legacy)
        total = db.session.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar_one()
        outcome = audit.verify(full=True)
        db.session.rollback()
    assert outcome.valid and outcome.checked == total
    assert fallbacks == []


def test_rows_orjson_writes_differently_still_verify_and_tampering_is_found(app, runner):
    """Old rows keep their hashes: values orjson writes differently from the reference are
    recomputed the reference way; a tampered row is still caught."""
    make_user(app, "admin")
    with app.app_context():
        _chain_of(_odd_rows(), legacy=True)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "audit chain valid: 3 rows" in result.output
    with app.app_context():
        _drop_triggers()
        db.session.execute(sa.text("UPDATE audit_event SET entity_id = '9' WHERE id = 2"))
        db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and "BROKEN at row 2" in result.output


@pytest.mark.parametrize("legacy", [False, True], ids=["stored canonical", "older rows"])
@pytest.mark.parametrize("column", ["changes", "actor", "at"])
def test_the_fast_walk_catches_a_tampered_row(app, monkeypatch, column, legacy, fallbacks):
    """A row whose changes, actor or timestamp was edited after it was chained is flagged by
    the fast walk itself (its bytes no longer hash to the stored hash), confirmed by the
    reference computation, and named as the first bad row; the rows before it verify."""
    from datetime import timedelta

    make_user(app, "admin")
    with app.app_context():
        _chain_of(_odd_rows()[1:] * 3, legacy=legacy)
        table = AuditEvent.__table__
        ids = db.session.execute(sa.select(table.c.id).order_by(table.c.id)).scalars().all()
        target = ids[-2]
        row = db.session.execute(sa.select(table).where(table.c.id == target)).mappings().one()
        edited = {
            "changes": {**row["changes"], "z": {"old": "é", "new": "edited"}},
            "actor": "someone.else@example.org",
            "at": row["at"] + timedelta(microseconds=1),
        }[column]
        _drop_triggers()
        db.session.execute(sa.update(table).where(table.c.id == target).values({column: edited}))
        db.session.commit()
        outcome = audit.verify(full=True)
        db.session.rollback()
    assert fallbacks == [target]  # the fast path found the mismatch, nothing before it
    assert not outcome.valid
    assert outcome.first_bad_id == target
    assert outcome.problem == "hash does not match contents"
    assert outcome.checked == ids.index(target) + 1


def test_changes_are_stored_in_the_form_they_are_hashed_in(app, api):
    """Decision 0027: every audit row the app writes (the listener's row changes and
    `record`'s events) holds its `changes` as the canonical text the chain hashes (sorted
    keys, compact, UTF-8), odd values included; the rows read back as the same values."""
    import json

    from trialmgr.audit.chain import canonical_text

    make_user(app, "admin")
    admin = api.as_role("admin")
    assert admin.get("/audit/verify").status_code == 200
    with app.app_context():
        _chain_of(_odd_rows())
        stored = _stored_changes()
        read = dict(db.session.execute(sa.select(AuditEvent.id, AuditEvent.changes)).all())
    assert len(stored) >= 4
    for row_id, text in stored.items():
        assert text == canonical_text(json.loads(text)), (row_id, text)
        assert json.loads(text) == read[row_id]
    odd = list(stored.values())[-2:]
    assert odd[0] == '{"value":{"new":1180591620717411303424,"old":1e-05}}'
    # U+2028 as itself (UTF-8), a control character escaped
    assert odd[1] == '{"z":{"new":{"a":null,"b":[1,2.5]},"old":"é\u2028\\u0001"}}'


def test_older_rows_then_newer_rows_verify_without_the_reference_and_tampering_is_found(
    app, monkeypatch, fallbacks
):
    """A chain of rows stored before decision 0027 (json.dumps' default text), rows stored
    canonically, then older ones again verifies fast (no row recomputed the reference way),
    in one process; a change to an older or a newer row's `changes` is the first bad row."""
    make_user(app, "admin")
    with app.app_context():
        first = [{**row, "entity_id": str(n)} for n, row in enumerate(_odd_rows()[1:] * 4)]
        _chain_of(first, legacy=True)
        _chain_of(first)
        _chain_of(first, legacy=True)
        stored = _stored_changes()
        ids = sorted(stored)
        assert len({stored[i] for i in ids[-12:]}) == 2  # both forms are there
        outcome = audit.verify(full=True)
        db.session.rollback()
        assert outcome.valid and outcome.checked == len(ids)
        assert fallbacks == []
        _drop_triggers()
        db.session.commit()
        # a newer row, then an older one before it (each becomes the first bad row)
        for target, text in ((ids[-6], '{"z":1}'), (ids[-10], '{"z": {"old": "x", "new": 1}}')):
            column = sa.cast(sa.literal(text), sa.JSON) if _postgres() else sa.literal(text)
            db.session.execute(
                sa.update(AuditEvent.__table__)
                .where(AuditEvent.__table__.c.id == target)
                .values(changes=column)
            )
            db.session.commit()
            outcome = audit.verify(full=True)
            db.session.rollback()
            assert not outcome.valid
            assert outcome.first_bad_id == target, (target, stored[target])
            assert outcome.problem == "hash does not match contents"


def _postgres():
    return db.engine.dialect.name == "postgresql"


def test_the_audit_page_shows_a_record_s_changes_in_its_columns_order(app):
    """Changes are stored with sorted keys; the page lists them as the record's columns
    are ordered (its form's order), keys that are no column after them."""
    from trialmgr.audit.readable import readable

    with app.app_context():
        event = AuditEvent(
            entity="site",
            entity_id="1",
            action="update",
            actor="a@example.org",
            changes={
                "country": {"old": "IT", "new": "FR"},
                "a_note": "x",
                "name": {"old": "Rome", "new": "Paris"},
            },
        )
        shown = readable([event], str)[0].changes
    assert [c.new for c in shown] == ["Paris", "FR", "x"]  # name, country, then the rest


def test_quotes_and_backslashes_in_short_fields_cannot_pass_for_other_values(
    app, monkeypatch, fallbacks
):
    """The walk writes the short text fields (action, actor, entity, entity_id) with their
    quotes and backslashes escaped as JSON escapes them: rows holding them verify without
    the reference, a control character is recomputed the reference way on PostgreSQL, and a value
    changed to what an unescaped writer would have produced from the original (a quote
    turned into a backslash and a quote) is the first bad row."""
    from datetime import UTC, datetime

    make_user(app, "admin")
    base = {"at": datetime(2026, 3, 1, 8, 0, tzinfo=UTC), "actor_id": None, "reason": None,
            "changes": {"n": {"old": 1, "new": 2}}}  # fmt: skip
    rows = [
        {**base, "action": 'up"date', "actor": 'a"b\\c@example.org', "entity": "lab\\x",
         "entity_id": '7"'},
        {**base, "action": "update", "actor": "tab\there@example.org", "entity": "lab",
         "entity_id": "8"},
        {**base, "action": "update", "actor": 'x"y@example.org', "entity": "lab",
         "entity_id": "9"},
    ]  # fmt: skip
    with app.app_context():
        _chain_of(rows)
        table = AuditEvent.__table__
        ids = db.session.execute(sa.select(table.c.id).order_by(table.c.id)).scalars().all()
        outcome = audit.verify(full=True)
        db.session.rollback()
        assert outcome.valid and outcome.checked == len(ids)
        # PostgreSQL's walk leaves the tab unescaped: recomputed, and it verified; SQLite's
        # json_object escapes it as json.dumps does
        assert fallbacks == ([ids[-2]] if _postgres() else [])
        fallbacks.clear()
        _drop_triggers()
        db.session.execute(
            sa.update(table).where(table.c.id == ids[-1]).values(actor='x\\"y@example.org')
        )
        db.session.commit()
        outcome = audit.verify(full=True)
        db.session.rollback()
    assert not outcome.valid and outcome.first_bad_id == ids[-1]
    assert outcome.problem == "hash does not match contents"


@pytest.mark.parametrize(
    ("original", "tampered"),
    [
        # a backslash and "b", changed to a backspace: the database writes the backspace as
        # the JSON escape \b, which COPY (PostgreSQL's walk) would read as \\b, the canonical
        # JSON of the original
        ("a\\b", '{"k":{"new":"a\\b","old":null}}'),
        # a backslash and "n", changed to a line feed (\n in JSON)
        ("x\\ny", '{"k":{"new":"x\\ny","old":null}}'),
    ],
    ids=["backslash-b to backspace", "backslash-n to line feed"],
)
def test_a_value_changed_to_what_its_escapes_would_read_as_is_found(
    app, fallbacks, original, tampered
):
    """A text holding a backslash verifies; changed to the control character its escaped
    form would name (read through an escaping layer, the two could look alike), the row is
    the first bad row."""
    from datetime import UTC, datetime

    make_user(app, "admin")
    row = {"at": datetime(2026, 3, 1, 8, 0, tzinfo=UTC), "actor_id": None, "reason": None,
           "action": "update", "actor": "a@example.org", "entity": "lab", "entity_id": "1",
           "changes": {"k": {"old": None, "new": original}}}  # fmt: skip
    with app.app_context():
        _chain_of([row])
        table = AuditEvent.__table__
        target = db.session.execute(sa.select(sa.func.max(table.c.id))).scalar_one()
        outcome = audit.verify(full=True)
        db.session.rollback()
        assert outcome.valid and fallbacks == []
        _drop_triggers()
        column = sa.cast(sa.literal(tampered), sa.JSON) if _postgres() else sa.literal(tampered)
        db.session.execute(sa.update(table).where(table.c.id == target).values(changes=column))
        db.session.commit()
        stored = db.session.execute(
            sa.select(sa.cast(table.c.changes, sa.Text)).where(table.c.id == target)
        ).scalar_one()
        assert json.loads(stored)["k"]["new"] == original.replace("\\b", "\b").replace("\\n", "\n")
        outcome = audit.verify(full=True)
        db.session.rollback()
    assert not outcome.valid and outcome.first_bad_id == target
    assert outcome.problem == "hash does not match contents"
