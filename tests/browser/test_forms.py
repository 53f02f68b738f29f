"""Forms that help, in a real browser: the error summary of a refused form and where focus
goes, every error at once in plain words, submit buttons that cannot send twice, the
e-signature block, and a site's own time zone on its subject's page."""

from __future__ import annotations

import re
import time
from zoneinfo import ZoneInfo

from playwright.sync_api import expect


def test_refused_form_lists_every_error_at_the_top_and_takes_focus(open_page):
    """A taken e-mail address and a weak password come back together, each a link to its
    field, named by the field's label; focus is on the summary."""
    page = open_page("admin")
    page.goto("/admin/users/new")
    page.fill("#f-email", "coordinator@example.org")  # the demo's, taken
    page.fill("#f-name", "Second Carla")
    page.fill("#f-password", "password1234")  # long enough for the browser, too easy
    page.click("main form button[type=submit]")
    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    links = summary.locator("ul.error-list a")
    expect(links).to_have_count(2)
    texts = sorted(links.all_inner_texts())
    assert texts[0].startswith("E-mail: Already used"), texts
    assert texts[1].startswith("Password: This password is too easy to guess"), texts
    # the summary sits above the form's fields
    assert summary.bounding_box()["y"] < page.locator("#f-email").bounding_box()["y"]
    summary.get_by_role("link", name=re.compile("^Password")).click()
    expect(page.locator("#f-password")).to_be_focused()


def test_library_wording_is_replaced_by_plain_sentences(open_page):
    """A field the browser would have caught, sent empty anyway: the page says it plainly."""
    page = open_page("admin")
    page.goto("/admin/users/new")
    page.fill("#f-email", "new.person@example.org")
    page.fill("#f-password", "correct horse battery staple 2026")
    page.locator("main form").first.evaluate("f => f.setAttribute('novalidate', '')")
    page.click("main form button[type=submit]")
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary.locator("ul.error-list a")).to_have_text(["Name: This field is required."])
    body = page.locator("main").inner_text()
    assert "Missing data for required field" not in body
    expect(page.locator("#f-name")).to_have_class(re.compile("is-invalid"))


def test_esignature_block_names_the_signer_the_meaning_and_attempts_left(open_page, live_server):
    page = open_page("safety_monitor")
    page.goto(f"/adverse-events/{live_server.targets['unreviewed_ae']}")
    block = page.locator("#review-signature")
    expect(block.locator("legend")).to_have_text("Electronic signature")
    expect(block.locator(".esignature-name")).to_have_text("Sam Safety")
    expect(block.locator(".esignature-meaning")).to_contain_text("reviewed")
    expect(block.locator(".esignature-attempts")).to_have_text(
        "5 attempts left before your account is locked for 15 minutes."
    )
    # the password field is described by the attempts line
    expect(page.locator("#review-password")).to_have_attribute(
        "aria-describedby", "review-attempts"
    )


def test_a_refused_signature_names_the_rule_and_links_to_the_password(open_page, live_server):
    """A wrong e-signature password on an adverse event's review is a refusal by rule: the
    summary gives its title and links to the password; one attempt fewer is left."""
    page = open_page("safety_monitor")
    page.goto(f"/adverse-events/{live_server.targets['unreviewed_ae']}")
    before = attempts_left(page)
    page.fill("#review-password", "not my password")
    page.click("#review-form button[type=submit]")
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Signature not verified")
    expect(summary.locator("ul.error-list a")).to_have_text(
        ["Your password: Re-enter your own password to sign."]
    )
    assert attempts_left(page) == before - 1


def test_submit_button_shows_busy_and_a_second_press_sends_nothing(open_page, live_server):
    page = open_page("coordinator")
    page.goto("/account")
    # Playwright waits for a navigation in flight before it evaluates again, so the second
    # press (a click, then Enter's requestSubmit) is timed inside the page, while the first
    # request is held at the server: unguarded, it would send a second POST.
    press = """() => {
      const b = document.querySelector('form:has(input[value=profile]) button[type=submit]');
      b.click();
      setTimeout(() => { b.click(); b.form.requestSubmit(); }, 300);
      return [b.getAttribute('aria-busy'), b.getAttribute('aria-disabled'), b.innerText];
    }"""
    with live_server.hold("POST", "/account") as gate:
        busy, disabled, label = page.evaluate(press)
        gate.wait_arrival()
        time.sleep(1.5)  # the second press happened in the page meanwhile
        assert gate.count == 1
    assert (busy, disabled) == ("true", "true")
    assert "working" in label
    expect(page.locator(".alert-success")).to_contain_text("Preferences saved")
    assert gate.count == 1


def test_dosing_time_shows_in_the_site_zone_whatever_the_reader_zone(open_page, live_server):
    """Rome's subject: the dosing moment is printed in Rome's wall-clock time and zone for a
    coordinator whose own zone is UTC."""
    page = open_page("coordinator")
    page.goto(f"/subjects/{live_server.targets['subject']}")
    dosed_at = live_server.targets["dosed_at"]
    rome = dosed_at.astimezone(ZoneInfo("Europe/Rome"))
    utc = dosed_at.astimezone(ZoneInfo("UTC"))
    text = page.locator("#dosed-at").inner_text()
    assert rome.strftime("%H:%M") in text and rome.tzname() in text, text
    assert rome.utcoffset() != utc.utcoffset()
    assert f"{utc:%H:%M} UTC" not in text


def attempts_left(page) -> int:
    text = page.locator(".esignature-attempts").first.inner_text()
    return int(text.split()[0])
