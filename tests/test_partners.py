"""Partners, sites, approvals and the activation gate."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.builders import site_today
from trialmgr.audit.models import AuditEvent
from trialmgr.extensions import db
from trialmgr.partners.models import Partner, Site, SiteApproval

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def iso(d):
    return d.isoformat()


@pytest.fixture()
def lead(api):
    return api.as_role("consortium_lead")


@pytest.fixture()
def partner(lead):
    resp = lead.post(
        "/partners",
        json={
            "name": "Institute of Genetics",
            "short_name": "IG",
            "kind": "academic",
            "country": "IT",
        },
    )
    assert resp.status_code == 201, resp.json
    return resp.json


def new_site(lead, partner, code="S01", **extra):
    resp = lead.post(
        "/sites",
        json={
            "partner_id": partner["id"],
            "code": code,
            "name": f"Site {code}",
            "country": "IT",
            "target_enrollment": 4,
            "timezone": "Europe/Rome",
            **extra,
        },
    )
    assert resp.status_code == 201, resp.json
    return resp.json


def grant(lead, site, kind, granted=None, expires=None):
    body = {
        "kind": kind,
        "reference": f"{kind.upper()}-1",
        "granted_on": iso(granted or site_today() - timedelta(days=30)),
    }
    if expires is not None:
        body["expires_on"] = iso(expires)
    resp = lead.post(f"/sites/{site['id']}/approvals", json=body)
    assert resp.status_code == 201, resp.json
    return resp.json


def grant_all(lead, site, except_=(), **kw):
    for kind in ("irb", "ibc", "contract", "siv"):
        if kind not in except_:
            grant(lead, site, kind, **kw)


def counts(app):
    with app.app_context():
        return tuple(
            db.session.execute(sa.select(sa.func.count()).select_from(m)).scalar_one()
            for m in (Partner, Site, SiteApproval, AuditEvent)
        )


# --- partners ---------------------------------------------------------------------


def test_create_and_read_partner(lead, partner):
    assert partner["kind"] == "academic" and partner["country"] == "IT" and partner["sites"] == []
    assert lead.get(f"/partners/{partner['id']}").json["name"] == "Institute of Genetics"


def test_unknown_country_is_422_and_nothing_written(app, lead):
    before = counts(app)
    resp = lead.post(
        "/partners",
        json={"name": "X Lab", "short_name": "X", "kind": "laboratory", "country": "XX"},
    )
    assert resp.status_code == 422
    assert "country" in resp.json["errors"]
    lower = lead.post(
        "/partners",
        json={"name": "X Lab", "short_name": "X", "kind": "laboratory", "country": "it"},
    )
    assert lower.status_code == 422
    assert counts(app) == before


def test_unknown_kind_is_422(lead):
    resp = lead.post(
        "/partners", json={"name": "X", "short_name": "X", "kind": "pharma", "country": "IT"}
    )
    assert resp.status_code == 422 and "kind" in resp.json["errors"]


def test_duplicate_partner_name_is_409(lead, partner):
    resp = lead.post(
        "/partners",
        json={
            "name": "institute of genetics",
            "short_name": "IG2",
            "kind": "academic",
            "country": "IT",
        },
    )
    assert resp.status_code == 409


def test_partner_edit_needs_reason_and_is_audited(lead, partner):
    assert lead.patch(f"/partners/{partner['id']}", json={"short_name": "IGen"}).status_code == 422
    resp = lead.patch(
        f"/partners/{partner['id']}", json={"short_name": "IGen", "reason": "official acronym"}
    )
    assert resp.status_code == 200 and resp.json["short_name"] == "IGen"
    admin_view = lead.get(f"/audit?entity=partner&entity_id={partner['id']}").json
    assert admin_view[0]["changes"] == {"short_name": {"old": "IG", "new": "IGen"}}
    assert admin_view[0]["reason"] == "official acronym"


def test_directory_search_and_filters(lead, partner):
    lead.post(
        "/partners",
        json={
            "name": "Vector Works",
            "short_name": "VW",
            "kind": "manufacturer",
            "country": "DE",
            "consortium_role": "AAV vector supply",
        },
    )
    assert [p["short_name"] for p in lead.get("/partners?q=vector").json] == ["VW"]
    assert [p["short_name"] for p in lead.get("/partners?kind=academic").json] == ["IG"]
    assert [p["short_name"] for p in lead.get("/partners?country=DE").json] == ["VW"]
    assert lead.get("/partners?country=ZZ").status_code == 422


def test_partner_directory_csv_export(lead, partner):
    new_site(lead, partner, "S01")
    lead.post(
        "/partners",
        json={"name": "=Evil Corp", "short_name": "E", "kind": "sponsor", "country": "US"},
    )
    resp = lead.get("/partners/export")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    lines = resp.data.decode().splitlines()
    assert lines[0].startswith("id,name,short_name,kind,country")
    assert any("Institute of Genetics" in line and "S01" in line for line in lines)
    assert any(",'=Evil Corp," in line for line in lines)
    filtered = lead.get("/partners/export?kind=sponsor").data.decode().splitlines()
    assert len(filtered) == 2


@pytest.mark.parametrize("role", ["coordinator", "safety_monitor"])
def test_only_managers_create_partners_and_sites(api, partner, role):
    other = api.as_role(role)
    assert (
        other.post(
            "/partners", json={"name": "N", "short_name": "N", "kind": "academic", "country": "IT"}
        ).status_code
        == 403
    )
    assert (
        other.post(
            "/sites",
            json={"partner_id": partner["id"], "code": "S09", "name": "N", "country": "IT"},
        ).status_code
        == 403
    )


# --- sites ------------------------------------------------------------------------


def test_new_site_is_pending_and_closed_to_screening(lead, partner):
    site = new_site(lead, partner)
    assert site["status"] == "pending"
    assert site["open_for_screening"] is False
    assert site["missing_approvals"] == ["irb", "ibc", "contract", "siv"]


@pytest.mark.parametrize("code", ["S", "s01", "S-01", "TOOLONGCODE1", "", "S 1"])
def test_bad_site_codes_are_422(app, lead, partner, code):
    before = counts(app)
    resp = lead.post(
        "/sites", json={"partner_id": partner["id"], "code": code, "name": "X", "country": "IT"}
    )
    assert resp.status_code == 422 and "code" in resp.json["errors"]
    assert counts(app) == before


def test_duplicate_site_code_is_409_and_nothing_written(app, lead, partner):
    new_site(lead, partner, "S01")
    before = counts(app)
    resp = lead.post(
        "/sites",
        json={
            "partner_id": partner["id"],
            "code": "S01",
            "name": "Other",
            "country": "FR",
            "timezone": "Europe/Paris",
        },
    )
    assert resp.status_code == 409
    assert counts(app) == before


def test_site_for_unknown_partner_is_422(lead):
    resp = lead.post(
        "/sites",
        json={
            "partner_id": 999,
            "code": "S05",
            "name": "Xsite",
            "country": "IT",
            "timezone": "Europe/Rome",
        },
    )
    assert resp.status_code == 422 and "partner_id" in resp.json["errors"]


def test_site_edit_needs_reason(lead, partner):
    site = new_site(lead, partner)
    assert lead.patch(f"/sites/{site['id']}", json={"target_enrollment": 6}).status_code == 422
    resp = lead.patch(
        f"/sites/{site['id']}", json={"target_enrollment": 6, "reason": "protocol v2"}
    )
    assert resp.json["target_enrollment"] == 6
    assert (
        lead.patch(
            f"/sites/{site['id']}", json={"target_enrollment": -1, "reason": "x" * 5}
        ).status_code
        == 422
    )


# --- activation gate ---------------------------------------------------------------


def test_activation_without_ibc_is_409_naming_ibc(app, lead, partner):
    site = new_site(lead, partner)
    grant_all(lead, site, except_=("ibc",))
    before = counts(app)
    resp = lead.post(f"/sites/{site['id']}/activate", json={})
    assert resp.status_code == 409
    assert resp.json["errors"]["missing"] == ["ibc"]
    assert counts(app) == before
    assert lead.get(f"/sites/{site['id']}").json["status"] == "pending"


def test_activation_with_all_four_current(lead, partner):
    site = new_site(lead, partner)
    grant_all(lead, site, expires=site_today() + timedelta(days=365))
    resp = lead.post(f"/sites/{site['id']}/activate", json={})
    assert resp.status_code == 200
    assert resp.json["status"] == "active"
    assert resp.json["activated_on"] == iso(site_today())
    assert resp.json["open_for_screening"] is True


def test_approval_expired_yesterday_blocks_activation(lead, partner):
    site = new_site(lead, partner)
    grant_all(lead, site, except_=("irb",))
    grant(lead, site, "irb", expires=site_today() - timedelta(days=1))
    resp = lead.post(f"/sites/{site['id']}/activate", json={})
    assert resp.status_code == 409
    assert resp.json["errors"]["missing"] == ["irb"]


def test_approval_expiring_today_is_still_current(lead, partner):
    site = new_site(lead, partner)
    grant_all(lead, site, except_=("irb",))
    grant(lead, site, "irb", expires=site_today())
    resp = lead.post(f"/sites/{site['id']}/activate", json={})
    assert resp.status_code == 200
    irb = next(a for a in resp.json["approvals"] if a["kind"] == "irb")
    assert irb["state"] == "expiring" and irb["days_to_expiry"] == 0


def test_activation_date_in_the_past_is_accepted_after_all_grants(lead, partner):
    site = new_site(lead, partner)
    grant_all(lead, site, granted=site_today() - timedelta(days=60))
    resp = lead.post(
        f"/sites/{site['id']}/activate",
        json={"activated_on": iso(site_today() - timedelta(days=45))},
    )
    assert resp.status_code == 200
    assert resp.json["activated_on"] == iso(site_today() - timedelta(days=45))
    assert resp.json["months_open"] == pytest.approx(45 / (365.25 / 12), abs=0.01)


def test_activation_before_an_approval_was_granted_is_409(lead, partner):
    site = new_site(lead, partner)
    grant_all(lead, site, except_=("siv",), granted=site_today() - timedelta(days=60))
    grant(lead, site, "siv", granted=site_today() - timedelta(days=10))
    resp = lead.post(
        f"/sites/{site['id']}/activate",
        json={"activated_on": iso(site_today() - timedelta(days=20))},
    )
    assert resp.status_code == 409
    assert resp.json["errors"]["missing"] == ["siv"]
    on_grant_day = lead.post(
        f"/sites/{site['id']}/activate",
        json={"activated_on": iso(site_today() - timedelta(days=10))},
    )
    assert on_grant_day.status_code == 200


def test_activation_in_the_future_is_422(lead, partner):
    site = new_site(lead, partner)
    grant_all(lead, site)
    resp = lead.post(
        f"/sites/{site['id']}/activate",
        json={"activated_on": iso(site_today() + timedelta(days=1))},
    )
    assert resp.status_code == 422 and "activated_on" in resp.json["errors"]


def test_future_grant_date_is_422(lead, partner):
    site = new_site(lead, partner)
    resp = lead.post(
        f"/sites/{site['id']}/approvals",
        json={"kind": "irb", "reference": "R", "granted_on": iso(site_today() + timedelta(days=1))},
    )
    assert resp.status_code == 422


def test_expiry_before_grant_is_422(lead, partner):
    site = new_site(lead, partner)
    resp = lead.post(
        f"/sites/{site['id']}/approvals",
        json={
            "kind": "irb",
            "reference": "R",
            "granted_on": iso(site_today()),
            "expires_on": iso(site_today() - timedelta(days=1)),
        },
    )
    assert resp.status_code == 422 and "expires_on" in resp.json["errors"]


def test_activation_is_audited(lead, partner):
    site = new_site(lead, partner)
    grant_all(lead, site)
    lead.post(f"/sites/{site['id']}/activate", json={})
    events = lead.get(f"/audit?entity=site&entity_id={site['id']}").json
    assert events[0]["action"] == "site.activate"
    assert events[0]["changes"]["status"] == {"old": "pending", "new": "active"}


def test_expired_approval_closes_an_active_site_to_screening(app, lead, partner):
    site = new_site(lead, partner)
    grant_all(lead, site)
    lead.post(f"/sites/{site['id']}/activate", json={})
    with app.app_context():
        # time passes: the IBC approval lapsed yesterday
        db.session.execute(
            sa.update(SiteApproval)
            .where(SiteApproval.kind == "ibc")
            .values(expires_on=site_today() - timedelta(days=1))
        )
        db.session.commit()
    body = lead.get(f"/sites/{site['id']}").json
    assert body["status"] == "active"
    assert body["open_for_screening"] is False
    assert body["missing_approvals"] == ["ibc"]


def test_withdrawn_approval_closes_site_to_screening(lead, partner):
    site = new_site(lead, partner)
    grant_all(lead, site)
    lead.post(f"/sites/{site['id']}/activate", json={})
    irb = next(a for a in lead.get(f"/sites/{site['id']}/approvals").json if a["kind"] == "irb")
    assert (
        lead.patch(f"/approvals/{irb['id']}", json={"withdrawn_on": iso(site_today())}).status_code
        == 422
    )
    resp = lead.patch(
        f"/approvals/{irb['id']}",
        json={"withdrawn_on": iso(site_today()), "reason": "EC suspended the study"},
    )
    assert resp.status_code == 200 and resp.json["state"] == "withdrawn"
    body = lead.get(f"/sites/{site['id']}").json
    assert body["open_for_screening"] is False and body["missing_approvals"] == ["irb"]


def test_suspend_and_close_need_reasons(lead, partner):
    site = new_site(lead, partner)
    grant_all(lead, site)
    lead.post(f"/sites/{site['id']}/activate", json={})
    assert lead.post(f"/sites/{site['id']}/suspend", json={}).status_code == 422
    resp = lead.post(f"/sites/{site['id']}/suspend", json={"reason": "monitoring findings"})
    assert resp.json["status"] == "suspended" and resp.json["open_for_screening"] is False
    again = lead.post(f"/sites/{site['id']}/activate", json={})
    assert again.status_code == 200 and again.json["status"] == "active"
    closed = lead.post(f"/sites/{site['id']}/close", json={"reason": "recruitment ended"})
    assert closed.json["status"] == "closed" and closed.json["closed_on"] == iso(site_today())
    assert lead.post(f"/sites/{site['id']}/activate", json={}).status_code == 409


def test_approval_states_for_the_site_page(lead, partner):
    site = new_site(lead, partner)
    grant(lead, site, "irb", expires=site_today() + timedelta(days=31))
    grant(lead, site, "ibc", expires=site_today() + timedelta(days=30))
    grant(lead, site, "contract", expires=site_today() - timedelta(days=1))
    states = {
        a["kind"]: (a["state"], a["days_to_expiry"])
        for a in lead.get(f"/sites/{site['id']}/approvals").json
    }
    assert states == {"irb": ("current", 31), "ibc": ("expiring", 30), "contract": ("expired", -1)}


# --- scoping ----------------------------------------------------------------------


def test_coordinator_sees_only_their_sites(api, lead, partner):
    s1 = new_site(lead, partner, "S01")
    s2 = new_site(lead, partner, "S02")
    coord = api.as_role("coordinator", site_ids=[s1["id"]])
    assert [s["code"] for s in coord.get("/sites").json] == ["S01"]
    assert coord.get(f"/sites/{s2['id']}").status_code == 404
    assert coord.get(f"/sites/{s2['id']}/approvals").status_code == 404
    assert [s["code"] for s in coord.get(f"/partners/{partner['id']}").json["sites"]] == ["S01"]
    monitor = api.as_role("safety_monitor")
    assert [s["code"] for s in monitor.get("/sites").json] == ["S01", "S02"]


def test_coordinator_cannot_see_another_sites_approval_document(api, lead, partner):
    s1 = new_site(lead, partner, "S01")
    s2 = new_site(lead, partner, "S02")
    approval = grant(lead, s2, "irb")
    lead.client.post(
        f"/api/v1/approvals/{approval['id']}/document",
        data={"file": (__import__("io").BytesIO(PDF), "irb.pdf")},
        headers={"Authorization": f"Bearer {lead.token}"},
        content_type="multipart/form-data",
    )
    coord = api.as_role("coordinator", site_ids=[s1["id"]])
    assert coord.get(f"/approvals/{approval['id']}/document").status_code == 404


def test_admin_assigns_coordinator_sites_and_unknown_site_is_422(api, lead, partner):
    s1 = new_site(lead, partner, "S01")
    admin = api.as_role("admin")
    ok = admin.post(
        "/users",
        json={
            "email": "c@example.org",
            "name": "C",
            "role": "coordinator",
            "password": "long-enough-password",
            "site_ids": [s1["id"]],
        },
    )
    assert ok.status_code == 201 and ok.json["site_ids"] == [s1["id"]]
    bad = admin.patch(
        f"/users/{ok.json['id']}", json={"site_ids": [s1["id"], 999], "reason": "second site"}
    )
    assert bad.status_code == 422 and "site_ids" in bad.json["errors"]
    assert admin.get(f"/users/{ok.json['id']}").json["site_ids"] == [s1["id"]]


# --- documents --------------------------------------------------------------------


def _upload(lead, approval_id, content, name="letter.pdf"):
    import io

    return lead.client.post(
        f"/api/v1/approvals/{approval_id}/document",
        data={"file": (io.BytesIO(content), name)},
        headers={"Authorization": f"Bearer {lead.token}"},
        content_type="multipart/form-data",
    )


def test_pdf_upload_records_sha256_and_downloads(app, lead, partner):
    import hashlib

    site = new_site(lead, partner)
    approval = grant(lead, site, "irb")
    resp = _upload(lead, approval["id"], PDF, "EC approval.pdf")
    assert resp.status_code == 201, resp.json
    assert resp.json["document_sha256"] == hashlib.sha256(PDF).hexdigest()
    assert resp.json["document_size"] == len(PDF)
    download = lead.get(f"/approvals/{approval['id']}/document")
    assert download.status_code == 200 and download.data == PDF
    assert download.mimetype == "application/pdf"


def test_non_pdf_upload_is_422_and_nothing_written(app, lead, partner, tmp_path):
    site = new_site(lead, partner)
    approval = grant(lead, site, "irb")
    before = counts(app)
    resp = _upload(lead, approval["id"], b"MZ\x90\x00 not a pdf", "letter.pdf")
    assert resp.status_code == 422 and "file" in resp.json["errors"]
    assert counts(app) == before
    assert lead.get(f"/sites/{site['id']}/approvals").json[0]["document_sha256"] is None


def test_oversize_upload_is_refused_and_nothing_written(app_factory, api):
    app = app_factory(UPLOAD_MAX_BYTES=1024)
    from tests.factories import ApiClient

    lead = ApiClient(app).as_role("consortium_lead")
    partner = lead.post(
        "/partners", json={"name": "PX", "short_name": "P", "kind": "academic", "country": "IT"}
    ).json
    site = new_site(lead, partner)
    approval = grant(lead, site, "irb")
    before = counts(app)
    resp = _upload(lead, approval["id"], PDF + b"0" * 2048)
    assert resp.status_code == 422 and "file" in resp.json["errors"]
    assert counts(app) == before


def test_upload_above_request_limit_is_413(app_factory):
    from tests.factories import ApiClient

    app = app_factory(MAX_CONTENT_LENGTH=4096)
    lead = ApiClient(app).as_role("consortium_lead")
    partner = lead.post(
        "/partners", json={"name": "PX", "short_name": "P", "kind": "academic", "country": "IT"}
    ).json
    site = new_site(lead, partner)
    approval = grant(lead, site, "irb")
    resp = _upload(lead, approval["id"], PDF + b"0" * 10000)
    assert resp.status_code == 413
    assert resp.mimetype == "application/problem+json"


def test_csv_export_lists_only_the_coordinators_site_codes(api, lead, partner):
    s1 = new_site(lead, partner, "S01")
    new_site(lead, partner, "S02")
    coord = api.as_role("coordinator", site_ids=[s1["id"]])
    data = coord.get("/partners/export").data.decode()
    assert "S01" in data and "S02" not in data


def test_withdrawn_approval_cannot_be_withdrawn_again(lead, partner):
    site = new_site(lead, partner)
    irb = grant(lead, site, "irb")
    body = {"withdrawn_on": iso(site_today() - timedelta(days=2)), "reason": "EC suspended"}
    assert lead.patch(f"/approvals/{irb['id']}", json=body).status_code == 200
    again = lead.patch(f"/approvals/{irb['id']}", json={**body, "withdrawn_on": iso(site_today())})
    assert again.status_code == 409
    assert (
        lead.get(f"/sites/{site['id']}/approvals").json[0]["withdrawn_on"] == body["withdrawn_on"]
    )


def test_closing_date_cannot_precede_the_site(lead, partner):
    site = new_site(lead, partner)
    resp = lead.post(
        f"/sites/{site['id']}/close", json={"reason": "never started", "on": "0001-01-01"}
    )
    assert resp.status_code == 422 and "on" in resp.json["errors"]
