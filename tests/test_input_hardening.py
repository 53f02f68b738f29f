"""Input the parser or the database cannot take is refused as 4xx problem+json on every
JSON endpoint (deep nesting, lone surrogates, NUL in any JSON media type) and in forms;
uploaded file names cannot break later downloads."""

import re
from urllib.parse import quote

import pytest

from tests.builders import active_site
from tests.factories import login_page

DEEP = "[" * 50_000 + "]" * 50_000


def _json_endpoints(app):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint.startswith("api-docs"):
            continue
        for method in rule.methods & {"POST", "PATCH", "PUT"}:
            path = re.sub(r"<int:[^>]+>", "1", rule.rule)
            yield method, re.sub(r"<[^>]+>", "X-1", path)


def _send(api_client, method, path, body, ctype="application/json"):
    return api_client.client.open(
        path,
        method=method,
        data=body,
        content_type=ctype,
        headers={"Authorization": f"Bearer {api_client.token}"},
    )


def test_deeply_nested_json_is_400_on_every_json_endpoint(app, api):
    admin = api.as_role("admin")
    endpoints = list(_json_endpoints(app))
    assert ("POST", "/api/v1/auth/tokens") in endpoints
    bad = []
    for method, path in endpoints:
        resp = _send(admin, method, path, DEEP)
        if resp.status_code != 400 or resp.mimetype != "application/problem+json":
            bad.append((method, path, resp.status_code))
    assert bad == []


@pytest.mark.parametrize("ctype", ["application/json", "application/merge-patch+json"])
def test_lone_surrogate_and_nul_are_refused_in_any_json_media_type(app, api, ctype):
    admin = api.as_role("admin")
    bad = []
    for body in ('{"name": "\\ud800"}', '{"name": "a\\u0000b"}', '{"\\ud800": 1}'):
        for method, path in _json_endpoints(app):
            resp = _send(admin, method, path, body, ctype)
            if resp.status_code != 400 or resp.mimetype != "application/problem+json":
                bad.append((method, path, body, resp.status_code))
    assert bad == []


def test_surrogate_in_a_real_field_changes_nothing(api):
    lead = api.as_role("consortium_lead")
    resp = _send(
        lead,
        "POST",
        "/api/v1/partners",
        '{"name": "Ospedale \\udc80", "short_name": "OS", "kind": "academic", "country": "IT"}',
    )
    assert resp.status_code == 400
    assert "surrogate" in resp.json["detail"]
    assert lead.get("/partners").json == []


def test_nul_in_a_form_post_is_refused(app, api):
    lead = api.as_role("consortium_lead")
    page = app.test_client()
    assert login_page(page, lead.user["email"]).status_code == 302
    resp = page.post(
        "/partners/new",
        data={"name": "Nul\x00Partner", "short_name": "N", "kind": "academic", "country": "IT"},
    )
    assert resp.status_code == 400
    assert lead.get("/partners").json == []


def test_upload_name_with_crlf_and_bidi_is_stored_safe_and_downloads(app, api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01")
    approval = lead.get(f"/sites/{site['id']}/approvals").json[0]
    pdf = b"%PDF-1.4\n%fake but starts right\n"
    name = "irb\r\nSet-Cookie: x=1\u202e.pdf"
    # CR/LF cannot sit in a header as such; RFC 5987's filename* carries it percent-encoded.
    body = (
        b'--B\r\nContent-Disposition: form-data; name="file"; '
        + b"filename*=UTF-8''"
        + quote(name).encode()
        + b"\r\nContent-Type: application/pdf\r\n\r\n"
        + pdf
        + b"\r\n--B--\r\n"
    )
    resp = lead.client.post(
        f"/api/v1/approvals/{approval['id']}/document",
        data=body,
        headers={"Authorization": f"Bearer {lead.token}"},
        content_type="multipart/form-data; boundary=B",
    )
    assert resp.status_code == 201, resp.json
    assert resp.json["document_name"] == "irbSet-Cookie: x=1.pdf"
    for download in (
        lead.get(f"/approvals/{approval['id']}/document"),
        _page(app, lead).get(f"/approvals/{approval['id']}/document"),
    ):
        assert download.status_code == 200
        assert download.data == pdf
        disposition = download.headers["Content-Disposition"]
        assert "\r" not in disposition and "\n" not in disposition
        assert disposition.endswith('.pdf"') or disposition.endswith(".pdf")
        assert download.headers["Cache-Control"] == "no-store"
    trail = lead.get(f"/audit?entity=site_approval&entity_id={approval['id']}").json
    assert any(e["changes"].get("uploaded_as") == name for e in trail)


def _page(app, api_client):
    page = app.test_client()
    assert login_page(page, api_client.user["email"]).status_code == 302
    return page
