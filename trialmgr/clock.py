"""Time as the trial sees it.

Instants are UTC (`utcnow`). Clinical and administrative dates are calendar days where they
happened: a site's dates are its local days (IANA zone on every site), a user's own dates
(trial-level design dates they enter) are days in their chosen zone. "Today" is always asked
of a zone, never of the server: a Tokyo site enters today's date from its midnight, a Los
Angeles site cannot enter tomorrow's in its evening.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime
from typing import Any

from trialmgr.errors import Invalid


def utcnow() -> datetime:
    return datetime.now(UTC)


def zone(name: str | None) -> zoneinfo.ZoneInfo:
    """The IANA zone by name; UTC for a missing or unknown name."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def local_date(moment: datetime, zone_name: str | None) -> date:
    """The calendar day in `zone_name` when `moment` happened."""
    return moment.astimezone(zone(zone_name)).date()


def actor_today(actor: Any, now: datetime) -> date:
    """Today in the acting user's own zone (system actors: UTC)."""
    return local_date(now, getattr(actor, "timezone", None))


def check_not_future(field: str, value: date, today: date) -> None:
    """Dates record what happened: never after `today` (the local day of whoever's date)."""
    if value > today:
        raise Invalid(
            "Dates cannot be in the future.", errors={field: ["Must not be in the future."]}
        )


def format_local(moment: datetime, zone_name: str | None) -> str:
    """A moment as the site sees it: `2026-02-10 10:00 CET (Europe/Rome)`."""
    local = moment.astimezone(zone(zone_name))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({zone(zone_name).key})"
