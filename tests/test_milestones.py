"""Milestones (issue 13): the status rule at its boundaries, milestones that complete
themselves from the records (and say so), typed-in ones, site milestones and who sees
them, and the status as of a past date."""

from datetime import date, timedelta

import pytest

from tests.builders import TODAY, active_site, days_ago
from tests.feasibility_world import pilot
from trialmgr.milestones.services.milestones import status_on

DAY = date(2026, 6, 1)


@pytest.mark.parametrize(
    ("planned", "achieved", "expected"),
    [
        (DAY, DAY, "done"),
        (DAY - timedelta(10), DAY - timedelta(2), "done"),  # achieved late: still done
        (DAY + timedelta(40), DAY, "done"),  # achieved early
        (DAY - timedelta(1), None, "late"),
        (DAY, None, "at_risk"),  # planned today, not achieved yet
        (DAY + timedelta(30), None, "at_risk"),  # exactly 30 days ahead
        (DAY + timedelta(31), None, "on_track"),
        (DAY + timedelta(10), DAY + timedelta(1), "at_risk"),  # achieved after the day
    ],
)
def test_milestone_status_boundaries(planned, achieved, expected):
    assert status_on(planned, achieved, DAY) == expected


@pytest.fixture()
def p(api):
    return pilot(api)


def _plan(lead, tid, **body):
    resp = lead.post(f"/trials/{tid}/milestones", json=body)
    assert resp.status_code == 201, resp.json
    return resp.json


def test_milestones_that_complete_themselves_from_the_records(p):
    lead, trial = p["lead"], p["trial"]
    tid, c1, c2 = trial["id"], trial["cohorts"][0]["id"], trial["cohorts"][1]["id"]
    plan = days_ago(260).isoformat()
    first_site = _plan(lead, tid, name="First site activated", planned_on=plan)
    first_screened = _plan(
        lead, tid, name="First screening", kind="first_subject_screened", planned_on=plan
    )
    first_dosed = _plan(
        lead, tid, name="First subject dosed", planned_on=plan
    )  # kind from the name
    c1_done = _plan(
        lead, tid, name="Cohort 1 complete", kind="cohort_complete", cohort_id=c1, planned_on=plan
    )
    c2_done = _plan(
        lead,
        tid,
        name="Cohort 2 complete",
        kind="cohort_complete",
        cohort_id=c2,
        planned_on=(TODAY + timedelta(20)).isoformat(),
    )
    last = _plan(
        lead, tid, name="Last subject dosed", planned_on=(TODAY + timedelta(200)).isoformat()
    )
    assert first_dosed["kind"] == "first_subject_dosed" and first_dosed["automatic"] is True
    expected = {
        first_site["id"]: (days_ago(400), "done", -140),  # the site opened before the plan
        first_screened["id"]: (days_ago(300), "done", -40),
        first_dosed["id"]: (days_ago(280), "done", -20),
        c1_done["id"]: (days_ago(240), "done", 20),  # the third C1 dosing: 20 days late
        c2_done["id"]: (None, "at_risk", 0),
        last["id"]: (None, "on_track", 0),
    }
    listed = {m["id"]: m for m in lead.get(f"/trials/{tid}/milestones").json}
    for mid, (achieved, status, slip) in expected.items():
        m = listed[mid]
        assert m["achieved_on"] == (achieved.isoformat() if achieved else None), m
        assert (m["status"], m["days_after_plan"]) == (status, slip), m
        assert m["achieved_from"] == ("records" if achieved else None)
    # before the third dosing, cohort 1 was not complete and its plan had passed
    past = {
        m["id"]: m
        for m in lead.get(f"/trials/{tid}/milestones?as_of={days_ago(250).isoformat()}").json
    }
    assert (past[c1_done["id"]]["status"], past[c1_done["id"]]["achieved_on"]) == ("late", None)
    assert past[c1_done["id"]]["days_after_plan"] == 10
    assert past[first_dosed["id"]]["status"] == "done"


def test_typed_in_milestones_and_their_corrections(p):
    lead, tid = p["lead"], p["trial"]["id"]
    dsmb = _plan(lead, tid, name="DSMB meeting", planned_on=days_ago(30).isoformat())
    assert (dsmb["kind"], dsmb["automatic"], dsmb["status"]) == ("dsmb_meeting", False, "late")
    assert dsmb["days_after_plan"] == 30
    review = _plan(
        lead,
        tid,
        name="Interim progression review",
        kind="progression_review",
        planned_on=days_ago(5).isoformat(),
        achieved_on=days_ago(3).isoformat(),
    )
    assert (review["status"], review["achieved_from"], review["days_after_plan"]) == (
        "done",
        "entry",
        2,
    )
    no_reason = lead.patch(
        f"/milestones/{dsmb['id']}", json={"achieved_on": days_ago(1).isoformat()}
    )
    assert no_reason.status_code == 422 and "reason" in no_reason.json["errors"]
    future = lead.patch(
        f"/milestones/{dsmb['id']}",
        json={"achieved_on": (TODAY + timedelta(1)).isoformat(), "reason": "typo"},
    )
    assert future.status_code == 422 and "achieved_on" in future.json["errors"]
    held = lead.patch(
        f"/milestones/{dsmb['id']}",
        json={"achieved_on": days_ago(1).isoformat(), "reason": "held late: quorum"},
    )
    assert held.status_code == 200 and held.json["status"] == "done"
    cleared = lead.patch(
        f"/milestones/{dsmb['id']}", json={"achieved_on": None, "reason": "minutes not signed"}
    )
    assert cleared.json["status"] == "late"
    replanned = lead.patch(
        f"/milestones/{dsmb['id']}",
        json={
            "planned_on": (TODAY + timedelta(45)).isoformat(),
            "reason": "moved to the next quarter",
        },
    )
    assert replanned.json["status"] == "on_track"


def test_a_milestone_that_does_not_fit_its_kind_is_422(p):
    lead, trial = p["lead"], p["trial"]
    tid, site = trial["id"], p["site"]["id"]
    plan = TODAY.isoformat()
    for body in (
        {"name": "First subject dosed", "planned_on": plan, "achieved_on": days_ago(1).isoformat()},
        {"name": "Cohort complete", "kind": "cohort_complete", "planned_on": plan},
        {"name": "Cohort 1", "kind": "cohort_complete", "cohort_id": 999, "planned_on": plan},
        {
            "name": "Lock",
            "kind": "database_lock",
            "cohort_id": trial["cohorts"][0]["id"],
            "planned_on": plan,
        },
        {
            "name": "Last dosing at S01",
            "kind": "last_subject_dosed",
            "site_id": site,
            "planned_on": plan,
        },
        {"name": "Somewhere", "site_id": 999, "planned_on": plan},
        {"name": "No date"},
        {"name": "x", "planned_on": plan},
        {"name": "Strange", "kind": "party", "planned_on": plan},
    ):
        resp = lead.post(f"/trials/{tid}/milestones", json=body)
        assert resp.status_code == 422, (body, resp.json)
    auto = _plan(lead, tid, name="First subject screened", planned_on=plan)
    refused = lead.patch(
        f"/milestones/{auto['id']}",
        json={"achieved_on": days_ago(1).isoformat(), "reason": "by hand"},
    )
    assert refused.status_code == 422 and "achieved_on" in refused.json["errors"]


def test_site_milestones_are_seen_by_their_sites_coordinators_only(api, p):
    lead, trial = p["lead"], p["trial"]
    s02 = active_site(lead, "S02")
    coord2 = api.as_role("coordinator", site_ids=[s02["id"]])
    s01_first = _plan(
        lead,
        trial["id"],
        name="First subject screened",
        site_id=p["site"]["id"],
        planned_on=days_ago(310).isoformat(),
    )
    s02_first = _plan(
        lead,
        trial["id"],
        name="First subject screened",
        site_id=s02["id"],
        planned_on=days_ago(10).isoformat(),
    )
    trial_wide = _plan(
        lead, trial["id"], name="Database lock", planned_on=(TODAY + timedelta(300)).isoformat()
    )
    assert s01_first["site_code"] == "S01" and s01_first["achieved_on"] == days_ago(300).isoformat()
    assert s01_first["status"] == "done" and s01_first["days_after_plan"] == 10
    assert s02_first["status"] == "late"  # S02 has screened nobody
    seen = {m["id"] for m in coord2.get(f"/trials/{trial['id']}/milestones").json}
    assert seen == {s02_first["id"], trial_wide["id"]}
    seen = {m["id"] for m in p["coord"].get(f"/trials/{trial['id']}/milestones").json}
    assert seen == {s01_first["id"], trial_wide["id"]}
    assert (
        coord2.patch(
            f"/milestones/{s01_first['id']}", json={"name": "x", "reason": "xyz"}
        ).status_code
        == 403
    )
    assert (
        lead.patch("/milestones/999", json={"name": "Nothing", "reason": "xyz"}).status_code == 404
    )
