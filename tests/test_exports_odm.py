"""CDISC ODM 1.3.2 export (issue 15.1): every file validates against the ODM 1.3.2 XSD that
odmlib ships (lxml), for a constructed trial with every record kind and user text that
must be escaped, for the demo trial, with and without the audit trail, and from the CLI."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import odmlib
import sqlalchemy as sa
from lxml import etree

from tests.exports_world import TRICKY, constructed
from trialmgr.audit.models import AuditEvent
from trialmgr.enrollment.models import Trial
from trialmgr.extensions import db

NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}


@functools.cache
def _schema() -> etree.XMLSchema:
    xsd = Path(odmlib.__file__).parent / "schemas" / "odm" / "1.3.2" / "ODM1-3-2.xsd"
    return etree.XMLSchema(etree.parse(str(xsd)))


def _valid(data: bytes) -> etree._Element:
    doc = etree.fromstring(data)
    schema = _schema()
    assert schema.validate(doc), schema.error_log.filter_from_errors()[:5]
    return doc


def _values(doc, item_oid):
    return [e.get("Value") for e in doc.iterfind(f".//odm:ItemData[@ItemOID='{item_oid}']", NS)]


def test_constructed_trial_validates_and_keeps_user_text(api, app):
    w = constructed(api)
    resp = w["lead"].get(f"/trials/{w['trial']['id']}/export/odm")
    assert resp.status_code == 200 and resp.mimetype == "application/xml"
    doc = _valid(resp.data)
    keys = [s.get("SubjectKey") for s in doc.iterfind(".//odm:SubjectData", NS)]
    assert sorted(keys) == sorted(s["code"] for s in w["subjects"])
    assert _values(doc, "IT.VISITS.NOTES") == [TRICKY]
    assert _values(doc, "IT.ADVERSE_EVENTS.NARRATIVE") == [TRICKY]
    assert _values(doc, "IT.ADVERSE_EVENTS.TERM") == [TRICKY]
    assert _values(doc, "IT.WITHDRAWAL.REASON") == [TRICKY]
    assert _values(doc, "IT.ADVERSE_EVENTS.GRADE") == ["2"]
    assert _values(doc, "IT.ADVERSE_EVENTS.SERIOUSNESS_CRITERION") == ["hospitalisation"]
    assert sorted(_values(doc, "IT.LABS.ANALYTE")) == ["ALT", "PLT"]
    assert "22.25" in _values(doc, "IT.EFFICACY.VALUE")
    units = doc.findall(
        ".//odm:ItemData[@ItemOID='IT.LABS.VALUE_CANONICAL']/odm:MeasurementUnitRef", NS
    )
    assert {u.get("MeasurementUnitOID") for u in units} == {"MU.U_L", "MU.10_9_L"}
    codes = {
        cl.get("OID"): [i.get("CodedValue") for i in cl.iterfind("odm:CodeListItem", NS)]
        for cl in doc.iterfind(".//odm:CodeList", NS)
    }
    assert codes["CL.ADVERSE_EVENTS.GRADE"] == ["1", "2", "3", "4", "5"]
    assert codes["CL.ADVERSE_EVENTS.CAUSALITY"][0] == "unrelated"
    assert "hospitalisation" in codes["CL.ADVERSE_EVENTS.SERIOUSNESS_CRITERION"]
    events = [e.get("Name") for e in doc.iterfind(".//odm:StudyEventDef", NS)]
    assert {"Day 7", "Week 4", "Week 12"} <= set(events)
    assert not doc.findall(".//odm:AuditRecords", NS)
    with app.app_context():
        event = db.session.execute(
            sa.select(AuditEvent).where(AuditEvent.action == "export.odm")
        ).scalar_one()
        assert event.changes["sha256"] == hashlib.sha256(resp.data).hexdigest()
        assert event.changes["rows"]["subjects"] == 6
        assert event.changes["rows"]["adverse_event"] == 1
        assert event.changes["filters"] == {"audit": False}


def test_audit_trail_as_audit_records(api, app):
    w = constructed(api)
    resp = w["lead"].get(f"/trials/{w['trial']['id']}/export/odm?audit=1")
    assert resp.status_code == 200
    doc = _valid(resp.data)
    records = doc.findall(".//odm:AuditRecords/odm:AuditRecord", NS)
    sources = [r.findtext("odm:SourceID", namespaces=NS) for r in records]
    assert any(s.startswith("adverse_event.record adverse_event") for s in sources)
    assert any(s.startswith("visit.record visit") for s in sources)
    assert any(s.startswith("subject.withdraw subject") for s in sources)
    # the notes as entered (JSON-quoted inside), escaped by the XML writer
    assert any('"notes": {"new": "Ünïcødé <b>&amp; \\"quoted\\"' in s for s in sources)
    users = {u.get("OID") for u in doc.iterfind(".//odm:AdminData/odm:User", NS)}
    assert {r.find("odm:UserRef", NS).get("UserOID") for r in records} <= users
    with app.app_context():
        event = db.session.execute(
            sa.select(AuditEvent).where(AuditEvent.action == "export.odm")
        ).scalar_one()
        assert event.changes["rows"]["audit_records"] == len(records)


def test_demo_trial_validates(app, runner, api):
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    with app.app_context():
        trial_id = db.session.execute(sa.select(Trial.id).where(Trial.code == "GT-01")).scalar()
    lead = api.as_role("consortium_lead")
    for query in ("", "?audit=1"):
        resp = lead.get(f"/trials/{trial_id}/export/odm{query}")
        assert resp.status_code == 200
        doc = _valid(resp.data)
        assert len(doc.findall(".//odm:SubjectData", NS)) >= 5


def test_cli_writes_a_valid_file_and_audits_it(api, app, runner, tmp_path):
    w = constructed(api)
    out = tmp_path / "gt.xml"
    result = runner.invoke(
        args=["export", "odm", "--trial", w["trial"]["code"], "--audit", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    _valid(out.read_bytes())
    with app.app_context():
        event = db.session.execute(
            sa.select(AuditEvent).where(AuditEvent.action == "export.odm")
        ).scalar_one()
        assert event.actor == "system:cli"
        assert event.changes["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert runner.invoke(args=["export", "odm", "--trial", "NOPE"]).exit_code != 0


def test_only_leads_and_admins_export_odm(api):
    w = constructed(api)
    url = f"/trials/{w['trial']['id']}/export/odm"
    assert w["coord"].get(url).status_code == 403
    assert api.as_role("safety_monitor").get(url).status_code == 403
    assert api.as_role("admin").get(url).status_code == 200
