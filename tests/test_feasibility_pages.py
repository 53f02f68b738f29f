"""The feasibility pages (issue 13), driven as a browser would: the review with its lights,
intervals, chart data and its text alternative, the per-site breakdown, the CONSORT diagram
and the milestone timeline drawing the API's numbers, the forms through one form path, and
no inline script or style anywhere (strict CSP)."""

import json
import re

import pytest

from tests.builders import TODAY, active_site, days_ago, enrol
from tests.feasibility_world import pilot
from tests.test_enrollment_pages import browser, text


def html(resp):
    return resp.get_data(as_text=True)


def assert_clean(resp):
    body = html(resp)
    assert "style=" not in body and "<script>" not in body
    assert not re.search(r"<script(?![^>]*\b(src|type=\"application/json\"))", body)
    assert not re.search(r"<[^>]+\son[a-z]+=", body)  # no inline event handlers


@pytest.fixture()
def p(api):
    return pilot(api)


def test_feasibility_page_shows_lights_intervals_chart_data_and_its_table(app, p):
    lead, tid = p["lead"], p["trial"]["id"]
    lead.post(
        f"/trials/{tid}/progression-criteria", json={"metric": "eligibility_rate", "target": 0.75}
    )
    lead.post(f"/trials/{tid}/progression-criteria", json={"metric": "sae_timeliness", "target": 1})
    session = browser(app, lead)
    resp = session.get(f"/trials/{tid}/feasibility")
    assert resp.status_code == 200
    assert_clean(resp)
    page = html(resp)
    reader = text(resp)
    assert "amend" in reader  # green + amber
    row = re.search(r'id="criterion-eligibility_rate">(.*?)</tr>', page, re.S).group(1)
    assert "75.0 %" in row and "34.9\u201396.8 %" in row and ">green<" in row
    row = re.search(r'id="criterion-sae_timeliness">(.*?)</tr>', page, re.S).group(1)
    assert "50.0 %" in row and "6.8\u201393.2 %" in row and ">amber<" in row
    # the chart: data in a JSON element, drawn by a static script, with the table as its text
    data = json.loads(
        re.search(
            r'<script type="application/json" id="trend-data">(.*?)</script>', page, re.S
        ).group(1)
    )
    api_trend = lead.get(f"/trials/{tid}/feasibility").json["trend"]
    assert data["labels"] == [point["as_of"] for point in api_trend]
    assert data["series"]["eligibility_rate"] == [
        point["values"]["eligibility_rate"] for point in api_trend
    ]
    assert (
        "/static/js/feasibility-chart.js" in page
        and "/static/vendor/chartjs/chart.umd.min.js" in page
    )
    assert 'aria-describedby="trend-table-caption"' in page and 'id="trend-table"' in page
    table_rows = re.findall(r"<tr><th scope=\"row\"", page.split('id="trend-table"')[1])
    assert len(table_rows) == len(api_trend)
    # per-site breakdown with the site's target
    site_row = re.search(r'id="site-S01">(.*?)</tr>', page, re.S).group(1)
    assert ">4<" in site_row.replace(" ", "") and "100 %" in site_row


def test_coordinator_page_shows_only_their_sites(app, api, p):
    lead, trial = p["lead"], p["trial"]
    s02 = active_site(lead, "S02")
    coord2 = api.as_role("coordinator", site_ids=[s02["id"]])
    enrol(coord2, trial, s02, cohort=3)
    session = browser(app, coord2)
    page = session.get(f"/trials/{trial['id']}/feasibility")
    assert page.status_code == 200
    assert 'id="site-S02"' in html(page) and 'id="site-S01"' not in html(page)
    assert (
        session.get(f"/trials/{trial['id']}/feasibility?site_id={p['site']['id']}").status_code
        == 404
    )
    assert (
        session.get(f"/trials/{trial['id']}/consort?site_id={p['site']['id']}").status_code == 404
    )
    assert "Publish the public summary" not in html(page)  # managers only


def test_consort_page_draws_the_services_numbers(app, p):
    lead, trial = p["lead"], p["trial"]
    session = browser(app, lead)
    resp = session.get(f"/trials/{trial['id']}/consort")
    assert resp.status_code == 200
    assert_clean(resp)
    page = html(resp)
    flow = lead.get(f"/trials/{trial['id']}/consort").json
    for step, key in (
        ("approached", "approached"),
        ("screened", "screened"),
        ("eligible", "eligible"),
        ("consented", "consented"),
        ("enrolled", "enrolled"),
        ("dosed", "dosed"),
        ("completed", "completed"),
    ):
        box = re.search(rf'id="step-{step}">(.*?)</div></div>', page, re.S).group(1)
        assert f"n = {flow[key]}" in box, step
    assert "Screen-failed: 2" in page and "I1: Severe haemophilia B" in page
    assert "Cannot attend the visits: 1" in page and "Declined: 1" in page
    assert "Moved abroad" in page
    cohort = session.get(f"/trials/{trial['id']}/consort?cohort_id={trial['cohorts'][0]['id']}")
    assert 'id="step-approached"' not in html(cohort) and "n = 3" in html(cohort)
    bad = session.get(f"/trials/{trial['id']}/consort?as_of=someday")
    assert bad.status_code == 422


def test_milestone_timeline_and_its_forms(app, p):
    lead, trial = p["lead"], p["trial"]
    session = browser(app, lead)
    resp = session.post(
        f"/trials/{trial['id']}/milestones",
        data={"name": "First subject dosed", "planned_on": days_ago(290).isoformat()},
    )
    assert resp.status_code == 302
    resp = session.post(
        f"/trials/{trial['id']}/milestones",
        data={
            "name": "Progression review",
            "kind": "progression_review",
            "planned_on": days_ago(3).isoformat(),
            "site_id": "",
        },
    )
    assert resp.status_code == 302
    refused = session.post(
        f"/trials/{trial['id']}/milestones",
        data={"name": "Cohort done", "kind": "cohort_complete", "planned_on": TODAY.isoformat()},
    )
    assert refused.status_code == 422 and "Name the cohort" in html(refused)
    assert 'value="Cohort done"' in html(refused)  # the typed values come back
    listed = {m["name"]: m for m in lead.get(f"/trials/{trial['id']}/milestones").json}
    assert listed["First subject dosed"]["status"] == "done"
    page = session.get(f"/trials/{trial['id']}/milestones")
    assert page.status_code == 200
    assert_clean(page)
    body = html(page)
    assert '<svg class="gantt"' in body and body.count('class="gantt-row"') == 2
    assert (
        "gantt-late" in body
        and "gantt-done" in body
        and "completes itself from the records" in body
    )
    review = listed["Progression review"]
    no_reason = session.post(
        f"/milestones/{review['id']}", data={"achieved_on": days_ago(1).isoformat()}
    )
    assert no_reason.status_code == 422
    done = session.post(
        f"/milestones/{review['id']}",
        data={
            "name": "Progression review",
            "planned_on": review["planned_on"],
            "achieved_on": days_ago(1).isoformat(),
            "notes": "",
            "reason": "held with the DSMB",
        },
    )
    assert done.status_code == 302
    assert {m["name"]: m for m in lead.get(f"/trials/{trial['id']}/milestones").json}[
        "Progression review"
    ]["status"] == "done"


def test_criteria_forms_and_the_public_switch(app, p):
    lead, trial = p["lead"], p["trial"]
    session = browser(app, lead)
    added = session.post(
        f"/trials/{trial['id']}/progression-criteria",
        data={"metric": "retention", "target": "0.8", "amber_fraction": "0.5", "notes": ""},
    )
    assert added.status_code == 302
    refused = session.post(
        f"/trials/{trial['id']}/progression-criteria",
        data={"metric": "consent_rate", "target": "80"},
    )
    assert refused.status_code == 422 and "between 0 and 1" in html(refused)
    criterion = lead.get(f"/trials/{trial['id']}/progression-criteria").json[0]
    changed = session.post(
        f"/progression-criteria/{criterion['id']}",
        data={"target": "0.6", "amber_fraction": "0.5", "reason": "agreed"},
    )
    assert changed.status_code == 302
    assert lead.get(f"/trials/{trial['id']}/progression-criteria").json[0]["target"] == 0.6
    published = session.post(
        f"/trials/{trial['id']}/public-summary",
        data={"public_summary": "true", "reason": "patient organisation asked"},
    )
    assert published.status_code == 302
    assert app.test_client().get(f"/public/trials/{trial['code']}").status_code == 200
    page = session.get(f"/trials/{trial['id']}/feasibility")
    assert "Withdraw the public summary" in html(page)


def test_feasibility_index_and_menu(app, api, p):
    for client in (p["lead"], p["coord"], api.as_role("safety_monitor"), api.as_role("admin")):
        session = browser(app, client)
        home = session.get("/")
        assert 'href="/feasibility"' in html(home)
        index = session.get("/feasibility")
        assert index.status_code == 200 and p["trial"]["code"] in html(index)
        assert_clean(index)


def test_lead_home_shows_each_trials_decision(app, p):
    lead, tid = p["lead"], p["trial"]["id"]
    lead.post(
        f"/trials/{tid}/progression-criteria",
        json={"metric": "data_completeness", "target": 1, "amber_fraction": 0.6},
    )
    home = browser(app, lead).get("/")
    assert 'id="feasibility-summary"' in html(home)
    row = re.search(rf'id="feasibility-{tid}">(.*?)</tr>', html(home), re.S).group(1)
    assert ">stop<" in row
