"""The DSMB safety report (open session): enrolment against plan, CONSORT flow, dosing
timeline, stopping rules and pauses, expedited reports, protocol deviations. The adverse
event and laboratory sections are in `dsmb_events`; every number comes from the service the
matching page reads, cut off at the report's data cut-off.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from reportlab.platypus import Flowable

from trialmgr.reports.builders.charts import dosing_timeline as timeline_chart
from trialmgr.reports.builders.common import cover_page, enrolment_chart
from trialmgr.reports.builders.consort import consort_section
from trialmgr.reports.builders.layout import (
    Column,
    data_table,
    fmt_date,
    fmt_time,
    gap,
    heading,
    para,
    percent,
)
from trialmgr.reports.builders.registry import (
    TEMPLATE_VERSIONS,
    ReportContext,
    cover,
    section,
)
from trialmgr.reports.services import oversight
from trialmgr.reports.services.enrolment import trial_sites

KIND = "dsmb_safety"
TEMPLATE_VERSIONS[KIND] = "dsmb_safety 1.0"
cover(KIND)(cover_page)


@section(KIND, "consort", "CONSORT flow", order=15)
def consort_flow(ctx: ReportContext) -> Iterator[Flowable]:
    yield from consort_section(ctx)


@section(KIND, "enrolment", "Enrolment against plan, per site and cohort", order=10)
def enrolment(ctx: ReportContext) -> Iterator[Flowable]:
    cohorts, sites = oversight.enrolment_plans(
        ctx.trial, trial_sites(ctx.trial, ctx.cut_off), ctx.cut_off
    )
    yield heading("Cohorts")
    columns = [
        Column("Cohort", 0.1),
        Column("Dose", 0.2),
        Column("Capacity", 0.12, right=True),
        Column("Enrolled", 0.12, right=True),
        Column("Dosed", 0.12, right=True),
        Column("Left before dosing", 0.17, right=True),
        Column("Slots held", 0.17, right=True),
    ]
    yield from data_table(
        columns,
        (
            (
                c.label,
                f"{c.dose} {c.dose_unit}",
                c.capacity,
                c.enrolled,
                c.dosed,
                c.left_before_dosing,
                f"{c.holding} of {c.capacity}",
            )
            for c in cohorts
        ),
        empty="The trial has no cohorts.",
    )
    labels = [c.label for c in cohorts]
    yield heading("Sites")
    share = 0.52 / max(len(labels), 1)
    site_columns = [
        Column("Site", 0.12),
        Column("Target", 0.09, right=True),
        *(Column(f"Enrolled {label}", share, right=True) for label in labels),
        Column("Enrolled", 0.09, right=True),
        Column("Of target", 0.09, right=True),
        Column("Dosed", 0.09, right=True),
    ]
    yield from data_table(
        site_columns,
        (
            (
                s.code,
                s.target,
                *(s.by_cohort[label] for label in labels),
                s.enrolled,
                percent(s.enrolled, s.target),
                s.dosed,
            )
            for s in sites
        ),
        empty="No site takes part by the cut-off.",
    )
    if sites:
        yield gap(8)
        yield enrolment_chart(
            [s.code for s in sites], [s.enrolled for s in sites], [s.target for s in sites]
        )


@section(KIND, "dosing", "Dosing timeline and sentinel stagger", order=20)
def dosing(ctx: ReportContext) -> Iterator[Flowable]:
    trial = ctx.trial
    lines = oversight.dosing_timeline(trial, ctx.cut_off)
    reviews = oversight.safety_reviews(trial, ctx.cut_off)
    yield para(
        f"Within a cohort, subjects are dosed at least {trial.stagger_days} days "
        f"({trial.stagger_days * 24} hours) apart; the first subject of a higher-dose cohort "
        "only after a signed safety review of the previous cohort decided to escalate. "
        "Gaps are measured between recorded dosing times."
    )
    if lines or reviews:
        moments = [line.dosed_at.date() for line in lines] + [r.signed_at.date() for r in reviews]
        start = min(moments) - timedelta(days=7)
        rows = [
            (
                c.label,
                [line.dosed_at.date() for line in lines if line.cohort == c.label],
                [r.signed_at.date() for r in reviews if r.cohort_id == c.id],
            )
            for c in trial.cohorts
        ]
        yield timeline_chart(rows, start, max(ctx.cut_off, start + timedelta(days=1)))
    columns = [
        Column("Cohort", 0.09),
        Column("#", 0.05, right=True),
        Column("Subject", 0.14),
        Column("Site", 0.08),
        Column("Dosed (site time)", 0.36),
        Column("Gap since previous (days)", 0.16, right=True),
        Column("Stagger", 0.12),
    ]
    yield heading("Dosings")
    yield from data_table(
        columns,
        (
            (
                line.cohort,
                line.number,
                line.subject,
                line.site,
                line.dosed_local,
                "sentinel" if line.gap_days is None else f"{line.gap_days:.1f}",
                "BELOW STAGGER" if line.below_stagger else "kept",
            )
            for line in lines
        ),
        empty="Nobody dosed by the cut-off.",
    )
    yield heading("Safety review decisions")
    review_columns = [
        Column("Signed", 0.2),
        Column("Cohort", 0.09),
        Column("Decision", 0.11),
        Column("Rationale", 0.6, wrap=True),
    ]
    yield from data_table(
        review_columns,
        ((fmt_time(r.signed_at), r.cohort.label, r.decision, r.rationale) for r in reviews),
        empty="No safety review decision by the cut-off.",
    )


@section(KIND, "stopping", "Stopping rules and pauses", order=70)
def stopping(ctx: ReportContext) -> Iterator[Flowable]:
    pauses = oversight.pauses(ctx.trial, ctx.cut_off)
    open_ = [p for p in pauses if oversight.resumed_by(p, ctx.cut_off) is None]
    yield para(
        f"On the cut-off dosing was {'PAUSED' if open_ else 'not paused'} trial-wide. "
        "Any active rule that fires pauses dosing at once; only a safety monitor's signed "
        "decision resumes it."
    )
    yield heading("Rules (as configured at generation)")
    rule_columns = [
        Column("Rule", 0.2),
        Column("Description", 0.5, wrap=True),
        Column("Parameters", 0.18, wrap=True),
        Column("Active", 0.12),
    ]
    yield from data_table(
        rule_columns,
        (
            (
                r.kind,
                r.description,
                ", ".join(f"{k}={v}" for k, v in sorted((r.params or {}).items())) or "—",
                "yes" if r.active else "no",
            )
            for r in oversight.stopping_rules(ctx.trial)
        ),
        empty="The trial's default rules have not been set up yet (they are created with "
        "the first adverse event or lab result).",
    )
    yield heading("Rules that fired")
    fired_columns = [
        Column("Fired", 0.2),
        Column("Rule", 0.18),
        Column("Reason", 0.62, wrap=True),
    ]
    yield from data_table(
        fired_columns,
        (
            (fmt_time(f.fired_at), kind, f.reason)
            for f, kind in oversight.firings(ctx.trial, ctx.cut_off)
        ),
        empty="No stopping rule fired by the cut-off.",
    )
    yield heading("Pauses")
    pause_columns = [
        Column("Paused", 0.17),
        Column("Source", 0.14, wrap=True),
        Column("Reason", 0.32, wrap=True),
        Column("Resumed", 0.17),
        Column("Resumption reason", 0.2, wrap=True),
    ]
    yield from data_table(
        pause_columns,
        (
            (
                fmt_time(p.paused_at),
                p.source,
                p.reason,
                fmt_time(resumed)
                if (resumed := oversight.resumed_by(p, ctx.cut_off))
                else "still paused on the cut-off",
                p.resume_reason if resumed else "",
            )
            for p in pauses
        ),
        empty="No pause by the cut-off.",
    )


@section(KIND, "expedited", "Expedited reports and their timeliness", order=80)
def expedited(ctx: ReportContext) -> Iterator[Flowable]:
    lines = list(oversight.expedited_clocks(ctx.trial, ctx.cut_off))
    counts = {t: sum(1 for line in lines if line.timeliness == t) for t in oversight.TIMELINESS}
    due = counts["on time"] + counts["late"] + counts["overdue"]
    yield para(
        f"{len(lines)} reporting clock(s) started by the cut-off; {due} were due or submitted "
        f"by then: {counts['on time']} submitted on time, {counts['late']} late, "
        f"{counts['overdue']} overdue and not submitted ({percent(counts['on time'], due)} on "
        f"time); {counts['open']} not yet due. Deadlines: sponsor 24 hours from site "
        "awareness; FDA, EU and IBC 7 or 15 calendar days (DOMAIN defaults, per trial)."
    )
    columns = [
        Column("AE", 0.05, right=True),
        Column("Subject", 0.12),
        Column("Term", 0.19, wrap=True),
        Column("To", 0.08),
        Column("Report", 0.08),
        Column("Due (UTC)", 0.18),
        Column("Submitted (UTC)", 0.18),
        Column("Timeliness", 0.12),
    ]
    yield from data_table(
        columns,
        (
            (
                line.adverse_event_id,
                line.subject,
                line.term,
                line.authority,
                line.kind.replace("_", "-"),
                fmt_time(line.due_at, zone=False),
                fmt_time(line.submitted_at, zone=False),
                line.timeliness,
            )
            for line in lines
        ),
        empty="No expedited report was due or started by the cut-off.",
    )


@section(KIND, "deviations", "Protocol deviations", order=90)
def deviations(ctx: ReportContext) -> Iterator[Flowable]:
    yield para(
        "Deviations dated on or before the cut-off and recorded by then, as they stood then "
        "(those voided by a correction by the cut-off are left out): visits out of window or "
        "missed, procedures while re-consent was due, dosing errors."
    )
    columns = [
        Column("Date", 0.11),
        Column("Subject", 0.13),
        Column("Site", 0.08),
        Column("Kind", 0.17),
        Column("Description", 0.51, wrap=True),
    ]
    yield from data_table(
        columns,
        (
            (fmt_date(d.occurred_on), code, site, d.kind.replace("_", " "), d.description)
            for d, code, site in oversight.deviations(ctx.trial, ctx.cut_off)
        ),
        empty="No protocol deviation by the cut-off.",
    )
