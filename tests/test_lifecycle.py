"""One request lifecycle: the commit happens inside request handling, a failed commit is
an error response with a reference, refusals roll back except the writes they must keep
(on the API and on the pages alike), and downloads are never cached."""

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.builders import world
from tests.factories import PASSWORD, login_page
from trialmgr.audit.models import AuditEvent
from trialmgr.auth.models import User
from trialmgr.extensions import db


def _failing_commit(monkeypatch):
    def commit(self):
        raise sa.exc.OperationalError("COMMIT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(Session, "commit", commit)


def test_failed_commit_is_a_problem_500_with_reference_not_a_success(api, monkeypatch, caplog):
    lead = api.as_role("consortium_lead")
    _failing_commit(monkeypatch)
    resp = lead.post(
        "/partners",
        json={"name": "Lost Partner", "short_name": "LP", "kind": "academic", "country": "IT"},
    )
    assert resp.status_code == 500
    assert resp.mimetype == "application/problem+json"
    assert resp.json["reference"] and resp.json["reference"] in resp.json["detail"]
    assert any(resp.json["reference"] in r.getMessage() for r in caplog.records)
    monkeypatch.undo()
    assert lead.get("/partners").json == []


def test_failed_commit_on_a_page_shows_the_error_page_with_reference(app, api, monkeypatch):
    lead = api.as_role("consortium_lead")
    page = app.test_client()
    assert login_page(page, lead.user["email"]).status_code == 302
    _failing_commit(monkeypatch)
    resp = page.post(
        "/partners/new",
        data={"name": "Lost Partner", "short_name": "LP", "kind": "academic", "country": "IT"},
    )
    assert resp.status_code == 500
    assert resp.mimetype == "text/html"
    assert "Quote reference" in resp.get_data(as_text=True)


def _failures(app, user_id):
    with app.app_context():
        user = db.session.get(User, user_id)
        audit_rows = db.session.execute(
            sa.select(AuditEvent.action).where(
                AuditEvent.entity == "user_account", AuditEvent.entity_id == str(user_id)
            )
        ).scalars()
        return user.locked_until, list(audit_rows)


def test_wrong_signature_on_review_page_counts_toward_lockout_and_is_audited(app, api):
    w = world(api)
    monitor = api.as_role("safety_monitor")
    page = app.test_client()
    assert login_page(page, monitor.user["email"]).status_code == 302
    trial_id, cohort_id = w["trial"]["id"], w["trial"]["cohorts"][0]["id"]
    body = {"cohort_id": cohort_id, "decision": "continue", "rationale": "no DLT seen"}
    for _ in range(5):
        resp = page.post(f"/trials/{trial_id}/safety-reviews", data={**body, "password": "nope"})
        assert resp.status_code in (403, 422)
    locked_until, actions = _failures(app, monitor.user["id"])
    assert locked_until is not None
    assert actions.count("signature_failed") == 4
    assert "account_locked" in actions
    signed = page.post(f"/trials/{trial_id}/safety-reviews", data={**body, "password": PASSWORD})
    assert signed.status_code == 403  # locked: even the right password cannot sign now
    assert monitor.get(f"/trials/{trial_id}/safety-reviews").json == []


def test_wrong_signature_on_resume_page_is_kept_but_nothing_else(app, api):
    w = world(api)
    monitor = api.as_role("safety_monitor")
    trial_id = w["trial"]["id"]
    assert monitor.post(f"/trials/{trial_id}/pause", json={"reason": "grade 4 ALT"}).status_code
    page = app.test_client()
    assert login_page(page, monitor.user["email"]).status_code == 302
    resp = page.post(
        f"/trials/{trial_id}/resume", data={"reason": "reviewed, resume", "password": "nope"}
    )
    assert resp.status_code == 422
    assert monitor.get(f"/trials/{trial_id}").json["status"] == "paused"
    _, actions = _failures(app, monitor.user["id"])
    assert actions.count("signature_failed") == 1


def test_refused_form_leaves_nothing_half_written(app, api):
    """A site created and then refused in the same request (unknown partner) leaves no row."""
    lead = api.as_role("consortium_lead")
    page = app.test_client()
    assert login_page(page, lead.user["email"]).status_code == 302
    resp = page.post(
        "/sites/new",
        data={"partner_id": "999", "code": "ZZ1", "name": "Nowhere", "country": "IT"},
    )
    assert resp.status_code == 422
    assert lead.get("/sites").json == []


def test_every_download_and_page_is_no_store(app, api):
    w = world(api)
    lead = w["lead"]
    page = app.test_client()
    assert login_page(page, lead.user["email"]).status_code == 302
    for path in ("/partners/export.csv", "/screenings/export.csv", "/audit?format=csv", "/"):
        resp = page.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["Cache-Control"] == "no-store", path
    for path in ("/partners/export", "/screenings/export", "/audit/export"):
        resp = lead.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["Cache-Control"] == "no-store", path
