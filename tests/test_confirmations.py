"""Irreversible configuration asks for a confirmation that restates the data, and writes
nothing until it is confirmed."""

import re
from datetime import date
from html import unescape

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from tests.builders import active_site, days_ago, enrol, open_trial
from tests.factories import login_page
from trialmgr.extensions import db


def test_opening_a_trial_restates_its_design_and_waits_for_the_confirmation(app, api):
    lead = api.as_role("consortium_lead")
    trial = open_trial(lead, open_=False)
    client = app.test_client()
    login_page(client, lead.user["email"])
    form = {"status": "open", "reason": "all approvals in place"}
    url = f"/trials/{trial['id']}/status"
    restated = client.post(url, data=form)
    assert restated.status_code == 200
    html = restated.get_data(as_text=True)
    assert f"Confirm: opening {trial['code']}" in html
    assert "Cohorts: C1 1e13 vg/kg (3), C2 3e13 vg/kg (3), C3 1e14 vg/kg (3)." in html
    assert "Sentinel stagger: 14 days" in html and "Day 7, Week 4, Week 12" in html
    assert lead.get(f"/trials/{trial['id']}").json["status"] == "setup"
    done = client.post(url, data={**form, "confirmed": "yes"})
    assert done.status_code == 302
    assert lead.get(f"/trials/{trial['id']}").json["status"] == "open"


def test_cancelling_the_opening_returns_the_filled_form_and_changes_nothing(app, api):
    lead = api.as_role("consortium_lead")
    trial = open_trial(lead, open_=False)
    client = app.test_client()
    login_page(client, lead.user["email"])
    url = f"/trials/{trial['id']}/status"
    restated = client.post(url, data={"status": "open", "reason": "DSMB charter signed"})
    before = _counts(app, "trial", "audit_event")
    back = client.post(url, data=_hidden(restated, "cancel-form"))
    assert back.status_code == 200
    html = back.get_data(as_text=True)
    assert re.search(r'id="status-open-reason"[^>]*value="DSMB charter signed"', html)
    assert 'id="confirm-form"' not in html and 'id="error-summary"' not in html
    assert _counts(app, "trial", "audit_event") == before
    assert lead.get(f"/trials/{trial['id']}").json["status"] == "setup"


def test_a_refused_opening_shows_the_refusal_not_a_confirmation(app, api):
    lead = api.as_role("consortium_lead")
    bare = lead.post(
        "/trials",
        json={"code": "GT-99", "title": "No design yet", "vector_type": "aav", "orphacode": 98896},
    )
    assert bare.status_code == 201, bare.json
    client = app.test_client()
    login_page(client, lead.user["email"])
    refused = client.post(
        f"/trials/{bare.json['id']}/status", data={"status": "open", "reason": "x y"}
    )
    assert refused.status_code in (409, 422)
    assert 'id="confirm-form"' not in refused.get_data(as_text=True)
    assert lead.get(f"/trials/{bare.json['id']}").json["status"] == "setup"


# --- helpers for the confirmations below ------------------------------------------------


def _text(resp):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", resp.get_data(as_text=True)))


def _hidden(resp, form_id):
    """The hidden fields of one form of a confirmation page, as the browser sends them."""
    html = resp.get_data(as_text=True)
    start = html.index(f'id="{form_id}"')
    form = html[start : html.index("</form>", start)]
    pairs = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    data = MultiDict()
    for name, value in pairs:
        data.add(name, unescape(value))
    return data


def _counts(app, *tables):
    with app.app_context():
        count = "SELECT count(*) FROM {}"
        return {t: db.session.execute(sa.text(count.format(t))).scalar() for t in tables}


# --- a consent version that requires re-consent ----------------------------------------


@pytest.fixture()
def reconsent(app, api):
    """An open trial at S01 and S02 with three subjects (one of them ended), a lead signed
    in on a page client, and the form of a version 2.0 requiring re-consent everywhere."""
    lead = api.as_role("consortium_lead")
    s01, s02 = active_site(lead, "S01"), active_site(lead, "S02")
    trial = open_trial(lead)
    coord1 = api.as_role("coordinator", site_ids=[s01["id"]])
    coord2 = api.as_role("coordinator", site_ids=[s02["id"]])
    subjects = [enrol(coord1, trial, s01), enrol(coord1, trial, s01), enrol(coord2, trial, s02)]
    withdrawn = coord1.post(
        f"/subjects/{subjects[1]['code']}/withdrawal",
        json={"withdrawn_on": days_ago(10).isoformat(), "kind": "full", "reason": "moved away"},
    )
    assert withdrawn.status_code in (200, 201), withdrawn.json
    client = app.test_client()
    login_page(client, lead.user["email"])
    form = {
        "version": "2.0",
        "approved_on": days_ago(1).isoformat(),
        "reconsent_required": ["false", "true"],
    }
    return {
        "lead": lead,
        "trial": trial,
        "client": client,
        "form": form,
        "subjects": subjects,
        "sites": (s01, s02),
        "coords": (coord1, coord2),
    }


def test_a_version_requiring_reconsent_restates_whom_it_asks_and_writes_nothing(app, reconsent):
    client, trial = reconsent["client"], reconsent["trial"]
    url = f"/trials/{trial['id']}/consent-versions"
    before = _counts(app, "consent_version", "audit_event")
    restated = client.post(url, data=reconsent["form"])
    assert restated.status_code == 200
    text = _text(restated)
    assert f"Confirm: consent version 2.0 of {trial['code']}" in text
    assert "requires re-consent: 2 active subjects will be asked to re-consent" in text
    assert "Asked to re-consent now: 2 active subjects (S01: 1, S02: 1)." in text
    assert "Approved at every site from" in text
    assert _counts(app, "consent_version", "audit_event") == before
    lead = reconsent["lead"]
    assert [v["version"] for v in lead.get(f"/trials/{trial['id']}").json["consent_versions"]] == [
        "1.0"
    ]
    assert not any(s["reconsent_due"] for s in lead.get("/subjects").json)


def test_the_reconsent_count_is_what_confirming_puts_on_the_worklists(app, reconsent):
    client, trial = reconsent["client"], reconsent["trial"]
    url = f"/trials/{trial['id']}/consent-versions"
    restated = client.post(url, data=reconsent["form"])
    count = int(re.search(r"Asked to re-consent now: (\d+)", _text(restated)).group(1))
    before = _counts(app, "consent_version")["consent_version"]
    done = client.post(url, data=_hidden(restated, "confirm-form"))
    assert done.status_code == 302
    assert _counts(app, "consent_version")["consent_version"] == before + 1
    due = [s["code"] for s in reconsent["lead"].get("/subjects").json if s["reconsent_due"]]
    assert len(due) == count == 2
    assert reconsent["subjects"][1]["code"] not in due  # the withdrawn subject is not asked


def test_cancelling_a_reconsent_version_returns_the_filled_form_and_writes_nothing(app, reconsent):
    client, trial = reconsent["client"], reconsent["trial"]
    url = f"/trials/{trial['id']}/consent-versions"
    restated = client.post(url, data=reconsent["form"])
    before = _counts(app, "consent_version", "audit_event")
    back = client.post(url, data=_hidden(restated, "cancel-form"))
    assert back.status_code == 200
    html = back.get_data(as_text=True)
    assert 'id="consent-version" name="version"' in html or 'id="consent-version"' in html
    assert re.search(r'id="consent-version"[^>]*value="2.0"', html)
    approved = reconsent["form"]["approved_on"]
    assert re.search(rf'id="consent-approved_on"[^>]*value="{approved}"', html)
    assert re.search(r'id="consent-reconsent_required"[^>]*checked', html)
    assert 'id="confirm-form"' not in html and 'id="error-summary"' not in html
    assert _counts(app, "consent_version", "audit_event") == before


def test_a_version_without_reconsent_is_added_without_a_confirmation(app, reconsent):
    client, trial = reconsent["client"], reconsent["trial"]
    form = {**reconsent["form"], "reconsent_required": "false"}
    done = client.post(f"/trials/{trial['id']}/consent-versions", data=form)
    assert done.status_code == 302
    versions = reconsent["lead"].get(f"/trials/{trial['id']}").json["consent_versions"]
    assert sorted(v["version"] for v in versions) == ["1.0", "2.0"]


# --- a further site's approval of a version that requires re-consent ---------------------


@pytest.fixture()
def site_approval(app, reconsent):
    """Version 2.0 requiring re-consent, approved at S01 only (confirmed), a second active
    subject at S02, and the form approving 2.0 at S02."""
    client, trial = reconsent["client"], reconsent["trial"]
    s01, s02 = reconsent["sites"]
    enrol(reconsent["coords"][1], trial, s02)
    version_form = {
        "version": "2.0",
        "approval_site_id": str(s01["id"]),
        "approval_approved_on": days_ago(3).isoformat(),
        "reconsent_required": ["false", "true"],
        "confirmed": "yes",
    }
    added = client.post(f"/trials/{trial['id']}/consent-versions", data=version_form)
    assert added.status_code == 302
    versions = reconsent["lead"].get(f"/trials/{trial['id']}").json["consent_versions"]
    version = next(v for v in versions if v["version"] == "2.0")
    form = {
        "consent_version_id": str(version["id"]),
        "site_id": str(s02["id"]),
        "approved_on": days_ago(1).isoformat(),
        "language": "fr",
    }
    url = f"/trials/{trial['id']}/consent-site-approvals"
    return {**reconsent, "form": form, "url": url, "s02": s02}


def _due_at(lead, site):
    return [
        s["code"]
        for s in lead.get("/subjects").json
        if s["reconsent_due"] and s["site_id"] == site["id"]
    ]


def test_a_site_approval_requiring_reconsent_restates_it_and_writes_nothing(app, site_approval):
    client, trial = site_approval["client"], site_approval["trial"]
    tables = ("consent_site_approval", "subject", "audit_event")
    before = _counts(app, *tables)
    restated = client.post(site_approval["url"], data=site_approval["form"])
    assert restated.status_code == 200
    text = _text(restated)
    assert f"Confirm: approval of consent version 2.0 of {trial['code']} at S02" in text
    assert f"Trial: {trial['code']} ·" in text and "Consent version: 2.0." in text
    assert "Site: S02." in text and "Approved on: " in text
    assert "Asked to re-consent now at S02: 2 active subjects." in text
    assert _counts(app, *tables) == before
    assert _due_at(site_approval["lead"], site_approval["s02"]) == []
    versions = site_approval["lead"].get(f"/trials/{trial['id']}").json["consent_versions"]
    approvals = next(v for v in versions if v["version"] == "2.0")["site_approvals"]
    assert [a["site_code"] for a in approvals] == ["S01"]


def test_the_site_approval_count_is_what_confirming_flags_there(app, site_approval):
    client = site_approval["client"]
    restated = client.post(site_approval["url"], data=site_approval["form"])
    count = int(re.search(r"Asked to re-consent now at S02: (\d+)", _text(restated)).group(1))
    before = _counts(app, "consent_site_approval")["consent_site_approval"]
    done = client.post(site_approval["url"], data=_hidden(restated, "confirm-form"))
    assert done.status_code == 302
    assert _counts(app, "consent_site_approval")["consent_site_approval"] == before + 1
    assert len(_due_at(site_approval["lead"], site_approval["s02"])) == count == 2


def test_cancelling_a_site_approval_returns_the_filled_form_and_writes_nothing(app, site_approval):
    client, form = site_approval["client"], site_approval["form"]
    restated = client.post(site_approval["url"], data=form)
    before = _counts(app, "consent_site_approval", "subject", "audit_event")
    back = client.post(site_approval["url"], data=_hidden(restated, "cancel-form"))
    assert back.status_code == 200
    html = back.get_data(as_text=True)
    assert 'id="confirm-form"' not in html and 'id="error-summary"' not in html
    assert re.search(rf'id="site-approval-approved_on"[^>]*value="{form["approved_on"]}"', html)
    assert re.search(r'id="site-approval-language"[^>]*value="fr"', html)
    site_select = re.search(r'id="site-approval-site_id".*?</select>', html, re.S).group(0)
    assert re.search(rf'value="{form["site_id"]}"[^>]*selected', site_select)
    version_select = re.search(
        r'id="site-approval-consent_version_id".*?</select>', html, re.S
    ).group(0)
    assert re.search(rf'value="{form["consent_version_id"]}"[^>]*selected', version_select)
    assert _counts(app, "consent_site_approval", "subject", "audit_event") == before
    assert _due_at(site_approval["lead"], site_approval["s02"]) == []


# --- role and site changes of an account ------------------------------------------------


@pytest.fixture()
def access(app, api):
    lead = api.as_role("consortium_lead")
    s01, s02, s03 = (active_site(lead, code) for code in ("S01", "S02", "S03"))
    coord = api.as_role("coordinator", site_ids=[s01["id"], s02["id"]])
    admin = api.as_role("admin")
    client = app.test_client()
    login_page(client, admin.user["email"])
    return {"admin": admin, "coord": coord, "sites": (s01, s02, s03), "client": client}


def test_a_site_change_restates_the_account_and_waits_for_the_confirmation(app, access):
    s01, s02, s03 = access["sites"]
    coord, client = access["coord"], access["client"]
    uid = coord.user["id"]
    form = MultiDict(
        [
            ("name", "A Coordinator"),
            ("role", "coordinator"),
            ("site_ids", ""),
            ("site_ids", str(s01["id"])),
            ("site_ids", str(s03["id"])),
            ("reason", "covers S03 from next month"),
        ]
    )
    before = _counts(app, "site_membership", "audit_event")
    restated = client.post(f"/admin/users/{uid}", data=form)
    assert restated.status_code == 200
    text = _text(restated)
    assert f"Confirm: access of {coord.user['email']}" in text
    assert "Role: Trial coordinator (unchanged)." in text
    assert "Sites added: S03." in text and "Sites removed: S02." in text
    assert "Reason: covers S03 from next month" in text
    assert _counts(app, "site_membership", "audit_event") == before
    admin = access["admin"]
    assert admin.get(f"/users/{uid}").json["site_ids"] == sorted([s01["id"], s02["id"]])

    done = client.post(f"/admin/users/{uid}", data=_hidden(restated, "confirm-form"))
    assert done.status_code == 302
    assert admin.get(f"/users/{uid}").json["site_ids"] == sorted([s01["id"], s03["id"]])
    history = admin.get(f"/audit?entity=user_account&entity_id={uid}").json
    assert sum(e["reason"] == "covers S03 from next month" for e in history) >= 1
    # written once: a second confirmation of the same form changes nothing more
    after = _counts(app, "site_membership", "audit_event")
    again = client.post(f"/admin/users/{uid}", data=_hidden(restated, "confirm-form"))
    assert again.status_code == 302
    assert _counts(app, "site_membership", "audit_event") == after


def test_a_role_change_restates_old_and_new_role_and_the_sites_it_drops(app, access):
    coord, client = access["coord"], access["client"]
    uid = coord.user["id"]
    form = {"name": "A Coordinator", "role": "safety_monitor", "reason": "joins the DSMB"}
    before = _counts(app, "site_membership", "audit_event", "user_account")
    restated = client.post(f"/admin/users/{uid}", data=form)
    assert restated.status_code == 200
    text = _text(restated)
    assert "Role: Trial coordinator → Safety monitor." in text
    assert "Sites removed: S01, S02." in text and "Sites afterwards: none." in text
    assert "browser sessions end" in text
    assert _counts(app, "site_membership", "audit_event", "user_account") == before
    assert access["admin"].get(f"/users/{uid}").json["role"] == "coordinator"
    done = client.post(f"/admin/users/{uid}", data=_hidden(restated, "confirm-form"))
    assert done.status_code == 302
    assert access["admin"].get(f"/users/{uid}").json["role"] == "safety_monitor"


def test_cancelling_an_access_change_returns_the_filled_form_and_changes_nothing(app, access):
    s01, s02, s03 = access["sites"]
    coord, client = access["coord"], access["client"]
    uid = coord.user["id"]
    form = MultiDict(
        [
            ("name", "Renamed Person"),
            ("role", "coordinator"),
            ("site_ids", ""),
            ("site_ids", str(s03["id"])),
            ("reason", "moves to S03"),
        ]
    )
    restated = client.post(f"/admin/users/{uid}", data=form)
    before = _counts(app, "site_membership", "audit_event", "user_account")
    back = client.post(f"/admin/users/{uid}", data=_hidden(restated, "cancel-form"))
    assert back.status_code == 200
    html = back.get_data(as_text=True)
    assert 'id="confirm-form"' not in html
    assert re.search(r'name="name"[^>]*value="Renamed Person"', html)
    assert re.search(r'name="reason"[^>]*value="moves to S03"', html)
    assert re.search(r'id="f-site-S03"[^>]*checked', html)
    assert not re.search(r'id="f-site-S01"[^>]*checked', html)
    assert _counts(app, "site_membership", "audit_event", "user_account") == before
    stored = access["admin"].get(f"/users/{uid}").json
    assert stored["site_ids"] == sorted([s01["id"], s02["id"]])
    assert stored["name"] != "Renamed Person"


def test_cancelling_a_deactivation_returns_the_box_as_typed(app, access):
    s01 = access["sites"][0]
    coord, client = access["coord"], access["client"]
    uid = coord.user["id"]
    form = MultiDict(
        [
            ("name", "A Coordinator"),
            ("role", "coordinator"),
            ("site_ids", ""),
            ("site_ids", str(s01["id"])),
            ("active", "false"),  # the box unticked: only the hidden value is sent
            ("reason", "leaves the consortium"),
        ]
    )
    restated = client.post(f"/admin/users/{uid}", data=form)
    assert restated.status_code == 200 and 'id="cancel-form"' in restated.get_data(as_text=True)
    back = client.post(f"/admin/users/{uid}", data=_hidden(restated, "cancel-form"))
    assert back.status_code == 200
    html = back.get_data(as_text=True)
    assert re.search(r'id="f-active"', html)
    assert not re.search(r'id="f-active"[^>]*checked', html)
    assert access["admin"].get(f"/users/{uid}").json["active"] is True
    # and a box ticked on an inactive account comes back ticked
    deactivated = access["admin"].patch(
        f"/users/{uid}", json={"active": False, "reason": "on leave"}
    )
    assert deactivated.status_code == 200, deactivated.json
    form.setlist("active", ["false", "true"])
    restated = client.post(f"/admin/users/{uid}", data=form)
    back = client.post(f"/admin/users/{uid}", data=_hidden(restated, "cancel-form"))
    assert re.search(r'id="f-active"[^>]*checked', back.get_data(as_text=True))
    assert access["admin"].get(f"/users/{uid}").json["active"] is False


def test_a_change_without_role_or_sites_saves_without_a_confirmation(app, access):
    coord, client = access["coord"], access["client"]
    s01, s02, _ = access["sites"]
    form = MultiDict(
        [
            ("name", "Only Renamed"),
            ("role", "coordinator"),
            ("site_ids", ""),
            ("site_ids", str(s01["id"])),
            ("site_ids", str(s02["id"])),
        ]
    )
    done = client.post(f"/admin/users/{coord.user['id']}", data=form)
    assert done.status_code == 302
    assert access["admin"].get(f"/users/{coord.user['id']}").json["name"] == "Only Renamed"


def test_a_password_is_never_carried_through_the_confirmation(app, access):
    coord, client = access["coord"], access["client"]
    form = {
        "name": "A Coordinator",
        "role": "safety_monitor",
        "reason": "joins the DSMB",
        "password": "violet-tractor-harbour-47",
    }
    restated = client.post(f"/admin/users/{coord.user['id']}", data=form)
    assert restated.status_code == 200
    assert "violet-tractor-harbour-47" not in restated.get_data(as_text=True)
    assert "The new password typed is not sent with this confirmation" in _text(restated)


def test_a_confirmed_site_approval_is_flashed_in_the_readers_date_format(app, site_approval):
    client, form = site_approval["client"], site_approval["form"]
    saved = client.post(
        "/account", data={"action": "profile", "date_format": "DD/MM/YYYY", "timezone": "UTC"}
    )
    assert saved.status_code == 302
    restated = client.post(site_approval["url"], data=form)
    done = client.post(
        site_approval["url"], data=_hidden(restated, "confirm-form"), follow_redirects=True
    )
    approved = date.fromisoformat(form["approved_on"])
    assert f"approved at site S02 from {approved:%d/%m/%Y}." in _text(done)
    assert form["approved_on"] not in _text(done)
