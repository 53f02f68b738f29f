"""The feasibility report: recruitment by site, the progression criteria with their
traffic lights and the decision, every metric with its exact interval and its monthly
trend, milestones planned against actual, and the CONSORT flow. The numbers are the
feasibility page's (`milestones.services.feasibility.review`, `milestones.views_of`,
`consort.flow`) as of the data cut-off, over the records entered by then.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from reportlab.platypus import Flowable

from trialmgr.clock import utcnow
from trialmgr.milestones.services import feasibility
from trialmgr.milestones.services import milestones as milestones_service
from trialmgr.reports.builders.charts import drawable_trends, metric_trends
from trialmgr.reports.builders.common import cover_page, enrolment_chart
from trialmgr.reports.builders.consort import REPORT_READER, consort_section
from trialmgr.reports.builders.layout import (
    Column,
    LightCell,
    data_table,
    esc,
    fmt_date,
    gap,
    heading,
    para,
    percent,
    rich,
)
from trialmgr.reports.builders.registry import (
    TEMPLATE_VERSIONS,
    ReportContext,
    cover,
    section,
)
from trialmgr.reports.builders.site_enrollment import sites_of

# The month-by-month table shows the latest months that fit across the page.
TREND_COLUMNS = 6

KIND = "feasibility"
TEMPLATE_VERSIONS[KIND] = "feasibility 1.0"
cover(KIND)(cover_page)


@section(KIND, "recruitment", "Recruitment by site", order=10)
def recruitment(ctx: ReportContext) -> Iterator[Flowable]:
    sites = sites_of(ctx)
    yield para(
        "The inputs of the recruitment rate, per site: subjects enrolled by the cut-off and "
        "the months the site was open (active with every approval current). The rate itself, "
        "with its interval, is with the feasibility metrics."
    )
    columns = [
        Column("Site", 0.12),
        Column("Status on cut-off", 0.24),
        Column("Months open", 0.14, right=True),
        Column("Screened", 0.12, right=True),
        Column("Enrolled", 0.12, right=True),
        Column("Target", 0.12, right=True),
        Column("Of target", 0.14, right=True),
    ]
    yield from data_table(
        columns,
        (
            (
                s.site.code,
                s.status,
                f"{s.months_open:.1f}",
                s.screening.screened,
                s.enrolled,
                s.target,
                percent(s.enrolled, s.target),
            )
            for s in sites
        ),
        empty="No site takes part by the cut-off.",
    )
    if sites:
        yield gap(8)
        yield enrolment_chart(
            [s.site.code for s in sites], [s.enrolled for s in sites], [s.target for s in sites]
        )


def review_of(ctx: ReportContext) -> dict[str, Any]:
    """The feasibility review at the cut-off (the page's numbers), computed once."""
    site_id = ctx.site.id if ctx.site is not None else None
    return ctx.memo(
        "feasibility",
        lambda: feasibility.review(
            REPORT_READER, ctx.trial, utcnow(), ctx.cut_off, site_id, entered_by=ctx.cut_off
        ),
    )


def value_text(kind: str, value: float | None) -> str:
    """A metric's value as the page shows it: proportions in per cent."""
    if value is None:
        return "—"
    if kind == "proportion":
        return f"{100 * value:.1f} %"
    return f"{value:.2f}"


def interval_text(kind: str, low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "—"
    if kind == "proportion":
        return f"{100 * low:.1f} to {100 * high:.1f} %"
    return f"{low:.2f} to {high:.2f}"


def _fraction(item: dict[str, Any]) -> str:
    numerator, denominator = item["numerator"], item["denominator"]
    if isinstance(denominator, float) and not denominator.is_integer():
        return f"{numerator} / {denominator:.1f}"
    return f"{numerator} / {denominator:g}"


def _target(item: dict[str, Any]) -> str:
    sign = "≤" if item["direction"] == "lower_is_better" else "≥"
    amber = value_text(item["kind"], item["amber_threshold"])
    return f"{sign} {value_text(item['kind'], item['target'])} (amber {sign} {amber})"


DECISIONS = {
    "proceed": "PROCEED: every criterion is green.",
    "amend": "AMEND: no criterion is red, but not all are green (or some have no data yet).",
    "stop": "STOP OR RETHINK: at least one criterion is red.",
    None: "No decision: the trial has no progression criteria.",
}


@section(KIND, "criteria", "Progression criteria", order=20)
def criteria(ctx: ReportContext) -> Iterator[Flowable]:
    result = review_of(ctx)
    yield para(
        "Each criterion compares a metric with its target: green at or beyond the target, "
        "amber at or beyond the amber threshold (a fraction of the target), red short of it; "
        "boundaries belong to the better light. Intervals are exact 95 % intervals "
        "(Clopper-Pearson for proportions, Poisson for rates)."
    )
    yield rich(f"<b>Decision on {fmt_date(ctx.cut_off)}:</b> {esc(DECISIONS[result['decision']])}")
    yield from data_table(
        [
            Column("Criterion", 0.25, wrap=True),
            Column("Target", 0.25, wrap=True),
            Column("Value", 0.12, right=True),
            Column("95 % interval", 0.2, right=True),
            Column("Light", 0.18),
        ],
        (
            (
                c["label"],
                _target(c),
                value_text(c["kind"], c["value"]),
                interval_text(c["kind"], c["ci_low"], c["ci_high"]),
                LightCell(c["light"]),
            )
            for c in result["criteria"]
        ),
        empty="The trial has no progression criteria.",
    )


@section(KIND, "metrics", "Feasibility metrics and their trends", order=30)
def metrics(ctx: ReportContext) -> Iterator[Flowable]:
    result = review_of(ctx)
    yield para(
        "Every metric at the cut-off with what it is computed from; then each metric at the "
        "end of every month (the last point is the cut-off)."
    )
    yield from data_table(
        [
            Column("Metric", 0.3),
            Column("Numerator / denominator", 0.22, right=True),
            Column("Value", 0.16, right=True),
            Column("95 % interval", 0.32, right=True),
        ],
        (
            (
                m["label"] + (f" ({m['unit']})" if m["unit"] else ""),
                _fraction(m),
                value_text(m["kind"], m["value"]),
                interval_text(m["kind"], m["ci_low"], m["ci_high"]),
            )
            for m in result["metrics"]
        ),
    )
    trend = result["trend"]
    if not trend:
        yield para("No month to show yet.", "small")
        return
    kinds = {m["metric"]: m["kind"] for m in result["metrics"]}
    labels = {m["metric"]: m["label"] for m in result["metrics"]}
    points = [p["as_of"] for p in trend]
    lines = drawable_trends(
        points,
        {labels[m]: [p["values"][m] for p in trend] for m in kinds if kinds[m] == "proportion"},
    )
    if lines:
        yield gap(6)
        yield metric_trends(points, lines)
    yield heading("Month by month")
    recent = trend[-TREND_COLUMNS:]
    share = 0.7 / len(recent)
    yield from data_table(
        [
            Column("Metric", 0.3),
            *(Column(p["as_of"].strftime("%Y-%m-%d"), share, right=True) for p in recent),
        ],
        ((labels[m], *(value_text(kinds[m], p["values"][m]) for p in recent)) for m in kinds),
    )


@section(KIND, "milestones", "Milestones, planned against actual", order=40)
def milestones(ctx: ReportContext) -> Iterator[Flowable]:
    views = milestones_service.views_of(REPORT_READER, ctx.trial, utcnow(), ctx.cut_off)
    if ctx.site is not None:
        views = [v for v in views if v["site_id"] in (None, ctx.site.id)]
    done = sum(v["status"] == "done" for v in views)
    late = sum(v["status"] == "late" for v in views)
    yield para(
        f"{len(views)} milestone(s): {done} achieved by the cut-off, {late} late (planned "
        "before the cut-off, not achieved by then). Delay: days from the planned date to the "
        "achieved date, or to the cut-off while not achieved."
    )
    yield from data_table(
        [
            Column("Milestone", 0.3, wrap=True),
            Column("Scope", 0.1),
            Column("Planned", 0.13),
            Column("Achieved", 0.13),
            Column("Delay (days)", 0.14, right=True),
            Column("Status", 0.2),
        ],
        (
            (
                v["name"],
                v["site_code"] or v["cohort_label"] or "trial",
                fmt_date(v["planned_on"]),
                fmt_date(v["achieved_on"]),
                v["days_after_plan"],
                v["status"].replace("_", " "),
            )
            for v in views
        ),
        empty="The trial has no milestones.",
    )


@section(KIND, "consort", "CONSORT flow", order=50)
def consort_flow(ctx: ReportContext) -> Iterator[Flowable]:
    yield from consort_section(ctx)
