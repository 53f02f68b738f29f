"""The subject page: routine entry first, exits in an actions menu behind a confirmation that
restates what will happen, refused actions shown disabled with the reason, a visit's
corrections on the visit, status words that say where the subject is."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.builders import active_site, days_ago, enrol, open_trial
from tests.factories import login_page
from trialmgr.db import today


@pytest.fixture()
def rome(api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "RM1", timezone="Europe/Rome")
    trial = open_trial(lead)
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    return {"lead": lead, "site": site, "trial": trial, "coord": coord}


def signed_in(app, user):
    client = app.test_client()
    login_page(client, user["email"])
    return client


def html(resp):
    return resp.get_data(as_text=True)


def visit_named(coord, code, name):
    return next(v for v in coord.get(f"/subjects/{code}/visits").json if v["name"] == name)


def test_routine_entry_comes_before_the_record_and_exits_sit_in_the_actions_menu(app, rome):
    subject = enrol(rome["coord"], rome["trial"], rome["site"])
    page = html(signed_in(app, rome["coord"].user).get(f"/subjects/{subject['code']}"))
    assert page.index('id="routine-entry"') < page.index('id="subject-record"')
    assert page.index('id="dosing-card"') < page.index('id="subject-record"')
    menu = re.search(r'id="subject-actions".*?</ul>', page, re.S)[0]
    assert 'id="action-withdraw"' in menu and 'href="#withdraw-card"' in menu
    assert 'href="#end-card"' in menu
    # not lost to follow-up: reinstatement is shown, disabled, with the reason
    assert re.search(
        r'<span class="dropdown-item disabled" aria-disabled="true" id="action-reinstate">'
        r"Reinstate — only a subject lost to follow-up</span>",
        menu,
    )


def test_dosing_refused_now_is_a_disabled_button_with_the_next_allowed_site_time(app, rome):
    coord = rome["coord"]
    first = enrol(coord, rome["trial"], rome["site"])
    second = enrol(coord, rome["trial"], rome["site"])
    dosed_at = datetime.combine(days_ago(2), datetime.min.time(), UTC) + timedelta(hours=8)
    resp = coord.post(
        f"/subjects/{first['code']}/dosing",
        json={"dosed_at": dosed_at.isoformat(), "dose": "1e13", "lot_number": "L1"},
    )
    assert resp.status_code == 201, resp.json
    page = html(signed_in(app, coord.user).get(f"/subjects/{second['code']}"))
    allowed = dosed_at + timedelta(days=14)
    local = allowed.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Rome"))
    label = f"next allowed {local:%Y-%m-%d %H:%M} (Rome, {local.tzname()})"
    button = re.search(r'<button[^>]*id="dosing-now-disabled">(.*?)</button>', page)
    assert button and button[1] == f"Record dosing — {label}"
    assert " disabled " in button[0]
    # a dosing given earlier can still be entered: the form stays, folded away
    assert 'id="dosing-late-entry"' in page and 'id="dosing-form"' in page


def test_paused_trial_offers_no_dosing_form_at_all(app, rome):
    subject = enrol(rome["coord"], rome["trial"], rome["site"])
    monitor = rome["lead"].as_role("safety_monitor")
    monitor.post(f"/trials/{rome['trial']['id']}/pause", json={"reason": "liver signal"})
    page = html(signed_in(app, rome["coord"].user).get(f"/subjects/{subject['code']}"))
    assert "Record dosing — trial paused" in page
    assert 'id="dosing-form"' not in page


def test_status_words_never_say_completed_while_follow_up_goes_on(app, rome):
    coord = rome["coord"]
    subject = enrol(coord, rome["trial"], rome["site"], consented_on=days_ago(200))
    resp = coord.post(
        f"/subjects/{subject['code']}/dosing",
        json={
            "dosed_at": f"{days_ago(100).isoformat()}T08:00:00Z",
            "dose": "1e13",
            "lot_number": "L",
        },
    )
    assert resp.status_code == 201
    client = signed_in(app, coord.user)
    day7 = visit_named(coord, subject["code"], "Day 7")
    r = coord.patch(
        f"/visits/{day7['id']}",
        json={"status": "done", "done_on": days_ago(93).isoformat(), "reason": "entered"},
    )
    assert r.status_code == 200, r.json
    assert 'data-status="in_follow_up">in follow-up<' in html(
        client.get(f"/subjects/{subject['code']}")
    )
    week12 = visit_named(coord, subject["code"], "Week 12")
    done = coord.patch(
        f"/visits/{week12['id']}",
        json={"status": "done", "done_on": days_ago(16).isoformat(), "reason": "entered"},
    )
    assert done.status_code == 200, done.json
    assert coord.get(f"/subjects/{subject['code']}").json["status"] == "completed"
    page = html(client.get(f"/subjects/{subject['code']}"))
    assert 'data-status="completed">primary follow-up complete<' in page
    assert not re.search(r'data-status="[a-z_]+">completed<', page)
    listing = html(client.get("/subjects"))
    assert "primary follow-up complete" in listing


def test_a_visits_corrections_show_on_the_visit(app, rome):
    coord = rome["coord"]
    subject = enrol(coord, rome["trial"], rome["site"], consented_on=days_ago(200))
    coord.post(
        f"/subjects/{subject['code']}/dosing",
        json={
            "dosed_at": f"{days_ago(30).isoformat()}T08:00:00Z",
            "dose": "1e13",
            "lot_number": "L",
        },
    )
    day7 = visit_named(coord, subject["code"], "Day 7")
    first, second = days_ago(23), days_ago(22)
    coord.patch(
        f"/visits/{day7['id']}",
        json={"status": "done", "done_on": first.isoformat(), "reason": "entered"},
    )
    fixed = coord.patch(
        f"/visits/{day7['id']}",
        json={"status": "done", "done_on": second.isoformat(), "reason": "typo in the CRF date"},
    )
    assert fixed.status_code == 200, fixed.json
    page = html(signed_in(app, coord.user).get(f"/subjects/{subject['code']}"))
    block = re.search(rf'<tr id="visit-corrections-{day7["id"]}".*?</table>', page, re.S)
    assert block
    row = re.search(r"<tr><td[^>]*>Done on</td>(.*?)</tr>", block[0], re.S)
    assert row
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row[1])
    assert cells[:4] == [
        first.isoformat(),
        second.isoformat(),
        "typo in the CRF date",
        coord.user["email"],
    ]


def test_end_of_participation_is_restated_and_only_written_when_confirmed(app, rome):
    coord = rome["coord"]
    subject = enrol(coord, rome["trial"], rome["site"], consented_on=days_ago(200))
    coord.post(
        f"/subjects/{subject['code']}/dosing",
        json={
            "dosed_at": f"{days_ago(30).isoformat()}T08:00:00Z",
            "dose": "1e13",
            "lot_number": "L",
        },
    )
    client = signed_in(app, coord.user)
    form = {"status": "died", "on": days_ago(1).isoformat(), "reason": "road accident"}
    url = f"/subjects/{subject['code']}/end"
    restated = client.post(url, data=form)
    page = html(restated)
    assert restated.status_code == 200 and 'id="confirm-form"' in page
    assert f"{subject['code']} died on {days_ago(1).isoformat()}." in page
    assert "Status afterwards: died." in page and "A death cannot be undone." in page
    assert coord.get(f"/subjects/{subject['code']}").json["status"] != "died"
    done = client.post(url, data={**form, "confirmed": "yes"})
    assert done.status_code == 302
    assert coord.get(f"/subjects/{subject['code']}").json["status"] == "died"


def test_cancelling_an_exit_returns_the_filled_card_and_changes_nothing(app, rome):
    subject = enrol(rome["coord"], rome["trial"], rome["site"])
    client = signed_in(app, rome["coord"].user)
    url = f"/subjects/{subject['code']}/end"
    form = {"status": "lost_to_follow_up", "on": days_ago(2).isoformat(), "reason": "no answer"}
    restated = client.post(url, data=form)
    page = html(restated)
    cancel = page[page.index('id="cancel-form"') :]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', cancel))
    back = client.post(url, data=fields)
    assert back.status_code == 200
    page = html(back)
    assert 'class="col-lg-6 collapse show" id="end-card"' in page
    assert re.search(rf'id="end-on"[^>]*value="{days_ago(2).isoformat()}"', page)
    assert re.search(r'id="end-reason"[^>]*value="no answer"', page)
    assert 'id="confirm-form"' not in page
    assert rome["coord"].get(f"/subjects/{subject['code']}").json["status"] == "enrolled"


def test_a_refused_exit_is_shown_on_the_page_not_restated(app, rome):
    subject = enrol(rome["coord"], rome["trial"], rome["site"])
    client = signed_in(app, rome["coord"].user)
    tomorrow = (today() + timedelta(days=2)).isoformat()
    resp = client.post(
        f"/subjects/{subject['code']}/withdrawal",
        data={"withdrawn_on": tomorrow, "kind": "full", "reason": "moving away"},
    )
    assert resp.status_code == 422
    page = html(resp)
    assert 'id="confirm-form"' not in page
    assert 'class="col-lg-6 collapse show" id="withdraw-card"' in page
