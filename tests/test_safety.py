"""Safety events (issue 11): adverse events with versions and reviews, expedited clocks,
lab grading through the API, automatic stopping rules, the work queue, notifications."""

import threading
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from tests.builders import active_site, at, days_ago, dose, enrol, open_trial, world
from tests.factories import PASSWORD
from trialmgr.extensions import db


@pytest.fixture()
def dosed(api):
    """An open trial with a subject at S01 dosed 60 days ago."""
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(60)).status_code == 201
    return {**w, "subject": subject, "monitor": api.as_role("safety_monitor")}


def _ae(coord, subject, **fields):
    body = {
        "subject_code": subject["code"],
        "term": "ALT increased",
        "soc": "Investigations",
        "onset_date": days_ago(10).isoformat(),
        "grade": 2,
        "causality": "possible",
        "expected": False,
        "site_awareness_at": at(days_ago(9)),
        **fields,
    }
    return coord.post("/adverse-events", json=body)


def _clocks(resp):
    return {(r["authority"], r["kind"]): r for r in resp.json["expedited_reports"]}


# --- seriousness, SUSAR -------------------------------------------------------------


def test_seriousness_follows_its_criteria_and_susar_is_derived(dosed):
    coord, subject = dosed["coord"], dosed["subject"]
    mild = _ae(coord, subject)
    assert mild.status_code == 201, mild.json
    assert (mild.json["serious"], mild.json["suspected"], mild.json["susar"]) == (
        False,
        True,
        False,
    )
    assert mild.json["expedited_reports"] == []
    sae = _ae(coord, subject, seriousness_criteria=["hospitalisation"], grade=3)
    assert (sae.json["serious"], sae.json["susar"]) == (True, True)
    contradiction = _ae(coord, subject, serious=True)
    assert contradiction.status_code == 422 and "serious" in contradiction.json["errors"]
    unrelated = _ae(coord, subject, seriousness_criteria=["hospitalisation"], causality="unlikely")
    assert (unrelated.json["serious"], unrelated.json["susar"]) == (True, False)
    assert set(_clocks(unrelated)) == {("sponsor", "initial")}


def test_bad_adverse_events_are_422_and_nothing_is_written(dosed):
    coord, subject = dosed["coord"], dosed["subject"]
    for fields in (
        {"onset_date": days_ago(-1).isoformat()},
        {"grade": 6},
        {"causality": "maybe"},
        {"aesi": True},  # AESI without its category
        {"grade": 5},  # fatal without the date of death
        {"resolution_date": days_ago(20).isoformat()},  # before the onset
        {"site_awareness_at": at(days_ago(30))},  # aware before the onset
        {"seriousness_criteria": ["bad_luck"]},
    ):
        resp = _ae(coord, subject, **fields)
        assert resp.status_code == 422, (fields, resp.json)
    assert coord.get("/adverse-events").json == []


# --- expedited clocks ------------------------------------------------------------------


def _fixed_world(api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01", activated_on=date(2025, 6, 1), timezone="Europe/Rome")
    trial = open_trial(lead, consent_approved=date(2025, 6, 1))
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    subject = enrol(coord, trial, site, consented_on=date(2026, 1, 5))
    assert (
        coord.post(
            f"/subjects/{subject['code']}/dosing",
            json={"dosed_at": "2026-01-20T09:00:00Z", "dose": "1e13", "lot_number": "L1"},
        ).status_code
        == 201
    )
    return {"lead": lead, "site": site, "trial": trial, "coord": coord, "subject": subject}


def test_susar_clocks_from_the_awareness_date(api):
    w = _fixed_world(api)
    resp = _ae(
        w["coord"],
        w["subject"],
        onset_date="2026-03-01",
        seriousness_criteria=["hospitalisation"],
        grade=3,
        site_awareness_at="2026-03-02T08:00:00Z",
    )
    assert resp.status_code == 201, resp.json
    clocks = _clocks(resp)
    assert set(clocks) == {
        ("sponsor", "initial"),
        ("FDA", "initial"),
        ("EU", "initial"),
        ("IBC", "initial"),
    }
    assert clocks["sponsor", "initial"]["due_at"] == "2026-03-03T08:00:00+00:00"  # 24 hours
    fda_due = clocks["FDA", "initial"]["due_at"]
    assert fda_due.startswith("2026-03-17T22:59:59")  # end of 17 March in Rome (CET)
    assert clocks["FDA", "initial"]["overdue"] is True  # long past, not submitted


def test_fatal_or_life_threatening_susar_is_seven_days_and_eu_follow_up(api):
    w = _fixed_world(api)
    resp = _ae(
        w["coord"],
        w["subject"],
        onset_date="2026-03-01",
        seriousness_criteria=["life_threatening"],
        grade=4,
        site_awareness_at="2026-03-02T08:00:00Z",
    )
    clocks = _clocks(resp)
    assert clocks["FDA", "initial"]["due_at"].startswith("2026-03-09T")
    assert clocks["EU", "initial"]["due_at"].startswith("2026-03-09T")
    assert clocks["EU", "follow_up"]["due_at"].startswith("2026-03-17T")


def test_an_event_upgraded_to_serious_opens_its_clocks_from_the_upgrade(api):
    w = _fixed_world(api)
    first = _ae(
        w["coord"], w["subject"], onset_date="2026-03-01", site_awareness_at="2026-03-02T08:00:00Z"
    )
    assert first.json["expedited_reports"] == []
    upgraded = w["coord"].patch(
        f"/adverse-events/{first.json['id']}",
        json={
            "seriousness_criteria": ["hospitalisation"],
            "awareness_at": "2026-03-10T10:00:00Z",
            "reason": "admitted to hospital on day 9",
        },
    )
    assert upgraded.status_code == 200, upgraded.json
    assert upgraded.json["version"] == 2
    clocks = _clocks(upgraded)
    assert clocks["FDA", "initial"]["clock_start"] == "2026-03-10T10:00:00+00:00"
    assert clocks["FDA", "initial"]["due_at"].startswith("2026-03-25T")


def test_a_late_submission_is_recorded_as_late(api):
    w = _fixed_world(api)
    monitor = api.as_role("safety_monitor")
    resp = _ae(
        w["coord"],
        w["subject"],
        onset_date="2026-03-01",
        seriousness_criteria=["hospitalisation"],
        site_awareness_at="2026-03-02T08:00:00Z",
    )
    clocks = _clocks(resp)
    on_time = monitor.patch(
        f"/expedited-reports/{clocks['FDA', 'initial']['id']}",
        json={"submitted_at": "2026-03-16T12:00:00Z", "reference": "FDA-IND-0001"},
    )
    assert on_time.status_code == 200 and on_time.json["late"] is False
    late = monitor.patch(
        f"/expedited-reports/{clocks['EU', 'initial']['id']}",
        json={"submitted_at": "2026-03-20T12:00:00Z", "reference": "EV-0002"},
    )
    assert late.json["late"] is True and late.json["status"] == "submitted"
    assert (
        w["coord"]
        .patch(
            f"/expedited-reports/{clocks['IBC', 'initial']['id']}",
            json={"submitted_at": "2026-03-20T12:00:00Z", "reference": "x"},
        )
        .status_code
        == 403
    )
    listed = monitor.get("/expedited-reports?status=submitted").json
    assert {r["authority"] for r in listed} == {"FDA", "EU"}
    overdue = monitor.get("/expedited-reports?status=overdue").json
    assert {r["authority"] for r in overdue} == {"sponsor", "IBC"}


def test_reporting_table_defaults_and_admin_edits(dosed):
    tid = dosed["trial"]["id"]
    rules = dosed["lead"].get(f"/trials/{tid}/expedited-rules").json
    fda15 = next(r for r in rules if (r["authority"], r["condition"]) == ("FDA", "susar_other"))
    assert fda15["deadline_days"] == 15
    lead_edit = dosed["lead"].patch(
        f"/expedited-rules/{fda15['id']}", json={"deadline_days": 10, "reason": "stricter"}
    )
    assert lead_edit.status_code == 403
    admin = dosed["lead"].__class__(dosed["lead"].app).as_role("admin")
    edited = admin.patch(
        f"/expedited-rules/{fda15['id']}", json={"deadline_days": 10, "reason": "stricter SOP"}
    )
    assert edited.status_code == 200 and edited.json["deadline_days"] == 10


# --- stopping rules and the pause ---------------------------------------------------------


def test_grade_4_related_event_pauses_the_trial_in_the_same_request(app, api, dosed):
    coord, subject, monitor, lead = (
        dosed["coord"],
        dosed["subject"],
        dosed["monitor"],
        dosed["lead"],
    )
    tid = dosed["trial"]["id"]
    waiting = enrol(coord, dosed["trial"], dosed["site"])
    resp = _ae(coord, subject, grade=4, seriousness_criteria=["life_threatening"])
    assert resp.status_code == 201
    trial = lead.get(f"/trials/{tid}").json
    assert trial["status"] == "paused" and "grade 4" in trial["paused_reason"]
    blocked = dose(coord, waiting, days_ago(1))
    assert blocked.status_code == 409 and blocked.json["title"] == "Trial paused"
    refused = coord.post(f"/trials/{tid}/resume", json={"reason": "fine", "password": PASSWORD})
    assert refused.status_code == 403
    resumed = monitor.post(
        f"/trials/{tid}/resume", json={"reason": "DSMB reviewed the case", "password": PASSWORD}
    )
    assert resumed.status_code == 200 and resumed.json["status"] == "open"
    actions = [e["action"] for e in lead.get("/audit?entity=trial").json]
    assert "trial.pause" in actions and "trial.resume" in actions
    firings = lead.get(f"/trials/{tid}/stopping-rule-firings").json
    assert [f["triggers"] for f in firings] == [[f"ae:{resp.json['id']}"]]
    # the same event edited later does not fire the rule again
    coord.patch(
        f"/adverse-events/{resp.json['id']}",
        json={"narrative": "ICU 2 days", "reason": "follow-up"},
    )
    assert lead.get(f"/trials/{tid}").json["status"] == "open"


def test_two_grade_3_related_events_of_one_soc_in_a_cohort_pause(dosed):
    coord, subject, lead = dosed["coord"], dosed["subject"], dosed["lead"]
    tid = dosed["trial"]["id"]
    _ae(coord, subject, grade=3, soc="Hepatobiliary disorders", term="Hepatitis")
    assert lead.get(f"/trials/{tid}").json["status"] == "open"
    _ae(coord, subject, grade=3, soc="hepatobiliary disorders ", term="Jaundice")
    assert lead.get(f"/trials/{tid}").json["status"] == "paused"


def test_a_rule_firing_while_paused_adds_its_reason_to_the_open_pause(dosed):
    coord, subject, monitor, lead = (
        dosed["coord"],
        dosed["subject"],
        dosed["monitor"],
        dosed["lead"],
    )
    tid = dosed["trial"]["id"]
    assert monitor.post(f"/trials/{tid}/pause", json={"reason": "DSMB meeting"}).status_code == 200
    resp = _ae(coord, subject, grade=4, seriousness_criteria=["life_threatening"])
    assert resp.status_code == 201  # an AE write never fails because the trial is paused
    pauses = lead.get(f"/trials/{tid}/pauses").json
    assert len([p for p in pauses if p["resumed_at"] is None]) == 1
    assert "DSMB meeting" in pauses[0]["reason"] and "grade 4" in pauses[0]["reason"]


def test_parallel_event_writes_leave_one_pause_with_every_reason(app, api, dosed):
    coord, lead = dosed["coord"], dosed["lead"]
    tid = dosed["trial"]["id"]
    other = enrol(coord, dosed["trial"], dosed["site"], consented_on=days_ago(200))
    bodies = [
        {"subject": dosed["subject"], "term": "Liver failure", "soc": "Hepatobiliary disorders"},
        {"subject": other, "term": "Myocarditis", "soc": "Cardiac disorders"},
    ]
    barrier = threading.Barrier(len(bodies))
    statuses = []

    def run(body):
        client = coord.__class__(coord.app, coord.token, coord.user)
        barrier.wait()
        resp = _ae(
            client,
            body["subject"],
            term=body["term"],
            soc=body["soc"],
            grade=4,
            seriousness_criteria=["life_threatening"],
        )
        statuses.append(resp.status_code)

    threads = [threading.Thread(target=run, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201, 201]
    pauses = [p for p in lead.get(f"/trials/{tid}/pauses").json if p["resumed_at"] is None]
    assert len(pauses) == 1
    assert len(lead.get(f"/trials/{tid}/stopping-rule-firings").json) == 2
    assert pauses[0]["reason"].count("Stopping rule fired") == 2


def test_stopping_rules_are_typed_and_editable_by_managers(dosed):
    tid, lead, coord = dosed["trial"]["id"], dosed["lead"], dosed["coord"]
    rules = lead.get(f"/trials/{tid}/stopping-rules").json
    assert {r["kind"] for r in rules} == {
        "death_related",
        "grade4_related",
        "same_soc_grade3",
        "hys_law",
        "tma_aesi",
    }
    bad = lead.post(
        f"/trials/{tid}/stopping-rules", json={"kind": "same_soc_grade3", "params": {"count": 1}}
    )
    assert bad.status_code == 422
    code = lead.post(f"/trials/{tid}/stopping-rules", json={"kind": "eval", "params": {}})
    assert code.status_code == 422
    off = lead.post(
        f"/trials/{tid}/stopping-rules",
        json={"kind": "grade4_related", "active": False, "reason": "charter v2"},
    )
    assert off.status_code == 201 and off.json["active"] is False
    assert coord.post(f"/trials/{tid}/stopping-rules", json={"kind": "hys_law"}).status_code == 403
    _ae(coord, dosed["subject"], grade=4, seriousness_criteria=["life_threatening"])
    assert lead.get(f"/trials/{tid}").json["status"] == "open"


# --- grade 5: the death is recorded on the subject ------------------------------------


def test_grade_5_records_the_death_and_cancels_only_later_visits(dosed):
    coord, subject = dosed["coord"], dosed["subject"]
    resp = _ae(
        coord,
        subject,
        grade=5,
        causality="unrelated",
        onset_date=days_ago(20).isoformat(),
        resolution_date=days_ago(15).isoformat(),
        site_awareness_at=at(days_ago(14)),
    )
    assert resp.status_code == 201, resp.json
    assert "death" in resp.json["seriousness_criteria"] and resp.json["outcome"] == "fatal"
    after = coord.get(f"/subjects/{subject['code']}").json
    assert (after["status"], after["ended_on"]) == ("died", days_ago(15).isoformat())
    visits = {v["name"]: v for v in coord.get(f"/subjects/{subject['code']}/visits").json}
    assert visits["Week 4"]["status"] == "scheduled"  # day 28 = 32 days ago: before death
    assert visits["Week 12"]["status"] == "cancelled"
    tasks = {t["kind"] for t in coord.get("/work-items").json}
    assert "death_report" in tasks


# --- versions and signed medical review --------------------------------------------------


def test_edits_add_versions_and_make_the_review_outdated(dosed):
    coord, subject, monitor = dosed["coord"], dosed["subject"], dosed["monitor"]
    ae = _ae(coord, subject).json
    wrong_pw = monitor.post(
        f"/adverse-events/{ae['id']}/reviews", json={"version": 1, "password": "nope-nope"}
    )
    assert wrong_pw.status_code == 422
    signed = monitor.post(
        f"/adverse-events/{ae['id']}/reviews",
        json={"version": 1, "comment": "plausible", "password": PASSWORD},
    )
    assert signed.status_code == 201 and signed.json["signature_meaning"].startswith("I have")
    assert coord.get(f"/adverse-events/{ae['id']}").json["review"] == "reviewed"
    no_reason = coord.patch(f"/adverse-events/{ae['id']}", json={"grade": 3})
    assert no_reason.status_code == 422
    edited = coord.patch(f"/adverse-events/{ae['id']}", json={"grade": 3, "reason": "worsened"})
    assert edited.json["version"] == 2 and edited.json["review"] == "outdated"
    stale = monitor.post(
        f"/adverse-events/{ae['id']}/reviews", json={"version": 1, "password": PASSWORD}
    )
    assert stale.status_code == 409
    versions = coord.get(f"/adverse-events/{ae['id']}/versions").json
    assert [(v["version"], v["data"]["grade"], v["reason"]) for v in versions] == [
        (1, 2, None),
        (2, 3, "worsened"),
    ]
    assert (
        coord.post(
            f"/adverse-events/{ae['id']}/reviews", json={"version": 2, "password": PASSWORD}
        ).status_code
        == 403
    )


# --- the work queue --------------------------------------------------------------------------


def test_a_serious_event_opens_its_tasks_and_the_records_close_them(dosed):
    coord, subject, monitor = dosed["coord"], dosed["subject"], dosed["monitor"]
    ae = _ae(coord, subject, seriousness_criteria=["hospitalisation"], grade=3).json
    mine = {t["kind"]: t for t in coord.get("/work-items").json}
    assert set(mine) == {"follow_up_report"}
    assert (
        mine["follow_up_report"]["due_on"] == (date.today() + timedelta(days=7)).isoformat()
        or mine["follow_up_report"]["due_on"]
    )
    theirs = {t["kind"] for t in monitor.get("/work-items").json}
    assert {"medical_review", "expedited_submission"} <= theirs
    coord.patch(
        f"/adverse-events/{ae['id']}",
        json={"narrative": "discharged day 4", "reason": "follow-up report"},
    )
    assert {t["kind"] for t in coord.get("/work-items").json} == {"follow_up_report"}  # next one
    monitor.post(f"/adverse-events/{ae['id']}/reviews", json={"version": 2, "password": PASSWORD})
    assert "medical_review" not in {t["kind"] for t in monitor.get("/work-items").json}
    for clock in monitor.get(f"/expedited-reports?adverse_event_id={ae['id']}").json:
        monitor.patch(
            f"/expedited-reports/{clock['id']}",
            json={"submitted_at": at(days_ago(0), 0), "reference": "R1"},
        )
    assert "expedited_submission" not in {t["kind"] for t in monitor.get("/work-items").json}


def test_tasks_and_events_are_scoped_to_the_coordinators_sites(api, dosed):
    coord, subject = dosed["coord"], dosed["subject"]
    ae = _ae(coord, subject, seriousness_criteria=["hospitalisation"]).json
    other_site = active_site(dosed["lead"], "S02")
    stranger = api.as_role("coordinator", site_ids=[other_site["id"]])
    assert stranger.get(f"/adverse-events/{ae['id']}").status_code == 404
    assert stranger.get("/adverse-events").json == []
    assert stranger.get("/work-items").json == []
    assert stranger.get("/expedited-reports").json == []
    assert _ae(stranger, subject).status_code == 404
    assert (
        stranger.patch(
            f"/adverse-events/{ae['id']}", json={"grade": 3, "reason": "not mine"}
        ).status_code
        == 404
    )


# --- labs through the API --------------------------------------------------------------------


def _lab(coord, subject, analyte, value, unit, collected=None, **limits):
    return coord.post(
        "/labs",
        json={
            "subject_code": subject["code"],
            "analyte": analyte,
            "value": value,
            "unit": unit,
            "collected_at": collected or at(days_ago(5), 7),
            **limits,
        },
    )


def test_labs_are_graded_and_a_grade_3_opens_a_task(dosed):
    coord, subject = dosed["coord"], dosed["subject"]
    g1 = _lab(coord, subject, "ALT", 120, "U/L", uln=40)
    assert g1.status_code == 201 and g1.json["grade"] == 1
    assert _lab(coord, subject, "ALT", 121, "U/L", uln=40).json["grade"] == 2
    plt = _lab(coord, subject, "PLT", 24900, "/mm3", lln=150)
    assert (plt.json["grade"], plt.json["canonical_unit"]) == (4, "10^9/L")
    bad_unit = _lab(coord, subject, "ALT", 1, "mg/dL", uln=40)
    assert bad_unit.status_code == 422 and "unit" in bad_unit.json["errors"]
    no_uln = _lab(coord, subject, "BILI", 3, "mg/dL")
    assert no_uln.status_code == 422 and "uln" in no_uln.json["errors"]
    tasks = [t for t in coord.get("/work-items").json if t["kind"] == "lab_ae"]
    assert len(tasks) == 1 and tasks[0]["prefill"]["grade"] == 4
    preview = coord.get("/labs/grade?analyte=HGB&value=79&unit=g/L&lln=120")
    assert preview.status_code == 200 and preview.json["grade"] == 3
    # recording the AE from the task closes it and links the lab
    ae = _ae(
        coord,
        subject,
        term="Platelet count decreased",
        grade=4,
        onset_date=days_ago(5).isoformat(),
        site_awareness_at=at(days_ago(5), 12),
        task_id=tasks[0]["id"],
        lab_result_id=plt.json["id"],
        causality="unlikely",
    )
    assert ae.status_code == 201, ae.json
    assert not [t for t in coord.get("/work-items").json if t["kind"] == "lab_ae"]
    assert (
        coord.get(f"/labs?subject_code={subject['code']}&min_grade=4").json[0]["adverse_event_id"]
        == ae.json["id"]
    )


def test_a_lab_report_may_give_both_limits_for_an_analyte_graded_on_thresholds(dosed):
    coord, subject = dosed["coord"], dosed["subject"]
    plt = _lab(coord, subject, "PLT", 24.9, "10^9/L", lln=150, uln=400)
    assert plt.status_code == 201, plt.json
    assert (plt.json["grade"], float(plt.json["uln"]), plt.json["uln_multiple"]) == (4, 400, None)


def test_hys_law_at_one_draw_pauses_the_trial(dosed):
    coord, subject, lead = dosed["coord"], dosed["subject"], dosed["lead"]
    draw = at(days_ago(3), 6)
    _lab(coord, subject, "ALT", 130, "U/L", draw, uln=40)  # 3.25x ULN
    assert lead.get(f"/trials/{dosed['trial']['id']}").json["status"] == "open"
    bili = _lab(coord, subject, "BILI", 43, "umol/L", draw, uln=21)  # 2.05x ULN
    assert bili.status_code == 201 and bili.json["hys_law"] is True
    trial = lead.get(f"/trials/{dosed['trial']['id']}").json
    assert trial["status"] == "paused" and "Hy's law" in trial["paused_reason"]


# --- LTFU answers and RCR results ----------------------------------------------------------


def test_a_positive_rcr_result_opens_a_serious_event_task(api):
    w = world(api, vector_type="lentiviral")
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(200)).status_code == 201
    visits = {v["name"]: v for v in w["coord"].get(f"/subjects/{subject['code']}/visits").json}
    month3 = visits["RCR test month 3"]
    w["coord"].patch(
        f"/visits/{month3['id']}",
        json={
            "status": "done",
            "done_on": month3["scheduled_on"],
            "result": "positive",
            "reason": "result received",
        },
    )
    (task,) = [t for t in w["coord"].get("/work-items").json if t["kind"] == "record_ae"]
    assert task["prefill"]["seriousness_criteria"] == ["important_medical_event"]
    ae = _ae(
        w["coord"],
        subject,
        **{k: v for k, v in task["prefill"].items() if k != "source_visit_id"},
        source_visit_id=month3["id"],
        task_id=task["id"],
        grade=2,
    )
    assert ae.status_code == 201, ae.json
    assert ae.json["serious"] and ae.json["susar"]
    assert {r["authority"] for r in ae.json["expedited_reports"]} >= {"sponsor", "FDA"}


def test_an_ltfu_yes_opens_a_prefilled_adverse_event_task(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"], consented_on=days_ago(399))
    assert dose(w["coord"], subject, days_ago(398)).status_code == 201
    visits = {v["name"]: v for v in w["coord"].get(f"/subjects/{subject['code']}/visits").json}
    year1 = visits["LTFU year 1 visit"]
    answers = {
        "new_malignancy": False,
        "neurological": True,
        "autoimmune": False,
        "haematological": False,
    }
    resp = w["coord"].patch(
        f"/visits/{year1['id']}",
        json={
            "status": "done",
            "done_on": year1["scheduled_on"],
            "answers": answers,
            "reason": "yearly call",
        },
    )
    assert resp.status_code == 200
    tasks = [t for t in w["coord"].get("/work-items").json if t["kind"] == "record_ae"]
    assert len(tasks) == 1
    assert tasks[0]["prefill"]["aesi_category"] == "neurological"


# --- notifications and mail -------------------------------------------------------------------


def test_a_firing_notifies_monitors_and_leads_in_app_and_by_mail(app_factory, api, smtp_server):
    from tests.factories import ApiClient

    port, inbox = smtp_server
    app = app_factory(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_DEFAULT_SENDER="tm@example.org")
    mailed_api = ApiClient(app)
    w = world(mailed_api)
    monitor = mailed_api.as_role("safety_monitor")
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(30)).status_code == 201
    assert (
        _ae(w["coord"], subject, grade=4, seriousness_criteria=["life_threatening"]).status_code
        == 201
    )
    unread = monitor.get("/notifications?unread=true").json
    assert len(unread) == 1 and "paused" in unread[0]["title"]
    assert w["lead"].get("/notifications").json[0]["kind"] == "stopping_rule"
    assert w["coord"].get("/notifications").json == []
    messages = inbox.wait(2)
    assert {m.rcpt_tos[0] for m in messages} == {monitor.user["email"], w["lead"].user["email"]}
    assert "paused" in messages[0].content.decode()
    read = monitor.post(f"/notifications/{unread[0]['id']}/read")
    assert read.status_code == 200 and read.json["read_at"]
    with app.app_context():
        from trialmgr.safety.models import Notification

        assert (
            db.session.execute(sa.select(sa.func.count()).select_from(Notification)).scalar_one()
            == 2
        )


# --- the MedDRA dictionary --------------------------------------------------------------------


def test_meddra_dictionary_import_and_lookup(api, dosed):
    admin = api.as_role("admin")
    csv_text = (
        "pt_code,pt_term,soc,soc_code\n"
        "10001551,Alanine aminotransferase increased,Investigations,10022891\n"
    )
    upload = admin.client.post(
        "/api/v1/meddra/import",
        data={"file": (__import__("io").BytesIO(csv_text.encode("utf-8-sig")), "meddra.csv")},
        headers={"Authorization": f"Bearer {admin.token}"},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 200 and upload.json == {"added": 1, "updated": 0, "rows": 1}
    found = dosed["coord"].get("/meddra?q=alanine").json
    assert found[0]["pt_code"] == "10001551"
    ae = _ae(dosed["coord"], dosed["subject"], pt_code="10001551", soc="")
    assert ae.status_code == 201, ae.json
    assert (ae.json["pt_term"], ae.json["soc"]) == (
        "Alanine aminotransferase increased",
        "Investigations",
    )
    assert (
        dosed["coord"]
        .client.post(
            "/api/v1/meddra/import", headers={"Authorization": f"Bearer {dosed['coord'].token}"}
        )
        .status_code
        == 403
    )


# --- the write path's cost (issue 16) -------------------------------------------------------


def test_the_answer_to_a_new_event_is_what_reading_it_back_shows(dosed):
    """A new event's answer shows its clocks and review state without querying for them;
    it is exactly what a GET shows afterwards (UTC times included)."""
    coord, subject = dosed["coord"], dosed["subject"]
    for fields in ({}, {"seriousness_criteria": ["hospitalisation"], "grade": 3}):
        created = _ae(coord, subject, **fields)
        assert created.status_code == 201, created.json
        again = coord.get(f"/adverse-events/{created.json['id']}").json
        assert created.json["expedited_reports"] == again["expedited_reports"]
        assert created.json["review"] == again["review"] == "unreviewed"
    assert len(created.json["expedited_reports"]) == 4


def test_recording_a_mild_event_runs_a_fixed_handful_of_statements(app, dosed):
    """Token, user and the user's sites in one statement, the subject with its site, the
    event, its version and its tasks in one flush, no queries for the clocks and reviews a
    new event cannot have yet: 8 statements (and on SQLite the BEGIN of the token's read
    transaction and the BEGIN IMMEDIATE of the write)."""
    from tests.test_query_counts import counted

    coord, subject = dosed["coord"], dosed["subject"]
    _ae(coord, subject)  # the trial's rules are seeded on its first event
    with counted(app) as statements:
        assert _ae(coord, subject).status_code == 201
    issued = [s for s in statements if not s.startswith("BEGIN")]
    assert len(issued) <= 8, "\n".join(issued)


def test_the_stopping_rules_read_the_trials_records_once_for_all_rules(app, dosed):
    """A severe event runs every active rule an event can fire: the rules, the trial's
    severe events and what the rules already fired on are each read once, however many
    rules there are; the Hy's law labs (which only a lab write can add to) are not read."""
    from tests.test_query_counts import counted

    coord, subject = dosed["coord"], dosed["subject"]
    severe = {"grade": 3, "causality": "unrelated"}  # fires no rule
    assert _ae(coord, subject, **severe).status_code == 201  # seeds the trial's rules
    with counted(app) as statements:
        assert _ae(coord, subject, **severe).status_code == 201
    reads = [" ".join(s.split()) for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert sum(" FROM stopping_rule WHERE" in s for s in reads) == 1, reads
    assert sum(" FROM stopping_rule_firing WHERE" in s for s in reads) == 1, reads
    assert sum(" FROM adverse_event WHERE" in s and "grade >=" in s for s in reads) == 1, reads
    assert not [s for s in reads if " FROM lab_result" in s]


# --- the write path: the token is read before the write lock (decision 0023) ----------


def test_sqlite_a_write_reads_its_token_before_it_takes_the_write_lock(app, dosed):
    """SQLite: the bearer token (and its user and sites) is read in a read transaction of its
    own, committed before the request's write transaction begins IMMEDIATE; everything the
    service reads and writes runs under the write lock. PostgreSQL: one transaction."""
    from tests.test_query_counts import counted

    coord, subject = dosed["coord"], dosed["subject"]
    with counted(app) as statements:
        assert _ae(coord, subject).status_code == 201
    begins = [i for i, s in enumerate(statements) if s.startswith("BEGIN")]
    token = next(i for i, s in enumerate(statements) if "FROM api_token" in s)
    with app.app_context():
        sqlite = db.engine.dialect.name == "sqlite"
    if not sqlite:
        assert not begins
        return
    assert [statements[i] for i in begins] == ["BEGIN", "BEGIN IMMEDIATE"]
    assert begins[0] < token < begins[1]
    assert all(" api_token" not in s for s in statements[begins[1] :])
    assert any(s.startswith("INSERT INTO adverse_event ") for s in statements[begins[1] :])


def test_two_writers_at_once_leave_an_unbroken_chain_and_no_failed_request(app, dosed):
    """Two clients record events at the same time (each authenticates while the other may
    hold the write lock): every request succeeds, every event and its audit rows are
    written, and the hash chain verifies from its first row."""
    from trialmgr.audit import services as audit
    from trialmgr.audit.models import AuditEvent
    from trialmgr.safety.models import AdverseEvent

    coord, subject = dosed["coord"], dosed["subject"]
    other = enrol(coord, dosed["trial"], dosed["site"], consented_on=days_ago(200))
    with app.app_context():
        events_before = db.session.scalar(sa.select(sa.func.count()).select_from(AdverseEvent))
    per_writer = 12
    barrier = threading.Barrier(2)
    statuses: list[int] = []
    failures: list[BaseException] = []

    def write(who):
        try:
            client = coord.__class__(coord.app, coord.token, coord.user)
            barrier.wait()
            for i in range(per_writer):
                statuses.append(_ae(client, who, term=f"Headache {i}", grade=1).status_code)
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(s,)) for s in (subject, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert statuses == [201] * (2 * per_writer)
    with app.app_context():
        events = db.session.scalar(sa.select(sa.func.count()).select_from(AdverseEvent))
        recorded = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "adverse_event.record")
            .where(AuditEvent.entity == "adverse_event")
        )
        check = audit.verify(full=True)
    assert events - events_before == 2 * per_writer
    assert recorded >= 2 * per_writer
    assert check.valid, check.as_dict()


def test_a_token_revoked_expired_or_of_a_deactivated_user_is_refused_at_the_next_write(
    app, api, dosed
):
    """The token read before the write transaction is read afresh by every request: a
    revocation, an expiry or a deactivation committed after one write refuses the next
    (401) and writes nothing."""
    from datetime import timedelta

    from trialmgr.auth.models import ApiToken
    from trialmgr.clock import utcnow
    from trialmgr.safety.models import AdverseEvent

    coord, subject = dosed["coord"], dosed["subject"]

    def count():
        with app.app_context():
            return db.session.scalar(sa.select(sa.func.count()).select_from(AdverseEvent))

    def fresh():
        client = api.as_user(coord.user)
        assert _ae(client, subject).status_code == 201
        return client

    revoked = fresh()
    assert revoked.delete("/auth/tokens/current").status_code == 204
    before = count()
    assert _ae(revoked, subject).status_code == 401
    assert count() == before

    expired = fresh()
    before = count()
    with app.app_context():
        token = db.session.execute(
            sa.select(ApiToken).order_by(ApiToken.id.desc()).limit(1)
        ).scalar_one()
        token.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert _ae(expired, subject).status_code == 401
    assert count() == before

    deactivated = fresh()
    before = count()
    admin = api.as_role("admin")
    resp = admin.patch(f"/users/{coord.user['id']}", json={"active": False, "reason": "left"})
    assert resp.status_code == 200
    assert _ae(deactivated, subject).status_code == 401
    assert count() == before


def test_an_event_s_audit_rows_hold_every_column_given_in_the_mapper_s_order(app, dosed):
    """The audit listener's `changes` for a new event: every audited column that has a value
    (id, created_at and updated_at left out), old None, shown in the mapper's column order; for a
    follow-up, the columns that changed, old and new."""
    from trialmgr.audit.chain import jsonable
    from trialmgr.audit.models import AuditEvent
    from trialmgr.safety.models import AdverseEvent

    coord, subject = dosed["coord"], dosed["subject"]
    created = _ae(coord, subject, narrative="Mild, self-limiting.")
    assert created.status_code == 201
    ae_id = created.json["id"]

    def rows(action):
        return list(
            db.session.execute(
                sa.select(AuditEvent)
                .where(AuditEvent.entity == "adverse_event", AuditEvent.entity_id == str(ae_id))
                .where(AuditEvent.action == action)
                .order_by(AuditEvent.id)
            ).scalars()
        )

    with app.app_context():
        ae = db.session.get(AdverseEvent, ae_id)
        assert ae is not None
        columns = [
            attr.key
            for attr in sa.inspect(AdverseEvent).column_attrs
            if attr.key not in ("id", "created_at", "updated_at")
        ]
        expected = {
            key: {"old": None, "new": jsonable(getattr(ae, key))}
            for key in columns
            if getattr(ae, key) is not None
        }
        (recorded,) = rows("adverse_event.record")
    assert recorded.changes == expected
    # stored with sorted keys (the text the chain hashes, decision 0027), shown in the
    # mapper's column order
    from trialmgr.audit.readable import _in_column_order

    assert list(recorded.changes) == sorted(expected)
    assert [key for key, _ in _in_column_order("adverse_event", recorded.changes)] == list(expected)
    update = {"grade": 3, "reason": "Worsened", "awareness_at": at(days_ago(1))}
    assert coord.patch(f"/adverse-events/{ae_id}", json=update).status_code == 200
    with app.app_context():
        updates = [r.changes for r in rows("adverse_event.update")]
    changed = {k: v for changes in updates for k, v in changes.items()}
    assert changed["grade"] == {"old": 2, "new": 3}
    assert changed["version"] == {"old": 1, "new": 2}, updates
    assert all(v["old"] != v["new"] for v in changed.values())
    assert set(changed) <= set(columns)
