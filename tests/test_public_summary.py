"""The public summary (issue 13): opt-in per trial, no login, aggregates only; counts below
5 are "<5", and no subject count can be recovered by differencing a total and per-site
counts."""

import re

import pytest

from tests.builders import active_site, enrol, open_trial, world
from tests.feasibility_world import pilot

KEYS = {
    "code",
    "title",
    "indication",
    "phase",
    "status",
    "status_label",
    "as_of",
    "active_sites",
    "countries",
    "enrolled",
    "planned",
    "percent_enrolled",
    "sites",
    "note",
}


def publish(lead, trial, on=True):
    resp = lead.patch(
        f"/trials/{trial['id']}", json={"public_summary": on, "reason": "steering committee"}
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["public_summary"] is on


def test_no_summary_unless_the_trial_publishes_it(app, api):
    w = world(api)
    anonymous = app.test_client()
    code = w["trial"]["code"]
    assert w["trial"]["public_summary"] is False
    private = anonymous.get(f"/api/v1/public/trials/{code}")
    unknown = anonymous.get("/api/v1/public/trials/NO-SUCH")
    assert private.status_code == unknown.status_code == 404
    assert private.mimetype == "application/problem+json"
    assert set(private.json) == set(unknown.json)
    assert anonymous.get(f"/public/trials/{code}").status_code == 404
    publish(w["lead"], w["trial"])
    assert anonymous.get(f"/api/v1/public/trials/{code}").status_code == 200
    assert anonymous.get(f"/api/v1/public/trials/{code.lower()}").status_code == 200
    page = anonymous.get(f"/public/trials/{code}")
    assert page.status_code == 200 and w["trial"]["title"] in page.get_data(as_text=True)
    publish(w["lead"], w["trial"], on=False)
    assert anonymous.get(f"/api/v1/public/trials/{code}").status_code == 404
    assert (
        w["coord"]
        .patch(f"/trials/{w['trial']['id']}", json={"public_summary": True, "reason": "xyz"})
        .status_code
        == 403
    )


def test_small_counts_are_suppressed_and_no_subject_data_is_published(app, api):
    p = pilot(api)
    publish(p["lead"], p["trial"])
    anonymous = app.test_client()
    body = anonymous.get(f"/api/v1/public/trials/{p['trial']['code']}").json
    assert set(body) == KEYS
    # 4 enrolled, 1 active site in 1 country: all below 5
    assert (body["enrolled"], body["active_sites"], body["countries"]) == ("<5", "<5", "<5")
    assert body["planned"] == 9
    assert body["percent_enrolled"] is None  # 4 of 9 would give the count away
    assert body["sites"] == []
    assert body["status"] == "open"
    page = anonymous.get(f"/public/trials/{p['trial']['code']}").get_data(as_text=True)
    text = str(body) + page
    for subject in p["subjects"].values():
        assert subject["code"] not in text
        assert subject["code"].split("-")[0] + "-" not in text
    assert "&lt;5" in page and "Fewer than 5 participants" in page
    assert "style=" not in page and "<script>" not in page
    # the only numbers on the page: the planned size, the year of the date, nothing below 5
    shown = re.sub(r"<[^>]+>", " ", page)
    numbers = {int(n) for n in re.findall(r"(?<![\w-])\d+(?![\w-])", shown)}
    assert all(n >= 5 for n in numbers), numbers


def _sites_with(api, lead, trial, counts):
    """Sites S01... with the given numbers of subjects enrolled."""
    for index, count in enumerate(counts, start=1):
        site = active_site(lead, f"S{index:02d}")
        coord = api.as_role("coordinator", site_ids=[site["id"]])
        for _ in range(count):
            enrol(coord, trial, site)


@pytest.fixture()
def big_trial(api):
    lead = api.as_role("consortium_lead")
    trial = open_trial(lead, capacities=(40,))
    publish(lead, trial)
    return lead, trial


def test_per_site_counts_only_when_no_site_has_fewer_than_5(app, api, big_trial):
    lead, trial = big_trial
    _sites_with(api, lead, trial, [5, 5, 6, 5, 7])
    anonymous = app.test_client()
    body = anonymous.get(f"/api/v1/public/trials/{trial['code']}").json
    assert body["enrolled"] == 28 and body["active_sites"] == 5
    assert sorted(s["enrolled"] for s in body["sites"]) == [5, 5, 5, 6, 7]
    assert sum(s["enrolled"] for s in body["sites"]) == body["enrolled"]
    assert body["percent_enrolled"] == 70
    # a sixth site with 2 subjects: its count is hidden, and so are all the others', so
    # "the total minus the other sites" has nothing to subtract
    site = active_site(lead, "S06")
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    for _ in range(2):
        enrol(coord, trial, site)
    body = anonymous.get(f"/api/v1/public/trials/{trial['code']}").json
    assert body["enrolled"] == 30
    assert body["sites"] == []
    page = anonymous.get(f"/public/trials/{trial['code']}").get_data(as_text=True)
    assert "S06" not in page and "Site S01" not in page


def test_fewer_than_5_sites_never_publish_per_site_counts(app, api, big_trial):
    """Two sites with 12 and 3 subjects: the total 15 is shown; no site count is, so the
    small site's 3 cannot be had as 15 - 12."""
    lead, trial = big_trial
    _sites_with(api, lead, trial, [12, 3])
    body = app.test_client().get(f"/api/v1/public/trials/{trial['code']}").json
    assert body["enrolled"] == 15 and body["sites"] == []
    assert body["active_sites"] == "<5"
    assert 12 not in [v for v in body.values() if isinstance(v, int)]
