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

from collections import Counter
from datetime import date, datetime
from typing import Any

from trialmgr.enrollment.models import Subject, Trial
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.milestones.services import dataset as ds
from trialmgr.milestones.services import metrics

EXITS = ("withdrawn", "lost", "died")


def exit_as_of(subject: Subject, day: date) -> tuple[str, date] | None:
    """How and when the subject had left by `day` (death over loss over withdrawal)."""
    if subject.status == "died" and subject.ended_on and subject.ended_on <= day:
        return "died", subject.ended_on
    if subject.status == "lost_to_follow_up" and subject.ended_on and subject.ended_on <= day:
        return "lost", subject.ended_on
    if subject.withdrawn_on is not None and subject.withdrawn_on <= day:
        return "withdrawn", subject.withdrawn_on
    return None


def _reasons(counter: Counter[str], labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    labels = labels or {}
    return [
        {"reason": reason, "label": labels.get(reason, reason), "count": count}
        for reason, count in sorted(counter.items(), key=lambda rc: (-rc[1], rc[0]))
    ]


def _stated(text: str | None) -> str:
    return " ".join((text or "").split()) or "not stated"


def _screening_steps(data: ds.Dataset, day: date) -> dict[str, Any]:
    screens = metrics.screened(data, day)
    states = {s.id: metrics.screening_state(s) for s in screens}
    failed = [s for s in screens if states[s.id] == "failed"]
    declined = [s for s in screens if states[s.id] == "declined"]
    consented = [s for s in screens if metrics.consented(s, day)]
    enrolled_screenings = {s.screening_id for s in metrics.enrolled(data, day)}
    failed_reasons: Counter[str] = Counter()
    for screening in failed:
        failed_reasons.update(screening.failed_criteria or [_stated(screening.fail_reason)])
    criteria = {c.code: f"{c.code}: {c.text}" for c in data.trial.criteria}
    return {
        "approached": len(screens),
        "in_screening": sum(state == "pending" for state in states.values()),
        "screened": sum(state != "pending" for state in states.values()),
        "screen_failed": len(failed),
        "screen_failed_reasons": _reasons(failed_reasons, criteria),
        "eligible": sum(state in ("eligible", "declined") for state in states.values()),
        "declined": len(declined),
        "declined_reasons": _reasons(Counter(_stated(s.fail_reason) for s in declined)),
        "consented": len(consented),
        "consented_then_screen_failed": sum(states[s.id] == "failed" for s in consented),
        "eligible_not_enrolled": sum(
            states[s.id] == "eligible" and s.id not in enrolled_screenings for s in screens
        ),
    }


def _subject_steps(data: ds.Dataset, day: date) -> dict[str, Any]:
    subjects = metrics.enrolled(data, day)
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    withdrawals: Counter[tuple[str, str]] = Counter()
    totals: Counter[str] = Counter()
    dosed = completed = in_follow_up = awaiting = 0
    for subject in subjects:
        dosed_on = ds.dosed_on(subject)
        is_dosed = dosed_on is not None and dosed_on <= day
        visit = ds.primary_visit(subject)
        done = visit is not None and metrics.done_by(visit, day)
        left = exit_as_of(subject, day)
        if left is not None:
            totals[left[0]] += 1
            if left[0] == "withdrawn":
                withdrawals[
                    (subject.withdrawal_kind or "full", _stated(subject.withdrawal_reason))
                ] += 1
        if not is_dosed:
            if left is not None:
                before[left[0]] += 1
            else:
                awaiting += 1
            continue
        dosed += 1
        if done:
            completed += 1
        elif left is not None:
            after[left[0]] += 1
        else:
            in_follow_up += 1
    return {
        "enrolled": len(subjects),
        "left_before_dosing": {kind: before[kind] for kind in EXITS},
        "awaiting_dosing": awaiting,
        "dosed": dosed,
        "left_after_dosing": {kind: after[kind] for kind in EXITS},
        "in_follow_up": in_follow_up,
        "completed": completed,
        "withdrawn": totals["withdrawn"],
        "withdrawn_reasons": [
            {"kind": kind, "reason": reason, "count": count}
            for (kind, reason), count in sorted(withdrawals.items(), key=lambda kc: (-kc[1], kc[0]))
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
    data = ds.load(actor, trial, site_id, entered_by)
    cohort = None
    if cohort_id is not None:
        cohort = trials_service.get_cohort(trial, cohort_id)
        data = data.for_cohort(cohort.id)
    steps: dict[str, Any] = (
        dict.fromkeys(SCREENING_STEPS) if cohort is not None else _screening_steps(data, day)
    )
    return {
        "trial_id": trial.id,
        "trial_code": trial.code,
        "as_of": day,
        "site_id": site_id,
        "cohort_id": cohort_id,
        "cohort_label": cohort.label if cohort else None,
        **steps,
        **_subject_steps(data, day),
    }
