"""Screening log and enrolment: eligibility, pseudonymous codes, capacity, consent versions."""

import re
import threading

import pytest

from tests.builders import (
    active_site,
    days_ago,
    eligible_screening,
    enrol,
    open_trial,
    world,
)
from tests.factories import ApiClient
from trialmgr.db import today

CODE = re.compile(r"^S01-[A-HJ-NP-Z2-9]{5}$")


def screening_body(trial, site, **kw):
    return {
        "trial_id": trial["id"],
        "site_id": site["id"],
        "screened_on": days_ago(30).isoformat(),
        "orphacode": 98879,
        "birth_year": 2015,
        "sex": "F",
        **kw,
    }


def test_screening_numbers_run_per_site(api):
    w = world(api)
    s2 = active_site(w["lead"], "S02")
    coord2 = api.as_role("coordinator", site_ids=[s2["id"]])
    numbers = [
        w["coord"].post("/screenings", json=screening_body(w["trial"], w["site"])).json["number"]
        for _ in range(3)
    ]
    assert numbers == [1, 2, 3]
    assert coord2.post("/screenings", json=screening_body(w["trial"], s2)).json["number"] == 1


def test_screening_needs_open_trial(api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead)
    trial = open_trial(lead, open_=False)
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    resp = coord.post("/screenings", json=screening_body(trial, site))
    assert resp.status_code == 409 and resp.json["title"] == "Trial not open"


def test_screening_needs_an_open_site(api):
    w = world(api)
    lead = w["lead"]
    partner = lead.post(
        "/partners",
        json={"name": "New Hospital", "short_name": "NH", "kind": "clinical_site", "country": "FR"},
    ).json
    site = lead.post(
        "/sites",
        json={
            "partner_id": partner["id"],
            "code": "S03",
            "name": "Pending",
            "country": "FR",
            "timezone": "Europe/Paris",
        },
    ).json
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    resp = coord.post("/screenings", json=screening_body(w["trial"], site))
    assert resp.status_code == 409 and resp.json["title"] == "Site not open"


def test_screening_at_site_whose_ibc_lapsed_is_409_but_follow_up_continues(app, api):
    import sqlalchemy as sa

    from trialmgr.extensions import db
    from trialmgr.partners.models import SiteApproval

    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    with app.app_context():
        db.session.execute(
            sa.update(SiteApproval).where(SiteApproval.kind == "ibc").values(expires_on=days_ago(1))
        )
        db.session.commit()
    resp = w["coord"].post(
        "/screenings", json=screening_body(w["trial"], w["site"], screened_on=today().isoformat())
    )
    assert resp.status_code == 409 and resp.json["errors"]["missing"] == ["ibc"]
    assert w["coord"].get(f"/subjects/{subject['code']}").status_code == 200


@pytest.mark.parametrize(
    "field, value",
    [
        ("birth_year", 1800),
        ("birth_year", today().year + 1),
        ("sex", "female"),
        ("orphacode", -5),
        ("orphacode", "ORPHA:1"),
    ],
)
def test_bad_screening_fields_are_422(api, field, value):
    w = world(api)
    resp = w["coord"].post(
        "/screenings", json=screening_body(w["trial"], w["site"], **{field: value})
    )
    assert resp.status_code == 422 and field in resp.json["errors"]


def test_no_full_date_of_birth_is_accepted(api):
    w = world(api)
    resp = w["coord"].post(
        "/screenings", json=screening_body(w["trial"], w["site"], date_of_birth="2015-03-04")
    )
    assert resp.status_code == 422 and "date_of_birth" in resp.json["errors"]


def test_future_screening_date_is_422(api):
    w = world(api)
    resp = w["coord"].post(
        "/screenings",
        json=screening_body(w["trial"], w["site"], screened_on=days_ago(-1).isoformat()),
    )
    assert resp.status_code == 422


def test_eligible_only_when_every_criterion_is_met(api):
    w = world(api)
    coord, trial, site = w["coord"], w["trial"], w["site"]
    unmet = coord.post(
        "/screenings",
        json=screening_body(trial, site, answers={"I1": True, "E1": True}, outcome="eligible"),
    )
    assert unmet.status_code == 422 and "E1" in unmet.json["errors"]["outcome"][0]
    unanswered = coord.post(
        "/screenings", json=screening_body(trial, site, answers={"I1": True}, outcome="eligible")
    )
    assert unanswered.status_code == 422
    unknown = coord.post("/screenings", json=screening_body(trial, site, answers={"X9": True}))
    assert unknown.status_code == 422


def test_screen_failure_records_the_unmet_criteria(api):
    w = world(api)
    resp = w["coord"].post(
        "/screenings",
        json=screening_body(
            w["trial"], w["site"], answers={"I1": False, "E1": True}, outcome="screen_failed"
        ),
    )
    assert resp.status_code == 201
    assert resp.json["failed_criteria"] == ["I1", "E1"]
    declined = w["coord"].post(
        "/screenings", json=screening_body(w["trial"], w["site"], outcome="declined")
    )
    assert declined.status_code == 422 and "fail_reason" in declined.json["errors"]
    declined = w["coord"].post(
        "/screenings",
        json=screening_body(
            w["trial"], w["site"], outcome="declined", fail_reason="family declined travel"
        ),
    )
    assert declined.status_code == 201


def test_outcome_patch_needs_reason_and_is_audited(api):
    w = world(api)
    s = w["coord"].post("/screenings", json=screening_body(w["trial"], w["site"])).json
    assert (
        w["coord"]
        .patch(
            f"/screenings/{s['id']}",
            json={"outcome": "eligible", "answers": {"I1": True, "E1": False}},
        )
        .status_code
        == 422
    )
    resp = w["coord"].patch(
        f"/screenings/{s['id']}",
        json={"outcome": "eligible", "answers": {"I1": True, "E1": False}, "reason": "labs back"},
    )
    assert resp.status_code == 200 and resp.json["outcome"] == "eligible"
    events = w["lead"].get(f"/audit?entity=screening&entity_id={s['id']}").json
    assert events[0]["changes"]["outcome"] == {"old": "pending", "new": "eligible"}


def test_screening_log_csv_export(api):
    w = world(api)
    eligible_screening(w["coord"], w["trial"], w["site"])
    resp = w["coord"].get("/screenings/export")
    assert resp.mimetype == "text/csv"
    lines = resp.data.decode().splitlines()
    assert lines[0].startswith("site,number,screened_on") and lines[1].startswith("S01,1,")


def test_enrolment_gives_a_pseudonymous_code(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert CODE.match(subject["code"]), subject["code"]
    assert subject["status"] == "enrolled" and subject["consent_version"] == "1.0"
    assert subject["birth_year"] == 2015 and "date_of_birth" not in subject


def test_codes_are_random_not_sequential(api):
    w = world(api, capacities=(6,))
    codes = {enrol(w["coord"], w["trial"], w["site"])["code"] for _ in range(4)}
    assert len(codes) == 4


def test_enrolment_from_a_non_eligible_screening_is_409(api):
    w = world(api)
    s = w["coord"].post("/screenings", json=screening_body(w["trial"], w["site"])).json
    resp = w["coord"].post(
        "/subjects",
        json={
            "screening_id": s["id"],
            "cohort_id": w["trial"]["cohorts"][0]["id"],
            "consent_version_id": w["trial"]["consent_versions"][0]["id"],
            "consented_on": days_ago(20).isoformat(),
        },
    )
    assert resp.status_code == 409 and resp.json["title"] == "Not eligible"


def _enrol_body(w, screening, cohort=0, **kw):
    return {
        "screening_id": screening["id"],
        "cohort_id": w["trial"]["cohorts"][cohort]["id"],
        "consent_version_id": w["trial"]["consent_versions"][-1]["id"],
        "consented_on": days_ago(290).isoformat(),
        **kw,
    }


def test_same_screening_cannot_enrol_twice(api):
    w = world(api)
    s = eligible_screening(w["coord"], w["trial"], w["site"])
    assert w["coord"].post("/subjects", json=_enrol_body(w, s)).status_code == 201
    assert w["coord"].post("/subjects", json=_enrol_body(w, s)).status_code == 409


def test_cohort_capacity_n_then_n_plus_one(api):
    w = world(api, capacities=(2, 3))
    for _ in range(2):
        enrol(w["coord"], w["trial"], w["site"])
    s = eligible_screening(w["coord"], w["trial"], w["site"])
    resp = w["coord"].post("/subjects", json=_enrol_body(w, s))
    assert resp.status_code == 409 and resp.json["title"] == "Cohort full"
    assert w["coord"].post("/subjects", json=_enrol_body(w, s, cohort=1)).status_code == 201


def test_consent_dates(api):
    w = world(api)
    s = eligible_screening(w["coord"], w["trial"], w["site"])
    future = w["coord"].post(
        "/subjects", json=_enrol_body(w, s, consented_on=days_ago(-1).isoformat())
    )
    assert future.status_code == 422
    before_activation = w["coord"].post(
        "/subjects", json=_enrol_body(w, s, consented_on=days_ago(401).isoformat())
    )
    assert before_activation.status_code == 422
    # ICH E6 4.8.8: consent comes before any trial-specific procedure, screening included.
    before_screening = w["coord"].post(
        "/subjects", json=_enrol_body(w, s, consented_on=days_ago(301).isoformat())
    )
    assert before_screening.status_code == 201, before_screening.json


def test_superseded_consent_version_is_409_current_is_accepted(api):
    w = world(api)
    lead, trial = w["lead"], w["trial"]
    lead.post(
        f"/trials/{trial['id']}/consent-versions",
        json={"version": "2.0", "approved_on": days_ago(10).isoformat()},
    )
    trial = lead.get(f"/trials/{trial['id']}").json
    v1, v2 = trial["consent_versions"]
    s = eligible_screening(w["coord"], trial, w["site"])
    body = {
        "screening_id": s["id"],
        "cohort_id": trial["cohorts"][0]["id"],
        "consented_on": days_ago(5).isoformat(),
    }
    old = w["coord"].post("/subjects", json={**body, "consent_version_id": v1["id"]})
    assert old.status_code == 409 and old.json["title"] == "Consent version not current"
    # consent given before v2 existed, on v1, is still right
    historic = w["coord"].post(
        "/subjects",
        json={**body, "consent_version_id": v1["id"], "consented_on": days_ago(20).isoformat()},
    )
    assert historic.status_code == 201
    s2 = eligible_screening(w["coord"], trial, w["site"])
    ok = w["coord"].post(
        "/subjects", json={**body, "screening_id": s2["id"], "consent_version_id": v2["id"]}
    )
    assert ok.status_code == 201


def test_coordinator_of_another_site_sees_404(api):
    w = world(api)
    s2 = active_site(w["lead"], "S02")
    other = api.as_role("coordinator", site_ids=[s2["id"]])
    subject = enrol(w["coord"], w["trial"], w["site"])
    screening_id = subject["screening_id"]
    assert other.get(f"/subjects/{subject['code']}").status_code == 404
    assert other.get(f"/screenings/{screening_id}").status_code == 404
    assert (
        other.patch(
            f"/screenings/{screening_id}",
            json={"outcome": "declined", "fail_reason": "x", "reason": "xyz"},
        ).status_code
        == 404
    )
    assert (
        other.post(
            f"/subjects/{subject['code']}/withdrawal",
            json={"withdrawn_on": today().isoformat(), "reason": "xyz"},
        ).status_code
        == 404
    )
    assert other.get("/subjects").json == []
    assert other.get("/screenings").json == []
    resp = other.post("/screenings", json=screening_body(w["trial"], w["site"]))
    assert resp.status_code == 422 and "site_id" in resp.json["errors"]
    s_other = eligible_screening(other, w["trial"], s2)
    assert w["coord"].post("/subjects", json=_enrol_body(w, s_other)).status_code == 404


def test_enrolled_screening_is_locked(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    resp = w["coord"].patch(
        f"/screenings/{subject['screening_id']}",
        json={"outcome": "screen_failed", "fail_reason": "x", "reason": "oops"},
    )
    assert resp.status_code == 409


def _parallel_enrol(app, coord_token, bodies):
    results = []
    barrier = threading.Barrier(len(bodies))

    def run(body):
        client = ApiClient(app, coord_token)
        barrier.wait()
        results.append(client.post("/subjects", json=body).status_code)

    threads = [threading.Thread(target=run, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(results)


def test_parallel_enrolments_never_exceed_capacity(app, api):
    w = world(api, capacities=(2,))
    screenings = [eligible_screening(w["coord"], w["trial"], w["site"]) for _ in range(6)]
    bodies = [_enrol_body(w, s) for s in screenings]
    assert _parallel_enrol(app, w["coord"].token, bodies) == [201, 201, 409, 409, 409, 409]
    subjects = w["coord"].get(f"/subjects?cohort_id={w['trial']['cohorts'][0]['id']}").json
    assert len(subjects) == 2


def test_screening_before_site_activation_is_422(api):
    w = world(api)
    resp = w["coord"].post(
        "/screenings",
        json=screening_body(w["trial"], w["site"], screened_on=days_ago(405).isoformat()),
    )
    assert resp.status_code == 422 and "screened_on" in resp.json["errors"]
