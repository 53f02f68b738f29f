"""The milestone timeline's geometry: a Gantt-like chart the template draws as an SVG
(positions as attributes, colours by CSS class: nothing inline for the strict CSP)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

MAX_TICK_LABELS = 10


def timeline(views: list[dict[str, Any]], today: date) -> dict[str, Any]:
    """One row per milestone: its planned date, its achieved date, and a bar between them
    (a late one's runs from its planned date to today); x positions on a 0-1000 scale
    over the span of every date shown, with a line per month, at most 10 of them
    labelled."""
    if not views:
        return {"rows": [], "ticks": [], "today": None}
    days = [v["planned_on"] for v in views] + [v["achieved_on"] for v in views if v["achieved_on"]]
    first, last = min([*days, today]), max([*days, today])
    first, last = first - timedelta(days=7), last + timedelta(days=7)
    span = max((last - first).days, 1)

    def x(day: date) -> float:
        return round(1000 * (day - first).days / span, 1)

    rows = []
    for view in views:
        end = view["achieved_on"] or (today if view["status"] == "late" else view["planned_on"])
        start, stop = sorted((view["planned_on"], end))
        rows.append(
            {
                **view,
                "x_planned": x(view["planned_on"]),
                "x_achieved": x(view["achieved_on"]) if view["achieved_on"] else None,
                "x_start": x(start),
                "width": max(x(stop) - x(start), 0),
            }
        )
    months = []
    month = date(first.year, first.month, 1)
    while month <= last:
        if month >= first:
            months.append(month)
        month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    step = -(-len(months) // MAX_TICK_LABELS)  # every month a line, at most 10 labels
    ticks = [
        {"x": x(m), "label": m.strftime("%b %Y") if i % step == 0 else ""}
        for i, m in enumerate(months)
    ]
    return {"rows": rows, "ticks": ticks, "today": x(today)}
