"""Enrolment judged as a trial team would (issue 8): consent on the procedure date and per
site, exits that free slots and cancel only later visits, amendments, escalation minimum,
dose checks, site-local dates, lifecycle states, and who does site work."""

from datetime import UTC, date, datetime, timedelta

import pytest

from tests.builders import (
    active_site,
    at,
    days_ago,
    dose,
    eligible_screening,
    enrol,
    open_trial,
    world,
)
from tests.factories import PASSWORD


def _visits(client, code):
    return {v["name"]: v for v in client.get(f"/subjects/{code}/visits").json}


def _screening_with_consent(w, on=None, version=None):
    on = on or days_ago(300)
    version = version or w["trial"]["consent_versions"][0]["id"]
    resp = w["coord"].post(
        "/screenings",
        json={
            "trial_id": w["trial"]["id"],
            "site_id": w["site"]["id"],
            "screened_on": on.isoformat(),
            "orphacode": 98879,
            "birth_year": 2015,
            "sex": "F",
            "answers": {"I1": True, "E1": False},
            "outcome": "eligible",
            "consented_on": (on - timedelta(days=2)).isoformat(),
            "consent_version_id": version,
        },
    )
    assert resp.status_code == 201, resp.json
    return resp.json


# --- consent at screening (item 4) --------------------------------------------------


def test_consent_recorded_at_screening_and_enrolment_refers_to_it(api):
    w = world(api)
    screening = _screening_with_consent(w)
    assert screening["consented_on"] == days_ago(302).isoformat()  # before the screening date
    resp = w["coord"].post(
        "/subjects",
        json={"screening_id": screening["id"], "cohort_id": w["trial"]["cohorts"][0]["id"]},
    )
    assert resp.status_code == 201, resp.json
    assert resp.json["consented_on"] == screening["consented_on"]
    assert resp.json["consent_version_id"] == screening["consent_version_id"]


def test_enrolment_without_any_consent_is_422(api):
    w = world(api)
    screening = eligible_screening(w["coord"], w["trial"], w["site"])
    resp = w["coord"].post(
        "/subjects",
        json={"screening_id": screening["id"], "cohort_id": w["trial"]["cohorts"][0]["id"]},
    )
    assert resp.status_code == 422 and "consented_on" in resp.json["errors"]
    assert w["coord"].get("/subjects").json == []


def test_enrolment_consent_must_agree_with_the_screening_consent(api):
    w = world(api)
    screening = _screening_with_consent(w)
    resp = w["coord"].post(
        "/subjects",
        json={
            "screening_id": screening["id"],
            "cohort_id": w["trial"]["cohorts"][0]["id"],
            "consent_version_id": screening["consent_version_id"],
            "consented_on": days_ago(290).isoformat(),
        },
    )
    assert resp.status_code == 422 and "consented_on" in resp.json["errors"]


def test_consent_given_at_enrolment_is_kept_on_the_screening(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    screening = w["coord"].get(f"/screenings/{subject['screening_id']}").json
    assert screening["consented_on"] == subject["consented_on"]


def test_a_subject_who_consented_then_failed_screening_stays_consented(api):
    w = world(api)
    resp = w["coord"].post(
        "/screenings",
        json={
            "trial_id": w["trial"]["id"],
            "site_id": w["site"]["id"],
            "screened_on": days_ago(100).isoformat(),
            "orphacode": 98879,
            "birth_year": 2014,
            "sex": "M",
            "consented_on": days_ago(101).isoformat(),
            "consent_version_id": w["trial"]["consent_versions"][0]["id"],
            "answers": {"I1": True, "E1": True},
            "outcome": "screen_failed",
        },
    )
    assert resp.status_code == 201, resp.json
    assert resp.json["outcome"] == "screen_failed"
    assert resp.json["consented_on"] == days_ago(101).isoformat()


def test_consent_at_screening_can_be_added_by_patch(api):
    w = world(api)
    screening = eligible_screening(w["coord"], w["trial"], w["site"])
    resp = w["coord"].patch(
        f"/screenings/{screening['id']}",
        json={
            "consented_on": days_ago(299).isoformat(),
            "consent_version_id": w["trial"]["consent_versions"][0]["id"],
            "reason": "consent form found in the site file",
        },
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["consented_on"] == days_ago(299).isoformat()


def test_consent_added_to_a_screen_failure_keeps_its_stated_reason(api):
    """A screen failure explained by a reason (AAV antibodies), not an unmet criterion: the
    consent found later is added without being asked for the reason again."""
    w = world(api)
    failed = w["coord"].post(
        "/screenings",
        json={
            "trial_id": w["trial"]["id"],
            "site_id": w["site"]["id"],
            "screened_on": days_ago(20).isoformat(),
            "orphacode": 98879,
            "birth_year": 2014,
            "sex": "M",
            "answers": {"I1": True, "E1": False},
            "outcome": "screen_failed",
            "fail_reason": "AAV neutralising antibodies above the cut-off",
        },
    )
    assert failed.status_code == 201, failed.json
    resp = w["coord"].patch(
        f"/screenings/{failed.json['id']}",
        json={
            "consented_on": days_ago(21).isoformat(),
            "consent_version_id": w["trial"]["consent_versions"][0]["id"],
            "reason": "consent form found in the site file",
        },
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["fail_reason"] == "AAV neutralising antibodies above the cut-off"
    emptied = w["coord"].patch(
        f"/screenings/{failed.json['id']}", json={"fail_reason": "", "reason": "cleared"}
    )
    assert emptied.status_code == 422 and "fail_reason" in emptied.json["errors"]


def test_consent_date_and_version_come_together(api):
    w = world(api)
    resp = w["coord"].post(
        "/screenings",
        json={
            "trial_id": w["trial"]["id"],
            "site_id": w["site"]["id"],
            "screened_on": days_ago(10).isoformat(),
            "orphacode": 98879,
            "birth_year": 2014,
            "sex": "M",
            "consented_on": days_ago(10).isoformat(),
        },
    )
    assert resp.status_code == 422 and "consent_version_id" in resp.json["errors"]


# --- consent versions per site (item 5) -----------------------------------------------


def _two_sites(api):
    w = world(api)
    other = active_site(w["lead"], "S02")
    coord2 = api.as_role("coordinator", site_ids=[other["id"]])
    return w, other, coord2


def test_a_version_approved_at_one_site_makes_only_its_subjects_due(api):
    w, other, coord2 = _two_sites(api)
    a = enrol(w["coord"], w["trial"], w["site"])
    b = enrol(coord2, w["trial"], other)
    resp = w["lead"].post(
        f"/trials/{w['trial']['id']}/consent-versions",
        json={
            "version": "2.0",
            "reconsent_required": True,
            "site_approvals": [
                {
                    "site_id": w["site"]["id"],
                    "approved_on": days_ago(5).isoformat(),
                    "language": "it",
                }
            ],
        },
    )
    assert resp.status_code == 201, resp.json
    assert resp.json["approved_on"] is None
    assert [s["site_code"] for s in resp.json["site_approvals"]] == ["S01"]
    assert w["coord"].get(f"/subjects/{a['code']}").json["reconsent_due"] is True
    assert coord2.get(f"/subjects/{b['code']}").json["reconsent_due"] is False
    # S02 cannot consent on a version its ethics committee has not approved
    early = coord2.post(
        f"/subjects/{b['code']}/consents",
        json={"consent_version_id": resp.json["id"], "consented_on": days_ago(1).isoformat()},
    )
    assert early.status_code == 422 and "consent_version_id" in early.json["errors"]
    later = w["lead"].post(
        f"/consent-versions/{resp.json['id']}/site-approvals",
        json={"site_id": other["id"], "approved_on": days_ago(2).isoformat(), "language": "fr"},
    )
    assert later.status_code == 201, later.json
    assert coord2.get(f"/subjects/{b['code']}").json["reconsent_due"] is True
    ok = coord2.post(
        f"/subjects/{b['code']}/consents",
        json={"consent_version_id": resp.json["id"], "consented_on": days_ago(1).isoformat()},
    )
    assert ok.status_code == 201, ok.json
    twice = w["lead"].post(
        f"/consent-versions/{resp.json['id']}/site-approvals",
        json={"site_id": other["id"], "approved_on": days_ago(1).isoformat()},
    )
    assert twice.status_code == 409


def test_trial_wide_approval_date_means_every_site(api):
    w, other, coord2 = _two_sites(api)
    b = enrol(coord2, w["trial"], other)
    w["lead"].post(
        f"/trials/{w['trial']['id']}/consent-versions",
        json={"version": "2.0", "approved_on": days_ago(3).isoformat(), "reconsent_required": True},
    )
    assert coord2.get(f"/subjects/{b['code']}").json["reconsent_due"] is True


# --- consent judged on the procedure date (item 6) ------------------------------------


def test_dosing_done_before_a_new_version_is_accepted_when_entered_late(api):
    """Used to be 409 'Re-consent required' forever: the dosing happened while the
    subject's consent was valid."""
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    w["lead"].post(
        f"/trials/{w['trial']['id']}/consent-versions",
        json={
            "version": "2.0",
            "approved_on": days_ago(10).isoformat(),
            "reconsent_required": True,
        },
    )
    assert dose(w["coord"], subject, days_ago(20)).status_code == 201


def test_dosing_done_while_reconsent_was_due_is_refused(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    version = (
        w["lead"]
        .post(
            f"/trials/{w['trial']['id']}/consent-versions",
            json={
                "version": "2.0",
                "approved_on": days_ago(10).isoformat(),
                "reconsent_required": True,
            },
        )
        .json
    )
    refused = dose(w["coord"], subject, days_ago(5))
    assert refused.status_code == 409 and refused.json["title"] == "Re-consent required"
    assert "2.0" in refused.json["detail"]
    w["coord"].post(
        f"/subjects/{subject['code']}/consents",
        json={"consent_version_id": version["id"], "consented_on": days_ago(3).isoformat()},
    )
    assert dose(w["coord"], subject, days_ago(5)).status_code == 409  # still before re-consent
    assert dose(w["coord"], subject, days_ago(2)).status_code == 201


def test_reconsent_adds_a_record_and_keeps_the_first_consent_date(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    version = (
        w["lead"]
        .post(
            f"/trials/{w['trial']['id']}/consent-versions",
            json={
                "version": "2.0",
                "approved_on": days_ago(10).isoformat(),
                "reconsent_required": True,
            },
        )
        .json
    )
    resp = w["coord"].post(
        f"/subjects/{subject['code']}/consents",
        json={"consent_version_id": version["id"], "consented_on": days_ago(4).isoformat()},
    )
    assert resp.status_code == 201
    after = w["coord"].get(f"/subjects/{subject['code']}").json
    assert after["consented_on"] == subject["consented_on"]
    assert after["consent_version"] == "2.0" and after["reconsent_due"] is False
    consents = w["coord"].get(f"/subjects/{subject['code']}/consents").json
    assert [c["version"] for c in consents] == ["1.0", "2.0"]


def test_future_reconsent_withdrawal_and_end_dates_are_422(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    code, tomorrow = subject["code"], days_ago(-1).isoformat()
    version = (
        w["lead"]
        .post(
            f"/trials/{w['trial']['id']}/consent-versions",
            json={"version": "2.0", "approved_on": days_ago(1).isoformat()},
        )
        .json
    )
    calls = [
        (
            f"/subjects/{code}/consents",
            {"consent_version_id": version["id"], "consented_on": tomorrow},
        ),
        (f"/subjects/{code}/withdrawal", {"withdrawn_on": tomorrow, "reason": "moving away"}),
        (f"/subjects/{code}/end", {"status": "died", "on": tomorrow, "reason": "unknown"}),
        (
            f"/subjects/{code}/end",
            {"status": "lost_to_follow_up", "on": tomorrow, "reason": "no reply"},
        ),
    ]
    for path, body in calls:
        resp = w["coord"].post(path, json=body)
        assert resp.status_code == 422, (path, resp.json)
    assert w["coord"].get(f"/subjects/{code}").json["status"] == "enrolled"


# --- lifecycle (items 7, 8) -----------------------------------------------------------


def test_closed_to_enrolment_keeps_follow_up_reconsent_and_dosing_going(api):
    w = world(api)
    dosed = enrol(w["coord"], w["trial"], w["site"])
    waiting = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], dosed, days_ago(60)).status_code == 201
    tid = w["trial"]["id"]
    assert (
        w["lead"]
        .patch(f"/trials/{tid}", json={"status": "closed", "reason": "full"})
        .json["status"]
        == "closed"
    )
    screening = w["coord"].post(
        "/screenings",
        json={
            "trial_id": tid,
            "site_id": w["site"]["id"],
            "screened_on": days_ago(1).isoformat(),
            "orphacode": 98879,
            "birth_year": 2015,
            "sex": "M",
        },
    )
    assert screening.status_code == 409
    version = w["lead"].post(
        f"/trials/{tid}/consent-versions",
        json={"version": "2.0", "approved_on": days_ago(2).isoformat(), "reconsent_required": True},
    )
    assert version.status_code == 201
    reconsent = w["coord"].post(
        f"/subjects/{dosed['code']}/consents",
        json={"consent_version_id": version.json["id"], "consented_on": days_ago(1).isoformat()},
    )
    assert reconsent.status_code == 201
    week4 = _visits(w["coord"], dosed["code"])["Week 4"]
    visit = w["coord"].patch(
        f"/visits/{week4['id']}",
        json={"status": "done", "done_on": week4["scheduled_on"], "reason": "visit entered"},
    )
    assert visit.status_code == 200
    assert dose(w["coord"], waiting, days_ago(40)).status_code == 201  # enrolled before closing
    ended = w["lead"].patch(f"/trials/{tid}", json={"status": "ended", "reason": "LTFU complete"})
    assert ended.status_code == 200 and ended.json["status"] == "ended"
    late = w["lead"].post(
        f"/trials/{tid}/consent-versions",
        json={"version": "3.0", "approved_on": days_ago(1).isoformat()},
    )
    assert late.status_code == 409


def test_a_pause_blocks_enrolment_and_dosing_but_not_the_screening_log(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    monitor = api.as_role("safety_monitor")
    paused = monitor.post(f"/trials/{w['trial']['id']}/pause", json={"reason": "grade 4 ALT"})
    assert paused.status_code == 200
    screening = eligible_screening(w["coord"], w["trial"], w["site"], screened_on=days_ago(1))
    assert screening["outcome"] == "eligible"
    enrolment = w["coord"].post(
        "/subjects",
        json={
            "screening_id": screening["id"],
            "cohort_id": w["trial"]["cohorts"][0]["id"],
            "consent_version_id": w["trial"]["consent_versions"][0]["id"],
            "consented_on": days_ago(1).isoformat(),
        },
    )
    assert enrolment.status_code == 409 and enrolment.json["title"] == "Trial paused"
    assert dose(w["coord"], subject, days_ago(1)).status_code == 409


# --- amendments (item 9) ----------------------------------------------------------------


def test_design_changes_after_opening_need_an_amendment(api):
    w = world(api)
    tid = w["trial"]["id"]
    visit = w["lead"].post(f"/trials/{tid}/visit-definitions", json={"name": "Week 16", "day": 112})
    assert visit.status_code == 409 and visit.json["title"] == "Amendment required"
    stagger = w["lead"].patch(f"/trials/{tid}", json={"stagger_days": 21, "reason": "DSMB advice"})
    assert stagger.status_code == 409 and "stagger_days" in stagger.json["errors"]
    criterion = w["lead"].post(
        f"/trials/{tid}/eligibility-criteria",
        json={"code": "I9", "kind": "inclusion", "text": "Something new"},
    )
    assert criterion.status_code == 409
    title = w["lead"].patch(f"/trials/{tid}", json={"title": "AAV FIX pilot", "reason": "typo"})
    assert title.status_code == 200  # administrative fields are not design


def test_amendment_applies_to_future_visits_only_and_lists_the_subjects(api):
    w = world(api)
    coord, tid = w["coord"], w["trial"]["id"]
    followed = enrol(coord, w["trial"], w["site"])
    assert dose(coord, followed, days_ago(100)).status_code == 201
    week4 = _visits(coord, followed["code"])["Week 4"]
    coord.patch(
        f"/visits/{week4['id']}",
        json={"status": "done", "done_on": week4["scheduled_on"], "reason": "visit entered"},
    )
    not_dosed = enrol(coord, w["trial"], w["site"])
    trial = w["lead"].get(f"/trials/{tid}").json
    week12 = next(d for d in trial["visit_definitions"] if d["name"] == "Week 12")
    day7 = next(d for d in trial["visit_definitions"] if d["name"] == "Day 7")
    resp = w["lead"].post(
        f"/trials/{tid}/amendments",
        json={
            "version": "A1",
            "effective_on": days_ago(50).isoformat(),
            "reason": "DSMB asked for a later primary visit and a week 16 check",
            "ltfu_years": 6,
            "visit_definitions": {
                "change": [{"id": week12["id"], "day": 90}, {"id": day7["id"], "day": 10}],
                "add": [{"name": "Week 16", "day": 112, "window_before": 7, "window_after": 7}],
            },
        },
    )
    assert resp.status_code == 201, resp.json
    assert resp.json["rescheduled"] == [followed["code"]]
    assert {"ltfu_years", "visit Week 12", "visit Week 16"} <= set(resp.json["changes"])
    d0 = days_ago(100)
    visits = _visits(coord, followed["code"])
    assert visits["Week 12"]["scheduled_on"] == (d0 + timedelta(days=90)).isoformat()
    assert visits["Week 16"]["scheduled_on"] == (d0 + timedelta(days=112)).isoformat()
    assert "LTFU year 6 contact" in visits
    assert visits["Week 4"]["status"] == "done"
    assert visits["Week 4"]["done_on"] == week4["scheduled_on"]  # done: untouched
    # Day 7 was due before the effective date: its schedule stays as it was
    assert visits["Day 7"]["scheduled_on"] == (d0 + timedelta(days=7)).isoformat()
    assert _visits(coord, not_dosed["code"]) == {}
    later = enrol(coord, w["trial"], w["site"])
    assert dose(coord, later, days_ago(1)).status_code == 201
    new = _visits(coord, later["code"])  # dosed after the amendment: the amended schedule
    assert new["Week 12"]["day"] == 90 and "Week 16" in new and "LTFU year 6 contact" in new
    listed = w["lead"].get(f"/trials/{tid}/amendments").json
    assert [a["version"] for a in listed] == ["A1"]
    duplicate = w["lead"].post(
        f"/trials/{tid}/amendments",
        json={
            "version": "A1",
            "effective_on": days_ago(1).isoformat(),
            "reason": "again",
            "stagger_days": 21,
        },
    )
    assert duplicate.status_code == 409


def test_amendment_removing_a_visit_cancels_it_for_subjects_not_yet_there(api):
    w = world(api, stagger_days=0)
    coord, tid = w["coord"], w["trial"]["id"]
    subject = enrol(coord, w["trial"], w["site"])
    assert dose(coord, subject, days_ago(3)).status_code == 201
    trial = w["lead"].get(f"/trials/{tid}").json
    day7 = next(d for d in trial["visit_definitions"] if d["name"] == "Day 7")
    resp = w["lead"].post(
        f"/trials/{tid}/amendments",
        json={
            "version": "A2",
            "effective_on": days_ago(1).isoformat(),
            "reason": "Day 7 visit dropped",
            "visit_definitions": {"remove": [day7["id"]]},
        },
    )
    assert resp.status_code == 201, resp.json
    visit = _visits(coord, subject["code"])["Day 7"]
    assert (visit["status"], visit["cancel_reason"]) == ("cancelled", "amendment")
    later = enrol(coord, w["trial"], w["site"])
    assert dose(coord, later, days_ago(1)).status_code == 201
    assert "Day 7" not in _visits(coord, later["code"])


def test_empty_or_setup_amendments_are_refused(api):
    w = world(api)
    empty = w["lead"].post(
        f"/trials/{w['trial']['id']}/amendments",
        json={"version": "A1", "effective_on": days_ago(1).isoformat(), "reason": "nothing"},
    )
    assert empty.status_code == 422
    setup = open_trial(w["lead"], open_=False)
    resp = w["lead"].post(
        f"/trials/{setup['id']}/amendments",
        json={
            "version": "A1",
            "effective_on": days_ago(1).isoformat(),
            "reason": "x" * 5,
            "stagger_days": 7,
        },
    )
    assert resp.status_code == 409


def test_design_items_are_edited_and_removed_during_setup_only(api):
    lead = api.as_role("consortium_lead")
    trial = open_trial(lead, open_=False)
    visit = trial["visit_definitions"][0]
    edited = lead.patch(f"/visit-definitions/{visit['id']}", json={"day": 8, "reason": "typo"})
    assert edited.status_code == 200 and edited.json["day"] == 8
    criterion = next(c for c in trial["criteria"] if c["kind"] == "exclusion")
    assert lead.delete(f"/eligibility-criteria/{criterion['id']}").status_code == 204
    cohort = trial["cohorts"][-1]
    assert lead.patch(f"/cohorts/{cohort['id']}", json={"capacity": 4}).json["capacity"] == 4
    assert lead.delete(f"/cohorts/{cohort['id']}").status_code == 204
    after = lead.get(f"/trials/{trial['id']}").json
    assert len(after["criteria"]) == 1 and len(after["cohorts"]) == 2
    lead.patch(f"/trials/{trial['id']}", json={"status": "open", "reason": "ready"})
    assert lead.delete(f"/visit-definitions/{visit['id']}").status_code == 409
    assert (
        lead.patch(f"/cohorts/{trial['cohorts'][0]['id']}", json={"capacity": 9}).status_code == 409
    )


def test_duplicate_visit_names_are_refused_whatever_their_case_and_spacing(api):
    lead = api.as_role("consortium_lead")
    trial = open_trial(lead, open_=False)
    for name in ("Week 4", "week  4", " WEEK 4 "):
        resp = lead.post(f"/trials/{trial['id']}/visit-definitions", json={"name": name, "day": 28})
        assert resp.status_code == 409, name


# --- escalation readiness (item 10) --------------------------------------------------


def _sign(monitor, trial, decision="escalate"):
    return monitor.post(
        f"/trials/{trial['id']}/safety-reviews",
        json={
            "cohort_id": trial["cohorts"][0]["id"],
            "decision": decision,
            "rationale": "no DLT observed",
            "password": PASSWORD,
        },
    )


def test_escalation_needs_every_slot_dosed_and_the_dlt_window_over(api):
    w = world(api, stagger_days=0)
    tid = w["trial"]["id"]
    resp = w["lead"].post(
        f"/trials/{tid}/amendments",
        json={
            "version": "A1",
            "effective_on": days_ago(1).isoformat(),
            "reason": "SRC charter: full cohort and 28-day DLT window before escalating",
            "escalation_requires_full_cohort": True,
            "dlt_window_days": 28,
        },
    )
    assert resp.status_code == 201, resp.json
    monitor = api.as_role("safety_monitor")
    subjects = [enrol(w["coord"], w["trial"], w["site"]) for _ in range(3)]
    assert dose(w["coord"], subjects[0], days_ago(60)).status_code == 201
    partial = _sign(monitor, w["trial"])
    assert partial.status_code == 409 and partial.json["title"] == "Escalation not ready"
    assert "1 of 3" in partial.json["detail"]
    dose(w["coord"], subjects[1], days_ago(50))
    dose(w["coord"], subjects[2], days_ago(10), hour=0)
    readiness = monitor.get(
        f"/trials/{tid}/escalation-readiness?cohort_id={w['trial']['cohorts'][0]['id']}"
    ).json
    assert (readiness["dosed"], readiness["capacity"], readiness["days_since_last_dosing"]) == (
        3,
        3,
        10,
    )
    assert readiness["ready"] is False and "28-day DLT window" in readiness["blockers"][0]
    assert _sign(monitor, w["trial"]).status_code == 409
    assert _sign(monitor, w["trial"], "continue").status_code == 201  # only escalate waits


def test_escalation_signed_once_the_window_is_over(api):
    w = world(api, stagger_days=0)
    w["lead"].post(
        f"/trials/{w['trial']['id']}/amendments",
        json={
            "version": "A1",
            "effective_on": days_ago(1).isoformat(),
            "reason": "charter",
            "escalation_requires_full_cohort": True,
            "dlt_window_days": 28,
        },
    )
    for n in (62, 61, 60):
        dose(w["coord"], enrol(w["coord"], w["trial"], w["site"]), days_ago(n))
    assert _sign(api.as_role("safety_monitor"), w["trial"]).status_code == 201


# --- slots, exits, reinstatement (items 11-14) ----------------------------------------


@pytest.mark.parametrize(
    "path, body, status",
    [
        ("withdrawal", {"kind": "procedures", "reason": "no blood draws"}, "withdrawn"),
        ("withdrawal", {"kind": "full", "reason": "family moved"}, "withdrawn"),
        ("end", {"status": "lost_to_follow_up", "reason": "no answer"}, "lost_to_follow_up"),
        ("end", {"status": "died", "reason": "road accident"}, "died"),
    ],
)
def test_every_exit_before_dosing_frees_the_slot(api, path, body, status):
    w = world(api, capacities=(1, 3, 3))
    first = enrol(w["coord"], w["trial"], w["site"])
    screening = eligible_screening(w["coord"], w["trial"], w["site"])
    enrol_body = {
        "screening_id": screening["id"],
        "cohort_id": w["trial"]["cohorts"][0]["id"],
        "consent_version_id": w["trial"]["consent_versions"][0]["id"],
        "consented_on": days_ago(290).isoformat(),
    }
    assert w["coord"].post("/subjects", json=enrol_body).status_code == 409
    date_field = "withdrawn_on" if path == "withdrawal" else "on"
    resp = w["coord"].post(
        f"/subjects/{first['code']}/{path}", json={**body, date_field: days_ago(10).isoformat()}
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] == status
    assert w["coord"].post("/subjects", json=enrol_body).status_code == 201


def test_exits_cannot_precede_the_last_clinical_event(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(100)).status_code == 201
    week4 = _visits(w["coord"], subject["code"])["Week 4"]
    w["coord"].patch(
        f"/visits/{week4['id']}",
        json={"status": "done", "done_on": week4["scheduled_on"], "reason": "visit entered"},
    )
    too_early = (days_ago(100) + timedelta(days=20)).isoformat()
    for path, body in (
        ("withdrawal", {"withdrawn_on": too_early, "reason": "consent withdrawn"}),
        ("end", {"status": "died", "on": too_early, "reason": "cardiac arrest"}),
    ):
        resp = w["coord"].post(f"/subjects/{subject['code']}/{path}", json=body)
        assert resp.status_code == 422, resp.json
        assert "Week 4 done" in str(resp.json["errors"])


def test_after_a_full_withdrawal_only_a_death_can_follow(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(100)).status_code == 201
    code = subject["code"]
    w["coord"].post(
        f"/subjects/{code}/withdrawal",
        json={"withdrawn_on": days_ago(30).isoformat(), "kind": "full", "reason": "moved"},
    )
    lost = w["coord"].post(
        f"/subjects/{code}/end",
        json={"status": "lost_to_follow_up", "on": days_ago(10).isoformat(), "reason": "no reply"},
    )
    assert lost.status_code == 409
    died = w["coord"].post(
        f"/subjects/{code}/end",
        json={"status": "died", "on": days_ago(5).isoformat(), "reason": "registry notice"},
    )
    assert died.status_code == 200
    assert (died.json["status"], died.json["withdrawn_on"], died.json["ended_on"]) == (
        "died",
        days_ago(30).isoformat(),
        days_ago(5).isoformat(),
    )


def test_death_cancels_only_later_visits_and_earlier_ones_can_be_entered(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(100)).status_code == 201
    code = subject["code"]
    died = w["coord"].post(
        f"/subjects/{code}/end",
        json={"status": "died", "on": days_ago(50).isoformat(), "reason": "sepsis"},
    )
    assert died.status_code == 200
    visits = _visits(w["coord"], code)
    assert visits["Week 4"]["status"] == "scheduled"
    assert (visits["Week 12"]["status"], visits["Week 12"]["cancel_reason"]) == (
        "cancelled",
        "died",
    )
    assert {v["status"] for v in visits.values() if v["kind"] == "ltfu"} == {"cancelled"}
    missed = w["coord"].patch(
        f"/visits/{visits['Day 7']['id']}", json={"status": "missed", "reason": "no show"}
    )
    assert missed.status_code == 200
    done = w["coord"].patch(
        f"/visits/{visits['Week 4']['id']}",
        json={
            "status": "done",
            "done_on": visits["Week 4"]["scheduled_on"],
            "reason": "visit entered",
        },
    )
    assert done.status_code == 200


def test_lost_to_follow_up_is_reversed_and_the_contacts_to_come_reopen(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"], consented_on=days_ago(399))
    assert dose(w["coord"], subject, days_ago(398)).status_code == 201
    code = subject["code"]
    not_lost = w["coord"].post(
        f"/subjects/{code}/reinstate", json={"on": days_ago(1).isoformat(), "reason": "traced"}
    )
    assert not_lost.status_code == 409
    w["coord"].post(
        f"/subjects/{code}/end",
        json={"status": "lost_to_follow_up", "on": days_ago(100).isoformat(), "reason": "moved"},
    )
    visits = _visits(w["coord"], code)
    assert visits["LTFU year 1 visit"]["status"] == "cancelled"  # due 35 days ago
    assert visits["LTFU year 2 visit"]["status"] == "cancelled"
    before_loss = w["coord"].post(
        f"/subjects/{code}/reinstate", json={"on": days_ago(200).isoformat(), "reason": "traced"}
    )
    assert before_loss.status_code == 422
    back = w["coord"].post(
        f"/subjects/{code}/reinstate",
        json={"on": days_ago(10).isoformat(), "reason": "traced through the patient organisation"},
    )
    assert back.status_code == 200, back.json
    assert back.json["status"] in ("dosed", "in_follow_up", "completed")
    assert back.json["ended_on"] is None
    visits = _visits(w["coord"], code)
    assert visits["LTFU year 1 visit"]["status"] == "cancelled"  # passed while lost
    assert visits["LTFU year 2 visit"]["status"] == "scheduled"
    history = w["lead"].get("/audit?entity=subject").json
    assert any(e["action"] == "subject.reinstate" and "traced" in e["reason"] for e in history)


# --- dose checks and stagger messages (items 15, 16) --------------------------------


def _dose_with(coord, subject, on, **body):
    return coord.post(
        f"/subjects/{subject['code']}/dosing",
        json={"dosed_at": at(on), "lot_number": "L1", **body},
    )


def test_dose_in_the_cohort_unit_and_within_ten_percent(api):
    w = world(api, stagger_days=0)
    a, b, c = (enrol(w["coord"], w["trial"], w["site"]) for _ in range(3))
    wrong_unit = _dose_with(w["coord"], a, days_ago(30), dose="1e13", dose_unit="vg")
    assert wrong_unit.status_code == 422 and "dose_unit" in wrong_unit.json["errors"]
    off = _dose_with(w["coord"], a, days_ago(30), dose="1.2e13")
    assert off.status_code == 422 and "confirm_dose_deviation" in off.json["errors"]
    assert "+20 %" in off.json["errors"]["confirm_dose_deviation"][0]
    confirmed = _dose_with(w["coord"], a, days_ago(30), dose="1.2e13", confirm_dose_deviation=True)
    assert confirmed.status_code == 201, confirmed.json
    deviations = w["coord"].get(f"/subjects/{a['code']}/deviations").json
    assert [d["kind"] for d in deviations] == ["dosing_error"]
    assert _dose_with(w["coord"], b, days_ago(29), dose="1.1e13").status_code == 201  # 10 %: ok
    assert w["coord"].get(f"/subjects/{b['code']}/deviations").json == []
    assert _dose_with(w["coord"], c, days_ago(28), dose="0.89e13").status_code == 422


def test_stagger_refusal_gives_the_next_moment_in_the_sites_zone_across_dst(api):
    """Dosed 09:00 CET on 20 March 2026 in Rome; 14 days of 24 h later it is 10:00 CEST."""
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "RM1", activated_on=date(2025, 6, 1), timezone="Europe/Rome")
    trial = open_trial(lead, consent_approved=date(2025, 6, 1))
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    first, second = (enrol(coord, trial, site, consented_on=date(2026, 1, 10)) for _ in range(2))
    sentinel = coord.post(
        f"/subjects/{first['code']}/dosing",
        json={"dosed_at": "2026-03-20T08:00:00Z", "dose": "1e13", "lot_number": "L1"},
    )
    assert sentinel.status_code == 201
    assert sentinel.json["dosed_at_local"] == "2026-03-20 09:00 CET (Europe/Rome)"
    early = coord.post(
        f"/subjects/{second['code']}/dosing",
        json={"dosed_at": "2026-04-03T07:59:00Z", "dose": "1e13", "lot_number": "L1"},
    )
    assert early.status_code == 409
    assert early.json["detail"] == "next dosing allowed on 2026-04-03 10:00 CEST (Europe/Rome)"
    assert early.json["next_allowed_at"] == "2026-04-03T08:00:00+00:00"
    on_time = coord.post(
        f"/subjects/{second['code']}/dosing",
        json={"dosed_at": "2026-04-03T08:00:00Z", "dose": "1e13", "lot_number": "L1"},
    )
    assert on_time.status_code == 201


# --- long-term follow-up and RCR (item 17) -------------------------------------------


def test_rcr_tests_go_on_after_a_procedures_withdrawal_and_carry_a_result(api):
    w = world(api, vector_type="lentiviral")
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(200)).status_code == 201
    code = subject["code"]
    visits = _visits(w["coord"], code)
    assert visits["RCR pre-treatment sample"]["scheduled_on"] == days_ago(200).isoformat()
    w["coord"].post(
        f"/subjects/{code}/withdrawal",
        json={"withdrawn_on": days_ago(150).isoformat(), "kind": "procedures", "reason": "x" * 5},
    )
    visits = _visits(w["coord"], code)
    month6 = visits["RCR test month 6"]  # after the withdrawal: safety testing continues
    assert month6["status"] == "scheduled"
    no_result = w["coord"].patch(
        f"/visits/{month6['id']}",
        json={"status": "done", "done_on": month6["scheduled_on"], "reason": "visit entered"},
    )
    assert no_result.status_code == 422 and "result" in no_result.json["errors"]
    positive = w["coord"].patch(
        f"/visits/{month6['id']}",
        json={
            "status": "done",
            "done_on": month6["scheduled_on"],
            "result": "positive",
            "reason": "visit entered",
        },
    )
    assert positive.status_code == 200, positive.json
    assert positive.json["positive_rcr"] is True
    pre = w["coord"].patch(
        f"/visits/{visits['RCR pre-treatment sample']['id']}",
        json={
            "status": "done",
            "done_on": days_ago(205).isoformat(),
            "result": "negative",
            "reason": "visit entered",
        },
    )
    assert pre.status_code == 200, pre.json
    assert visits["Week 12"]["status"] == "cancelled"  # protocol visit after the withdrawal
    protocol_result = w["coord"].patch(
        f"/visits/{visits['Week 4']['id']}",
        json={
            "status": "done",
            "done_on": visits["Week 4"]["scheduled_on"],
            "result": "negative",
            "reason": "visit entered",
        },
    )
    assert protocol_result.status_code == 422


def test_pre_dose_visit_definitions_have_negative_study_days(api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01")
    trial = open_trial(lead, open_=False)
    resp = lead.post(
        f"/trials/{trial['id']}/visit-definitions",
        json={"name": "Baseline", "day": -7, "window_before": 7, "window_after": 0},
    )
    assert resp.status_code == 201
    lead.patch(f"/trials/{trial['id']}", json={"status": "open", "reason": "ready"})
    trial = lead.get(f"/trials/{trial['id']}").json
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    subject = enrol(coord, trial, site)
    assert dose(coord, subject, days_ago(50)).status_code == 201
    baseline = _visits(coord, subject["code"])["Baseline"]
    assert (baseline["day"], baseline["scheduled_on"]) == (-7, days_ago(57).isoformat())
    after = coord.patch(
        f"/visits/{baseline['id']}",
        json={"status": "done", "done_on": days_ago(49).isoformat(), "reason": "visit entered"},
    )
    assert after.status_code == 422
    ok = coord.patch(
        f"/visits/{baseline['id']}",
        json={"status": "done", "done_on": days_ago(55).isoformat(), "reason": "visit entered"},
    )
    assert ok.status_code == 200


# --- screening plausibility (item 18) ------------------------------------------------


def test_birth_year_after_screening_year_and_foreign_orphacode_are_422(api):
    w = world(api)
    body = {
        "trial_id": w["trial"]["id"],
        "site_id": w["site"]["id"],
        "screened_on": date(days_ago(400).year + 1, 1, 15).isoformat()
        if days_ago(30).year > days_ago(400).year
        else days_ago(30).isoformat(),
        "orphacode": 98879,
        "birth_year": 2015,
        "sex": "F",
    }
    screened_year = date.fromisoformat(body["screened_on"]).year
    late_birth = w["coord"].post("/screenings", json={**body, "birth_year": screened_year + 1})
    assert late_birth.status_code == 422 and "birth_year" in late_birth.json["errors"]
    other_disease = w["coord"].post("/screenings", json={**body, "orphacode": 558})
    assert other_disease.status_code == 422 and "orphacode" in other_disease.json["errors"]
    assert w["coord"].get("/screenings").json == []
    w["lead"].post(
        f"/trials/{w['trial']['id']}/amendments",
        json={
            "version": "A1",
            "effective_on": days_ago(1).isoformat(),
            "reason": "accept the mild form",
            "accepted_orphacodes": [558],
        },
    )
    assert w["coord"].post("/screenings", json={**body, "orphacode": 558}).status_code == 201


# --- administrators read site work but do not enter it (item 19) ----------------------


def test_admin_gets_403_on_every_site_work_operation_but_reads(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(50)).status_code == 201
    admin = api.as_role("admin")
    code = subject["code"]
    visit = next(iter(_visits(w["coord"], code).values()))
    writes = [
        (
            "post",
            "/screenings",
            {
                "trial_id": w["trial"]["id"],
                "site_id": w["site"]["id"],
                "screened_on": days_ago(1).isoformat(),
                "orphacode": 98879,
                "birth_year": 2015,
                "sex": "M",
            },
        ),
        ("patch", f"/screenings/{subject['screening_id']}", {"reason": "fix"}),
        ("post", "/subjects", {"screening_id": 1, "cohort_id": 1}),
        (
            "post",
            f"/subjects/{code}/consents",
            {"consent_version_id": 1, "consented_on": "2026-01-01"},
        ),
        (
            "post",
            f"/subjects/{code}/dosing",
            {"dosed_at": at(days_ago(1)), "dose": "1e13", "lot_number": "L"},
        ),
        ("patch", f"/visits/{visit['id']}", {"status": "missed", "reason": "x" * 3}),
        ("post", f"/subjects/{code}/withdrawal", {"withdrawn_on": "2026-01-01", "reason": "xyz"}),
        ("post", f"/subjects/{code}/end", {"status": "died", "on": "2026-01-01", "reason": "xyz"}),
        ("post", f"/subjects/{code}/reinstate", {"on": "2026-01-01", "reason": "xyz"}),
    ]
    for method, path, body in writes:
        resp = getattr(admin, method)(path, json=body)
        assert resp.status_code == 403, (path, resp.status_code)
    for path in (f"/subjects/{code}", f"/subjects/{code}/visits", "/screenings", "/visits/due"):
        assert admin.get(path).status_code == 200, path


# --- early window edge, code collisions --------------------------------------------------


def test_the_early_edge_of_a_window_is_in_window(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(100)).status_code == 201
    visits = _visits(w["coord"], subject["code"])
    week4, day7 = visits["Week 4"], visits["Day 7"]
    edge = w["coord"].patch(
        f"/visits/{week4['id']}",
        json={"status": "done", "done_on": week4["window_start"], "reason": "visit entered"},
    )
    assert edge.status_code == 200
    before = (date.fromisoformat(day7["window_start"]) - timedelta(days=1)).isoformat()
    early = w["coord"].patch(
        f"/visits/{day7['id']}",
        json={"status": "done", "done_on": before, "reason": "visit entered"},
    )
    assert early.status_code == 200
    deviations = w["coord"].get(f"/subjects/{subject['code']}/deviations").json
    assert [(d["visit_id"], d["kind"]) for d in deviations] == [(day7["id"], "visit_out_of_window")]
    assert "1 day(s) early" in deviations[0]["description"]


def test_a_drawn_code_already_taken_is_drawn_again(api, monkeypatch):
    from trialmgr.enrollment.services import subjects as subjects_service

    w = world(api)
    first = enrol(w["coord"], w["trial"], w["site"])
    taken = first["code"].split("-", 1)[1]
    draws = iter(list(taken) + list("ZZZZZ"))
    monkeypatch.setattr(subjects_service.secrets, "choice", lambda alphabet: next(draws))
    second = enrol(w["coord"], w["trial"], w["site"])
    assert second["code"] == "S01-ZZZZZ"


# --- site-local dates around midnight (item 3, enrolment side) ----------------------------


def _service_world(app, api, zone):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "TZ1", activated_on=date(2025, 6, 1), timezone=zone)
    trial = open_trial(lead, consent_approved=date(2025, 6, 1), stagger_days=0)
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    screening = eligible_screening(coord, trial, site, screened_on=date(2026, 5, 20))
    return coord, trial, site, screening


def _enrol_at(app, coord, trial, screening, enrolled_on, now):
    from trialmgr.auth.models import User
    from trialmgr.enrollment.services import subjects as subjects_service
    from trialmgr.errors import Problem
    from trialmgr.extensions import db

    with app.app_context():
        actor = db.session.get(User, coord.user["id"])
        try:
            subject = subjects_service.enrol(
                actor,
                {
                    "screening_id": screening["id"],
                    "cohort_id": trial["cohorts"][0]["id"],
                    "consent_version_id": trial["consent_versions"][0]["id"],
                    "consented_on": date(2026, 5, 21),
                    "enrolled_on": enrolled_on,
                },
                now,
            )
            db.session.commit()
            return subject.code
        except Problem as exc:
            db.session.rollback()
            return exc


def test_a_tokyo_site_enters_its_today_just_after_its_midnight(app, api):
    coord, trial, _site, screening = _service_world(app, api, "Asia/Tokyo")
    now = datetime(2026, 5, 31, 15, 30, tzinfo=UTC)  # 00:30 on 1 June in Tokyo
    assert isinstance(_enrol_at(app, coord, trial, screening, date(2026, 6, 1), now), str)


def test_a_los_angeles_site_cannot_enter_tomorrow_in_its_evening(app, api):
    coord, trial, _site, screening = _service_world(app, api, "America/Los_Angeles")
    now = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)  # 20:00 on 31 May in Los Angeles
    refused = _enrol_at(app, coord, trial, screening, date(2026, 6, 1), now)
    assert getattr(refused, "status", None) == 422 and "enrolled_on" in refused.errors
    assert isinstance(_enrol_at(app, coord, trial, screening, date(2026, 5, 31), now), str)


def test_study_day_zero_is_the_sites_local_day_of_dosing(api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "TYO", activated_on=date(2025, 6, 1), timezone="Asia/Tokyo")
    trial = open_trial(lead, consent_approved=date(2025, 6, 1))
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    subject = enrol(coord, trial, site, consented_on=date(2026, 5, 1))
    resp = coord.post(
        f"/subjects/{subject['code']}/dosing",
        json={"dosed_at": "2026-06-01T15:30:00Z", "dose": "1e13", "lot_number": "L1"},
    )
    assert resp.status_code == 201
    assert resp.json["dosed_at_local"] == "2026-06-02 00:30 JST (Asia/Tokyo)"
    assert _visits(coord, subject["code"])["Day 7"]["scheduled_on"] == "2026-06-09"


def test_an_approval_lapse_mid_trial_stops_enrolment_and_dosing_not_follow_up(api):
    """The IRB in force is withdrawn 10 days ago: new subjects and dosings dated after it
    are refused (naming the operation), earlier dosings entered late are accepted, and the
    visits of subjects already dosed go on."""
    w = world(api, stagger_days=0)
    coord, lead = w["coord"], w["lead"]
    followed = enrol(coord, w["trial"], w["site"])
    assert dose(coord, followed, days_ago(60)).status_code == 201
    waiting = enrol(coord, w["trial"], w["site"])
    late_entry = enrol(coord, w["trial"], w["site"])
    screening = eligible_screening(coord, w["trial"], w["site"], screened_on=days_ago(20))
    irb = next(
        a for a in lead.get(f"/sites/{w['site']['id']}/approvals").json if a["kind"] == "irb"
    )
    withdrawn = lead.patch(
        f"/approvals/{irb['id']}",
        json={"withdrawn_on": days_ago(10).isoformat(), "reason": "EC suspended the approval"},
    )
    assert withdrawn.status_code == 200
    enrolment = coord.post(
        "/subjects",
        json={
            "screening_id": screening["id"],
            "cohort_id": w["trial"]["cohorts"][0]["id"],
            "consent_version_id": w["trial"]["consent_versions"][0]["id"],
            "consented_on": days_ago(20).isoformat(),
            "enrolled_on": days_ago(15).isoformat(),
        },
    )
    assert enrolment.status_code == 409 and enrolment.json["detail"].startswith("Enrolment")
    refused = dose(coord, waiting, days_ago(5))
    assert refused.status_code == 409 and refused.json["detail"].startswith("Dosing")
    assert dose(coord, late_entry, days_ago(30)).status_code == 201  # done while open
    week4 = _visits(coord, followed["code"])["Week 4"]
    visit = coord.patch(
        f"/visits/{week4['id']}",
        json={"status": "done", "done_on": week4["scheduled_on"], "reason": "entered late"},
    )
    assert visit.status_code == 200
    blocked_screening = coord.post(
        "/screenings",
        json={
            "trial_id": w["trial"]["id"],
            "site_id": w["site"]["id"],
            "screened_on": days_ago(1).isoformat(),
            "orphacode": 98879,
            "birth_year": 2015,
            "sex": "M",
        },
    )
    assert blocked_screening.status_code == 409
    assert blocked_screening.json["detail"].startswith("Screening not allowed")
    blocked_screening = coord.post(
        "/screenings",
        json={
            "trial_id": w["trial"]["id"],
            "site_id": w["site"]["id"],
            "screened_on": days_ago(1).isoformat(),
            "orphacode": 98879,
            "birth_year": 2015,
            "sex": "M",
        },
    )
    assert blocked_screening.status_code == 409
    assert blocked_screening.json["detail"].startswith("Screening not allowed")
