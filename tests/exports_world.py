"""A trial with every record kind the exports carry, built through the API: screening,
consent and re-consent, dosing, visits done and missed, an adverse event (serious, with
seriousness criteria), labs, efficacy measurements, a withdrawal. User text holds `<`, `&`,
quotes and non-Latin letters, so the exports must escape it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.builders import at, days_ago, dose, enrol, world
from tests.feasibility_world import record, visits

TRICKY = "Ünïcødé <b>&amp; \"quoted\" 'single' — 日本語 Ελληνικά & <script>"
SUBJECTS = 6
COHORT_ONE = 5  # subjects in cohort 1: the aggregate tables show this cell, not the other


def constructed(api: Any) -> dict[str, Any]:
    """Site S01, an open trial (no stagger) with an efficacy endpoint; six subjects: five in
    cohort 1, dosed on different days, with a baseline measurement each (the first carries
    every kind of record), and one in cohort 2 who withdraws before dosing."""
    w = world(api, stagger_days=0, capacities=(5, 3, 3))
    lead, coord, trial, site = w["lead"], w["coord"], w["trial"], w["site"]
    endpoint = lead.post(
        f"/trials/{trial['id']}/endpoints",
        json={"code": "FIX", "name": "Factor IX", "unit": "IU/dL", "direction": "higher_is_better"},
    ).json
    subjects = [enrol(coord, trial, site) for _ in range(COHORT_ONE)]
    subjects.append(enrol(coord, trial, site, cohort=2))
    for n, subject in enumerate(subjects[:COHORT_ONE]):
        dosed_on = days_ago(200 - 3 * n)
        resp = dose(coord, subject, dosed_on)
        assert resp.status_code == 201, resp.json
        subject["dosed_on"] = dosed_on
        baseline = coord.post(
            "/efficacy-measurements",
            json={
                "subject_code": subject["code"],
                "endpoint_id": endpoint["id"],
                "value": 1.5,
                "measured_on": (dosed_on - timedelta(days=2)).isoformat(),
                "baseline": True,
            },
        )
        assert baseline.status_code == 201, baseline.json
    first = subjects[0]
    v = visits(coord, first)
    record(
        coord,
        v["Day 7"],
        status="done",
        done_on=(first["dosed_on"] + timedelta(7)).isoformat(),
        notes=TRICKY,
    )
    record(coord, v["Week 4"], status="missed")
    later = coord.post(
        "/efficacy-measurements",
        json={
            "subject_code": first["code"],
            "endpoint_id": endpoint["id"],
            "value": 22.25,
            "measured_on": (first["dosed_on"] + timedelta(7)).isoformat(),
            "visit_id": v["Day 7"]["id"],
        },
    )
    assert later.status_code == 201, later.json
    ae = coord.post(
        "/adverse-events",
        json={
            "subject_code": first["code"],
            "term": TRICKY,
            "soc": "Hepatobiliary disorders",
            "onset_date": (first["dosed_on"] + timedelta(10)).isoformat(),
            "resolution_date": (first["dosed_on"] + timedelta(20)).isoformat(),
            "grade": 2,
            "seriousness_criteria": ["hospitalisation"],
            "causality": "possible",
            "expected": False,
            "narrative": TRICKY,
            "site_awareness_at": at(first["dosed_on"] + timedelta(10), 15),
        },
    )
    assert ae.status_code == 201, ae.json
    for analyte, value, unit in (("ALT", 130, "U/L"), ("PLT", 180, "10^9/L")):
        lab = coord.post(
            "/labs",
            json={
                "subject_code": first["code"],
                "analyte": analyte,
                "value": value,
                "unit": unit,
                "uln": 40,
                "lln": 150 if analyte == "PLT" else 7,
                "collected_at": at(first["dosed_on"] + timedelta(9), 8),
            },
        )
        assert lab.status_code == 201, lab.json
    last = subjects[-1]
    withdrawn = coord.post(
        f"/subjects/{last['code']}/withdrawal",
        json={
            "withdrawn_on": days_ago(150).isoformat(),
            "kind": "full",
            "reason": TRICKY,
        },
    )
    assert withdrawn.status_code == 200, withdrawn.json
    return {**w, "subjects": subjects, "endpoint": endpoint, "ae": ae.json}
