"""The CONSORT flow of a pilot (CONSORT 2010 extension to pilot and feasibility trials,
2016): counts at each step and the reasons of those who left it, as of a date, overall or
for one site or one cohort. The page's diagram and the reports draw these numbers.

Steps: approached (every screening-log entry) → screened (assessment complete; the rest
are still in screening) → screen-failed, by unmet criterion or stated reason (a screening
failing two criteria counts under both) → eligible → declined (eligible, then said no) →
consented (a subject who consented and then failed screening counts as consented, and is
shown apart) → enrolled → dosed → completed primary follow-up (primary-endpoint visit
done). Those who left after enrolment are counted where they left: before dosing or after
it (before completing the primary follow-up), as withdrawn (by kind and reason), lost to
follow-up or died. A cohort has no screenings: with `cohort_id` the flow starts at
enrolment and the screening steps are None.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from trialmgr.enrollment.models import Dosing, Screening, Subject, Trial
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.extensions import db
from trialmgr.milestones.services import dataset as ds
from trialmgr.milestones.services import tallies

EXITS = ("withdrawn", "lost", "died")


def screening_steps(read: tallies.Reading, day: date) -> dict[str, Any]:
    """The screening steps of `consort.flow` as of the day."""
    state_failing = tallies.flag(
        sa.and_(Screening.outcome == "declined", tallies.has_items(Screening.failed_criteria))
    )
    consented = tallies.flag(
        sa.and_(Screening.consented_on.is_not(None), Screening.consented_on <= day)
    )
    failed = sa.or_(Screening.outcome == "screen_failed", state_failing == 1)
    criteria_text = sa.case((failed, sa.cast(Screening.failed_criteria, sa.Text)))
    reason = sa.case((Screening.outcome.in_(("screen_failed", "declined")), Screening.fail_reason))
    enrolled = sa.exists().where(
        Subject.screening_id == Screening.id,
        read.subjects(),
        Subject.enrolled_on <= day,
    )
    taken = tallies.flag(sa.and_(Screening.outcome == "eligible", enrolled))
    keys = (Screening.outcome, state_failing, consented, criteria_text, reason, taken)
    rows = db.session.execute(
        sa.select(*keys, sa.func.count())
        .where(read.screenings(), Screening.screened_on <= day)
        .group_by(*keys)
    ).all()
    states: Counter[str] = Counter()
    failed_reasons: Counter[str] = Counter()
    declined_reasons: Counter[str] = Counter()
    consented_count = consented_failed = eligible_not_enrolled = 0
    for outcome, failing, has_consent, criteria_json, stated, is_taken, n in rows:
        state = tallies.screening_state(outcome, bool(failing))
        states[state] += n
        if has_consent:
            consented_count += n
            consented_failed += n if state == "failed" else 0
        if state == "failed":
            listed = json.loads(criteria_json) if criteria_json else None
            for reason in listed or [_stated(stated)]:
                failed_reasons[reason] += n
        elif state == "declined":
            declined_reasons[_stated(stated)] += n
        elif state == "eligible" and not is_taken:
            eligible_not_enrolled += n
    labels = {c.code: f"{c.code}: {c.text}" for c in read.trial.criteria}
    return {
        "approached": sum(states.values()),
        "in_screening": states["pending"],
        "screened": sum(n for state, n in states.items() if state != "pending"),
        "screen_failed": states["failed"],
        "screen_failed_reasons": _reasons(failed_reasons, labels),
        "eligible": states["eligible"] + states["declined"],
        "declined": states["declined"],
        "declined_reasons": _reasons(declined_reasons),
        "consented": consented_count,
        "consented_then_screen_failed": consented_failed,
        "eligible_not_enrolled": eligible_not_enrolled,
    }


def _stated(text: str | None) -> str:
    return " ".join((text or "").split()) or "not stated"


def _reasons(counter: Counter[str], labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    labels = labels or {}
    return [
        {"reason": reason, "label": labels.get(reason, reason), "count": count}
        for reason, count in sorted(counter.items(), key=lambda rc: (-rc[1], rc[0]))
    ]


def subject_steps(read: tallies.Reading, day: date, cohort_id: int | None = None) -> dict[str, Any]:
    """The steps after enrolment of `consort.flow` as of the day."""
    primary, first = tallies.primary_visit()
    dosed = tallies.flag(read.before_end_of(day, Dosing.dosed_at, Subject.site_id))
    completed = tallies.flag(
        sa.and_(
            primary.status == "done",
            primary.done_on.is_not(None),
            primary.done_on <= day,
        )
    )
    ended = sa.and_(Subject.ended_on.is_not(None), Subject.ended_on <= day)
    left = sa.case(
        (sa.and_(Subject.status == "died", ended), "died"),
        (sa.and_(Subject.status == "lost_to_follow_up", ended), "lost"),
        (sa.and_(Subject.withdrawn_on.is_not(None), Subject.withdrawn_on <= day), "withdrawn"),
    )
    withdrawn = left == "withdrawn"
    kind = sa.case((withdrawn, Subject.withdrawal_kind))
    reason = sa.case((withdrawn, Subject.withdrawal_reason))
    keys = (dosed, completed, left, kind, reason)
    rows = db.session.execute(
        sa.select(*keys, sa.func.count())
        .select_from(Subject)
        .outerjoin(Dosing, Dosing.subject_id == Subject.id)
        .outerjoin(primary, sa.and_(primary.subject_id == Subject.id, first))
        .where(read.subjects(cohort_id), Subject.enrolled_on <= day)
        .group_by(*keys)
    ).all()
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    withdrawals: Counter[tuple[str, str]] = Counter()
    enrolled = dosed_count = completed_count = in_follow_up = awaiting = 0
    for is_dosed, done, exit_kind, withdrawal_kind, withdrawal_reason, n in rows:
        enrolled += n
        if exit_kind is not None:
            totals[exit_kind] += n
            if exit_kind == "withdrawn":
                withdrawals[(withdrawal_kind or "full", _stated(withdrawal_reason))] += n
        if not is_dosed:
            if exit_kind is not None:
                before[exit_kind] += n
            else:
                awaiting += n
            continue
        dosed_count += n
        if done:
            completed_count += n
        elif exit_kind is not None:
            after[exit_kind] += n
        else:
            in_follow_up += n
    return {
        "enrolled": enrolled,
        "left_before_dosing": {each: before[each] for each in EXITS},
        "awaiting_dosing": awaiting,
        "dosed": dosed_count,
        "left_after_dosing": {each: after[each] for each in EXITS},
        "in_follow_up": in_follow_up,
        "completed": completed_count,
        "withdrawn": totals["withdrawn"],
        "withdrawn_reasons": [
            {"kind": each, "reason": why, "count": n}
            for (each, why), n in sorted(withdrawals.items(), key=lambda kc: (-kc[1], kc[0]))
        ],
        "lost": totals["lost"],
        "died": totals["died"],
    }


SCREENING_STEPS = (
    "approached",
    "in_screening",
    "screened",
    "screen_failed",
    "screen_failed_reasons",
    "eligible",
    "declined",
    "declined_reasons",
    "consented",
    "consented_then_screen_failed",
    "eligible_not_enrolled",
)


def flow(
    actor: Any,
    trial: Trial,
    now: datetime,
    as_of: date | None = None,
    site_id: int | None = None,
    cohort_id: int | None = None,
    entered_by: date | None = None,
) -> dict[str, Any]:
    """The flow as of a date (default: the reader's today) over the sites the reader sees
    (coordinators: their own), one site (`site_id`; another's is 404) or one cohort; a
    report passes its cut-off as `entered_by` too (records entered after it are left out)."""
    day = ds.resolve_as_of(actor, now, as_of)
    read = tallies.reading(actor, trial, site_id, entered_by, history=False)
    cohort = None
    if cohort_id is not None:
        cohort = trials_service.get_cohort(trial, cohort_id)
    steps: dict[str, Any] = (
        dict.fromkeys(SCREENING_STEPS) if cohort is not None else screening_steps(read, day)
    )
    return {
        "trial_id": trial.id,
        "trial_code": trial.code,
        "as_of": day,
        "site_id": site_id,
        "cohort_id": cohort_id,
        "cohort_label": cohort.label if cohort else None,
        **steps,
        **subject_steps(read, day, cohort.id if cohort is not None else None),
    }
