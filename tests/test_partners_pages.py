"""The partner directory and site pages: what each role sees and can do through the browser."""

import csv
import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.builders import site_today
from tests.factories import login_page, make_user
from trialmgr.auth.models import SystemActor
from trialmgr.extensions import db
from trialmgr.partners.models import Partner, Site, SiteApproval
from trialmgr.partners.services import directory as directory_service

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
KINDS = ("irb", "ibc", "contract", "siv")


def days(n):
    return (site_today() + timedelta(days=n)).isoformat()


@pytest.fixture()
def admin(api):
    return api.as_role("admin")


def new_partner(admin, name="Institute of Genetics", short="IG", kind="academic", country="IT"):
    body = {"name": name, "short_name": short, "kind": kind, "country": country}
    resp = admin.post("/partners", json=body)
    assert resp.status_code == 201, resp.json
    return resp.json


def new_site(admin, partner, code="S01"):
    body = {
        "partner_id": partner["id"],
        "code": code,
        "name": f"Site {code}",
        "country": "IT",
        "timezone": "Europe/Rome",
    }
    resp = admin.post("/sites", json=body)
    assert resp.status_code == 201, resp.json
    return resp.json


def grant(admin, site, kind, granted=-30, expires=None):
    body = {"kind": kind, "reference": f"{kind.upper()}-1", "granted_on": days(granted)}
    if expires is not None:
        body["expires_on"] = days(expires)
    resp = admin.post(f"/sites/{site['id']}/approvals", json=body)
    assert resp.status_code == 201, resp.json
    return resp.json


def signed_in(app, role, site_ids=None):
    client = app.test_client()
    user = make_user(app, role, site_ids)
    assert login_page(client, user["email"]).status_code == 302
    return client


def row(html, row_id):
    """The opening <tr> tag of the table row with this id."""
    match = re.search(rf'<tr id="{row_id}"[^>]*>', html)
    assert match, f"no row {row_id}"
    return match.group(0)


def count(app, model):
    with app.app_context():
        return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


# --- partner directory ------------------------------------------------------------


def test_directory_search_and_kind_filter_narrow_the_list(app, admin):
    new_partner(admin)
    new_partner(admin, "Vector Works GmbH", "VW", "manufacturer", "DE")
    new_partner(admin, "Rare Families Network", "RFN", "patient_organisation", "FR")
    page = signed_in(app, "safety_monitor")

    everyone = page.get("/partners").get_data(as_text=True)
    assert all(n in everyone for n in ("Institute of Genetics", "Vector Works", "Rare Families"))

    searched = page.get("/partners?q=vector").get_data(as_text=True)
    assert "Vector Works GmbH" in searched
    assert "Institute of Genetics" not in searched and "Rare Families" not in searched

    by_kind = page.get("/partners?kind=patient_organisation").get_data(as_text=True)
    assert "Rare Families Network" in by_kind and "Vector Works" not in by_kind

    by_country = page.get("/partners?country=DE").get_data(as_text=True)
    assert "Vector Works GmbH" in by_country and "Institute of Genetics" not in by_country

    nothing = page.get("/partners?q=zzz").get_data(as_text=True)
    assert "No partners match" in nothing


def test_directory_exports_the_filtered_list_as_csv(app, admin):
    new_partner(admin)
    new_partner(admin, "Vector Works GmbH", "VW", "manufacturer", "DE")
    page = signed_in(app, "consortium_lead")
    html = page.get("/partners?kind=manufacturer").get_data(as_text=True)
    assert 'href="/partners/export.csv?kind=manufacturer"' in html

    resp = page.get("/partners/export.csv?kind=manufacturer")
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    assert [r["Name"] for r in rows] == ["Vector Works GmbH"]


def test_directory_pages_by_fifty(app):
    with app.app_context():
        actor = SystemActor(email="system:test")
        for i in range(51):
            directory_service.create_partner(
                actor,
                {
                    "name": f"Partner {i:02d}",
                    "short_name": f"P{i}",
                    "kind": "academic",
                    "country": "IT",
                },
            )
        db.session.commit()
    page = signed_in(app, "admin")
    first = page.get("/partners").get_data(as_text=True)
    assert "Partner 49" in first and "Partner 50" not in first
    second = page.get("/partners?page=2").get_data(as_text=True)
    assert "Partner 50" in second and "Partner 00" not in second


def test_only_managers_see_the_new_partner_button(app, admin):
    assert "New partner" in signed_in(app, "consortium_lead").get("/partners").get_data(True)
    assert "New partner" not in signed_in(app, "safety_monitor").get("/partners").get_data(True)


def test_manager_adds_partner_through_the_form(app):
    page = signed_in(app, "consortium_lead")
    form = {
        "name": "Institute of Genetics",
        "short_name": "IG",
        "kind": "academic",
        "country": "IT",
        "contact_email": "office@ig.example.org",
        "active": ["false", "true"],
    }  # the hidden "false", then the ticked box
    resp = page.post("/partners/new", data=form)
    assert resp.status_code == 302
    detail = page.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Institute of Genetics" in detail and 'href="mailto:office@ig.example.org"' in detail


def test_invalid_partner_form_is_shown_again_with_errors_and_422(app):
    page = signed_in(app, "admin")
    resp = page.post(
        "/partners/new",
        data={
            "name": "Institute of Genetics",
            "short_name": "IG",
            "kind": "academic",
            "country": "it",
        },
    )
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "is-invalid" in html and "ISO 3166-1" in html
    assert 'value="Institute of Genetics"' in html  # what was typed comes back
    assert count(app, Partner) == 0


def test_duplicate_partner_name_is_409_on_the_form(app, admin):
    new_partner(admin)
    page = signed_in(app, "admin")
    resp = page.post(
        "/partners/new",
        data={
            "name": "institute of genetics",
            "short_name": "X",
            "kind": "academic",
            "country": "IT",
        },
    )
    assert resp.status_code == 409
    assert "Already used" in resp.get_data(as_text=True)


def test_partner_edit_needs_a_reason_and_can_clear_optional_fields(app, admin):
    partner = new_partner(admin)
    admin.patch(
        f"/partners/{partner['id']}",
        json={"website": "https://ig.example.org", "reason": "set web site"},
    )
    page = signed_in(app, "consortium_lead")
    form = {
        "name": "Institute of Genetics",
        "short_name": "IGEN",
        "kind": "academic",
        "country": "IT",
        "website": "",
        "active": "true",
    }
    assert page.post(f"/partners/{partner['id']}/edit", data=form).status_code == 422
    resp = page.post(f"/partners/{partner['id']}/edit", data={**form, "reason": "new acronym"})
    assert resp.status_code == 302
    after = admin.get(f"/partners/{partner['id']}").json
    assert after["short_name"] == "IGEN" and after["website"] is None


# --- sites ------------------------------------------------------------------------


def test_coordinator_sees_only_their_site(app, admin):
    partner = new_partner(admin)
    mine, other = new_site(admin, partner, "S01"), new_site(admin, partner, "S02")
    page = signed_in(app, "coordinator", site_ids=[mine["id"]])

    listing = page.get("/sites").get_data(as_text=True)
    assert f'href="/sites/{mine["id"]}"' in listing
    assert "S02" not in listing
    assert page.get(f"/sites/{mine['id']}").status_code == 200
    assert page.get(f"/sites/{other['id']}").status_code == 404
    assert "S02" not in page.get(f"/partners/{partner['id']}").get_data(as_text=True)


def test_site_list_filters_by_status(app, admin):
    partner = new_partner(admin)
    site = new_site(admin, partner, "S01")
    new_site(admin, partner, "S02")
    for kind in KINDS:
        grant(admin, site, kind)
    assert admin.post(f"/sites/{site['id']}/activate", json={}).status_code == 200
    page = signed_in(app, "safety_monitor")
    active = page.get("/sites?status=active").get_data(as_text=True)
    assert "S01" in active and "S02" not in active
    pending = page.get("/sites?status=pending").get_data(as_text=True)
    assert "S02" in pending and "S01" not in pending


def test_manager_creates_a_site_through_the_form(app, admin):
    partner = new_partner(admin)
    page = signed_in(app, "consortium_lead")
    form = {
        "partner_id": str(partner["id"]),
        "code": "S07",
        "name": "Ospedale Sette",
        "country": "IT",
        "target_enrollment": "4",
        "principal_investigator": "",
        "timezone": "Europe/Rome",
    }
    resp = page.post("/sites/new", data=form)
    assert resp.status_code == 302
    site = admin.get("/sites").json[0]
    assert (site["code"], site["status"], site["target_enrollment"]) == ("S07", "pending", 4)
    dup = page.post("/sites/new", data=form)
    assert dup.status_code == 409 and "Already used" in dup.get_data(as_text=True)


@pytest.mark.parametrize("role", ["coordinator", "safety_monitor"])
def test_non_managers_may_not_create_sites(app, admin, role):
    partner = new_partner(admin)
    page = signed_in(app, role)
    resp = page.post(
        "/sites/new",
        data={"partner_id": str(partner["id"]), "code": "S09", "name": "Nope", "country": "IT"},
    )
    assert resp.status_code == 403
    assert count(app, Site) == 0
    assert "New site" not in page.get("/sites").get_data(as_text=True)


def test_site_edit_needs_a_reason(app, admin):
    site = new_site(admin, new_partner(admin))
    page = signed_in(app, "admin")
    form = {"name": "Site renamed", "country": "IT", "target_enrollment": "6"}
    assert page.post(f"/sites/{site['id']}/edit", data=form).status_code == 422
    resp = page.post(f"/sites/{site['id']}/edit", data={**form, "reason": "contract amended"})
    assert resp.status_code == 302
    assert admin.get(f"/sites/{site['id']}").json["target_enrollment"] == 6


# --- approvals ----------------------------------------------------------------------


def test_manager_adds_an_approval_with_its_letter(app, admin):
    partner = new_partner(admin)
    site = new_site(admin, partner)
    page = signed_in(app, "consortium_lead")
    html = page.get(f"/sites/{site['id']}").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in html

    resp = page.post(
        f"/sites/{site['id']}/approvals",
        data={
            "kind": "ibc",
            "reference": "IBC-2026-7",
            "granted_on": days(-10),
            "expires_on": days(355),
            "file": (io.BytesIO(PDF), "ibc-letter.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert resp.status_code == 302
    html = page.get(f"/sites/{site['id']}").get_data(as_text=True)
    assert "IBC-2026-7" in html and "ibc-letter.pdf" in html
    approval = admin.get(f"/sites/{site['id']}/approvals").json[0]
    assert approval["state"] == "current" and approval["document_size"] == len(PDF)
    assert f'href="/approvals/{approval["id"]}/document"' in html
    assert 'id="missing-ibc"' not in html and 'id="missing-irb"' in html

    # the letter downloads for whoever may see the site, and for no one else
    own = signed_in(app, "coordinator", site_ids=[site["id"]])
    download = own.get(f"/approvals/{approval['id']}/document")
    assert download.status_code == 200 and download.data == PDF
    other_site = new_site(admin, partner, "S02")
    stranger = signed_in(app, "coordinator", site_ids=[other_site["id"]])
    assert stranger.get(f"/approvals/{approval['id']}/document").status_code == 404


def test_a_refused_letter_saves_nothing(app, admin):
    site = new_site(admin, new_partner(admin))
    page = signed_in(app, "admin")
    resp = page.post(
        f"/sites/{site['id']}/approvals",
        data={
            "kind": "irb",
            "reference": "EC-1",
            "granted_on": days(-5),
            "file": (io.BytesIO(b"GIF89a not a pdf"), "letter.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "Not a PDF file." in html
    assert "EC-1" not in row(html, "missing-irb") and 'value="EC-1"' in html
    assert count(app, SiteApproval) == 0


def test_a_future_grant_date_is_refused_with_422(app, admin):
    site = new_site(admin, new_partner(admin))
    page = signed_in(app, "admin")
    resp = page.post(
        f"/sites/{site['id']}/approvals",
        data={"kind": "irb", "reference": "EC-1", "granted_on": days(3)},
    )
    assert resp.status_code == 422
    assert "Must not be in the future." in resp.get_data(as_text=True)


def test_expired_approval_is_red_and_one_expiring_in_ten_days_amber(app, admin):
    site = new_site(admin, new_partner(admin))
    expired = grant(admin, site, "irb", granted=-400, expires=-5)
    expiring = grant(admin, site, "ibc", granted=-300, expires=10)
    current = grant(admin, site, "contract")
    html = signed_in(app, "safety_monitor").get(f"/sites/{site['id']}").get_data(as_text=True)

    assert "table-danger" in row(html, f"approval-{expired['id']}")
    assert "table-warning" in row(html, f"approval-{expiring['id']}")
    assert "table-danger" not in row(html, f"approval-{current['id']}")
    section = html.split(f'id="approval-{expiring["id"]}"')[1].split("</tr>")[0]
    assert "text-bg-warning" in section and ">10<" in section
    section = html.split(f'id="approval-{expired["id"]}"')[1].split("</tr>")[0]
    assert "text-bg-danger" in section and "expired 5 days ago" in section
    # irb is expired and siv never recorded: both are missing, in red
    assert "table-danger" in row(html, "missing-irb")
    assert "table-danger" in row(html, "missing-siv")
    assert 'id="missing-ibc"' not in html and 'id="missing-contract"' not in html


def test_withdrawing_an_approval_asks_for_confirmation_and_marks_it_red(app, admin):
    site = new_site(admin, new_partner(admin))
    irb = grant(admin, site, "irb")
    page = signed_in(app, "consortium_lead")
    html = page.get(f"/sites/{site['id']}").get_data(as_text=True)
    form_tag = re.search(r'<form[^>]*approvals/withdraw"[^>]*>', html).group(0)
    assert "data-confirm=" in form_tag

    missing_reason = page.post(
        f"/sites/{site['id']}/approvals/withdraw",
        data={"approval_id": str(irb["id"]), "withdrawn_on": days(0)},
    )
    assert missing_reason.status_code == 422
    resp = page.post(
        f"/sites/{site['id']}/approvals/withdraw",
        data={
            "approval_id": str(irb["id"]),
            "withdrawn_on": days(0),
            "reason": "EC suspended the opinion",
        },
    )
    assert resp.status_code == 302
    html = page.get(f"/sites/{site['id']}").get_data(as_text=True)
    assert "table-danger" in row(html, f"approval-{irb['id']}")
    assert "EC suspended the opinion" in html


def test_an_approval_of_another_site_cannot_be_withdrawn_from_this_page(app, admin):
    partner = new_partner(admin)
    here, there = new_site(admin, partner, "S01"), new_site(admin, partner, "S02")
    elsewhere = grant(admin, there, "irb")
    page = signed_in(app, "admin")
    resp = page.post(
        f"/sites/{here['id']}/approvals/withdraw",
        data={"approval_id": str(elsewhere["id"]), "withdrawn_on": days(0), "reason": "wrong site"},
    )
    assert resp.status_code == 422
    assert admin.get(f"/sites/{there['id']}/approvals").json[0]["withdrawn_on"] is None


# --- activation, suspension, closure ---------------------------------------------


def test_activation_without_ibc_shows_409_and_names_ibc(app, admin):
    site = new_site(admin, new_partner(admin))
    for kind in ("irb", "contract", "siv"):
        grant(admin, site, kind)
    page = signed_in(app, "consortium_lead")
    resp = page.post(f"/sites/{site['id']}/activate", data={"activated_on": ""})
    assert resp.status_code == 409
    html = resp.get_data(as_text=True)
    alert = html.split('id="form-problem"')[1].split("</div>")[0]
    assert "Activation gate closed" in alert and "<code>ibc</code>" in alert
    assert "<code>irb</code>" not in alert
    assert admin.get(f"/sites/{site['id']}").json["status"] == "pending"


def test_activation_with_all_four_approvals_opens_the_site(app, admin):
    site = new_site(admin, new_partner(admin))
    for kind in KINDS:
        grant(admin, site, kind, granted=-20)
    page = signed_in(app, "consortium_lead")
    form = {"activated_on": days(-2)}
    restated = page.post(f"/sites/{site['id']}/activate", data=form)
    assert restated.status_code == 200
    text = restated.get_data(as_text=True)
    assert f"Confirm: activation of site {site['code']}" in text
    assert f"opens on {days(-2)}" in text and "Approvals in force: " in text
    assert admin.get(f"/sites/{site['id']}").json["status"] == "pending"  # not yet
    resp = page.post(f"/sites/{site['id']}/activate", data={**form, "confirmed": "yes"})
    assert resp.status_code == 302
    html = page.get(resp.headers["Location"]).get_data(as_text=True)
    assert "is active" in html  # the flash
    after = admin.get(f"/sites/{site['id']}").json
    assert after["status"] == "active" and after["activated_on"] == days(-2)
    assert after["open_for_screening"] is True


def test_cancelling_an_activation_returns_the_filled_form_and_changes_nothing(app, admin):
    site = new_site(admin, new_partner(admin))
    for kind in KINDS:
        grant(admin, site, kind, granted=-20)
    page = signed_in(app, "consortium_lead")
    url = f"/sites/{site['id']}/activate"
    restated = page.post(url, data={"activated_on": days(-3)})
    html = restated.get_data(as_text=True)
    cancel = html[html.index('id="cancel-form"') :]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', cancel))
    assert fields["confirmed"] == "no"
    back = page.post(url, data=fields)
    assert back.status_code == 200
    html = back.get_data(as_text=True)
    assert re.search(rf'id="activate-activated_on"[^>]*value="{days(-3)}"', html)
    assert 'id="confirm-form"' not in html and 'id="form-problem"' not in html
    assert admin.get(f"/sites/{site['id']}").json["status"] == "pending"


def test_suspend_needs_a_reason_and_asks_for_confirmation(app, admin):
    site = new_site(admin, new_partner(admin))
    for kind in KINDS:
        grant(admin, site, kind)
    admin.post(f"/sites/{site['id']}/activate", json={})
    page = signed_in(app, "admin")
    html = page.get(f"/sites/{site['id']}").get_data(as_text=True)
    assert "data-confirm=" in re.search(r'<form[^>]*/suspend"[^>]*>', html).group(0)
    assert "data-confirm=" in re.search(r'<form[^>]*/close"[^>]*>', html).group(0)

    refused = page.post(f"/sites/{site['id']}/suspend", data={"reason": ""})
    assert refused.status_code == 422
    assert "is-invalid" in refused.get_data(as_text=True)
    assert admin.get(f"/sites/{site['id']}").json["status"] == "active"

    resp = page.post(f"/sites/{site['id']}/suspend", data={"reason": "monitoring findings"})
    assert resp.status_code == 302
    assert admin.get(f"/sites/{site['id']}").json["status"] == "suspended"


def test_closing_is_final(app, admin):
    site = new_site(admin, new_partner(admin))
    page = signed_in(app, "consortium_lead")
    assert page.post(f"/sites/{site['id']}/close", data={}).status_code == 422
    resp = page.post(f"/sites/{site['id']}/close", data={"reason": "never started"})
    assert resp.status_code == 302
    html = page.get(f"/sites/{site['id']}").get_data(as_text=True)
    assert "Activate</button>" not in html and "Record approval" not in html
    again = page.post(f"/sites/{site['id']}/activate", data={})
    assert again.status_code == 409


def test_history_and_actions_are_for_managers_only(app, admin):
    site = new_site(admin, new_partner(admin))
    admin.patch(f"/sites/{site['id']}", json={"target_enrollment": 5, "reason": "amended CTA"})
    lead = signed_in(app, "consortium_lead").get(f"/sites/{site['id']}").get_data(as_text=True)
    assert 'id="history"' in lead and "amended CTA" in lead
    assert 'name="csrf_token"' in lead
    monitor = signed_in(app, "safety_monitor").get(f"/sites/{site['id']}").get_data(as_text=True)
    assert 'id="history"' not in monitor
    assert (
        "/suspend" not in monitor
        and "/activate" not in monitor
        and "Record approval" not in monitor
    )
    denied = signed_in(app, "safety_monitor").post(
        f"/sites/{site['id']}/suspend", data={"reason": "not mine to do"}
    )
    assert denied.status_code == 403


def test_pages_have_no_inline_scripts_or_styles(app, admin):
    partner = new_partner(admin)
    site = new_site(admin, partner)
    grant(admin, site, "irb")
    page = signed_in(app, "admin")
    for path in (
        "/partners",
        "/partners/new",
        f"/partners/{partner['id']}",
        f"/partners/{partner['id']}/edit",
        "/sites",
        "/sites/new",
        f"/sites/{site['id']}",
        f"/sites/{site['id']}/edit",
    ):
        resp = page.get(path)
        assert resp.status_code == 200, path
        html = resp.get_data(as_text=True)
        assert "style=" not in html, path
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path


def test_site_history_includes_its_approvals(app, admin):
    site = new_site(admin, new_partner(admin))
    resp = admin.post(
        f"/sites/{site['id']}/approvals",
        json={"kind": "ibc", "reference": "IBC-77", "granted_on": "2026-01-10"},
    )
    admin.patch(
        f"/approvals/{resp.json['id']}",
        json={"withdrawn_on": "2026-02-01", "reason": "IBC suspended us"},
    )
    html = signed_in(app, "consortium_lead").get(f"/sites/{site['id']}").get_data(as_text=True)
    history = html.split('id="history"')[1]
    assert "approval.create" in history and "IBC suspended us" in history


def test_site_time_zone_through_the_form(app, admin):
    partner = new_partner(admin)
    page = signed_in(app, "consortium_lead")
    bad = page.post(
        "/sites/new",
        data={
            "partner_id": str(partner["id"]),
            "code": "TZ1",
            "name": "Zone site",
            "country": "IT",
            "timezone": "Mars/Olympus",
        },
    )
    assert bad.status_code == 422
    ok = page.post(
        "/sites/new",
        data={
            "partner_id": str(partner["id"]),
            "code": "TZ1",
            "name": "Zone site",
            "country": "IT",
            "timezone": "Europe/Rome",
        },
    )
    assert ok.status_code == 302
    html = page.get(ok.headers["Location"]).get_data(as_text=True)
    assert "Europe/Rome" in html
