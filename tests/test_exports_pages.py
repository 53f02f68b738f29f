"""The export page (issue 15.5): leads and administrators choose a trial, a format and its
options; free text needs the confirmation; the download is audited like the API's."""

from __future__ import annotations

import hashlib
import io
import zipfile

import sqlalchemy as sa
from lxml import etree

from tests.builders import world
from tests.factories import login_page
from trialmgr.audit.models import AuditEvent
from trialmgr.extensions import db


def _page_client(app, user):
    client = app.test_client()
    login_page(client, user["email"])
    return client


def test_lead_sees_the_page_and_menu_entry(api, app):
    w = world(api)
    client = _page_client(app, w["lead"].user)
    page = client.get("/exports")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert w["trial"]["code"] in html and "CDISC ODM 1.3.2" in html
    assert 'href="/exports"' in html  # the menu entry
    coord = _page_client(app, w["coord"].user)
    assert coord.get("/exports").status_code == 403
    assert 'href="/exports"' not in coord.get("/").get_data(as_text=True)


def test_free_text_without_confirmation_is_refused_and_nothing_recorded(api, app):
    w = world(api)
    client = _page_client(app, w["lead"].user)
    form = {"trial_id": w["trial"]["id"], "kind": "analysis", "include_free_text": "true"}
    resp = client.post("/exports", data=form)
    assert resp.status_code == 422
    assert "confirm=1 is needed" in resp.get_data(as_text=True)
    with app.app_context():
        exports = db.session.execute(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action.like("export.%"))
        ).scalar()
    assert exports == 0


def test_page_downloads_each_format_and_audits_it(api, app):
    w = world(api)
    client = _page_client(app, w["lead"].user)
    base = {"trial_id": w["trial"]["id"]}
    analysis = client.post(
        "/exports",
        data={**base, "kind": "analysis", "include_free_text": "true", "confirm": "true"},
    )
    assert analysis.status_code == 200 and analysis.mimetype == "application/zip"
    assert "README.md" in zipfile.ZipFile(io.BytesIO(analysis.data)).namelist()
    odm = client.post("/exports", data={**base, "kind": "odm", "audit": "true"})
    assert odm.status_code == 200 and etree.fromstring(odm.data).tag.endswith("ODM")
    fhir = client.post("/exports", data={**base, "kind": "fhir_ndjson"})
    assert fhir.status_code == 200 and fhir.mimetype == "application/fhir+ndjson"
    with app.app_context():
        events = db.session.execute(
            sa.select(AuditEvent).where(AuditEvent.action.like("export.%")).order_by(AuditEvent.id)
        ).scalars()
        recorded = [(e.action, e.changes["sha256"], e.changes["filters"]) for e in events]
    assert recorded == [
        (
            "export.analysis",
            hashlib.sha256(analysis.data).hexdigest(),
            {"include_free_text": True, "confirm": True, "date_offsets_drawn": 0},
        ),
        ("export.odm", hashlib.sha256(odm.data).hexdigest(), {"audit": True}),
        ("export.fhir", hashlib.sha256(fhir.data).hexdigest(), {"format": "ndjson"}),
    ]
