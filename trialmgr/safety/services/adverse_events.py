"""Adverse events (ICH E2A, CTCAE v5.0): recording, follow-up versions, medical review.

Seriousness follows from its criteria (death, life-threatening, hospitalisation,
disability, congenital anomaly, important medical event) and is not severity (the grade);
suspected means causality possible or above; a SUSAR is serious, unexpected and suspected.
Every write opens the reporting clocks the event now needs, the tasks it implies, and runs
the trial's stopping rules, in the same transaction. A grade 5 event records the subject's
death through the enrolment service (date of death = the event's outcome date). Edits need
a reason and add a version: follow-up information never overwrites.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.audit.chain import jsonable
from trialmgr.auth.models import SAFETY_MONITOR
from trialmgr.auth.services import verify_signature
from trialmgr.clock import Day, Phrase, check_not_future, zone
from trialmgr.db import lock_rows
from trialmgr.enrollment.models import Subject, Trial
from trialmgr.enrollment.policies import require_site_worker
from trialmgr.enrollment.services.subjects import end_participation, get_subject
from trialmgr.errors import Conflict, Forbidden, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.policies import may_see_site, scope_sites
from trialmgr.partners.services.sites import site_local_date, site_today
from trialmgr.safety.models import (
    SUSPECTED,
    AdverseEvent,
    AdverseEventReview,
    AdverseEventVersion,
    ExpeditedReport,
    MeddraTerm,
)
from trialmgr.safety.services import clocks, stopping, work

REVIEW_MEANING = "I have reviewed this adverse event"
# The fields a version snapshots, and that follow-up information may change.
RECORD_FIELDS = (
    "term",
    "pt_term",
    "pt_code",
    "soc",
    "onset_date",
    "resolution_date",
    "grade",
    "seriousness_criteria",
    "serious",
    "causality",
    "suspected",
    "expected",
    "susar",
    "aesi",
    "aesi_category",
    "action_taken",
    "outcome",
    "site_awareness_at",
    "sponsor_awareness_at",
    "narrative",
)


def _derive(ae: AdverseEvent, serious_given: bool | None) -> None:
    """serious from its criteria (grade 5 is a death); suspected from causality; SUSAR."""
    criteria = list(dict.fromkeys(ae.seriousness_criteria or []))
    if ae.grade == 5 and "death" not in criteria:
        criteria.insert(0, "death")
    ae.seriousness_criteria = criteria
    ae.serious = bool(criteria)
    if serious_given is not None and serious_given != ae.serious:
        raise Invalid(
            "Seriousness follows from its criteria.",
            errors={
                "serious": [
                    "Serious needs at least one criterion."
                    if serious_given
                    else "A serious criterion was given; the event is serious."
                ]
            },
        )
    ae.suspected = ae.causality in SUSPECTED
    ae.susar = ae.serious and not ae.expected and ae.suspected


def _check(ae: AdverseEvent, subject: Subject, now: datetime) -> None:
    """Dates that happened at the site, in order; AESI with its category; fatal with its
    date of death."""
    today = site_today(subject.site, now)
    errors: dict[str, list[str | Phrase]] = {}
    try:
        check_not_future("onset_date", ae.onset_date, today)
        if ae.resolution_date is not None:
            check_not_future("resolution_date", ae.resolution_date, today)
    except Invalid as exc:
        errors.update(exc.field_messages)
    if ae.onset_date < subject.consented_on:
        errors["onset_date"] = [
            Phrase("Before the subject's consent ({on}).", on=Day(subject.consented_on))
        ]
    if ae.resolution_date is not None and ae.resolution_date < ae.onset_date:
        errors["resolution_date"] = ["Before the onset."]
    if subject.status == "died" and subject.ended_on and ae.onset_date > subject.ended_on:
        errors["onset_date"] = [
            Phrase("After the subject's death ({on}).", on=Day(subject.ended_on))
        ]
    if ae.aesi and not ae.aesi_category:
        errors["aesi_category"] = ["Give the category of special interest."]
    if ae.aesi_category and not ae.aesi:
        errors["aesi"] = ["A category of special interest makes the event an AESI."]
    if ae.grade == 5:
        if ae.outcome not in (None, "fatal"):
            errors["outcome"] = ["A grade 5 event is fatal."]
        if ae.resolution_date is None:
            errors["resolution_date"] = ["Give the date of death (the event's outcome date)."]
    if ae.outcome == "fatal" and ae.grade != 5:
        errors["grade"] = ["A fatal outcome is grade 5."]
    for field in ("site_awareness_at", "sponsor_awareness_at"):
        moment = getattr(ae, field)
        if moment > now:
            errors[field] = ["Must not be in the future."]
        elif site_local_date(subject.site, moment) < ae.onset_date:
            errors[field] = ["Before the onset."]
    if ae.sponsor_awareness_at < ae.site_awareness_at:
        errors["sponsor_awareness_at"] = ["Before the site's awareness."]
    if errors:
        raise Invalid("The adverse event does not add up.", errors=errors)


def _apply_dictionary(ae: AdverseEvent, data: dict[str, Any]) -> None:
    """A MedDRA code from the consortium's dictionary fills the preferred term and SOC."""
    code = data.get("pt_code")
    if not code:
        return
    term = db.session.execute(
        sa.select(MeddraTerm).where(MeddraTerm.pt_code == code)
    ).scalar_one_or_none()
    if term is not None:
        ae.pt_term = ae.pt_term or term.pt_term
        if not data.get("soc"):
            ae.soc = term.soc


def _snapshot(
    ae: AdverseEvent, reason: str | None, awareness: datetime, actor: Any, now: datetime
) -> None:
    db.session.add(
        AdverseEventVersion(
            adverse_event=ae,  # a new event may not be flushed yet
            version=ae.version,
            data=jsonable({f: getattr(ae, f) for f in RECORD_FIELDS}),
            reason=reason,
            awareness_at=awareness,
            recorded_at=now,
            recorded_by=actor.email,
        )
    )


def _death(actor: Any, ae: AdverseEvent, now: datetime) -> None:
    """Grade 5: the subject died on the event's outcome date (later visits cancelled)."""
    subject = ae.subject
    if subject.status == "died" or ae.grade != 5 or ae.resolution_date is None:
        return
    end_participation(
        actor,
        subject,
        "died",
        ae.resolution_date,
        f"Grade 5 adverse event: {ae.term}",
        now,
    )


def _after_write(
    actor: Any, ae: AdverseEvent, awareness: datetime, now: datetime
) -> list[ExpeditedReport]:
    """Clocks, their submission tasks, the grade 5 death, and the stopping rules; returns
    the clocks opened."""
    zone_name = ae.subject.site.timezone
    opened: list[ExpeditedReport] = []
    if clocks.conditions(ae):  # a non-serious event needs no reporting clock
        with audit.audited(actor, action="expedited_report.open"):
            opened = clocks.open_clocks(ae, awareness)
            for report in opened:
                db.session.flush()
                work.for_clock(report, report.due_at.astimezone(zone(zone_name)).date())
    _death(actor, ae, now)
    if ae.grade >= stopping.SEVERE:  # the rules look at severe events only
        trial = db.session.get(Trial, ae.trial_id)
        assert trial is not None
        stopping.evaluate(trial, now, kinds=stopping.EVENT_KINDS)
    return opened


# An event recorded in this transaction has no review yet and exactly the clocks its
# recording opened: its answer shows them without querying for them.
_FRESH = "safety_fresh_events"


def fresh_reports(ae: AdverseEvent) -> list[ExpeditedReport] | None:
    """The clocks of an event recorded in this session's transaction (it has no review),
    or None for any other event."""
    return db.session.info.get(_FRESH, {}).get(ae.id)


def record(actor: Any, data: dict[str, Any], now: datetime) -> AdverseEvent:
    """Record an adverse event for a subject of the actor's sites."""
    subject = get_subject(actor, data["subject_code"])
    require_site_worker(actor, subject.site_id)
    # A severe event runs the stopping rules at the end of this write: the trial row is
    # locked first, so that parallel writes queue here rather than deadlock later (the FK
    # checks share-lock it). Milder events neither lock it nor wait for it.
    if data["grade"] >= stopping.SEVERE:
        lock_rows(db.session, Trial, subject.trial_id)
    site_awareness = data.get("site_awareness_at") or now
    ae = AdverseEvent(
        trial_id=subject.trial_id,
        subject=subject,
        site_id=subject.site_id,
        cohort_id=subject.cohort_id,
        version=1,
        term=data["term"].strip(),
        pt_term=data.get("pt_term"),
        pt_code=data.get("pt_code"),
        soc=(data.get("soc") or "").strip(),
        onset_date=data["onset_date"],
        resolution_date=data.get("resolution_date"),
        grade=data["grade"],
        seriousness_criteria=data.get("seriousness_criteria") or [],
        causality=data["causality"],
        expected=data["expected"],
        aesi=data.get("aesi", False),
        aesi_category=data.get("aesi_category"),
        action_taken=data.get("action_taken"),
        outcome=data.get("outcome") or ("fatal" if data["grade"] == 5 else None),
        site_awareness_at=site_awareness,
        sponsor_awareness_at=data.get("sponsor_awareness_at") or site_awareness,
        source_visit_id=data.get("source_visit_id"),
        narrative=data.get("narrative"),
    )
    _apply_dictionary(ae, data)
    if not ae.soc:
        raise Invalid("Give the system organ class.", errors={"soc": ["Required."]})
    _derive(ae, data.get("serious"))
    _check(ae, subject, now)
    with audit.audited(actor, action="adverse_event.record"):
        # The event, its first version and its tasks go in one flush (they name the event
        # through relationships); a task or lab it closes is looked up after it.
        db.session.add(ae)
        _snapshot(ae, None, ae.sponsor_awareness_at, actor, now)
        work.for_new_event(ae, site_today(subject.site, now))
        if data.get("task_id") is not None or data.get("lab_result_id") is not None:
            db.session.flush()
            work.close_source_task(data.get("task_id"), ae, actor.email, now)
            _link_lab(ae, data.get("lab_result_id"))
    opened = _after_write(actor, ae, ae.sponsor_awareness_at, now)
    db.session.info.setdefault(_FRESH, {})[ae.id] = sorted(opened, key=lambda r: (r.due_at, r.id))
    return ae


def _link_lab(ae: AdverseEvent, lab_id: int | None) -> None:
    from trialmgr.safety.models import LabResult

    if lab_id is None:
        return
    lab = db.session.get(LabResult, lab_id)
    if lab is None or lab.subject_id != ae.subject_id:
        raise Invalid(
            "Unknown lab result.", errors={"lab_result_id": [f"No lab {lab_id} of this subject."]}
        )
    lab.adverse_event_id = ae.id


def update(actor: Any, ae: AdverseEvent, data: dict[str, Any], now: datetime) -> AdverseEvent:
    """Follow-up information or a correction: a new version with its reason and the time
    the information became known (`awareness_at`, default now); an upgrade (e.g. to
    serious or fatal) opens its clocks from that awareness."""
    require_site_worker(actor, ae.site_id)
    if data.get("grade", ae.grade) >= stopping.SEVERE:
        lock_rows(db.session, Trial, ae.trial_id)  # before any write: see record()
    lock_rows(db.session, AdverseEvent, ae.id)
    data = dict(data)
    reason = data.pop("reason")
    awareness = data.pop("awareness_at", None) or now
    if awareness > now:
        raise Invalid("Awareness cannot be in the future.", errors={"awareness_at": ["Future."]})
    serious_given = data.pop("serious", None)
    if (
        ae.subject.status == "died"
        and ae.outcome == "fatal"
        and data.get("outcome")
        not in (
            None,
            "fatal",
        )
    ):
        raise Conflict("The subject's death is recorded; correct it on the subject first.")
    changed = {k: v for k, v in data.items() if getattr(ae, k) != v}
    if not changed:
        raise Invalid("Nothing changed.", errors={"_schema": ["Give the new information."]})
    with audit.audited(actor, reason=reason, action="adverse_event.update"):
        for key, value in changed.items():
            setattr(ae, key, value)
        if ae.grade == 5 and ae.outcome is None:
            ae.outcome = "fatal"
        _apply_dictionary(ae, changed)
        _derive(ae, serious_given)
        _check(ae, ae.subject, now)
        ae.version += 1
        _snapshot(ae, reason, awareness, actor, now)
        work.after_event_update(ae, actor.email, now, site_today(ae.subject.site, now))
    _after_write(actor, ae, awareness, now)
    return ae


def get(actor: Any, ae_id: int) -> AdverseEvent:
    ae = db.session.get(AdverseEvent, ae_id)
    if ae is None or not may_see_site(actor, ae.site_id):
        raise NotFound(f"No adverse event {ae_id}.")
    return ae


def query(actor: Any, filters: dict[str, Any]) -> sa.Select[tuple[AdverseEvent]]:
    """Events in the actor's sites, newest onset first; filters by trial, site, cohort,
    subject, seriousness, SUSAR, AESI, grade, SOC and onset dates."""
    q = scope_sites(actor, sa.select(AdverseEvent), AdverseEvent.site_id)
    for field in ("trial_id", "site_id", "cohort_id", "serious", "susar", "aesi", "grade"):
        if filters.get(field) is not None:
            q = q.where(getattr(AdverseEvent, field) == filters[field])
    if filters.get("min_grade") is not None:
        q = q.where(AdverseEvent.grade >= filters["min_grade"])
    if filters.get("soc"):
        q = q.where(sa.func.lower(AdverseEvent.soc) == filters["soc"].strip().lower())
    if filters.get("subject_code"):
        q = q.join(Subject, Subject.id == AdverseEvent.subject_id).where(
            Subject.code == filters["subject_code"].strip().upper()
        )
    if filters.get("since"):
        q = q.where(AdverseEvent.onset_date >= filters["since"])
    if filters.get("until"):
        q = q.where(AdverseEvent.onset_date <= filters["until"])
    return q.order_by(AdverseEvent.onset_date.desc(), AdverseEvent.id.desc())


def reviews_of(ae: AdverseEvent) -> list[AdverseEventReview]:
    return list(
        db.session.execute(
            sa.select(AdverseEventReview)
            .where(AdverseEventReview.adverse_event_id == ae.id)
            .order_by(AdverseEventReview.signed_at)
        ).scalars()
    )


def review(actor: Any, ae: AdverseEvent, data: dict[str, Any], now: datetime) -> AdverseEventReview:
    """A safety monitor's signed medical review (password re-entry; meaning "reviewed"),
    bound to the version they saw: reviewing an outdated version is refused."""
    if actor.role != SAFETY_MONITOR:
        raise Forbidden("Only a safety monitor reviews adverse events.")
    verify_signature(actor, data["password"], now)
    if data["version"] != ae.version:
        raise Conflict(
            f"Version {data['version']} is not the current one ({ae.version}): "
            "reload the event and review what it says now.",
            title="Version changed",
        )
    with audit.audited(actor, action="adverse_event.review", reason=data.get("comment")):
        signed = AdverseEventReview(
            adverse_event_id=ae.id,
            version=ae.version,
            comment=data.get("comment"),
            signed_by_id=actor.id,
            signed_by=actor.email,
            signed_at=now,
            signature_meaning=REVIEW_MEANING,
        )
        db.session.add(signed)
        work.after_review(ae, actor.email, now)
    return signed


def review_state(ae: AdverseEvent) -> str:
    """unreviewed / reviewed / outdated (reviewed at an earlier version)."""
    reviewed = [r.version for r in reviews_of(ae)]
    if not reviewed:
        return "unreviewed"
    return "reviewed" if max(reviewed) == ae.version else "outdated"
