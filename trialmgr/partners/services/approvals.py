"""Site approvals (IRB, IBC, contract, SIV): recording, withdrawal, and which one is in force.

Per kind, the record in force on a day is the newest granted on or before it (by grant date,
then id): a renewal supersedes the older letter, and withdrawing or suspending the record in
force closes the site from that date even if an older letter has not expired. Every "today"
here is the site's local date.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from trialmgr.audit import services as audit
from trialmgr.clock import Day, Phrase, check_not_future, local_date
from trialmgr.errors import Conflict, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.models import APPROVAL_KINDS, Site, SiteApproval
from trialmgr.partners.policies import may_see_site, require_manager

EXPIRY_WARNING_DAYS = 30
# How refusals name a kind: "site S01's IRB approval was withdrawn on ...".
KIND_NAMES = {
    "irb": "IRB approval",
    "ibc": "IBC approval",
    "contract": "clinical trial agreement",
    "siv": "site initiation visit",
}


def in_force(site: Site, kind: str, on: date) -> SiteApproval | None:
    """The record of `kind` in force on `on`: the newest granted on or before that day
    (ties: the later id); None when none was granted by then."""
    granted = [a for a in site.approvals if a.kind == kind and a.granted_on <= on]
    return max(granted, key=lambda a: (a.granted_on, a.id or 0), default=None)


def missing_approvals(site: Site, on: date) -> list[str]:
    """Approval kinds whose record in force on `on` is missing or not current (expired,
    withdrawn or suspended by then), in the order irb, ibc, contract, siv."""
    missing = []
    for kind in APPROVAL_KINDS:
        record = in_force(site, kind, on)
        if record is None or not record.is_current(on):
            missing.append(kind)
    return missing


def why_not_current(site: Site, kind: str, on: date) -> str | Phrase:
    """The cause of a missing kind on `on`, with its date, for a refusal message."""
    name = KIND_NAMES[kind]
    record = in_force(site, kind, on)
    if record is None:
        return f"site {site.code} had no {name} granted by then"
    if record.withdrawn_on is not None and record.withdrawn_on <= on:
        return Phrase(
            "site {code}'s {name} was withdrawn on {on}",
            code=site.code,
            name=name,
            on=Day(record.withdrawn_on),
        )
    assert record.expires_on is not None  # not current, not withdrawn: expired
    return Phrase(
        "site {code}'s {name} expired on {on}", code=site.code, name=name, on=Day(record.expires_on)
    )


def current_periods(site: Site, kind: str) -> list[tuple[date, date | None]]:
    """The half-open periods [start, end) in which `kind` was current (end None: open-ended),
    following the record in force from one grant date to the next."""
    records = sorted(
        (a for a in site.approvals if a.kind == kind), key=lambda a: (a.granted_on, a.id or 0)
    )
    periods: list[tuple[date, date | None]] = []
    for index, record in enumerate(records):
        later = records[index + 1].granted_on if index + 1 < len(records) else None
        ends = [
            d
            for d in (
                later,
                record.expires_on + timedelta(days=1) if record.expires_on else None,
                record.withdrawn_on,
            )
            if d is not None
        ]
        end = min(ends, default=None)
        if end is None or end > record.granted_on:
            periods.append((record.granted_on, end))
    return periods


def approval_state(approval: SiteApproval, today: date) -> tuple[str, int | None]:
    """current / expiring (within 30 days) / expired / withdrawn / future, and days to expiry,
    judged on `today` (the site's local date)."""
    days = (approval.expires_on - today).days if approval.expires_on else None
    if approval.withdrawn_on is not None and approval.withdrawn_on <= today:
        return "withdrawn", days
    if approval.granted_on > today:
        return "future", days
    if days is not None and days < 0:
        return "expired", days
    if days is not None and days <= EXPIRY_WARNING_DAYS:
        return "expiring", days
    return "current", days


def approval_view(approval: SiteApproval, now: datetime) -> dict[str, Any]:
    """An approval as its site sees it today: state, days to expiry, and whether it is the
    record in force for its kind."""
    today = local_date(now, approval.site.timezone)
    state, days = approval_state(approval, today)
    view = {
        c: getattr(approval, c)
        for c in (
            "id",
            "site_id",
            "kind",
            "reference",
            "granted_on",
            "expires_on",
            "withdrawn_on",
            "withdrawn_reason",
            "document_name",
            "document_sha256",
            "document_size",
        )
    }
    return {
        **view,
        "state": state,
        "days_to_expiry": days,
        "in_force": in_force(approval.site, approval.kind, today) is approval,
    }


def add_approval(actor: Any, site: Site, data: dict[str, Any], now: datetime) -> SiteApproval:
    """Record an approval (IRB, IBC, contract, SIV, or the renewal of one: the newest grant
    is in force from its date); the grant date is not in the future at the site."""
    require_manager(actor)
    check_not_future("granted_on", data["granted_on"], local_date(now, site.timezone))
    if site.status == "closed":
        raise Conflict("The site is closed.", title="Site closed")
    with audit.audited(actor, action="approval.create"):
        approval = SiteApproval(site=site, **data)
        db.session.add(approval)
    return approval


def get_approval(actor: Any, approval_id: int) -> SiteApproval:
    approval = db.session.get(SiteApproval, approval_id)
    if approval is None or not may_see_site(actor, approval.site_id):
        raise NotFound(f"No approval {approval_id}.")
    return approval


def update_approval(
    actor: Any, approval: SiteApproval, data: dict[str, Any], now: datetime
) -> SiteApproval:
    """Correct an approval, or record its withdrawal/suspension: if it is the record in force,
    the site is closed to new clinical events from that date (not before the grant, not in
    the future at the site)."""
    require_manager(actor)
    data = dict(data)
    reason = data.pop("reason")
    if data.get("withdrawn_on"):
        check_not_future(
            "withdrawn_on", data["withdrawn_on"], local_date(now, approval.site.timezone)
        )
        if approval.withdrawn_on is not None:
            raise Conflict(
                "The approval is already withdrawn; record a new approval instead.",
                title="Already withdrawn",
            )
        if data["withdrawn_on"] < approval.granted_on:
            raise Invalid(
                "Withdrawal before grant.",
                errors={
                    "withdrawn_on": [
                        Phrase("Before the grant date ({on}).", on=Day(approval.granted_on))
                    ]
                },
            )
    expires = data.get("expires_on", approval.expires_on)
    if expires is not None and expires < approval.granted_on:
        raise Invalid(
            "Expiry before grant.", errors={"expires_on": ["Must be on or after the grant date."]}
        )
    with audit.audited(actor, reason=reason, action="approval.update"):
        for key, value in data.items():
            setattr(approval, key, value)
        if "withdrawn_on" in data:
            approval.withdrawn_reason = reason if data["withdrawn_on"] else None
    return approval
