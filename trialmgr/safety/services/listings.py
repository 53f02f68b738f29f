"""The listings behind the safety dashboard's numbers (each number links to its listing,
with the same scope) and a subject's safety profile on one timeline.

A listing selects exactly the records its number counts: `worst_grade` selects the events
of the subjects whose worst grade in the SOC (within the scope) is that grade, as the SOC x
worst grade x cohort table counts them; `open` the serious events without a resolution
date; a lab shift cell the draws of the subjects in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from trialmgr.clock import local_date
from trialmgr.enrollment.models import Dosing, Subject
from trialmgr.enrollment.services.visits import deviations_of
from trialmgr.extensions import db
from trialmgr.partners.models import Site
from trialmgr.safety.models import AdverseEvent, ExpeditedReport, LabResult, WorkItem
from trialmgr.safety.services.lab_summary import shift_subjects
from trialmgr.safety.services.scope import Scope, ae_conditions, lab_conditions, soc_key
from trialmgr.safety.services.summary import clock_select

CLOCK_STATUSES = ("open", "overdue", "submitted", "all")
# Rows fetched from the database at a time by the streamed listings.
LISTING_BATCH = 1000
LIVER = ("ALT", "AST", "BILI")


def _filter_events(scope: Scope, filters: dict[str, Any], q: Any) -> Any:
    """`q` (a select from `scope.events`) narrowed to the scope and the filters."""
    ae = scope.events
    where = ae_conditions(scope)
    if filters.get("soc"):
        where.append(soc_key(ae.soc) == filters["soc"].strip().lower())
    q = q.where(*where)
    for field in ("grade", "serious", "suspected", "susar", "aesi", "aesi_category"):
        if filters.get(field) is not None:
            q = q.where(getattr(ae, field) == filters[field])
    if filters.get("min_grade") is not None:
        q = q.where(ae.grade >= filters["min_grade"])
    if filters.get("open"):
        q = q.where(ae.serious.is_(True), ae.resolution_date.is_(None))
    if filters.get("dosed"):
        q = q.where(sa.exists().where(Dosing.subject_id == ae.subject_id))
    if filters.get("worst_grade") is not None:
        worst = (
            sa.select(ae.subject_id, soc_key(ae.soc).label("soc_key"))
            .where(*where)
            .group_by(ae.subject_id, soc_key(ae.soc))
            .having(sa.func.max(ae.grade) == filters["worst_grade"])
            .subquery()
        )
        q = q.join(
            worst,
            sa.and_(worst.c.subject_id == ae.subject_id, worst.c.soc_key == soc_key(ae.soc)),
        )
    return q


def event_query(scope: Scope, filters: dict[str, Any]) -> sa.Select[tuple[AdverseEvent]]:
    """Events in the scope, newest onset first; filters: soc, worst_grade, grade, serious,
    open (serious, not resolved), susar, aesi, aesi_category, dosed (of dosed subjects)."""
    ae = scope.events
    q = _filter_events(scope, filters, sa.select(ae))
    return q.options(selectinload(ae.subject).selectinload(Subject.site)).order_by(
        ae.onset_date.desc(), ae.id.desc()
    )


def event_listing(scope: Scope, filters: dict[str, Any]) -> Iterator[Any]:
    """The events `event_query` selects, oldest onset first, as plain rows streamed from
    the database (for listings of any length: no ORM objects, bounded memory)."""
    ae = scope.events
    q = (
        sa.select(
            ae.id,
            Subject.code.label("subject_code"),
            Site.code.label("site"),
            ae.cohort_id,
            ae.term,
            ae.pt_term,
            ae.soc,
            ae.grade,
            ae.onset_date,
            ae.resolution_date,
            ae.seriousness_criteria,
            ae.serious,
            ae.susar,
            ae.causality,
            ae.expected,
            ae.aesi,
            ae.aesi_category,
            ae.outcome,
        )
        .join(Subject, Subject.id == ae.subject_id)
        .join(Site, Site.id == ae.site_id)
    )
    q = _filter_events(scope, filters, q).order_by(ae.onset_date, ae.id)
    yield from db.session.execute(q.execution_options(yield_per=LISTING_BATCH))


def lab_listing(scope: Scope, min_grade: int) -> Iterator[Any]:
    """The scope's lab draws of at least `min_grade`, by subject, analyte and time, as plain
    rows streamed from the database, with the draw's day at the site."""
    q = (
        sa.select(
            LabResult.id,
            Subject.code.label("subject_code"),
            Site.code.label("site"),
            Site.timezone,
            Subject.cohort_id,
            LabResult.analyte,
            LabResult.value_canonical,
            LabResult.canonical_unit,
            LabResult.uln_multiple,
            LabResult.grade,
            LabResult.collected_at,
            LabResult.hys_law,
        )
        .join(Subject, Subject.id == LabResult.subject_id)
        .join(Site, Site.id == LabResult.site_id)
        .where(*lab_conditions(scope), LabResult.grade >= min_grade)
        .order_by(Subject.code, LabResult.analyte, LabResult.collected_at, LabResult.id)
    )
    yield from db.session.execute(q.execution_options(yield_per=LISTING_BATCH))


def clock_query(scope: Scope, status: str, now: datetime) -> sa.Select[Any]:
    """Clocks of the scope's events as rows (`summary.clock_select`), soonest due first:
    open (not submitted, overdue included), overdue, submitted, or all."""
    q = clock_select(scope)
    if status == "open":
        q = q.where(ExpeditedReport.submitted_at.is_(None))
    elif status == "overdue":
        q = q.where(ExpeditedReport.submitted_at.is_(None), ExpeditedReport.due_at < now)
    elif status == "submitted":
        q = q.where(ExpeditedReport.submitted_at.is_not(None))
    return q


def lab_query(scope: Scope, filters: dict[str, Any]) -> sa.Select[tuple[LabResult]]:
    """Lab draws by subject and time. With a shift cell (analyte, worst_grade and
    baseline_grade, "none" for no baseline draw): every draw of that analyte of the subjects
    in the cell; otherwise the scope's draws, filtered by analyte and minimum grade."""
    q = sa.select(LabResult).join(Subject, Subject.id == LabResult.subject_id)
    analyte = filters.get("analyte")
    if analyte and filters.get("worst_grade") is not None:
        baseline = filters.get("baseline_grade")
        baseline_grade = None if baseline in (None, "none") else int(baseline)
        cell = shift_subjects(scope, analyte, baseline_grade, filters["worst_grade"])
        q = q.where(LabResult.subject_id.in_(cell), LabResult.trial_id == scope.trial.id)
    else:
        q = q.where(*lab_conditions(scope))
    if analyte:
        q = q.where(LabResult.analyte == analyte)
    if filters.get("min_grade") is not None:
        q = q.where(LabResult.grade >= filters["min_grade"])
    return q.options(selectinload(LabResult.subject).selectinload(Subject.site)).order_by(
        Subject.code, LabResult.analyte, LabResult.collected_at, LabResult.id
    )


def study_day(subject: Subject, on: date) -> int | None:
    """Days from the subject's dosing day (day 0) on the site's calendar; None if not dosed."""
    if subject.dosing is None:
        return None
    return (on - local_date(subject.dosing.dosed_at, subject.site.timezone)).days


def lab_rows(labs: list[LabResult]) -> list[dict[str, Any]]:
    rows = []
    for lab in labs:
        on = local_date(lab.collected_at, lab.subject.site.timezone)
        rows.append(
            {
                "id": lab.id,
                "subject_code": lab.subject.code,
                "site": lab.subject.site.code,
                "analyte": lab.analyte,
                "value": float(lab.value),
                "unit": lab.unit,
                "uln": None if lab.uln is None else float(lab.uln),
                "uln_multiple": None if lab.uln_multiple is None else float(lab.uln_multiple),
                "grade": lab.grade,
                "collected_at": lab.collected_at,
                "collected_on": on,
                "study_day": study_day(lab.subject, on),
                "hys_law": lab.hys_law,
            }
        )
    return rows


# --- a subject's safety profile ------------------------------------------------------------


def subject_profile(subject: Subject) -> dict[str, Any]:
    """A subject's adverse events, labs (with ULN multiples over study days), dosing,
    protocol deviations and open tasks, each alone and on one timeline (the site's dates)."""
    events = list(
        db.session.execute(
            sa.select(AdverseEvent)
            .where(AdverseEvent.subject_id == subject.id)
            .order_by(AdverseEvent.onset_date, AdverseEvent.id)
        ).scalars()
    )
    labs = lab_rows(
        list(
            db.session.execute(
                sa.select(LabResult)
                .where(LabResult.subject_id == subject.id)
                .order_by(LabResult.collected_at, LabResult.analyte)
            ).scalars()
        )
    )
    tasks = list(
        db.session.execute(
            sa.select(WorkItem)
            .where(WorkItem.subject_id == subject.id, WorkItem.status == "open")
            .order_by(WorkItem.due_on.is_(None), WorkItem.due_on, WorkItem.id)
        ).scalars()
    )
    deviations = deviations_of(subject)
    timeline = _timeline(subject, events, labs, deviations, tasks)
    series = {
        analyte: [
            {"day": row["study_day"], "uln_multiple": row["uln_multiple"], "grade": row["grade"]}
            for row in labs
            if row["analyte"] == analyte
            and row["uln_multiple"] is not None
            and row["study_day"] is not None
        ]
        for analyte in LIVER
    }
    return {
        "events": events,
        "labs": labs,
        "tasks": tasks,
        "deviations": deviations,
        "timeline": timeline,
        "liver_series": {k: v for k, v in series.items() if v},
        "dosed_on": None
        if subject.dosing is None
        else local_date(subject.dosing.dosed_at, subject.site.timezone),
    }


def _timeline(
    subject: Subject,
    events: list[AdverseEvent],
    labs: list[dict[str, Any]],
    deviations: list[Any],
    tasks: list[WorkItem],
) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []

    def add(on: date, kind: str, what: str, alert: bool = False, **extra: Any) -> None:
        entries.append(
            {"on": on, "day": study_day(subject, on), "kind": kind, "what": what, "alert": alert}
            | extra
        )

    if subject.dosing is not None:
        d = subject.dosing
        on = local_date(d.dosed_at, subject.site.timezone)
        add(on, "dosing", f"Dosed {d.dose} {d.dose_unit}, lot {d.lot_number}", at=d.dosed_at)
    for ae in events:
        flags = [f for f, on_ in (("serious", ae.serious), ("SUSAR", ae.susar)) if on_]
        flags += [f"AESI: {ae.aesi_category}"] if ae.aesi else []
        label = f"{ae.term} ({ae.soc}), grade {ae.grade}"
        if flags:
            label += f"; {', '.join(flags)}"
        add(ae.onset_date, "adverse event", label, alert=ae.serious or ae.grade >= 3)
        if ae.resolution_date:
            add(
                ae.resolution_date, "adverse event", f"{ae.term} ended ({ae.outcome or 'resolved'})"
            )
    for row in labs:
        if row["grade"] or row["hys_law"]:
            multiple = f" ({row['uln_multiple']:.2f} x ULN)" if row["uln_multiple"] else ""
            hys = "; Hy's law" if row["hys_law"] else ""
            what = f"{row['analyte']} {row['value']:g} {row['unit']}{multiple}"
            what += f", grade {row['grade']}{hys}"
            add(row["collected_on"], "lab", what, alert=row["grade"] >= 3 or row["hys_law"])
    for deviation in deviations:
        add(deviation.occurred_on, "deviation", deviation.description, alert=True)
    for task in tasks:
        if task.due_on is not None:
            add(task.due_on, "open task", f"Due: {task.title}")
        else:
            opened = local_date(task.created_at, subject.site.timezone)
            add(opened, "open task", f"Opened: {task.title} (no due date)")
    return sorted(entries, key=lambda e: e["on"])
