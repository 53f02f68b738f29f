"""What every report has: the cover page, and the enrolment-against-target chart."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version

import sqlalchemy as sa
from reportlab.platypus import Flowable

from trialmgr.enrollment.models import Amendment
from trialmgr.extensions import db
from trialmgr.reports.builders.charts import enrolment_vs_target
from trialmgr.reports.builders.layout import (
    esc,
    fmt_date,
    fmt_time,
    gap,
    key_values,
    note,
    para,
    rich,
)
from trialmgr.reports.builders.registry import ReportContext, outline, pending_of

DATED = (
    "events dated on or before this day (each site's calendar), as recorded when the report "
    "was generated"
)
# Kinds whose sections count only what was entered by the cut-off (decision 0014).
CUT_OFF_MEANING = {
    kind: "records dated on or before this day and entered by its end (each site's "
    "calendar); adverse events as their version in force then"
    for kind in ("dsmb_safety", "feasibility")
}


def software_version() -> str:
    try:
        return version("trialmgr")
    except PackageNotFoundError:  # running from a checkout that was not installed
        return "unknown"


def protocol_version(ctx: ReportContext) -> str:
    """The protocol as amended by the cut-off: the latest amendment in effect then."""
    amendment = db.session.execute(
        sa.select(Amendment)
        .where(Amendment.trial_id == ctx.trial.id, Amendment.effective_on <= ctx.cut_off)
        .order_by(Amendment.effective_on.desc(), Amendment.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if amendment is None:
        return "Original protocol (no amendment in effect)"
    return f"Amendment {amendment.version}, effective {amendment.effective_on.isoformat()}"


def cover_page(ctx: ReportContext) -> Iterator[Flowable]:
    """Title, trial, scope, cut-off, period, generation time, versions, audit head, the
    report's contents and, for an interim format, what it does not contain yet."""
    trial = ctx.trial
    yield gap(30)
    yield rich(esc(ctx.title), "title")
    yield gap(4)
    yield rich(f"{esc(trial.code)} · {esc(trial.title)}", "subtitle")
    yield gap(18)
    scope = f"Site {ctx.site.code} ({ctx.site.name})" if ctx.site is not None else "All sites"
    period = f"{fmt_date(ctx.period_start)} to {fmt_date(ctx.cut_off)}"
    requested = f"Schedule ({ctx.schedule_cron}, UTC)" if ctx.schedule_cron else ctx.requested_by
    disease = f"ORPHA:{trial.orphacode}" if trial.orphacode else "—"
    rows = [
        ("Trial", f"{trial.code}: {trial.title}"),
        ("Phase · indication", f"{trial.phase or '—'} · {trial.indication or '—'} ({disease})"),
        ("Scope", scope),
        ("Data cut-off", f"{fmt_date(ctx.cut_off)}: {CUT_OFF_MEANING.get(ctx.kind, DATED)}"),
        ("Period", period),
        ("Generated", fmt_time(ctx.generated_at)),
        ("Requested by", requested),
        ("Report version", f"{ctx.template} · trialmgr {software_version()}"),
        ("Protocol", protocol_version(ctx)),
        ("Trial status at generation", trial.status.replace("_", " ")),
        ("Audit chain head", ctx.audit_head),
    ]
    if ctx.report_id is not None:
        rows.insert(0, ("Report", f"#{ctx.report_id}"))
    yield key_values(rows)
    yield gap(14)
    pending = pending_of(ctx.kind)
    if pending:
        titles = "; ".join(esc(p.title) for p in pending)
        yield note(
            f"<b>Interim format.</b> This report does not yet contain: {titles}. They are "
            "listed in the section “Not yet in this report”.",
            markup=True,
        )
        yield gap(10)
    yield rich("<b>Contents</b>")
    for number, title in enumerate(outline(ctx), start=1):
        yield para(f"{number}. {title}")
    yield gap(14)
    yield para(
        "Confidential. Subjects appear only by their pseudonymous codes; the report holds no "
        "names, addresses or dates of birth.",
        "small",
    )


def enrolment_chart(labels: list[str], enrolled: list[int], targets: list[int]) -> Flowable:
    return enrolment_vs_target(
        labels, enrolled, targets, "Subjects enrolled against target, per site"
    )
