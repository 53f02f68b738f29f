"""The CONSORT flow (issue 13): counts and reasons at each step of the constructed pilot
(tests/feasibility_world.py), by site and by cohort, as of a past date."""

import pytest

from tests.builders import active_site, days_ago, enrol
from tests.feasibility_world import pilot


@pytest.fixture()
def p(api):
    return pilot(api)


def test_the_flow_of_the_pilot_counted_by_hand(p):
    flow = p["lead"].get(f"/trials/{p['trial']['id']}/consort").json
    # the screening log: 9 entries, 1 still in screening
    assert (flow["approached"], flow["in_screening"], flow["screened"]) == (9, 1, 8)
    assert flow["screen_failed"] == 2
    assert {r["reason"]: r["count"] for r in flow["screen_failed_reasons"]} == {
        "I1": 1,
        "Cannot attend the visits": 1,
    }
    labels = {r["reason"]: r["label"] for r in flow["screen_failed_reasons"]}
    assert labels["I1"].startswith("I1: Severe haemophilia B")
    assert (flow["eligible"], flow["declined"]) == (6, 1)
    assert flow["declined_reasons"] == [{"reason": "Travel", "label": "Travel", "count": 1}]
    # consented: the 4 enrolled and the one who consented, then failed screening
    assert (flow["consented"], flow["consented_then_screen_failed"]) == (5, 1)
    assert flow["eligible_not_enrolled"] == 1
    assert flow["enrolled"] == 4
    assert flow["left_before_dosing"] == {"withdrawn": 1, "lost": 0, "died": 0}
    assert flow["awaiting_dosing"] == 0
    assert flow["dosed"] == 3
    assert flow["left_after_dosing"] == {"withdrawn": 0, "lost": 1, "died": 0}
    assert (flow["in_follow_up"], flow["completed"]) == (0, 2)
    assert (flow["withdrawn"], flow["lost"], flow["died"]) == (1, 1, 0)
    assert flow["withdrawn_reasons"] == [{"kind": "full", "reason": "Moved abroad", "count": 1}]
    # every enrolled subject is somewhere: dosed, left before dosing or awaiting it
    assert (
        flow["enrolled"]
        == flow["dosed"] + sum(flow["left_before_dosing"].values()) + flow["awaiting_dosing"]
    )
    assert (
        flow["dosed"]
        == flow["completed"] + sum(flow["left_after_dosing"].values()) + flow["in_follow_up"]
    )


def test_a_cohort_flow_starts_at_enrolment(p):
    trial = p["trial"]
    c1 = p["lead"].get(f"/trials/{trial['id']}/consort?cohort_id={trial['cohorts'][0]['id']}").json
    assert c1["approached"] is None and c1["screen_failed_reasons"] is None
    assert (c1["enrolled"], c1["dosed"], c1["completed"], c1["lost"]) == (3, 3, 2, 1)
    assert c1["cohort_label"] == "C1"
    c2 = p["lead"].get(f"/trials/{trial['id']}/consort?cohort_id={trial['cohorts'][1]['id']}").json
    assert (c2["enrolled"], c2["dosed"], c2["withdrawn"]) == (1, 0, 1)
    unknown = p["lead"].get(f"/trials/{trial['id']}/consort?cohort_id=999")
    assert unknown.status_code == 422


def test_a_site_flow_and_a_past_flow(api, p):
    lead, trial = p["lead"], p["trial"]
    s02 = active_site(lead, "S02")
    coord2 = api.as_role("coordinator", site_ids=[s02["id"]])
    enrol(coord2, trial, s02, cohort=3)
    both = lead.get(f"/trials/{trial['id']}/consort").json
    assert (both["approached"], both["enrolled"]) == (10, 5)
    s02_only = lead.get(f"/trials/{trial['id']}/consort?site_id={s02['id']}").json
    assert (s02_only["approached"], s02_only["enrolled"], s02_only["dosed"]) == (1, 1, 0)
    assert s02_only["awaiting_dosing"] == 1
    # 245 days ago: 8 screenings logged (the two of 100 and 50 days ago not yet), A and B
    # dosed (C only 240 days ago), nobody lost or withdrawn yet, no Week 12 done
    past = lead.get(f"/trials/{trial['id']}/consort?as_of={days_ago(245).isoformat()}").json
    assert (past["approached"], past["enrolled"], past["dosed"]) == (8, 5, 2)
    assert (past["lost"], past["withdrawn"], past["completed"]) == (0, 0, 0)
    assert (past["in_follow_up"], past["awaiting_dosing"]) == (2, 3)
