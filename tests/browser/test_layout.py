"""Layout at the sizes people use: a laptop (1366 px wide) and a phone (390 px). Tables fit
or scroll inside a box that takes keyboard focus; the page itself never scrolls sideways;
the phone pages have no axe finding of any impact."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page

from tests.browser.conftest import describe, run_axe

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

PAGE_OVERFLOW = "() => document.scrollingElement.scrollWidth - window.innerWidth"


@pytest.fixture(scope="module")
def ae_with_clocks(live_server: Any) -> int:
    """An adverse event of the demo with expedited-reporting clocks."""
    from trialmgr.extensions import db
    from trialmgr.safety.models import ExpeditedReport

    with live_server.app.app_context():
        first = sa.select(ExpeditedReport.adverse_event_id).order_by(ExpeditedReport.id)
        found = db.session.execute(first).scalars().first()
    assert found is not None
    return int(found)


def opened(open_page: Any, role: str, path: str, size: dict[str, int]) -> Page:
    page = open_page(role)
    page.set_viewport_size(size)
    response = page.goto(path)
    assert response is not None and response.status == 200, f"{role} {path}"
    return page


def assert_no_sideways_page(page: Page) -> None:
    overflow = page.evaluate(PAGE_OVERFLOW)
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow} px"


def test_reporting_clocks_fit_the_ae_page_at_1366(open_page, ae_with_clocks):
    page = opened(open_page, "safety_monitor", f"/adverse-events/{ae_with_clocks}", LAPTOP)
    box = page.locator("#ae-clocks").locator("xpath=..")
    widths = box.evaluate("b => [b.scrollWidth, b.clientWidth]")
    assert widths[0] <= widths[1], f"clocks table {widths[0]} px in a {widths[1]} px box"
    last = page.locator("#ae-clocks thead th").last
    assert last.evaluate(
        "th => th.getBoundingClientRect().right <= th.closest('div').getBoundingClientRect().right"
    )
    assert_no_sideways_page(page)


def test_subject_visits_are_cards_and_the_timeline_stacks_on_a_phone(open_page, live_server):
    code = live_server.targets["subject"]
    page = opened(open_page, "coordinator", f"/subjects/{code}", PHONE)
    assert_no_sideways_page(page)
    rows = page.locator("#visits > tbody > tr:visible")
    assert rows.count() > 3
    box = page.locator("#visits").locator("xpath=..")
    widths = box.evaluate("b => [b.scrollWidth, b.clientWidth]")
    assert widths[0] <= widths[1], f"visits {widths[0]} px in a {widths[1]} px box"
    first = rows.first
    assert first.evaluate("tr => getComputedStyle(tr).display") == "block"
    label = first.locator("td[data-label=Scheduled]").evaluate(
        "td => getComputedStyle(td, '::before').content"
    )
    assert "Scheduled" in label
    # the timeline: what happened gets the item's width, under its moment
    items = page.locator("#timeline > li")
    assert items.count() > 3
    for i in range(items.count()):
        item = items.nth(i)
        ratio = item.evaluate(
            "li => li.lastElementChild.getBoundingClientRect().width"
            " / li.getBoundingClientRect().width"
        )
        assert ratio > 0.7, f"timeline item {i} squeezed: {item.inner_text()!r}"


def test_the_audit_filters_have_visible_labels(open_page):
    page = opened(open_page, "consortium_lead", "/audit", LAPTOP)
    fields = page.locator("form[method=get] input:not([type=hidden])")
    assert fields.count() == 6
    for i in range(fields.count()):
        field = fields.nth(i)
        field_id = field.get_attribute("id")
        assert field_id, f"filter {field.get_attribute('name')} has no id"
        label = page.locator(f"label[for='{field_id}']")
        assert label.is_visible() and label.inner_text().strip(), f"{field_id} has no label"
        assert field.get_attribute("placeholder") is None, f"{field_id} names itself by placeholder"


PHONE_PAGES = [
    ("coordinator", "/"),
    ("safety_monitor", "/"),
    ("consortium_lead", "/"),
    ("admin", "/"),
    ("coordinator", "/subjects/{subject}"),
    ("safety_monitor", "/subjects/{subject}"),
    ("coordinator", "/adverse-events/{ae}"),
    ("safety_monitor", "/adverse-events/{clocks_ae}"),
    ("consortium_lead", "/audit"),
    ("admin", "/audit"),
]


def test_phone_pages_have_no_axe_finding_and_no_sideways_page(
    open_page, live_server, axe_source, ae_with_clocks
):
    failing = []
    for role, template in PHONE_PAGES:
        path = template.format(**live_server.targets, clocks_ae=ae_with_clocks)
        page = opened(open_page, role, path, PHONE)
        overflow = page.evaluate(PAGE_OVERFLOW)
        if overflow > 0:
            failing.append(f"{role} {path}: the page scrolls sideways by {overflow} px")
        found = run_axe(page, axe_source)
        if found:
            failing.append(f"{role} {path}: {describe(found)}")
    assert not failing, "\n".join(failing)


LONG_REASON = (
    "Corrected after the monitoring visit of the consortium office: the contact address and "
    "the role description were copied from the previous grant agreement, see finding "
    "MV-2026-0042-consortium-office-records-reconciliation for the whole correspondence."
)


@pytest.fixture(scope="module")
def audited_long_edit(live_server: Any) -> int:
    """A partner edited with long values (one without spaces) and a long reason: the audit
    rows the table must still fit at 1366 px."""
    from trialmgr.auth.models import User
    from trialmgr.extensions import db
    from trialmgr.partners.models import Partner
    from trialmgr.partners.services import directory

    with live_server.app.app_context():
        lead = db.session.execute(
            sa.select(User).where(User.email == "lead@example.org")
        ).scalar_one()
        partner = db.session.execute(sa.select(Partner).order_by(Partner.id)).scalars().first()
        assert partner is not None
        directory.update_partner(
            lead,
            partner,
            {
                "website": "https://www.example.org/" + "consortiumpartnerrecords" * 6,
                "consortium_role": "Coordinates the long-term follow-up registry, the sample "
                "logistics between the sites and the central laboratory, and the yearly "
                "replication-competent virus testing reports to the sponsor. " * 2,
                "reason": LONG_REASON,
            },
        )
        db.session.commit()
        return partner.id


def test_the_audit_table_fits_at_1366_with_long_reasons_and_values(
    open_page, axe_source, audited_long_edit
):
    for path in (f"/audit?entity=partner&entity_id={audited_long_edit}", "/audit"):
        page = opened(open_page, "consortium_lead", path, LAPTOP)
        assert page.locator("#audit-table .audit-reason", has_text="MV-2026-0042").count() >= 1
        assert page.locator("#audit-table .audit-new", has_text="consortiumpartnerrecords").count()
        box = page.locator("#audit-table").locator("xpath=..")
        widths = box.evaluate("b => [b.scrollWidth, b.clientWidth]")
        assert widths[0] <= widths[1], f"{path}: table {widths[0]} px in a {widths[1]} px box"
        # the moment on two lines; the hash shortened, the whole one kept in its title
        assert page.locator("#audit-table .audit-when").first.locator("span").count() == 2
        code = page.locator("#audit-table [data-testid=audit-hash]").first
        full = code.get_attribute("title")
        assert full and len(full) == 64 and code.inner_text().strip() == full[:12]
        assert_no_sideways_page(page)
        found = run_axe(page, axe_source)
        assert not found, f"{path}: {describe(found)}"
