"""The ODM and FHIR exports write their bytes through fast paths (orjson for FHIR
resources, escaping only text in ODM item values, rows read by position); these tests pin
that the bytes are exactly those of the reference writers (json.dumps; `attr(value(v))`
from named values), on the constructed world and on odd values."""

from __future__ import annotations

import gc
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.exports_world import TRICKY, constructed
from trialmgr.enrollment.models import Trial
from trialmgr.exports.services import deid, fhir, files, odm, odm_metadata
from trialmgr.exports.services import fhir_resources as fr
from trialmgr.exports.services.analysis_tables import TABLES
from trialmgr.exports.services.files import HashingSink
from trialmgr.exports.services.records import records_of
from trialmgr.exports.services.roster import SubjectInfo, roster
from trialmgr.extensions import db

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _reference(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_every_fhir_resource_is_written_as_json_dumps_writes_it(api):
    w = constructed(api)
    base = f"/trials/{w['trial']['id']}/export/fhir"
    lines = w["lead"].get(base + "?format=ndjson").get_data(as_text=True).splitlines()
    assert len(lines) > 20
    for line in lines:
        assert line == _reference(json.loads(line))
    bundle = w["lead"].get(base).get_data(as_text=True)
    entries = bundle.split("\n")[1:-2]  # between the Bundle's head and its closing line
    assert len(entries) == len(lines)
    for entry in entries:
        item = json.loads(entry.rstrip(","))
        url = json.dumps(item["fullUrl"])
        assert entry.rstrip(",") == (
            f'{{"fullUrl": {url}, "resource": {_reference(item["resource"])}}}'
        )


ODD_TEXT = [TRICKY, "tab\there", "line\nbreak\r", "\x01\x1f\x7f", "\u2028\u2029", "é/\\"]


@pytest.mark.parametrize(
    "value",
    [
        *ODD_TEXT,
        {"text": ODD_TEXT, "n": [0, -1, 2**63 - 1], "ok": [True, False, None]},
        [fr._number(Decimal(d)) for d in ("0.00001", "0.0001", "12.5", "1E+17", "3.14159")],
        [2**70, 1e16 + 1.5, 1e-07],
    ],
)
def test_fhir_dumps_writes_the_bytes_json_dumps_writes(value):
    assert fhir._dumps(value) == _reference(value).encode()


@pytest.mark.parametrize(
    "value",
    [
        *ODD_TEXT,
        "",
        None,
        0,
        17,
        True,
        False,
        Decimal("1E+2"),
        Decimal("0.500"),
        date(2026, 3, 1),
        datetime(2026, 3, 1, 8, 30, 15, 250, tzinfo=UTC),
        2.5,
        ["a", "b"],
    ],
)
def test_odm_item_text_is_the_escaped_value(value):
    plain = odm.value(value)
    assert odm._item_text(value) == (None if plain is None else odm.attr(plain))


def test_odm_groups_from_rows_by_position_equal_groups_from_named_values(app):
    info = SubjectInfo(1, "S-1", 1, "S01", "UTC", "C1", "dosed", "F", 1980, None, None)
    with app.app_context():
        row = db.session.execute(
            sa.select(
                sa.literal(7).label("id"),
                sa.literal(TRICKY).label("name"),
                sa.literal("done").label("status"),
                sa.literal(None).label("done_on"),
                sa.literal("line\nbreak").label("notes"),
                sa.literal("2026-03-01").label("scheduled_on"),
                sa.literal("not an item").label("unrelated"),
            )
        ).one()
    by_row, by_name = odm._Subject(info), odm._Subject(info)
    by_row.group("SE.V", "VISIT", "VISIT", row, 1, positions=odm._positions("VISIT", row._fields))
    by_name.group("SE.V", "VISIT", "VISIT", row._asdict(), 1)
    assert by_row.xml() == by_name.xml()
    assert "line&#10;break" in by_row.xml()


@pytest.mark.parametrize(
    "value",
    [*ODD_TEXT, "", None, 0, 17, -3, True, False, Decimal("1E+2"), Decimal("0.500"),
     Decimal("-0.000"), date(2026, 3, 1), datetime(2026, 3, 1, 8, 30, 15, 250, tzinfo=UTC),
     2.5, ["a", "b"]],
)  # fmt: skip
def test_odm_values_of_rows_are_converted_as_item_text_converts_them(value):
    text = odm._item_text(value)
    expected = [] if text is None else [f'<ItemData ItemOID="IT.X" Value="{text}"/>']
    assert odm._row_items(("other", value), (("IT.X", 1),)) == expected
    if text is not None:  # the canonical lab value names its unit
        unit = [odm._item_xml(odm._CANONICAL, text, "MU.X")]
        assert odm._row_items((value,), ((odm._CANONICAL, 0),), "MU.X") == unit
        assert "MU.X" in unit[0]


def _odm_bytes(trial_id: int, audit: bool) -> bytes:
    out = io.BytesIO()
    sink = HashingSink(out)
    odm.write(sink, db.session.get_one(Trial, trial_id), audit, CREATED)
    sink.flush()
    return out.getvalue()


@pytest.mark.parametrize("audit", [False, True])
def test_odm_reading_records_several_chunks_at_once_writes_the_same_document(
    api, app, monkeypatch, audit
):
    w = constructed(api)
    monkeypatch.setattr(odm, "CHUNK", 2)
    with app.app_context():
        monkeypatch.setattr(odm, "READ", 2)  # records read chunk by chunk
        by_chunk = _odm_bytes(w["trial"]["id"], audit)
        monkeypatch.setattr(odm, "READ", 6)
        together = _odm_bytes(w["trial"]["id"], audit)
    assert together == by_chunk
    assert together.count(b"<ClinicalData ") == 3  # six subjects, two a ClinicalData


def test_records_of_some_kinds_are_those_of_a_full_read(api, app):
    w = constructed(api)
    with app.app_context():
        ids = list(roster(w["trial"]["id"]))
        full = records_of(ids)
        some = records_of(ids, fhir._KINDS)
        assert set(some) == set(fhir._KINDS) < set(full)
        assert all(some[k] == full[k] for k in some)
        assert full["adverse_event"] and full["lab_result"]


def test_adverse_event_records_carry_every_column_the_odm_items_and_fhir_read(api, app):
    """The ODM writes the items it finds among a row's fields (a column left out of the
    query would silently drop its item): the adverse events' rows must carry them all."""
    w = constructed(api)
    with app.app_context():
        (row, *_) = records_of(list(roster(w["trial"]["id"])))["adverse_event"].values()
    fields = set(row[0]._fields)
    (ae_form,) = [f for f in odm_metadata.FORMS if f.key == "AE"]
    assert {name for _, name in ae_form.items} <= fields
    read_by_fhir = {"id", "term", "pt_term", "pt_code", "onset_date", "site_awareness_at",
                    "serious", "grade", "causality", "seriousness_criteria", "outcome"}  # fmt: skip
    assert read_by_fhir <= fields


_BOOLEAN = {"primary_endpoint", "serious", "suspected", "expected", "susar", "aesi",
            "hys_law", "baseline"}  # fmt: skip


def test_analysis_rows_hold_their_values_in_the_order_of_the_columns(api, app):
    """Each table's rows are tuples in the order of its columns: every row is as long as
    the columns, and every value is of its column's kind (the subject's code, a study day,
    a shifted date, a boolean, a decimal written plainly)."""
    w = constructed(api)
    codes = {s["code"] for s in w["subjects"]}
    with app.app_context():
        trial = db.session.get_one(Trial, w["trial"]["id"])
        offsets, _ = deid.draw_missing(trial.id)
        subjects = roster(trial.id)
        seen: set[str] = set()
        for table in TABLES:
            rows = list(table.rows(trial, subjects, offsets))
            assert rows, table.file
            for row in rows:
                assert len(row) == len(table.columns), table.file
                for col, v in zip(table.columns, row, strict=True):
                    if v is None:
                        continue
                    seen.add(f"{table.file}:{col.name}")
                    if col.name == "subject":
                        assert v in codes
                    elif col.name.endswith("_day"):
                        assert type(v) is int, (table.file, col.name, v)
                    elif col.shifted and col.name.endswith("_at"):
                        assert datetime.fromisoformat(v).tzinfo is not None
                    elif col.shifted:
                        assert type(v) is date, (table.file, col.name, v)
                    elif col.name in _BOOLEAN:
                        assert v in ("true", "false"), (table.file, col.name, v)
                    elif col.name in ("value", "uln_multiple"):
                        assert Decimal(v) == Decimal(v).normalize() and "E" not in v
    assert {"labs.csv:collected_day", "adverse_events.csv:serious", "efficacy.csv:value",
            "subjects.csv:dosed_on", "visits.csv:done_day"} <= seen  # fmt: skip


def test_a_build_pauses_the_cyclic_collector_and_turns_it_back_on():
    seen = []

    def write(sink):
        seen.append(gc.isenabled())
        sink.write(b"x")
        return {}

    assert gc.isenabled()
    export = files.build("odm", "application/xml", "x.xml", write)
    export.handle.close()
    assert seen == [False] and gc.isenabled()

    def fail(sink):
        raise RuntimeError("broken")

    with pytest.raises(RuntimeError):
        files.build("odm", "application/xml", "x.xml", fail)
    assert gc.isenabled()


def test_overlapping_builds_turn_the_collector_on_when_the_last_ends_and_only_if_it_was_on():
    assert gc.isenabled()
    first, second = files.collector_paused(), files.collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second build still runs
    second.__exit__(None, None, None)
    assert gc.isenabled()
    gc.disable()
    try:
        with files.collector_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
