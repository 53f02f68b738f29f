"""Dosing gates: trial open, consent current, sentinel stagger, escalation after review."""

from datetime import timedelta

from tests.builders import at, days_ago, dose, enrol, world
from tests.factories import PASSWORD
from trialmgr.db import utcnow


def test_sentinel_then_day_13_refused_day_14_allowed(api):
    w = world(api)
    coord = w["coord"]
    sentinel, second, third = (enrol(coord, w["trial"], w["site"]) for _ in range(3))
    d0 = days_ago(100)
    assert dose(coord, sentinel, d0).status_code == 201
    day13 = dose(coord, second, d0 + timedelta(days=13))
    assert day13.status_code == 409
    assert day13.json["title"] == "Sentinel stagger"
    allowed = (d0 + timedelta(days=14)).isoformat()
    assert day13.json["detail"] == f"next dosing allowed on {allowed} 09:00 UTC (UTC)"
    day14 = dose(coord, second, d0 + timedelta(days=14))
    assert day14.status_code == 201
    # the third subject staggers from the second, not the sentinel
    assert dose(coord, third, d0 + timedelta(days=27)).status_code == 409
    assert dose(coord, third, d0 + timedelta(days=28)).status_code == 201


def test_stagger_compares_recorded_times_to_the_hour(api):
    w = world(api)
    a, b = enrol(w["coord"], w["trial"], w["site"]), enrol(w["coord"], w["trial"], w["site"])
    d0 = days_ago(100)
    assert dose(w["coord"], a, d0, hour=10).status_code == 201
    assert dose(w["coord"], b, d0 + timedelta(days=14), hour=9).status_code == 409
    assert dose(w["coord"], b, d0 + timedelta(days=14), hour=10).status_code == 201


def test_backdated_dosing_cannot_sit_inside_another_subjects_stagger(api):
    w = world(api)
    a, b = enrol(w["coord"], w["trial"], w["site"]), enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], a, days_ago(50)).status_code == 201
    assert dose(w["coord"], b, days_ago(60)).status_code == 409
    assert dose(w["coord"], b, days_ago(64)).status_code == 201


def test_custom_stagger_days(api):
    w = world(api, stagger_days=7)
    a, b = enrol(w["coord"], w["trial"], w["site"]), enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], a, days_ago(100)).status_code == 201
    assert dose(w["coord"], b, days_ago(93)).status_code == 201


def test_next_cohort_needs_an_escalation_review(api):
    w = world(api)
    coord, trial = w["coord"], w["trial"]
    c1 = enrol(coord, trial, w["site"], cohort=1)
    c2 = enrol(coord, trial, w["site"], cohort=2)
    assert dose(coord, c1, days_ago(100)).status_code == 201
    blocked = dose(coord, c2, days_ago(1))
    assert blocked.status_code == 409 and blocked.json["title"] == "Safety review required"
    monitor = api.as_role("safety_monitor")
    review = {
        "cohort_id": trial["cohorts"][0]["id"],
        "rationale": "review of C1",
        "password": PASSWORD,
    }
    monitor.post(f"/trials/{trial['id']}/safety-reviews", json={**review, "decision": "continue"})
    still = dose(coord, c2, days_ago(1))
    assert still.status_code == 409 and "continue" in still.json["detail"]
    monitor.post(f"/trials/{trial['id']}/safety-reviews", json={**review, "decision": "escalate"})
    # the decision was signed now: a dosing recorded before it is refused
    assert dose(coord, c2, days_ago(1)).status_code == 409
    ok = coord.post(
        f"/subjects/{c2['code']}/dosing",
        json={"dosed_at": utcnow().isoformat(), "dose": "3e13", "lot_number": "L002"},
    )
    assert ok.status_code == 201, ok.json
    assert coord.get(f"/subjects/{c2['code']}").json["status"] == "dosed"


def test_stop_decision_keeps_next_cohort_closed(api):
    w = world(api)
    coord, trial = w["coord"], w["trial"]
    c2 = enrol(coord, trial, w["site"], cohort=2)
    monitor = api.as_role("safety_monitor")
    monitor.post(
        f"/trials/{trial['id']}/safety-reviews",
        json={
            "cohort_id": trial["cohorts"][0]["id"],
            "decision": "stop",
            "rationale": "DLT",
            "password": PASSWORD,
        },
    )
    resp = coord.post(
        f"/subjects/{c2['code']}/dosing",
        json={"dosed_at": utcnow().isoformat(), "dose": "3e13", "lot_number": "L2"},
    )
    assert resp.status_code == 409 and "stop" in resp.json["detail"]


def test_paused_trial_refuses_dosing(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    monitor = api.as_role("safety_monitor")
    monitor.post(f"/trials/{w['trial']['id']}/pause", json={"reason": "grade 4 hepatotoxicity"})
    resp = dose(w["coord"], subject, days_ago(10))
    assert resp.status_code == 409
    assert resp.json["title"] == "Trial paused" and "hepatotoxicity" in resp.json["detail"]
    monitor.post(
        f"/trials/{w['trial']['id']}/resume", json={"reason": "DSMB cleared", "password": PASSWORD}
    )
    assert dose(w["coord"], subject, days_ago(10)).status_code == 201


def test_reconsent_due_blocks_dosing_until_reconsent(api):
    w = world(api)
    lead, coord, trial = w["lead"], w["coord"], w["trial"]
    subject = enrol(coord, trial, w["site"])
    lead.post(
        f"/trials/{trial['id']}/consent-versions",
        json={
            "version": "2.0",
            "approved_on": days_ago(20).isoformat(),
            "reconsent_required": True,
        },
    )
    assert coord.get(f"/subjects/{subject['code']}").json["reconsent_due"] is True
    assert coord.get("/subjects?reconsent_due=true").json[0]["code"] == subject["code"]
    blocked = dose(coord, subject, days_ago(5))
    assert blocked.status_code == 409 and blocked.json["title"] == "Re-consent required"
    v2 = lead.get(f"/trials/{trial['id']}").json["consent_versions"][-1]
    resp = coord.post(
        f"/subjects/{subject['code']}/consents",
        json={"consent_version_id": v2["id"], "consented_on": days_ago(6).isoformat()},
    )
    assert resp.status_code == 201
    after = coord.get(f"/subjects/{subject['code']}").json
    assert after["reconsent_due"] is False and after["consent_version"] == "2.0"
    assert [c["version"] for c in coord.get(f"/subjects/{subject['code']}/consents").json] == [
        "1.0",
        "2.0",
    ]
    assert dose(coord, subject, days_ago(5)).status_code == 201


def test_new_version_without_reconsent_flag_does_not_block(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    w["lead"].post(
        f"/trials/{w['trial']['id']}/consent-versions",
        json={"version": "1.1", "approved_on": days_ago(20).isoformat()},
    )
    assert w["coord"].get(f"/subjects/{subject['code']}").json["reconsent_due"] is False
    assert dose(w["coord"], subject, days_ago(5)).status_code == 201


def test_dosing_in_the_future_or_before_consent_is_422(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(-1)).status_code == 422
    assert dose(w["coord"], subject, days_ago(291)).status_code == 422


def test_dosing_needs_a_time_zone(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    resp = w["coord"].post(
        f"/subjects/{subject['code']}/dosing",
        json={"dosed_at": "2026-01-01T09:00:00", "dose": "1e13", "lot_number": "L1"},
    )
    assert resp.status_code == 422 and "dosed_at" in resp.json["errors"]


def test_dosing_twice_is_409_and_dosing_is_audited(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    first = dose(w["coord"], subject, days_ago(100))
    assert first.status_code == 201 and first.json["lot_number"] == "L001"
    assert dose(w["coord"], subject, days_ago(90)).status_code == 409
    events = w["lead"].get("/audit?entity=dosing").json
    assert (
        events[0]["action"] == "subject.dose"
        and events[0]["changes"]["lot_number"]["new"] == "L001"
    )


def test_withdrawn_subject_cannot_be_dosed(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    w["coord"].post(
        f"/subjects/{subject['code']}/withdrawal",
        json={"withdrawn_on": days_ago(1).isoformat(), "reason": "family moved abroad"},
    )
    assert dose(w["coord"], subject, days_ago(1)).status_code == 409


def test_withdrawal_before_dosing_frees_the_cohort_slot(api):
    w = world(api, capacities=(1,))
    first = enrol(w["coord"], w["trial"], w["site"])
    w["coord"].post(
        f"/subjects/{first['code']}/withdrawal",
        json={"withdrawn_on": days_ago(1).isoformat(), "reason": "declined surgery"},
    )
    assert enrol(w["coord"], w["trial"], w["site"])["status"] == "enrolled"


def test_coordinator_of_another_site_cannot_dose(api):
    w = world(api)
    from tests.builders import active_site

    other_site = active_site(w["lead"], "S02")
    other = api.as_role("coordinator", site_ids=[other_site["id"]])
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(other, subject, days_ago(10)).status_code == 404


def test_dosing_is_refused_for_non_site_roles(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    for role in ("consortium_lead", "safety_monitor"):
        assert dose(api.as_role(role), subject, days_ago(10)).status_code == 403
    assert at(days_ago(1)).endswith("+00:00")


def test_subject_withdrawn_from_procedures_cannot_be_dosed(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    w["coord"].post(
        f"/subjects/{subject['code']}/withdrawal",
        json={
            "withdrawn_on": days_ago(5).isoformat(),
            "kind": "procedures",
            "reason": "no more procedures",
        },
    )
    resp = dose(w["coord"], subject, days_ago(1))
    assert resp.status_code == 409 and resp.json["title"] == "Subject withdrawn"


def test_backdated_consent_on_a_superseded_version_still_needs_reconsent(api):
    w = world(api)
    lead, coord, trial = w["lead"], w["coord"], w["trial"]
    lead.post(
        f"/trials/{trial['id']}/consent-versions",
        json={
            "version": "2.0",
            "approved_on": days_ago(10).isoformat(),
            "reconsent_required": True,
        },
    )
    subject = enrol(coord, trial, w["site"], consented_on=days_ago(290))  # signed v1.0 back then
    assert subject["reconsent_due"] is True
    resp = dose(coord, subject, days_ago(1))
    assert resp.status_code == 409 and resp.json["title"] == "Re-consent required"


def test_reconsent_to_an_intermediate_version_does_not_clear_the_block(api):
    w = world(api)
    lead, coord, trial = w["lead"], w["coord"], w["trial"]
    subject = enrol(coord, trial, w["site"])
    for version, ago in (("2.0", 20), ("3.0", 10)):
        lead.post(
            f"/trials/{trial['id']}/consent-versions",
            json={
                "version": version,
                "approved_on": days_ago(ago).isoformat(),
                "reconsent_required": True,
            },
        )
    versions = {
        v["version"]: v["id"] for v in lead.get(f"/trials/{trial['id']}").json["consent_versions"]
    }
    resp = coord.post(
        f"/subjects/{subject['code']}/consents",
        json={"consent_version_id": versions["2.0"], "consented_on": days_ago(15).isoformat()},
    )
    assert resp.status_code == 201
    assert coord.get(f"/subjects/{subject['code']}").json["reconsent_due"] is True
    coord.post(
        f"/subjects/{subject['code']}/consents",
        json={"consent_version_id": versions["3.0"], "consented_on": days_ago(5).isoformat()},
    )
    assert coord.get(f"/subjects/{subject['code']}").json["reconsent_due"] is False


def test_next_cohort_waits_until_the_previous_has_dosed(api):
    w = world(api)
    c2 = enrol(w["coord"], w["trial"], w["site"], cohort=2)
    resp = w["coord"].post(
        f"/subjects/{c2['code']}/dosing",
        json={"dosed_at": utcnow().isoformat(), "dose": "3e13", "lot_number": "L2"},
    )
    assert resp.status_code == 409 and "Nobody in cohort C1" in resp.json["detail"]
