"""The follow-on work queue (after clinicedc's action items): every adverse event opens the
tasks it implies, each with an owner role and a due date, closed by the record that
fulfils it; LTFU delayed-event answers, positive RCR results and graded labs open a task
to record the adverse event, with the form pre-filled.

- follow-up report (coordinator): serious events 7 days, closed by a follow-up version;
  others at resolution, closed by the resolution date;
- medical review (safety monitor): 7 days, closed by a signed review of the current version;
- death report (coordinator): 7 days, closed by a version with outcome fatal, the date of
  death and a narrative;
- expedited submission (safety monitor): the clock's due date, closed by the submission;
- record an AE (coordinator): from an LTFU "yes", a positive RCR result or a lab of grade 3
  or more, closed by the adverse event recorded from it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.auth.models import COORDINATOR, SAFETY_MONITOR
from trialmgr.auth.policies import site_scope
from trialmgr.clock import utcnow
from trialmgr.errors import NotFound
from trialmgr.extensions import db
from trialmgr.partners.policies import may_see_site
from trialmgr.safety.models import AdverseEvent, ExpeditedReport, WorkItem

FOLLOW_UP_DAYS = 7
REVIEW_DAYS = 7
DEATH_REPORT_DAYS = 7


def _open(
    kind: str, owner: str, ae_or_subject: Any, title: str, due: date | None, **links: Any
) -> WorkItem:
    subject = getattr(ae_or_subject, "subject", ae_or_subject)
    item = WorkItem(
        kind=kind,
        owner_role=owner,
        trial_id=subject.trial_id,
        site_id=subject.site_id,
        subject_id=subject.id,
        title=title,
        due_on=due,
        status="open",
        **links,
    )
    db.session.add(item)
    return item


def _items(**where: Any) -> list[WorkItem]:
    q = sa.select(WorkItem).where(WorkItem.status == "open")
    for field, value in where.items():
        q = q.where(getattr(WorkItem, field) == value)
    return list(db.session.execute(q).scalars())


def close(item: WorkItem, by: str, now: datetime) -> None:
    item.status, item.closed_at, item.closed_by = "done", now, by


def for_new_event(ae: AdverseEvent, today: date) -> None:
    """The tasks a new adverse event opens. The event may not be flushed yet: the tasks
    name it through the relationship, and are written with it in one flush."""
    code = ae.subject.code
    if ae.serious:
        _open(
            "follow_up_report",
            COORDINATOR,
            ae,
            f"Follow-up report: {ae.term} ({code})",
            today + timedelta(days=FOLLOW_UP_DAYS),
            adverse_event=ae,
        )
    elif ae.resolution_date is None:
        _open(
            "follow_up_report",
            COORDINATOR,
            ae,
            f"Record the resolution: {ae.term} ({code})",
            None,
            adverse_event=ae,
        )
    _open(
        "medical_review",
        SAFETY_MONITOR,
        ae,
        f"Medical review: {ae.term} (grade {ae.grade}, {code})",
        today + timedelta(days=REVIEW_DAYS),
        adverse_event=ae,
    )
    if ae.grade == 5:  # a new event has no death report yet
        _open_death_report(ae, today)


def for_grade_five(ae: AdverseEvent, today: date) -> None:
    if ae.grade == 5 and not _items(adverse_event_id=ae.id, kind="death_report"):
        _open_death_report(ae, today)


def _open_death_report(ae: AdverseEvent, today: date) -> None:
    _open(
        "death_report",
        COORDINATOR,
        ae,
        f"Death report: {ae.subject.code}",
        today + timedelta(days=DEATH_REPORT_DAYS),
        adverse_event=ae,
    )


def for_clock(report: ExpeditedReport, zone_day: date) -> None:
    _open(
        "expedited_submission",
        SAFETY_MONITOR,
        report.adverse_event,
        f"Submit to {report.authority} ({report.kind.replace('_', '-')}): "
        f"{report.adverse_event.term} ({report.adverse_event.subject.code})",
        zone_day,
        adverse_event_id=report.adverse_event_id,
        expedited_report_id=report.id,
    )


def after_event_update(ae: AdverseEvent, by: str, now: datetime, today: date) -> None:
    """A follow-up version closes the follow-up report of a serious event; the resolution
    date closes that of a non-serious one; a complete death report closes its task; a new
    version reopens the medical review (the earlier review is outdated)."""
    for item in _items(adverse_event_id=ae.id, kind="follow_up_report"):
        if ae.serious or ae.resolution_date is not None:
            close(item, by, now)
    if ae.serious and ae.resolution_date is None and ae.outcome not in ("fatal",):
        _open(
            "follow_up_report",
            COORDINATOR,
            ae,
            f"Follow-up report: {ae.term} ({ae.subject.code})",
            today + timedelta(days=FOLLOW_UP_DAYS),
            adverse_event_id=ae.id,
        )
    for item in _items(adverse_event_id=ae.id, kind="death_report"):
        if ae.outcome == "fatal" and ae.resolution_date and ae.narrative:
            close(item, by, now)
    for_grade_five(ae, today)
    if not _items(adverse_event_id=ae.id, kind="medical_review"):
        _open(
            "medical_review",
            SAFETY_MONITOR,
            ae,
            f"Medical review of version {ae.version}: {ae.term} ({ae.subject.code})",
            today + timedelta(days=REVIEW_DAYS),
            adverse_event_id=ae.id,
        )


def after_review(ae: AdverseEvent, by: str, now: datetime) -> None:
    for item in _items(adverse_event_id=ae.id, kind="medical_review"):
        close(item, by, now)


def after_submission(report: ExpeditedReport, by: str, now: datetime) -> None:
    for item in _items(expedited_report_id=report.id):
        close(item, by, now)


def record_ae_task(
    subject: Any, title: str, prefill: dict[str, Any], due: date, **links: Any
) -> WorkItem:
    """A task to record an adverse event, the form pre-filled (an LTFU "yes", a positive
    RCR result, a lab of grade 3 or more)."""
    kind = "lab_ae" if "lab_result_id" in links else "record_ae"
    item = _open(kind, COORDINATOR, subject, title, due, **links)
    item.prefill = prefill
    return item


def close_source_task(task_id: int | None, ae: AdverseEvent, by: str, now: datetime) -> None:
    """The adverse event recorded from a task closes it (and links a lab to the event)."""
    if task_id is None:
        return
    item = db.session.get(WorkItem, task_id)
    if item is None or item.status != "open" or item.subject_id != ae.subject_id:
        raise NotFound(f"No open task {task_id} for this subject.")
    item.adverse_event_id = ae.id
    close(item, by, now)


def queue_for(actor: Any, include_done: bool = False) -> sa.Select[tuple[WorkItem]]:
    """The actor's tasks: their role's, in their sites; open first by due date."""
    q = sa.select(WorkItem)
    if actor.role in (COORDINATOR, SAFETY_MONITOR):
        q = q.where(WorkItem.owner_role == actor.role)
    allowed = site_scope(actor)
    if allowed is not None:
        q = q.where(WorkItem.site_id.in_(allowed))
    if not include_done:
        q = q.where(WorkItem.status == "open")
    return q.order_by(WorkItem.due_on.is_(None), WorkItem.due_on, WorkItem.id)


def tasks_about(include_done: bool = True, **where: Any) -> list[WorkItem]:
    """The tasks of one record (`adverse_event_id=`, `subject_id=`, `lab_result_id=`),
    whatever their owner role: open first by due date, then the closed ones."""
    q = sa.select(WorkItem)
    for field, value in where.items():
        q = q.where(getattr(WorkItem, field) == value)
    if not include_done:
        q = q.where(WorkItem.status == "open")
    order = (WorkItem.status != "open", WorkItem.due_on.is_(None), WorkItem.due_on, WorkItem.id)
    return list(db.session.execute(q.order_by(*order)).scalars())


def get_item(actor: Any, item_id: int) -> WorkItem:
    item = db.session.get(WorkItem, item_id)
    if item is None or not may_see_site(actor, item.site_id):
        raise NotFound(f"No task {item_id}.")
    return item


# --- tasks from visits (connected when the safety domain is loaded) ------------------

LTFU_TERMS = {
    "new_malignancy": (
        "New malignancy",
        "Neoplasms benign, malignant and unspecified",
        "malignancy",
    ),
    "neurological": (
        "New or worsened neurological disorder",
        "Nervous system disorders",
        "neurological",
    ),
    "autoimmune": ("New or worsened autoimmune disorder", "Immune system disorders", "autoimmune"),
    "haematological": (
        "New haematological disorder",
        "Blood and lymphatic system disorders",
        "haematological",
    ),
}


def _on_visit_recorded(visit: Any, actor: Any = None, now: datetime | None = None) -> None:
    """An LTFU "yes" or a positive RCR result: a task to record the adverse event, the
    form pre-filled (a positive RCR is serious: an important medical event, awareness
    from the moment the result was entered, so the clocks do not wait for the form)."""
    if visit.status != "done" or visit.done_on is None:
        return
    with audit.audited(actor, action="work_item.open"):
        _tasks_from_visit(visit, now or utcnow())


def _tasks_from_visit(visit: Any, now: datetime) -> None:
    subject = visit.subject
    existing = {(w.visit_id, w.title) for w in _items(visit_id=visit.id)}
    due = visit.done_on + timedelta(days=1)
    if visit.kind == "ltfu":
        for key, answer in (visit.answers or {}).items():
            if not answer or key not in LTFU_TERMS:
                continue
            term, soc, category = LTFU_TERMS[key]
            title = (
                f"{visit.name}: {term.lower()} reported; record the adverse event ({subject.code})"
            )
            if (visit.id, title) in existing:
                continue
            record_ae_task(
                subject,
                title,
                {
                    "term": term,
                    "soc": soc,
                    "onset_date": visit.done_on.isoformat(),
                    "aesi": True,
                    "aesi_category": category,
                    "source_visit_id": visit.id,
                },
                due,
                visit_id=visit.id,
            )
    if visit.kind == "rcr" and visit.result == "positive":
        title = (
            f"{visit.name}: positive RCR result; record the serious adverse event ({subject.code})"
        )
        if (visit.id, title) not in existing:
            record_ae_task(
                subject,
                title,
                {
                    "term": "Replication-competent virus detected",
                    "soc": "Infections and infestations",
                    "onset_date": visit.done_on.isoformat(),
                    "seriousness_criteria": ["important_medical_event"],
                    "causality": "probable",
                    "expected": False,
                    "site_awareness_at": now.isoformat(),
                    "source_visit_id": visit.id,
                },
                visit.done_on,
                visit_id=visit.id,
            )


def connect() -> None:
    from trialmgr.enrollment.services.visits import visit_recorded

    visit_recorded.connect(_on_visit_recorded)
