"""CSV exports a person can open: UTF-8 with a BOM, human headers, codes instead of ids,
dated file names, dates in the reader's format; streamed; formula cells escaped. The API's
exports keep their field names."""

import csv
import io

import pytest

from tests.builders import TODAY, days_ago, enrol, world
from tests.factories import login_page
from trialmgr import export as export_module
from trialmgr.auth import services as auth_services
from trialmgr.auth.models import User
from trialmgr.db import today
from trialmgr.extensions import db


def signed_in(app, user):
    client = app.test_client()
    login_page(client, user["email"])
    return client


def rows_of(resp):
    body = resp.get_data()
    assert body.startswith(b"\xef\xbb\xbf"), body[:10]
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def test_screening_log_export_has_human_headers_codes_and_a_dated_name(app, api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    client = signed_in(app, w["coord"].user)
    resp = client.get(f"/screenings/export.csv?trial_id={w['trial']['id']}")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    expected = f"{w['trial']['code']}_screening-log_{today().isoformat()}.csv"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="{expected}"'
    rows = rows_of(resp)
    assert list(rows[0]) == [
        "Trial",
        "Site",
        "Screening number",
        "Screened on",
        "ORPHAcode",
        "Birth year",
        "Sex",
        "Outcome",
        "Unmet criteria",
        "Reason",
        "Subject",
    ]
    assert (rows[0]["Trial"], rows[0]["Site"], rows[0]["Subject"]) == (
        w["trial"]["code"],
        "S01",
        subject["code"],
    )
    unfiltered = client.get("/screenings/export.csv")
    assert (
        f"all-trials_screening-log_{today().isoformat()}.csv"
        in unfiltered.headers["Content-Disposition"]
    )


def test_export_dates_follow_the_readers_date_format(app, api):
    w = world(api)
    enrol(w["coord"], w["trial"], w["site"])
    with app.app_context():
        user = db.session.get(User, w["coord"].user["id"])
        auth_services.update_profile(user, {"date_format": "DD/MM/YYYY"})
        db.session.commit()
    rows = rows_of(signed_in(app, w["coord"].user).get("/screenings/export.csv"))
    assert rows[0]["Screened on"] == days_ago(300).strftime("%d/%m/%Y")


def test_accented_names_survive_and_formula_cells_stay_escaped(app, api):
    lead = api.as_role("consortium_lead")
    resp = lead.post(
        "/partners",
        json={
            "name": "Hôpital Necker-Enfants malades",
            "short_name": "NCK",
            "kind": "clinical_site",
            "country": "FR",
            "consortium_role": '=HYPERLINK("http://x")',
        },
    )
    assert resp.status_code == 201, resp.json
    export = signed_in(app, lead.user).get("/partners/export.csv")
    assert f"partners_{TODAY.isoformat()}.csv" in export.headers["Content-Disposition"]
    rows = rows_of(export)
    assert rows[0]["Name"] == "Hôpital Necker-Enfants malades"
    assert rows[0]["Consortium role"] == '\'=HYPERLINK("http://x")'
    assert "id" not in rows[0] and rows[0]["Kind"] == "clinical site"


def test_exports_stream_in_chunks(app, api, monkeypatch):
    lead = api.as_role("consortium_lead")
    for i in range(5):
        lead.post(
            "/partners",
            json={
                "name": f"Partner {i}",
                "short_name": f"P{i}",
                "kind": "academic",
                "country": "IT",
            },
        )
    monkeypatch.setattr(export_module, "CHUNK", 10)
    resp = signed_in(app, lead.user).get("/partners/export.csv", buffered=False)
    assert resp.is_streamed
    chunks = [c for c in resp.response if c]
    resp.close()
    assert len(chunks) > 1  # written as the rows come, not gathered first
    assert (
        b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks).count(b"Partner") == 5
    )


@pytest.mark.parametrize(
    ("path", "first_column"),
    [("/screenings/export", "site"), ("/partners/export", "id"), ("/audit/export", "id")],
)
def test_api_exports_keep_their_field_names_and_no_bom(app, api, path, first_column):
    w = world(api)
    enrol(w["coord"], w["trial"], w["site"])
    reader = w["coord"] if path == "/screenings/export" else api.as_role("admin")
    resp = reader.get(path)
    assert resp.status_code == 200
    body = resp.get_data()
    assert not body.startswith(b"\xef\xbb\xbf")
    assert body.decode().split(",", 1)[0] == first_column
