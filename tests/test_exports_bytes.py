"""The ODM and FHIR exports write their bytes through fast paths (orjson for FHIR
resources, escaping only text in ODM item values, rows read by position); these tests pin
that the bytes are exactly those of the reference writers (json.dumps; `attr(value(v))`
from named values), on the constructed world and on odd values."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.exports_world import TRICKY, constructed
from trialmgr.exports.services import fhir, odm
from trialmgr.exports.services import fhir_resources as fr
from trialmgr.exports.services.roster import SubjectInfo
from trialmgr.extensions import db


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
