"""Visit schedules from the dosing date, long-term follow-up, recording, deviations, due lists."""

from datetime import date, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from tests.builders import active_site, days_ago, dose, enrol, open_trial, world
from trialmgr.enrollment.models import Trial, VisitDefinition
from trialmgr.enrollment.services.schedule import plan


def _trial(vector="aav", ltfu=5, definitions=((("Week 4", 28, 3, 3)),)):
    trial = Trial(code="T", title="T", vector_type=vector, ltfu_years=ltfu, stagger_days=14)
    trial.visit_definitions = [
        VisitDefinition(name=n, day=d, window_before=b, window_after=a, primary_endpoint=False)
        for n, d, b, a in definitions
    ]
    return trial


def _by_name(visits):
    return {v["name"]: v for v in visits}


def test_month_end_dosing_day_28_and_yearly_dates():
    visits = _by_name(plan(_trial(), date(2028, 1, 31)))
    week4 = visits["Week 4"]
    assert week4["scheduled_on"] == date(2028, 2, 28)
    assert (week4["window_start"], week4["window_end"]) == (
        date(2028, 2, 25),
        date(2028, 3, 2),
    )  # across 29 Feb
    assert visits["LTFU year 1 visit"]["scheduled_on"] == date(2029, 1, 31)
    assert visits["LTFU year 5 visit"]["scheduled_on"] == date(2033, 1, 31)


def test_leap_day_dosing_yearly_dates_fall_on_28_february():
    visits = _by_name(plan(_trial(), date(2028, 2, 29)))
    assert visits["Week 4"]["scheduled_on"] == date(2028, 3, 28)
    assert visits["LTFU year 1 visit"]["scheduled_on"] == date(2029, 2, 28)
    assert visits["LTFU year 4 visit"]["scheduled_on"] == date(2032, 2, 29)


def test_study_day_is_dosing_date_plus_n():
    visits = _by_name(
        plan(_trial(definitions=(("Day 0", 0, 0, 0), ("Day 1", 1, 0, 0))), date(2027, 12, 31))
    )
    assert visits["Day 0"]["scheduled_on"] == date(2027, 12, 31)
    assert visits["Day 1"]["scheduled_on"] == date(2028, 1, 1)


@pytest.mark.parametrize(
    "vector, years, rcr",
    [
        ("aav", 5, False),
        ("lentiviral", 15, True),
        ("gammaretroviral", 15, True),
        ("genome_editing", 15, False),
    ],
)
def test_ltfu_length_and_rcr_tests_follow_the_vector(vector, years, rcr):
    visits = plan(_trial(vector, years), date(2027, 3, 15))
    ltfu = [v for v in visits if v["kind"] == "ltfu"]
    assert len(ltfu) == years
    assert [v["name"] for v in ltfu][: 6 if years > 5 else years][-1].endswith(
        "visit" if years <= 5 else "contact"
    )
    rcr_visits = [v for v in visits if v["kind"] == "rcr"]
    if rcr:
        pre, *tests = rcr_visits
        assert pre["name"] == "RCR pre-treatment sample"
        assert (pre["window_start"], pre["window_end"]) == (date(2027, 2, 13), date(2027, 3, 15))
        months = [int(v["name"].split()[-1]) for v in tests]
        assert months[:4] == [3, 6, 12, 24] and months[-1] == 12 * years
        assert tests[0]["scheduled_on"] == date(2027, 6, 15)
    else:
        assert rcr_visits == []


def test_rcr_month_clamps_to_month_end():
    visits = _by_name(plan(_trial("lentiviral", 15), date(2027, 11, 30)))
    assert visits["RCR test month 3"]["scheduled_on"] == date(2028, 2, 29)


def test_years_after_five_are_contacts():
    names = [
        v["name"] for v in plan(_trial("lentiviral", 15), date(2027, 1, 1)) if v["kind"] == "ltfu"
    ]
    assert names[4] == "LTFU year 5 visit" and names[5] == "LTFU year 6 contact"


@pytest.fixture()
def dosed(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(100)).status_code == 201
    visits = {v["name"]: v for v in w["coord"].get(f"/subjects/{subject['code']}/visits").json}
    return {**w, "subject": subject, "visits": visits}


def test_dosing_generates_the_schedule(dosed):
    visits = dosed["visits"]
    d0 = days_ago(100)
    assert visits["Week 4"]["scheduled_on"] == (d0 + timedelta(days=28)).isoformat()
    assert visits["Week 4"]["day"] == 28
    assert visits["LTFU year 1 visit"]["kind"] == "ltfu"
    assert len([v for v in visits.values() if v["kind"] == "ltfu"]) == 5
    assert visits["Day 7"]["state"] == "overdue"


def test_visit_in_window_records_no_deviation(dosed):
    coord, week4 = dosed["coord"], dosed["visits"]["Week 4"]
    on = date.fromisoformat(week4["window_end"])
    resp = coord.patch(
        f"/visits/{week4['id']}",
        json={"status": "done", "done_on": on.isoformat(), "reason": "visit performed"},
    )
    assert resp.status_code == 200 and resp.json["status"] == "done"
    assert coord.get(f"/subjects/{dosed['subject']['code']}/deviations").json == []
    assert coord.get(f"/subjects/{dosed['subject']['code']}").json["status"] == "in_follow_up"


def test_visit_one_day_out_of_window_records_a_deviation(dosed):
    coord, week4 = dosed["coord"], dosed["visits"]["Week 4"]
    late = date.fromisoformat(week4["window_end"]) + timedelta(days=1)
    resp = coord.patch(
        f"/visits/{week4['id']}",
        json={"status": "done", "done_on": late.isoformat(), "reason": "visit performed"},
    )
    assert resp.status_code == 200
    deviations = coord.get(f"/subjects/{dosed['subject']['code']}/deviations").json
    assert len(deviations) == 1 and deviations[0]["kind"] == "visit_out_of_window"
    assert "1 day(s) late" in deviations[0]["description"]


def test_missed_visit_is_a_deviation(dosed):
    coord, day7 = dosed["coord"], dosed["visits"]["Day 7"]
    assert (
        coord.patch(
            f"/visits/{day7['id']}", json={"status": "missed", "reason": "family unreachable"}
        ).status_code
        == 200
    )
    assert (
        coord.get(f"/subjects/{dosed['subject']['code']}/deviations").json[0]["kind"]
        == "visit_missed"
    )


def test_visit_patch_needs_reason_and_done_date(dosed):
    coord, week4 = dosed["coord"], dosed["visits"]["Week 4"]
    assert (
        coord.patch(
            f"/visits/{week4['id']}", json={"status": "done", "done_on": week4["scheduled_on"]}
        ).status_code
        == 422
    )
    assert (
        coord.patch(
            f"/visits/{week4['id']}", json={"status": "done", "reason": "visit performed"}
        ).status_code
        == 422
    )
    future = coord.patch(
        f"/visits/{week4['id']}",
        json={"status": "done", "done_on": days_ago(-1).isoformat(), "reason": "visit performed"},
    )
    assert future.status_code == 422


def test_primary_endpoint_visit_completes_primary_follow_up(dosed):
    coord, week12 = dosed["coord"], dosed["visits"]["Week 12"]
    coord.patch(
        f"/visits/{week12['id']}",
        json={"status": "done", "done_on": week12["scheduled_on"], "reason": "visit performed"},
    )
    assert coord.get(f"/subjects/{dosed['subject']['code']}").json["status"] == "completed"


def test_ltfu_contact_needs_the_delayed_event_answers(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    dose(w["coord"], subject, days_ago(280))
    ltfu = next(
        v for v in w["coord"].get(f"/subjects/{subject['code']}/visits").json if v["kind"] == "ltfu"
    )
    on = days_ago(1).isoformat()
    partial = w["coord"].patch(
        f"/visits/{ltfu['id']}",
        json={
            "status": "done",
            "done_on": on,
            "reason": "call",
            "answers": {"new_malignancy": False},
        },
    )
    assert partial.status_code == 422
    answers = {
        "new_malignancy": False,
        "neurological": False,
        "autoimmune": True,
        "haematological": False,
    }
    ok = w["coord"].patch(
        f"/visits/{ltfu['id']}",
        json={"status": "done", "done_on": on, "reason": "call", "answers": answers},
    )
    assert ok.status_code == 200 and ok.json["answers"]["autoimmune"] is True


def test_full_withdrawal_cancels_only_visits_scheduled_after_it(dosed):
    coord, code = dosed["coord"], dosed["subject"]["code"]
    on = days_ago(50)  # dosed 100 days ago: Day 7 and Week 4 before, Week 12 and LTFU after
    resp = coord.post(
        f"/subjects/{code}/withdrawal",
        json={"withdrawn_on": on.isoformat(), "kind": "full", "reason": "consent withdrawn"},
    )
    assert resp.status_code == 200 and resp.json["status"] == "withdrawn"
    visits = {v["name"]: v for v in coord.get(f"/subjects/{code}/visits").json}
    assert {n: visits[n]["status"] for n in ("Day 7", "Week 4", "Week 12")} == {
        "Day 7": "scheduled",
        "Week 4": "scheduled",
        "Week 12": "cancelled",
    }
    assert visits["Week 12"]["cancel_reason"] == "withdrawn"
    assert {v["status"] for v in visits.values() if v["kind"] == "ltfu"} == {"cancelled"}
    # the overdue Week 4, done before the withdrawal, can still be entered; not after it
    week4 = visits["Week 4"]
    after = coord.patch(
        f"/visits/{week4['id']}",
        json={"status": "done", "done_on": days_ago(40).isoformat(), "reason": "entered late"},
    )
    assert after.status_code == 422 and "done_on" in after.json["errors"]
    ok = coord.patch(
        f"/visits/{week4['id']}",
        json={"status": "done", "done_on": week4["scheduled_on"], "reason": "entered late"},
    )
    assert ok.status_code == 200, ok.json
    corrected = coord.patch(
        f"/visits/{week4['id']}",
        json={"status": "done", "done_on": week4["window_start"], "reason": "date misread"},
    )
    assert corrected.status_code == 200 and corrected.json["done_on"] == week4["window_start"]
    week12 = coord.patch(
        f"/visits/{visits['Week 12']['id']}",
        json={"status": "done", "done_on": days_ago(16).isoformat(), "reason": "x" * 5},
    )
    assert week12.status_code == 409 and week12.json["title"] == "Visit cancelled"


def test_withdrawal_from_procedures_keeps_safety_follow_up(dosed):
    coord, code = dosed["coord"], dosed["subject"]["code"]
    resp = coord.post(
        f"/subjects/{code}/withdrawal",
        json={
            "withdrawn_on": days_ago(50).isoformat(),
            "kind": "procedures",
            "reason": "no more blood draws",
        },
    )
    assert resp.status_code == 200 and resp.json["status"] != "withdrawn"
    visits = coord.get(f"/subjects/{code}/visits").json
    protocol = {v["name"]: v["status"] for v in visits if v["kind"] == "protocol"}
    assert protocol == {"Day 7": "scheduled", "Week 4": "scheduled", "Week 12": "cancelled"}
    assert {v["status"] for v in visits if v["kind"] == "ltfu"} == {"scheduled"}


def test_withdrawal_needs_a_reason(dosed):
    resp = dosed["coord"].post(
        f"/subjects/{dosed['subject']['code']}/withdrawal",
        json={"withdrawn_on": days_ago(1).isoformat()},
    )
    assert resp.status_code == 422


def test_consent_is_judged_on_the_visit_date_not_the_entry_date(dosed):
    """A visit done while consent was valid is accepted whenever it is entered; one done while
    re-consent was due is accepted with a consent deviation (this used to be refused)."""
    lead, coord, trial = dosed["lead"], dosed["coord"], dosed["trial"]
    code = dosed["subject"]["code"]
    lead.post(
        f"/trials/{trial['id']}/consent-versions",
        json={
            "version": "2.0",
            "approved_on": days_ago(20).isoformat(),
            "reconsent_required": True,
        },
    )
    assert coord.get(f"/subjects/{code}").json["reconsent_due"] is True
    week4 = dosed["visits"]["Week 4"]  # done 72 days ago, before version 2.0
    ok = coord.patch(
        f"/visits/{week4['id']}",
        json={"status": "done", "done_on": week4["scheduled_on"], "reason": "entered late"},
    )
    assert ok.status_code == 200, ok.json
    week12 = dosed["visits"]["Week 12"]  # done 16 days ago, while re-consent was due
    due = coord.patch(
        f"/visits/{week12['id']}",
        json={"status": "done", "done_on": week12["scheduled_on"], "reason": "entered late"},
    )
    assert due.status_code == 200, due.json
    deviations = coord.get(f"/subjects/{code}/deviations").json
    assert [d["kind"] for d in deviations] == ["consent"]
    assert "version 2.0" in deviations[0]["description"]


def test_death_is_recorded_explicitly(dosed):
    coord, code = dosed["coord"], dosed["subject"]["code"]
    resp = coord.post(
        f"/subjects/{code}/end",
        json={"status": "died", "on": days_ago(2).isoformat(), "reason": "progressive disease"},
    )
    assert resp.status_code == 200 and resp.json["status"] == "died"
    assert (
        coord.post(
            f"/subjects/{code}/end",
            json={"status": "lost_to_follow_up", "on": days_ago(1).isoformat(), "reason": "again"},
        ).status_code
        == 409
    )


def test_visits_due_lists_overdue_and_upcoming_in_my_sites(api, dosed):
    coord = dosed["coord"]
    due = coord.get("/visits/due").json
    names = [v["name"] for v in due]
    assert "Day 7" in names  # overdue
    assert "LTFU year 1 visit" not in names  # far away
    other_site = active_site(dosed["lead"], "S02")
    other = api.as_role("coordinator", site_ids=[other_site["id"]])
    assert other.get("/visits/due").json == []
    assert (
        other.patch(
            f"/visits/{dosed['visits']['Week 4']['id']}", json={"status": "missed", "reason": "xyz"}
        ).status_code
        == 404
    )


def test_visit_correction_is_audited_with_reason(dosed):
    coord, week4 = dosed["coord"], dosed["visits"]["Week 4"]
    coord.patch(
        f"/visits/{week4['id']}",
        json={"status": "done", "done_on": week4["scheduled_on"], "reason": "visit performed"},
    )
    corrected = date.fromisoformat(week4["scheduled_on"]) + timedelta(days=1)
    coord.patch(
        f"/visits/{week4['id']}",
        json={"status": "done", "done_on": corrected.isoformat(), "reason": "transcription error"},
    )
    events = dosed["lead"].get(f"/audit?entity=visit&entity_id={week4['id']}").json
    assert events[0]["action"] == "visit.correct" and events[0]["reason"] == "transcription error"
    assert events[0]["changes"]["done_on"] == {
        "old": week4["scheduled_on"],
        "new": corrected.isoformat(),
    }


def test_correcting_a_late_visit_into_its_window_voids_the_deviation(dosed):
    coord, week4, code = dosed["coord"], dosed["visits"]["Week 4"], dosed["subject"]["code"]
    late = date.fromisoformat(week4["window_end"]) + timedelta(days=12)
    coord.patch(
        f"/visits/{week4['id']}",
        json={"status": "done", "done_on": late.isoformat(), "reason": "visit"},
    )
    assert len(coord.get(f"/subjects/{code}/deviations").json) == 1
    coord.patch(
        f"/visits/{week4['id']}",
        json={"status": "done", "done_on": week4["scheduled_on"], "reason": "date mistyped"},
    )
    assert coord.get(f"/subjects/{code}/deviations").json == []


def test_correcting_a_late_visit_to_another_late_date_keeps_one_deviation(dosed):
    coord, week4, code = dosed["coord"], dosed["visits"]["Week 4"], dosed["subject"]["code"]
    end = date.fromisoformat(week4["window_end"])
    coord.patch(
        f"/visits/{week4['id']}",
        json={
            "status": "done",
            "done_on": (end + timedelta(days=12)).isoformat(),
            "reason": "visit",
        },
    )
    coord.patch(
        f"/visits/{week4['id']}",
        json={
            "status": "done",
            "done_on": (end + timedelta(days=2)).isoformat(),
            "reason": "date mistyped",
        },
    )
    deviations = coord.get(f"/subjects/{code}/deviations").json
    assert len(deviations) == 1 and "2 day(s) late" in deviations[0]["description"]


def test_end_of_participation_before_enrolment_is_422(dosed):
    resp = dosed["coord"].post(
        f"/subjects/{dosed['subject']['code']}/end",
        json={"status": "died", "on": days_ago(399).isoformat(), "reason": "typo"},
    )
    assert resp.status_code == 422 and "on" in resp.json["errors"]


def test_unknown_subject_status_filter_is_422(dosed):
    assert dosed["coord"].get("/subjects?status=zombie").status_code == 422


def test_dosing_day_is_the_sites_local_day(api):
    from datetime import UTC, datetime

    lead = api.as_role("consortium_lead")
    site = active_site(lead, "US01", timezone="America/Los_Angeles")

    trial = open_trial(lead)
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    subject = enrol(coord, trial, site)
    d = days_ago(100)
    # 01:30 UTC is 17:30 or 18:30 of the previous day in California
    moment = datetime(d.year, d.month, d.day, 1, 30, tzinfo=UTC)
    resp = coord.post(
        f"/subjects/{subject['code']}/dosing",
        json={"dosed_at": moment.isoformat(), "dose": "1e13", "lot_number": "L1"},
    )
    assert resp.status_code == 201
    day7 = next(
        v for v in coord.get(f"/subjects/{subject['code']}/visits").json if v["name"] == "Day 7"
    )
    assert day7["scheduled_on"] == (d - timedelta(days=1) + timedelta(days=7)).isoformat()


def test_the_same_moment_in_any_offset_gives_the_same_schedule(api):
    from datetime import UTC, datetime, timezone

    lead = api.as_role("consortium_lead")
    site = active_site(lead, "IT09", timezone="Europe/Rome")

    trial = open_trial(lead, stagger_days=0)
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    a, b = enrol(coord, trial, site), enrol(coord, trial, site)
    d = days_ago(100)
    moment = datetime(d.year, d.month, d.day, 23, 30, tzinfo=UTC)  # next day in Rome
    for subject, offset in ((a, UTC), (b, timezone(timedelta(hours=-5)))):
        resp = coord.post(
            f"/subjects/{subject['code']}/dosing",
            json={
                "dosed_at": moment.astimezone(offset).isoformat(),
                "dose": "1e13",
                "lot_number": "L1",
            },
        )
        assert resp.status_code == 201, resp.json
    days = {
        s["code"]: next(
            v["scheduled_on"]
            for v in coord.get(f"/subjects/{s['code']}/visits").json
            if v["name"] == "Day 7"
        )
        for s in (a, b)
    }
    assert days[a["code"]] == days[b["code"]] == (d + timedelta(days=8)).isoformat()


def test_visit_cannot_be_missed_while_its_window_is_open(dosed):
    ltfu = dosed["visits"]["LTFU year 5 visit"]
    resp = dosed["coord"].patch(
        f"/visits/{ltfu['id']}", json={"status": "missed", "reason": "not yet"}
    )
    assert resp.status_code == 409 and resp.json["title"] == "Window still open"


def test_procedures_withdrawal_can_become_full(dosed):
    coord, code = dosed["coord"], dosed["subject"]["code"]
    body = {"withdrawn_on": days_ago(3).isoformat(), "reason": "no more blood draws"}
    assert (
        coord.post(f"/subjects/{code}/withdrawal", json={**body, "kind": "procedures"}).status_code
        == 200
    )
    assert (
        coord.post(f"/subjects/{code}/withdrawal", json={**body, "kind": "procedures"}).status_code
        == 409
    )
    full = coord.post(
        f"/subjects/{code}/withdrawal", json={**body, "kind": "full", "reason": "consent withdrawn"}
    )
    assert full.status_code == 200 and full.json["status"] == "withdrawn"
    visits = coord.get(f"/subjects/{code}/visits").json
    assert {v["status"] for v in visits if v["kind"] == "ltfu"} == {"cancelled"}
    assert {v["status"] for v in visits if v["kind"] == "protocol"} == {"scheduled"}  # before


def test_the_dsmb_report_lists_deviations_as_they_stood_at_its_cut_off(app, dosed):
    """A report's deviations are those recorded by the end of its cut-off day at the site and
    not voided by then, as every other record of the report: none before they were
    recorded, one voided after the cut-off is listed (it stood then), one voided on the
    cut-off day is left out."""
    from trialmgr.audit import services as audit
    from trialmgr.auth.models import SystemActor
    from trialmgr.clock import zone
    from trialmgr.enrollment.models import Deviation
    from trialmgr.extensions import db
    from trialmgr.partners.models import Site
    from trialmgr.reports.services import oversight

    coord = dosed["coord"]
    for name, days_late in (("Day 7", 1), ("Week 4", 2), ("Week 12", 3)):
        visit = dosed["visits"][name]
        late = date.fromisoformat(visit["window_end"]) + timedelta(days=days_late)
        assert late <= days_ago(5)
        resp = coord.patch(
            f"/visits/{visit['id']}",
            json={"status": "done", "done_on": late.isoformat(), "reason": "visit performed"},
        )
        assert resp.status_code == 200, resp.json
    with app.app_context():
        trial = db.session.get(Trial, dosed["trial"]["id"])
        site = db.session.get(Site, dosed["site"]["id"])
        rows = db.session.execute(sa.select(Deviation).order_by(Deviation.occurred_on)).scalars()
        kept, voided_later, voided_then = rows.all()
        noon = datetime.combine(days_ago(5), time(12), tzinfo=zone(site.timezone))
        with audit.audited(SystemActor(), reason="test setup: when each was recorded"):
            for deviation in (kept, voided_later, voided_then):
                deviation.recorded_at = noon
            voided_later.voided_at = noon + timedelta(days=3)
            voided_then.voided_at = noon + timedelta(hours=1)
        db.session.commit()

        def listed(cut_off):
            return [d.id for d, _, _ in oversight.deviations(trial, cut_off)]

        assert listed(days_ago(6)) == []  # none recorded yet
        assert listed(days_ago(5)) == [kept.id, voided_later.id]
        assert listed(days_ago(1)) == [kept.id]
        shown = list(oversight.deviations(trial, days_ago(5)))
        assert {(code, site_code) for _, code, site_code in shown} == {
            (dosed["subject"]["code"], site.code)
        }
