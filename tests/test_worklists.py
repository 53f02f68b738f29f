"""Home is a worklist per role: rows that name the record and open its form."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.builders import days_ago, dose, enrol, world
from tests.factories import PASSWORD, login_page, make_user
from trialmgr.db import today
from trialmgr.extensions import db


def page_of(app, user, path="/"):
    client = app.test_client()
    login_page(client, user["email"])
    resp = client.get(path)
    assert resp.status_code == 200, resp.status_code
    return resp.get_data(as_text=True)


def section(html, element_id):
    """The markup of one element (by id) up to its closing tag of the same kind."""
    found = re.search(rf'<(ul|table) [^>]*id="{element_id}".*?</\1>', html, re.S)
    return found[0] if found else ""


def test_coordinator_sees_dosings_the_gates_admit_now_and_not_those_the_stagger_holds(app, api):
    w = world(api)
    first = enrol(w["coord"], w["trial"], w["site"])
    second = enrol(w["coord"], w["trial"], w["site"])
    rows = section(page_of(app, w["coord"].user), "work-dosing")
    assert f'id="work-dosing-{first["code"]}"' in rows
    assert f'id="work-dosing-{second["code"]}"' in rows
    assert f"/subjects/{first['code']}#dosing-card" in rows

    assert dose(w["coord"], first, days_ago(2)).status_code == 201
    html = page_of(app, w["coord"].user)
    # the sentinel is dosed; the stagger holds the second for 12 more days
    assert f'id="work-dosing-{second["code"]}"' not in html
    assert f'id="work-dosing-{first["code"]}"' not in html
    assert "No subject may be dosed now." in html


def test_coordinator_sees_reconsents_due_and_pending_screenings_as_rows(app, api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    w["lead"].post(
        f"/trials/{w['trial']['id']}/consent-versions",
        json={
            "version": "2.0",
            "approved_on": days_ago(20).isoformat(),
            "reconsent_required": True,
        },
    )
    pending = w["coord"].post(
        "/screenings",
        json={
            "trial_id": w["trial"]["id"],
            "site_id": w["site"]["id"],
            "screened_on": days_ago(3).isoformat(),
            "orphacode": 98879,
            "birth_year": 2014,
            "sex": "F",
        },
    )
    assert pending.status_code == 201, pending.json
    html = page_of(app, w["coord"].user)
    reconsent = section(html, "work-reconsent")
    assert f"/subjects/{subject['code']}#reconsent-card" in reconsent
    assert w["trial"]["code"] in reconsent
    screenings = section(html, "work-screenings")
    assert f'/screenings/{pending.json["id"]}"' in screenings
    # re-consent blocks dosing: the subject is not offered for dosing
    assert f'id="work-dosing-{subject["code"]}"' not in html


def test_coordinator_worklist_is_limited_to_their_sites(app, api):
    w = world(api)
    enrol(w["coord"], w["trial"], w["site"])
    from tests.builders import active_site

    other = active_site(w["lead"], "S02")
    stranger = api.as_role("coordinator", site_ids=[other["id"]])
    assert "No subject may be dosed now." in page_of(app, stranger.user)


def test_lead_sees_enrolment_per_site_and_cohort_funnel_expiring_approvals_and_pending_sites(
    app, api
):
    w = world(api)
    lead = w["lead"]
    enrol(w["coord"], w["trial"], w["site"])
    renewal = lead.post(
        f"/sites/{w['site']['id']}/approvals",
        json={
            "kind": "irb",
            "reference": "EC-RENEW",
            "granted_on": days_ago(1).isoformat(),
            "expires_on": (today() + timedelta(days=45)).isoformat(),
        },
    )
    assert renewal.status_code == 201, renewal.json
    later = lead.post(
        f"/sites/{w['site']['id']}/approvals",
        json={
            "kind": "ibc",
            "reference": "IBC-LATER",
            "granted_on": days_ago(1).isoformat(),
            "expires_on": (today() + timedelta(days=200)).isoformat(),
        },
    )
    assert later.status_code == 201
    partner_id = w["site"]["partner_id"]
    pending = lead.post(
        "/sites",
        json={
            "partner_id": partner_id,
            "code": "NEW1",
            "name": "New site",
            "country": "IT",
            "target_enrollment": 2,
            "timezone": "Europe/Rome",
        },
    )
    assert pending.status_code == 201, pending.json
    html = page_of(app, lead.user)

    table = section(html, "enrolment-table")
    assert re.search(
        r'<th scope="row">S01</th><td>[^<]*</td><td class="text-end">1</td>'
        r'<td class="text-end">4</td>',
        table,
    )
    cohort = f"{w['trial']['code']} C1"
    assert re.search(
        rf'<th scope="row">{cohort}</th><td>[^<]*</td><td class="text-end">1</td>'
        r'<td class="text-end">3</td>',
        table,
    )
    assert 'id="enrolment-data"' in html and "home-charts.js" in html

    funnel = section(html, f"funnel-{w['trial']['code']}")
    assert re.search(r"Enrolled</th><td[^>]*>1</td>", funnel)

    expiring = section(html, "work-expiring")
    assert f'id="work-expiring-{renewal.json["id"]}"' in expiring and "in 45 d" in expiring
    assert f'id="work-expiring-{later.json["id"]}"' not in expiring  # beyond 60 days

    pending_rows = section(html, "work-pending-sites")
    assert 'id="work-pending-NEW1"' in pending_rows and "missing IRB, IBC" in pending_rows


def test_safety_monitor_workspace_lists_pauses_reviews_due_and_open_serious_events(app, api):
    w = world(api)
    sentinel = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], sentinel, days_ago(30)).status_code == 201
    enrol(w["coord"], w["trial"], w["site"], cohort=2)
    ae = w["coord"].post(
        "/adverse-events",
        json={
            "subject_code": sentinel["code"],
            "term": "Hepatitis",
            "soc": "Hepatobiliary disorders",
            "onset_date": days_ago(20).isoformat(),
            "grade": 2,
            "seriousness_criteria": ["hospitalisation"],
            "causality": "unlikely",
            "expected": True,
            "site_awareness_at": f"{days_ago(19).isoformat()}T09:00:00+00:00",
        },
    )
    assert ae.status_code == 201, ae.json
    monitor = api.as_role("safety_monitor")
    monitor.post(f"/trials/{w['trial']['id']}/pause", json={"reason": "liver signal review"})

    home = page_of(app, monitor.user)
    assert 'href="/safety/workspace"' in home  # the menu entry
    html = page_of(app, monitor.user, "/safety/workspace")
    assert "liver signal review" in section(html, "ws-pauses")
    cohort2 = w["trial"]["cohorts"][1]["id"]
    assert f'id="ws-escalation-{cohort2}"' in section(html, "ws-escalation")
    events = section(html, "ws-events")
    assert f'id="ws-event-{ae.json["id"]}"' in events and sentinel["code"] in events
    assert "not reviewed" in events


def test_review_form_shows_the_cohorts_deviations(app, api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(30)).status_code == 201  # Day 7 window passed
    visits = w["coord"].get(f"/subjects/{subject['code']}/visits").json
    day7 = next(v for v in visits if v["name"] == "Day 7")
    missed = w["coord"].patch(f"/visits/{day7['id']}", json={"status": "missed", "reason": "ill"})
    assert missed.status_code == 200, missed.json
    monitor = api.as_role("safety_monitor")
    html = page_of(app, monitor.user, f"/trials/{w['trial']['id']}")
    row = re.search(rf'<tr id="readiness-{w["trial"]["cohorts"][0]["id"]}".*?</tr>', html, re.S)
    assert row and re.search(r'data-testid="readiness-deviations">1</td>', row[0])
    readiness = monitor.get(
        f"/trials/{w['trial']['id']}/escalation-readiness?cohort_id={w['trial']['cohorts'][0]['id']}"
    )
    assert readiness.status_code == 200 and readiness.json["deviations"] == 1


def test_admin_home_shows_the_chain_status_from_a_real_verification(app, api):
    admin = api.as_role("admin")
    html = page_of(app, admin.user)
    assert 'data-valid="true"' in html and "intact" in html
    # a row written after the checkpoint the incremental walk starts from, then altered
    make_user(app, "coordinator")
    with app.app_context():
        newest = db.session.execute(sa.text("SELECT max(id) FROM audit_event")).scalar_one()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("DROP TRIGGER audit_event_no_update_delete ON audit_event"))
        else:
            db.session.execute(sa.text("DROP TRIGGER audit_event_no_update"))
        db.session.execute(
            sa.text("UPDATE audit_event SET reason = 'edited' WHERE id = :id"), {"id": newest}
        )
        db.session.commit()
    html = page_of(app, admin.user)
    assert 'data-valid="false"' in html and "broken" in html
    assert f"Event #{newest}" in html


@pytest.mark.parametrize("role", ["coordinator", "consortium_lead", "admin"])
def test_safety_workspace_is_the_safety_monitors(app, api, role):
    user = api.as_role(role).user
    client = app.test_client()
    login_page(client, user["email"], PASSWORD)
    assert client.get("/safety/workspace").status_code == 403


def _event(coord, subject, **fields):
    body = {
        "subject_code": subject["code"],
        "term": "Hepatitis",
        "soc": "Hepatobiliary disorders",
        "onset_date": days_ago(3).isoformat(),
        "grade": 2,
        "causality": "unlikely",
        "expected": True,
        "site_awareness_at": f"{days_ago(2).isoformat()}T09:00:00+00:00",
        **fields,
    }
    resp = coord.post("/adverse-events", json=body)
    assert resp.status_code == 201, resp.json
    return resp.json


def test_coordinator_sees_open_severe_and_serious_events_to_follow_up_in_their_sites(app, api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    severe = _event(
        w["coord"], subject, term="Severe headache", soc="Nervous system disorders", grade=3
    )
    serious = _event(w["coord"], subject, term="Pyrexia", seriousness_criteria=["hospitalisation"])
    mild = _event(w["coord"], subject, term="Nausea", soc="Gastrointestinal disorders")
    resolved = _event(
        w["coord"], subject, term="Vomiting", grade=3, resolution_date=days_ago(1).isoformat()
    )
    rows = section(page_of(app, w["coord"].user), "work-events")
    assert f'href="/adverse-events/{severe["id"]}#follow-up"' in rows
    assert f'href="/adverse-events/{serious["id"]}#follow-up"' in rows
    assert "Severe headache" in rows and subject["code"] in rows and w["trial"]["code"] in rows
    assert f'id="work-event-{mild["id"]}"' not in rows  # grade 2, not serious
    assert f'id="work-event-{resolved["id"]}"' not in rows  # resolved

    from tests.builders import active_site

    other = active_site(w["lead"], "S02")
    stranger = api.as_role("coordinator", site_ids=[other["id"]])
    html = page_of(app, stranger.user)
    assert 'id="work-events"' not in html
    assert "No serious or severe event is open." in html
