"""The site enrolment report: per site its status and history, approvals in force and their
expiry, the screening log, enrolment against target, and visits due or overdue. Trial-wide
(every site of the trial) or for one site (its coordinators may download that one)."""

from __future__ import annotations

from collections.abc import Iterator

from reportlab.platypus import Flowable

from trialmgr.partners.models import APPROVAL_KINDS, APPROVAL_LABELS
from trialmgr.reports.builders.common import cover_page, enrolment_chart
from trialmgr.reports.builders.layout import (
    Column,
    data_table,
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
from trialmgr.reports.services.enrolment import SiteEnrolment, site_enrolment, trial_sites

KIND = "site_enrollment"
TEMPLATE_VERSIONS[KIND] = "site_enrollment 1.0"
cover(KIND)(cover_page)


def sites_of(ctx: ReportContext) -> list[SiteEnrolment]:
    def compute() -> list[SiteEnrolment]:
        sites = [ctx.site] if ctx.site is not None else trial_sites(ctx.trial, ctx.cut_off)
        return [site_enrolment(ctx.trial, s, ctx.period_start, ctx.cut_off) for s in sites]

    sites: list[SiteEnrolment] = ctx.memo("sites", compute)
    return sites


def _site_heading(item: SiteEnrolment) -> Flowable:
    return heading(f"{item.site.code} · {item.site.name} ({item.site.country})")


def _status(item: SiteEnrolment) -> str:
    since = f" since {fmt_date(item.status_since)}" if item.status_since else ""
    return f"{item.status}{since}"


@section(KIND, "summary", "Summary", order=10)
def summary(ctx: ReportContext) -> Iterator[Flowable]:
    sites = sites_of(ctx)
    if not sites:
        yield para("No site takes part in this trial by the cut-off.")
        return
    total_target = sum(s.target for s in sites)
    total_enrolled = sum(s.enrolled for s in sites)
    yield para(
        f"{total_enrolled} subject(s) enrolled at {len(sites)} site(s) by "
        f"{fmt_date(ctx.cut_off)}, against a combined target of {total_target} "
        f"({percent(total_enrolled, total_target)})."
    )
    columns = [
        Column("Site", 0.07),
        Column("Status on cut-off", 0.18),
        Column("Open to screen", 0.08),
        Column("Months open", 0.08, right=True),
        Column("Target", 0.08, right=True),
        Column("Enrolled", 0.09, right=True),
        Column("Of target", 0.09, right=True),
        Column("Screened", 0.1, right=True),
        Column("Screen failed", 0.08, right=True),
        Column("Visits due", 0.07, right=True),
        Column("Visits overdue", 0.08, right=True),
    ]
    rows = [
        (
            s.site.code,
            _status(s),
            "yes" if s.open_for_screening else "no",
            f"{s.months_open:.1f}",
            s.target,
            s.enrolled,
            percent(s.enrolled, s.target),
            s.screening.screened,
            s.screening.screen_failed,
            s.visits.due,
            s.visits.overdue,
        )
        for s in sites
    ]
    yield from data_table(columns, rows)
    yield gap(10)
    yield enrolment_chart(
        [s.site.code for s in sites], [s.enrolled for s in sites], [s.target for s in sites]
    )
    yield para(
        "Months open count only the days a site was active with every approval current.",
        "small",
    )


@section(KIND, "status", "Site status and history", order=20)
def status(ctx: ReportContext) -> Iterator[Flowable]:
    columns = [
        Column("From", 0.14),
        Column("Change", 0.16),
        Column("Status", 0.14),
        Column("Reason", 0.56, wrap=True),
    ]
    for item in sites_of(ctx):
        yield _site_heading(item)
        yield para(
            f"Status on the cut-off: {_status(item)}; "
            f"{'open' if item.open_for_screening else 'not open'} for screening; "
            f"IANA time zone {item.site.timezone}."
        )
        rows = ((c.on.isoformat(), c.change, c.status, c.reason) for c in item.history)
        yield from data_table(columns, rows, empty="Never activated by the cut-off.")


@section(KIND, "approvals", "Approvals and expiry", order=30)
def approvals(ctx: ReportContext) -> Iterator[Flowable]:
    yield para(
        "Per kind, the newest approval granted on or before a day is the one in force; a "
        "renewal supersedes the older letter. States are judged on the cut-off; approvals "
        "expiring within 30 days are marked expiring.",
        "small",
    )
    columns = [
        Column("Kind", 0.18, wrap=True),
        Column("Reference", 0.2, wrap=True),
        Column("Granted", 0.115),
        Column("Expires", 0.115),
        Column("Withdrawn", 0.115),
        Column("State on cut-off", 0.155),
        Column("Record", 0.12),
    ]
    for item in sites_of(ctx):
        yield _site_heading(item)
        rows = []
        for line in item.approvals:
            state = line.state
            if line.days_to_expiry is not None and line.expires_on is not None:
                state = f"{state} ({line.days_to_expiry} d left)"
            rows.append(
                (
                    line.label,
                    line.reference,
                    fmt_date(line.granted_on),
                    fmt_date(line.expires_on) if line.expires_on else "no expiry",
                    fmt_date(line.withdrawn_on) if line.withdrawn_on else "",
                    state,
                    "in force" if line.in_force else "superseded",
                )
            )
        yield from data_table(columns, rows, empty="No approval granted by the cut-off.")
        missing = [k for k in APPROVAL_KINDS if not any(a.kind == k for a in item.approvals)]
        if missing:
            names = ", ".join(APPROVAL_LABELS[k] for k in missing)
            yield para(f"Never granted by the cut-off: {names}.", "small")


@section(KIND, "screening", "Screening log", order=40)
def screening(ctx: ReportContext) -> Iterator[Flowable]:
    sites = sites_of(ctx)
    yield para(
        "Screenings dated on or before the cut-off, by the outcome recorded at generation. "
        "Consented counts consent recorded on the screening by the cut-off (a subject who "
        "consented and then failed screening counts as consented)."
    )
    columns = [
        Column("Site", 0.16),
        *(
            Column(h, 0.12, right=True)
            for h in ("Screened", "Pending", "Eligible", "Screen failed", "Declined")
        ),
        Column("Consented", 0.12, right=True),
        Column("Enrolled", 0.12, right=True),
    ]
    fields = (
        "screened",
        "pending",
        "eligible",
        "screen_failed",
        "declined",
        "consented",
        "enrolled",
    )
    rows: list[tuple[object, ...]] = [
        (s.site.code, *(getattr(s.screening, f) for f in fields)) for s in sites
    ]
    if len(sites) > 1:
        rows.append(("All sites", *(sum(getattr(s.screening, f) for s in sites) for f in fields)))
    yield from data_table(columns, rows)
    reasons = [Column("Reason", 0.84, wrap=True), Column("Screenings", 0.16, right=True)]
    for item in sites:
        yield _site_heading(item)
        yield rich("<b>Screen failures by reason</b>", "body")
        yield from data_table(reasons, item.screening.fail_reasons, empty="No screen failure.")
        yield gap(4)
        yield rich("<b>Declined, by stated reason</b>", "body")
        yield from data_table(reasons, item.screening.decline_reasons, empty="Nobody declined.")
    yield gap(4)
    yield para(
        "A screening that failed more than one criterion counts under each; a stated reason "
        "counts beside the unmet criteria.",
        "small",
    )


@section(KIND, "enrolment", "Enrolment against target", order=50)
def enrolment(ctx: ReportContext) -> Iterator[Flowable]:
    columns = [
        Column("Subject", 0.18),
        Column("Cohort", 0.1),
        Column("Enrolled", 0.14),
        Column("Dosed", 0.14),
        Column("Status on cut-off", 0.44, wrap=True),
    ]
    for item in sites_of(ctx):
        yield _site_heading(item)
        yield para(
            f"Enrolled {item.enrolled} of a target of {item.target} "
            f"({percent(item.enrolled, item.target)}); dosed {item.dosed}; "
            f"left the trial {item.exited}."
        )
        rows = (
            (s.code, s.cohort, fmt_date(s.enrolled_on), fmt_date(s.dosed_on), s.status)
            for s in item.subjects
        )
        yield from data_table(columns, rows, empty="Nobody enrolled by the cut-off.")


@section(KIND, "visits", "Visits due and overdue", order=60)
def visits(ctx: ReportContext) -> Iterator[Flowable]:
    sites = sites_of(ctx)
    yield para(
        "On the cut-off: due means the visit window is open, overdue that it has closed "
        "without the visit being recorded; upcoming windows open within 14 days. Done counts "
        f"visits done in the period ({fmt_date(ctx.period_start)} to {fmt_date(ctx.cut_off)})."
    )
    columns = [
        Column("Site", 0.2),
        *(
            Column(h, 0.16, right=True)
            for h in ("Done in period", "Due", "Overdue", "Upcoming", "Missed")
        ),
    ]
    rows = [
        (
            s.site.code,
            s.visits.done_in_period,
            s.visits.due,
            s.visits.overdue,
            s.visits.upcoming,
            s.visits.missed,
        )
        for s in sites
    ]
    yield from data_table(columns, rows)
    listing = [
        Column("Subject", 0.16),
        Column("Visit", 0.3, wrap=True),
        Column("Window", 0.26),
        Column("State", 0.12),
        Column("Days overdue", 0.16, right=True),
    ]
    for item in sites:
        if not item.visits.open_visits:
            continue
        yield _site_heading(item)
        rows_ = (
            (
                v.subject,
                v.name,
                f"{fmt_date(v.window_start)} to {fmt_date(v.window_end)}",
                v.state,
                v.days_overdue or "",
            )
            for v in item.visits.open_visits
        )
        yield from data_table(listing, rows_)
