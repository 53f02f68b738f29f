"""Efficacy (issue 12): endpoints per trial, measurements entered by the site's coordinators
(audited, corrections with a reason, dates on the site's calendar), change from baseline
(none without a baseline, said why; the latest pre-dose baseline when there are two), the
per-cohort summary over time, and the pages."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.builders import active_site, days_ago, dose, enrol, open_trial, world
from tests.test_enrollment_pages import browser, text


@pytest.fixture()
def w(api):
    """World with a FIX endpoint (primary) and a subject A at S01 dosed 100 days ago."""
    w = world(api)
    tid = w["trial"]["id"]
    fix = w["lead"].post(
        f"/trials/{tid}/endpoints",
        json={
            "code": "fix",
            "name": "Factor IX activity",
            "unit": "IU/dL",
            "direction": "higher_is_better",
            "primary": True,
        },
    )
    assert fix.status_code == 201, fix.json
    a = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], a, days_ago(100)).status_code == 201
    visits = {v["name"]: v for v in w["coord"].get(f"/subjects/{a['code']}/visits").json}
    return {**w, "fix": fix.json, "a": a, "visits": visits}


def measure(client, subject, endpoint, value, on, **more):
    return client.post(
        "/efficacy-measurements",
        json={
            "subject_code": subject["code"],
            "endpoint_id": endpoint["id"],
            "value": value,
            "measured_on": on.isoformat(),
            **more,
        },
    )


# --- endpoints ------------------------------------------------------------------------------


def test_endpoints_are_defined_by_managers_with_codes_unique_in_the_trial(w):
    tid = w["trial"]["id"]
    assert w["fix"]["code"] == "FIX" and w["fix"]["primary"] is True
    again = w["lead"].post(
        f"/trials/{tid}/endpoints",
        json={"code": "FIX", "name": "Again", "unit": "%", "direction": "higher_is_better"},
    )
    assert again.status_code == 409 and "code" in again.json["errors"]
    coordinator = w["coord"].post(
        f"/trials/{tid}/endpoints",
        json={"code": "ABR", "name": "Bleeds", "unit": "/y", "direction": "lower_is_better"},
    )
    assert coordinator.status_code == 403
    bad = w["lead"].post(
        f"/trials/{tid}/endpoints",
        json={"code": "ABR", "name": "Bleeds", "unit": "/y", "direction": "sideways"},
    )
    assert bad.status_code == 422
    assert [e["code"] for e in w["coord"].get(f"/trials/{tid}/endpoints").json] == ["FIX"]


# --- measurements -----------------------------------------------------------------------------


def test_measurements_are_site_work_for_the_subjects_own_coordinators(api, w):
    ok = measure(w["coord"], w["a"], w["fix"], 1.1, days_ago(101), baseline=True)
    assert ok.status_code == 201, ok.json
    assert ok.json["study_day"] == -1 and ok.json["baseline_used"] is True
    admin = api.as_role("admin")
    assert measure(admin, w["a"], w["fix"], 5, days_ago(50)).status_code == 403
    assert measure(w["lead"], w["a"], w["fix"], 5, days_ago(50)).status_code == 403
    s02 = active_site(w["lead"], "S02")
    stranger = api.as_role("coordinator", site_ids=[s02["id"]])
    assert measure(stranger, w["a"], w["fix"], 5, days_ago(50)).status_code == 404
    assert stranger.get(f"/efficacy-measurements/{ok.json['id']}").status_code == 404
    assert stranger.get("/efficacy-measurements").json == []
    audit = w["lead"].get("/audit?entity=efficacy_measurement").json
    assert [e["action"] for e in audit] == ["efficacy_measurement.record"]


def test_measurement_dates_are_the_sites_and_rules_hold(api, w):
    lead = w["lead"]
    kiritimati = active_site(lead, "KI01", timezone="Pacific/Kiritimati")  # UTC+14
    coord = api.as_role("coordinator", site_ids=[kiritimati["id"]])
    b = enrol(coord, w["trial"], kiritimati)
    site_today = datetime.now(UTC).astimezone(ZoneInfo("Pacific/Kiritimati")).date()
    assert measure(coord, b, w["fix"], 1.0, site_today).status_code == 201
    future = measure(coord, b, w["fix"], 1.0, site_today + timedelta(days=1))
    assert future.status_code == 422 and "measured_on" in future.json["errors"]
    before_consent = measure(coord, b, w["fix"], 1.0, days_ago(400))
    assert before_consent.status_code == 422 and "consent" in str(before_consent.json["errors"])
    a = w["a"]
    post_dose_baseline = measure(w["coord"], a, w["fix"], 1.0, days_ago(50), baseline=True)
    assert post_dose_baseline.status_code == 422 and "baseline" in post_dose_baseline.json["errors"]
    a_visit = w["visits"]["Week 4"]["id"]
    wrong_visit = measure(coord, b, w["fix"], 1.0, site_today, visit_id=a_visit)
    assert wrong_visit.status_code == 422 and "visit_id" in wrong_visit.json["errors"]
    other_trial = (
        w["lead"]
        .post("/trials", json={"code": "GT-X", "title": "Other", "vector_type": "aav"})
        .json
    )
    other_endpoint = (
        w["lead"]
        .post(
            f"/trials/{other_trial['id']}/endpoints",
            json={"code": "FIX", "name": "FIX", "unit": "IU/dL", "direction": "higher_is_better"},
        )
        .json
    )
    wrong_endpoint = measure(w["coord"], a, other_endpoint, 1.0, days_ago(50))
    assert wrong_endpoint.status_code == 422 and "endpoint_id" in wrong_endpoint.json["errors"]
    for bad in ({"value": "NaN"}, {"value": "1e13"}, {"value": "abc"}, {"surprise": 1}):
        body = {
            "subject_code": a["code"],
            "endpoint_id": w["fix"]["id"],
            "value": 1,
            "measured_on": days_ago(5).isoformat(),
            **bad,
        }
        assert w["coord"].post("/efficacy-measurements", json=body).status_code == 422, bad


def test_corrections_need_a_reason_and_are_audited_with_old_and_new(w):
    m = measure(w["coord"], w["a"], w["fix"], 12.0, days_ago(50)).json
    path = f"/efficacy-measurements/{m['id']}"
    assert w["coord"].patch(path, json={"value": 13.5}).status_code == 422
    fixed = w["coord"].patch(path, json={"value": 13.5, "reason": "transcription error"})
    assert fixed.status_code == 200 and fixed.json["value"] == 13.5
    same = w["coord"].patch(path, json={"value": 13.5, "reason": "again"})
    assert same.status_code == 422
    row = w["lead"].get(f"/audit?entity=efficacy_measurement&entity_id={m['id']}").json[0]
    assert row["reason"] == "transcription error"
    assert (float(row["changes"]["value"]["old"]), float(row["changes"]["value"]["new"])) == (
        12.0,
        13.5,
    )


# --- change from baseline ----------------------------------------------------------------------


def test_without_a_baseline_no_change_is_given_and_the_reason_is(w):
    m = measure(w["coord"], w["a"], w["fix"], 21.0, days_ago(30))
    assert m.status_code == 201
    body = m.json
    assert body["change_from_baseline"] is None and body["percent_change_from_baseline"] is None
    assert body["change_note"] == "No baseline recorded for this subject and endpoint."
    listed = w["coord"].get(f"/efficacy-measurements?subject_code={w['a']['code']}").json
    assert listed[0]["change_note"] == body["change_note"]


def test_with_two_pre_dose_baselines_the_latest_counts(w):
    first = measure(w["coord"], w["a"], w["fix"], 2.0, days_ago(110), baseline=True).json
    latest = measure(w["coord"], w["a"], w["fix"], 1.0, days_ago(100), baseline=True).json
    later = measure(w["coord"], w["a"], w["fix"], 21.0, days_ago(30)).json
    assert (later["baseline_value"], later["baseline_on"]) == (1.0, days_ago(100).isoformat())
    assert later["change_from_baseline"] == 20.0
    assert later["percent_change_from_baseline"] == 2000.0
    listed = {
        m["id"]: m
        for m in w["coord"].get(f"/efficacy-measurements?subject_code={w['a']['code']}").json
    }
    assert listed[first["id"]]["baseline_used"] is False
    assert listed[first["id"]]["change_from_baseline"] == 1.0  # 2.0 against the 1.0 that counts
    assert listed[latest["id"]]["baseline_used"] is True
    assert listed[latest["id"]]["change_from_baseline"] == 0.0


def test_a_baseline_after_the_dosing_day_does_not_count(w):
    """Two baselines entered before the dosing was recorded (dated 20 and 5 days ago); the
    dosing, entered later, happened 10 days ago: only the first is pre-dose."""
    b = enrol(w["coord"], w["trial"], w["site"], consented_on=days_ago(60))
    measure(w["coord"], b, w["fix"], 1.5, days_ago(20), baseline=True)
    measure(w["coord"], b, w["fix"], 9.0, days_ago(5), baseline=True)
    assert dose(w["coord"], b, days_ago(10)).status_code == 201  # C1's stagger: A 90 days before
    now = measure(w["coord"], b, w["fix"], 7.5, days_ago(1)).json
    assert (now["baseline_value"], now["change_from_baseline"]) == (1.5, 6.0)
    assert now["percent_change_from_baseline"] == 400.0 and now["study_day"] == 9


def test_the_baseline_rule_by_itself():
    from datetime import date
    from types import SimpleNamespace

    from trialmgr.efficacy.services.measurements import NO_BASELINE, choose_baseline

    def m(i, on):
        return SimpleNamespace(id=i, measured_on=date(2026, 3, on))

    assert choose_baseline([], date(2026, 3, 10)) == (None, NO_BASELINE)
    early, late, after = m(1, 1), m(2, 9), m(3, 12)
    assert choose_baseline([late, early, after], date(2026, 3, 10)) == (late, None)
    assert choose_baseline([early, after], None) == (after, None)  # not dosed: the latest
    chosen, note = choose_baseline([after], date(2026, 3, 10))
    assert chosen is None and "after the dosing on 2026-03-10" in note


# --- the summary -------------------------------------------------------------------------------


def test_summary_per_cohort_and_visit_by_hand(api, w):
    """C1: A (S01), B (S01), C (S02). Week 4: A 10, B 20, C 30 (C measured twice: the later,
    30, counts) -> n 3, mean 20, median 20, min 10, max 30. Baselines 1, 2, none."""
    coord, lead = w["coord"], w["lead"]
    s02 = active_site(lead, "S02")
    coord2 = api.as_role("coordinator", site_ids=[s02["id"]])
    a = w["a"]
    b = enrol(coord, w["trial"], w["site"])
    c = enrol(coord2, w["trial"], s02)
    assert dose(coord, b, days_ago(80)).status_code == 201
    assert dose(coord2, c, days_ago(60)).status_code == 201
    week4 = {}
    for client, subject in ((coord, a), (coord, b), (coord2, c)):
        visits = client.get(f"/subjects/{subject['code']}/visits").json
        week4[subject["code"]] = next(v for v in visits if v["name"] == "Week 4")
    measure(coord, a, w["fix"], 1.0, days_ago(101), baseline=True)
    measure(coord, b, w["fix"], 2.0, days_ago(81), baseline=True)
    for client, subject, value, on in (
        (coord, a, 10, days_ago(72)),
        (coord, b, 20, days_ago(52)),
        (coord2, c, 25, days_ago(33)),
        (coord2, c, 30, days_ago(32)),
    ):
        resp = measure(client, subject, w["fix"], value, on, visit_id=week4[subject["code"]]["id"])
        assert resp.status_code == 201, resp.json
    measure(coord, a, w["fix"], 99, days_ago(40))  # unscheduled: not summarised
    tid = w["trial"]["id"]
    rows = lead.get(f"/trials/{tid}/efficacy-summary?endpoint_id={w['fix']['id']}").json
    by_visit = {(r["cohort"], r["visit"]): r for r in rows}
    assert set(by_visit) == {("C1", "Baseline"), ("C1", "Week 4")}
    wk4 = by_visit[("C1", "Week 4")]
    assert (wk4["n"], wk4["mean"], wk4["median"], wk4["min"], wk4["max"], wk4["day"]) == (
        3,
        20.0,
        20.0,
        10.0,
        30.0,
        28,
    )
    assert (wk4["n_change"], wk4["mean_change"], wk4["median_change"]) == (2, 13.5, 13.5)
    base = by_visit[("C1", "Baseline")]
    assert (base["n"], base["mean"], base["day"]) == (2, 1.5, None)
    assert [r["visit"] for r in rows] == ["Baseline", "Week 4"]
    theirs = coord2.get(f"/trials/{tid}/efficacy-summary").json  # default: the primary endpoint
    assert [(r["visit"], r["n"], r["mean"]) for r in theirs] == [("Week 4", 1, 30.0)]


def test_summary_without_any_endpoint_or_with_another_trials_is_a_field_error(w):
    other = open_trial(w["lead"])
    resp = w["lead"].get(f"/trials/{other['id']}/efficacy-summary")
    assert resp.status_code == 422 and "endpoint_id" in resp.json["errors"]
    theirs = f"/trials/{other['id']}/efficacy-summary?endpoint_id={w['fix']['id']}"
    assert w["lead"].get(theirs).status_code == 422
    cohort = other["cohorts"][0]["id"]
    mine = f"/trials/{w['trial']['id']}/efficacy-summary?cohort_id={cohort}"
    resp = w["lead"].get(mine)
    assert resp.status_code == 422 and "cohort_id" in resp.json["errors"]


# --- pages --------------------------------------------------------------------------------


def assert_clean(html):
    assert "style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)


def test_subject_page_enters_and_corrects_measurements(app, w):
    page = browser(app, w["coord"])
    code = w["a"]["code"]
    resp = page.get(f"/subjects/{code}/efficacy")
    assert resp.status_code == 200
    assert_clean(resp.get_data(as_text=True))
    form = {
        "endpoint_id": str(w["fix"]["id"]),
        "visit_id": "",
        "measured_on": days_ago(101).isoformat(),
        "value": "1.2",
        "baseline": ["false", "true"],
    }
    saved = page.post(f"/subjects/{code}/efficacy", data=form)
    assert saved.status_code == 302
    week4 = w["visits"]["Week 4"]["id"]
    form.update(value="18.6", measured_on=days_ago(72).isoformat(), baseline="false")
    form["visit_id"] = str(week4)
    assert page.post(f"/subjects/{code}/efficacy", data=form).status_code == 302
    future = dict(form, measured_on=days_ago(-2).isoformat())
    refused = page.post(f"/subjects/{code}/efficacy", data=future)
    assert refused.status_code == 422 and "Must not be in the future." in text(refused)
    shown = page.get(f"/subjects/{code}/efficacy")
    html = shown.get_data(as_text=True)
    assert_clean(html)
    assert 'data-chart="efficacy-subject"' in html
    assert "+17.4" in text(shown) and "+1450.0 %" in text(shown)
    listed = w["coord"].get(f"/efficacy-measurements?subject_code={code}").json
    m = next(x for x in listed if x["value"] == 18.6)
    edit = f"/subjects/{code}/efficacy/{m['id']}"
    fix = {
        "value": "19.6",
        "measured_on": m["measured_on"],
        "visit_id": str(week4),
        "baseline": "false",
    }
    no_reason = page.post(edit, data=fix)
    assert no_reason.status_code == 422 and 'id="edit-' in no_reason.get_data(as_text=True)
    done = page.post(edit, data={**fix, "reason": "re-read the assay"})
    assert done.status_code == 302
    assert w["coord"].get(f"/efficacy-measurements/{m['id']}").json["value"] == 19.6


def test_trial_page_shows_the_cohort_summary_chart_and_exports_csv(app, w):
    measure(w["coord"], w["a"], w["fix"], 1.0, days_ago(101), baseline=True)
    week4 = w["visits"]["Week 4"]["id"]
    measure(w["coord"], w["a"], w["fix"], 15.0, days_ago(72), visit_id=week4)
    page = browser(app, w["lead"])
    tid = w["trial"]["id"]
    resp = page.get(f"/trials/{tid}/efficacy")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert_clean(html)
    assert 'data-chart="efficacy-cohort"' in html and 'aria-describedby="summary"' in html
    assert re.search(
        r'data-cohort="C1" data-visit="Week 4">.*?<td class="text-end">1</td>', html, re.S
    )
    exported = page.get(f"/trials/{tid}/efficacy/measurements.csv")
    rows = list(csv.DictReader(io.StringIO(exported.get_data().decode("utf-8-sig"))))
    assert [(r["visit"], r["value"], r["change_from_baseline"]) for r in rows] == [
        ("", "1.0", "0.0"),
        ("Week 4", "15.0", "14.0"),
    ]


def test_endpoint_form_on_the_trial_page_escapes_what_it_shows(app, w):
    page = browser(app, w["lead"])
    tid = w["trial"]["id"]
    form = {
        "code": "ABR",
        "name": "<script>alert(1)</script> bleeds",
        "unit": "/year",
        "direction": "lower_is_better",
        "primary": "false",
    }
    assert page.post(f"/trials/{tid}/efficacy/endpoints", data=form).status_code == 302
    html = page.get(f"/trials/{tid}/efficacy").get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; bleeds" in html
    duplicate = page.post(f"/trials/{tid}/efficacy/endpoints", data=form)
    assert duplicate.status_code == 409 and "Already used." in text(duplicate)
    coordinator = browser(app, w["coord"])
    assert coordinator.post(f"/trials/{tid}/efficacy/endpoints", data=form).status_code == 403
    assert 'id="endpoint-form"' not in coordinator.get(f"/trials/{tid}/efficacy").get_data(
        as_text=True
    )


def test_visit_choices_show_their_dates_in_the_readers_format(app, w):
    page = browser(app, w["coord"])
    saved = page.post(
        "/account", data={"action": "profile", "date_format": "DD/MM/YYYY", "timezone": "UTC"}
    )
    assert saved.status_code == 302
    week4 = w["visits"]["Week 4"]
    on = datetime.fromisoformat(week4["scheduled_on"]).date()
    html = page.get(f"/subjects/{w['a']['code']}/efficacy").get_data(as_text=True)
    assert f"Week 4 (day {week4['day']}, {on:%d/%m/%Y})" in html
