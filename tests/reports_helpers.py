"""Helpers for the report tests: a constructed trial with a known screening log, and the text
of a PDF as a reader sees it."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pypdf

from tests.builders import TODAY, active_site, days_ago, dose, eligible_screening, enrol, world

CUT_OFF = TODAY - timedelta(days=1)
STATED_REASON = "Anti-AAV <b>NAb</b> titre 1:20 & rising"
DECLINE_REASON = "Family declined & travel <i>burden</i>"


def screen(coord: Any, trial: dict[str, Any], site: dict[str, Any], **extra: Any) -> Any:
    body = {
        "trial_id": trial["id"],
        "site_id": site["id"],
        "screened_on": days_ago(200).isoformat(),
        "orphacode": 98879,
        "birth_year": 2015,
        "sex": "M",
        **extra,
    }
    resp = coord.post("/screenings", json=body)
    assert resp.status_code == 201, resp.json
    return resp.json


def constructed_trial(api: Any) -> dict[str, Any]:
    """Site S01 (target 4): two subjects enrolled (one dosed 100 days ago), one eligible not
    enrolled, three screen failures (two by I1, one by E1 with a stated reason holding markup
    characters), one declined, one pending. Site S02: one enrolled, one screen failure."""
    w = world(api)
    lead, coord, site, trial = w["lead"], w["coord"], w["site"], w["trial"]
    first = enrol(coord, trial, site)
    enrol(coord, trial, site)
    assert dose(coord, first, days_ago(100)).status_code == 201
    eligible_screening(coord, trial, site)
    for _ in range(2):
        screen(coord, trial, site, answers={"I1": False, "E1": False}, outcome="screen_failed")
    screen(
        coord,
        trial,
        site,
        answers={"I1": True, "E1": True},
        outcome="screen_failed",
        fail_reason=STATED_REASON,
    )
    screen(
        coord,
        trial,
        site,
        answers={"I1": True, "E1": False},
        outcome="declined",
        fail_reason=DECLINE_REASON,
    )
    screen(coord, trial, site)
    other = active_site(lead, "S02")
    coord2 = api.as_role("coordinator", site_ids=[other["id"]])
    enrol(coord2, trial, other)
    screen(coord2, trial, other, answers={"I1": False, "E1": False}, outcome="screen_failed")
    return {**w, "other": other, "coord2": coord2, "first": first}


def pdf_pages(data: bytes) -> list[str]:
    """Each page's text, laid out as on the page (a table row stays on one line)."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    return [page.extract_text(extraction_mode="layout") for page in reader.pages]


def pdf_text(data: bytes) -> str:
    return "\n".join(pdf_pages(data))


def pdf_words(data: bytes) -> str:
    """The text in reading order with whitespace collapsed: a wrapped cell reads whole."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def generate(client: Any, **body: Any) -> Any:
    resp = client.post("/reports", json=body)
    assert resp.status_code in (200, 201), resp.json
    return resp.json
