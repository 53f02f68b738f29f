"""Build the world a test needs through the API: a consortium site, an open trial, subjects."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.factories import ApiClient

TODAY = date.today()
_seq = itertools.count(1)


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


def at(d: date, hour: int = 9) -> str:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC).isoformat()


def active_site(
    lead: ApiClient, code: str = "S01", activated_on: date | None = None, timezone: str = "UTC"
) -> dict[str, Any]:
    activated_on = activated_on or days_ago(400)
    partner = lead.post(
        "/partners",
        json={
            "name": f"Hospital {code} {next(_seq)}",
            "short_name": code,
            "kind": "clinical_site",
            "country": "IT",
        },
    ).json
    site = lead.post(
        "/sites",
        json={
            "partner_id": partner["id"],
            "code": code,
            "name": f"Site {code}",
            "country": "IT",
            "target_enrollment": 4,
            "timezone": timezone,
        },
    ).json
    for kind in ("irb", "ibc", "contract", "siv"):
        resp = lead.post(
            f"/sites/{site['id']}/approvals",
            json={
                "kind": kind,
                "reference": f"{code}-{kind}",
                "granted_on": (activated_on - timedelta(days=10)).isoformat(),
            },
        )
        assert resp.status_code == 201, resp.json
    resp = lead.post(
        f"/sites/{site['id']}/activate", json={"activated_on": activated_on.isoformat()}
    )
    assert resp.status_code == 200, resp.json
    return resp.json


def open_trial(
    lead: ApiClient,
    *,
    vector_type: str = "aav",
    stagger_days: int = 14,
    capacities: tuple[int, ...] = (3, 3, 3),
    criteria: bool = True,
    consent_approved: date | None = None,
    open_: bool = True,
) -> dict[str, Any]:
    trial = lead.post(
        "/trials",
        json={
            "code": f"GT-{next(_seq):02d}",
            "title": "AAV factor IX pilot",
            "vector_type": vector_type,
            "stagger_days": stagger_days,
            "orphacode": 98879,
        },
    ).json
    tid = trial["id"]
    for i, cap in enumerate(capacities, start=1):
        dose = ["1e13", "3e13", "1e14", "3e14"][i - 1]
        assert (
            lead.post(
                f"/trials/{tid}/cohorts",
                json={
                    "label": f"C{i}",
                    "dose": dose,
                    "dose_unit": "vg/kg",
                    "capacity": cap,
                    "sequence": i,
                },
            ).status_code
            == 201
        )
    if criteria:
        lead.post(
            f"/trials/{tid}/eligibility-criteria",
            json={"code": "I1", "kind": "inclusion", "text": "Severe haemophilia B (FIX < 2%)"},
        )
        lead.post(
            f"/trials/{tid}/eligibility-criteria",
            json={"code": "E1", "kind": "exclusion", "text": "Neutralising anti-AAV antibodies"},
        )
    lead.post(
        f"/trials/{tid}/consent-versions",
        json={"version": "1.0", "approved_on": (consent_approved or days_ago(500)).isoformat()},
    )
    for name, day, before, after, primary in (
        ("Day 7", 7, 1, 1, False),
        ("Week 4", 28, 3, 3, False),
        ("Week 12", 84, 7, 7, True),
    ):
        lead.post(
            f"/trials/{tid}/visit-definitions",
            json={
                "name": name,
                "day": day,
                "window_before": before,
                "window_after": after,
                "primary_endpoint": primary,
            },
        )
    if open_:
        resp = lead.patch(
            f"/trials/{tid}", json={"status": "open", "reason": "all approvals in place"}
        )
        assert resp.status_code == 200, resp.json
    return lead.get(f"/trials/{tid}").json


def eligible_screening(
    coord: ApiClient, trial: dict[str, Any], site: dict[str, Any], screened_on: date | None = None
) -> dict[str, Any]:
    resp = coord.post(
        "/screenings",
        json={
            "trial_id": trial["id"],
            "site_id": site["id"],
            "screened_on": (screened_on or days_ago(300)).isoformat(),
            "orphacode": 98879,
            "birth_year": 2015,
            "sex": "M",
            "answers": {"I1": True, "E1": False},
            "outcome": "eligible",
        },
    )
    assert resp.status_code == 201, resp.json
    return resp.json


def enrol(
    coord: ApiClient,
    trial: dict[str, Any],
    site: dict[str, Any],
    cohort: int = 1,
    consented_on: date | None = None,
) -> dict[str, Any]:
    screening = eligible_screening(coord, trial, site)
    cohort_id = trial["cohorts"][cohort - 1]["id"]
    version = max(trial["consent_versions"], key=lambda v: v["approved_on"])
    resp = coord.post(
        "/subjects",
        json={
            "screening_id": screening["id"],
            "cohort_id": cohort_id,
            "consent_version_id": version["id"],
            "consented_on": (consented_on or days_ago(290)).isoformat(),
            "enrolled_on": (consented_on or days_ago(290)).isoformat(),
        },
    )
    assert resp.status_code == 201, resp.json
    return resp.json


def dose(coord: ApiClient, subject: dict[str, Any], on: date, hour: int = 9):
    return coord.post(
        f"/subjects/{subject['code']}/dosing",
        json={"dosed_at": at(on, hour), "dose": "1e13", "lot_number": "L001"},
    )


def world(api: Any, **trial_kw: Any) -> dict[str, Any]:
    """An active site S01, an open trial, a lead and a coordinator of S01."""
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01")
    trial = open_trial(lead, **trial_kw)
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    return {"lead": lead, "site": site, "trial": trial, "coord": coord}
