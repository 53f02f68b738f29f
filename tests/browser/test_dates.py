"""Date fields in a real browser: Chromium shows its own mm/dd/yyyy picker whatever the user
chose, so every date field carries a visible hint and reads the typed date back in words and
in the user's format; a date-time on a site's clock is read back with the zone's label for
that date (CET in winter, CEST in summer). No inline script: the page has no CSP violation."""

from __future__ import annotations

from datetime import date

from playwright.sync_api import expect

USER_FORMATS = {"YYYY-MM-DD": "%Y-%m-%d", "DD-MMM-YYYY": "%d-%b-%Y", "DD/MM/YYYY": "%d/%m/%Y"}
USER_FORMATS["MM/DD/YYYY"] = "%m/%d/%Y"


def test_typing_a_date_reads_it_back_in_words_under_the_visible_hint(open_page, live_server):
    page = open_page("coordinator")
    page.goto(f"/adverse-events/new?subject={live_server.targets['subject']}")
    field = page.locator("#ae-onset_date")
    hint = page.locator("#ae-onset_date-hint")
    echo = page.locator("#ae-onset_date-echo")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text("In your browser's date format")
    assert field.get_attribute("aria-describedby") == "ae-onset_date-hint ae-onset_date-echo"

    field.focus()
    page.keyboard.type("11042026")  # Chromium's en-US picker: month, day, year
    typed = date(2026, 11, 4)
    assert field.input_value() == typed.isoformat()
    chosen = typed.strftime(USER_FORMATS[echo.get_attribute("data-format") or "YYYY-MM-DD"])
    expect(echo).to_have_text(f"Wednesday 4 November 2026 · {chosen}")

    field.fill("")
    expect(echo).to_have_text("")


def test_a_site_time_is_read_back_with_the_zones_label_for_its_date(open_page, live_server):
    page = open_page("coordinator")
    page.goto(f"/adverse-events/new?subject={live_server.targets['subject']}")
    echo = page.locator("#ae-site_awareness_at-echo")
    expect(page.locator("#ae-site_awareness_at-hint")).to_contain_text("On the site's clock")
    page.fill("#ae-site_awareness_at", "2026-01-15T09:00")
    expect(echo).to_contain_text("Thursday 15 January 2026")
    expect(echo).to_contain_text("09:00 Rome, CET")
    page.fill("#ae-site_awareness_at", "2026-07-15T09:00")
    expect(echo).to_contain_text("Wednesday 15 July 2026")
    expect(echo).to_contain_text("09:00 Rome, CEST")
