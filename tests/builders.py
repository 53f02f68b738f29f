"""Build the world a test needs: a consortium site, an open trial, subjects.

The builders call the services directly, as the user behind an API client, and commit, like
a request would; they return what the API answers for the same object (its out-schema), so a
test goes on through the API with them. Dosing stays an API call: tests assert on its gates.
Dates are relative to the app's clock (UTC), never the machine's local date.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.factories import ApiClient
from trialmgr.auth.models import User
from trialmgr.clock import local_date, utcnow
from trialmgr.db import today
from trialmgr.enrollment.schemas import ScreeningOut, SubjectOut, TrialOut
from trialmgr.enrollment.services import consent as consent_service
from trialmgr.enrollment.services import screening as screening_service
from trialmgr.enrollment.services import subjects as subjects_service
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.extensions import db
from trialmgr.partners.schemas import SiteOut
from trialmgr.partners.services import approvals as approvals_service
from trialmgr.partners.services import directory as directory_service
from trialmgr.partners.services import sites as sites_service
from trialmgr.partners.services import status as status_service

_seq = itertools.count(1)
# The app's UTC date when the tests were collected (some tests compare with it).
TODAY = today()

DOSES = ("1e13", "3e13", "1e14", "3e14")
CRITERIA = (
    ("I1", "inclusion", "Severe haemophilia B (FIX < 2%)"),
    ("E1", "exclusion", "Neutralising anti-AAV antibodies"),
)
VISITS = (  # name, study day, window before, window after, primary endpoint
    ("Day 7", 7, 1, 1, False),
    ("Week 4", 28, 3, 3, False),
    ("Week 12", 84, 7, 7, True),
)


def site_today(zone_name: str = "Europe/Rome") -> date:
    """Today on a site's calendar (Rome by default, the zone of the tests' own sites): the
    rules on approvals, activation and a site's status are judged on it, and after 23:00 UTC
    it is a day ahead of TODAY."""
    return local_date(utcnow(), zone_name)


def days_ago(n: int) -> date:
    return today() - timedelta(days=n)


def at(d: date, hour: int = 9) -> str:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC).isoformat()


@contextlib.contextmanager
def acting_as(client: ApiClient) -> Iterator[User]:
    """The user behind an API client, in an app context of its app."""
    assert client.user is not None, "sign the client in first (api.as_role)"
    with client.app.app_context():
        yield db.session.get_one(User, client.user["id"])


def active_site(
    lead: ApiClient, code: str = "S01", activated_on: date | None = None, timezone: str = "UTC"
) -> dict[str, Any]:
    """A clinical-site partner and its site, every approval granted, activated."""
    activated_on = activated_on or days_ago(400)
    with acting_as(lead) as actor:
        partner = directory_service.create_partner(
            actor,
            {
                "name": f"Hospital {code} {next(_seq)}",
                "short_name": code,
                "kind": "clinical_site",
                "country": "IT",
            },
        )
        site = sites_service.create_site(
            actor,
            {
                "partner_id": partner.id,
                "code": code,
                "name": f"Site {code}",
                "country": "IT",
                "target_enrollment": 4,
                "timezone": timezone,
            },
        )
        for kind in ("irb", "ibc", "contract", "siv"):
            approval = {
                "kind": kind,
                "reference": f"{code}-{kind}",
                "granted_on": activated_on - timedelta(days=10),
            }
            approvals_service.add_approval(actor, site, approval, utcnow())
        status_service.activate_site(actor, site, utcnow(), activated_on)
        db.session.commit()
        return SiteOut().dump(sites_service.site_view(site, utcnow()))


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
    """A trial with cohorts of rising dose, criteria I1 and E1, consent version 1.0 and three
    visits (Week 12 the primary endpoint), opened unless `open_` is false."""
    with acting_as(lead) as actor:
        trial = trials_service.create_trial(
            actor,
            {
                "code": f"GT-{next(_seq):02d}",
                "title": "AAV factor IX pilot",
                "vector_type": vector_type,
                "stagger_days": stagger_days,
                "orphacode": 98879,
            },
        )
        for sequence, capacity in enumerate(capacities, start=1):
            cohort = {
                "label": f"C{sequence}",
                "dose": DOSES[sequence - 1],
                "dose_unit": "vg/kg",
                "capacity": capacity,
                "sequence": sequence,
            }
            trials_service.add_cohort(actor, trial, cohort)
        for code, kind, text in CRITERIA if criteria else ():
            trials_service.add_criterion(actor, trial, {"code": code, "kind": kind, "text": text})
        version = {
            "version": "1.0",
            "approved_on": consent_approved or days_ago(500),
            "reconsent_required": False,
        }
        consent_service.add_consent_version(actor, trial, version, utcnow())
        for name, day, before, after, primary in VISITS:
            definition = {
                "name": name,
                "day": day,
                "window_before": before,
                "window_after": after,
                "primary_endpoint": primary,
            }
            trials_service.add_visit_definition(actor, trial, definition)
        if open_:
            opening = {"status": "open", "reason": "all approvals in place"}
            trials_service.update_trial(actor, trial, opening)
        db.session.commit()
        return TrialOut().dump(trial)


def eligible_screening(
    coord: ApiClient, trial: dict[str, Any], site: dict[str, Any], screened_on: date | None = None
) -> dict[str, Any]:
    """A screening that meets every criterion, recorded eligible."""
    with acting_as(coord) as actor:
        screening = screening_service.create_screening(
            actor,
            {
                "trial_id": trial["id"],
                "site_id": site["id"],
                "screened_on": screened_on or days_ago(300),
                "orphacode": 98879,
                "birth_year": 2015,
                "sex": "M",
                "answers": {"I1": True, "E1": False},
                "outcome": "eligible",
            },
            utcnow(),
        )
        db.session.commit()
        return ScreeningOut().dump(screening)


def enrol(
    coord: ApiClient,
    trial: dict[str, Any],
    site: dict[str, Any],
    cohort: int = 1,
    consented_on: date | None = None,
) -> dict[str, Any]:
    """A subject enrolled from a new eligible screening, consented on the newest version."""
    screening = eligible_screening(coord, trial, site)
    version = max(trial["consent_versions"], key=lambda v: v["approved_on"])
    consented_on = consented_on or days_ago(290)
    with acting_as(coord) as actor:
        subject = subjects_service.enrol(
            actor,
            {
                "screening_id": screening["id"],
                "cohort_id": trial["cohorts"][cohort - 1]["id"],
                "consent_version_id": version["id"],
                "consented_on": consented_on,
                "enrolled_on": consented_on,
            },
            utcnow(),
        )
        db.session.commit()
        return SubjectOut().dump(subject)


def dose(coord: ApiClient, subject: dict[str, Any], on: date, hour: int = 9):
    """POST /subjects/{code}/dosing at `hour` UTC on `on`: the response, for its gates."""
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
