"""Subscribers are told when a scheduled report is ready: in the app, and by e-mail with a
link (never the file), through a real local SMTP server."""

import email

import sqlalchemy as sa

from tests.builders import world
from tests.factories import ApiClient
from tests.test_reports_scheduler import _schedule
from trialmgr.extensions import db
from trialmgr.reports.models import Report
from trialmgr.safety.models import Notification


def test_subscribers_get_a_notification_and_an_email_with_a_link(app_factory, smtp_server):
    port, inbox = smtp_server
    app = app_factory(
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=port,
        MAIL_DEFAULT_SENDER="trialmgr@example.org",
        PUBLIC_BASE_URL="https://trials.example.org/",
    )
    api = ApiClient(app)
    w = world(api)
    schedule_id = _schedule(app, w["trial"]["id"], kind="dsmb_safety")
    monitor = api.as_role("safety_monitor")
    other_lead = api.as_role("consortium_lead")
    for subscriber in (w["lead"], monitor):
        assert subscriber.post(f"/report-schedules/{schedule_id}/subscription").status_code == 200
    result = app.test_cli_runner().invoke(args=["scheduler", "run", "--once"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        report = db.session.execute(sa.select(Report)).scalar_one()
        notes = (
            db.session.execute(sa.select(Notification).where(Notification.kind == "report_ready"))
            .scalars()
            .all()
        )
        told = {n.user_id for n in notes}
        link = f"/reports/{report.id}/pdf"
        assert all(n.link == link for n in notes)
    assert told == {w["lead"].user["id"], monitor.user["id"]}  # not the lead who did not subscribe
    assert other_lead.user["id"] not in told
    messages = inbox.wait(2)
    assert sorted(m.rcpt_tos[0] for m in messages) == sorted(
        [w["lead"].user["email"], monitor.user["email"]]
    )
    for envelope in messages:
        message = email.message_from_bytes(envelope.content)
        assert "is ready" in message["Subject"]
        assert not message.is_multipart()  # a link, never the PDF attached
        body = message.get_payload(decode=True).decode()
        assert f"https://trials.example.org/reports/{report.id}/pdf" in body
        assert b"%PDF" not in envelope.content
    inbox_api = monitor.get("/notifications").json
    assert any(n["kind"] == "report_ready" for n in inbox_api)


def test_reports_made_on_request_tell_nobody(app_factory, smtp_server):
    port, inbox = smtp_server
    app = app_factory(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    api = ApiClient(app)
    w = world(api)
    schedule_id = _schedule(app, w["trial"]["id"], kind="dsmb_safety")
    assert w["lead"].post(f"/report-schedules/{schedule_id}/subscription").status_code == 200
    resp = w["lead"].post("/reports", json={"kind": "dsmb_safety", "trial_id": w["trial"]["id"]})
    assert resp.status_code == 201
    with app.app_context():
        assert (
            db.session.execute(sa.select(sa.func.count()).select_from(Notification)).scalar() == 0
        )
    assert inbox.wait(1, seconds=1) == []
