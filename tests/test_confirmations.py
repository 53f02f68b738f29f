"""Irreversible configuration asks for a confirmation that restates the data, and writes
nothing until it is confirmed."""

from tests.builders import open_trial
from tests.factories import login_page


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
