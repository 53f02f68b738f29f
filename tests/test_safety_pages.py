"""The safety pages (issue 11), driven as a browser would (session login, form posts) and
checked through the API: the adverse-event form (from a subject and from a task), the event's
page with its follow-up versions and signed review, lab entry with the server's grade, the
expedited-report clocks, a trial's stopping rules and reporting table, the work queue,
notifications and the MedDRA import; refusals re-render with their status and field errors."""

import csv
import io
import re
import zoneinfo
from datetime import UTC, datetime

import pytest

from tests.builders import active_site, at, days_ago, dose, enrol, open_trial
from tests.factories import PASSWORD
from tests.test_enrollment_pages import browser, local, text
from trialmgr.extensions import db

ROME = zoneinfo.ZoneInfo("Europe/Rome")


def html(resp):
    return resp.get_data(as_text=True)


def assert_clean(resp):
    """Strict CSP: no inline styles, no inline scripts."""
    body = html(resp)
    assert "style=" not in body
    assert not re.search(r"<script(?![^>]*\bsrc=)", body)


def utc_of_rome(d, hour):
    return datetime(d.year, d.month, d.day, hour, tzinfo=ROME).astimezone(UTC)


def stored(value):
    return datetime.fromisoformat(value)


@pytest.fixture()
def w(api):
    """An open trial at S01 (Rome), a subject dosed 60 days ago, its coordinator, a lead and
    a safety monitor."""
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01", timezone="Europe/Rome")
    trial = open_trial(lead)
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    subject = enrol(coord, trial, site)
    assert dose(coord, subject, days_ago(60)).status_code == 201
    monitor = api.as_role("safety_monitor")
    return {
        "lead": lead,
        "site": site,
        "trial": trial,
        "coord": coord,
        "subject": subject,
        "monitor": monitor,
        "code": subject["code"],
    }


@pytest.fixture()
def coord_page(app, w):
    return browser(app, w["coord"])


@pytest.fixture()
def monitor_page(app, w):
    return browser(app, w["monitor"])


def ae_form(**fields):
    """The AE form as a coordinator fills it (times in the site's local time)."""
    return {
        "term": "Hepatitis",
        "soc": "Hepatobiliary disorders",
        "onset_date": days_ago(5).isoformat(),
        "grade": "2",
        "seriousness_criteria": [""],
        "causality": "unlikely",
        "expected": "true",
        "aesi": "false",
        "site_awareness_at": local(days_ago(4), 10),
        **fields,
    }


def api_ae(coord, code, **fields):
    body = {
        "subject_code": code,
        "term": "ALT increased",
        "soc": "Investigations",
        "onset_date": days_ago(10).isoformat(),
        "grade": 2,
        "causality": "possible",
        "expected": False,
        "site_awareness_at": at(days_ago(9)),
        **fields,
    }
    resp = coord.post("/adverse-events", json=body)
    assert resp.status_code == 201, resp.json
    return resp.json


# --- the adverse-event form --------------------------------------------------------------


def test_ae_form_records_the_event_with_awareness_in_the_sites_local_time(w, coord_page):
    form = coord_page.get(f"/adverse-events/new?subject={w['code']}")
    assert form.status_code == 200
    page = text(form)
    assert "Seriousness is not severity" in page
    for words in (
        "Life-threatening",
        "In-patient hospitalisation or prolongation",
        "Persistent or significant disability",
        "Congenital anomaly",
        "Other important medical event",
        "4 · Life-threatening",
        "1 · Mild",
    ):
        assert words in page, words
    now_in_rome = datetime.now(zoneinfo.ZoneInfo("Europe/Rome")).tzname()
    assert f"site time (Rome, {now_in_rome})" in page and "Europe/Rome" in page
    assert "No MedDRA dictionary is imported" in page
    assert_clean(form)

    resp = coord_page.post(
        f"/adverse-events/new?subject={w['code']}",
        data=ae_form(
            seriousness_criteria=["hospitalisation"],
            grade="3",
            causality="possible",
            expected="false",
            aesi="true",
            aesi_category="hepatotoxicity",
            action_taken="hospitalisation",
            narrative="Admitted for observation.",
            sponsor_awareness_at=local(days_ago(3), 9),
        ),
    )
    assert resp.status_code == 302, text(resp)[:2000]
    (ae,) = w["coord"].get("/adverse-events").json
    assert resp.headers["Location"].endswith(f"/adverse-events/{ae['id']}")
    assert (ae["term"], ae["grade"], ae["seriousness_criteria"]) == (
        "Hepatitis",
        3,
        ["hospitalisation"],
    )
    assert (ae["serious"], ae["susar"], ae["aesi_category"]) == (True, True, "hepatotoxicity")
    assert stored(ae["site_awareness_at"]) == utc_of_rome(days_ago(4), 10)
    assert stored(ae["sponsor_awareness_at"]) == utc_of_rome(days_ago(3), 9)
    assert {r["authority"] for r in ae["expedited_reports"]} == {"sponsor", "FDA", "EU", "IBC"}

    shown = coord_page.get(resp.headers["Location"])
    assert "SUSAR recorded" in text(shown)
    assert "Admitted for observation." in text(shown)
    assert_clean(shown)


def test_ae_form_refusal_keeps_the_typed_values_and_shows_the_field_errors(w, coord_page):
    resp = coord_page.post(
        f"/adverse-events/new?subject={w['code']}",
        data=ae_form(term="<script>alert(1)</script> rash", aesi="true", narrative="typed"),
    )
    assert resp.status_code == 422
    body = html(resp)
    assert "Give the category of special interest." in text(resp)
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt; rash"' in body  # kept, escaped
    assert "<script>alert" not in body
    assert ">typed</textarea>" in body
    assert 'value="2" checked' in body  # the grade chosen
    assert_clean(resp)
    future = coord_page.post(
        f"/adverse-events/new?subject={w['code']}",
        data=ae_form(onset_date=days_ago(-3).isoformat()),
    )
    assert future.status_code == 422 and "Must not be in the future." in text(future)
    missing = coord_page.post(f"/adverse-events/new?subject={w['code']}", data={"term": "x"})
    assert missing.status_code == 422
    assert w["coord"].get("/adverse-events").json == []


def test_a_grade_4_related_event_from_the_form_pauses_the_trial(w, coord_page):
    resp = coord_page.post(
        f"/adverse-events/new?subject={w['code']}",
        data=ae_form(grade="4", causality="probable", seriousness_criteria=["life_threatening"]),
    )
    assert resp.status_code == 302
    assert w["lead"].get(f"/trials/{w['trial']['id']}").json["status"] == "paused"
    page = text(coord_page.get(resp.headers["Location"]))
    assert "fired a stopping rule" in page and "Dosing paused in" in page


def test_ae_form_opened_from_a_lab_task_is_prefilled_and_closes_the_task(w, coord_page):
    lab = (
        w["coord"]
        .post(
            "/labs",
            json={
                "subject_code": w["code"],
                "analyte": "ALT",
                "value": 900,
                "unit": "U/L",
                "uln": 40,
                "collected_at": at(days_ago(3), 7),
            },
        )
        .json
    )
    (task,) = [t for t in w["coord"].get("/work-items").json if t["kind"] == "lab_ae"]
    form = coord_page.get(f"/adverse-events/new?subject={w['code']}&task={task['id']}")
    assert form.status_code == 200
    body = html(form)
    assert "From your work queue" in text(form)
    assert 'value="Alanine aminotransferase increased"' in body
    assert 'value="Investigations"' in body
    assert f'value="{days_ago(3).isoformat()}"' in body
    assert 'id="ae-grade-4" value="4" checked' in body
    resp = coord_page.post(
        f"/adverse-events/new?subject={w['code']}&task={task['id']}",
        data=ae_form(
            term="Alanine aminotransferase increased",
            soc="Investigations",
            grade="4",
            onset_date=days_ago(3).isoformat(),
            site_awareness_at=local(days_ago(3), 15),
            aesi="true",
            aesi_category="hepatotoxicity",
            lab_result_id="999999",  # ignored: the task says which lab
        ),
    )
    assert resp.status_code == 302, text(resp)[:1500]
    (ae,) = w["coord"].get("/adverse-events").json
    assert not [t for t in w["coord"].get("/work-items").json if t["kind"] == "lab_ae"]
    labs = w["coord"].get(f"/labs?subject_code={w['code']}").json
    assert [(x["id"], x["adverse_event_id"]) for x in labs] == [(lab["id"], ae["id"])]
    again = coord_page.get(f"/adverse-events/new?subject={w['code']}&task={task['id']}")
    assert again.status_code == 200 and "is already done" in text(again)


def test_ae_form_without_a_subject_asks_for_one(w, coord_page):
    resp = coord_page.get("/adverse-events/new")
    assert resp.status_code == 200
    assert f'<option value="{w["code"]}">' in html(resp)
    assert coord_page.get("/labs/new").status_code == 200


def test_another_sites_coordinator_gets_404_on_the_pages_and_forms(app, api, w):
    ae = api_ae(w["coord"], w["code"], seriousness_criteria=["hospitalisation"])
    other = active_site(w["lead"], "S02")
    stranger = browser(app, api.as_role("coordinator", site_ids=[other["id"]]))
    for path in (
        f"/adverse-events/{ae['id']}",
        f"/adverse-events/new?subject={w['code']}",
        f"/labs/new?subject={w['code']}",
        f"/subjects/{w['code']}/labs",
    ):
        assert stranger.get(path).status_code == 404, path
    posted = stranger.post(f"/adverse-events/new?subject={w['code']}", data=ae_form())
    assert posted.status_code == 404
    follow_up = stranger.post(
        f"/adverse-events/{ae['id']}/follow-up", data={"grade": "3", "reason": "not mine"}
    )
    assert follow_up.status_code == 404
    listing = stranger.get("/adverse-events")
    assert listing.status_code == 200 and "No adverse events recorded" in text(listing)
    assert "No expedited reports are due" in text(stranger.get("/expedited-reports"))
    assert "Nothing to do" in text(stranger.get("/tasks"))
    assert w["coord"].get(f"/adverse-events/{ae['id']}").json["version"] == 1


# --- the event's page: follow-up versions and signed review ------------------------------


def test_follow_up_adds_a_version_and_the_page_shows_what_changed(w, coord_page):
    ae = api_ae(w["coord"], w["code"])
    page = coord_page.get(f"/adverse-events/{ae['id']}")
    assert page.status_code == 200
    assert 'id="follow-up-form"' in html(page) and 'id="review-form"' not in html(page)
    assert "None: the event needs no expedited report" in text(page)
    assert_clean(page)

    no_reason = coord_page.post(
        f"/adverse-events/{ae['id']}/follow-up",
        data={**ae_form(grade="3", causality="possible", expected="false", term="ALT up")},
    )
    assert no_reason.status_code == 422
    assert 'value="ALT up"' in html(no_reason)  # the follow-up form keeps what was typed
    aware = local(days_ago(2), 16)
    resp = coord_page.post(
        f"/adverse-events/{ae['id']}/follow-up",
        data={
            **ae_form(
                term="ALT increased",
                soc="Investigations",
                onset_date=days_ago(10).isoformat(),
                grade="3",
                causality="possible",
                expected="false",
                seriousness_criteria=["", "hospitalisation"],
            ),
            "awareness_at": aware,
            "reason": "admitted on day 8",
        },
    )
    assert resp.status_code == 302, text(resp)[:2000]
    after = w["coord"].get(f"/adverse-events/{ae['id']}").json
    assert (after["version"], after["grade"], after["serious"], after["susar"]) == (
        2,
        3,
        True,
        True,
    )
    fda = next(r for r in after["expedited_reports"] if r["authority"] == "FDA")
    assert stored(fda["clock_start"]) == utc_of_rome(days_ago(2), 16)  # from the new info
    shown = coord_page.get(f"/adverse-events/{ae['id']}")
    words = text(shown)
    assert "Version 2 of the adverse event recorded" in words and "Clocks opened" in words
    assert "Grade: 2 (moderate) → 3 (severe)" in words
    assert "Seriousness criteria: — → In-patient hospitalisation or prolongation" in words
    assert "admitted on day 8" in words
    unchanged = coord_page.post(
        f"/adverse-events/{ae['id']}/follow-up",
        data={
            **ae_form(
                term="ALT increased",
                soc="Investigations",
                onset_date=days_ago(10).isoformat(),
                grade="3",
                causality="possible",
                expected="false",
                seriousness_criteria=["", "hospitalisation"],
            ),
            "reason": "nothing new",
        },
    )
    assert unchanged.status_code == 422 and "Nothing changed" in text(unchanged)


def test_review_is_signed_with_the_password_and_a_later_version_outdates_it(
    app, w, coord_page, monitor_page
):
    from trialmgr.auth.models import User

    ae = api_ae(w["coord"], w["code"])
    page = monitor_page.get(f"/adverse-events/{ae['id']}")
    body = html(page)
    assert 'id="review-form"' in body and 'id="follow-up-form"' not in body
    assert '<input type="hidden" name="version" value="1">' in body
    assert "I have reviewed this adverse event" in text(page)

    wrong = monitor_page.post(
        f"/adverse-events/{ae['id']}/reviews",
        data={"version": "1", "password": "not-my-password", "comment": "looks fine"},
    )
    assert wrong.status_code == 422
    assert "Re-enter your own password to sign." in text(wrong)
    assert "not-my-password" not in html(wrong)  # never echoed back
    assert ">looks fine</textarea>" in html(wrong)
    with app.app_context():
        monitor = db.session.get(User, w["monitor"].user["id"])
        assert monitor.failed_logins == 1  # the failure is counted, and kept
    assert w["monitor"].get(f"/adverse-events/{ae['id']}/reviews").json == []

    signed = monitor_page.post(
        f"/adverse-events/{ae['id']}/reviews",
        data={"version": "1", "password": PASSWORD, "comment": "plausible"},
    )
    assert signed.status_code == 302
    (review,) = w["monitor"].get(f"/adverse-events/{ae['id']}/reviews").json
    assert (review["version"], review["comment"]) == (1, "plausible")
    assert "Version 1 is reviewed." in text(monitor_page.get(f"/adverse-events/{ae['id']}"))

    w["coord"].patch(f"/adverse-events/{ae['id']}", json={"grade": 3, "reason": "worsened"})
    outdated = text(monitor_page.get(f"/adverse-events/{ae['id']}"))
    assert "outdated" in outdated and "version 2 came later" in outdated
    stale = monitor_page.post(
        f"/adverse-events/{ae['id']}/reviews", data={"version": "1", "password": PASSWORD}
    )
    assert stale.status_code == 409 and "Version changed" in text(stale)
    assert (
        coord_page.post(
            f"/adverse-events/{ae['id']}/reviews", data={"version": "2", "password": PASSWORD}
        ).status_code
        == 403
    )


# --- labs --------------------------------------------------------------------------------------


def test_lab_grade_preview_is_the_servers_grade(w, coord_page, monitor_page):
    ok = coord_page.get("/labs/grade?analyte=ALT&value=121&unit=U/L&uln=40")
    assert ok.status_code == 200 and ok.json["grade"] == 2
    assert ok.json["label"] == "Grade 2 Alanine aminotransferase increased"
    assert abs(ok.json["uln_multiple"] - 3.025) < 1e-9
    both_limits = coord_page.get("/labs/grade?analyte=PLT&value=24.9&unit=10^9/L&lln=150&uln=400")
    assert both_limits.status_code == 200 and both_limits.json["grade"] == 4
    no_uln = coord_page.get("/labs/grade?analyte=ALT&value=121&unit=U/L")
    assert no_uln.status_code == 422 and "uln" in no_uln.json["errors"]
    bad_unit = coord_page.get("/labs/grade?analyte=ALT&value=1&unit=mg/dL&uln=40")
    assert bad_unit.status_code == 422 and "unit" in bad_unit.json["errors"]
    incomplete = coord_page.get("/labs/grade?analyte=ALT")
    assert incomplete.status_code == 422 and "value" in incomplete.json["errors"]
    assert monitor_page.get("/labs/grade?analyte=HGB&value=79&unit=g/L&lln=120").json["grade"] == 3


def test_lab_form_records_the_result_and_the_subjects_labs_show_grades(w, coord_page):
    form = coord_page.get(f"/labs/new?subject={w['code']}")
    assert form.status_code == 200
    body = html(form)
    assert 'data-grade-url="/labs/grade"' in body and "js/safety.js" in body
    assert "µmol/L" in text(form) and "/mm3" in text(form)  # the accepted units are listed
    assert_clean(form)

    refused = coord_page.post(
        f"/labs/new?subject={w['code']}",
        data={
            "analyte": "BILI",
            "value": "3",
            "unit": "mg/dL",
            "collected_at": local(days_ago(2), 8),
        },
    )
    assert refused.status_code == 422 and 'value="3"' in html(refused)
    assert "give uln" in text(refused)

    resp = coord_page.post(
        f"/labs/new?subject={w['code']}",
        data={
            "analyte": "ALT",
            "value": "250",
            "unit": "U/L",
            "uln": "40",
            "lln": "7",
            "collected_at": local(days_ago(2), 8),
        },
    )
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(f"/subjects/{w['code']}/labs")
    platelets = coord_page.post(
        f"/labs/new?subject={w['code']}",
        data={
            "analyte": "PLT",
            "value": "180",
            "unit": "10^9/L",
            "uln": "400",
            "lln": "150",
            "collected_at": local(days_ago(2), 8),
        },
    )
    assert platelets.status_code == 302  # a report's both limits are accepted
    labs = {x["analyte"]: x for x in w["coord"].get(f"/labs?subject_code={w['code']}").json}
    assert (labs["ALT"]["grade"], labs["PLT"]["grade"]) == (3, 0)
    assert stored(labs["ALT"]["collected_at"]) == utc_of_rome(days_ago(2), 8)

    listing = coord_page.get(resp.headers["Location"])
    words = text(listing)
    assert "Grade 3 Alanine aminotransferase increased" in words  # the flash
    assert "6.25" in words and "within limits" in words
    (task,) = [t for t in w["coord"].get("/work-items").json if t["kind"] == "lab_ae"]
    assert f"/adverse-events/new?subject={w['code']}&amp;task={task['id']}" in html(listing)
    assert_clean(listing)


# --- expedited reports ----------------------------------------------------------------------


def test_clocks_page_lists_by_due_date_and_a_monitor_records_a_submission(
    app, w, coord_page, monitor_page
):
    ae = api_ae(
        w["coord"],
        w["code"],
        seriousness_criteria=["hospitalisation"],
        onset_date=days_ago(30).isoformat(),
        site_awareness_at=at(days_ago(29)),
    )
    clocks = {(r["authority"], r["kind"]): r for r in ae["expedited_reports"]}
    page = monitor_page.get("/expedited-reports")
    assert page.status_code == 200
    body = html(page)
    order = [int(i) for i in re.findall(r'<tr id="report-(\d+)"', body)]
    by_due = sorted(clocks.values(), key=lambda r: (r["due_at"], r["id"]))
    assert order == [r["id"] for r in by_due]
    sponsor = clocks["sponsor", "initial"]
    assert f'<tr id="report-{sponsor["id"]}" class="table-danger">' in body  # overdue: red
    assert "overdue" in text(page) and 'id="submit-form-' in body
    assert_clean(page)
    assert 'id="submit-form-' not in html(coord_page.get("/expedited-reports"))

    as_coord = coord_page.post(
        f"/expedited-reports/{sponsor['id']}/submit",
        data={"submitted_at": local(days_ago(1), 9), "reference": "X-1"},
    )
    assert as_coord.status_code == 403
    future = monitor_page.post(
        f"/expedited-reports/{sponsor['id']}/submit",
        data={"submitted_at": local(days_ago(-2), 9), "reference": "X-1"},
    )
    assert future.status_code == 422 and "Future." in text(future)
    assert 'value="X-1"' in html(future)
    resp = monitor_page.post(
        f"/expedited-reports/{sponsor['id']}/submit?status=open",
        data={"submitted_at": local(days_ago(1), 9), "reference": "SAE-2026-001"},
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("?status=open")
    done = w["monitor"].get(f"/expedited-reports?adverse_event_id={ae['id']}&status=submitted")
    (report,) = done.json
    assert (report["reference"], report["late"]) == ("SAE-2026-001", True)
    assert stored(report["submitted_at"]) == utc_of_rome(days_ago(1), 9)
    assert "It was late." in text(monitor_page.get("/expedited-reports"))
    submitted = text(monitor_page.get("/expedited-reports?status=submitted"))
    assert "submitted late" in submitted and "SAE-2026-001" in submitted
    assert "Overdue" in text(monitor_page.get("/expedited-reports?status=overdue"))


# --- a trial's safety rules ---------------------------------------------------------------------


def test_managers_edit_stopping_rules_and_admins_the_reporting_table(app, api, w, coord_page):
    tid = w["trial"]["id"]
    lead_page = browser(app, w["lead"])
    page = lead_page.get(f"/trials/{tid}/safety-rules")
    assert page.status_code == 200
    assert 'id="form-stop-grade4_related"' in html(page)
    assert 'id="form-clock-' not in html(page)  # the reporting table is the admins'
    assert_clean(page)

    bad = lead_page.post(
        f"/trials/{tid}/stopping-rules",
        data={"kind": "same_soc_grade3", "count": "1", "min_grade": "3", "active": "true"},
    )
    assert bad.status_code == 422 and "count is 2 or more." in text(bad)
    saved = lead_page.post(
        f"/trials/{tid}/stopping-rules",
        data={
            "kind": "same_soc_grade3",
            "count": "3",
            "min_grade": "4",
            "active": "false",
            "description": "Three related grade 4 events of one SOC",
            "reason": "charter v2",
        },
    )
    assert saved.status_code == 302
    rules = {r["kind"]: r for r in w["lead"].get(f"/trials/{tid}/stopping-rules").json}
    assert rules["same_soc_grade3"]["params"] == {"count": 3, "min_grade": 4}
    assert rules["same_soc_grade3"]["active"] is False
    assert (
        coord_page.post(
            f"/trials/{tid}/stopping-rules", data={"kind": "hys_law", "active": "false"}
        ).status_code
        == 403
    )

    rule = next(
        r
        for r in w["lead"].get(f"/trials/{tid}/expedited-rules").json
        if (r["authority"], r["condition"]) == ("FDA", "susar_other")
    )
    url = f"/trials/{tid}/expedited-rules/{rule['id']}"
    assert lead_page.post(url, data={"deadline_days": "10", "reason": "SOP"}).status_code == 403
    admin_page = browser(app, api.as_role("admin"))
    assert 'id="form-clock-' in html(admin_page.get(f"/trials/{tid}/safety-rules"))
    no_reason = admin_page.post(url, data={"deadline_days": "10"})
    assert no_reason.status_code == 422
    both = admin_page.post(url, data={"deadline_hours": "48", "deadline_days": "10", "reason": "x"})
    assert both.status_code == 422
    edited = admin_page.post(
        url,
        data={"deadline_hours": "", "deadline_days": "10", "active": "true", "reason": "SOP 12"},
    )
    assert edited.status_code == 302
    after = next(
        r for r in w["lead"].get(f"/trials/{tid}/expedited-rules").json if r["id"] == rule["id"]
    )
    assert (after["deadline_days"], after["deadline_hours"]) == (10, None)
    other_trial = open_trial(w["lead"])
    assert (
        admin_page.post(
            f"/trials/{other_trial['id']}/expedited-rules/{rule['id']}",
            data={"deadline_days": "9", "reason": "wrong trial"},
        ).status_code
        == 404
    )


def test_a_firing_is_listed_with_its_records(w, coord_page):
    ae = api_ae(w["coord"], w["code"], grade=4, seriousness_criteria=["life_threatening"])
    page = coord_page.get(f"/trials/{w['trial']['id']}/safety-rules")
    assert f'href="/adverse-events/{ae["id"]}">AE {ae["id"]}</a>' in html(page)
    assert "grade 4" in text(page)


# --- work queue and notifications ---------------------------------------------------------------


def test_each_user_sees_their_tasks_linking_to_the_form_that_closes_them(
    w, coord_page, monitor_page
):
    ae = api_ae(w["coord"], w["code"], seriousness_criteria=["hospitalisation"])
    mine = coord_page.get("/tasks")
    assert mine.status_code == 200
    assert f'href="/adverse-events/{ae["id"]}#follow-up"' in html(mine)
    assert "Follow-up report: ALT increased" in text(mine)
    assert "Medical review" not in text(mine)
    assert_clean(mine)
    theirs = monitor_page.get("/tasks")
    assert f'href="/adverse-events/{ae["id"]}#review"' in html(theirs)
    assert "#report-" in html(theirs) and "Record the submission" in text(theirs)
    assert "Follow-up report" not in text(theirs)


def test_notifications_show_in_the_navbar_and_are_marked_read(w, monitor_page):
    assert 'id="unread-count"' not in html(monitor_page.get("/notifications"))
    api_ae(w["coord"], w["code"], grade=4, seriousness_criteria=["life_threatening"])
    page = monitor_page.get("/notifications")
    assert re.search(r'id="unread-count">1<', html(page))
    assert "dosing paused by a stopping rule" in text(page)
    assert_clean(page)
    (note,) = w["monitor"].get("/notifications?unread=true").json
    opened = monitor_page.post(f"/notifications/{note['id']}/read", data={"open": "1"})
    assert opened.status_code == 302 and opened.headers["Location"] == note["link"]
    assert w["monitor"].get("/notifications?unread=true").json == []
    assert 'id="unread-count"' not in html(monitor_page.get("/tasks"))
    assert monitor_page.post("/notifications/999/read").status_code == 404


def test_mark_all_notifications_read(w, monitor_page):
    api_ae(w["coord"], w["code"], grade=4, seriousness_criteria=["life_threatening"])
    api_ae(
        w["coord"],
        w["code"],
        grade=5,
        causality="probable",
        resolution_date=days_ago(8).isoformat(),
    )
    assert len(w["monitor"].get("/notifications?unread=true").json) >= 2  # each firing
    resp = monitor_page.post("/notifications/read-all")
    assert resp.status_code == 302
    assert w["monitor"].get("/notifications?unread=true").json == []


# --- MedDRA ------------------------------------------------------------------------------------


MEDDRA = (
    "pt_code,pt_term,soc,soc_code\n"
    "10001551,Alanine aminotransferase increased,Investigations,10022891\n"
    "10028606,Myocarditis,Cardiac disorders,10007541\n"
)


def test_meddra_import_and_the_forms_lookup_without_javascript(app, api, w, coord_page):
    admin_page = browser(app, api.as_role("admin"))
    page = admin_page.get("/admin/meddra")
    assert page.status_code == 200 and "No dictionary is imported" in text(page)
    assert coord_page.get("/admin/meddra").status_code == 403
    nothing = admin_page.post("/admin/meddra", data={})
    assert nothing.status_code == 422 and "Attach the CSV file." in text(nothing)
    broken = admin_page.post(
        "/admin/meddra",
        data={"file": (io.BytesIO(b"code,term\n1,x\n"), "x.csv")},
        content_type="multipart/form-data",
    )
    assert broken.status_code == 422 and "Missing: pt_code, pt_term, soc." in text(broken)
    resp = admin_page.post(
        "/admin/meddra",
        data={"file": (io.BytesIO(MEDDRA.encode("utf-8-sig")), "meddra.csv")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 302
    assert "2 terms added" in text(admin_page.get("/admin/meddra"))

    assert coord_page.get("/meddra/search?q=myo").json[0]["pt_code"] == "10028606"
    assert coord_page.get("/meddra/search?q=m").json == []
    looked_up = coord_page.post(
        f"/adverse-events/new?subject={w['code']}",
        data={**ae_form(term="Myocarditis, viral?", soc=""), "meddra_q": "myocard", "lookup": "1"},
    )
    assert looked_up.status_code == 200  # a look-up saves nothing
    assert 'value="10028606"' in html(looked_up) and 'value="Myocarditis, viral?"' in html(
        looked_up
    )
    assert w["coord"].get("/adverse-events").json == []
    saved = coord_page.post(
        f"/adverse-events/new?subject={w['code']}",
        data={**ae_form(term="Myocarditis, viral?", soc=""), "pt_code": "10028606"},
    )
    assert saved.status_code == 302
    (ae,) = w["coord"].get("/adverse-events").json
    assert (ae["pt_term"], ae["soc"]) == ("Myocarditis", "Cardiac disorders")


# --- the list, its filters and CSV ---------------------------------------------------------------


def test_ae_list_filters_and_exports_csv_with_formula_cells_escaped(w, coord_page):
    api_ae(w["coord"], w["code"], term='=HYPERLINK("http://x")', soc="Investigations")
    serious = api_ae(
        w["coord"],
        w["code"],
        term="Hepatitis",
        soc="Hepatobiliary disorders",
        grade=3,
        seriousness_criteria=["hospitalisation"],
        onset_date=days_ago(3).isoformat(),
        site_awareness_at=at(days_ago(2)),
    )
    page = coord_page.get("/adverse-events")
    assert page.status_code == 200 and "Hepatitis" in text(page) and "HYPERLINK" in text(page)
    assert_clean(page)
    only_serious = text(coord_page.get("/adverse-events?serious=true"))
    assert "Hepatitis" in only_serious and "HYPERLINK" not in only_serious
    assert "HYPERLINK" not in text(coord_page.get("/adverse-events?min_grade=3"))
    assert "Hepatitis" in text(coord_page.get("/adverse-events?soc=hepatobiliary disorders"))
    by_date = text(coord_page.get(f"/adverse-events?since={days_ago(5).isoformat()}"))
    assert "Hepatitis" in by_date and "HYPERLINK" not in by_date
    bad = coord_page.get("/adverse-events?min_grade=9")
    assert bad.status_code == 422 and "Filters ignored" in text(bad)

    export = coord_page.get("/adverse-events/export.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(export.get_data().decode("utf-8-sig"))))
    assert {r["term"] for r in rows} == {'\'=HYPERLINK("http://x")', "Hepatitis"}
    only = list(
        csv.DictReader(
            io.StringIO(
                coord_page.get("/adverse-events/export.csv?susar=true")
                .get_data()
                .decode("utf-8-sig")
            )
        )
    )
    assert [(r["id"], r["subject"], r["seriousness_criteria"]) for r in only] == [
        (str(serious["id"]), w["code"], "hospitalisation")
    ]


# --- the subject page ---------------------------------------------------------------------------


def test_subject_page_lists_the_events_and_links_the_forms_for_coordinators(
    w, coord_page, monitor_page
):
    ae = api_ae(w["coord"], w["code"], term="Pyrexia", soc="General disorders")
    page = coord_page.get(f"/subjects/{w['code']}")
    body = html(page)
    assert f'href="/adverse-events/new?subject={w["code"]}"' in body
    assert f'href="/labs/new?subject={w["code"]}"' in body
    assert f'href="/adverse-events/{ae["id"]}">Pyrexia</a>' in body
    assert_clean(page)
    theirs = html(monitor_page.get(f"/subjects/{w['code']}"))
    assert f'href="/adverse-events/{ae["id"]}">Pyrexia</a>' in theirs
    assert "/adverse-events/new" not in theirs and "/labs/new" not in theirs


# --- every page, every role -------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "consortium_lead", "coordinator", "safety_monitor"])
def test_safety_pages_render_for_each_role(app, api, w, role):
    ae = api_ae(w["coord"], w["code"], seriousness_criteria=["hospitalisation"])
    user = {"coordinator": w["coord"], "consortium_lead": w["lead"], "safety_monitor": w["monitor"]}
    page = browser(app, user.get(role) or api.as_role(role))
    tid = w["trial"]["id"]
    reads = [
        "/adverse-events",
        "/adverse-events?serious=true&min_grade=1",
        f"/adverse-events/{ae['id']}",
        "/expedited-reports",
        "/expedited-reports?status=overdue",
        f"/trials/{tid}/safety-rules",
        f"/subjects/{w['code']}/labs",
        f"/subjects/{w['code']}",
        "/tasks",
        "/tasks?include_done=true",
        "/notifications",
    ]
    writes = [f"/adverse-events/new?subject={w['code']}", f"/labs/new?subject={w['code']}"]
    for path in reads + (writes if role == "coordinator" else []):
        resp = page.get(path)
        assert resp.status_code == 200, (path, resp.status_code)
        assert_clean(resp)
    nav = html(page.get("/adverse-events"))
    assert 'href="/adverse-events"' in nav and 'href="/expedited-reports"' in nav
    assert 'id="nav-notifications"' in nav
    if role != "coordinator":
        for path in writes:
            assert page.get(path).status_code == 403, path
    assert page.get("/admin/meddra").status_code == (200 if role == "admin" else 403)
