"""Trials, cohorts, consent versions, visit definitions, safety reviews, pauses."""

import pytest

from tests.builders import active_site, days_ago, dose, enrol, open_trial, world
from tests.factories import PASSWORD


@pytest.mark.parametrize(
    "vector, years",
    [
        ("aav", 5),
        ("adenoviral", 5),
        ("lentiviral", 15),
        ("transposon", 15),
        ("gammaretroviral", 15),
        ("genome_editing", 15),
    ],
)
def test_vector_type_sets_follow_up_length(api, vector, years):
    lead = api.as_role("consortium_lead")
    resp = lead.post("/trials", json={"code": "GT-01", "title": "Pilot", "vector_type": vector})
    assert resp.status_code == 201
    assert (resp.json["ltfu_years"], resp.json["status"], resp.json["stagger_days"]) == (
        years,
        "setup",
        14,
    )


def test_other_vector_type_must_state_its_follow_up_length(api):
    lead = api.as_role("consortium_lead")
    silent = lead.post("/trials", json={"code": "GT-01", "title": "Pilot", "vector_type": "other"})
    assert silent.status_code == 422 and "ltfu_years" in silent.json["errors"]
    stated = lead.post(
        "/trials",
        json={"code": "GT-01", "title": "Pilot", "vector_type": "other", "ltfu_years": 8},
    )
    assert stated.status_code == 201 and stated.json["ltfu_years"] == 8


def test_follow_up_length_can_be_overridden(api):
    lead = api.as_role("consortium_lead")
    resp = lead.post(
        "/trials", json={"code": "GT-01", "title": "Pilot", "vector_type": "aav", "ltfu_years": 10}
    )
    assert resp.json["ltfu_years"] == 10


def test_duplicate_trial_code_is_409(api):
    lead = api.as_role("consortium_lead")
    lead.post("/trials", json={"code": "GT-01", "title": "Pilot", "vector_type": "aav"})
    assert (
        lead.post(
            "/trials", json={"code": "gt-01", "title": "Again", "vector_type": "aav"}
        ).status_code
        == 409
    )


def test_trial_opens_only_with_cohort_and_consent_version(api):
    lead = api.as_role("consortium_lead")
    trial = lead.post(
        "/trials", json={"code": "GT-01", "title": "Pilot", "vector_type": "aav"}
    ).json
    assert (
        lead.patch(f"/trials/{trial['id']}", json={"status": "open"}).status_code == 422
    )  # no reason
    assert (
        lead.patch(f"/trials/{trial['id']}", json={"status": "open", "reason": "ready"}).status_code
        == 409
    )
    lead.post(
        f"/trials/{trial['id']}/cohorts",
        json={"label": "C1", "dose": "1e13", "dose_unit": "vg/kg", "capacity": 3, "sequence": 1},
    )
    assert (
        lead.patch(f"/trials/{trial['id']}", json={"status": "open", "reason": "ready"}).status_code
        == 409
    )
    lead.post(
        f"/trials/{trial['id']}/consent-versions",
        json={"version": "1.0", "approved_on": days_ago(3).isoformat()},
    )
    no_inclusion = lead.patch(
        f"/trials/{trial['id']}", json={"status": "open", "reason": "ethics approved"}
    )
    assert no_inclusion.status_code == 409
    assert "inclusion criterion" in no_inclusion.json["detail"]
    lead.post(
        f"/trials/{trial['id']}/eligibility-criteria",
        json={"code": "E1", "kind": "exclusion", "text": "Neutralising anti-AAV antibodies"},
    )
    assert (
        lead.patch(f"/trials/{trial['id']}", json={"status": "open", "reason": "x" * 5})
    ).status_code == 409  # an exclusion criterion alone is not enough
    lead.post(
        f"/trials/{trial['id']}/eligibility-criteria",
        json={"code": "I1", "kind": "inclusion", "text": "Severe haemophilia B"},
    )
    resp = lead.patch(
        f"/trials/{trial['id']}", json={"status": "open", "reason": "ethics approved"}
    )
    assert resp.status_code == 200 and resp.json["status"] == "open"


def test_trial_cannot_be_set_paused_by_patch(api):
    lead = api.as_role("consortium_lead")
    trial = open_trial(lead)
    assert (
        lead.patch(
            f"/trials/{trial['id']}", json={"status": "paused", "reason": "x" * 5}
        ).status_code
        == 422
    )


def test_bad_cohort_input(api):
    lead = api.as_role("consortium_lead")
    trial = lead.post(
        "/trials", json={"code": "GT-01", "title": "Pilot", "vector_type": "aav"}
    ).json
    base = {"label": "C1", "dose": "1e13", "dose_unit": "vg/kg", "capacity": 3, "sequence": 1}
    assert (
        lead.post(f"/trials/{trial['id']}/cohorts", json={**base, "dose": "lots"}).status_code
        == 422
    )
    assert (
        lead.post(f"/trials/{trial['id']}/cohorts", json={**base, "capacity": 0}).status_code == 422
    )
    assert lead.post(f"/trials/{trial['id']}/cohorts", json=base).status_code == 201
    assert (
        lead.post(f"/trials/{trial['id']}/cohorts", json={**base, "label": "C2"}).status_code == 409
    )  # sequence


def test_consent_version_in_the_future_is_422(api):
    lead = api.as_role("consortium_lead")
    trial = lead.post(
        "/trials", json={"code": "GT-01", "title": "Pilot", "vector_type": "aav"}
    ).json
    resp = lead.post(
        f"/trials/{trial['id']}/consent-versions",
        json={"version": "1.0", "approved_on": days_ago(-1).isoformat()},
    )
    assert resp.status_code == 422


@pytest.mark.parametrize("role", ["coordinator", "safety_monitor"])
def test_only_managers_change_trial_design(api, role):
    lead = api.as_role("consortium_lead")
    trial = open_trial(lead)
    other = api.as_role(role)
    assert (
        other.post(
            f"/trials/{trial['id']}/cohorts",
            json={
                "label": "C9",
                "dose": "1e13",
                "dose_unit": "vg/kg",
                "capacity": 3,
                "sequence": 9,
            },
        ).status_code
        == 403
    )
    assert (
        other.patch(f"/trials/{trial['id']}", json={"title": "x" * 5, "reason": "xyz"}).status_code
        == 403
    )


def test_safety_review_is_signed_by_a_safety_monitor(api):
    w = world(api)
    trial = w["trial"]
    assert dose(w["coord"], enrol(w["coord"], trial, w["site"]), days_ago(100)).status_code == 201
    body = {
        "cohort_id": trial["cohorts"][0]["id"],
        "decision": "escalate",
        "rationale": "no DLT in C1",
    }
    assert (
        w["coord"]
        .post(f"/trials/{trial['id']}/safety-reviews", json={**body, "password": PASSWORD})
        .status_code
        == 403
    )
    monitor = api.as_role("safety_monitor")
    wrong = monitor.post(
        f"/trials/{trial['id']}/safety-reviews", json={**body, "password": "not-my-password"}
    )
    assert wrong.status_code == 422 and "password" in wrong.json["errors"]
    assert monitor.get(f"/trials/{trial['id']}/safety-reviews").json == []
    ok = monitor.post(f"/trials/{trial['id']}/safety-reviews", json={**body, "password": PASSWORD})
    assert ok.status_code == 201
    assert ok.json["signed_by"] == monitor.user["email"]
    assert ok.json["signature_meaning"]
    assert "password" not in ok.json
    audit = w["lead"].get("/audit?entity=safety_review").json
    assert audit[0]["action"] == "safety_review.sign" and audit[0]["reason"] == "no DLT in C1"


def test_pause_and_resume_by_a_safety_monitor_with_signature(api):
    w = world(api)
    trial, monitor = w["trial"], api.as_role("safety_monitor")
    assert (
        w["coord"]
        .post(f"/trials/{trial['id']}/pause", json={"reason": "SAE under review"})
        .status_code
        == 403
    )
    paused = monitor.post(f"/trials/{trial['id']}/pause", json={"reason": "SAE under review"})
    assert paused.status_code == 200
    assert paused.json["status"] == "paused" and paused.json["paused_reason"] == "SAE under review"
    assert (
        w["lead"]
        .post(f"/trials/{trial['id']}/resume", json={"reason": "ok", "password": PASSWORD})
        .status_code
        == 403
    )
    assert (
        monitor.post(f"/trials/{trial['id']}/resume", json={"reason": "DSMB cleared"}).status_code
        == 422
    )
    bad = monitor.post(
        f"/trials/{trial['id']}/resume",
        json={"reason": "DSMB cleared", "password": "nope-nope-nope"},
    )
    assert bad.status_code == 422
    assert w["lead"].get(f"/trials/{trial['id']}").json["status"] == "paused"
    ok = monitor.post(
        f"/trials/{trial['id']}/resume", json={"reason": "DSMB cleared", "password": PASSWORD}
    )
    assert (
        ok.status_code == 200 and ok.json["status"] == "open" and ok.json["paused_reason"] is None
    )
    pauses = w["lead"].get(f"/trials/{trial['id']}/pauses").json
    assert (
        pauses[0]["resumed_by"] == monitor.user["email"]
        and pauses[0]["resume_reason"] == "DSMB cleared"
    )


def test_pause_needs_an_open_trial(api):
    lead = api.as_role("consortium_lead")
    trial = open_trial(lead, open_=False)
    monitor = api.as_role("safety_monitor")
    assert (
        monitor.post(f"/trials/{trial['id']}/pause", json={"reason": "why not"}).status_code == 409
    )


def test_everyone_signed_in_reads_trials(api):
    lead = api.as_role("consortium_lead")
    active_site(lead)
    open_trial(lead)
    for role in ("coordinator", "safety_monitor", "admin"):
        assert len(api.as_role(role).get("/trials").json) == 1


def _sign(monitor, trial, cohort_index, decision, password=PASSWORD):
    return monitor.post(
        f"/trials/{trial['id']}/safety-reviews",
        json={
            "cohort_id": trial["cohorts"][cohort_index]["id"],
            "decision": decision,
            "rationale": "DSMB meeting",
            "password": password,
        },
    )


def test_escalation_needs_a_dosed_cohort(api):
    w = world(api)
    monitor = api.as_role("safety_monitor")
    early = _sign(monitor, w["trial"], 0, "escalate")
    assert early.status_code == 409 and early.json["title"] == "Nothing to review"
    dose(w["coord"], enrol(w["coord"], w["trial"], w["site"]), days_ago(60))
    assert _sign(monitor, w["trial"], 0, "escalate").status_code == 201


def test_stop_decision_pauses_the_trial(api):
    w = world(api)
    monitor = api.as_role("safety_monitor")
    dose(w["coord"], enrol(w["coord"], w["trial"], w["site"]), days_ago(60))
    assert _sign(monitor, w["trial"], 0, "stop").status_code == 201
    trial = w["lead"].get(f"/trials/{w['trial']['id']}").json
    assert trial["status"] == "paused" and "decided to stop" in trial["paused_reason"]
    assert w["lead"].get(f"/trials/{w['trial']['id']}/pauses").json[0]["source"] == "review:stop"


def test_wrong_signatures_count_toward_lockout_and_are_audited(api):
    w = world(api)
    monitor = api.as_role("safety_monitor")
    for _ in range(5):
        assert _sign(monitor, w["trial"], 0, "continue", "wrong-password-x").status_code == 422
    locked = _sign(monitor, w["trial"], 0, "continue")
    assert locked.status_code == 403 and locked.json["title"] == "Signature locked"
    actions = [e["action"] for e in w["lead"].get(f"/audit?actor={monitor.user['email']}").json]
    assert actions.count("signature_failed") == 4 and "account_locked" in actions
    assert w["lead"].get(f"/trials/{w['trial']['id']}/safety-reviews").json == []


def test_admin_cannot_pause_by_hand(api):
    w = world(api)
    admin = api.as_role("admin")
    assert (
        admin.post(f"/trials/{w['trial']['id']}/pause", json={"reason": "why not"}).status_code
        == 403
    )


def test_consent_version_cannot_predate_the_current_one(api):
    w = world(api)
    resp = w["lead"].post(
        f"/trials/{w['trial']['id']}/consent-versions",
        json={
            "version": "0.9",
            "approved_on": days_ago(600).isoformat(),
            "reconsent_required": True,
        },
    )
    assert resp.status_code == 422 and "approved_on" in resp.json["errors"]


def test_generated_visit_names_are_reserved(api):
    lead = api.as_role("consortium_lead")
    trial = open_trial(lead, open_=False)
    for name in ("RCR test month 3", "LTFU year 1 visit", "RCR pre-treatment sample"):
        resp = lead.post(f"/trials/{trial['id']}/visit-definitions", json={"name": name, "day": 90})
        assert resp.status_code == 422 and "name" in resp.json["errors"]
