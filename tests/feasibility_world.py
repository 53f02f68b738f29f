"""A small pilot built through the API with hand-countable feasibility numbers (the
expected values are worked out in tests/test_feasibility.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.builders import at, days_ago, dose, enrol, world

ELIGIBLE = {"I1": True, "E1": False}


def screen(coord: Any, trial: dict[str, Any], site: dict[str, Any], days: int, **fields: Any):
    body = {
        "trial_id": trial["id"],
        "site_id": site["id"],
        "screened_on": days_ago(days).isoformat(),
        "orphacode": 98879,
        "birth_year": 2015,
        "sex": "F",
        **fields,
    }
    resp = coord.post("/screenings", json=body)
    assert resp.status_code == 201, resp.json
    return resp.json


def visits(client: Any, subject: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in client.get(f"/subjects/{subject['code']}/visits").json}


def record(coord: Any, visit: dict[str, Any], **fields: Any) -> None:
    resp = coord.patch(f"/visits/{visit['id']}", json={"reason": "entered from the CRF", **fields})
    assert resp.status_code == 200, resp.json


def pilot(api: Any) -> dict[str, Any]:
    """Site S01 (active 400 days, the trial's consent approved before that), trial open.

    Screening log (9 entries): 4 enrolled (screened 300 days ago, consented 290), 1 failing
    criterion I1, 1 failing for a stated reason after consenting, 1 eligible who declined,
    1 eligible not enrolled (100 days ago), 1 still in screening (50 days ago).
    Subjects: A, B, C in cohort 1 dosed 280, 260, 240 days ago; D in cohort 2 withdrew
    before dosing. Visits (Day 7 ±1, Week 4 ±3, Week 12 ±7 primary): A all done, Week 12
    two days late, notes on Day 7 only; B Day 7 done with notes, Week 4 missed, Week 12 done;
    C Day 7 done, then lost to follow-up (its later visits cancelled).
    A SUSAR of A (aware 149 days ago): sponsor and FDA reports on time, EU late, IBC open.
    """
    w = world(api)
    coord, trial, site = w["coord"], w["trial"], w["site"]
    monitor = api.as_role("safety_monitor")
    version = trial["consent_versions"][0]["id"]
    a, b, c = (enrol(coord, trial, site) for _ in range(3))
    d = enrol(coord, trial, site, cohort=2)
    screen(coord, trial, site, 295, answers={"I1": False, "E1": False}, outcome="screen_failed")
    screen(
        coord,
        trial,
        site,
        295,
        answers={"I1": True},
        consented_on=days_ago(294).isoformat(),
        consent_version_id=version,
        outcome="screen_failed",
        fail_reason="Cannot attend the visits",
    )
    screen(coord, trial, site, 290, answers=ELIGIBLE, outcome="declined", fail_reason="Travel")
    screen(coord, trial, site, 100, answers=ELIGIBLE, outcome="eligible")
    screen(coord, trial, site, 50, answers=ELIGIBLE)
    for subject, days in ((a, 280), (b, 260), (c, 240)):
        assert dose(coord, subject, days_ago(days)).status_code == 201
    va, vb, vc = visits(coord, a), visits(coord, b), visits(coord, c)
    dosed_a = days_ago(280)
    record(
        coord,
        va["Day 7"],
        status="done",
        done_on=(dosed_a + timedelta(7)).isoformat(),
        notes="Well",
    )
    record(coord, va["Week 4"], status="done", done_on=(dosed_a + timedelta(28)).isoformat())
    record(coord, va["Week 12"], status="done", done_on=(dosed_a + timedelta(93)).isoformat())
    dosed_b = days_ago(260)
    record(
        coord, vb["Day 7"], status="done", done_on=(dosed_b + timedelta(8)).isoformat(), notes="Ok"
    )
    record(coord, vb["Week 4"], status="missed")
    record(coord, vb["Week 12"], status="done", done_on=(dosed_b + timedelta(80)).isoformat())
    dosed_c = days_ago(240)
    record(coord, vc["Day 7"], status="done", done_on=(dosed_c + timedelta(6)).isoformat())
    lost = coord.post(
        f"/subjects/{c['code']}/end",
        json={
            "status": "lost_to_follow_up",
            "on": (dosed_c + timedelta(10)).isoformat(),
            "reason": "No answer since the Day 7 visit",
        },
    )
    assert lost.status_code == 200, lost.json
    withdrawn = coord.post(
        f"/subjects/{d['code']}/withdrawal",
        json={"withdrawn_on": days_ago(200).isoformat(), "kind": "full", "reason": "Moved abroad"},
    )
    assert withdrawn.status_code == 200, withdrawn.json
    ae = coord.post(
        "/adverse-events",
        json={
            "subject_code": a["code"],
            "term": "Hepatitis",
            "soc": "Hepatobiliary disorders",
            "onset_date": days_ago(150).isoformat(),
            "grade": 3,
            "seriousness_criteria": ["hospitalisation"],
            "causality": "possible",
            "expected": False,
            "site_awareness_at": at(days_ago(149), 8),
        },
    )
    assert ae.status_code == 201, ae.json
    reports = {r["authority"]: r for r in ae.json["expedited_reports"]}
    assert set(reports) == {"sponsor", "FDA", "EU", "IBC"}
    for authority, when in (
        ("sponsor", at(days_ago(149), 15)),
        ("FDA", at(days_ago(140))),
        ("EU", at(days_ago(120))),
    ):
        resp = monitor.patch(
            f"/expedited-reports/{reports[authority]['id']}",
            json={"submitted_at": when, "reference": f"{authority}-1"},
        )
        assert resp.status_code == 200, resp.json
    return {**w, "subjects": {"A": a, "B": b, "C": c, "D": d}, "monitor": monitor}
