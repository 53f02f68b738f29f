"""The report archive over the API: generate now (idempotent per period), status, the list,
downloads checked against their sha256, and who may see and make which report."""

import hashlib
import re
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from tests.builders import TODAY, active_site, world
from tests.reports_helpers import CUT_OFF, generate
from trialmgr.audit.models import AuditEvent
from trialmgr.extensions import db
from trialmgr.reports.models import Report


def _file(app, report_id):
    with app.app_context():
        report = db.session.get(Report, report_id)
        return Path(app.instance_path) / "reports" / report.file_path


def _audit_actions(app, report_id):
    with app.app_context():
        return list(
            db.session.execute(
                sa.select(AuditEvent.action)
                .where(AuditEvent.entity == "report", AuditEvent.entity_id == str(report_id))
                .order_by(AuditEvent.id)
            ).scalars()
        )


def test_generate_now_is_idempotent_per_period(app, api):
    w = world(api)
    body = {"kind": "site_enrollment", "trial_id": w["trial"]["id"], "cut_off": CUT_OFF.isoformat()}
    first = w["lead"].post("/reports", json=body)
    assert first.status_code == 201, first.json
    assert first.json["status"] == "done" and len(first.json["sha256"]) == 64
    assert first.json["period_start"] == CUT_OFF.replace(day=1).isoformat()
    assert first.json["period_end"] == first.json["cut_off"] == CUT_OFF.isoformat()
    again = w["lead"].post("/reports", json=body)
    assert again.status_code == 200
    assert again.json["id"] == first.json["id"] and again.json["sha256"] == first.json["sha256"]
    # a period other than the default (the 1st of the cut-off's month), whatever the day
    other_start = CUT_OFF.replace(day=1) - timedelta(days=1)
    other_period = w["lead"].post("/reports", json={**body, "period_start": str(other_start)})
    assert other_period.status_code == 201 and other_period.json["id"] != first.json["id"]
    assert len(w["lead"].get("/reports").json) == 2
    actions = _audit_actions(app, first.json["id"])
    assert actions[:3] == ["report.request", "report.start", "report.generate"]


def test_status_list_filters_and_pagination(app, api):
    w = world(api)
    lead, trial_id = w["lead"], w["trial"]["id"]
    site = generate(lead, kind="site_enrollment", trial_id=trial_id)
    dsmb = generate(lead, kind="dsmb_safety", trial_id=trial_id)
    status = lead.get(f"/reports/{dsmb['id']}").json
    assert status["status"] == "done" and status["pdf_url"] == f"/api/v1/reports/{dsmb['id']}/pdf"
    assert status["cut_off"] == (TODAY - timedelta(days=1)).isoformat()  # default: yesterday
    only = lead.get("/reports?kind=dsmb_safety").json
    assert [r["id"] for r in only] == [dsmb["id"]]
    assert lead.get("/reports?status=failed").json == []
    page = lead.get("/reports?page_size=1&page=2")
    assert len(page.json) == 1 and page.headers["X-Pagination"]
    assert {r["id"] for r in lead.get(f"/reports?trial_id={trial_id}").json} == {
        site["id"],
        dsmb["id"],
    }
    assert lead.get("/reports?kind=weekly").status_code == 422


def test_download_checks_the_sha256_and_is_audited(app, api):
    w = world(api)
    report = generate(w["lead"], kind="feasibility", trial_id=w["trial"]["id"])
    resp = w["lead"].get(f"/reports/{report['id']}/pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert resp.data.startswith(b"%PDF-")
    assert hashlib.sha256(resp.data).hexdigest() == report["sha256"]
    assert len(resp.data) == report["size"]
    assert resp.headers["Cache-Control"] == "no-store"
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert re.search(r"filename=GT-\d+-feasibility-all-sites-\d{4}-\d{2}-\d{2}\.pdf", disposition)
    assert "report.download" in _audit_actions(app, report["id"])


def test_altered_file_is_refused_with_409_and_an_audit_event(app, api):
    w = world(api)
    report = generate(w["lead"], kind="site_enrollment", trial_id=w["trial"]["id"])
    path = _file(app, report["id"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    resp = w["lead"].get(f"/reports/{report['id']}/pdf")
    assert resp.status_code == 409
    assert resp.mimetype == "application/problem+json"
    assert "sha256" in resp.json["detail"]
    assert "report.integrity_failed" in _audit_actions(app, report["id"])
    assert "report.download" not in _audit_actions(app, report["id"])
    events = w["lead"].get(f"/audit?entity=report&entity_id={report['id']}").json
    failed = next(e for e in events if e["action"] == "report.integrity_failed")
    assert failed["changes"]["expected_sha256"] == report["sha256"]
    assert failed["changes"]["found_sha256"] == hashlib.sha256(bytes(data)).hexdigest()


def test_missing_file_is_404(app, api):
    w = world(api)
    report = generate(w["lead"], kind="site_enrollment", trial_id=w["trial"]["id"])
    _file(app, report["id"]).unlink()
    resp = w["lead"].get(f"/reports/{report['id']}/pdf")
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"


def test_bad_requests_are_422(app, api):
    w = world(api)
    lead, trial_id = w["lead"], w["trial"]["id"]
    tomorrow = (TODAY + timedelta(days=2)).isoformat()
    for body, field in (
        ({"kind": "weekly", "trial_id": trial_id}, "kind"),
        ({"kind": "dsmb_safety", "trial_id": trial_id, "cut_off": tomorrow}, "cut_off"),
        ({"kind": "dsmb_safety", "trial_id": trial_id, "site_id": w["site"]["id"]}, "site_id"),
        (
            {
                "kind": "site_enrollment",
                "trial_id": trial_id,
                "cut_off": CUT_OFF.isoformat(),
                "period_start": TODAY.isoformat(),
            },
            "period_start",
        ),
        ({"kind": "site_enrollment", "trial_id": trial_id, "colour": "red"}, "colour"),
    ):
        resp = lead.post("/reports", json=body)
        assert resp.status_code == 422, (body, resp.json)
        assert field in resp.json["errors"], resp.json
    assert lead.post("/reports", json={"kind": "dsmb_safety", "trial_id": 9999}).status_code == 404


def test_coordinators_get_their_sites_one_site_reports_only(app, api):
    w = world(api)
    lead, coord, trial_id = w["lead"], w["coord"], w["trial"]["id"]
    other = active_site(lead, "S02")
    stranger = api.as_role("coordinator", site_ids=[other["id"]])
    trial_wide = generate(lead, kind="site_enrollment", trial_id=trial_id)
    dsmb = generate(lead, kind="dsmb_safety", trial_id=trial_id)
    own = coord.post(
        "/reports",
        json={"kind": "site_enrollment", "trial_id": trial_id, "site_id": w["site"]["id"]},
    )
    assert own.status_code == 201, own.json
    assert own.json["scope"] == f"site:{w['site']['id']}" and own.json["site_code"] == "S01"
    # coordinators generate only their site's one-site report
    assert (
        coord.post("/reports", json={"kind": "site_enrollment", "trial_id": trial_id}).status_code
        == 403
    )
    assert (
        coord.post("/reports", json={"kind": "dsmb_safety", "trial_id": trial_id}).status_code
        == 403
    )
    refused = coord.post(
        "/reports", json={"kind": "site_enrollment", "trial_id": trial_id, "site_id": other["id"]}
    )
    assert refused.status_code == 422 and "site_id" in refused.json["errors"]
    # and see only those
    assert [r["id"] for r in coord.get("/reports").json] == [own.json["id"]]
    assert stranger.get("/reports").json == []
    for report in (trial_wide, dsmb):
        assert coord.get(f"/reports/{report['id']}").status_code == 404
        assert coord.get(f"/reports/{report['id']}/pdf").status_code == 404
    assert coord.get(f"/reports/{own.json['id']}/pdf").status_code == 200
    assert stranger.get(f"/reports/{own.json['id']}").status_code == 404
    assert stranger.get(f"/reports/{own.json['id']}/pdf").status_code == 404
    # trial readers see all of them
    monitor = api.as_role("safety_monitor")
    assert len(monitor.get("/reports").json) == 3
    assert monitor.get(f"/reports/{own.json['id']}/pdf").status_code == 200
    assert (
        monitor.post("/reports", json={"kind": "dsmb_safety", "trial_id": trial_id}).status_code
        == 200
    )


def test_a_failed_generation_is_recorded_and_answered_500(app, api, monkeypatch):
    from trialmgr.reports import builders  # the archive imports them when it builds

    w = world(api)

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(builders, "build", broken)
    body = {"kind": "site_enrollment", "trial_id": w["trial"]["id"]}
    resp = w["lead"].post("/reports", json=body)
    assert resp.status_code == 500 and resp.json["report_id"]
    assert "disk on fire" not in resp.json["detail"]
    status = w["lead"].get(f"/reports/{resp.json['report_id']}").json
    assert status["status"] == "failed" and status["error"] == "RuntimeError: disk on fire"
    assert status["attempts"] == 1 and status["next_attempt_at"]
    monkeypatch.undo()
    again = w["lead"].post("/reports", json=body)  # an explicit request retries at once
    assert again.status_code == 201 and again.json["status"] == "done"
    assert again.json["id"] == resp.json["report_id"] and again.json["attempts"] == 2
