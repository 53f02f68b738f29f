"""Each role's first page is a worklist: a row is one click from the form that does the work.
Also the subject's actions menu (a confirmation restates the step; cancelling changes
nothing) and sortable lists."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def test_coordinator_visit_row_opens_the_visit_form_in_one_click(open_page):
    page = open_page("coordinator")
    page.goto("/")
    row = page.locator("#work-visits tbody tr").first
    expect(row).to_be_visible()
    visit = row.get_attribute("id").removeprefix("work-visit-")
    row.locator("a").first.click()
    expect(page).to_have_url(re.compile(rf"/subjects/[A-Z0-9-]+#visit-{visit}$"))
    form = page.locator(f"#visit-form-{visit} form")
    expect(form).to_be_visible()
    expect(page.locator(f"#visit-form-{visit} :focus")).to_have_count(1)  # its first field


def test_coordinator_reconsent_row_lands_on_the_reconsent_form(open_page):
    page = open_page("coordinator")
    page.goto("/")
    button = page.locator("#work-reconsent li").first.get_by_role("link", name="Record re-consent")
    button.click()
    expect(page).to_have_url(re.compile(r"#reconsent-card$"))
    card = page.locator("#reconsent-card")
    expect(card.locator("form")).to_be_visible()
    expect(card.locator(":focus")).to_have_count(1)


def test_lead_sees_enrolment_funnel_and_expiring_approvals_one_click_from_the_site(open_page):
    page = open_page("consortium_lead")
    page.goto("/")
    expect(page.locator("#enrolment-table")).to_be_attached()
    expect(page.locator("[data-testid=funnel]").first).to_be_visible()
    pending = page.locator("#work-pending-sites li a").first
    code = pending.inner_text().split(" · ")[0]
    pending.click()
    expect(page.locator("h1")).to_contain_text(code)
    expect(page.locator("form[action$='/activate']")).to_be_visible()


def test_monitor_review_due_opens_the_signed_review_form(open_page):
    page = open_page("safety_monitor")
    page.goto("/safety/workspace")
    rows = page.locator("#ws-escalation li a")
    if rows.count():
        rows.first.click()
        expect(page.locator("#review-form")).to_be_visible()
        expect(page.locator("#review-signature .esignature-name")).to_have_text("Sam Safety")
    events = page.locator("#ws-events tbody tr a")
    page.goto("/safety/workspace")
    expect(events.first).to_be_visible()
    events.first.click()
    expect(page).to_have_url(re.compile(r"/adverse-events/\d+$"))


def test_admin_home_shows_a_verified_audit_chain(open_page):
    page = open_page("admin")
    page.goto("/")
    expect(page.locator("#audit-chain-status")).to_have_attribute("data-valid", "true")


def test_subject_actions_menu_restates_a_withdrawal_and_cancel_changes_nothing(
    open_page, live_server
):
    page = open_page("coordinator")
    code = live_server.targets["subject"]
    page.goto(f"/subjects/{code}")
    status = page.locator("h1 .badge").first.inner_text()
    page.click("#subject-actions-button")
    page.click("#action-withdraw")
    card = page.locator("#withdraw-card")
    expect(card).to_be_visible()
    card.locator("#withdraw-withdrawn_on").fill(
        page.locator("#withdraw-withdrawn_on").get_attribute("max")
    )
    card.locator("#withdraw-reason").fill("Family moved abroad")
    card.locator("button[type=submit]").click()
    expect(page.locator("#confirmation")).to_be_visible()
    expect(page.locator("#confirm-summary")).to_contain_text(code)
    page.click("#confirm-cancel")
    expect(page).to_have_url(re.compile(rf"/subjects/{code}"))
    expect(page.locator("h1 .badge").first).to_have_text(status)


def test_partner_list_sorts_by_a_column_both_ways(open_page):
    page = open_page("consortium_lead")
    page.goto("/partners?sort=name&dir=asc")
    header = page.locator("th[data-sort-key=name]")
    expect(header).to_have_attribute("aria-sort", "ascending")
    names = page.locator("[data-testid=partner-row] td:first-child").all_inner_texts()
    assert len(names) > 1 and names == sorted(names, key=str.casefold)
    page.click("#sort-name")  # the same header again: the other way
    expect(header).to_have_attribute("aria-sort", "descending")
    again = page.locator("[data-testid=partner-row] td:first-child").all_inner_texts()
    assert again == list(reversed(names))
    page.click("#sort-country")
    expect(page.locator("th[data-sort-key=country]")).to_have_attribute("aria-sort", "ascending")
    expect(header).to_have_attribute("aria-sort", "none")
    countries = page.locator("[data-testid=partner-row] td:nth-child(4)").all_inner_texts()
    assert countries == sorted(countries)
