"""Dates on pages in the reader's language: a refusal's dates in the user's chosen format (the
API answer for the same refusal keeps ISO), wall-clock inputs labelled with the site's zone,
every date field with the same hint and read-back, and the server still judging the date."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest

from tests.builders import active_site, days_ago, dose, enrol, open_trial
from tests.test_enrollment_pages import browser, local, text

ROME = zoneinfo.ZoneInfo("Europe/Rome")
DATE_INPUT = re.compile(r"<input[^>]*type=\"(?:date|datetime-local)\"[^>]*>")


@pytest.fixture()
def rome(api):
    """An open trial at a Rome site; its coordinator reads dates as dd/mm/yyyy in UTC."""
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "RM1", timezone="Europe/Rome")
    trial = open_trial(lead)
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    return {"lead": lead, "site": site, "trial": trial, "coord": coord}


def dd_mm_yyyy_reader(app, client_of):
    page = browser(app, client_of)
    saved = page.post(
        "/account", data={"action": "profile", "date_format": "DD/MM/YYYY", "timezone": "UTC"}
    )
    assert saved.status_code == 302
    return page


def test_a_refusal_shows_its_date_in_the_users_format_while_the_api_keeps_iso(app, rome):
    first = enrol(rome["coord"], rome["trial"], rome["site"])
    second = enrol(rome["coord"], rome["trial"], rome["site"])
    assert dose(rome["coord"], first, days_ago(10)).status_code == 201
    page = dd_mm_yyyy_reader(app, rome["coord"])
    allowed = datetime.combine(days_ago(10), datetime.min.time(), UTC).replace(hour=9)
    allowed = (allowed + timedelta(days=14)).astimezone(ROME)

    refused = page.post(
        f"/subjects/{second['code']}/dosing",
        data={"dosed_at": local(days_ago(5)), "dose": "1e13", "lot_number": "L2"},
    )
    assert refused.status_code == 409
    shown = f"{allowed:%d/%m/%Y %H:%M} (Rome, {allowed.tzname()})"
    assert f"Sentinel stagger: next dosing allowed on {shown}" in text(refused)
    assert allowed.date().isoformat() not in text(refused)
    gate = page.get(f"/subjects/{second['code']}")  # the gate, asked for a dose given now
    assert f"next dosing allowed on {shown}" in text(gate)

    api = dose(rome["coord"], second, days_ago(5))
    assert api.status_code == 409 and api.json["title"] == "Sentinel stagger"
    iso = f"{allowed:%Y-%m-%d %H:%M} {allowed.tzname()} (Europe/Rome)"
    assert api.json["detail"] == f"next dosing allowed on {iso}"


def test_a_field_error_shows_its_date_in_the_users_format_while_the_api_keeps_iso(app, rome):
    subject = enrol(rome["coord"], rome["trial"], rome["site"])
    assert dose(rome["coord"], subject, days_ago(10)).status_code == 201
    page = dd_mm_yyyy_reader(app, rome["coord"])
    before = days_ago(12).isoformat()
    form = {"withdrawn_on": before, "kind": "full", "reason": "moved abroad"}
    refused = page.post(f"/subjects/{subject['code']}/withdrawal", data=form)
    assert refused.status_code == 422
    assert f"Before the dosing on {days_ago(10):%d/%m/%Y}." in text(refused)

    api = rome["coord"].post(f"/subjects/{subject['code']}/withdrawal", json=form)
    assert api.status_code == 422
    assert api.json["errors"]["withdrawn_on"] == [f"Before the dosing on {days_ago(10)}."]


def test_the_dosing_form_labels_its_time_with_the_sites_zone(app, rome):
    subject = enrol(rome["coord"], rome["trial"], rome["site"])
    page = browser(app, rome["coord"])
    html = page.get(f"/subjects/{subject['code']}").get_data(as_text=True)
    now_in_rome = datetime.now(ROME).tzname()
    assert f"Dosed at, site time (Rome, {now_in_rome})" in html
    # the read-back names the zone's abbreviations for the date typed, winter and summer
    echo = re.search(r'id="dosing-dosed_at-echo"[^>]*>', html)
    assert echo and 'data-zone="Europe/Rome"' in echo.group(0)
    assert "&#34;60&#34;: &#34;CET&#34;" in echo.group(0)
    assert "&#34;120&#34;: &#34;CEST&#34;" in echo.group(0)


def test_timeline_and_dosing_show_the_site_clock_with_the_zone_label(app, rome):
    subject = enrol(rome["coord"], rome["trial"], rome["site"])
    assert dose(rome["coord"], subject, days_ago(10)).status_code == 201
    page = dd_mm_yyyy_reader(app, rome["coord"])
    dosed = datetime.combine(days_ago(10), datetime.min.time(), UTC).replace(hour=9)
    in_rome = dosed.astimezone(ROME)
    shown = f"{in_rome:%d/%m/%Y %H:%M} (Rome, {in_rome.tzname()})"
    html = page.get(f"/subjects/{subject['code']}").get_data(as_text=True)
    dosed_at = re.search(r'id="dosed-at">(.*?)<div', html, re.S)
    assert dosed_at and shown in dosed_at.group(1)
    timeline = re.search(r'id="timeline">(.*?)</ul>', html, re.S)
    assert timeline and shown in timeline.group(1)  # the dosing's entry, on Rome's clock


def date_fields_have_the_hint_and_the_read_back(html):
    inputs = DATE_INPUT.findall(html)
    assert inputs, "no date field on this page"
    for tag in inputs:
        found = re.search(r'data-date-echo="([^"]+)-echo"', tag)
        assert found, tag
        field = found.group(1)
        described = re.search(r'aria-describedby="([^"]+)"', tag)
        assert described, tag
        assert {f"{field}-hint", f"{field}-echo"} <= set(described.group(1).split()), tag
        assert f'id="{field}-hint"' in html and f'id="{field}-echo"' in html
    return len(inputs)


def test_every_date_field_of_every_kind_of_form_has_the_hint_and_the_read_back(app, api, rome):
    subject = enrol(rome["coord"], rome["trial"], rome["site"])
    coord = browser(app, rome["coord"])
    lead = browser(app, rome["lead"])
    admin = browser(app, api.as_role("admin"))
    pages = [
        (coord, f"/subjects/{subject['code']}"),  # action forms, dosing date-time
        (coord, "/screenings"),  # list filters
        (coord, f"/adverse-events/new?subject={subject['code']}"),  # site-time inputs
        (lead, f"/sites/{rome['site']['id']}"),  # the partners domain's forms
        (lead, f"/trials/{rome['trial']['id']}/milestones"),
        (lead, "/reports"),
        (admin, "/audit"),
    ]
    for client, path in pages:
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert date_fields_have_the_hint_and_the_read_back(resp.get_data(as_text=True)), path
    hint = text(coord.get(f"/subjects/{subject['code']}"))
    assert "In your browser's date format; read back below." in hint


def test_an_unparsable_date_gets_the_plain_field_error(app, rome):
    subject = enrol(rome["coord"], rome["trial"], rome["site"])
    page = browser(app, rome["coord"])
    refused = page.post(
        f"/subjects/{subject['code']}/withdrawal",
        data={"withdrawn_on": "04/12/2026", "kind": "full", "reason": "moved abroad"},
    )
    assert refused.status_code == 422
    assert "Enter a real date, as year-month-day (for example 2026-02-10)." in text(refused)
    assert rome["coord"].get(f"/subjects/{subject['code']}").json["status"] == "enrolled"


def test_a_success_flash_names_its_date_in_the_users_format(app, rome):
    page = dd_mm_yyyy_reader(app, rome["lead"])
    planned = days_ago(-30)
    saved = page.post(
        f"/trials/{rome['trial']['id']}/milestones",
        data={"name": "First subject dosed", "planned_on": planned.isoformat()},
        follow_redirects=True,
    )
    assert saved.status_code == 200
    assert f"Milestone First subject dosed planned for {planned:%d/%m/%Y}." in text(saved)
