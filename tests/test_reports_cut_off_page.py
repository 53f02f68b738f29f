"""The "generate now" form's data cut-off: it says which day it will use (yesterday by
default), takes today (what has been entered so far) but not a future day, restates the
request before generating, and another cut-off makes another report."""

from datetime import date, timedelta

import sqlalchemy as sa

from tests.builders import TODAY, days_ago, dose, enrol, world
from tests.factories import PASSWORD, login_page
from tests.reports_helpers import pdf_words
from trialmgr.audit.models import AuditEvent
from trialmgr.extensions import db
from trialmgr.reports.models import Report

TERM = "Transaminitis entered today"


def _session(app, client_api):
    session = app.test_client()
    assert login_page(session, client_api.user["email"], PASSWORD).status_code == 302
    return session


def _dsmb(trial, cut_off, **extra):
    return {"kind": "dsmb_safety", "trial_id": trial["id"], "cut_off": cut_off, **extra}


def _count(app, model):
    with app.app_context():
        return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar()


def _event_entered_today(w):
    """An adverse event that began yesterday and is entered today."""
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(10)).status_code == 201
    resp = w["coord"].post(
        "/adverse-events",
        json={
            "subject_code": subject["code"],
            "term": TERM,
            "soc": "Investigations",
            "onset_date": days_ago(1).isoformat(),
            "grade": 2,
            "causality": "unlikely",
            "expected": True,
            "site_awareness_at": f"{days_ago(1).isoformat()}T18:00:00+00:00",
        },
    )
    assert resp.status_code == 201, resp.json
    return resp.json


def _generate(app, page, body):
    resp = page.post("/reports/generate", data={**body, "confirmed": "yes"})
    assert resp.status_code == 302, resp.data.decode()[:2000]
    with app.app_context():
        return db.session.execute(
            sa.select(Report).where(Report.period_end == date.fromisoformat(body["cut_off"]))
        ).scalar_one()


def test_the_form_states_the_default_cut_off_yesterday_and_allows_up_to_today(app, api):
    w = world(api)
    html = _session(app, w["lead"]).get("/reports").data.decode()
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    assert f'name="cut_off" type="date" value="{yesterday}" max="{TODAY.isoformat()}"' in html
    assert f'<strong id="g-cut-off-default">{yesterday}</strong>' in html
    assert f"choose today ({TODAY.isoformat()})" in html


def test_generating_is_confirmed_first_restating_kind_trial_and_cut_off(app, api):
    w = world(api)
    page = _session(app, w["lead"])
    audit_rows = _count(app, AuditEvent)
    resp = page.post("/reports/generate", data=_dsmb(w["trial"], TODAY.isoformat()))
    assert resp.status_code == 200
    html = resp.data.decode()
    summary = (
        f"DSMB safety report (open session) of {w['trial']['code']}, "
        f"data cut-off {TODAY.isoformat()}."
    )
    assert summary in html and 'id="confirm-form"' in html
    assert f'name="cut_off" value="{TODAY.isoformat()}"' in html  # sent again on confirming
    assert 'name="confirmed" value="yes"' in html
    assert _count(app, Report) == 0 and _count(app, AuditEvent) == audit_rows


def test_a_cut_off_of_today_includes_a_record_entered_today_and_is_a_new_report(app, api):
    w = world(api)
    _event_entered_today(w)
    page = _session(app, w["lead"])
    yesterday = _generate(app, page, _dsmb(w["trial"], days_ago(1).isoformat()))
    today = _generate(app, page, _dsmb(w["trial"], TODAY.isoformat()))
    assert today.id != yesterday.id  # another cut-off: another report, not the old one
    with app.app_context():
        before = db.session.get(Report, yesterday.id)
        after = db.session.get(Report, today.id)
        pdf_before = page.get(f"/reports/{before.id}/pdf").data
        pdf_after = page.get(f"/reports/{after.id}/pdf").data
    # Entered after the end of yesterday: outside yesterday's cut-off, inside today's.
    assert TERM not in pdf_words(pdf_before)
    assert TERM in pdf_words(pdf_after)
    again = page.post(
        "/reports/generate", data=_dsmb(w["trial"], TODAY.isoformat()), follow_redirects=True
    )
    assert f"already in the archive (#{today.id}" in again.data.decode()


def test_a_future_cut_off_is_refused_on_the_form_and_nothing_is_written(app, api):
    w = world(api)
    page = _session(app, w["lead"])
    audit_rows = _count(app, AuditEvent)
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    for extra in ({}, {"confirmed": "yes"}):
        resp = page.post("/reports/generate", data=_dsmb(w["trial"], tomorrow, **extra))
        assert resp.status_code == 422
        html = resp.data.decode()
        assert "The cut-off is in the future" in html
        assert f"Not after today ({TODAY.isoformat()})" in html
        assert f'value="{tomorrow}"' in html  # the form keeps what was typed
    assert _count(app, Report) == 0 and _count(app, AuditEvent) == audit_rows


def test_the_confirmation_restates_the_cut_off_in_the_readers_date_format(app, api):
    w = world(api)
    page = _session(app, w["lead"])
    saved = page.post(
        "/account", data={"action": "profile", "date_format": "DD/MM/YYYY", "timezone": "UTC"}
    )
    assert saved.status_code == 302
    resp = page.post("/reports/generate", data=_dsmb(w["trial"], TODAY.isoformat()))
    assert resp.status_code == 200
    html = resp.data.decode()
    assert f"of {w['trial']['code']}, data cut-off {TODAY:%d/%m/%Y}." in html
    assert f"Period {TODAY.replace(day=1):%d/%m/%Y} to {TODAY:%d/%m/%Y}" in html
    assert f'name="cut_off" value="{TODAY.isoformat()}"' in html  # the form value stays ISO


def test_a_lead_ahead_of_utc_gets_a_report_cut_off_on_their_today(app, api, monkeypatch):
    """At 23:30 UTC it is already tomorrow in Rome: a lead whose calendar is Rome's may cut
    a report off on their today, and the report is built (its builder judged the cut-off on
    UTC's calendar, found it in the future, and the report failed)."""
    import sys
    from datetime import UTC, datetime, time

    import trialmgr.clock

    late = datetime.combine(TODAY, time(23, 30), tzinfo=UTC)
    original = trialmgr.clock.utcnow
    for module in list(sys.modules.values()):  # the application's clock and the tests' own
        if getattr(module, "utcnow", None) is original:
            monkeypatch.setattr(module, "utcnow", lambda: late)
    w = world(api)
    _event_entered_today(w)
    admin = api.as_role("admin")
    lead = w["lead"]
    resp = admin.patch(
        f"/users/{lead.user['id']}", json={"timezone": "Europe/Rome", "reason": "works in Rome"}
    )
    assert resp.status_code == 200, resp.json
    rome_today = TODAY + timedelta(days=1)  # 00:30 on Rome's calendar
    for kind in ("dsmb_safety", "feasibility"):
        resp = lead.post(
            "/reports",
            json={"kind": kind, "trial_id": w["trial"]["id"], "cut_off": str(rome_today)},
        )
        assert resp.status_code in (200, 201), (kind, resp.json)
        assert resp.json["status"] == "done" and resp.json["cut_off"] == str(rome_today)
    # a day after Rome's today is still the future
    resp = lead.post("/reports", json=_dsmb(w["trial"], str(rome_today + timedelta(days=1))))
    assert resp.status_code == 422 and "cut_off" in resp.json["errors"]
