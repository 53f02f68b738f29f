"""The DSMB report's safety charts (reportlab.graphics): events by worst CTCAE grade per
cohort, and ALT in multiples of the ULN over study days per subject."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, Line, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors

from trialmgr.reports.builders.charts import _nice_top
from trialmgr.reports.builders.layout import FONT, FRAME_WIDTH, INK, MUTED, RULE

GRADE_COLOURS = ("#9CC5A1", "#F2D16B", "#F0A04B", "#D9534F", "#5B2333")
SERIES = (
    "#1D4E89",
    "#C97A00",
    "#2E8B57",
    "#A23B72",
    "#5F6B7A",
    "#D9534F",
    "#3C8DBC",
    "#8E6C8A",
)
GRID = colors.HexColor("#E6E9EE")


def _axis_fonts(chart: Any) -> None:
    for axis in (chart.xValueAxis if hasattr(chart, "xValueAxis") else chart.categoryAxis,):
        axis.labels.fontName = FONT
        axis.labels.fontSize = 7.5
        axis.strokeColor = RULE
    value_axis = chart.yValueAxis if hasattr(chart, "yValueAxis") else chart.valueAxis
    value_axis.labels.fontName = FONT
    value_axis.labels.fontSize = 7.5
    value_axis.strokeColor = RULE
    value_axis.visibleGrid = True
    value_axis.gridStrokeColor = GRID


def _count_label(value: float) -> str:
    """A bar's count; none on an empty bar (a row of zeros reads as clutter)."""
    return f"{value:.0f}" if value else ""


def grades_by_cohort(cohorts: Sequence[str], counts: dict[tuple[str, int], int]) -> Drawing:
    """Grouped bars: per cohort, the events of each CTCAE grade (1-5)."""
    height = 200
    drawing = Drawing(FRAME_WIDTH, height)
    title = "Adverse events by CTCAE grade, per cohort (events)"
    drawing.add(String(0, height - 12, title, fontName=FONT, fontSize=9, fillColor=INK))
    chart = VerticalBarChart()
    chart.x, chart.y = 34, 30
    chart.width = FRAME_WIDTH - 130
    chart.height = height - 60
    chart.data = [[counts.get((c, g), 0) for c in cohorts] for g in range(1, 6)]
    chart.categoryAxis.categoryNames = list(cohorts)
    _axis_fonts(chart)
    top = _nice_top(max([*counts.values(), 1]))
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = top
    chart.valueAxis.valueStep = max(1, top // 5)
    for grade, colour in enumerate(GRADE_COLOURS):
        chart.bars[grade].fillColor = colors.HexColor(colour)
        chart.bars[grade].strokeColor = None
    chart.groupSpacing = 10
    chart.barSpacing = 1
    chart.barLabelFormat = _count_label
    chart.barLabels.fontName = FONT
    chart.barLabels.fontSize = 6
    chart.barLabels.nudge = 5
    drawing.add(chart)
    legend = Legend()
    legend.x, legend.y = FRAME_WIDTH - 84, height - 36
    legend.fontName = FONT
    legend.fontSize = 8
    legend.alignment = "right"
    legend.colorNamePairs = [
        (colors.HexColor(c), f"Grade {g}") for g, c in enumerate(GRADE_COLOURS, start=1)
    ]
    legend.columnMaximum = 5
    drawing.add(legend)
    return drawing


def alt_over_time(series: Sequence[dict[str, Any]]) -> Drawing:
    """One line per subject: ALT in multiples of the ULN against the study day, with the
    CTCAE grade boundaries (1, 3, 5 and 20 x ULN) as dashed lines."""
    height = 230
    drawing = Drawing(FRAME_WIDTH, height)
    title = "ALT (x ULN) over study days, subjects with the highest peaks"
    drawing.add(String(0, height - 12, title, fontName=FONT, fontSize=9, fillColor=INK))
    plot = LinePlot()
    plot.x, plot.y = 34, 30
    plot.width = FRAME_WIDTH - 160
    plot.height = height - 60
    # a subject with one draw is a point: a line of length zero, drawn by its marker
    lines = [[(p["day"], p["uln_multiple"]) for p in s["points"]] for s in series]
    lines = [line * 2 if len(line) == 1 else line for line in lines if line]
    plot.data = lines
    days = [d for line in lines for d, _ in line]
    values = [v for line in lines for _, v in line]
    plot.xValueAxis.valueMin = min([*days, 0])
    plot.xValueAxis.valueMax = max([*days, 1])
    top = max(_nice_top(max([*values, 1])), 5)
    plot.yValueAxis.valueMin = 0
    plot.yValueAxis.valueMax = top
    _axis_fonts(plot)
    for index in range(len(series)):
        plot.lines[index].strokeColor = colors.HexColor(SERIES[index % len(SERIES)])
        plot.lines[index].strokeWidth = 1.1
        plot.lines[index].symbol = makeMarker("FilledCircle", size=2.5)
        plot.lines[index].symbol.fillColor = colors.HexColor(SERIES[index % len(SERIES)])
    drawing.add(plot)
    for boundary in (1, 3, 5, 20):
        if boundary < top:
            y = plot.y + plot.height * boundary / top
            drawing.add(
                Line(
                    plot.x,
                    y,
                    plot.x + plot.width,
                    y,
                    strokeColor=colors.HexColor("#D9534F"),
                    strokeWidth=0.5,
                    strokeDashArray=[2, 2],
                )
            )
            drawing.add(
                String(
                    plot.x + plot.width + 2,
                    y - 2,
                    f"{boundary}x",
                    fontName=FONT,
                    fontSize=6,
                    fillColor=MUTED,
                )
            )
    drawing.add(
        String(plot.x + plot.width / 2, 6, "study day", fontName=FONT, fontSize=7, fillColor=MUTED)
    )
    legend = Legend()
    legend.x, legend.y = FRAME_WIDTH - 104, height - 30
    legend.fontName = FONT
    legend.fontSize = 7
    legend.alignment = "right"
    legend.colorNamePairs = [
        (colors.HexColor(SERIES[i % len(SERIES)]), s["subject_code"])
        for i, s in enumerate(series[:14])
    ]
    legend.columnMaximum = 14
    legend.deltay = 9
    drawing.add(legend)
    return drawing
