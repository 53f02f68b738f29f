"""Clinical and administrative dates: what happened, never in the future."""

from __future__ import annotations

from datetime import date

from trialmgr.errors import Invalid


def check_not_future(field: str, value: date, today: date) -> None:
    if value > today:
        raise Invalid(
            "Dates cannot be in the future.", errors={field: ["Must not be in the future."]}
        )
