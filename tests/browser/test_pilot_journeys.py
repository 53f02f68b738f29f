"""End-to-end journeys across the pilot, one per role, driven through the pages as a user
would: clicks and form fills, the confirmations accepted, downloads saved.

Each journey works on a trial of its own (made by the `journey_trial` fixture through the
enrolment services, as `flask demo seed` makes the demo's: there is a page for every step of
it, but setting up a trial is not the journey under test), and on subjects, adverse events,
sites and reports it creates itself under unique names. So the journeys do not depend on
their order, on each other or on the other browser tests, and leave the demo's numbers as
they were: GT-01's subjects, events and pauses are untouched.

Pages fail their test on any console error or CSP violation (tests/browser/conftest.py); a
failed journey leaves screenshots of every page it opened in tests/browser/artifacts/.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pypdf
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import _CSP_LISTENER, ACCOUNTS, PASSWORD, LiveServer

# --- set-up: a trial per journey ---------------------------------------------------------


def _make_trial(app: Any, prefix: str) -> dict[str, Any]:
    """An open trial with one cohort (sentinel first), two criteria, consent version 1.0
    approved at every site and two visits after dosing."""
    from trialmgr.auth.models import SystemActor
    from trialmgr.clock import utcnow
    from trialmgr.enrollment.services import consent as consent_service
    from trialmgr.enrollment.services import trials as trials_service
    from trialmgr.extensions import db

    lead = SystemActor(email="system:journeys")
    code = f"{prefix}-{secrets.token_hex(3).upper()}"
    with app.app_context():
        now = utcnow()
        trial = trials_service.create_trial(
            lead,
            {
                "code": code,
                "title": f"Journey trial {code}",
                "orphacode": 98879,
                "vector_type": "aav",
                "stagger_days": 14,
            },
        )
        trials_service.add_cohort(
            lead,
            trial,
            {"label": "C1", "dose": "1e13", "dose_unit": "vg/kg", "capacity": 3, "sequence": 1},
        )
        for crit, kind, text in (
            ("I1", "inclusion", "Severe haemophilia B (FIX activity <= 2 IU/dL)"),
            ("E1", "exclusion", "Neutralising antibodies to AAV8 above 1:5"),
        ):
            trials_service.add_criterion(lead, trial, {"code": crit, "kind": kind, "text": text})
        consent_service.add_consent_version(
            lead, trial, {"version": "1.0", "approved_on": now.date() - timedelta(days=60)}, now
        )
        for name, day, window in (("Day 7", 7, 1), ("Week 4", 28, 3)):
            trials_service.add_visit_definition(
                lead,
                trial,
                {"name": name, "day": day, "window_before": window, "window_after": window},
            )
        trials_service.update_trial(lead, trial, {"status": "open", "reason": "Journey set-up"})
        db.session.commit()
        made = {"id": trial.id, "code": code}
        db.session.remove()
    return made


@pytest.fixture()
def journey_trial(live_server: LiveServer) -> Callable[[str], dict[str, Any]]:
    return lambda prefix: _make_trial(live_server.app, prefix)


@pytest.fixture()
def other_site_subject(live_server: LiveServer) -> str:
    """A demo subject of Lyon (FR01), a site the Rome coordinator does not belong to."""
    from trialmgr.enrollment.models import Subject
    from trialmgr.extensions import db
    from trialmgr.partners.models import Site

    with live_server.app.app_context():
        code = (
            db.session.execute(
                sa.select(Subject.code)
                .join(Site, Site.id == Subject.site_id)
                .where(Site.code == "FR01")
                .order_by(Subject.id)
            )
            .scalars()
            .first()
        )
        db.session.remove()
    assert code is not None
    return code


@pytest.fixture()
def signed_out_context(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    """A browser context nobody has signed in to (closed after the screenshots are taken:
    request it before `open_page`)."""
    context = browser.new_context(base_url=live_server.url)
    context.add_init_script(_CSP_LISTENER)
    yield context
    context.close()


# --- steps a coordinator takes in several journeys -----------------------------------------


def _accept_confirmations(page: Page) -> None:
    """Irreversible steps ask `confirm()` first (data-confirm forms): the user accepts."""
    page.on("dialog", lambda dialog: dialog.accept())


def _option(page: Page, select: str, text: str) -> str:
    value = page.locator(f"{select} option", has_text=text).first.get_attribute("value")
    assert value is not None, f"no option {text!r} in {select}"
    return value


def screen_and_enrol(page: Page, trial_code: str) -> str:
    """Screening with consent (outcome left pending), then eligibility recorded on the
    screening, then enrolment from it: the new subject's code."""
    page.goto("/")
    page.get_by_role("link", name="New screening").click()
    page.select_option("#choose-trial_id", _option(page, "#choose-trial_id", f"{trial_code} ·"))
    page.click("#choose-trial button[type=submit]")
    expect(page.locator("#screening-form")).to_contain_text(trial_code)
    page.fill("#screening-birth_year", "2014")
    page.select_option("#screening-sex", "M")
    today = page.get_attribute("#screening-consented_on", "max")
    assert today
    page.fill("#screening-consented_on", today)
    page.select_option(
        "#screening-consent_version_id", _option(page, "#screening-consent_version_id", "1.0")
    )
    page.check("#screening-crit_I1-yes")
    page.check("#screening-crit_E1-no")
    page.check("#screening-outcome-pending")
    page.click("#screening-form button[type=submit]")
    expect(page.locator("h1")).to_contain_text("pending")
    expect(page.locator("#screening-consent")).to_contain_text(f"version 1.0, signed {today}")

    page.select_option("#outcome-outcome", "eligible")
    page.click("#outcome-form button[type=submit]")
    expect(page.locator("h1 .badge")).to_have_text("eligible")

    page.click("#enrol-button")
    expect(page.locator("#screening-consent-note")).to_contain_text("enrolment uses it")
    page.click("#enrol-form button[type=submit]")
    expect(page.locator("#subject-code")).to_be_visible()
    code = page.locator("#subject-code").inner_text()
    assert re.fullmatch(r"IT01-[A-Z0-9]+", code), code
    expect(page.locator("h1 [data-status]")).to_have_attribute("data-status", "enrolled")
    return code


def record_adverse_event(
    page: Page,
    subject: str,
    term: str,
    grade: int,
    causality: str,
    serious: tuple[str, ...] = (),
) -> int:
    """The adverse-event form, opened from the subject page: the new event's id."""
    page.goto(f"/subjects/{subject}")
    page.click("#record-ae")
    page.fill("#ae-term", term)
    page.fill("#ae-soc", "Hepatobiliary disorders")
    onset = page.get_attribute("#ae-onset_date", "max")
    assert onset
    page.fill("#ae-onset_date", onset)
    page.check(f"#ae-grade-{grade}")
    for criterion in serious:
        page.check(f"#ae-criterion-{criterion}")
    page.select_option("#ae-causality", causality)
    page.check("#ae-expected-false")
    page.click("#ae-save")
    expect(page).to_have_url(re.compile(r"/adverse-events/\d+$"))
    expect(page.locator("h1")).to_contain_text(term)
    return int(page.url.rsplit("/", 1)[1])


# --- the journeys --------------------------------------------------------------------------


def test_coordinator_journey_from_login_to_an_adverse_event_on_the_worklist(
    signed_out_context, open_page, journey_trial, other_site_subject
):
    trial = journey_trial("JC")
    open_page.contexts["coordinator, signing in"] = signed_out_context
    page = open_page("coordinator, signing in")
    _accept_confirmations(page)

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.fill("#email", ACCOUNTS["coordinator"])
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Welcome")
    expect(page.locator("#worklist")).to_be_visible()

    code = screen_and_enrol(page, trial["code"])

    page.fill("#dosing-dosed_at", page.get_attribute("#dosing-dosed_at", "max") or "")
    page.fill("#dosing-lot_number", "VEC-JOURNEY-01")
    page.click("#dosing-form button[type=submit]")
    expect(page.locator("h1 [data-status]")).to_have_attribute("data-status", "dosed")
    dosed_on = date.fromisoformat(page.locator("#dosed-at").inner_text()[:10])

    # The visit schedule, from the dosing date: study day N is dosing day + N (then the
    # yearly long-term follow-up contacts).
    visits = page.locator("#visits tbody tr[id^=visit-]:not([id^=visit-form])")
    for name, day in (("Day 7", 7), ("Week 4", 28)):
        row = visits.filter(has_text=name)
        expect(row).to_have_count(1)
        expect(row).to_contain_text((dosed_on + timedelta(days=day)).isoformat())

    term = f"Hepatitis JC {secrets.token_hex(2)}"
    ae = record_adverse_event(page, code, term, grade=3, causality="unlikely")

    page.get_by_role("link", name="Home", exact=True).click()
    row = page.locator(f"#work-event-{ae}")
    expect(row).to_contain_text(term)
    expect(row).to_contain_text(code)
    expect(row).to_contain_text("G3")
    row.get_by_role("link", name=term).click()
    expect(page).to_have_url(re.compile(rf"/adverse-events/{ae}#follow-up$"))
    expect(page.locator("#follow-up-form")).to_be_visible()

    # Another site's subject by URL: a 404 page, not its record. A page of its own outside
    # the console check, which would count Chromium's report of the 404 as an error.
    stranger = signed_out_context.new_page()
    response = stranger.goto(f"/subjects/{other_site_subject}")
    assert response is not None and response.status == 404
    expect(stranger.locator("#subject-code")).to_have_count(0)
    expect(stranger.locator("#visits, #dosing-card, #consents")).to_have_count(0)
    stranger.close()


def test_safety_monitor_journey_from_a_new_sae_to_resuming_the_paused_trial(
    open_page, journey_trial
):
    trial = journey_trial("JM")
    coordinator = open_page("coordinator")
    code = screen_and_enrol(coordinator, trial["code"])
    term = f"Acute liver failure JM {secrets.token_hex(2)}"
    # Grade 4, probably related: the trial's "grade 4 related" stopping rule fires.
    ae = record_adverse_event(
        coordinator,
        code,
        term,
        grade=4,
        causality="probable",
        serious=("life_threatening", "hospitalisation"),
    )
    expect(coordinator.locator(".alert-warning")).to_contain_text(
        f"dosing in {trial['code']} is paused"
    )

    page = open_page("safety_monitor")
    _accept_confirmations(page)
    page.goto("/")
    page.get_by_role("link", name="Safety workspace", exact=True).click()
    expect(page).to_have_url(re.compile(r"/safety/workspace$"))
    event = page.locator(f"#ws-event-{ae}")
    expect(event).to_contain_text(term)
    expect(event).to_contain_text(code)
    expect(event).to_contain_text("not reviewed")
    pause = page.locator("[data-testid=ws-pause]", has_text=trial["code"])
    expect(pause).to_contain_text("grade 4")
    expect(pause).to_contain_text("still paused")

    # The adverse-event list has it too.
    page.goto("/adverse-events")
    expect(page.locator(f"a[href='/adverse-events/{ae}']").first).to_be_visible()

    # The reporting clocks of a serious event: the sponsor's 24 hours first, open.
    page.goto("/expedited-reports")
    clocks = page.locator("#reports tbody tr", has=page.locator(f"a[href='/adverse-events/{ae}']"))
    expect(clocks.first).to_be_visible()
    sponsor = clocks.filter(has_text="sponsor")
    expect(sponsor).to_have_count(1)
    expect(sponsor).to_contain_text("open")
    expect(sponsor).to_contain_text("1 day left")
    expect(clocks.filter(has_text="FDA")).to_have_count(1)

    # The pause, and resuming it with a signed decision.
    page.goto("/safety/workspace")
    page.locator("[data-testid=ws-pause]", has_text=trial["code"]).get_by_role(
        "link", name=trial["code"]
    ).click()
    expect(page.locator("h1")).to_contain_text("dosing paused")
    signature = page.locator("#resume-signature")
    expect(signature.locator(".esignature-name")).to_have_text("Sam Safety")
    expect(signature.locator(".esignature-meaning")).to_contain_text("resuming dosing")
    page.fill("#resume-reason", "DSMB reviewed the event: hepatic monitoring added; resume.")
    page.fill("#resume-password", PASSWORD)
    page.click("#resume-form button[type=submit]")
    expect(page.locator("h1")).not_to_contain_text("dosing paused")
    expect(page.locator("#resume-form")).to_have_count(0)

    page.goto("/safety/workspace")
    expect(page.locator("[data-testid=ws-pause]", has_text=trial["code"])).not_to_contain_text(
        "still paused"
    )


def test_consortium_lead_journey_activation_feasibility_and_the_dsmb_pdf(
    open_page, journey_trial, tmp_path: Path
):
    trial = journey_trial("JL")
    coordinator = open_page("coordinator")
    subject = screen_and_enrol(coordinator, trial["code"])
    term = f"Infusion reaction JL {secrets.token_hex(2)}"
    record_adverse_event(coordinator, subject, term, grade=2, causality="possible")

    page = open_page("consortium_lead")
    _accept_confirmations(page)

    # A new site: activating it before every approval is in force names what is missing.
    site_code = "J" + secrets.token_hex(3).upper()
    page.goto("/sites")
    page.get_by_role("link", name="New site", exact=True).click()
    page.select_option("#f-partner_id", index=1)
    page.fill("#f-code", site_code)
    page.fill("#f-name", f"Journey site {site_code}")
    page.fill("#f-country", "IT")
    page.fill("#f-timezone", "Europe/Rome")
    page.click("main form button[type=submit]")
    expect(page.locator("h1")).to_contain_text(site_code)
    expect(page.locator("h1 .badge")).to_have_text("pending")

    def record_approval(kind: str) -> None:
        page.select_option("#approval-kind", kind)
        page.fill("#approval-reference", f"{site_code}-{kind.upper()}")
        page.fill("#approval-granted_on", page.get_attribute("#approval-granted_on", "max") or "")
        page.click("form[action$='/approvals'] button[type=submit]")
        expect(page.locator(f"#missing-{kind}")).to_have_count(0)

    for kind in ("irb", "ibc", "contract"):
        record_approval(kind)
    page.click("form[action$='/activate'] button[type=submit]")
    problem = page.locator("#form-problem")
    expect(problem).to_contain_text("Activation gate closed")
    expect(problem).to_contain_text("siv")
    expect(page.locator("h1 .badge")).to_have_text("pending")

    record_approval("siv")
    page.click("form[action$='/activate'] button[type=submit]")
    expect(page.locator("#confirm-summary")).to_contain_text(f"Site {site_code}")
    expect(page.locator("#confirm-details")).to_contain_text("SIV")
    page.click("#confirm-button")
    expect(page.locator("h1 .badge")).to_have_text("active")

    # Feasibility lights of the demo trial, whose progression criteria are set.
    page.goto("/feasibility")
    page.locator("#feasibility-trials tr", has_text="GT-01").get_by_role(
        "link", name="Feasibility"
    ).click()
    lights = page.locator("#criteria tbody .light-badge")
    expect(lights.first).to_be_visible()
    for light in lights.all_inner_texts():
        assert light in ("green", "amber", "red", "no data"), light

    # The lead works on Rome's calendar, the calendar of the site whose event the report is
    # to hold (after 23:00 UTC, Rome's today is UTC's tomorrow).
    page.goto("/account")
    page.select_option("#f-timezone", "Europe/Rome")
    page.locator("form:has(input[name=action][value=profile]) button[type=submit]").click()
    expect(page.locator("#f-timezone")).to_have_value("Europe/Rome")

    # The DSMB report of the journey's trial, cut off today so that today's event is in it.
    page.goto("/reports")
    page.select_option("#g-kind", "dsmb_safety")
    page.select_option("#g-trial", str(trial["id"]))
    page.select_option("#g-site", "")
    today = page.get_attribute("#g-cut-off", "max")
    assert today
    expect(page.locator("#g-cut-off-help")).to_contain_text(f"choose today ({today})")
    page.fill("#g-cut-off", today)
    page.click("form[action$='/reports/generate'] button[type=submit]")
    summary = page.locator("#confirm-summary")
    expect(summary).to_contain_text("DSMB safety report")
    expect(summary).to_contain_text(trial["code"])
    expect(summary).to_contain_text(f"data cut-off {today}")
    page.click("#confirm-button")
    flash = page.locator(".alert-success", has_text="generated")
    expect(flash).to_contain_text(f"data cut-off {today}")
    report_id = re.search(r"Report #(\d+)", flash.inner_text())
    assert report_id, flash.inner_text()

    row = page.locator(f"#report-{report_id[1]}")
    expect(row).to_contain_text(trial["code"])
    with page.expect_download() as download:
        row.get_by_role("link", name="PDF").click()
    saved = tmp_path / "dsmb.pdf"
    download.value.save_as(saved)
    reader = pypdf.PdfReader(saved)
    text = " ".join(" ".join(p.extract_text() for p in reader.pages).split())
    assert term in text
