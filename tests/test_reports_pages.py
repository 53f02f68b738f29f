"""The report archive page: list, filters, generate now, downloads, schedules and
subscriptions, through the same services as the API."""

import re

import sqlalchemy as sa

from tests.builders import world
from tests.factories import PASSWORD, login_page
from tests.reports_helpers import CUT_OFF
from trialmgr.extensions import db
from trialmgr.reports.models import Report, ReportSchedule


def _session(app, client_api):
    session = app.test_client()
    assert login_page(session, client_api.user["email"], PASSWORD).status_code == 302
    return session


def test_lead_generates_from_the_page_and_downloads(app, api):
    w = world(api)
    page = _session(app, w["lead"])
    listing = page.get("/reports")
    assert listing.status_code == 200
    html = listing.data.decode()
    assert "Generate now" in html and "No report yet" in html
    assert 'href="/reports"' in page.get("/").data.decode()  # the menu entry
    resp = page.post(
        "/reports/generate",
        data={
            "kind": "site_enrollment",
            "trial_id": w["trial"]["id"],
            "cut_off": CUT_OFF.isoformat(),
            "confirmed": "yes",
        },
    )
    assert resp.status_code == 302
    with app.app_context():
        report = db.session.execute(sa.select(Report)).scalar_one()
        assert (report.status, report.requested_by) == ("done", w["lead"].user["email"])
    html = page.get("/reports").data.decode()
    assert f"/reports/{report.id}/pdf" in html and "generated" in html
    pdf = page.get(f"/reports/{report.id}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")
    assert pdf.headers["Cache-Control"] == "no-store"
    again = page.post(
        "/reports/generate",
        data={
            "kind": "site_enrollment",
            "trial_id": w["trial"]["id"],
            "cut_off": CUT_OFF.isoformat(),
            "confirmed": "yes",
        },
        follow_redirects=True,
    )
    assert "was already in the archive" in again.data.decode()
    filtered = page.get("/reports?kind=dsmb_safety").data.decode()
    assert "No report matches these filters" in filtered


def test_a_refused_request_is_shown_on_the_page(app, api):
    w = world(api)
    page = _session(app, w["lead"])
    resp = page.post(
        "/reports/generate",
        data={"kind": "dsmb_safety", "trial_id": w["trial"]["id"], "cut_off": "2999-01-01"},
    )
    assert resp.status_code == 422
    assert "Not after today" in resp.data.decode()
    with app.app_context():
        assert db.session.execute(sa.select(sa.func.count()).select_from(Report)).scalar() == 0


def test_schedules_from_the_page_defaults_and_subscriptions(app, api):
    w = world(api)
    lead = _session(app, w["lead"])
    html = lead.get("/reports").data.decode()
    assert "Suggested schedules" in html and "0 6 1 * *" in html and "0 6 * * 1" in html
    resp = lead.post(
        "/reports/schedules",
        data={"kind": "dsmb_safety", "trial_id": w["trial"]["id"], "cron": "0 6 1 * *"},
    )
    assert resp.status_code == 302
    bad = lead.post(
        "/reports/schedules",
        data={"kind": "feasibility", "trial_id": w["trial"]["id"], "cron": "every month, 1st"},
    )
    assert bad.status_code == 422 and "Not a valid cron" in bad.data.decode()
    with app.app_context():
        schedule_id = db.session.execute(sa.select(ReportSchedule.id)).scalar_one()
    edit = lead.post(
        f"/reports/schedules/{schedule_id}", data={"cron": "0 5 1 * *", "active": "false"}
    )
    assert edit.status_code == 302
    with app.app_context():
        schedule = db.session.get(ReportSchedule, schedule_id)
        assert (schedule.cron, schedule.active) == ("0 5 1 * *", False)
    monitor = _session(app, api.as_role("safety_monitor"))
    assert monitor.post(f"/reports/schedules/{schedule_id}/subscribe").status_code == 302
    html = monitor.get("/reports").data.decode()
    assert re.search(
        rf"schedule_id={schedule_id}|/reports/schedules/{schedule_id}/unsubscribe", html
    )
    assert monitor.post(f"/reports/schedules/{schedule_id}/unsubscribe").status_code == 302
    assert f"/reports/schedules/{schedule_id}/subscribe" in monitor.get("/reports").data.decode()


def test_coordinator_page_offers_only_their_sites(app, api):
    w = world(api)
    coord = _session(app, w["coord"])
    html = coord.get("/reports").data.decode()
    assert "Schedules" not in html and "All sites</option>" not in html
    assert "Site enrolment report" in html and "DSMB" not in html
    resp = coord.post(
        "/reports/generate",
        data={
            "kind": "site_enrollment",
            "trial_id": w["trial"]["id"],
            "site_id": w["site"]["id"],
            "confirmed": "yes",
        },
    )
    assert resp.status_code == 302
    generate_dsmb = coord.post(
        "/reports/generate",
        data={"kind": "dsmb_safety", "trial_id": w["trial"]["id"], "confirmed": "yes"},
    )
    assert generate_dsmb.status_code == 403
