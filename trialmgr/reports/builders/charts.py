"""Charts drawn with reportlab.graphics (vector, in the PDF itself)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Circle, Drawing, Line, Polygon, String
from reportlab.lib import colors

from trialmgr.reports.builders.layout import ACCENT, FONT, FRAME_WIDTH, INK, MUTED, RULE

ENROLLED = colors.HexColor("#1D4E89")
TARGET = colors.HexColor("#B8C7DA")


def _nice_top(value: float) -> int:
    """An axis maximum a little above `value`, on a round step."""
    if value <= 5:
        return 5
    step = 10 ** math.floor(math.log10(value))
    for multiple in (1, 2, 2.5, 5, 10):
        top = multiple * step
        if top >= value * 1.1:
            return math.ceil(top)
    return int(value * 1.2)


def enrolment_vs_target(
    labels: Sequence[str], enrolled: Sequence[int], targets: Sequence[int], title: str
) -> Drawing:
    """Grouped bars: subjects enrolled next to the enrolment target, per site."""
    height = 190
    drawing = Drawing(FRAME_WIDTH, height)
    drawing.add(String(0, height - 12, title, fontName=FONT, fontSize=9, fillColor=INK))
    chart = VerticalBarChart()
    chart.x, chart.y = 34, 34
    chart.width = FRAME_WIDTH - 150
    chart.height = height - 62
    chart.data = [list(targets), list(enrolled)]
    chart.categoryAxis.categoryNames = list(labels)
    chart.categoryAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = 7.5
    chart.categoryAxis.labels.angle = 30 if len(labels) > 8 else 0
    chart.categoryAxis.labels.boxAnchor = "ne" if len(labels) > 8 else "n"
    chart.categoryAxis.strokeColor = RULE
    top = _nice_top(max([*targets, *enrolled, 1]))
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = top
    chart.valueAxis.valueStep = max(1, top // 5)
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontSize = 7.5
    chart.valueAxis.strokeColor = RULE
    chart.valueAxis.visibleGrid = True
    chart.valueAxis.gridStrokeColor = colors.HexColor("#E6E9EE")
    chart.bars[0].fillColor = TARGET
    chart.bars[0].strokeColor = None
    chart.bars[1].fillColor = ENROLLED
    chart.bars[1].strokeColor = None
    chart.groupSpacing = 8
    chart.barSpacing = 1
    chart.barLabelFormat = "%d"
    chart.barLabels.fontName = FONT
    chart.barLabels.fontSize = 6.5
    chart.barLabels.nudge = 6
    drawing.add(chart)
    legend = Legend()
    legend.x, legend.y = FRAME_WIDTH - 104, height - 40
    legend.fontName = FONT
    legend.fontSize = 8
    legend.alignment = "right"
    legend.colorNamePairs = [(TARGET, "Target"), (ENROLLED, "Enrolled")]
    legend.columnMaximum = 2
    drawing.add(legend)
    return drawing


def dosing_timeline(
    rows: Sequence[tuple[str, Sequence[date], Sequence[date]]], start: date, end: date
) -> Drawing:
    """One line per cohort: a dot for each dosing, a diamond for each safety review
    decision, on a common date axis from `start` to `end` (the cut-off)."""
    row_height = 22
    left, right_pad, bottom = 46, 10, 26
    height = bottom + row_height * max(len(rows), 1) + 24
    drawing = Drawing(FRAME_WIDTH, height)
    span = max((end - start).days, 1)
    width = FRAME_WIDTH - left - right_pad

    def x_of(day: date) -> float:
        return left + width * (day - start).days / span

    axis_y = bottom
    drawing.add(Line(left, axis_y, left + width, axis_y, strokeColor=RULE, strokeWidth=0.6))
    ticks = 6
    for i in range(ticks + 1):
        day = start.fromordinal(start.toordinal() + round(span * i / ticks))
        x = x_of(day)
        drawing.add(Line(x, axis_y, x, axis_y - 3, strokeColor=RULE, strokeWidth=0.6))
        anchor = "start" if i == 0 else "end" if i == ticks else "middle"
        drawing.add(
            String(
                x,
                axis_y - 12,
                day.isoformat(),
                fontName=FONT,
                fontSize=6.5,
                fillColor=MUTED,
                textAnchor=anchor,
            )
        )
    for index, (label, dosings, reviews) in enumerate(rows):
        y = axis_y + row_height * (len(rows) - index)
        drawing.add(String(0, y - 3, label, fontName=FONT, fontSize=8, fillColor=INK))
        drawing.add(
            Line(left, y, left + width, y, strokeColor=colors.HexColor("#E6E9EE"), strokeWidth=0.5)
        )
        for day in dosings:
            drawing.add(Circle(x_of(day), y, 3.2, fillColor=ACCENT, strokeColor=None))
        for day in reviews:
            x = x_of(day)
            drawing.add(
                Polygon(
                    [x, y + 5, x + 4, y, x, y - 5, x - 4, y],
                    fillColor=colors.HexColor("#C97A00"),
                    strokeColor=None,
                )
            )
    legend_y = height - 10
    drawing.add(Circle(left + 4, legend_y + 3, 3.2, fillColor=ACCENT, strokeColor=None))
    drawing.add(String(left + 12, legend_y, "dosing", fontName=FONT, fontSize=7.5, fillColor=INK))
    x = left + 60
    drawing.add(
        Polygon(
            [x, legend_y + 8, x + 4, legend_y + 3, x, legend_y - 2, x - 4, legend_y + 3],
            fillColor=colors.HexColor("#C97A00"),
            strokeColor=None,
        )
    )
    drawing.add(
        String(
            x + 8, legend_y, "safety review decision", fontName=FONT, fontSize=7.5, fillColor=INK
        )
    )
    return drawing


TREND_COLOURS = ("#1D4E89", "#C97A00", "#2E8B57", "#A23B72", "#5F6B7A", "#D9534F")


def drawable_trends(
    points: Sequence[date], series: dict[str, list[float | None]]
) -> dict[str, list[float | None]]:
    """The series a line can be drawn for (two values or more; reportlab refuses a line of
    one point): none when there are fewer than two points in time."""
    if len(points) < 2:
        return {}
    return {k: v for k, v in series.items() if sum(x is not None for x in v) >= 2}


def metric_trends(points: Sequence[date], series: dict[str, list[float | None]]) -> Drawing:
    """Proportions (in per cent) at the end of each month, one line per metric (give only
    `drawable_trends`)."""
    from reportlab.graphics.charts.linecharts import HorizontalLineChart

    height = 210
    drawing = Drawing(FRAME_WIDTH, height)
    title = "Proportion metrics at the end of each month (%)"
    drawing.add(String(0, height - 12, title, fontName=FONT, fontSize=9, fillColor=INK))
    chart = HorizontalLineChart()
    chart.x, chart.y = 34, 34
    chart.width = FRAME_WIDTH - 200
    chart.height = height - 64
    names = list(series)
    chart.data = [[None if v is None else 100 * v for v in series[n]] for n in names]
    step = max(1, len(points) // 8)
    chart.categoryAxis.categoryNames = [
        p.strftime("%Y-%m") if i % step == 0 or i == len(points) - 1 else ""
        for i, p in enumerate(points)
    ]
    chart.categoryAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = 7
    chart.categoryAxis.labels.angle = 30
    chart.categoryAxis.labels.boxAnchor = "ne"
    chart.categoryAxis.strokeColor = RULE
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = 100
    chart.valueAxis.valueStep = 20
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontSize = 7.5
    chart.valueAxis.strokeColor = RULE
    chart.valueAxis.visibleGrid = True
    chart.valueAxis.gridStrokeColor = colors.HexColor("#E6E9EE")
    for index in range(len(names)):
        chart.lines[index].strokeColor = colors.HexColor(TREND_COLOURS[index % 6])
        chart.lines[index].strokeWidth = 1.2
    drawing.add(chart)
    legend = Legend()
    legend.x, legend.y = FRAME_WIDTH - 150, height - 36
    legend.fontName = FONT
    legend.fontSize = 7.5
    legend.alignment = "right"
    legend.colorNamePairs = [
        (colors.HexColor(TREND_COLOURS[i % 6]), name) for i, name in enumerate(names)
    ]
    legend.columnMaximum = len(names)
    drawing.add(legend)
    return drawing
