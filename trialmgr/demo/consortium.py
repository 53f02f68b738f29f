"""Demo consortium: sponsor, institute, manufacturer, central lab, patient organisation,
and three clinical sites in three countries (two active, one still missing its IBC). Rome's
ethics approval was renewed (the renewal is in force, the old letter superseded); Lyon was
suspended for a fortnight and reactivated."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from trialmgr.auth import services as auth_services
from trialmgr.auth.models import SystemActor
from trialmgr.partners.models import Site
from trialmgr.partners.services import approvals as approvals_service
from trialmgr.partners.services import directory as directory_service
from trialmgr.partners.services import sites as sites_service
from trialmgr.partners.services import status as status_service

PARTNERS = [
    ("Lumen Gene Therapeutics", "LGT", "sponsor", "NL", "Sponsor; holds the IND/CTA"),
    ("Institute of Genetics and Biophysics", "IGB", "academic", "IT", "Scientific coordination"),
    ("Vectora Biomanufacturing", "VEC", "manufacturer", "DE", "AAV vector GMP manufacture"),
    ("Central Lab Services Europe", "CLS", "laboratory", "BE", "Central safety and efficacy labs"),
    (
        "Hemophilia B Families Network",
        "HBFN",
        "patient_organisation",
        "FR",
        "Patient advisory board",
    ),
    ("Ospedale Pediatrico Roma", "OPR", "clinical_site", "IT", "Lead clinical site"),
    ("Hôpital Universitaire Lyon", "HUL", "clinical_site", "FR", "Clinical site"),
    ("Universitätsklinikum Hamburg", "UKH", "clinical_site", "DE", "Clinical site"),
]

# code, partner short name, site name, country, time zone, PI, target,
# months since activation (None = pending)
SITES = [
    (
        "IT01",
        "OPR",
        "Rome paediatric gene therapy unit",
        "IT",
        "Europe/Rome",
        "Dr. Giulia Ferri",
        4,
        30,  # also ran the earlier pilot, GT-00, now closed to enrolment and in LTFU
    ),
    ("FR01", "HUL", "Lyon haemophilia centre", "FR", "Europe/Paris", "Dr. Marc Lefèvre", 3, 6),
    (
        "DE01",
        "UKH",
        "Hamburg clinical trials unit",
        "DE",
        "Europe/Berlin",
        "Dr. Anna Vogel",
        3,
        None,
    ),
]


def seed(now: datetime) -> dict[str, Site]:
    actor = SystemActor(email="system:demo")
    today = now.date()  # the demo's dates are weeks apart: any site's today will do
    by_short: dict[str, Any] = {}
    for name, short, kind, country, role in PARTNERS:
        by_short[short] = directory_service.create_partner(
            actor,
            {
                "name": name,
                "short_name": short,
                "kind": kind,
                "country": country,
                "consortium_role": role,
                "contact_email": f"trials@{short.lower()}.example.org",
                "website": f"https://{short.lower()}.example.org",
            },
        )
    sites: dict[str, Site] = {}
    for code, short, name, country, zone, pi, target, months in SITES:
        site = sites_service.create_site(
            actor,
            {
                "partner_id": by_short[short].id,
                "code": code,
                "name": name,
                "country": country,
                "principal_investigator": pi,
                "timezone": zone,
                "target_enrollment": target,
            },
        )
        granted = today - timedelta(days=(months or 2) * 30 + 20)
        kinds = ("irb", "ibc", "contract", "siv") if months else ("irb", "contract", "siv")
        for kind in kinds:
            expires = granted + timedelta(days=1460) if kind in ("irb", "ibc") else None
            if kind == "irb" and code in ("FR01", "IT01"):
                expires = today + timedelta(days=21)  # renewal due: shows amber
            approvals_service.add_approval(
                actor,
                site,
                {
                    "kind": kind,
                    "reference": f"{code}-{kind.upper()}-{granted.year}",
                    "granted_on": granted,
                    "expires_on": expires,
                },
                now,
            )
        if months:
            status_service.activate_site(actor, site, now, today - timedelta(days=months * 30))
        sites[code] = site
    _renew_and_suspend(actor, sites, now)
    return sites


def _renew_and_suspend(actor: Any, sites: dict[str, Site], now: datetime) -> None:
    """Rome's IRB renewed before its letter lapsed; Lyon suspended and reactivated."""
    today = now.date()
    rome, lyon = sites["IT01"], sites["FR01"]
    approvals_service.add_approval(
        actor,
        rome,
        {
            "kind": "irb",
            "reference": f"IT01-IRB-{today.year}-R1",
            "granted_on": today - timedelta(days=12),
            "expires_on": today - timedelta(days=12) + timedelta(days=730),
        },
        now,
    )
    status_service.suspend_site(
        actor,
        lyon,
        "Monitoring visit: source data verification backlog",
        now,
        today - timedelta(days=110),
    )
    status_service.activate_site(
        actor, lyon, now, today - timedelta(days=95), "Backlog cleared at the follow-up visit"
    )


def assign_coordinator(email: str, site_ids: list[int]) -> None:
    user = auth_services.find_user_by_email(email)
    assert user is not None
    auth_services.update_user(
        SystemActor(email="system:demo"),
        user,
        {"site_ids": site_ids, "reason": "demo consortium: the coordinator's site"},
    )
