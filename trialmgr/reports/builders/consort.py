"""The CONSORT flow diagram (CONSORT 2016 extension for pilot trials), drawn with
reportlab.graphics from the CONSORT service's numbers (the page's numbers), and the section
both the DSMB and the feasibility reports show."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from reportlab.graphics.shapes import Drawing, Line, Polygon, Rect, String
from reportlab.lib import colors
from reportlab.pdfbase import pdfmetrics
from reportlab.platypus import Flowable

from trialmgr.auth.models import SystemActor
from trialmgr.clock import utcnow
from trialmgr.milestones.services import consort
from trialmgr.reports.builders.layout import (
    ACCENT,
    FONT,
    FONT_BOLD,
    FRAME_WIDTH,
    HEAD_BG,
    INK,
    MUTED,
    Column,
    data_table,
    gap,
    heading,
    para,
)
from trialmgr.reports.builders.registry import ReportContext

# Reports read every site of their scope: the consortium's numbers, not a user's share.
# Their cut-off was checked at the request, on the calendar of the requester or of the
# report's site, so it may be a day ahead of UTC; the reader takes it as it is: its today
# is the latest on any calendar (UTC+14), so a cut-off that is today somewhere is never
# refused as the future while the report is built (it was, after 23:00 UTC for a lead in
# Rome: the report failed).
REPORT_READER = SystemActor(email="system:reports", timezone="Pacific/Kiritimati")
SIDE_BG = colors.HexColor("#FBFBFC")
MAIN_W, SIDE_W, BOX_H, STEP = 190, 230, 30, 44
LEAVERS = ("withdrawn", "lost", "died")


def flow_of(ctx: ReportContext) -> dict[str, Any]:
    """The CONSORT numbers at the cut-off (records dated and entered by then), computed
    once per report."""
    site_id = ctx.site.id if ctx.site is not None else None
    return ctx.memo(
        f"consort:{site_id}",
        lambda: consort.flow(
            REPORT_READER, ctx.trial, utcnow(), ctx.cut_off, site_id, entered_by=ctx.cut_off
        ),
    )


def _fit(text: str, width: float, size: float) -> str:
    """Text cut (with an ellipsis) to fit a box: a diagram label never overflows."""
    if pdfmetrics.stringWidth(text, FONT, size) <= width:
        return text
    while text and pdfmetrics.stringWidth(text + "…", FONT, size) > width:
        text = text[:-1]
    return text + "…"


def _box(
    drawing: Drawing, x: float, y: float, w: float, lines: list[str], main: bool = True
) -> float:
    height = BOX_H if len(lines) <= 2 else 12 + 9.5 * len(lines)
    drawing.add(
        Rect(
            x,
            y - height,
            w,
            height,
            fillColor=HEAD_BG if main else SIDE_BG,
            strokeColor=ACCENT if main else MUTED,
            strokeWidth=0.8 if main else 0.5,
        )
    )
    for index, text in enumerate(lines):
        font, size = (FONT_BOLD, 8) if index == 0 else (FONT, 7)
        drawing.add(
            String(
                x + 6,
                y - 12 - 9.5 * index,
                _fit(text, w - 12, size),
                fontName=font,
                fontSize=size,
                fillColor=INK,
            )
        )
    return height


def _arrow(drawing: Drawing, x1: float, y1: float, x2: float, y2: float) -> None:
    drawing.add(Line(x1, y1, x2, y2, strokeColor=INK, strokeWidth=0.7))
    if x1 == x2:  # down
        drawing.add(Polygon([x2 - 3, y2 + 5, x2 + 3, y2 + 5, x2, y2], fillColor=INK))
    else:  # right
        drawing.add(Polygon([x2 - 5, y2 - 3, x2 - 5, y2 + 3, x2, y2], fillColor=INK))


def _reasons(items: list[dict[str, Any]], key: str = "label", limit: int = 3) -> list[str]:
    shown = [f"{item[key]}: {item['count']}" for item in items[:limit]]
    if len(items) > limit:
        shown.append(f"{len(items) - limit} more reason(s) in the table")
    return shown


def _leavers(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {counts[kind]}" for kind in LEAVERS)


def diagram(flow: dict[str, Any]) -> Drawing:
    """Main steps down the left, those who left each step to the right."""
    main: list[tuple[list[str], list[str] | None]] = []
    if flow.get("approached") is not None:
        main += [
            ([f"Approached (screening log): {flow['approached']}"], None),
            (
                [f"Screened (assessment complete): {flow['screened']}"],
                [f"Still in screening: {flow['in_screening']}"],
            ),
            (
                [f"Eligible: {flow['eligible']}"],
                [
                    f"Screen failed: {flow['screen_failed']}",
                    *_reasons(flow["screen_failed_reasons"]),
                ],
            ),
            (
                [f"Consented: {flow['consented']}"],
                [
                    f"Declined: {flow['declined']}",
                    f"Consented, then screen failed: {flow['consented_then_screen_failed']}",
                    f"Eligible, not enrolled: {flow['eligible_not_enrolled']}",
                ],
            ),
        ]
    left_before = flow["left_before_dosing"]
    left_after = flow["left_after_dosing"]
    main += [
        (
            [f"Enrolled: {flow['enrolled']}"],
            [
                f"Left before dosing: {sum(left_before.values())}",
                _leavers(left_before),
                f"Awaiting dosing: {flow['awaiting_dosing']}",
            ],
        ),
        (
            [f"Dosed: {flow['dosed']}"],
            [
                f"Left after dosing: {sum(left_after.values())}",
                _leavers(left_after),
                f"In follow-up: {flow['in_follow_up']}",
            ],
        ),
        ([f"Completed primary follow-up: {flow['completed']}"], None),
    ]
    heights = [
        max(BOX_H, 12 + 9.5 * len(side)) if side and len(side) > 2 else BOX_H for _, side in main
    ]
    total = sum(heights) + (len(main) - 1) * (STEP - BOX_H) + 10
    drawing = Drawing(FRAME_WIDTH, total)
    x, side_x = 20, 20 + MAIN_W + 50
    y = total - 4
    for index, ((lines, side), height) in enumerate(zip(main, heights, strict=True)):
        centre = y - height / 2
        _box(drawing, x, centre + BOX_H / 2, MAIN_W, lines)
        if side:
            side_top = centre + (12 + 9.5 * len(side)) / 2 if len(side) > 2 else centre + BOX_H / 2
            _box(drawing, side_x, side_top, SIDE_W, side, main=False)
            _arrow(drawing, x + MAIN_W, centre, side_x, centre)
        if index < len(main) - 1:
            next_top = y - height - (STEP - BOX_H)
            next_centre = next_top - heights[index + 1] / 2
            _arrow(drawing, x + MAIN_W / 2, centre - BOX_H / 2, x + MAIN_W / 2, next_centre + 15)
            y = next_top
    return drawing


def consort_section(ctx: ReportContext) -> Iterator[Flowable]:
    flow = flow_of(ctx)
    yield para(
        "Counts at each step as of the data cut-off, from the CONSORT service the trial's "
        "CONSORT page draws (records dated on or before the cut-off and entered by then). "
        "Consent may be recorded at screening, so a subject who consented and then failed "
        "screening counts as consented."
    )
    yield diagram(flow)
    yield gap(6)
    if flow.get("screen_failed_reasons"):
        yield heading("Screen failures by unmet criterion or stated reason")
        yield from data_table(
            [
                Column("Criterion or reason", 0.85, wrap=True),
                Column("Screenings", 0.15, right=True),
            ],
            ((r["label"], r["count"]) for r in flow["screen_failed_reasons"]),
        )
    if flow.get("withdrawn_reasons"):
        yield heading("Withdrawals by kind and reason")
        yield from data_table(
            [
                Column("Kind", 0.15),
                Column("Reason", 0.7, wrap=True),
                Column("Subjects", 0.15, right=True),
            ],
            ((r["kind"], r["reason"], r["count"]) for r in flow["withdrawn_reasons"]),
        )
