"""The pages for the enrolment operations of issue 8, driven as a browser would (session
login, form posts) and checked through the API: consent at screening and per site,
reinstatement, dose checks, site-local dosing time, RCR results, exits, design corrections
during setup, amendments, escalation readiness, and administrators reading without forms."""

import re
import zoneinfo
from datetime import date, datetime

import pytest

from tests.builders import (
    TODAY,
    active_site,
    days_ago,
    dose,
    eligible_screening,
    enrol,
    open_trial,
    world,
)
from tests.factories import PASSWORD
from tests.test_enrollment_pages import browser, local, text


def html(resp):
    return resp.get_data(as_text=True)


def visits_of(client, code):
    return {v["name"]: v for v in client.get(f"/subjects/{code}/visits").json}


def screening_form(w, **kw):
    return {
        "trial_id": w["trial"]["id"],
        "site_id": w["site"]["id"],
        "screened_on": days_ago(20).isoformat(),
        "orphacode": "98879",
        "birth_year": "2014",
        "sex": "F",
        "crit_I1": "yes",
        "crit_E1": "no",
        "outcome": "eligible",
        **kw,
    }


def assert_clean(resp):
    """Every page: no inline styles or scripts (strict CSP)."""
    body = html(resp)
    assert "style=" not in body and "<script>" not in body


@pytest.fixture()
def w(api):
    return world(api)


@pytest.fixture()
def coord_page(app, w):
    return browser(app, w["coord"])


@pytest.fixture()
def lead_page(app, w):
    return browser(app, w["lead"])


# --- consent at screening ---------------------------------------------------------------


def test_screening_form_offers_only_the_versions_approved_at_the_site(app, api, w, coord_page):
    other = active_site(w["lead"], "S02")
    tid = w["trial"]["id"]
    french = (
        w["lead"]
        .post(
            f"/trials/{tid}/consent-versions",
            json={
                "version": "2.0-fr",
                "site_approvals": [
                    {
                        "site_id": other["id"],
                        "approved_on": days_ago(10).isoformat(),
                        "language": "fr",
                    }
                ],
            },
        )
        .json
    )
    v1 = w["trial"]["consent_versions"][0]["id"]
    form = coord_page.get("/screenings/new")
    assert form.status_code == 200
    assert f'<option value="{v1}"' in html(form) and "Version 1.0" in text(form)
    assert f'<option value="{french["id"]}"' not in html(form)  # not approved at S01
    assert_clean(form)

    s02_page = browser(app, api.as_role("coordinator", site_ids=[other["id"]]))
    s02_form = s02_page.get("/screenings/new")
    assert f'<option value="{french["id"]}"' in html(s02_form)
    assert "Version 2.0-fr" in text(s02_form) and "current" in text(s02_form)


def test_consent_recorded_with_the_screening_is_used_by_the_enrol_form(w, coord_page):
    v1 = w["trial"]["consent_versions"][0]["id"]
    resp = coord_page.post(
        "/screenings/new",
        data=screening_form(w, consented_on=days_ago(22).isoformat(), consent_version_id=str(v1)),
    )
    assert resp.status_code == 302
    stored = w["coord"].get("/screenings").json[0]
    # consent before the screening date: consent comes before any trial procedure
    assert (stored["consented_on"], stored["consent_version_id"]) == (
        days_ago(22).isoformat(),
        v1,
    )
    detail = coord_page.get(resp.headers["Location"])
    assert f"version 1.0, signed {days_ago(22).isoformat()}" in text(detail)

    form = coord_page.get(f"/subjects/new?screening_id={stored['id']}")
    assert f"Consent recorded at screening on {days_ago(22).isoformat()}" in text(form)
    assert 'name="consent_version_id"' not in html(form)
    assert 'name="consented_on"' not in html(form)
    enrolled = coord_page.post(
        "/subjects/new",
        data={
            "screening_id": stored["id"],
            "cohort_id": w["trial"]["cohorts"][0]["id"],
            "enrolled_on": days_ago(19).isoformat(),
        },
    )
    assert enrolled.status_code == 302
    code = enrolled.headers["Location"].rsplit("/", 1)[-1]
    subject = w["coord"].get(f"/subjects/{code}").json
    assert (subject["consented_on"], subject["consent_version_id"]) == (
        days_ago(22).isoformat(),
        v1,
    )


def test_screening_form_refuses_a_consent_date_without_its_version(w, coord_page):
    resp = coord_page.post(
        "/screenings/new", data=screening_form(w, consented_on=days_ago(22).isoformat())
    )
    assert resp.status_code == 422
    assert "Give the consent date and version together" in text(resp)
    assert f'value="{days_ago(22).isoformat()}"' in html(resp)  # typed value kept
    assert w["coord"].get("/screenings").json == []


def test_enrol_form_asks_for_consent_when_the_screening_holds_none(w, coord_page):
    screening = eligible_screening(w["coord"], w["trial"], w["site"])
    form = coord_page.get(f"/subjects/new?screening_id={screening['id']}")
    assert 'name="consent_version_id"' in html(form) and 'name="consented_on"' in html(form)
    assert "Consent recorded at screening" not in text(form)
    missing = coord_page.post(
        "/subjects/new",
        data={"screening_id": screening["id"], "cohort_id": w["trial"]["cohorts"][0]["id"]},
    )
    assert missing.status_code == 422 and "the screening holds no consent" in text(missing)
    assert w["coord"].get("/subjects").json == []
    # recorded later on the (eligible) screening's page, with the reason it asks for
    page = coord_page.get(f"/screenings/{screening['id']}")
    assert 'id="consent-reason"' in html(page)
    recorded = coord_page.post(
        f"/screenings/{screening['id']}/consent",
        data={
            "consented_on": days_ago(301).isoformat(),
            "consent_version_id": str(w["trial"]["consent_versions"][0]["id"]),
            "reason": "consent form filed late",
        },
    )
    assert recorded.status_code == 302
    form = coord_page.get(f"/subjects/new?screening_id={screening['id']}")
    assert f"Consent recorded at screening on {days_ago(301).isoformat()}" in text(form)


def test_screening_page_records_consent_and_a_correction_needs_a_reason(w, coord_page):
    pending = (
        w["coord"]
        .post(
            "/screenings",
            json={
                "trial_id": w["trial"]["id"],
                "site_id": w["site"]["id"],
                "screened_on": days_ago(30).isoformat(),
                "orphacode": 98879,
                "birth_year": 2015,
                "sex": "M",
            },
        )
        .json
    )
    url = f"/screenings/{pending['id']}/consent"
    v1 = w["trial"]["consent_versions"][0]["id"]
    page = coord_page.get(f"/screenings/{pending['id']}")
    assert 'id="consent-form"' in html(page) and "not recorded" in text(page)

    half = coord_page.post(url, data={"consented_on": days_ago(31).isoformat()})
    assert half.status_code == 422 and "Give the consent date and version together" in text(half)
    first = coord_page.post(
        url, data={"consented_on": days_ago(31).isoformat(), "consent_version_id": str(v1)}
    )
    assert first.status_code == 302
    assert (
        w["coord"].get(f"/screenings/{pending['id']}").json["consented_on"]
        == days_ago(31).isoformat()
    )
    again = coord_page.post(
        url, data={"consented_on": days_ago(32).isoformat(), "consent_version_id": str(v1)}
    )
    assert again.status_code == 422
    assert "Required to change a recorded outcome or consent" in text(again)
    fixed = coord_page.post(
        url,
        data={
            "consented_on": days_ago(32).isoformat(),
            "consent_version_id": str(v1),
            "reason": "date copied wrongly from the form",
        },
    )
    assert fixed.status_code == 302
    assert (
        w["coord"].get(f"/screenings/{pending['id']}").json["consented_on"]
        == days_ago(32).isoformat()
    )


def test_consent_is_added_to_a_screen_failure_explained_by_a_reason(w, coord_page):
    """Service fix: the stored failure reason stands; the consent is not refused for it."""
    failed = w["coord"].post(
        "/screenings",
        json={
            "trial_id": w["trial"]["id"],
            "site_id": w["site"]["id"],
            "screened_on": days_ago(30).isoformat(),
            "orphacode": 98879,
            "birth_year": 2015,
            "sex": "M",
            "answers": {"I1": True, "E1": False},
            "outcome": "screen_failed",
            "fail_reason": "AAV neutralising antibodies above the cut-off",
        },
    )
    assert failed.status_code == 201, failed.json
    resp = coord_page.post(
        f"/screenings/{failed.json['id']}/consent",
        data={
            "consented_on": days_ago(31).isoformat(),
            "consent_version_id": str(w["trial"]["consent_versions"][0]["id"]),
            "reason": "consent form found in the site file",
        },
    )
    assert resp.status_code == 302
    stored = w["coord"].get(f"/screenings/{failed.json['id']}").json
    assert stored["outcome"] == "screen_failed" and stored["consented_on"] == (
        days_ago(31).isoformat()
    )
    assert stored["fail_reason"] == "AAV neutralising antibodies above the cut-off"


def test_screening_form_refuses_an_implausible_birth_year_and_a_foreign_orphacode(w, coord_page):
    last_year_end = date(TODAY.year - 1, 12, 30)
    late_birth = coord_page.post(
        "/screenings/new",
        data=screening_form(w, screened_on=last_year_end.isoformat(), birth_year=str(TODAY.year)),
    )
    assert late_birth.status_code == 422
    assert f"After the screening year ({TODAY.year - 1})" in text(late_birth)
    foreign = coord_page.post("/screenings/new", data=screening_form(w, orphacode="12345"))
    assert foreign.status_code == 422 and "This trial accepts ORPHA:98879" in text(foreign)
    assert "This trial accepts ORPHA:98879." in text(coord_page.get("/screenings/new"))
    assert w["coord"].get("/screenings").json == []


# --- the subject page -----------------------------------------------------------------


def test_reinstate_only_a_subject_lost_to_follow_up(w, coord_page):
    subject = enrol(w["coord"], w["trial"], w["site"], consented_on=days_ago(399))
    assert dose(w["coord"], subject, days_ago(398)).status_code == 201
    code = subject["code"]
    url = f"/subjects/{code}/reinstate"
    assert 'id="reinstate-form"' not in html(coord_page.get(f"/subjects/{code}"))
    not_lost = coord_page.post(url, data={"on": days_ago(1).isoformat(), "reason": "traced"})
    assert not_lost.status_code == 409
    assert "Only a subject lost to follow-up can be reinstated" in text(not_lost)

    lost = w["coord"].post(
        f"/subjects/{code}/end",
        json={"status": "lost_to_follow_up", "on": days_ago(100).isoformat(), "reason": "moved"},
    )
    assert lost.status_code == 200
    page = coord_page.get(f"/subjects/{code}")
    assert 'id="reinstate-form"' in html(page)
    assert "after the loss to follow-up" in text(page)  # why the contacts were cancelled
    before_loss = coord_page.post(url, data={"on": days_ago(200).isoformat(), "reason": "traced"})
    assert before_loss.status_code == 422 and "Before the loss" in text(before_loss)

    traced = {"on": days_ago(10).isoformat(), "reason": "traced through the patient group"}
    restated = coord_page.post(url, data=traced)
    assert restated.status_code == 200
    assert "LTFU year 2 visit (scheduled" in text(restated) and "scheduled again" in text(restated)
    assert w["coord"].get(f"/subjects/{code}").json["status"] == "lost_to_follow_up"
    back = coord_page.post(url, data={**traced, "confirmed": "yes"})
    assert back.status_code == 302
    stored = w["coord"].get(f"/subjects/{code}").json
    assert stored["status"] != "lost_to_follow_up" and stored["ended_on"] is None
    visits = visits_of(w["coord"], code)
    assert visits["LTFU year 1 visit"]["status"] == "cancelled"  # passed while lost
    assert visits["LTFU year 2 visit"]["status"] == "scheduled"
    assert "reinstated" in text(coord_page.get(back.headers["Location"]))


def test_a_dose_20_percent_off_needs_the_confirmation_and_is_a_dosing_error(app, api):
    w = world(api, stagger_days=0)
    subject = enrol(w["coord"], w["trial"], w["site"])
    page = browser(app, w["coord"])
    url = f"/subjects/{subject['code']}/dosing"
    form = page.get(f"/subjects/{subject['code']}")
    assert 'name="confirm_dose_deviation"' in html(form)
    assert "more than 10 % away from the cohort dose of 1e13 vg/kg" in text(form)
    body = {"dosed_at": local(days_ago(30)), "dose": "1.2e13", "lot_number": "L1"}
    refused = page.post(url, data={**body, "confirm_dose_deviation": "false"})
    assert refused.status_code == 422
    assert "+20 % from cohort C1&#39;s 1e13 vg/kg. Confirm to record it as a dosing error" in (
        text(refused)
    )
    assert 'value="1.2e13"' in html(refused)  # what was typed comes back
    assert w["coord"].get(f"/subjects/{subject['code']}").json["dosing"] is None

    confirmed = page.post(url, data={**body, "confirm_dose_deviation": ["false", "true"]})
    assert confirmed.status_code == 302
    deviations = w["coord"].get(f"/subjects/{subject['code']}/deviations").json
    assert [d["kind"] for d in deviations] == ["dosing_error"]
    after = page.get(confirmed.headers["Location"])
    assert "dosing-error deviation" in text(after)
    assert "dosing error" in text(after) and "+20 %" in text(after)  # deviations list


def test_the_dosing_time_is_the_sites_local_time_with_its_zone(app, api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "RM1", timezone="Europe/Rome")
    trial = open_trial(lead)
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    subject = enrol(coord, trial, site)
    page = browser(app, coord)
    assert page.post("/account", data={"action": "profile", "timezone": "Asia/Tokyo"}).status_code
    form = page.get(f"/subjects/{subject['code']}")
    now_in_rome = datetime.now(zoneinfo.ZoneInfo("Europe/Rome")).tzname()
    assert f"site time (Rome, {now_in_rome})" in text(form)
    assert "Europe/Rome" in text(form) and "whatever your own time zone" in text(form)

    gap = page.post(
        f"/subjects/{subject['code']}/dosing",
        data={"dosed_at": "2026-03-29T02:30", "dose": "1e13", "lot_number": "L1"},
    )
    assert gap.status_code == 422 and "does not exist in Europe/Rome" in text(gap)

    resp = page.post(
        f"/subjects/{subject['code']}/dosing",
        data={"dosed_at": local(days_ago(10), 9), "dose": "1e13", "lot_number": "L1"},
    )
    assert resp.status_code == 302
    rome = zoneinfo.ZoneInfo("Europe/Rome")
    expected = datetime(*days_ago(10).timetuple()[:3], 9, tzinfo=rome)
    stored = coord.get(f"/subjects/{subject['code']}").json["dosing"]
    assert datetime.fromisoformat(stored["dosed_at"]) == expected
    shown = f"{days_ago(10).isoformat()} 09:00 {expected.tzname()} (Europe/Rome)"
    assert stored["dosed_at_local"] == shown  # the API keeps ISO and the zone's name
    # The page, for a reader in Tokyo: the site's clock, labelled with the zone for that date.
    on_page = f"{days_ago(10).isoformat()} 09:00 (Rome, {expected.tzname()})"
    assert on_page in text(page.get(f"/subjects/{subject['code']}"))


def test_rcr_visits_take_a_result_and_a_positive_one_is_flagged(app, api):
    w = world(api, vector_type="lentiviral")
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(200)).status_code == 201
    code = subject["code"]
    visits = visits_of(w["coord"], code)
    month3, week4 = visits["RCR test month 3"], visits["Week 4"]
    page = browser(app, w["coord"])
    body = html(page.get(f"/subjects/{code}"))
    assert f'id="visit-{month3["id"]}-result"' in body
    assert f'id="visit-{week4["id"]}-result"' not in body  # protocol visits have no result
    for result in ("negative", "positive", "indeterminate"):
        assert f'<option value="{result}"' in body

    url = f"/subjects/{code}/visits/{month3['id']}"
    no_result = page.post(url, data={"status": "done", "done_on": month3["scheduled_on"]})
    assert no_result.status_code == 422 and "negative, positive or indeterminate" in text(no_result)
    positive = page.post(
        url, data={"status": "done", "done_on": month3["scheduled_on"], "result": "positive"}
    )
    assert positive.status_code == 302
    stored = visits_of(w["coord"], code)["RCR test month 3"]
    assert stored["result"] == "positive" and stored["positive_rcr"] is True
    shown = page.get(f"/subjects/{code}")
    assert "Positive RCR result — report as a serious adverse event" in text(shown)
    assert f'id="rcr-positive-{month3["id"]}"' in html(shown)
    # a safety monitor sees the same flag
    monitor_page = browser(app, api.as_role("safety_monitor"))
    assert "Positive RCR result" in text(monitor_page.get(f"/subjects/{code}"))


def test_visits_before_a_death_stay_enterable_and_cancelled_ones_say_why(w, coord_page):
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(100)).status_code == 201
    code = subject["code"]
    died = w["coord"].post(
        f"/subjects/{code}/end",
        json={"status": "died", "on": days_ago(50).isoformat(), "reason": "sepsis"},
    )
    assert died.status_code == 200
    visits = visits_of(w["coord"], code)
    page = coord_page.get(f"/subjects/{code}")
    body = html(page)
    assert f'id="visit-form-{visits["Week 4"]["id"]}"' in body  # scheduled before the death
    assert f'id="visit-form-{visits["Week 12"]["id"]}"' not in body  # cancelled
    row = re.search(rf'<tr id="visit-{visits["Week 12"]["id"]}".*?</tr>', body, re.S).group(0)
    assert "cancelled" in row and "after the death" in row
    resp = coord_page.post(
        f"/subjects/{code}/visits/{visits['Week 4']['id']}",
        data={"status": "done", "done_on": visits["Week 4"]["scheduled_on"]},
    )
    assert resp.status_code == 302
    assert visits_of(w["coord"], code)["Week 4"]["status"] == "done"


def test_the_consents_list_keeps_the_first_consent(w, coord_page):
    subject = enrol(w["coord"], w["trial"], w["site"])
    version = (
        w["lead"]
        .post(
            f"/trials/{w['trial']['id']}/consent-versions",
            json={
                "version": "2.0",
                "approved_on": days_ago(30).isoformat(),
                "reconsent_required": True,
            },
        )
        .json
    )
    resp = coord_page.post(
        f"/subjects/{subject['code']}/consents",
        data={"consent_version_id": version["id"], "consented_on": days_ago(3).isoformat()},
    )
    assert resp.status_code == 302
    page = coord_page.get(f"/subjects/{subject['code']}")
    table = re.search(r'<table[^>]*id="consents".*?</table>', html(page), re.S).group(0)
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td>", table)
    assert rows == [("1.0", days_ago(290).isoformat()), ("2.0", days_ago(3).isoformat())]
    assert "first consent" in table and "re-consent" in table
    assert f"version 2.0; first consent {days_ago(290).isoformat()}" in text(page)
    stored = w["coord"].get(f"/subjects/{subject['code']}").json
    assert stored["consented_on"] == days_ago(290).isoformat()


def test_admin_reads_subject_and_screening_pages_without_data_entry_forms(app, api, w):
    dosed = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], dosed, days_ago(50)).status_code == 201
    waiting = enrol(w["coord"], w["trial"], w["site"])
    admin = browser(app, api.as_role("admin"))
    for code in (dosed["code"], waiting["code"]):
        page = admin.get(f"/subjects/{code}")
        assert page.status_code == 200 and code in text(page)
        for form in ("dosing-form", "reinstate-form", "withdraw-form", "end-form"):
            assert f'id="{form}"' not in html(page), (code, form)
        assert "visit-form-" not in html(page) and 'id="reconsent-card"' not in html(page)
    screening = admin.get(f"/screenings/{waiting['screening_id']}")
    assert screening.status_code == 200
    assert 'id="outcome-form"' not in html(screening) and 'id="consent-form"' not in html(screening)
    visit = next(iter(visits_of(w["coord"], dosed["code"]).values()))
    writes = [
        (f"/subjects/{dosed['code']}/reinstate", {"on": days_ago(1).isoformat(), "reason": "x"}),
        (
            f"/screenings/{waiting['screening_id']}/consent",
            {"consented_on": days_ago(1).isoformat(), "consent_version_id": "1"},
        ),
        (
            f"/subjects/{waiting['code']}/dosing",
            {"dosed_at": local(days_ago(1)), "dose": "1e13", "lot_number": "L1"},
        ),
        (f"/subjects/{dosed['code']}/visits/{visit['id']}", {"status": "missed"}),
    ]
    for path, data in writes:
        assert admin.post(path, data=data).status_code == 403, path
    assert w["coord"].get(f"/subjects/{waiting['code']}").json["dosing"] is None


# --- the trial page ------------------------------------------------------------------------


def test_consent_version_with_a_site_approval_then_another_sites_approval(w, lead_page):
    other = active_site(w["lead"], "S02")
    tid = w["trial"]["id"]
    form = {
        "version": "2.0",
        "approved_on": "",
        "approval_site_id": str(w["site"]["id"]),
        "approval_approved_on": days_ago(5).isoformat(),
        "approval_language": "it",
        "reconsent_required": ["false", "true"],
    }
    restated = lead_page.post(f"/trials/{tid}/consent-versions", data=form)
    assert restated.status_code == 200 and "Approved at S01 from" in text(restated)
    resp = lead_page.post(f"/trials/{tid}/consent-versions", data={**form, "confirmed": "yes"})
    assert resp.status_code == 302
    version = next(
        v for v in w["lead"].get(f"/trials/{tid}").json["consent_versions"] if v["version"] == "2.0"
    )
    assert version["approved_on"] is None and version["reconsent_required"] is True
    assert [(a["site_code"], a["language"]) for a in version["site_approvals"]] == [("S01", "it")]
    assert "S01 from" in text(lead_page.get(resp.headers["Location"]))

    body = {
        "consent_version_id": str(version["id"]),
        "site_id": str(other["id"]),
        "approved_on": days_ago(2).isoformat(),
        "language": "fr",
    }
    restated = lead_page.post(f"/trials/{tid}/consent-site-approvals", data=body)
    assert restated.status_code == 200 and "Confirm: approval of consent version 2.0" in text(
        restated
    )
    url = f"/trials/{tid}/consent-site-approvals"
    added = lead_page.post(url, data={**body, "confirmed": "yes"})
    assert added.status_code == 302
    page = text(lead_page.get(f"/trials/{tid}"))
    assert f"S01 from {days_ago(5).isoformat()} · it" in page
    assert f"S02 from {days_ago(2).isoformat()} · fr" in page
    twice = lead_page.post(f"/trials/{tid}/consent-site-approvals", data=body)
    assert twice.status_code == 409
    assert "Site S02 has already approved this version" in text(twice)
    stored = w["lead"].get(f"/trials/{tid}").json["consent_versions"]
    assert [len(v["site_approvals"]) for v in stored if v["version"] == "2.0"] == [2]


def test_consent_version_form_with_a_half_filled_site_row_is_422(w, lead_page):
    tid = w["trial"]["id"]
    resp = lead_page.post(
        f"/trials/{tid}/consent-versions",
        data={"version": "3.0", "approval_site_id": str(w["site"]["id"])},
    )
    assert resp.status_code == 422
    field = re.search(
        r'id="consent-approval_approved_on".*?invalid-feedback d-block">(.*?)</div>',
        html(resp),
        re.S,
    )
    assert field and "This field is required." in field.group(1)  # plain words, not marshmallow's
    assert [v["version"] for v in w["lead"].get(f"/trials/{tid}").json["consent_versions"]] == [
        "1.0"
    ]


def test_a_closed_trial_can_be_ended_on_its_page(w, lead_page):
    tid = w["trial"]["id"]
    closed = w["lead"].patch(f"/trials/{tid}", json={"status": "closed", "reason": "target met"})
    assert closed.status_code == 200
    page = lead_page.get(f"/trials/{tid}")
    assert 'id="end-trial-form"' in html(page) and "closed to enrolment" in text(page)
    ended = lead_page.post(
        f"/trials/{tid}/status", data={"status": "ended", "reason": "follow-up complete"}
    )
    assert ended.status_code == 302
    assert w["lead"].get(f"/trials/{tid}").json["status"] == "ended"
    assert "The trial has ended." in text(lead_page.get(f"/trials/{tid}"))


def test_design_items_are_edited_and_removed_with_confirmation_during_setup(app, api):
    lead = api.as_role("consortium_lead")
    trial = open_trial(lead, open_=False)
    tid = trial["id"]
    page = browser(app, lead)
    view = page.get(f"/trials/{tid}")
    assert view.status_code == 200 and f"/trials/{tid}/design/cohort/" in html(view)
    assert_clean(view)

    day7 = next(d for d in trial["visit_definitions"] if d["name"] == "Day 7")
    edited = page.post(
        f"/trials/{tid}/design/visit_definition/{day7['id']}",
        data={
            "name": "Day 7",
            "day": "8",
            "window_before": "1",
            "window_after": "1",
            "primary_endpoint": "false",
            "reason": "typo in the synopsis",
        },
    )
    assert edited.status_code == 302
    stored = lead.get(f"/trials/{tid}").json
    assert next(d for d in stored["visit_definitions"] if d["name"] == "Day 7")["day"] == 8

    c2 = trial["cohorts"][1]
    clash = page.post(
        f"/trials/{tid}/design/cohort/{c2['id']}",
        data={
            "label": "C1",
            "sequence": "2",
            "dose": "3e13",
            "dose_unit": "vg/kg",
            "capacity": "3",
        },
    )
    assert clash.status_code == 409 and "A cohort with this label exists" in text(clash)
    assert f'class="collapse show" id="edit-cohort-{c2["id"]}"' in html(clash)

    e1 = next(c for c in trial["criteria"] if c["code"] == "E1")
    remove_url = f"/trials/{tid}/design/criterion/{e1['id']}/remove"
    ask = page.post(remove_url)
    assert ask.status_code == 200 and 'id="confirm-remove-form"' in html(ask)
    assert "Remove exclusion criterion E1?" in text(ask)
    assert_clean(ask)
    assert len(lead.get(f"/trials/{tid}").json["criteria"]) == 2  # nothing removed yet
    done = page.post(remove_url, data={"confirm": "yes", "reason": "merged into I1"})
    assert done.status_code == 302
    assert [c["code"] for c in lead.get(f"/trials/{tid}").json["criteria"]] == ["I1"]

    assert page.post(f"/trials/{tid}/design/site/1/remove").status_code == 404
    other = open_trial(lead, open_=False)
    foreign = other["cohorts"][0]["id"]
    assert page.post(f"/trials/{tid}/design/cohort/{foreign}/remove").status_code == 404


def test_once_open_the_design_forms_give_way_to_amendments(w, lead_page):
    tid = w["trial"]["id"]
    page = lead_page.get(f"/trials/{tid}")
    assert "/design/" not in html(page)
    assert 'id="amendment-note"' in html(page)
    assert f'href="/trials/{tid}/amendments"' in html(page)
    assert f'action="/trials/{tid}/cohorts/new"' not in html(page)
    criterion = w["trial"]["criteria"][0]
    refused = lead_page.post(
        f"/trials/{tid}/design/criterion/{criterion['id']}/remove", data={"confirm": "yes"}
    )
    assert refused.status_code == 409 and "Amendment required" in text(refused)
    assert len(w["lead"].get(f"/trials/{tid}").json["criteria"]) == 2


def test_safety_review_form_shows_escalation_readiness_per_cohort(app, api):
    w = world(api, stagger_days=0)
    tid = w["trial"]["id"]
    charter = w["lead"].post(
        f"/trials/{tid}/amendments",
        json={
            "version": "A1",
            "effective_on": days_ago(1).isoformat(),
            "reason": "SRC charter: full cohort and a 28-day DLT window",
            "escalation_requires_full_cohort": True,
            "dlt_window_days": 28,
        },
    )
    assert charter.status_code == 201
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(60)).status_code == 201
    page = browser(app, api.as_role("safety_monitor"))
    view = page.get(f"/trials/{tid}")
    table = re.search(r'<table[^>]*id="escalation-readiness".*?</table>', html(view), re.S)
    assert table
    c1, c2 = (c["id"] for c in w["trial"]["cohorts"][:2])
    row1 = re.search(rf'<tr id="readiness-{c1}".*?</tr>', table.group(0), re.S).group(0)
    assert "1 of 3" in re.sub(r"\s+", " ", row1) and re.search(r">\s*(59|60)\s*<", row1)
    assert "Every slot of cohort C1 must be dosed first (1 of 3)." in row1
    row2 = re.search(rf'<tr id="readiness-{c2}".*?</tr>', table.group(0), re.S).group(0)
    assert "Nobody in cohort C2 has been dosed." in row2
    assert "every slot dosed; 28-day DLT window" in text(view)
    signed = page.post(
        f"/trials/{tid}/safety-reviews",
        data={
            "cohort_id": str(c1),
            "decision": "escalate",
            "rationale": "no DLT",
            "password": PASSWORD,
        },
    )
    assert signed.status_code == 409 and "Escalation not ready" in text(signed)


# --- the amendments page ----------------------------------------------------------------------


def amendment_form(trial, **changes):
    """What the form posts when only `changes` are edited (it starts from the design)."""
    return {
        "version": "",
        "effective_on": days_ago(50).isoformat(),
        "reason": "",
        "stagger_days": str(trial["stagger_days"]),
        "ltfu_years": str(trial["ltfu_years"]),
        "dlt_window_days": "",
        "escalation_requires_full_cohort": "false",
        "accepted_orphacodes": "",
        "add_name": "",
        "add_day": "",
        "add_window_before": "",
        "add_window_after": "",
        "change_id": "",
        "change_day": "",
        "change_window_before": "",
        "change_window_after": "",
        "remove_id": "",
        **changes,
    }


def test_amendment_recorded_on_its_page_lists_changes_and_rescheduled_subjects(
    app, api, w, lead_page
):
    tid = w["trial"]["id"]
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(100)).status_code == 201
    url = f"/trials/{tid}/amendments"
    empty = lead_page.get(url)
    assert empty.status_code == 200 and "No amendment recorded" in text(empty)
    assert re.search(
        r'id="amendment-stagger_days" name="stagger_days"\s+type="number" value="14"', html(empty)
    )
    assert_clean(empty)

    week12 = next(d for d in w["trial"]["visit_definitions"] if d["name"] == "Week 12")
    resp = lead_page.post(
        url,
        data=amendment_form(
            w["trial"],
            version="A1",
            reason="DSMB asked for a later primary visit and a <week 16> check",
            stagger_days="21",
            accepted_orphacodes="98880, ORPHA:98881",
            change_id=str(week12["id"]),
            change_day="90",
            add_name="Week 16",
            add_day="112",
            add_window_before="7",
            add_window_after="7",
        ),
    )
    assert resp.status_code == 302
    [stored] = w["lead"].get(url).json
    assert stored["version"] == "A1" and stored["rescheduled"] == [subject["code"]]
    assert {"stagger_days", "accepted_orphacodes", "visit Week 12", "visit Week 16"} == set(
        stored["changes"]
    )
    trial = w["lead"].get(f"/trials/{tid}").json
    assert (trial["stagger_days"], trial["accepted_orphacodes"]) == (21, [98880, 98881])
    assert visits_of(w["coord"], subject["code"])["Week 16"]["day"] == 112

    page = lead_page.get(url)
    shown = text(page)
    assert "Sentinel stagger: 14 days → 21 days" in shown
    assert "Accepted ORPHAcodes: none → ORPHA:98880, ORPHA:98881" in shown
    assert "Visit Week 12: day 84 → 90" in shown
    assert "Visit Week 16 added (day 112, window \u22127 / +7 days)" in shown
    assert f'href="/subjects/{subject["code"]}"' in html(page)
    assert "&lt;week 16&gt;" in html(page) and "<week 16>" not in html(page)  # escaped
    assert_clean(page)

    duplicate = lead_page.post(
        url, data=amendment_form(trial, version="A1", reason="charter update", stagger_days="28")
    )
    assert duplicate.status_code == 409
    assert "This amendment version exists" in text(duplicate)
    assert re.search(r'id="amendment-version".*?Already used\.', html(duplicate), re.S)
    assert len(w["lead"].get(url).json) == 1
    assert w["lead"].get(f"/trials/{tid}").json["stagger_days"] == 21

    # a coordinator reads the list (their subject linked) but cannot amend
    coord_page = browser(app, w["coord"])
    read = coord_page.get(url)
    assert read.status_code == 200 and 'id="amendment-form"' not in html(read)
    assert f'href="/subjects/{subject["code"]}"' in html(read)
    other_site = active_site(w["lead"], "S02")
    stranger = browser(app, api.as_role("coordinator", site_ids=[other_site["id"]]))
    hidden = stranger.get(url)
    assert subject["code"] not in html(hidden) and "1 subject at other sites" in text(hidden)
    assert coord_page.post(url, data=amendment_form(trial, version="A2")).status_code == 403


def test_amendment_form_with_partial_input_is_422_with_every_error(w, lead_page):
    tid = w["trial"]["id"]
    url = f"/trials/{tid}/amendments"
    resp = lead_page.post(
        url,
        data=amendment_form(
            w["trial"],
            version="A2",
            effective_on="",
            reason="x",
            stagger_days="soon",
            accepted_orphacodes="98880, abc",
            add_day="112",
            change_day="90",
        ),
    )
    assert resp.status_code == 422
    body = html(resp)
    for field in (
        "effective_on",
        "reason",
        "stagger_days",
        "accepted_orphacodes",
        "add_name",
        "change_id",
    ):
        assert re.search(rf'id="amendment-{field}".*?invalid-feedback d-block', body, re.S), field
    assert "Choose the visit to change." in text(resp)
    orphacodes = re.search(
        r'id="amendment-accepted_orphacodes".*?invalid-feedback d-block">(.*?)</div>', body, re.S
    )
    plain = "Enter a whole number, in digits (for example 12)."  # not marshmallow's wording
    assert orphacodes and orphacodes.group(1).strip() == plain
    assert 'value="98880, abc"' in body  # what was typed comes back
    week4 = next(d for d in w["trial"]["visit_definitions"] if d["name"] == "Week 4")
    no_timing = lead_page.post(
        url,
        data=amendment_form(
            w["trial"], version="A2", reason="moving week 4", change_id=str(week4["id"])
        ),
    )
    assert no_timing.status_code == 422 and "Give the new study day or window." in text(no_timing)
    nothing = lead_page.post(
        url, data=amendment_form(w["trial"], version="A2", reason="nothing really")
    )
    assert nothing.status_code == 422 and "The amendment changes nothing" in text(nothing)
    assert w["lead"].get(url).json == []


def test_amendment_removing_a_visit_cancels_it_and_the_subject_page_says_why(app, api):
    w = world(api, stagger_days=0)
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(3)).status_code == 201
    tid = w["trial"]["id"]
    day7 = next(d for d in w["trial"]["visit_definitions"] if d["name"] == "Day 7")
    page = browser(app, w["lead"])
    resp = page.post(
        f"/trials/{tid}/amendments",
        data=amendment_form(
            w["trial"],
            version="A3",
            effective_on=days_ago(1).isoformat(),
            reason="Day 7 visit dropped",
            remove_id=str(day7["id"]),
        ),
    )
    assert resp.status_code == 302
    visit = visits_of(w["coord"], subject["code"])["Day 7"]
    assert (visit["status"], visit["cancel_reason"]) == ("cancelled", "amendment")
    assert "Visit Day 7 removed" in text(page.get(f"/trials/{tid}/amendments"))
    assert "removed by amendment" in text(page.get(f"/trials/{tid}"))
    coord_view = browser(app, w["coord"]).get(f"/subjects/{subject['code']}")
    assert "removed by an amendment" in text(coord_view)


def test_a_setup_trial_is_edited_on_its_page_not_amended(app, api):
    lead = api.as_role("consortium_lead")
    trial = open_trial(lead, open_=False)
    page = browser(app, lead)
    url = f"/trials/{trial['id']}/amendments"
    view = page.get(url)
    assert view.status_code == 200 and 'id="amendment-form"' not in html(view)
    assert "edit its design on the trial page" in text(view)
    refused = page.post(
        url, data=amendment_form(trial, version="A1", reason="too early", stagger_days="7")
    )
    assert refused.status_code == 409 and "not amended" in text(refused)


# --- every new page renders for every role that may open it ---------------------------------


@pytest.mark.parametrize("role", ["admin", "consortium_lead", "coordinator", "safety_monitor"])
def test_issue8_pages_render_cleanly_for_each_role(app, api, w, role):
    subject = enrol(w["coord"], w["trial"], w["site"], consented_on=days_ago(399))
    assert dose(w["coord"], subject, days_ago(398)).status_code == 201
    w["coord"].post(
        f"/subjects/{subject['code']}/end",
        json={"status": "lost_to_follow_up", "on": days_ago(100).isoformat(), "reason": "moved"},
    )
    user = {"coordinator": w["coord"], "consortium_lead": w["lead"]}.get(role) or api.as_role(role)
    page = browser(app, user)
    tid = w["trial"]["id"]
    reads = [f"/trials/{tid}", f"/trials/{tid}/amendments", f"/subjects/{subject['code']}"]
    if role != "safety_monitor":
        reads.append(f"/screenings/{subject['screening_id']}")
    for path in reads:
        resp = page.get(path)
        assert resp.status_code == 200, (path, resp.status_code)
        assert_clean(resp)
    reinstate = 'id="reinstate-form"' in html(page.get(f"/subjects/{subject['code']}"))
    assert reinstate is (role == "coordinator")
