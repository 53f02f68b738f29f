"""Time as the trial sees it.

Instants are UTC (`utcnow`). Clinical and administrative dates are calendar days where they
happened: a site's dates are its local days (IANA zone on every site), a user's own dates
(trial-level design dates they enter) are days in their chosen zone. "Today" is always asked
of a zone, never of the server: a Tokyo site enters today's date from its midnight, a Los
Angeles site cannot enter tomorrow's in its evening.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
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


# --- dates inside sentences ----------------------------------------------------------------
# A refusal names dates ("next dosing allowed on …"). The service keeps them as values in the
# sentence, not as text: the API prints them ISO (clients parse them; the text is part of the
# contract), pages print them in the reader's date format and, for instants, on the site's
# clock with its zone label. One sentence, two readers, no parsing of dates out of strings.


@dataclass(frozen=True)
class Day:
    """A calendar date inside a sentence; machine form `2026-12-04`."""

    value: date | None

    def __str__(self) -> str:
        return str(self.value)  # a date's str() is its ISO form


@dataclass(frozen=True)
class Moment:
    """An instant inside a sentence, seen on the clock of `zone_name` (a site's zone) when
    given. Machine form: `2026-12-04 09:00 CET (Europe/Rome)` with a zone, ISO 8601 without."""

    value: datetime
    zone_name: str | None = None

    def __str__(self) -> str:
        if self.zone_name:
            return format_local(self.value, self.zone_name)
        return self.value.isoformat()


class Phrase:
    """A sentence whose `{name}` fields are dates (`Day`, `Moment`), other phrases or plain
    values (literal braces in the template are doubled, as for `str.format`).
    `str()` is the machine form (the API's `detail`); `render` lets the page choose how each
    date reads."""

    def __init__(self, template: str, **values: Any) -> None:
        self.template = template
        self.values = values

    def render(
        self,
        day: Callable[[date | None], str],
        moment: Callable[[datetime, str | None], str],
    ) -> str:
        def shown(value: Any) -> Any:
            if isinstance(value, Day):
                return day(value.value)
            if isinstance(value, Moment):
                return moment(value.value, value.zone_name)
            if isinstance(value, Phrase):
                return value.render(day, moment)
            return value

        return self.template.format_map({k: shown(v) for k, v in self.values.items()})

    def __str__(self) -> str:
        return self.template.format_map({k: str(v) for k, v in self.values.items()})

    @classmethod
    def joined(cls, separator: str, parts: list[Phrase | str]) -> Phrase:
        """Sentences (phrased or plain) one after another, dates still values."""
        names = {f"part{i}": part for i, part in enumerate(parts)}
        return cls(separator.join("{" + name + "}" for name in names), **names)

    def __repr__(self) -> str:
        return f"Phrase({self.template!r}, {self.values!r})"

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))
